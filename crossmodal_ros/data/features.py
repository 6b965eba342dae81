# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Dataset dict -> model tensors (``docs/architecture.md``), with the audio mels cached on disk.

The dataset keeps raw waveforms; the model needs log-mels from the :class:`AudioCodec`.
Computing them takes seconds, so they are cached under :func:`crossmodal_ros.paths.cache_dir`
in a file named by a hash of the audio data and the codec's constants: a different dataset or
a changed codec constant can never reuse stale features. Samples share recordings (the digits
dataset pairs ~11k pen samples with 3k recordings), so each distinct clip is computed once.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

import numpy as np

from crossmodal_ros.codecs import AudioCodec, default_codecs


def _distinct_clips(ds: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clips (K,L), lengths (K,), index (N,) into clips) of the dataset's waveforms."""
    audio, lengths = ds["audio"], np.asarray(ds["audio_length"], np.int64)
    if "recording" in ds:
        uniq, first, index = np.unique(np.asarray(ds["recording"]), return_index=True, return_inverse=True)
    else:  # identify equal clips by their bytes
        keys: dict[bytes, int] = {}
        first_list, index = [], np.empty(len(audio), np.int64)
        for i in range(len(audio)):
            h = hashlib.blake2b(audio[i, : lengths[i]].tobytes(), digest_size=16).digest()
            if h not in keys:
                keys[h] = len(first_list)
                first_list.append(i)
            index[i] = keys[h]
        first = np.array(first_list, np.int64)
    return audio[first], lengths[first], np.asarray(index, np.int64).reshape(-1)


def audio_cache_key(clips: np.ndarray, lengths: np.ndarray, sample_rate: int, codec: AudioCodec) -> str:
    """Hash of the clips' valid samples, their rate and the codec's constants."""
    h = hashlib.sha256()
    h.update(json.dumps(codec.to_dict(), sort_keys=True).encode())
    h.update(str(int(sample_rate)).encode())
    h.update(np.ascontiguousarray(lengths, np.int64).tobytes())
    for row, n in zip(clips, lengths):
        h.update(np.ascontiguousarray(row[:n], np.float32).tobytes())
    return h.hexdigest()[:32]


def _atomic_save(path, arr: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp_", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def audio_mels(ds: dict, codec: AudioCodec | None = None, cache: bool = True) -> np.ndarray:
    """float32 (N,1,128,32) mels of the dataset: ``audio_mel`` if present, else computed (cached)."""
    if "audio_mel" in ds:
        return np.asarray(ds["audio_mel"], np.float32)
    codec = codec or AudioCodec()
    clips, lengths, index = _distinct_clips(ds)
    sr = int(ds["sample_rate"])
    mel = None
    path = None
    if cache:
        from crossmodal_ros.paths import cache_dir

        path = os.path.join(cache_dir(), f"mel_{audio_cache_key(clips, lengths, sr, codec)}.npy")
        if os.path.isfile(path):
            try:
                mel = np.load(path, allow_pickle=False)
                if mel.shape != (len(clips), 1, codec.n_mels, codec.n_frames):
                    mel = None
            except (OSError, ValueError):
                mel = None  # corrupt cache entry: recompute and overwrite
    if mel is None:
        mel = codec.encode_batch(clips, lengths, sr)
        if path is not None:
            _atomic_save(path, mel)
    return mel[index]


def model_tensors(ds: dict, codecs: dict | None = None, cache: bool = True) -> dict:
    """Dataset dict -> ``{"image", "audio", "trajectory", "label" (one-hot), "y"}`` torch tensors.

    Shapes: image (N,1,28,28), audio (N,1,128,32), trajectory (N,200), label (N,10) one-hot
    float, y (N,) int64. A modality the dataset lacks is left out.
    """
    import torch

    codecs = codecs or default_codecs()
    out = {}
    if "image" in ds:
        out["image"] = torch.from_numpy(np.ascontiguousarray(ds["image"], np.float32))
    if "audio_mel" in ds or "audio" in ds:
        out["audio"] = torch.from_numpy(np.ascontiguousarray(audio_mels(ds, codecs.get("audio"), cache)))
    if "trajectory" in ds:
        out["trajectory"] = torch.from_numpy(np.ascontiguousarray(ds["trajectory"], np.float32))
    y = torch.from_numpy(np.asarray(ds["label"], np.int64))
    n_classes = getattr(codecs.get("label"), "num_classes", 10)
    out["label"] = torch.nn.functional.one_hot(y, n_classes).float()
    out["y"] = y
    return out
