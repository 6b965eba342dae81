# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Lint as a test: ruff (config in ruff.toml: pyflakes, pycodestyle, pydocstyle/PEP 257) is clean."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["crossmodal_ros", "test", "tools", "benchmarks", "launch", "examples", "setup.py"]


def _ruff() -> str:
    exe = Path(sys.executable).parent / "ruff"
    found = str(exe) if exe.exists() else shutil.which("ruff")
    if not found:
        pytest.fail("ruff is not installed; install the pinned requirements (requirements.txt)")
    return found


def _check(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([_ruff(), "check", "--no-cache", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_ruff_is_clean():
    res = _check(*PATHS)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]


def test_ruff_reports_a_violation(tmp_path):
    """The same configuration flags a bad file (the check above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text('"""Module."""\nimport os\n\n\ndef f():\n    """no period, lower case"""\n    return 1\n')
    res = _check("--config", str(ROOT / "ruff.toml"), str(bad), cwd=tmp_path)
    assert res.returncode != 0
    assert "F401" in res.stdout and "D400" in res.stdout, res.stdout
