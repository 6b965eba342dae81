# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""tools/diagnose_audio_path.py: class-mean latents are the per-class means of the bottom sound
VAE's encodings, the label -> audio cells follow the model's own generation, and a model kind
without a bottom sound VAE is refused with a message.
"""
from __future__ import annotations

import pytest
import torch

from crossmodal_ros.evaluation.instruments import Instruments
from crossmodal_ros.models import build_model


@pytest.fixture(scope="module")
def tool(load_script):
    return load_script("tools/diagnose_audio_path.py")


def _tensors(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    return {"audio": torch.rand(n, 1, 128, 32, generator=g), "label": torch.nn.functional.one_hot(y, 10).float(),
            "y": y}


def test_class_mean_latents_are_per_class_means_of_the_encodings(tool):
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    data = _tensors(30, 1)
    means = tool.class_mean_latents(model, data["audio"], data["y"], batch=7)
    with torch.inference_mode():
        mu = model.bottom.encode("audio", data["audio"])[0]
    assert means.shape == (10, mu.shape[1])
    for k in (0, 3, 9):
        assert torch.allclose(means[k], mu[data["y"] == k].mean(0), atol=1e-5)
    with pytest.raises(ValueError, match=r"classes \[9\]"):
        tool.class_mean_latents(model, data["audio"][:9], data["y"][:9])


def test_diagnose_matches_the_models_label_to_audio_generation(tool):
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    judge = Instruments.load()
    train, held = _tensors(40, 2), _tensors(20, 3)
    rows = tool.diagnose(model, judge, train, held, batch=6)
    assert [r["class"] for r in rows] == list(range(10))
    with torch.inference_mode():
        pred = judge.predict("audio", model.infer({"label": held["label"]})["audio"])
    for r in rows:
        sel = held["y"] == r["class"]
        assert r["label_to_audio"] == pytest.approx(float((pred[sel] == r["class"]).float().mean()))
        assert 0.0 <= r["mean_latent_p"] <= 1.0
        wrong = pred[sel][pred[sel] != r["class"]]
        assert r["heard_as"] == (int(torch.mode(wrong).values) if wrong.numel() else None)


def test_a_model_without_a_sound_vae_is_refused(tool):
    model = build_model("nexus", {"modalities": ["image", "label"]}).eval()
    with pytest.raises(ValueError, match="no bottom sound VAE"):
        tool.diagnose(model, Instruments.load(), _tensors(10, 0), _tensors(10, 1))


def test_second_judges_are_independent_recognisers_and_score_the_generated_audio(tool):
    train, val = _tensors(40, 4), _tensors(20, 5)
    others = tool.second_judges(train, val, 2, epochs=1)
    assert len(others) == 2 and not any(net.training for net in others)
    first = [p.detach().clone() for p in others[0].parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(first, others[1].parameters()))  # different seeds
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    judge = Instruments.load()
    held = {**_tensors(20, 6), "image": torch.rand(20, 1, 28, 28), "trajectory": torch.rand(20, 200)}
    res = tool.generated_audio_accuracy(model, judge, others, held, batch=7)
    assert set(res) == {"image", "trajectory", "label"}
    with torch.inference_mode():
        gen = model.infer({"trajectory": held["trajectory"]})["audio"]
        want = float((judge.predict("audio", gen) == held["y"]).float().mean())
        want_other = float((others[1](gen).argmax(1) == held["y"]).float().mean())
    assert res["trajectory"]["judge"] == pytest.approx(want)
    assert res["trajectory"]["others"][1] == pytest.approx(want_other) and len(res["label"]["others"]) == 2


def test_rescoring_with_the_shipped_judge_reproduces_the_evaluation(tool):
    from crossmodal_ros.evaluation.evaluate import evaluate_model

    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    judge = Instruments.load()
    held = {**_tensors(20, 7), "image": torch.rand(20, 1, 28, 28), "trajectory": torch.rand(20, 200)}
    result = evaluate_model(model, held, judge, frechet=False, progress=None)
    same = tool.rescore_audio_rows(model, result, held, [judge.classifiers["audio"].eval()], batch=8)
    assert same["mean_cross"] == pytest.approx(result["mean_cross_accuracy"])
    assert same["mean_cross_rescored"] == pytest.approx(result["mean_cross_accuracy"], abs=1e-6)
    assert same["audio_rows_rescored"] == pytest.approx(same["audio_rows"], abs=1e-6)

    class Always(torch.nn.Module):  # a listener that hears every sound as class 0
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.zeros(x.shape[0], dtype=torch.long), 10).float()

    zero = tool.rescore_audio_rows(model, result, held, [Always()])
    assert zero["audio_rows_rescored"] == pytest.approx(float((held["y"] == 0).float().mean()))
    with pytest.raises(ValueError, match="samples"):
        tool.rescore_audio_rows(model, {**result, "n_samples": 99}, held, [Always()])
    checked = tool.rescore_audio_rows(model, result, held, [Always()], judge=judge)
    assert checked["audio_rows_rescored"] == pytest.approx(zero["audio_rows_rescored"])
    other = build_model("nexus", {}).eval()  # another checkpoint's generation: caught by the judge check
    tampered = {**result, "rows": [dict(r, accuracy=(r["accuracy"] + 0.5) % 1.0) if r["target"] == "audio" else r
                                   for r in result["rows"]]}
    with pytest.raises(ValueError, match="not this checkpoint"):
        tool.rescore_audio_rows(other, tampered, held, [Always()], judge=judge)


def test_mean_std_cell(tool):
    assert tool.mean_std_cell([97.0]) == "97.00"
    assert tool.mean_std_cell([97.0, 98.0, 99.0]) == "98.00 ± 1.00"


def test_cli_writes_the_three_tables(tool, tmp_path):
    from crossmodal_ros.evaluation.evaluate import main as evaluate
    from crossmodal_ros.paths import default_checkpoint

    folder = tmp_path / "eval"
    assert evaluate(["--limit", "30", "--no-plots", "--threads", "1", "--out", str(folder)]) == 0
    out = tmp_path / "diag.md"
    ck = str(default_checkpoint())
    assert tool.main([ck, "--split", "test", "--limit", "30", "--second-judges", "1", "--results", str(folder),
                      "--labels", "Nexus", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| checkpoint | 0 | 1 |" in text and "| checkpoint | image -> audio |" in text
    assert "| Nexus | 1 |" in text and "mean, audio re-judged" in text
    with pytest.raises(SystemExit):
        tool.main([ck, "--labels", "Nexus"])  # --labels without --results
