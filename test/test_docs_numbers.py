# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The README's result tables quote the generated result files: a retrained model or a rerun
suite without a README update fails here instead of leaving stale numbers in the user guide.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EVAL = ROOT / "docs" / "results" / "nexus_digits" / "results.json"
ROBUST = ROOT / "docs" / "results" / "robustness" / "results.json"

#: README robustness-table row (start of its first cell) -> result ids of the shipped-model column
ROBUSTNESS_ROWS = {
    "camera: digit in a 640x480 frame": ["camera/framed-all"],
    "camera: held-out MNIST digits in frames": ["camera/mnist-framed"],
    "microphone: clean recordings": ["microphone/clean"],
    "microphone: shifted +-100 ms": ["microphone/shift-100ms", "microphone/shift+100ms"],
    "microphone: pink noise 20 / 10 dB": ["microphone/pink-20dB", "microphone/pink-10dB"],
    "microphone: babble 20 / 10 dB": ["microphone/babble-20dB", "microphone/babble-10dB"],
    "microphone: held-out espeak-ng voices": ["microphone/espeak"],
    "microphone: held-out speaker theo": ["microphone/speaker-theo"],
    "microphone: live stream through silero-vad, every utterance": ["microphone/live-pink-20dB-silero"],
    "microphone: the same stream with the recordings' own speech levels":
        ["microphone/live-pink-20dB-as-recorded-silero"],
    "pen: rotated +-20 degrees": ["pen/rot-20", "pen/rot+20"],
}


def _table_row(text: str, start: str) -> list[str]:
    rows = [line for line in text.splitlines() if line.startswith(f"| {start}")]
    assert len(rows) == 1, f"README: expected one table row starting {start!r}, found {len(rows)}"
    return [c.strip() for c in rows[0].strip().strip("|").split("|")]


def _numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+\.\d", cell)]


def test_shipped_model_row_quotes_the_evaluation():
    res = json.loads(EVAL.read_text())
    cells = _table_row(README.read_text(), "Nexus, shipped")
    expected = [100 * res["summary"][m][n]["accuracy_mean"]
                for n in ("1", "3") for m in ("image", "audio", "trajectory", "label")]
    expected.append(100 * res["mean_cross_accuracy"])
    got = [_numbers(c)[0] for c in cells[1:]]
    assert got == pytest.approx(expected, abs=0.051), "README 'Nexus, shipped' row differs from " + str(EVAL)


@pytest.mark.parametrize("start", sorted(ROBUSTNESS_ROWS))
def test_robustness_rows_quote_the_suite(start):
    rows = {r["id"]: r for r in json.loads(ROBUST.read_text())["rows"]}
    cells = _table_row(README.read_text(), start)
    expected = [100 * rows[i]["accuracy"] for i in ROBUSTNESS_ROWS[start]]
    assert _numbers(cells[-1]) == pytest.approx(expected, abs=0.051), f"README row {start!r} differs from {ROBUST}"
    assert cells[1].replace(",", "") == str(rows[ROBUSTNESS_ROWS[start][0]]["n"])


def test_the_check_fails_on_a_stale_number(tmp_path, monkeypatch):
    shipped = f"| **{100 * json.loads(EVAL.read_text())['mean_cross_accuracy']:.1f}** |"
    assert shipped in README.read_text()
    stale = README.read_text().replace(shipped, "| **12.3** |")
    path = tmp_path / "README.md"
    path.write_text(stale)
    monkeypatch.setattr(sys.modules[__name__], "README", path)
    with pytest.raises(AssertionError):
        test_shipped_model_row_quotes_the_evaluation()


AUDIO_PATH = ROOT / "docs" / "results" / "audio_path"


def test_audio_path_summary_quotes_the_generated_tables():
    """docs/results/audio_path/README.md's per-method table is the tool's table (bold aside)."""
    generated = (AUDIO_PATH / "tables.md").read_text()
    text = (AUDIO_PATH / "README.md").read_text()
    section4 = text.split("## 4.")[1].split("## 5.")[0]
    rows = [line.replace("**", "") for line in section4.splitlines() if line.startswith("| ") and "±" in line]
    assert len(rows) == 4
    for row in rows:
        assert row in generated, f"audio_path/README.md row not in tables.md: {row}"
    # section 5's per-split means over seeds are the comparison tool's
    section5 = text.split("## 5.")[1].split("## What this changes")[0]
    for split in ("test", "validation"):
        cells = [line.replace("**", "").split("|")[-2].strip() for line in section5.splitlines()
                 if line.startswith(f"| {split}, ")]
        assert len(cells) == 2, split
        made = (AUDIO_PATH / f"audio_data_trial_{'val' if split == 'validation' else 'test'}.md").read_text()
        for cell in cells:
            assert f"**{cell}**" in made, (split, cell)


def test_int8_path_summary_quotes_its_reports():
    """docs/results/int8_path/README.md (the node's default path on AVX512-BF16/AMX CPUs) quotes
    its two reports and the committed float-path robustness report.
    """
    folder = ROOT / "docs" / "results" / "int8_path"
    text = (folder / "README.md").read_text()
    ev = json.loads((folder / "eval" / "results.json").read_text())
    assert ev["header"]["inference path"] == "int8" and ev["n_samples"] == 3498
    assert f"**{100 * ev['mean_cross_accuracy']:.2f} %**" in text

    def label_mean(path):
        rows = [r for r in json.loads(path.read_text())["rows"] if r.get("n")]
        return len(rows), sum(r["n"] for r in rows), 100 * sum(r["accuracy"] for r in rows) / len(rows)

    n, inputs, int8 = label_mean(folder / "robustness" / "results.json")
    _, _, fast = label_mean(ROBUST)
    assert json.loads((folder / "robustness" / "results.json").read_text())["config"]["inference_path"] == "fast-int8"
    assert f"**{int8:.2f} %** over {n} rows ({inputs:,} inputs)" in text
    assert f"{fast:.2f} % ([`../robustness/`]" in text
