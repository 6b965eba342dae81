# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The ament_python package is well formed: package.xml, setup.py data files, console scripts.

colcon is not available here, so these checks read the files a colcon build consumes and build a
real wheel to see that the shipped share files (launch, config, models) travel with the package.
"""
import ast
import importlib
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.colcon, pytest.mark.slow]


def _setup_call():
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup":
            return {kw.arg: kw.value for kw in node.keywords}
    raise AssertionError("setup.py has no setup(...) call")


def test_package_xml_format3_with_real_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "crossmodal_ros"
    assert root.findtext("license") == "Apache-2.0"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    for d in ("rclpy", "std_msgs", "sensor_msgs", "nav_msgs", "geometry_msgs", "diagnostic_msgs",
              "lifecycle_msgs", "python3-numpy", "python3-opencv"):
        assert d in deps, d
    assert root.find("export/build_type").text == "ament_python"
    assert (ROOT / "resource" / "crossmodal_ros").is_file()


def test_console_scripts_resolve_to_callables():
    scripts = ast.literal_eval(_setup_call()["entry_points"])["console_scripts"]
    assert len(scripts) >= 10
    for line in scripts:
        name, target = (s.strip() for s in line.split("="))
        module, func = target.split(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{name}: module {module} missing"
        src = Path(spec.origin).read_text()
        assert f"def {func}(" in src, f"{name}: {module} has no {func}()"


def test_colcon_test_finds_pytest():
    """Colcon runs pytest only when setup.py names it in extras_require["test"] (setuptools >= 72
    dropped tests_require; with it colcon fell back to unittest and ran 0 tests).
    """
    call = _setup_call()
    assert "tests_require" not in call
    extras = ast.literal_eval(call["extras_require"])
    assert "pytest" in extras["test"]
    assert "colcon:" in (ROOT / "setup.cfg").read_text()  # the marker of the CI subset


def test_setup_cfg_installs_scripts_where_ros2_run_looks():
    text = (ROOT / "setup.cfg").read_text()
    assert "script_dir=$base/lib/crossmodal_ros" in text
    assert "install_scripts=$base/lib/crossmodal_ros" in text


def test_wheel_carries_share_files_and_dataset(tmp_path):
    """Build a real wheel (no isolation, no deps) and look inside it."""
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--quiet", "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("crossmodal_ros-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if ".data/data/share/crossmodal_ros/" in n]
    for want in ("package.xml", "launch/crossmodal.launch.py", "launch/nexus.launch.py",
                 "launch/replay.launch.py", "config/nexus.yaml", "models/nexus_digits.pt",
                 "models/instruments_digits.pt"):
        assert any(n.endswith("share/crossmodal_ros/" + want) for n in data), want
    assert any(n.endswith("share/ament_index/resource_index/packages/crossmodal_ros") for n in names)
    assert any(n.startswith("crossmodal_ros/data/digits/") and n.endswith(".flac") for n in names)
    assert not any("/test/" in n or n.startswith("test/") for n in names)


def test_make_refuses_a_venv_of_another_python(tmp_path):
    """A `.venv` left by another Python version (the ROS 2 wheels need 3.11) stops `make setup`
    before pip runs, with a message naming the fix; a 3.11 interpreter passes the same check.
    """
    import shutil

    if shutil.which("make") is None:
        pytest.skip("no make")
    fake = tmp_path / "venv312" / "bin"
    fake.mkdir(parents=True)
    # a python that reports 3.12 and runs `-c CODE` with the real interpreter
    (fake / "python").write_text(
        "#!/bin/sh\n"
        f"exec {sys.executable} -c \"import sys; sys.version_info = (3, 12, 0, 'final', 0); "
        "sys.version = '3.12.0 (fake)'; exec(sys.argv[1])\" \"$2\"\n")
    (fake / "python").chmod(0o755)
    done = subprocess.run(["make", "-C", str(ROOT), "setup", f"VENV={tmp_path / 'venv312'}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "runs Python 3.12.0" in done.stderr + done.stdout and "make clean-venv" in done.stderr + done.stdout
    assert "installing pinned dependencies" not in done.stdout
    # the real interpreter passes the check (3.11 is what this suite runs on)
    check = [line for line in (ROOT / "Makefile").read_text().splitlines() if "sys.version_info[:2] ==" in line]
    assert len(check) == 1
    code = check[0].split("-c '", 1)[1].rsplit("'", 1)[0].replace("$(VENV)", ".venv")
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
