# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Static checks of the launch and parameter files (``ros2 launch`` is not installed here).

Every launch file compiles; every ``executable=`` is a console script of setup.py; every config
file it names exists; every LaunchConfiguration it reads is declared; every parameter file is
valid YAML in the ROS 2 layout and names only parameters the nodes declare.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
# ROS parameter files (config/ also holds the training configurations of crossmodal-train)
CONFIG_FILES = [ROOT / "config" / f for f in ("nexus.yaml", "sensors.yaml", "sensors_playback.yaml",
                                               "replay.yaml", "demo.yaml")]

pytestmark = pytest.mark.colcon


def _console_scripts() -> set[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "=" in node.value \
                and ":" in node.value:
            names.add(node.value.split("=")[0].strip())
    return names


def _calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                yield node


def _kw(call, key):
    for kw in call.keywords:
        if kw.arg == key:
            return kw.value
    return None


def _first_str(call):
    if call.args and isinstance(call.args[0], ast.Constant):
        return call.args[0].value
    return None


def test_expected_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"crossmodal.launch.py", "nexus.launch.py", "replay.launch.py"}
    assert all(p.is_file() for p in CONFIG_FILES)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_is_consistent(path):
    src = path.read_text()
    compile(src, str(path), "exec")
    tree = ast.parse(src)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    scripts = _console_scripts()
    executables = []
    for call in list(_calls(tree, "Node")) + list(_calls(tree, "LifecycleNode")):
        exe = _kw(call, "executable")
        pkg = _kw(call, "package")
        assert isinstance(exe, ast.Constant), f"{path.name}: executable must be a literal"
        assert isinstance(pkg, ast.Constant) and pkg.value == "crossmodal_ros"
        assert exe.value in scripts, f"{path.name}: {exe.value} is not a console script of setup.py"
        executables.append(exe.value)
    assert executables
    # config files named in os.path.join(share, "config", "<file>")
    for call in _calls(tree, "join"):
        parts = [a.value for a in call.args if isinstance(a, ast.Constant)]
        if "config" in parts:
            name = parts[-1]
            assert (ROOT / "config" / name).is_file(), f"{path.name}: config/{name} does not exist"
    declared = {_first_str(c) for c in _calls(tree, "DeclareLaunchArgument")}
    used = {_first_str(c) for c in _calls(tree, "LaunchConfiguration")}
    assert used, f"{path.name} reads no launch arguments"
    assert used <= declared, f"{path.name}: undeclared launch arguments {used - declared}"
    for call in _calls(tree, "DeclareLaunchArgument"):
        desc = _kw(call, "description")
        assert isinstance(desc, ast.Constant) and desc.value.strip(), f"{_first_str(call)} has no description"
    assert "eval(" not in src


def test_crossmodal_launch_has_optional_sensors_and_autostart():
    tree = ast.parse((ROOT / "launch" / "crossmodal.launch.py").read_text())
    conditioned = {
        _kw(c, "executable").value for c in _calls(tree, "Node") if _kw(c, "condition") is not None
    }
    assert conditioned == {"camera_node", "microphone_node", "pen_node"}
    assert [_kw(c, "executable").value for c in _calls(tree, "LifecycleNode")] == ["crossmodal_inference"]
    src = (ROOT / "launch" / "replay.launch.py").read_text()
    assert re.search(r'"use_sim_time":\s*True', src)


def _declared_parameters(module_path: Path) -> set[str]:
    """Parameter names a node module declares (declare(...) / declare_parameter(...) / PARAMETERS)."""
    tree = ast.parse(module_path.read_text())
    names = set()
    for call in list(_calls(tree, "declare")) + list(_calls(tree, "declare_parameter")):
        for a in call.args:
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                names.add(a.value)
                break
    return names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_config_files_parse(path):
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and data
    if path.name == "demo.yaml":
        assert {"demo", "nexus"} <= set(data)
        return
    for node_key, section in data.items():
        assert node_key.startswith("/"), f"{path.name}: {node_key} should be a node path like /**"
        assert set(section) == {"ros__parameters"}


@pytest.mark.parametrize("name", ["sensors.yaml", "sensors_playback.yaml"])
def test_sensor_parameter_file_names_declared_parameters(name):
    data = yaml.safe_load((ROOT / "config" / name).read_text())
    base = _declared_parameters(ROOT / "crossmodal_ros" / "ros" / "sensor_base.py")
    for key, section in data.items():
        node = key.rsplit("/", 1)[-1]
        declared = _declared_parameters(ROOT / "crossmodal_ros" / "ros" / f"{node}.py") | base
        unknown = set(section["ros__parameters"]) - declared
        assert not unknown, f"config/{name} {node}: unknown parameters {unknown}"


def test_nexus_parameter_file_names_declared_parameters():
    from crossmodal_ros.ros.nexus_node import PARAMETERS

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    for name in ("nexus.yaml", "replay.yaml"):
        params = yaml.safe_load((ROOT / "config" / name).read_text())["/**"]["ros__parameters"]
        unknown = set(flat(params)) - set(PARAMETERS) - {"use_sim_time"}
        assert not unknown, f"config/{name}: unknown parameters {unknown}"
