# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Training data: model tensors of a dataset spec (with the augmentation bank and speaker
exclusion), the seeded train/validation split and the mini-batches.
"""
from __future__ import annotations

import math

import torch

from .config import TrainingError

def load_tensors(spec: str, split: str = "train"):
    """Model tensors (docs/architecture.md) of dataset ``spec`` and the codecs that made them:
    ``(tensors, codecs_dict)``.
    """
    tensors, codecs, _ = load_train_data(spec, split)
    return tensors, codecs


def spread_indices(n: int, limit: int | None):
    """``limit`` sample indices spread evenly over ``range(n)`` (first and last included), or None
    for all of them (``limit`` falsy or >= ``n``). The data are ordered by source and class, so
    the first N samples of a tiny run would all be pen-rendered digits of the first classes.
    """
    import numpy as np

    if not limit or int(limit) >= n:
        return None
    return np.unique(np.linspace(0, n - 1, int(limit)).round().astype(np.int64))


def load_train_data(spec: str, split: str = "train", exclude_speakers=(), augment: dict | None = None,
                    seed: int = 0, log=None, limit: int | None = None):
    """Model tensors of dataset ``spec`` as the trainer uses them, the codecs, and the
    augmentation bank.

    ``exclude_speakers``: samples whose recording is by one of them get a recording of the same
    label by another speaker (seeded), so those speakers are never heard. ``augment`` (a resolved
    ``augment:`` section with ``enabled``): also returns the :class:`~crossmodal_ros.augment.AugmentBank`
    and adds ``aug_index`` to the tensors. ``limit``: keep only that many samples, spread over
    the data (:func:`spread_indices`), before features and augmentation variants are computed (a
    tiny run does not build the bank of the whole split). Returns
    ``(tensors, codecs_dict, bank_or_None)``.
    """
    from ..codecs import codecs_to_dict, default_codecs
    from ..data import load_dataset
    from ..data.features import model_tensors

    codecs = default_codecs()
    ds = load_dataset(spec, split)
    if exclude_speakers:  # on the whole split: the substitute recordings come from all of it
        ds = exclude_speaker_audio(ds, list(exclude_speakers), seed)
    ds = limit_samples(ds, limit)
    tensors = model_tensors(ds, codecs)
    bank = None
    if augment and augment.get("enabled"):
        from ..augment import build_bank

        bank, index = build_bank(ds, codecs, augment, log=log)
        tensors["aug_index"] = torch.from_numpy(index)
    return tensors, codecs_to_dict(codecs), bank


def exclude_speaker_audio(ds: dict, speakers: list, seed: int) -> dict:
    """A copy of dataset dict ``ds`` in which no sample's audio is by one of ``speakers``: each
    such sample takes the clip of a seeded random sample of the same label by another speaker.
    """
    import numpy as np

    if "speaker" not in ds or "audio" not in ds:
        raise TrainingError("train.exclude_speakers needs a dataset with audio and speaker names")
    spk = np.asarray(ds["speaker"]).astype(str)
    unknown = sorted(set(speakers) - set(spk.tolist()))
    if unknown:
        raise TrainingError(f"train.exclude_speakers: {unknown} not in the data "
                            f"(speakers: {sorted(set(spk.tolist()))})")
    bad = np.isin(spk, speakers)
    rng = np.random.default_rng([int(seed), 17])
    src = np.arange(len(spk))
    labels = np.asarray(ds["label"])
    for d in np.unique(labels[bad]):
        pool = np.flatnonzero((labels == d) & ~bad)
        if len(pool) == 0:
            raise TrainingError(f"train.exclude_speakers: no other speaker's recording of label {d}")
        rows = np.flatnonzero((labels == d) & bad)
        src[rows] = rng.choice(pool, len(rows))
    out = dict(ds)
    for key in ("audio", "audio_length", "speaker", "recording", "audio_file"):
        if key in ds:
            out[key] = np.asarray(ds[key])[src]
    return out


def split_train_val(tensors: dict, val_fraction: float, seed: int, limit: int | None = None):
    """Seeded split of a tensor dict into (train, val); ``limit`` keeps N samples spread over
    the data first (:func:`spread_indices`).
    """
    tensors = limit_samples(tensors, limit)
    n = next(iter(tensors.values())).shape[0]
    n_val = max(2, int(round(n * val_fraction)))
    if n - n_val < 2:
        raise TrainingError(f"{n} samples are too few to split off a validation set (need >= {n_val + 2})")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    take = lambda idx: {k: v[idx] for k, v in tensors.items() if isinstance(v, torch.Tensor)}  # noqa: E731
    return take(train_idx), take(val_idx)


def limit_samples(data: dict, limit: int | None) -> dict:
    """``limit`` samples of a tensor or dataset dict, spread over it (:func:`spread_indices`; all
    of them when ``limit`` is falsy): every torch tensor or numpy array with one row per sample is
    indexed, other values (a dataset's name, its sample rate) are kept.
    """
    n = len(data["label"]) if "label" in data else next(iter(data.values())).shape[0]
    keep = spread_indices(n, limit)
    if keep is None:
        return data
    idx = torch.from_numpy(keep)
    return {k: (v[idx if isinstance(v, torch.Tensor) else keep] if getattr(v, "ndim", 0) >= 1 and len(v) == n else v)
            for k, v in data.items()}


def batches(tensors: dict, batch_size: int, generator: torch.Generator | None, device, keys=None):
    """Mini-batches (dicts) over ``tensors``; shuffled when ``generator`` is given. A final
    batch of one sample is dropped in training (BatchNorm needs two).
    """
    n = next(iter(tensors.values())).shape[0]
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    keys = keys or list(tensors)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if generator is not None and idx.numel() < 2:
            break
        yield {k: tensors[k][idx].to(device, non_blocking=True) for k in keys}



def fraction_subset(tensors: dict, fraction: float) -> dict:
    """The first ``ceil(fraction * N)`` samples (at least 2) of an already shuffled tensor dict:
    a fixed subset, e.g. the few paired samples of a semi-supervised phase.
    """
    n = next(iter(tensors.values())).shape[0]
    k = min(n, max(2, math.ceil(fraction * n)))
    return {key: v[:k] for key, v in tensors.items()}
