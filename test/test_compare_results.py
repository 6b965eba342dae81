# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""tools/compare_results.py: mean ± std over seeds, robustness rows, and a computed 2-std verdict."""
from __future__ import annotations

import json
import pathlib

import pytest


@pytest.fixture(scope="module")
def tool(load_script):
    return load_script("tools/compare_results.py")


def _eval_result(folder: pathlib.Path, mean: float, traj3: float) -> str:
    summary = {t: {"1": {"accuracy_mean": 0.9}, "3": {"accuracy_mean": traj3 if t == "trajectory" else 0.99}}
               for t in ("image", "audio", "trajectory", "label")}
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"summary": summary, "mean_cross_accuracy": mean}))
    return str(folder)


def _rob_result(folder: pathlib.Path, acc: float) -> str:
    rows = [{"id": "camera/a", "name": "row a", "n": 300, "accuracy": acc},
            {"id": "mic/b", "name": "row b", "n": 150, "accuracy": acc - 0.1},
            {"id": "mic/skipped", "name": "skipped", "n": 0, "accuracy": None}]
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"rows": rows}))
    return str(folder)


def test_seeds_give_mean_and_std_and_the_verdict_follows_the_numbers(tool, tmp_path, capsys):
    a = ",".join(_eval_result(tmp_path / f"a{i}", m, 0.98) for i, m in enumerate((0.970, 0.972, 0.974)))
    b = ",".join(_eval_result(tmp_path / f"b{i}", m, 0.99) for i, m in enumerate((0.950, 0.951, 0.952)))
    c = ",".join(_eval_result(tmp_path / f"c{i}", m, 0.99) for i, m in enumerate((0.970, 0.975, 0.980)))
    ra = ",".join(_rob_result(tmp_path / f"ra{i}", v) for i, v in enumerate((0.90, 0.91, 0.92)))
    rb = ",".join(_rob_result(tmp_path / f"rb{i}", v) for i, v in enumerate((0.80, 0.80, 0.81)))
    assert tool.main([f"A={a}", f"B={b}", f"C={c}", "--robustness", f"A={ra}", f"B={rb}", "--out",
                      str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| A | 3 |" in text and "**97.2 ± 0.2**" in text and "98.0 ± 0.0" in text
    assert "| row a | 300 | 91.0 ± 1.0 | 80.3 ± 0.6 |" in text and "skipped" not in text
    lines = [ln for ln in text.splitlines() if ln.startswith("- ")]
    assert any("vs B" in ln and "lead +2.10" in ln and ": A" in ln and "more than 2 std" in ln
               and "not more" not in ln for ln in lines)
    assert any("vs C" in ln and "not more than 2 std" in ln for ln in lines)   # within C's spread
    assert any("robustness rows mean" in ln and "vs B" in ln and "not more" not in ln for ln in lines)


def test_one_seed_has_no_std(tool, tmp_path):
    a = _eval_result(tmp_path / "a", 0.97, 0.98)
    b = _eval_result(tmp_path / "b", 0.96, 0.98)
    b3 = ",".join(_eval_result(tmp_path / f"b3_{i}", m, 0.98) for i, m in enumerate((0.95, 0.96, 0.97)))
    tool.main([f"A={a}", f"B={b}", f"C={b3}", "--out", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("- ")]
    assert "**97.0**" in text
    # one seed on each side: no spread to test the lead against, so no verdict (a 2-std test
    # against 0 would call any gap significant)
    assert any("vs B" in ln and "no verdict" in ln and "2 std" not in ln for ln in lines), lines
    # one seed on one side: the other's spread decides, and the line says so
    assert any("vs C" in ln and "one seed for A: no std from it" in ln for ln in lines), lines


def test_different_sample_counts_are_flagged(tool, tmp_path):
    def with_n(folder, n):
        path = pathlib.Path(_eval_result(folder, 0.97, 0.98)) / "results.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "n_samples": n}))
        return str(folder)

    same = tool.main([f"A={with_n(tmp_path / 'a', 3498)}", f"B={with_n(tmp_path / 'b', 3498)}",
                      "--out", str(tmp_path / "same.md")])
    assert same == 0 and "different numbers of samples" not in (tmp_path / "same.md").read_text()
    tool.main([f"A={with_n(tmp_path / 'c', 3498)}", f"B={with_n(tmp_path / 'd', 300)}",
               "--out", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    assert "different numbers of samples" in text and "A 1 seed(s): 3498" in text and "B 1 seed(s): 300" in text
    # one entry whose seeds were evaluated on different counts, the others alike: flagged too
    mixed = f"{with_n(tmp_path / 'e', 3498)},{with_n(tmp_path / 'f', 300)}"
    tool.main([f"A={mixed}", f"B={mixed}", "--out", str(tmp_path / "m.md")])
    assert "A 2 seed(s): 300, 3498" in (tmp_path / "m.md").read_text()


def test_weak_classes_are_listed_per_seed(tool, tmp_path):
    def rows(bad: bool) -> list:
        acc = {str(k): 1.0 for k in range(10)}
        out = []
        for given in ("image", "label"):
            cls = dict(acc, **({"7": 0.1 if given == "image" else 0.0} if bad else {}))
            out.append({"kind": "cross", "given_name": given, "target": "audio", "per_class_accuracy": cls,
                        "per_class_confused_with": {k: (6 if k == "7" and bad else None) for k in cls}})
        return out

    folders = []
    for i, bad in enumerate((False, True)):
        d = tmp_path / f"s{i}"
        d.mkdir()
        summary = {t: {"1": {"accuracy_mean": 0.9}, "3": {"accuracy_mean": 0.99}} for t in ("image", "audio",
                                                                                           "trajectory", "label")}
        (d / "results.json").write_text(json.dumps({"summary": summary, "mean_cross_accuracy": 0.97,
                                                    "rows": rows(bad)}))
        folders.append(str(d))
    old = _eval_result(tmp_path / "old", 0.96, 0.98)
    assert tool.main([f"A={','.join(folders)}", f"B={old}", "--weak-classes", "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "- A: s1: audio class 7 (judged as 6) in 2 rows, 0.0-10.0 %" in text
    assert "s0" not in text.split("- A:")[1].splitlines()[0]
    assert "- B: old: no per-class rows" in text
    tool.main([f"A={folders[0]}", "--weak-classes", "--out", str(tmp_path / "u.md")])
    assert "- A: none" in (tmp_path / "u.md").read_text()
