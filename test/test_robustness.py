# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The robustness suite (``crossmodal-eval --robustness``) on tiny settings.

Uses the shipped checkpoint and instruments and the embedded digits dataset; skipped when the
dataset cannot be loaded (e.g. files of another format version). ``CROSSMODAL_DIGITS_ROOT``
points the suite at another copy of the dataset.
"""
import json
import os

import numpy as np
import pytest

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

ROWS = ("camera/as-shipped,camera/framed-40-60-dark_on_light,microphone/clean,microphone/white-10dB,"
        "microphone/live-clean-silero,pen/as-stored,pen/jitter-3pct")
DATA_ROOT = os.environ.get("CROSSMODAL_DIGITS_ROOT") or None


@pytest.fixture(scope="module")
def parts():
    from crossmodal_ros.data.digits import DatasetError, load_digits
    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.evaluation.instruments import Instruments
    from crossmodal_ros.paths import default_checkpoint

    ckpt = default_checkpoint()
    if not ckpt.is_file():
        pytest.skip(f"shipped checkpoint {ckpt} missing")
    try:
        load_digits("test", DATA_ROOT)
    except DatasetError as exc:
        pytest.skip(f"digits dataset unavailable: {exc}")
    engine = FusionEngine.from_checkpoint(ckpt, device="cpu")
    return engine, Instruments.load(None, "cpu")


def _numbers(result):
    return [(r["id"], r.get("n"), r.get("correct"), r.get("dropped"), r.get("cross")) for r in result["rows"]]


def test_wilson_interval():
    from crossmodal_ros.evaluation.robustness import wilson_interval

    assert wilson_interval(0, 0) == (None, None)
    lo, hi = wilson_interval(8, 10)
    assert 0.49 < lo < 0.5 and 0.94 < hi < 0.95  # textbook values 0.490, 0.943
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and 0.69 < lo < 0.73


def test_match_segments_counts_missed_merged_and_false_alarms():
    from crossmodal_ros.evaluation.robustness import match_segments

    spans = [(100, 200), (300, 400), (500, 600), (700, 800)]
    z = np.zeros(1)
    segs = [(90, 210, z), (290, 610, z), (650, 660, z), (710, 740, z), (750, 800, z)]
    m = match_segments(spans, segs)
    assert m["assigned"] == {0: 0, 3: 4}        # the larger piece of the split utterance
    assert m["merged"] == [1, 2] and m["missed"] == []
    assert m["false_alarms"] == 2               # (650, 660) on nothing + the extra piece of 3
    m = match_segments(spans, [])
    assert m["missed"] == [0, 1, 2, 3] and m["false_alarms"] == 0


def test_tiny_suite_writes_sane_results(parts, tmp_path):
    from crossmodal_ros.evaluation.robustness import run_suite, write_outputs

    engine, instruments = parts
    result, suite = run_suite(engine, instruments, rows=ROWS, limit=8, seed=0, data_root=DATA_ROOT)
    written = write_outputs(result, suite, tmp_path)
    assert (tmp_path / "results.json").is_file() and (tmp_path / "README.md").is_file()
    assert any(p.suffix == ".png" for p in written)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["seed"] == 0 and data["limit"] == 8 and len(data["checkpoint"]["sha256"]) == 64
    ids = [r["id"] for r in data["rows"]]
    assert ids == ROWS.split(",")
    for r in data["rows"]:
        assert r["n"] == 8, r["id"]
        assert 0 <= r["correct"] <= r["n"] and 0 <= r["dropped"] <= r["n"]
        lo, hi = r["ci95"]
        assert 0.0 <= lo <= r["accuracy"] <= hi <= 1.0
        assert set(r["cross"]) == {"image", "audio", "trajectory"} - {{"camera": "image", "microphone": "audio",
                                                                     "pen": "trajectory"}[r["group"]]}
        assert all(0.0 <= a <= 1.0 for a in r["cross"].values())
    by = {r["id"]: r for r in data["rows"]}
    # the shipped model on clean held-out inputs is far above chance (10 %)
    assert by["camera/as-shipped"]["accuracy"] >= 0.6
    assert by["pen/as-stored"]["accuracy"] >= 0.6
    assert by["microphone/clean"]["accuracy"] >= 0.5
    assert "live" in by["microphone/live-clean-silero"]
    readme = (tmp_path / "README.md").read_text()
    for group in ("camera", "microphone", "pen"):
        assert f"## {group}" in readme
    assert "| row | measured on | n | label acc. % | 95 % CI |" in readme
    assert by["camera/framed-40-60-dark_on_light"]["name"] in readme
    assert f"| {by['pen/as-stored']['name']} |" in readme


def test_same_seed_same_numbers(parts):
    from crossmodal_ros.evaluation.robustness import run_suite

    engine, instruments = parts
    rows = "camera/framed-all,microphone/pink-5dB,pen/jitter-3pct"
    a, _ = run_suite(engine, instruments, rows=rows, limit=6, seed=3, data_root=DATA_ROOT)
    b, _ = run_suite(engine, instruments, rows=rows, limit=6, seed=3, data_root=DATA_ROOT)
    assert _numbers(a) == _numbers(b)
    # a row's numbers do not depend on which other rows ran
    c, _ = run_suite(engine, instruments, rows="microphone/pink-5dB", limit=6, seed=3, data_root=DATA_ROOT)
    assert _numbers(c) == [x for x in _numbers(a) if x[0] == "microphone/pink-5dB"]


class _ConstantLabel:
    """A broken model: the engine's outputs, but the label output always says 3."""

    def __init__(self, engine):
        self._engine = engine
        self.codecs = engine.codecs
        self.meta = engine.meta

    def infer_tensors(self, tensors, mask=None):
        out = self._engine.infer_tensors(tensors, mask)
        out["label"] = np.zeros_like(out["label"])
        out["label"][:, 3] = 1.0
        return out


def test_broken_model_scores_near_chance(parts):
    from crossmodal_ros.evaluation.robustness import run_suite

    engine, instruments = parts
    rows = "camera/as-shipped,pen/as-stored"
    good, _ = run_suite(engine, instruments, rows=rows, limit=40, seed=0, data_root=DATA_ROOT)
    bad, _ = run_suite(_ConstantLabel(engine), instruments, rows=rows, limit=40, seed=0, data_root=DATA_ROOT)
    for g, b in zip(good["rows"], bad["rows"]):
        assert g["accuracy"] >= 0.6, g["id"]
        assert b["accuracy"] <= 0.3, b["id"]  # = the share of class 3 among the 40 inputs
        assert b["ci95"][1] < g["ci95"][0]    # the suite separates them
        assert b["cross"] == g["cross"]       # generated modalities untouched by the label fault


def test_cli_dispatch_and_row_selection(parts, tmp_path, capsys):
    from crossmodal_ros.evaluation.evaluate import main

    base = ["--robustness", "--limit", "4", "--rows", "pen/rot*"] + (["--data-root", DATA_ROOT] if DATA_ROOT else [])
    assert main(base + ["--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "[1/4] pen/rot-20" in err and "[4/4] pen/rot+20" in err
    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["id"] for r in data["rows"]] == ["pen/rot-20", "pen/rot-10", "pen/rot+10", "pen/rot+20"]
    assert data["config"]["inference_path"] == "fast"
    assert "inference path fast" in (tmp_path / "README.md").read_text()
    # the node's default path, as the node resolves it on this machine
    from crossmodal_ros.models.fast import int8_preferred

    assert main(base + ["--out", str(tmp_path / "auto"), "--backend", "int8_auto"]) == 0
    auto = json.loads((tmp_path / "auto" / "results.json").read_text())
    assert auto["config"]["inference_path"] == ("fast-int8" if int8_preferred() else "fast")
    assert [r["n"] for r in auto["rows"]] == [r["n"] for r in data["rows"]]
    assert main(["--robustness", "--rows", "nonsense", "--out", str(tmp_path)]) == 2


def test_validation_split_never_touches_held_out_data(parts):
    """--split val (choosing between training runs) measures val-split inputs and skips the
    held-out evaluation sets; the evaluated recordings are validation recordings.
    """
    from crossmodal_ros.evaluation.robustness import run_suite

    engine, instruments = parts
    result, suite = run_suite(engine, instruments, rows="microphone/clean,microphone/espeak,camera/mnist-as-shipped",
                              limit=6, seed=0, data_root=DATA_ROOT, split="val")
    by = {r["id"]: r for r in result["rows"]}
    assert result["split"] == "val"
    assert "skipped" in by["microphone/espeak"] and "skipped" in by["camera/mnist-as-shipped"]
    assert by["microphone/clean"]["n"] == 6
    idx = [int(f.split("_")[2]) for f in suite.recordings()["file"] if not f.split("_")[1].startswith("espeak")]
    assert idx and all(5 <= i <= 9 for i in idx)  # FSDD validation recordings only


def test_default_output_never_overwrites_the_shipped_report(tmp_path):
    """Without ``--out`` only the full suite of the shipped checkpoint on the test split writes the
    committed report (docs/results/robustness of the source checkout); a partial run, a
    validation run or another model goes under runs/, one folder per checkpoint path.
    """
    from crossmodal_ros.evaluation.robustness import DEFAULT_OUT, default_out
    from crossmodal_ros.paths import _SOURCE_ROOT, default_checkpoint

    shipped = default_checkpoint()
    assert default_out(shipped, "test") == _SOURCE_ROOT / DEFAULT_OUT
    for out in (default_out(shipped, "val"), default_out(shipped, "test", full_suite=False)):
        assert out.parts[0] == "runs" and out.name.startswith(f"robustness_{shipped.stem}_")
    assert default_out(shipped, "val") != default_out(shipped, "test", full_suite=False)
    a, b = tmp_path / "a" / "best.pt", tmp_path / "b" / "best.pt"
    assert default_out(a, "test").name.startswith("robustness_best_") and default_out(a, "test").name.endswith("_test")
    assert default_out(a, "test") != default_out(b, "test")
    # another inference path never writes the report, nor over the fast path's folder
    assert default_out(shipped, "test", backend="int8_auto").parts[0] == "runs"
    assert default_out(a, "test", backend="int8").name == default_out(a, "test").name + "_int8"
