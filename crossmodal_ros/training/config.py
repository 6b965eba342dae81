# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The ``crossmodal-train`` config: the ``train:`` section's defaults and checks, the whole
config file's validation (model sections are checked by their model kind), and the errors the
trainer raises.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..models import MODEL_KINDS
from ..models.base import ModelConfigError, merge_config

#: The ``train:`` section of a config with its defaults (the reference training setup).
TRAIN_DEFAULTS: dict = {
    "epochs": 100,
    "batch_size": 64,
    "lr": 1.0e-3,
    "seed": 0,
    "val_fraction": 0.1,
    "device": "auto",
    "sound_pretrain_epochs": 30,
    "sound_pretrain_lr": 1.0e-3,
    "sound_pretrain_batch_size": 64,
    "grad_clip": 0.0,           # max gradient norm; 0 = off
    "num_threads": 0,           # torch CPU threads; 0 = torch's default
    "half_best": False,         # store best.pt as float16
    "val_split": "",            # "" = a seeded val_fraction of the train split; else a dataset split (e.g. "val")
    "exclude_speakers": [],     # speakers never heard in training (their samples get other speakers' clips)
    "grad_accum": 1,            # micro-batches per optimizer step (batch_size is the step's batch, split over them)
    "precision": "fp32",        # fp32 | bf16 | fp16 (autocast; fp16 with loss scaling, CUDA only) | auto (bf16
                                #   where the device has native bf16: AMX/AVX512-BF16 CPU or a bf16 GPU; else fp32)
    "fused_adam": "auto",       # auto (torch's fused Adam kernel where it exists) | true | false (for-each Adam)
}
#: ``train.precision`` values.
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
#: Top-level keys of a config file.
CONFIG_KEYS = ("kind", "data", "model", "train", "augment")


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, resume mismatch, no data); the message says why."""


class ConfigError(ValueError):
    """A bad training config; the message names the offending key."""


def load_config(path) -> dict:
    """Read and validate a YAML config -> ``{"kind", "data", "model", "train"}`` fully resolved.

    Raises :class:`ConfigError` for a missing file, bad YAML, unknown keys or bad values.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    return resolve_config(raw, str(path))


def resolve_config(raw, source: str = "<config>") -> dict:
    """Validate a config mapping (see :func:`load_config`) and fill in defaults."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping with keys {CONFIG_KEYS}")
    unknown = [k for k in raw if k not in CONFIG_KEYS]
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s) {unknown}; allowed: {list(CONFIG_KEYS)}")
    kind = raw.get("kind")
    if kind not in MODEL_KINDS:
        raise ConfigError(f"{source}: config key 'kind' must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    data = raw.get("data", "digits")
    if not isinstance(data, str) or not data:
        raise ConfigError(f"{source}: config key 'data' must be a dataset spec string, got {data!r}")
    try:
        model_cfg = MODEL_KINDS[kind].resolve_config(raw.get("model") or {})
        train_cfg = merge_config(TRAIN_DEFAULTS, raw.get("train") or {}, "train")
    except ModelConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    _check_train(train_cfg, source)
    from ..augment import AugmentError, resolve_augment

    try:
        aug_cfg = resolve_augment(raw.get("augment"))
    except AugmentError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return {"kind": kind, "data": data, "model": model_cfg, "train": train_cfg, "augment": aug_cfg}


def _check_train(t: dict, source: str) -> None:
    def bad(key, why):
        raise ConfigError(f"{source}: config key 'train.{key}' {why}, got {t[key]!r}")

    for key in ("epochs", "sound_pretrain_epochs", "num_threads"):
        if t[key] < 0:
            bad(key, "must be >= 0")
    for key in ("batch_size", "sound_pretrain_batch_size"):
        if t[key] < 2:
            bad(key, "must be >= 2 (BatchNorm needs two samples)")
    for key in ("lr", "sound_pretrain_lr"):
        if not t[key] > 0 or not math.isfinite(t[key]):
            bad(key, "must be a positive number")
    if not 0.0 < t["val_fraction"] < 1.0:
        bad("val_fraction", "must be in (0, 1)")
    if t["grad_clip"] < 0:
        bad("grad_clip", "must be >= 0")
    if t["device"] not in ("auto", "cpu", "cuda") and not str(t["device"]).startswith("cuda:"):
        bad("device", "must be auto, cpu, cuda or cuda:N")
    if not isinstance(t["val_split"], str):
        bad("val_split", "must be a split name or ''")
    if not isinstance(t["exclude_speakers"], list) or not all(isinstance(x, str) for x in t["exclude_speakers"]):
        bad("exclude_speakers", "must be a list of speaker names")
    if t["grad_accum"] < 1:
        bad("grad_accum", "must be >= 1")
    if t["precision"] not in PRECISIONS:
        bad("precision", f"must be one of {list(PRECISIONS)}")
    if t["fused_adam"] not in ("auto", True, False):
        bad("fused_adam", "must be auto, true or false")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu (engine.resolve_device); errors as TrainingError."""
    from ..engine import resolve_device as _resolve

    try:
        return _resolve(name)
    except (ValueError, RuntimeError) as exc:
        raise TrainingError(str(exc)) from exc

