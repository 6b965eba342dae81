# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Every Python file of the package, tests, tools, benchmarks, examples and launch files starts with
the Apache-2.0 SPDX header and a copyright line (after a shebang line, if any).
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRS = ("crossmodal_ros", "test", "tools", "benchmarks", "launch", "examples")
SPDX = "# SPDX-License-Identifier: Apache-2.0"
COPYRIGHT = re.compile(r"# Copyright (19|20)\d\d(-(19|20)\d\d)? The crossmodal_ros authors$")


def header_problem(text: str) -> str | None:
    """Why ``text`` lacks the header, or None when it has it."""
    lines = text.split("\n")
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    if len(lines) < 2 or lines[0] != SPDX:
        return f"first line must be {SPDX!r}"
    if not COPYRIGHT.match(lines[1]):
        return "second line must be '# Copyright <year> The crossmodal_ros authors'"
    return None


def python_files() -> list[Path]:
    files = [ROOT / "setup.py"]
    for d in DIRS:
        files += [p for p in (ROOT / d).rglob("*.py") if not any(part.startswith(".") for part in p.parts)]
    return sorted(files)


def test_every_python_file_has_the_licence_header():
    files = python_files()
    assert len(files) > 50  # the scan found the tree
    bad = {str(p.relative_to(ROOT)): why for p in files if (why := header_problem(p.read_text()))}
    assert not bad, bad


def test_header_check_rejects_missing_or_wrong_headers():
    good = f"{SPDX}\n# Copyright 2026 The crossmodal_ros authors\n\"\"\"Doc.\"\"\"\n"
    assert header_problem(good) is None
    assert header_problem("#!/usr/bin/env python3\n" + good) is None
    assert header_problem('"""Doc."""\n') is not None
    assert header_problem("# SPDX-License-Identifier: MIT\n# Copyright 2026 The crossmodal_ros authors\n") is not None
    assert header_problem(f"{SPDX}\n# Copyright someone else\n") is not None
