# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Model checkpoints: plain dicts of tensors and plain values, loadable with ``weights_only=True``.

Layout (docs/architecture.md)::

    {"format": "crossmodal_ros", "format_version": 1, "kind", "config", "modalities",
     "codecs": codecs_to_dict(...), "state_dict", "metrics", "train", "created",
     "state_sha256"}

``state_sha256`` (optional, written since the reliability work) is a SHA-256 of the state dict's
names, dtypes, shapes and bytes: torch does not verify the CRCs of its zip entries, so without it
a flipped bit in the weights loads silently. Loading checks it when present and refuses weights
holding NaN/Inf.

``load_checkpoint`` rebuilds the model from the checkpoint alone. A shipped model is saved with
``half=True`` (float16 state, upcast on load) and without optimizer state; the trainer keeps the
optimizer state for ``--resume`` in a separate ``last`` checkpoint (``train_state``).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import pickle
import tempfile
from pathlib import Path

import torch

from .models.base import state_digest  # noqa: F401 - re-exported: checkpoint.state_digest

FORMAT = "crossmodal_ros"
FORMAT_VERSION = 1
_REQUIRED = ("kind", "config", "modalities", "state_dict")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def _half_state(state: dict) -> dict:
    return {k: (v.half() if torch.is_floating_point(v) else v) for k, v in state.items()}


def save_checkpoint(path, model, codecs_dict: dict | None, metrics: dict | None = None,
                    train_state: dict | None = None, half: bool = False) -> Path:
    """Write ``model`` (a MultimodalModel) to ``path`` atomically (temp file + ``os.replace``).

    ``codecs_dict``: ``codecs_to_dict(...)`` of the codecs the model was trained with (plain
    values). ``metrics``: plain dict. ``train_state``: optional plain/tensor dict (optimizer
    state, epoch, ...) for resuming. ``half``: store floating tensors as float16.
    Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if half:
        state = _half_state(state)
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "config": model.config,
        "modalities": list(model.modalities),
        "codecs": codecs_dict or {},
        "state_dict": state,
        "metrics": metrics or {},
        "train": train_state or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "state_sha256": state_digest(state),
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(ckpt, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def set_model_options(src, dst, options: dict) -> Path:
    """Copy checkpoint ``src`` to ``dst`` with ``options`` merged into its model config, weights
    untouched (same ``state_sha256``): for options that change inference but not the
    architecture, e.g. ``{"infer_combine": "mixture"}`` for a Nexus. The new config must build a
    model the stored weights fit; otherwise :class:`CheckpointError` and nothing is written.
    """
    ckpt = read_checkpoint(src)
    ckpt["config"] = {**ckpt["config"], **options}
    model_from_checkpoint_dict(ckpt, src)          # validates config and weights together
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(ckpt, fh)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def read_checkpoint(path, device="cpu") -> dict:
    """The raw checkpoint dict of ``path`` (``weights_only=True``), validated; no model built.

    Raises :class:`CheckpointError` for a missing file, a truncated/corrupt file, a pickle that
    carries code, a file that is not a crossmodal_ros checkpoint or a wrong format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        # torch reports every failure of its safe unpickler as "Weights only load failed";
        # only an unsupported GLOBAL means the file references code or foreign objects. Other
        # details ("Unsupported operand ...") are damaged or non-checkpoint bytes.
        detail = _unpickler_detail(msg)
        if "global" in detail.lower():
            raise CheckpointError(
                f"checkpoint {path} contains pickled code or objects other than tensors and plain "
                "values; refusing to load it (torch.load weights_only=True). Only load files you "
                f"trust, and re-save them as plain checkpoints. Detail: {detail}") from exc
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated, or not a PyTorch "
                              f"checkpoint ({detail or exc!r})") from exc
    except Exception as exc:  # noqa: BLE001 - torch.load raises many types on damaged files
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a crossmodal_ros checkpoint (no 'format': '{FORMAT}' entry)")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format_version {version!r}; this crossmodal_ros "
                              f"reads format_version {FORMAT_VERSION}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the entries {missing}")
    expected = ckpt.get("state_sha256")
    if expected is not None and isinstance(ckpt["state_dict"], dict):
        try:
            actual = state_digest(ckpt["state_dict"])
        except Exception as exc:  # noqa: BLE001 - non-tensor entries
            raise CheckpointError(f"checkpoint {path} has a malformed state_dict: {exc}") from exc
        if actual != expected:
            raise CheckpointError(
                f"checkpoint {path}: the weights do not match the checksum stored with them "
                "(the file was damaged on disk or in transfer, or edited); restore or re-copy it")
    return ckpt


def _unpickler_detail(msg: str) -> str:
    """The specific reason inside torch's weights-only load error, without torch's boilerplate
    (which advises retrying with weights_only=False).
    """
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation",
                   "(1)", "(2)", "In PyTorch")
    for line in msg.splitlines():
        line = line.strip()
        if "WeightsUnpickler error:" in line:
            line = line.split("WeightsUnpickler error:", 1)[1].strip()
        if line and not line.startswith(boilerplate):
            return line.split(" Please use ")[0]
    return msg.strip().splitlines()[0] if msg.strip() else ""


def model_from_checkpoint_dict(ckpt: dict, path="<checkpoint>", device="cpu"):
    """Build the model recorded in a validated checkpoint dict and load its (upcast) weights."""
    from .models import MODEL_KINDS, build_model
    from .models.base import ModelConfigError

    kind = ckpt["kind"]
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"checkpoint {path} holds a model of unknown kind {kind!r}; "
                              f"known kinds: {sorted(MODEL_KINDS)}")
    try:
        model = build_model(kind, ckpt["config"])
    except ModelConfigError as exc:
        raise CheckpointError(f"checkpoint {path} has a config this version cannot build: {exc}") from exc
    ref = model.state_dict()
    bad = sorted(k for k, v in ckpt["state_dict"].items()
                 if torch.is_tensor(v) and torch.is_floating_point(v) and not torch.isfinite(v).all())
    if bad:
        raise CheckpointError(f"checkpoint {path} holds NaN/Inf weights in {len(bad)} tensors (e.g. "
                              f"{bad[:3]}); it comes from a diverged training run - retrain or use "
                              "an earlier checkpoint")
    state = {k: (v.to(ref[k].dtype) if k in ref and torch.is_floating_point(v) else v)
             for k, v in ckpt["state_dict"].items()}
    missing = sorted(set(ref) - set(state))
    unexpected = sorted(set(state) - set(ref))
    shapes = [k for k in set(ref) & set(state) if tuple(ref[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensors (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"shape mismatch in {sorted(shapes)[:3]}")
        raise CheckpointError(f"checkpoint {path}: state dict does not match a {kind!r} model with its "
                              f"config: {'; '.join(parts)}")
    model.load_state_dict(state)
    return model.to(device).eval()


def load_checkpoint(path, device="cpu", options: dict | None = None):
    """Load ``path`` -> ``(model, codecs_dict, meta)``, the model in eval mode on ``device``.

    ``codecs_dict`` is the plain dict to pass to ``codecs.codecs_from_dict``; ``meta`` holds
    ``kind``, ``config``, ``modalities``, ``metrics``, ``train`` (may hold optimizer state),
    ``created``, ``format_version`` and ``path``. ``options``: inference-only model options merged
    into the stored config in memory (as :func:`set_model_options` does on disk), e.g.
    ``{"infer_combine": "aggregate"}``. Raises :class:`CheckpointError`.
    """
    ckpt = read_checkpoint(path, device)
    if options:
        ckpt["config"] = {**ckpt["config"], **options}
        try:
            model = model_from_checkpoint_dict(ckpt, path, device)
        except CheckpointError as exc:
            raise CheckpointError(f"model options {options} do not apply to the {ckpt['kind']} checkpoint "
                                  f"{path}: {exc}") from exc
    else:
        model = model_from_checkpoint_dict(ckpt, path, device)
    meta = {k: ckpt.get(k) for k in ("kind", "config", "modalities", "metrics", "train", "created", "format_version")}
    meta["path"] = str(path)
    return model, ckpt.get("codecs") or {}, meta


def file_sha256(path) -> str:
    """Hex SHA-256 of the file at ``path`` ('' when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()
