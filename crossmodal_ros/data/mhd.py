# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Loader of the MHD data set files (``mhd_train.pt`` / ``mhd_test.pt``) into the dataset schema.

File format (NEXUS_SPEC.md, "MHD files"): ``torch.load`` gives a tuple
``(labels int64 (N,), images (N,1,28,28) in [0,1], trajectories (N,200) in [0,1],
sounds, trajectory normalisation {min,max}, audio normalisation {min,max})``; the sound of one
sample is stored in 32-frame chunks that concatenate along the first axis to 128 x 32
(mel x frames), already in [0,1]. MHD has no raw waveforms, so the dict carries ``audio_mel``
(N,1,128,32) instead of ``audio``; it has no writer or speaker ids (-1 / "").

Security: these files are pickles. They are first opened with ``weights_only=True``; only if
that fails (the tuple holds non-tensor objects) are they loaded with ``weights_only=False``,
which can execute code - load only MHD files from a source you trust.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crossmodal_ros.data.digits import DatasetError

MHD_FILES = {"train": "mhd_train.pt", "test": "mhd_test.pt"}


def _find(path_or_dir, split: str) -> Path:
    p = Path(path_or_dir)
    if p.is_dir():
        if split not in MHD_FILES:
            raise DatasetError(f"MHD has splits {tuple(MHD_FILES)}, not {split!r}")
        p = p / MHD_FILES[split]
    if not p.is_file():
        raise DatasetError(f"MHD file not found: {p} (expected {MHD_FILES.get(split, 'mhd_<split>.pt')})")
    return p


def _torch_load(p: Path):
    import torch

    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not loadable as plain tensors: the trusted-pickle path
        try:
            return torch.load(p, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(f"{p}: cannot be read as an MHD file ({exc})") from exc


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def sounds_to_mel(sounds, n: int) -> np.ndarray:
    """MHD sound entries -> float32 (N,1,128,32) (mel x frames).

    Accepts per-sample lists of 32-frame chunks (each (32,32) or (1,32,32)) concatenated along
    their first axis, or an already stacked array/tensor of shape (N,128,32), (N,1,128,32),
    (N,4,32,32) or (N,1,32,128) (the model's 1x32x128 layout, transposed back).
    """
    if isinstance(sounds, (list, tuple)):
        rows = []
        for s in sounds:
            if isinstance(s, (list, tuple)):
                chunks = [_np(c).reshape(-1, _np(c).shape[-1]) for c in s]
                m = np.concatenate(chunks, axis=0)
            else:
                m = _np(s)
                m = m.reshape(-1, m.shape[-1])
            rows.append(m)
        arr = np.stack(rows) if rows else np.zeros((0, 128, 32), np.float32)
    else:
        arr = _np(sounds)
        if arr.ndim == 4 and arr.shape[1:] == (4, 32, 32):
            arr = arr.reshape(arr.shape[0], 128, 32)
        elif arr.ndim == 4 and arr.shape[1] == 1:
            arr = arr[:, 0]
    if arr.ndim == 3 and arr.shape[1:] == (32, 128):
        arr = arr.transpose(0, 2, 1)
    if arr.shape != (n, 128, 32):
        raise DatasetError(f"MHD sounds: got shape {arr.shape}, expected ({n},128,32) after concatenating chunks")
    return arr.astype(np.float32)[:, None]


def load_mhd(path_or_dir, split: str) -> dict:
    """Load ``split`` ("train"/"test") from an MHD folder (or one ``.pt`` file) as a dataset dict.

    Only load files you trust: they are pickles (see the module docstring).
    """
    p = _find(path_or_dir, split)
    data = _torch_load(p)
    if not isinstance(data, (tuple, list)) or len(data) < 4:
        raise DatasetError(f"{p}: expected the MHD tuple (labels, images, trajectories, sounds, ...), got "
                           f"{type(data).__name__}")
    labels = _np(data[0]).astype(np.int64).reshape(-1)
    n = len(labels)
    images = _np(data[1]).astype(np.float32)
    if images.shape in ((n, 28, 28),):
        images = images[:, None]
    traj = _np(data[2]).astype(np.float32)
    if images.shape != (n, 1, 28, 28) or traj.shape != (n, 200):
        raise DatasetError(f"{p}: images {images.shape} / trajectories {traj.shape}; expected ({n},1,28,28) / "
                           f"({n},200)")
    mel = sounds_to_mel(data[3], n)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{p}: labels outside 0..9")
    return {
        "image": images,
        "trajectory": traj,
        "audio_mel": mel,
        "sample_rate": 16000,
        "label": labels,
        "writer": np.full(n, -1, np.int64),
        "speaker": np.full(n, "", dtype="<U1"),
        "name": f"mhd/{split}",
    }
