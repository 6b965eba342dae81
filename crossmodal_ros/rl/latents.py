# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Precomputed fused latents: one (mu, logvar) per (dataset sample, live sensor subset).

The environment never runs the model: the :class:`~crossmodal_ros.engine.FusionEngine` encodes
every sample of a split under every non-empty subset of the sensor modalities once, in batches,
and the table is cached on disk in a file named by the checkpoint file's SHA-256, the dataset
spec and the split. An RL step is then an array lookup. A retrained checkpoint has another hash,
so a stale table is never reused (and a policy trained on one latent space records the hash it
was trained against, see :mod:`crossmodal_ros.rl.policy`).

The table also keeps the model's image tensor of every sample (uint8, 28x28) for the raw-pixel
comparison policy, and the labels for the rewards.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY, subset_name

#: The sensor modalities an agent may perceive (the label is a teacher modality: never an input).
SENSORS: tuple[str, ...] = (IMAGE, AUDIO, TRAJECTORY)
CACHE_VERSION = 1


def sensor_subsets(sensors: tuple[str, ...] = SENSORS) -> list[str]:
    """Names of every non-empty subset of ``sensors`` (``image``, ..., ``image+audio+trajectory``)."""
    out = []
    for k in range(1, len(sensors) + 1):
        out.extend(subset_name(c) for c in combinations(sensors, k))
    return out


def canonical_subset(subset) -> str:
    """``"audio+image"``, ``("image", "audio")`` or ``"image"`` -> the canonical subset name."""
    parts = subset.split("+") if isinstance(subset, str) else list(subset)
    parts = [p.strip() for p in parts if p.strip()]
    bad = [p for p in parts if p not in SENSORS]
    if not parts or bad:
        raise ValueError(f"a subset is a non-empty '+'-joined set of {SENSORS}, got {subset!r}")
    return subset_name(set(parts))


def file_sha256(path) -> str:
    """SHA-256 hex digest of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LatentTable:
    """Latents of one split: ``mu[subset]``, ``logvar[subset]`` (N, D) float32 per subset name;
    ``label`` (N,) int64; ``image`` (N, 784) uint8 (the model's image input, for the raw-pixel
    baseline); ``checkpoint_sha256``; ``split``.
    """

    mu: dict
    logvar: dict
    label: np.ndarray
    image: np.ndarray
    checkpoint_sha256: str = ""
    split: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.label.shape[0])

    @property
    def latent_dim(self) -> int:
        return int(next(iter(self.mu.values())).shape[1])

    @property
    def subsets(self) -> list[str]:
        return list(self.mu)

    def subset(self, n: int, seed: int = 0) -> "LatentTable":
        """A seeded random subsample of ``n`` rows (tests, quick runs)."""
        idx = np.sort(np.random.default_rng(seed).choice(self.n, size=min(n, self.n), replace=False))
        return LatentTable({k: v[idx] for k, v in self.mu.items()}, {k: v[idx] for k, v in self.logvar.items()},
                           self.label[idx], self.image[idx], self.checkpoint_sha256, self.split, dict(self.meta))


def build_latent_table(engine, ds: dict, subsets=None, batch: int = 512, split: str = "",
                       checkpoint_sha256: str = "") -> LatentTable:
    """Encode every sample of dataset dict ``ds`` under every subset (names) with ``engine``
    (batched ``infer_tensors``, mean latents: ``engine.sample`` is ignored).
    """
    import torch

    from crossmodal_ros.data.features import model_tensors

    subsets = [canonical_subset(s) for s in (subsets or sensor_subsets())]
    tensors = model_tensors(ds, engine.codecs)
    n = int(tensors["y"].shape[0])
    mu, logvar = {}, {}
    was_sampling, engine.sample = engine.sample, False
    try:
        for name in subsets:
            mods = name.split("+")
            mus, lvs = [], []
            for s in range(0, n, batch):
                out = engine.infer_tensors({m: tensors[m][s:s + batch] for m in mods})
                mus.append(out["latent_mu"].astype(np.float32))
                lvs.append(out["latent_logvar"].astype(np.float32))
            mu[name], logvar[name] = np.concatenate(mus), np.concatenate(lvs)
    finally:
        engine.sample = was_sampling
    image = np.clip(np.round(tensors[IMAGE].reshape(n, -1).numpy() * 255.0), 0, 255).astype(np.uint8)
    del torch
    return LatentTable(mu, logvar, tensors["y"].numpy().astype(np.int64), image, checkpoint_sha256, split)


def cache_path(checkpoint_sha256: str, split: str, data: str = "digits", cache_dir=None) -> Path:
    """The cache file of the latents of one checkpoint, split and dataset."""
    from crossmodal_ros.paths import cache_dir as default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "rl"
    root.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(f"{data}|{split}|v{CACHE_VERSION}".encode()).hexdigest()[:8]
    return root / f"latents_{checkpoint_sha256[:16]}_{split}_{tag}.npz"


def save_table(table: LatentTable, path) -> None:
    arrays = {"label": table.label, "image": table.image,
              "checkpoint_sha256": np.array(table.checkpoint_sha256), "split": np.array(table.split),
              "subsets": np.array(table.subsets)}
    for k in table.subsets:
        arrays[f"mu/{k}"] = table.mu[k]
        arrays[f"logvar/{k}"] = table.logvar[k]
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_table(path) -> LatentTable:
    with np.load(path, allow_pickle=False) as z:
        subsets = [str(s) for s in z["subsets"]]
        return LatentTable({k: z[f"mu/{k}"] for k in subsets}, {k: z[f"logvar/{k}"] for k in subsets},
                           z["label"], z["image"], str(z["checkpoint_sha256"]), str(z["split"]))


def load_latent_table(split: str, checkpoint=None, data: str = "digits", cache_dir=None, engine=None,
                      rebuild: bool = False, verbose: bool = False) -> LatentTable:
    """The latent table of ``split`` for ``checkpoint`` (default: the shipped model), from the
    cache when a table for this checkpoint hash exists, else built (and cached).
    """
    from crossmodal_ros.data import load_dataset
    from crossmodal_ros.paths import default_checkpoint

    checkpoint = Path(checkpoint) if checkpoint not in (None, "") else default_checkpoint()
    sha = file_sha256(checkpoint)
    path = cache_path(sha, split, data, cache_dir)
    if path.is_file() and not rebuild:
        try:
            table = read_table(path)
            if table.checkpoint_sha256 == sha and set(table.subsets) >= set(sensor_subsets()):
                return table
        except (OSError, ValueError, KeyError):
            pass  # corrupt entry: rebuild and overwrite
    if engine is None:
        from crossmodal_ros.engine import FusionEngine

        engine = FusionEngine.from_checkpoint(checkpoint, device="cpu")
    if verbose:
        print(f"encoding the {split} split under {len(sensor_subsets())} sensor subsets "
              f"(checkpoint {sha[:12]}) -> {path}", flush=True)
    table = build_latent_table(engine, load_dataset(data, split), split=split, checkpoint_sha256=sha)
    save_table(table, path)
    return table


__all__ = ["SENSORS", "LatentTable", "build_latent_table", "load_latent_table", "sensor_subsets",
           "canonical_subset", "file_sha256", "cache_path", "AUDIO", "IMAGE", "TRAJECTORY"]
