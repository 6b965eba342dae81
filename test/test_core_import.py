# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The ROS-free core imports in a Python where importing rclpy or any ROS message package fails.

CORE names every module outside ``crossmodal_ros/ros``: a module that is missing fails the
import, and a module added without being listed here fails :func:`test_core_list_is_complete`.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "crossmodal_ros"

CORE = [
    "crossmodal_ros",
    "crossmodal_ros.augment",
    "crossmodal_ros.bags",
    "crossmodal_ros.bags.dataset",
    "crossmodal_ros.bags.evaluate",
    "crossmodal_ros.bags.format",
    "crossmodal_ros.bags.reader",
    "crossmodal_ros.checkpoint",
    "crossmodal_ros.codecs",
    "crossmodal_ros.data",
    "crossmodal_ros.data.build_digits",
    "crossmodal_ros.data.digits",
    "crossmodal_ros.data.features",
    "crossmodal_ros.data.mhd",
    "crossmodal_ros.data.preview",
    "crossmodal_ros.engine",
    "crossmodal_ros.evaluation",
    "crossmodal_ros.evaluation.evaluate",
    "crossmodal_ros.evaluation.instruments",
    "crossmodal_ros.evaluation.metrics",
    "crossmodal_ros.evaluation.plots",
    "crossmodal_ros.evaluation.robustness",
    "crossmodal_ros.evaluation.seed_methods",
    "crossmodal_ros.evaluation.train_instruments",
    "crossmodal_ros.fusion_policy",
    "crossmodal_ros.fusion_store",
    "crossmodal_ros.griffin_lim",
    "crossmodal_ros.messages",
    "crossmodal_ros.modalities",
    "crossmodal_ros.models",
    "crossmodal_ros.models.alignment",
    "crossmodal_ros.models.associator",
    "crossmodal_ros.models.base",
    "crossmodal_ros.models.baselines",
    "crossmodal_ros.models.modern",
    "crossmodal_ros.models.fast",
    "crossmodal_ros.models.latent_constraint",
    "crossmodal_ros.models.networks",
    "crossmodal_ros.models.onnx_path",
    "crossmodal_ros.models.nexus",
    "crossmodal_ros.models.pair",
    "crossmodal_ros.models.phased",
    "crossmodal_ros.paths",
    "crossmodal_ros.rl",
    "crossmodal_ros.rl.env",
    "crossmodal_ros.rl.experiment",
    "crossmodal_ros.rl.latents",
    "crossmodal_ros.rl.policy",
    "crossmodal_ros.rl.train",
    "crossmodal_ros.sensors",
    "crossmodal_ros.sensors.outages",
    "crossmodal_ros.sensors.playback",
    "crossmodal_ros.sensors.segmenters",
    "crossmodal_ros.sim",
    "crossmodal_ros.training",
    "crossmodal_ros.training.config",
    "crossmodal_ros.training.data",
    "crossmodal_ros.training.distributed",
    "crossmodal_ros.training.loop",
    "crossmodal_ros.training.stages",
    "crossmodal_ros.training.train",
    "crossmodal_ros.units",
    "crossmodal_ros.units.audio",
    "crossmodal_ros.units.blocks",
    "crossmodal_ros.units.image",
    "crossmodal_ros.units.label",
    "crossmodal_ros.units.losses",
    "crossmodal_ros.units.registry",
    "crossmodal_ros.units.trajectory",
]

#: what the core must never need: rclpy and the ROS message / interface packages
ROS_ROOTS = ("rclpy", "rosidl_runtime_py", "rosbag2_py", "builtin_interfaces", "diagnostic_msgs",
             "geometry_msgs", "lifecycle_msgs", "nav_msgs", "rcl_interfaces", "rosgraph_msgs",
             "sensor_msgs", "std_msgs", "crossmodal_ros.ros")

SCRIPT = textwrap.dedent(
    """
    import importlib, sys

    BLOCKED = tuple(sys.argv[2].split(","))

    class BlockRos:
        def find_spec(self, name, path=None, target=None):
            if name in BLOCKED or name.startswith(tuple(b + "." for b in BLOCKED)):
                raise ImportError(f"{name} is blocked: the core must not import ROS")
            return None

    sys.meta_path.insert(0, BlockRos())
    for name in sys.argv[1].split(","):
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m in BLOCKED or m.startswith(tuple(b + "." for b in BLOCKED)))
    assert not leaked, leaked
    print("ok", len(sys.argv[1].split(",")))
    """
)


def _run(modules, timeout=300):
    return subprocess.run([sys.executable, "-c", SCRIPT, ",".join(modules), ",".join(ROS_ROOTS)],
                          capture_output=True, text=True, timeout=timeout)


def test_core_imports_without_ros():
    res = _run(CORE)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == f"ok {len(CORE)}"


def test_core_list_is_complete():
    """CORE equals the .py modules found under crossmodal_ros/ outside ros/ (none forgotten)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if parts[:2] != ("crossmodal_ros", "ros"):
            found.add(".".join(parts))
    assert set(CORE) == found, {"not listed": sorted(found - set(CORE)), "absent": sorted(set(CORE) - found)}
    assert len(CORE) == len(set(CORE))


def test_blocker_really_blocks():
    """The hook used above makes `import rclpy` and a message package fail (so the test can fail)."""
    for name in ("rclpy", "sensor_msgs.msg", "crossmodal_ros.ros.qos"):
        res = _run([name], timeout=120)
        assert res.returncode != 0 and "blocked" in res.stderr, name
