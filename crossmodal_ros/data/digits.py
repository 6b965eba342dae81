# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Loader of the embedded "digits" dataset (real pen trajectories + real spoken digits).

The files under ``crossmodal_ros/data/digits/`` are written by
:mod:`crossmodal_ros.data.build_digits`; this module turns them into the one dataset dict
schema of ``docs/architecture.md``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 2
EVAL_SETS = ("mnist_test", "espeak_test")
TRAJ_LEVELS = 4095  # 12-bit trajectory quantisation
DEFAULT_ROOT = Path(__file__).resolve().parent / "digits"
_FILES = ("manifest.json", "samples.npz", "recordings.npz", "recordings.flac")


class DatasetError(RuntimeError):
    """A dataset is missing, incomplete, or not in the expected format."""


def quantise_trajectory(traj: np.ndarray) -> np.ndarray:
    """(N,200) in [0,1] -> int16 (N,200): 12-bit values, first differences along each axis.

    12 bits (steps of 1/4095) are finer than the pen tablet's own resolution (a digit spans a
    few hundred tablet units); the differences of a smooth curve are small numbers, which
    compress about twice as well as the values.
    """
    n = traj.shape[1] // 2
    q = np.round(np.clip(traj, 0, 1) * TRAJ_LEVELS).astype(np.int32).reshape(-1, 2, n)
    return np.diff(q, axis=2, prepend=0).astype(np.int16).reshape(traj.shape)


def dequantise_trajectory(d: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantise_trajectory` -> float32 (N,200) in [0,1]."""
    n = d.shape[1] // 2
    q = np.cumsum(d.reshape(-1, 2, n).astype(np.int32), axis=2)
    return (q.reshape(d.shape) / TRAJ_LEVELS).astype(np.float32)


def digits_root(root=None) -> Path:
    """The folder of the embedded digits dataset (``root`` when given)."""
    return Path(root) if root is not None else DEFAULT_ROOT


def load_manifest(root=None) -> dict:
    """The dataset's ``manifest.json`` (counts, seed, sources, licences, byte sizes)."""
    r = digits_root(root)
    missing = [f for f in _FILES if not (r / f).is_file()]
    if missing:
        raise DatasetError(
            f"digits dataset incomplete in {r}: missing {', '.join(missing)}. Rebuild it with "
            f"`python -m crossmodal_ros.data.build_digits --raw ../shared/data --out {r}`"
        )
    try:
        manifest = json.loads((r / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(r / "manifest.json", exc) from exc
    if not isinstance(manifest, dict):
        raise _corrupt(r / "manifest.json", TypeError("not a JSON object"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"digits dataset in {r} has format_version {manifest.get('format_version')}, "
            f"this code reads {FORMAT_VERSION}; rebuild it"
        )
    return manifest


def _corrupt(path: Path, exc: BaseException) -> DatasetError:
    """The error for a dataset file that exists but cannot be read."""
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return DatasetError(
        f"digits dataset file {path} is corrupt or unreadable ({type(exc).__name__}: {detail}). "
        f"Restore it from git (git checkout -- {path.name}) or rebuild the dataset with "
        f"`python -m crossmodal_ros.data.build_digits --raw ../shared/data --out {path.parent}`")


def load_recordings(root=None) -> tuple[list[np.ndarray], list[str], int]:
    """Every distinct recording as int16 arrays, their FSDD file stems, and the sample rate."""
    import soundfile as sf

    r = digits_root(root)
    try:
        meta = np.load(r / "recordings.npz", allow_pickle=False)
        off, names = meta["offset"], meta["name"]
    except Exception as exc:  # noqa: BLE001 - zip, pickle, key and value errors alike
        raise _corrupt(r / "recordings.npz", exc) from exc
    try:
        pcm, sr = sf.read(str(r / "recordings.flac"), dtype="int16", always_2d=False)
    except Exception as exc:  # noqa: BLE001 - libsndfile errors
        raise _corrupt(r / "recordings.flac", exc) from exc
    if off[-1] != len(pcm):
        raise DatasetError(f"{r}: recordings.flac holds {len(pcm)} samples, the index expects {off[-1]}")
    clips = [pcm[off[i] : off[i + 1]] for i in range(len(off) - 1)]
    return clips, [str(n) for n in names], int(sr)


def load_digits(split: str, root=None) -> dict:
    """One split (``train``, ``val`` or ``test``) as the dataset dict of docs/architecture.md.

    Keys: ``image`` float32 (N,1,28,28), ``trajectory`` float32 (N,200), ``audio`` float32
    (N,L) zero padded, ``audio_length`` int64, ``sample_rate`` int, ``label`` int64, ``writer``
    int64, ``speaker`` str (N,), ``name`` str; plus ``recording`` int64 (N,) (index of the
    distinct recording, samples share recordings), ``audio_file`` str (N,) (recording file stem:
    FSDD ``{digit}_{speaker}_{index}`` or espeak-ng ``{digit}_espeak-{voice}-s{speed}-p{pitch}_0``)
    and, when the files have it, ``source`` int64 (N,) (0 = image rendered from pen strokes,
    1 = MNIST image; MNIST samples have writer -1).
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")
    load_manifest(root)
    r = digits_root(root)
    try:
        with np.load(r / "samples.npz", allow_pickle=False) as npz:
            z = {k: npz[k] for k in npz.files if k.startswith(f"{split}_")}
        missing = [k for k in ("recording", "image", "trajectory", "label", "writer")
                   if f"{split}_{k}" not in z]
        if missing:
            raise KeyError(f"no {split} arrays {missing}")
        rec = z[f"{split}_recording"].astype(np.int64)
    except Exception as exc:  # noqa: BLE001 - zip, pickle, key and value errors alike
        raise _corrupt(r / "samples.npz", exc) from exc
    audio, lengths, files, speakers, sr = _audio(rec, root)
    out = {
        "image": (z[f"{split}_image"].astype(np.float32) / 255.0)[:, None],
        "trajectory": dequantise_trajectory(z[f"{split}_trajectory"]),
        "audio": audio,
        "audio_length": lengths,
        "sample_rate": sr,
        "label": z[f"{split}_label"].astype(np.int64),
        "writer": z[f"{split}_writer"].astype(np.int64),
        "speaker": speakers,
        "recording": rec,
        "audio_file": files,
        "name": f"digits/{split}",
    }
    if f"{split}_source" in z:
        out["source"] = z[f"{split}_source"].astype(np.int64)
    return out


def _audio(rec: np.ndarray, root) -> tuple:
    """Zero-padded float audio, lengths, file stems, speakers and rate of recordings ``rec``."""
    clips, names, sr = load_recordings(root)
    n = len(rec)
    lengths = np.array([len(clips[k]) for k in rec], np.int64)
    width = int(lengths.max()) if n else 0
    audio = np.zeros((n, width), np.float32)
    for i, k in enumerate(rec):
        audio[i, : lengths[i]] = clips[k]
    audio /= 32768.0
    files = np.array([names[k] for k in rec], dtype=str) if n else np.zeros(0, dtype=str)
    speakers = np.array([f.split("_")[1] for f in files], dtype=str) if n else np.zeros(0, dtype=str)
    return audio, lengths, files, speakers, sr


def load_eval_set(name: str, root=None) -> dict:
    """A held-out evaluation set that is part of no split.

    * ``"mnist_test"``: MNIST digits never trained or validated on -> ``image`` float32
      (N,1,28,28) in [0,1], ``label`` int64, ``name``;
    * ``"espeak_test"``: espeak-ng clips of voices held out of train and val -> ``audio``
      float32 (N,L) zero padded, ``audio_length`` int64, ``sample_rate`` int, ``label`` int64,
      ``speaker`` str (N,), ``audio_file`` str (N,), ``name``.
    """
    if name not in EVAL_SETS:
        raise DatasetError(f"unknown eval set {name!r}; expected one of {EVAL_SETS}")
    manifest = load_manifest(root)
    r = digits_root(root)
    if name == "espeak_test" and not manifest.get("espeak", {}).get("used", False):
        raise DatasetError(f"digits dataset in {r} was built with --no-tts: it has no espeak_test set")
    try:
        with np.load(r / "samples.npz", allow_pickle=False) as npz:
            z = {k: npz[k] for k in npz.files if k.startswith(f"{name}_")}
        if name == "mnist_test":
            img, label = z["mnist_test_image"], z["mnist_test_label"]
        else:
            rec, label = z["espeak_test_recording"].astype(np.int64), z["espeak_test_label"]
    except Exception as exc:  # noqa: BLE001 - zip, pickle, key and value errors alike
        raise _corrupt(r / "samples.npz", exc) from exc
    if name == "mnist_test":
        return {
            "image": (img.astype(np.float32) / 255.0)[:, None],
            "label": label.astype(np.int64),
            "name": f"digits/{name}",
        }
    audio, lengths, files, speakers, sr = _audio(rec, root)
    return {
        "audio": audio,
        "audio_length": lengths,
        "sample_rate": sr,
        "label": label.astype(np.int64),
        "speaker": speakers,
        "audio_file": files,
        "name": f"digits/{name}",
    }
