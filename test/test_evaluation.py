# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Tests of the evaluation protocol: metrics, judge instruments, the cross-modal evaluator.

The evaluator is exercised with small generator test doubles that implement the model
interface (``modalities``, ``infer``): a perfect generator that returns real samples of the
true class, and a broken one that always generates class 0. Judges are trained in seconds on
a constructed, trivially separable data set, so their own accuracy is 100 %.
"""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from crossmodal_ros.evaluation.evaluate import (class_breakdown, evaluate_model, limit_tensors, results_markdown,
                                                 weak_classes, write_outputs)
from crossmodal_ros.evaluation.instruments import FORMAT_VERSION, Instruments, default_instruments_path
from crossmodal_ros.evaluation.metrics import (
    EvaluationError, accuracy, frechet_distance, frechet_distance_from_stats, per_class_frechet)
from crossmodal_ros.evaluation.train_instruments import train_instruments
from crossmodal_ros.modalities import MODALITIES, all_subsets


# --------------------------------------------------------------------------- metrics
def test_frechet_of_a_set_with_itself_is_zero(rng):
    feats = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_frechet_matches_the_closed_form_for_known_gaussians(rng):
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # diagonal covariances: ||mu_a - mu_b||^2 + sum (sqrt(var_a) - sqrt(var_b))^2
    closed = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert closed == pytest.approx(5.0 + 4.0 + 1.0)
    exact = frechet_distance_from_stats(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
    assert exact == pytest.approx(closed, rel=1e-9)
    a = mu_a + rng.normal(size=(200_000, 3)) * np.sqrt(var_a)
    b = mu_b + rng.normal(size=(200_000, 3)) * np.sqrt(var_b)
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.02)


def test_frechet_with_a_full_covariance_and_a_rotation():
    rot = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    cov = rot @ np.diag([4.0, 1.0]) @ rot.T
    # same covariance, shifted mean -> only the mean term remains
    assert frechet_distance_from_stats([0, 0], cov, [3, 4], cov) == pytest.approx(25.0, rel=1e-9)


def test_frechet_stays_finite_when_the_covariance_is_singular(rng):
    a = rng.normal(size=(5, 32))  # 5 samples in 32-d: rank-deficient covariances
    b = rng.normal(size=(5, 32)) + 1.0
    d = frechet_distance(a, b)
    assert math.isfinite(d) and d > 0


def test_per_class_frechet_averages_over_classes(rng):
    labels = np.repeat([0, 1], 500)
    real = rng.normal(size=(1000, 2))
    gen = real.copy()
    gen[labels == 1] += np.array([2.0, 0.0])  # class 1 shifted by 2 -> FD 4, class 0 exact -> 0
    mean, per = per_class_frechet(real, gen, labels, return_per_class=True)
    assert per[0] == pytest.approx(0.0, abs=1e-6)
    assert per[1] == pytest.approx(4.0, rel=1e-6)
    assert mean == pytest.approx(2.0, rel=1e-6)
    # a class with too few samples is skipped; none scorable raises
    with pytest.raises(EvaluationError):
        per_class_frechet(real[:1], gen[:1], labels[:1])


def test_accuracy_from_logits_and_indices():
    y = torch.tensor([0, 1, 2, 3])
    assert accuracy(torch.tensor([0, 1, 2, 0]), y) == 0.75
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 3]), 10).float()
    assert accuracy(logits, y) == 0.75
    with pytest.raises(EvaluationError):
        accuracy(torch.zeros(3), y)
    with pytest.raises(EvaluationError):
        frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))


# --------------------------------------------------------------------------- constructed data
def make_separable(n: int, seed: int) -> dict:
    """A trivially separable 4-modality data set; every sample unique (small noise).

    image: a bright block in cell k of a 2 x 5 grid; audio: a bright mel band 12k..12k+10;
    trajectory: a sine stroke with k+1 half-waves; label: one-hot.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    image = 0.02 * torch.rand(n, 1, 28, 28, generator=g)
    for k in range(10):
        r, c = 4 + 12 * (k // 5), 1 + 5 * (k % 5)
        image[y == k, :, r:r + 8, c:c + 4] += 0.9
    audio = 0.05 * torch.rand(n, 1, 128, 32, generator=g)
    for k in range(10):
        audio[y == k, :, 12 * k:12 * k + 10, :] += 0.9
    traj = torch.empty(n, 200)
    traj[:, :100] = torch.linspace(0.1, 0.9, 100)
    traj[:, 100:] = 0.5 + 0.35 * torch.sin(torch.pi * (y.float() + 1).view(n, 1) * torch.linspace(0, 1, 100))
    traj += 0.005 * torch.randn(n, 200, generator=g)
    return {"image": image.clamp(0, 1), "audio": audio.clamp(0, 1), "trajectory": traj.clamp(0, 1),
            "label": torch.nn.functional.one_hot(y, 10).float(), "y": y}


@pytest.fixture(scope="module")
def data():
    return {"train": make_separable(200, 1), "val": make_separable(60, 2), "test": make_separable(60, 3)}


@pytest.fixture(scope="module")
def judges(data):
    epochs = {(m, k): (10 if k == "classifier" else 3) for m in ("image", "audio", "trajectory")
              for k in ("classifier", "autoencoder")}
    return train_instruments(data["train"], data["val"], data["test"], dataset="separable",
                             epochs=epochs, batch_size=32, seed=0, log=lambda _s: None)


class PerfectGenerator(nn.Module):
    """Test double of a generator: returns real samples of each row's true class.

    A row is identified by exact match of a given (non-label) modality against the stored data,
    so the generation is the row's own ground truth; with only the label given, it returns the
    first stored sample of that class. Checks the mask it receives against the inputs.
    """

    kind = "perfect"

    def __init__(self, store: dict, modalities=MODALITIES, wrong_class: bool = False):
        super().__init__()
        self.store = store
        self.modalities = tuple(modalities)
        self.wrong_class = wrong_class
        self.calls = []

    def infer(self, inputs, mask=None, sample=False):
        assert mask is not None and mask.dtype == torch.bool and mask.shape[1] == len(self.modalities)
        assert set(inputs) == {m for m, on in zip(self.modalities, mask[0].tolist()) if on}
        self.calls.append(tuple(sorted(inputs)))
        sensory = [m for m in inputs if m != "label"]
        if sensory:
            m = sensory[0]
            flat = self.store[m].flatten(1)
            rows = torch.stack([(flat == r).all(1).float().argmax() for r in inputs[m].flatten(1)])
        else:
            cls = inputs["label"].argmax(1)
            first = torch.stack([(self.store["y"] == k).float().argmax() for k in range(10)])
            rows = first[cls]
        if self.wrong_class:
            rows = torch.zeros_like(rows)  # always the stored sample 0 (class 0)
        out = {m: self.store[m][rows].clone() for m in self.modalities}
        out["label"] = out["label"] * 10.0 if "label" in out else None  # logits
        out["latent_mu"] = torch.zeros(rows.shape[0], 1)
        out["latent_logvar"] = torch.zeros(rows.shape[0], 1)
        return {k: v for k, v in out.items() if v is not None}


def test_trained_judges_are_perfect_on_the_constructed_data(judges):
    assert judges.test_accuracy == {"image": 1.0, "audio": 1.0, "trajectory": 1.0}
    assert judges.meta["n_train"] == 200 and "test_mse" in judges.meta["autoencoders"]["image"]


def test_perfect_generator_scores_100_percent_and_zero_frechet(data, judges):
    test = data["test"]
    model = PerfectGenerator(test)
    res = evaluate_model(model, test, judges, batch_size=37, progress=None)
    assert len(model.calls) == 15 * math.ceil(60 / 37)
    assert len(res["rows"]) == 15 * 4
    cross = [r for r in res["rows"] if r["kind"] == "cross"]
    assert len(cross) == 4 * 3 + 6 * 2 + 4 * 1
    assert all(r["accuracy"] == 1.0 for r in res["rows"])
    assert res["mean_cross_accuracy"] == 1.0
    for t in MODALITIES:
        assert set(res["summary"][t]) == {"1", "2", "3"}
        assert res["summary"][t]["1"]["n_subsets"] == 3 and res["summary"][t]["3"]["n_subsets"] == 1
    # rows identified from a sensory input are the exact ground truth -> Frechet distance ~0
    exact = [r for r in cross if r["target"] != "label" and r["given"] != ["label"]]
    assert exact and all(r["frechet"] == pytest.approx(0.0, abs=1e-4) for r in exact)
    assert all(r["frechet"] is None for r in res["rows"] if r["target"] == "label")


def test_a_class_blind_generator_scores_chance(data, judges):
    test = data["test"]
    res = evaluate_model(PerfectGenerator(test, wrong_class=True), test, judges, progress=None)
    assert all(r["accuracy"] == pytest.approx(0.1) for r in res["rows"])
    # every generated sample is the same class-0 sample: far from each class's real spread
    fds = [r["frechet"] for r in res["rows"] if r["target"] != "label" and r["kind"] == "cross"]
    assert len(fds) == 28 - 7 and all(fd > 1.0 for fd in fds)
    assert all(r["frechet"] is None for r in res["rows"] if r["kind"] == "self")


def test_per_class_breakdown_names_the_failing_classes(data, judges, tmp_path):
    test = data["test"]
    perfect = evaluate_model(PerfectGenerator(test), test, judges, progress=None)
    assert all(set(r["per_class_accuracy"].values()) == {1.0} for r in perfect["rows"])
    assert all(set(r["per_class_confused_with"].values()) == {None} for r in perfect["rows"])
    assert weak_classes(perfect) == []
    blind = evaluate_model(PerfectGenerator(test, wrong_class=True), test, judges, progress=None)
    for r in blind["rows"]:
        assert r["per_class_accuracy"]["0"] == 1.0 and r["per_class_confused_with"]["0"] is None
        assert all(r["per_class_accuracy"][str(k)] == 0.0 and r["per_class_confused_with"][str(k)] == 0
                   for k in range(1, 10))
    weak = weak_classes(blind)
    assert len(weak) == 28 * 9 and {w["class"] for w in weak} == set(range(1, 10))
    assert all(w["confused_with"] == 0 and w["accuracy"] == 0.0 for w in weak)
    write_outputs(blind, tmp_path / "blind", plots=False)
    md = (tmp_path / "blind" / "results.md").read_text()
    assert "## Classes judged right less than half the time" in md and "| image | audio | 7 | 6 | 0.0 | 0 |" in md
    write_outputs(perfect, tmp_path / "perfect", plots=False)
    assert "None: every class" in (tmp_path / "perfect" / "results.md").read_text()


def test_class_breakdown_on_known_predictions():
    acc, confused, n = class_breakdown(torch.tensor([0, 0, 1, 2, 2, 2, 6]), torch.tensor([0, 1, 1, 7, 7, 2, 7]))
    assert acc == {"0": 1.0, "1": 0.5, "2": 1.0, "7": 0.0}
    assert confused == {"0": None, "1": 0, "2": None, "7": 2}
    assert n == {"0": 1, "1": 2, "2": 1, "7": 3}
    with pytest.raises(EvaluationError, match="differ"):
        class_breakdown(torch.tensor([0, 1]), torch.tensor([0]))


def test_fewer_modalities_and_output_files(tmp_path, data, judges):
    test = limit_tensors(data["test"], 40)
    model = PerfectGenerator(test, modalities=("image", "trajectory", "label"))
    res = evaluate_model(model, test, judges, keep_samples=4, progress=None)
    assert [tuple(r["given"]) for r in res["rows"][::3]] == all_subsets(("image", "trajectory", "label"))
    assert set(res["summary"]["image"]) == {"1", "2"}
    files = write_outputs(res, tmp_path, header={"checkpoint": "perfect"}, real=test, plot_n=4)
    names = sorted(p.name for p in files)
    assert names[:3] == ["results.csv", "results.json", "results.md"]
    assert len([n for n in names if n.startswith("samples_") and n.endswith(".png")]) == 7
    for p in files:
        assert p.stat().st_size > 0
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 * 3 and {r["kind"] for r in rows} == {"cross", "self"}
    loaded = json.loads((tmp_path / "results.json").read_text())
    assert loaded["mean_cross_accuracy"] == 1.0 and "samples" not in loaded
    md = (tmp_path / "results.md").read_text()
    assert "| image | 100.0 ± 0.0 | 100.0 ± 0.0 |" in md
    assert md == results_markdown(res, {"checkpoint": "perfect"})  # deterministic text


def test_evaluator_rejects_bad_input(data, judges):
    test = data["test"]
    bad = dict(test, image=test["image"][:, :, :27])
    with pytest.raises(EvaluationError):
        evaluate_model(PerfectGenerator(test), bad, judges, progress=None)
    with pytest.raises(EvaluationError):
        evaluate_model(PerfectGenerator(test), {k: v for k, v in test.items() if k != "audio"}, judges,
                       progress=None)
    with pytest.raises(EvaluationError):
        judges.features("label", test["label"])


# --------------------------------------------------------------------------- persistence
def test_instruments_round_trip_with_weights_only(tmp_path, data, judges):
    path = judges.save(tmp_path / "inst.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION and raw["dataset"] == "separable"
    assert raw["test_accuracy"] == {"image": 1.0, "audio": 1.0, "trajectory": 1.0}
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    loaded = Instruments.load(path)
    again = Instruments.load(path)
    x = data["test"]
    for m in ("image", "audio", "trajectory"):
        assert torch.equal(loaded.features(m, x[m]), again.features(m, x[m]))
        assert torch.allclose(loaded.classify(m, x[m]), judges.classify(m, x[m]), atol=0.05, rtol=0.02)
        assert torch.equal(loaded.predict(m, x[m]), judges.predict(m, x[m]))
    assert loaded.test_accuracy == judges.test_accuracy


def test_loading_bad_instrument_files_raises(tmp_path):
    with pytest.raises(EvaluationError, match="not found"):
        Instruments.load(tmp_path / "missing.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(EvaluationError, match="not a crossmodal_ros instruments"):
        Instruments.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EvaluationError, match="cannot read"):
        Instruments.load(tmp_path / "junk.pt")


def test_shipped_instruments_load_and_report_their_accuracy():
    path = default_instruments_path("digits")
    if not path.is_file():
        pytest.skip(f"{path} not trained yet")
    inst = Instruments.load(path)
    assert inst.dataset == "digits"
    assert set(inst.test_accuracy) == {"image", "audio", "trajectory"}
    assert inst.test_accuracy["image"] > 0.9 and inst.test_accuracy["trajectory"] > 0.9
    assert inst.test_accuracy["audio"] > 0.8


@pytest.mark.slow
def test_cli_end_to_end_on_the_digits_data(tmp_path, judges, capsys):
    """crossmodal-eval on a real (untrained, tiny-limit) Nexus checkpoint and the digits test split."""
    pytest.importorskip("crossmodal_ros.checkpoint")
    from crossmodal_ros.checkpoint import save_checkpoint
    from crossmodal_ros.codecs import codecs_to_dict, default_codecs
    from crossmodal_ros.evaluation.evaluate import main
    from crossmodal_ros.models import build_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny_nexus.pt", build_model("nexus").eval(), codecs_to_dict(default_codecs()))
    inst = judges.save(tmp_path / "inst.pt")
    out = tmp_path / "res"
    args = ["--checkpoint", str(ckpt), "--instruments", str(inst), "--data", "digits", "--limit", "30",
            "--out", str(out), "--device", "cpu", "--plot-samples", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Cross-modal accuracy" in printed and "[15/15]" in printed
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 60
    assert len(list(out.glob("samples_*.png"))) == 15
    first = (out / "results.md").read_text()
    assert main(args + ["--no-plots"]) == 0  # deterministic: same table again
    assert (out / "results.md").read_text() == first
    assert main(["--checkpoint", str(tmp_path / "missing.pt"), "--instruments", str(inst)]) == 2


def test_default_out_keeps_partial_and_retrained_runs_out_of_the_committed_results(tmp_path):
    """Without --out only the run that made docs/results/<name>/ (the shipped checkpoint, every
    result-changing option at its default) writes there; a --limit smoke run, another split or
    backend, or a retrained checkpoint goes under runs/ (a user's `--split val` check of a
    retrained model once overwrote the committed page).
    """
    import argparse

    from crossmodal_ros.evaluation.evaluate import default_out
    from crossmodal_ros.paths import _SOURCE_ROOT, default_checkpoint

    parser = argparse.ArgumentParser()
    for name, default in (("data", "digits"), ("split", "test"), ("instruments", None), ("limit", 0),
                          ("sample", False), ("seed", 0), ("backend", "reference")):
        parser.add_argument(f"--{name}", default=default, type=type(default) if default is not None else None)
    shipped = default_checkpoint()
    if (_SOURCE_ROOT / "docs" / "results").is_dir():
        assert default_out(shipped, parser.parse_args([]), parser) == _SOURCE_ROOT / "docs" / "results" / shipped.stem
    for argv in (["--limit", "50"], ["--split", "val"], ["--backend", "fast"], ["--seed", "1"]):
        out = default_out(shipped, parser.parse_args(argv), parser)
        assert out.parts[0] == "runs" and out.name.startswith(f"eval_{shipped.stem}_"), (argv, out)
    val = default_out(shipped, parser.parse_args(["--split", "val", "--limit", "50"]), parser)
    assert val.name.endswith("_val_limit50")
    # the backend asked for names the folder (int8_auto resolves before the run), and a GPU run of
    # the shipped model never replaces the committed CPU results
    auto = default_out(shipped, parser.parse_args([]), parser, backend="int8_auto")
    assert auto.parts[0] == "runs" and auto.name.endswith("_test_int8_auto")
    gpu = default_out(shipped, parser.parse_args([]), parser, device="cuda:0")
    assert gpu.parts[0] == "runs" and gpu.name.endswith("_test_cuda0")
    mine = default_out(tmp_path / "best.pt", parser.parse_args([]), parser)
    other = default_out(tmp_path / "other" / "best.pt", parser.parse_args([]), parser)
    assert mine.parts[0] == "runs" and mine != other  # two runs' best.pt do not share a folder
