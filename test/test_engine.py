# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""FusionEngine: raw arrays for every subset, batched path, errors, half precision, device."""
import numpy as np
import pytest
import torch

from crossmodal_ros.checkpoint import CheckpointError, save_checkpoint
from crossmodal_ros.codecs import codecs_to_dict, default_codecs
from crossmodal_ros.engine import EngineInputError, FusionEngine, FusionResult
from crossmodal_ros.modalities import MODALITIES, all_subsets
from crossmodal_ros.models import build_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("nexus").eval()
    path = tmp_path_factory.mktemp("engine") / "nexus.pt"
    save_checkpoint(path, model, codecs_to_dict(default_codecs()))
    return path


@pytest.fixture(scope="module")
def engine(ckpt):
    return FusionEngine.from_checkpoint(ckpt, device="cpu")


def raw_inputs(seed=0):
    rng = np.random.default_rng(seed)
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[30:90, 70:80] = 255  # a bright "1" on dark
    t = np.linspace(0, 1, 60)
    return {
        "image": frame,
        "audio": (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) + 0.01 * rng.standard_normal(8000)).astype(
            np.float32),
        "trajectory": np.stack([0.5 + 0.01 * t, t], axis=1),
        "label": 7,
    }


def test_every_subset_of_raw_inputs(engine):
    raw = raw_inputs()
    assert engine.device.type == "cpu" and engine.modalities == MODALITIES
    for subset in all_subsets():
        res = engine.infer({m: raw[m] for m in subset}, sample_rate=8000)
        assert isinstance(res, FusionResult)
        assert res.fused == subset and res.device == "cpu"
        assert res.image.shape == (28, 28) and res.audio_mel.shape == (128, 32)
        assert res.trajectory.shape == (100, 2) and res.label_probs.shape == (10,)
        assert res.latent_mu.shape == (32,) == res.latent_logvar.shape
        for arr in (res.image, res.audio_mel, res.trajectory, res.label_probs, res.latent_mu):
            assert np.isfinite(arr).all()
        assert 0 <= res.image.min() and res.image.max() <= 1
        assert res.label_probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert res.label == int(np.argmax(res.label_probs))


def test_raw_path_matches_batched_tensor_path(engine):
    raw = raw_inputs()
    codecs = default_codecs()
    tensors = {"image": codecs["image"].encode(raw["image"])[None],
               "trajectory": codecs["trajectory"].encode(raw["trajectory"])[None]}
    single = engine.infer({"image": raw["image"], "trajectory": raw["trajectory"]})
    batched = engine.infer_tensors({k: np.repeat(v, 3, axis=0) for k, v in tensors.items()})
    assert batched["image"].shape == (3, 1, 28, 28) and batched["label_probs"].shape == (3, 10)
    np.testing.assert_allclose(batched["latent_mu"][1], single.latent_mu, atol=1e-5)
    np.testing.assert_allclose(batched["image"][2, 0], single.image, atol=1e-5)
    # a mask selects the subset per row
    full = {m: np.repeat(engine.encode_raw(raw_inputs(), 8000)[m][None], 2, axis=0) for m in MODALITIES}
    mask = np.array([[True, False, False, False], [True, False, True, False]])
    out = engine.infer_tensors(full, mask)
    np.testing.assert_allclose(out["latent_mu"][1], single.latent_mu, atol=1e-5)
    only_image = engine.infer({"image": raw["image"]})
    np.testing.assert_allclose(out["latent_mu"][0], only_image.latent_mu, atol=1e-5)


def test_deterministic_by_default_and_sampling_flag(engine):
    raw = {"label": 3}
    a, b = engine.infer(raw), engine.infer(raw)
    np.testing.assert_array_equal(a.image, b.image)
    engine.sample = True
    try:
        torch.manual_seed(0)
        c = engine.infer(raw)
        assert not np.allclose(c.image, a.image)
    finally:
        engine.sample = False


def test_errors(engine, tmp_path):
    with pytest.raises(EngineInputError, match="non-empty"):
        engine.infer({})
    with pytest.raises(EngineInputError, match="no modality"):
        engine.infer({"smell": np.zeros(3)})
    with pytest.raises(EngineInputError, match="sample_rate"):
        engine.infer({"audio": np.zeros(8000, np.float32)})
    with pytest.raises(EngineInputError, match="label"):
        engine.infer({"label": 12})
    with pytest.raises(EngineInputError, match="image"):
        engine.infer({"image": np.full((10, 10), np.nan, np.float32)})
    with pytest.raises(EngineInputError):
        engine.infer_tensors({})
    with pytest.raises(EngineInputError, match="empty subset"):
        engine.infer_tensors({"label": np.eye(10, dtype=np.float32)[:2]}, np.zeros((2, 4), bool))
    with pytest.raises(CheckpointError, match="does not exist"):
        FusionEngine.from_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="device"):
        FusionEngine.from_checkpoint(tmp_path / "x.pt", device="tpu")


def test_model_with_fewer_modalities(tmp_path):
    model = build_model("nexus", {"modalities": ["image", "label"]})
    path = save_checkpoint(tmp_path / "m.pt", model, codecs_to_dict(default_codecs()))
    eng = FusionEngine.from_checkpoint(path, device="cpu")
    res = eng.infer({"label": 2})
    assert res.image.shape == (28, 28) and res.audio_mel.size == 0 and res.label in range(10)
    with pytest.raises(EngineInputError, match="no modality"):
        eng.infer({"audio": np.zeros(8000, np.float32)}, sample_rate=8000)


def test_half_precision_close_to_full(ckpt, engine):
    half = FusionEngine.from_checkpoint(ckpt, device="cpu", half=True)
    raw = raw_inputs()
    a = engine.infer(raw, sample_rate=8000)
    b = half.infer(raw, sample_rate=8000)
    assert b.image.dtype == np.float32
    np.testing.assert_allclose(a.image, b.image, atol=2e-2)
    np.testing.assert_allclose(a.latent_mu, b.latent_mu, atol=2e-2)


def test_auto_device(ckpt):
    eng = FusionEngine.from_checkpoint(ckpt)  # auto
    assert eng.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            FusionEngine.from_checkpoint(ckpt, device="cuda")


def test_mel_to_waveform(engine):
    mel = engine.infer({"label": 1}).audio_mel
    wave = engine.mel_to_waveform(mel, n_iter=4)
    assert wave.ndim == 1 and wave.size > 1000 and np.isfinite(wave).all()
    assert engine.sample_rate > 0


def test_the_readme_python_example_runs_as_written():
    """The README's "In Python, without ROS" block, executed as printed: a renamed argument or
    attribute fails here.
    """
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("**In Python, without ROS**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - the project's own documentation
    res, ds = ns["res"], ns["ds"]
    assert res.fused == ("image", "audio") and res.decoded("trajectory") and not res.decoded("image")
    assert res.label == int(ds["label"][0]) and res.trajectory.shape == (100, 2) and res.label_probs.shape == (10,)
    assert ns["batch"]["label_probs"].shape == (3, 10) and ns["batch"]["image"].shape == (3, 1, 28, 28)
    assert sum(p == y for p, y in zip(ns["batch"]["label_probs"].argmax(1).tolist(), ds["label"][:3].tolist())) >= 2
