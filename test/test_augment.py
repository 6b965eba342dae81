# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Training augmentation (crossmodal_ros.augment) and the trainer's data options."""
import numpy as np
import pytest
import torch

from crossmodal_ros.augment import AugmentError, build_bank, resolve_augment
from crossmodal_ros.codecs import default_codecs
from crossmodal_ros.data import load_dataset


@pytest.fixture(scope="module")
def small_train():
    ds = load_dataset("digits", "train")
    n = len(ds["label"])
    keep = np.r_[0:6, n - 6:n]  # pen-rendered and MNIST samples
    return {k: (np.asarray(v)[keep] if isinstance(v, np.ndarray) and len(v) == n else v) for k, v in ds.items()}


def _cfg(**kw):
    return resolve_augment({"enabled": True, "variants": 2, "audio": {"rooms": 2}, **kw})


@pytest.mark.slow
def test_bank_is_deterministic_given_the_seed(small_train):
    a, _ = build_bank(small_train, default_codecs(), _cfg(), cache=False, log=lambda s: None)
    b, _ = build_bank(small_train, default_codecs(), _cfg(), cache=False, log=lambda s: None)
    c, _ = build_bank(small_train, default_codecs(), _cfg(seed=1), cache=False, log=lambda s: None)
    for m in ("image", "audio", "trajectory"):
        assert torch.equal(a.arrays[m], b.arrays[m]), m
        assert not torch.equal(a.arrays[m], c.arrays[m]), m
    # variants differ from the clean input and from each other, and stay in range
    img = a.arrays["image"].float()
    assert img.shape == (12, 2, 1, 28, 28) and 0 <= img.min() and img.max() <= 1
    assert (img[:, 0] - img[:, 1]).abs().mean() > 0.01
    clean = torch.from_numpy(small_train["image"])
    assert (img[:, 0] - clean).abs().mean() > 0.01


def test_draw_mixes_clean_and_variants_reproducibly(small_train):
    from crossmodal_ros.data.features import model_tensors

    bank, index = build_bank(small_train, default_codecs(), _cfg(p_clean=0.5), cache=False, log=lambda s: None)
    t = model_tensors(small_train)
    t["aug_index"] = torch.from_numpy(index)
    d1 = bank.draw(t, torch.Generator().manual_seed(3))
    d2 = bank.draw(t, torch.Generator().manual_seed(3))
    assert all(torch.equal(d1[m], d2[m]) for m in ("image", "audio", "trajectory"))
    same = [(d1["image"][i] == t["image"][i]).all().item() for i in range(12)]
    assert 0 < sum(same) < 12  # some clean, some augmented
    assert torch.equal(d1["label"], t["label"])  # labels never change


def test_augment_config_errors():
    with pytest.raises(AugmentError, match="unknown"):
        resolve_augment({"imgae": {}})
    with pytest.raises(AugmentError, match="unknown keys"):
        resolve_augment({"audio": {"snr": 3}})
    with pytest.raises(AugmentError):
        resolve_augment({"variants": 0})
    assert resolve_augment(None)["enabled"] is False


@pytest.mark.slow
def test_exclude_speakers_removes_them_from_training(small_train):
    from crossmodal_ros.training.train import TrainingError, exclude_speaker_audio

    ds = load_dataset("digits", "train")
    speaker = "theo"
    assert (ds["speaker"] == speaker).any()
    out = exclude_speaker_audio(ds, [speaker], seed=0)
    assert not (out["speaker"] == speaker).any()
    assert np.array_equal(out["label"], ds["label"])
    # labels of the replacement recordings match: every file stem starts with the label
    assert all(int(f.split("_")[0]) == y for f, y in zip(out["audio_file"], out["label"]) if not f.startswith("espeak"))
    with pytest.raises(TrainingError, match="not in the data"):
        exclude_speaker_audio(ds, ["nobody"], seed=0)


def test_clean_targets_make_the_loss_denoising():
    """With ``clean:<m>`` keys the reconstruction targets are the clean originals: the loss equals
    the plain loss when clean == input and differs when the input is augmented.
    """
    from crossmodal_ros.models import build_model

    torch.manual_seed(0)
    model = build_model("nexus", {"fpd_rho": 0.0})
    model.eval()  # no FPD, BatchNorm on running statistics: deterministic up to sampling
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.rand(4, 1, 28, 28, generator=g), "audio": torch.rand(4, 1, 128, 32, generator=g),
             "trajectory": torch.rand(4, 200, generator=g), "label": torch.eye(10)[:4]}
    noisy = {**batch, "image": (batch["image"] + 0.3 * torch.rand(4, 1, 28, 28, generator=g)).clamp(0, 1)}

    def loss(b):
        torch.manual_seed(1)  # the same reparameterisation noise
        return model.loss(b, None, epoch=100)[0].item()

    assert loss({**batch, "clean:image": batch["image"]}) == pytest.approx(loss(batch), rel=1e-5)
    assert loss({**noisy, "clean:image": batch["image"]}) != pytest.approx(loss(noisy), rel=1e-3)


def test_bank_draw_carries_clean_targets(small_train):
    from crossmodal_ros.data.features import model_tensors

    bank, index = build_bank(small_train, default_codecs(), _cfg(), cache=False, log=lambda s: None)
    t = model_tensors(small_train)
    t["aug_index"] = torch.from_numpy(index)
    d = bank.draw(t, torch.Generator().manual_seed(0))
    for m in ("image", "audio", "trajectory"):
        assert torch.equal(d[f"clean:{m}"], t[m])
    bank.clean_targets = False
    assert not any(k.startswith("clean:") for k in bank.draw(t, torch.Generator().manual_seed(0)))
