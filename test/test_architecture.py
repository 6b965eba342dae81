# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Architecture checks: the import contracts in setup.cfg (import-linter) hold for this checkout.

The contracts: the core (everything outside ``crossmodal_ros.ros``) imports neither the ROS
shell nor rclpy / message packages; modules import only from lower layers; no import cycles
between sibling modules or subpackages.
"""
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    """A console script of this Python's environment (the venv's bin dir), else from PATH."""
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; install the pinned requirements (requirements.txt)")
    return found


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{pythonpath}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_contracts_hold():
    res = _lint_imports(ROOT, ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_forbidden_contract_names_every_core_module():
    """The ROS-free contract lists every top-level core module, so a new one cannot slip by."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = cfg["importlinter:contract:core-without-ros"]["source_modules"].split()
    package = ROOT / "crossmodal_ros"
    found = {f"crossmodal_ros.{p.stem if p.is_file() else p.name}" for p in package.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert sorted(listed) == sorted(found - {"crossmodal_ros.ros"})


def test_contract_violation_is_reported(tmp_path):
    """lint-imports fails on a toy package whose core imports its ROS layer (the check can fail)."""
    pkg = tmp_path / "toy"
    (pkg / "ros").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ros" / "__init__.py").write_text("")
    (pkg / "core.py").write_text("import toy.ros\n")
    (tmp_path / "setup.cfg").write_text(
        "[importlinter]\nroot_package = toy\n\n[importlinter:contract:c]\nname = core without ros\n"
        "type = forbidden\nsource_modules =\n    toy.core\nforbidden_modules =\n    toy.ros\n")
    res = _lint_imports(tmp_path, tmp_path)
    assert res.returncode != 0 and "BROKEN" in res.stdout.upper(), res.stdout[-2000:] + res.stderr[-2000:]


@pytest.mark.parametrize("module, limit", [("crossmodal_ros/ros/inference_node.py", 400),
                                           ("crossmodal_ros/training/train.py", 350)])
def test_thin_node_and_trainer(module, limit):
    """The node holds parameters, lifecycle and wiring; the trainer only runs stages (issue 12)."""
    lines = len((ROOT / module).read_text().splitlines())
    assert lines < limit, f"{module} has {lines} lines (limit {limit}): move logic into the core"


def test_ros_package_holds_only_ros_modules():
    """Every module under crossmodal_ros/ros/ imports rclpy or a message package (or the node
    it is an alias of); ROS-free logic belongs to the core.
    """
    ros = ("import rclpy", "from rclpy", "_msgs.msg import", "from rcl_interfaces", "inference_node import")
    for path in sorted((ROOT / "crossmodal_ros" / "ros").glob("*.py")):
        if path.name == "__init__.py":
            continue
        text = path.read_text()
        assert any(key in text for key in ros), f"{path.name} imports no ROS: move it into the core"
