# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The package as ROS users run it: the installed executables, their --help, the default
parameter files (playback profile) on a machine without devices, and start-up failures.

Executables and share files are taken from the install space when the package is found through
the ament index (``colcon test`` in a workspace: ``lib/crossmodal_ros/<exe>``,
``share/crossmodal_ros/config``), else from the venv's console scripts and the source tree
(``make test``). Marked ``colcon``: the quick subset ``colcon test`` runs in CI (.ci/colcon_test).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.colcon, pytest.mark.ros, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
EXECUTABLES = ("crossmodal_inference", "nexus_node", "camera_node", "microphone_node", "pen_node", "bag_player",
               "bag_export", "bag_eval", "demo")
SENSORS = ("camera_node", "microphone_node", "pen_node")


def _installed_prefix() -> Path | None:
    try:
        from ament_index_python.packages import get_package_prefix

        prefix = Path(get_package_prefix("crossmodal_ros"))
    except Exception:  # noqa: BLE001 - not in the ament index (venv / editable install)
        return None
    return prefix if (prefix / "lib" / "crossmodal_ros").is_dir() else None


PREFIX = _installed_prefix()


def executable(name: str) -> str:
    """The installed executable (``ros2 run`` location) or the venv console script."""
    if PREFIX is not None:
        path = PREFIX / "lib" / "crossmodal_ros" / name
    else:
        path = Path(sys.executable).parent / name
    assert path.is_file(), f"{name} is not installed at {path}"
    return str(path)


def config_file(name: str) -> str:
    base = PREFIX / "share" / "crossmodal_ros" / "config" if PREFIX is not None else ROOT / "config"
    path = base / name
    assert path.is_file(), path
    return str(path)


def _env() -> dict:
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # conftest set the domain already
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_where_the_executables_come_from():
    """Under colcon the install space is used (and found through the ament index)."""
    if os.environ.get("CROSSMODAL_EXPECT_INSTALL_SPACE"):
        assert PREFIX is not None, "crossmodal_ros is not in the ament index"
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("crossmodal_ros"))
        for rel in ("package.xml", "launch/crossmodal.launch.py", "config/sensors_playback.yaml",
                    "config/sensors.yaml", "config/nexus.yaml", "models/nexus_digits.pt"):
            assert (share / rel).is_file(), rel
        from crossmodal_ros.paths import default_checkpoint

        assert default_checkpoint().is_file()
    for name in EXECUTABLES:
        executable(name)


@pytest.mark.parametrize("name", EXECUTABLES)
def test_help_prints_parameters_and_exits_0(name):
    r = subprocess.run([executable(name), "--help"], capture_output=True, text=True, timeout=120,
                       env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("usage:"), r.stdout[:200]
    if name in SENSORS + ("nexus_node",):
        assert "ROS parameters" in r.stdout
        assert "qos_reliability" in r.stdout  # every node has it, with a description
        line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("qos_reliability"))
        desc = r.stdout.splitlines()[r.stdout.splitlines().index(line) + 1]
        assert len(desc.strip()) > 10


def test_profiles_are_one_launch_argument_apart():
    """Playback (default) selects config/sensors_playback.yaml, devices config/sensors.yaml."""
    src = (ROOT / "launch" / "crossmodal.launch.py").read_text()
    assert 'DeclareLaunchArgument("profile", default_value="playback", choices=["playback", "devices"]' in src
    assert 'if_value=os.path.join(share, "config", "sensors.yaml")' in src
    assert 'else_value=os.path.join(share, "config", "sensors_playback.yaml")' in src
    playback = yaml.safe_load(Path(config_file("sensors_playback.yaml")).read_text())
    devices = yaml.safe_load(Path(config_file("sensors.yaml")).read_text())
    for node in SENSORS:
        assert playback[f"/**/{node}"]["ros__parameters"]["source"] == "dataset"
        assert devices[f"/**/{node}"]["ros__parameters"]["source"] != "dataset"
    assert devices["/**/microphone_node"]["ros__parameters"]["vad"] == "silero"


@pytest.mark.parametrize("name", ["camera_node", "microphone_node", "crossmodal_inference"])
def test_start_up_failure_is_one_clear_error(name):
    """An unexpected error while the node starts (here a parameter of the wrong type) is reported
    as itself, with exit code 1, not as "AttributeError: ... has no attribute 'capture'".
    """
    r = subprocess.run([executable(name), "--ros-args", "-p", "qos_depth:=abc"],
                       capture_output=True, text=True, timeout=120, env=_env())
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-2000:]
    assert "AttributeError" not in out and "Traceback" not in out, out[-2000:]
    assert "qos_depth" in out


@pytest.mark.parametrize("override, reason", [("checkpoint:=/nonexistent/model.pt", "does not exist"),
                                              ("device:=cuda:99", "cuda")])
def test_inference_node_exits_when_its_autostart_configure_fails(override, reason):
    """With ``autostart: true`` (the default and the launch file's) nothing would configure the
    node later, so a failed configure ends the process with status 1 and the reason, where it
    used to keep spinning, unconfigured and silent (launch saw a healthy process).
    """
    # heartbeat_hz:=2 is a whole number for a double parameter: accepted as 2.0 (rclpy alone would
    # stop the process with a wrong-type error before any configure)
    r = subprocess.run([executable("crossmodal_inference"), "--ros-args", "-p", override, "-p", "heartbeat_hz:=2"],
                       capture_output=True, text=True, timeout=120, env=_env())
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-2000:]
    assert "configure failed" in out and reason in out.lower() and "exiting with status 1" in out, out[-2000:]
    assert "Traceback" not in out, out[-2000:]


def test_default_parameter_files_start_every_node_without_devices():
    """crossmodal.launch.py's default profile, process by process: the three sensor nodes with
    config/sensors_playback.yaml and nexus_node with config/nexus.yaml. Every node stays up and
    the inference node publishes stamped latents fusing all three sensors.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from crossmodal_ros.ros.conversions import latent_from_stamped

    sensors_params, nexus_params = config_file("sensors_playback.yaml"), config_file("nexus.yaml")
    cmds = {name: [executable(name), "--ros-args", "-r", f"__node:={name}",
                   "--params-file", sensors_params] for name in SENSORS}
    cmds["nexus_node"] = [executable("nexus_node"), "--ros-args", "-r", "__node:=nexus",
                          "--params-file", nexus_params, "-p", "device:=cpu"]
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, env=_env(), start_new_session=True)
             for name, cmd in cmds.items()}
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    got = []
    try:
        node = rclpy.create_node("profile_listener", context=ctx)
        executor.add_node(node)
        node.create_subscription(JointState, "/nexus/latent_stamped", got.append,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        deadline = time.monotonic() + 120.0

        def full() -> bool:
            return any(set(latent_from_stamped(m).fused) >= {"image", "audio", "trajectory"}
                       for m in got)

        while time.monotonic() < deadline and not full():
            executor.spin_once(timeout_sec=0.1)
            dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
            assert not dead, f"exited: {dead}"
        assert full(), f"{len(got)} latents, none fusing all three sensors"
        executor.spin_once(timeout_sec=0.5)
        dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
        assert not dead, f"exited: {dead}"
        node.destroy_node()
    finally:
        executor.shutdown()
        rclpy.shutdown(context=ctx)
        logs = {}
        for name, p in procs.items():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        for name, p in procs.items():
            try:
                logs[name] = p.communicate(timeout=20)[0]
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                logs[name] = p.communicate()[0]
    for name, log in logs.items():
        assert "Traceback" not in log, f"{name}:\n{log[-3000:]}"
