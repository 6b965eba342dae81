# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The one model interface (:class:`MultimodalModel`) and the loss helpers the models share.

Every model takes ``dict[modality -> tensor]`` plus a bool presence mask ``(B, M)`` over
``model.modalities`` (``None`` = every modality given in the dict is present), can condition on
any non-empty subset, and can generate every modality. See docs/architecture.md.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .. import units
from ..units.losses import (LOG_2PI, gaussian_log_density, kl_standard_normal,  # noqa: F401 - re-exported
                           reparameterize, shared_sigma_gaussian_nll, soft_cross_entropy, softclip,
                           sum_squared_error)


class ModelInputError(ValueError):
    """Bad input to a model: empty subset, unknown modality, wrong tensor shape or mask."""


class ModelConfigError(ValueError):
    """A model configuration with an unknown key or a bad value (the message names the key)."""


# --------------------------------------------------------------------------- loss helpers
# the reconstruction losses live with the modality units (crossmodal_ros.units.losses)


def kl_warmup(epoch: float, warmup_epochs: float) -> float:
    """KL weight factor: linear from 1/warmup at epoch 0 to 1 at epoch ``warmup_epochs - 1``."""
    if warmup_epochs <= 0:
        return 1.0
    return float(min(1.0, (epoch + 1.0) / warmup_epochs))


def masked(value: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per-sample ``value`` (B,) where ``present`` (B,) is true, else 0 (no NaN leakage)."""
    return torch.where(present, value, torch.zeros((), dtype=value.dtype, device=value.device))


def mixture_moments(mu: torch.Tensor, logvar: torch.Tensor, weight: torch.Tensor):
    """The moment-matched Gaussian of a mixture: components (B, K, D), weights (B, K) summing
    to 1 -> ``(mean, logvar)`` (B, D).
    """
    w = weight.unsqueeze(-1)
    mean = (w * mu).sum(1)
    second = (w * (logvar.exp() + mu.pow(2))).sum(1)
    return mean, torch.log((second - mean.pow(2)).clamp_min(1e-8))


def loss_report(loss: torch.Tensor, terms: dict, **extra) -> tuple[torch.Tensor, dict]:
    """The ``(loss, logs)`` pair every model's :meth:`MultimodalModel.loss` returns: ``terms``
    (per-sample tensors) as batch means, then ``loss`` and the ``extra`` floats (e.g. the KL
    weight).
    """
    out = {k: float(v.detach().mean()) for k, v in terms.items()}
    out["loss"] = float(loss.detach())
    out.update(extra)
    return loss, out


# --------------------------------------------------------------------------- config
#: per-modality config dicts and the unit attribute that gives a modality's default
_UNIT_DEFAULT_KEYS = {"latent_dims": "latent_dim", "bottom_weights": "rec_weight", "top_weights": "rec_weight",
                      "rec_weights": "rec_weight"}


def _with_unit_defaults(defaults: dict, modalities) -> dict:
    """``defaults`` whose per-modality dicts (latent sizes, reconstruction weights) also hold the
    unit defaults of registered ``modalities`` they lack (a modality added by a unit module).
    """
    if not isinstance(modalities, (list, tuple)):
        return defaults
    extra = [m for m in modalities if isinstance(m, str) and units.is_registered(m)]
    out = dict(defaults)
    for key, attr in _UNIT_DEFAULT_KEYS.items():
        if isinstance(out.get(key), dict) and any(m not in out[key] for m in extra):
            out[key] = {**out[key], **{m: getattr(units.unit(m), attr) for m in extra if m not in out[key]}}
    return out


def merge_config(defaults: dict, config: dict | None, where: str = "model") -> dict:
    """``defaults`` updated with ``config``; unknown keys and type mismatches raise
    :class:`ModelConfigError` naming the key. Nested dicts are merged key by key.
    """
    out = copy.deepcopy(defaults)
    for key, value in (config or {}).items():
        name = f"{where}.{key}"
        if key not in defaults:
            raise ModelConfigError(f"unknown config key {name!r}; allowed: {sorted(defaults)}")
        ref = defaults[key]
        if isinstance(ref, dict):
            if not isinstance(value, dict):
                raise ModelConfigError(f"config key {name!r} must be a mapping, got {value!r}")
            out[key] = merge_config(ref, value, name)
        elif isinstance(ref, bool):
            if not isinstance(value, bool):
                raise ModelConfigError(f"config key {name!r} must be true or false, got {value!r}")
            out[key] = value
        elif isinstance(ref, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ModelConfigError(f"config key {name!r} must be a number, got {value!r}")
            if isinstance(ref, int) and not isinstance(ref, bool) and not float(value).is_integer():
                raise ModelConfigError(f"config key {name!r} must be an integer, got {value!r}")
            out[key] = type(ref)(value)
        elif isinstance(ref, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise ModelConfigError(f"config key {name!r} must be a list, got {value!r}")
            out[key] = list(value)
        elif isinstance(ref, str):
            if not isinstance(value, str):
                raise ModelConfigError(f"config key {name!r} must be a string, got {value!r}")
            out[key] = value
        else:  # pragma: no cover - defaults only use the types above
            out[key] = value
    return out


# --------------------------------------------------------------------------- the interface
class MultimodalModel(nn.Module):
    """Base class of every model: dict of modality tensors + presence mask in, any subset out.

    Subclasses set ``kind`` and ``DEFAULTS`` and implement :meth:`loss`, :meth:`encode` and
    :meth:`decode`. ``config`` is the complete plain (JSON-able) config: ``build_model(kind,
    config)`` rebuilds an identical architecture from it.
    """

    kind: str = ""
    DEFAULTS: dict = {}

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = self.resolve_config(config)
        mods = tuple(self.config["modalities"])
        self.modalities: tuple[str, ...] = mods
        self.latent_dim: int = int(self.config.get("shared_dim", 0))

    # ---- config
    @classmethod
    def resolve_config(cls, config: dict | None) -> dict:
        """Defaults merged with ``config`` and checked; raises :class:`ModelConfigError`."""
        cfg = merge_config(_with_unit_defaults(cls.DEFAULTS, (config or {}).get("modalities")), config)
        mods = cfg.get("modalities", list(units.names()))
        if not mods or len(set(mods)) != len(mods) or any(not units.is_registered(m) for m in mods):
            raise ModelConfigError(f"config key 'model.modalities' must be distinct names from {units.names()}, "
                                   f"got {mods!r}")
        cfg["modalities"] = list(units.canonical(mods))  # canonical order
        cls.check_config(cfg)
        return cfg

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        """Value checks beyond types; subclasses extend. Raises :class:`ModelConfigError`."""

    # ---- inputs
    def presence(self, inputs: dict, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Validated bool presence mask (B, M) over ``self.modalities``.

        Keys of ``inputs`` that name no registered modality unit (e.g. ``"y"``) are ignored; a modality this
        model does not have, a wrong tensor shape, a mask of the wrong shape or a sample with no
        present modality raise :class:`ModelInputError`.
        """
        given = [k for k in inputs if units.is_registered(k)]
        foreign = [k for k in given if k not in self.modalities]
        if foreign:
            raise ModelInputError(f"this {self.kind} model has modalities {self.modalities}; got {foreign}")
        if not given:
            raise ModelInputError(f"no modality given; expected a non-empty subset of {self.modalities}")
        batch = None
        for m in given:
            x = inputs[m]
            want = tuple(units.unit(m).shape)
            if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != want:
                shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
                raise ModelInputError(f"{m!r} must be a tensor of shape (B, {', '.join(map(str, want))}), "
                                      f"got {shape}")
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                raise ModelInputError(f"batch sizes differ between modalities: {batch} and {x.shape[0]} ({m!r})")
        device = inputs[given[0]].device
        avail = torch.tensor([m in inputs for m in self.modalities], device=device)
        if mask is None:
            present = avail.unsqueeze(0).expand(batch, -1)
        else:
            if mask.dtype != torch.bool or tuple(mask.shape) != (batch, len(self.modalities)):
                raise ModelInputError(f"mask must be a bool tensor of shape ({batch}, {len(self.modalities)}), "
                                      f"got {mask.dtype} {tuple(mask.shape)}")
            present = mask.to(device) & avail.unsqueeze(0)
        if not bool(present.any(1).all()):
            raise ModelInputError("every sample needs at least one present modality (empty subset)")
        return present

    # ---- the interface
    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0) -> tuple[torch.Tensor, dict]:
        """Training loss (scalar tensor) and a dict of float log terms for ``batch``."""
        raise NotImplementedError

    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        """``(mu, logvar)`` of the shared latent from any non-empty subset of modalities."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, modalities=None) -> dict:
        """Generate ``modalities`` (default all) from shared latents ``z`` (B, latent_dim)."""
        raise NotImplementedError

    def check_decode(self, z: torch.Tensor, modalities=None) -> tuple[str, ...]:
        """The modalities a :meth:`decode` call asks for (default all), after checking that this
        model has them and that ``z`` is (B, latent_dim); raises :class:`ModelInputError`.
        """
        mods = self.modalities if modalities is None else tuple(modalities)
        unknown = [m for m in mods if m not in self.modalities]
        if unknown:
            raise ModelInputError(f"this {self.kind} model cannot generate {unknown}; it has {self.modalities}")
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ModelInputError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return mods

    def pretraining_phases(self) -> list:
        """Stages the trainer runs before this model's own training, each a
        :class:`~crossmodal_ros.models.phased.PretrainPhase` (a part trained alone, then frozen);
        only those still to run. Default: none.
        """
        return []

    def infer(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False) -> dict:
        """Encode any subset then decode every modality; adds ``latent_mu``/``latent_logvar``.

        With ``sample=False`` the means are used at every level (deterministic); with
        ``sample=True`` the shared latent is sampled.
        """
        mu, logvar = self.encode(inputs, mask, sample=sample)
        z = reparameterize(mu, logvar) if sample else mu
        out = self.decode(z)
        out["latent_mu"] = mu
        out["latent_logvar"] = logvar
        return out


def state_digest(state: dict) -> str:
    """SHA-256 (hex) over a state dict's names, dtypes, shapes and raw bytes, in name order (the
    checkpoint's ``state_sha256``; also the ONNX path's cache key).
    """
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
