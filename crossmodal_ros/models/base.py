# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The one model interface (:class:`MultimodalModel`) and the loss helpers the models share.

Every model takes ``dict[modality -> tensor]`` plus a bool presence mask ``(B, M)`` over
``model.modalities`` (``None`` = every modality given in the dict is present), can condition on
any non-empty subset, and can generate every modality. See docs/architecture.md.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..modalities import MODALITIES, MODEL_SHAPES


class ModelInputError(ValueError):
    """Bad input to a model: empty subset, unknown modality, wrong tensor shape or mask."""


class ModelConfigError(ValueError):
    """A model configuration with an unknown key or a bad value (the message names the key)."""


# --------------------------------------------------------------------------- loss helpers
LOG_2PI = math.log(2.0 * math.pi)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A sample of N(mu, exp(logvar)) that gradients flow through."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions -> (B,)."""
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Log N(z; mu, exp(logvar)) summed over the last axis (broadcasts over leading axes)."""
    return -0.5 * torch.sum(LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar), dim=-1)


def sum_squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors per sample -> (B,)."""
    return (x_hat - x).pow(2).flatten(1).sum(1)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` against a one-hot (or soft) ``target`` per sample -> (B,)."""
    return -(target * torch.log_softmax(logits, dim=-1)).sum(-1)


def softclip(x: torch.Tensor, minimum: float) -> torch.Tensor:
    """Soft lower bound: ``minimum + softplus(x - minimum)`` (SigmaVAE's log-sigma clip)."""
    return minimum + nn.functional.softplus(x - minimum)


def shared_sigma_gaussian_nll(x_hat: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None = None,
                              min_log_sigma: float = -6.0) -> torch.Tensor:
    """Gaussian NLL per sample with one sigma shared by the batch (SigmaVAE, optimal sigma).

    sigma^2 is the mean squared error over the (present) batch elements, its log soft-clipped
    at ``min_log_sigma``; the NLL is summed over each sample's elements -> (B,).
    ``weight`` (B,) in {0, 1} excludes absent samples from the sigma estimate.
    """
    se = (x_hat - x).pow(2).flatten(1)
    if weight is None:
        mse = se.mean()
    else:
        mse = (se.mean(1) * weight).sum() / weight.sum().clamp_min(1.0)
    log_sigma = softclip(0.5 * torch.log(mse + 1e-12), min_log_sigma)
    return (0.5 * se * torch.exp(-2.0 * log_sigma) + log_sigma + 0.5 * LOG_2PI).sum(1)


def kl_warmup(epoch: float, warmup_epochs: float) -> float:
    """KL weight factor: linear from 1/warmup at epoch 0 to 1 at epoch ``warmup_epochs - 1``."""
    if warmup_epochs <= 0:
        return 1.0
    return float(min(1.0, (epoch + 1.0) / warmup_epochs))


def masked(value: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per-sample ``value`` (B,) where ``present`` (B,) is true, else 0 (no NaN leakage)."""
    return torch.where(present, value, torch.zeros((), dtype=value.dtype, device=value.device))


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
        cfg = merge_config(cls.DEFAULTS, config)
        mods = cfg.get("modalities", list(MODALITIES))
        if not mods or len(set(mods)) != len(mods) or any(m not in MODALITIES for m in mods):
            raise ModelConfigError(f"config key 'model.modalities' must be distinct names from {MODALITIES}, got "
                                   f"{mods!r}")
        cfg["modalities"] = [m for m in MODALITIES if m in mods]  # canonical order
        cls.check_config(cfg)
        return cfg

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        """Value checks beyond types; subclasses extend. Raises :class:`ModelConfigError`."""

    # ---- inputs
    def presence(self, inputs: dict, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Validated bool presence mask (B, M) over ``self.modalities``.

        Keys of ``inputs`` outside :data:`MODALITIES` (e.g. ``"y"``) are ignored; a modality this
        model does not have, a wrong tensor shape, a mask of the wrong shape or a sample with no
        present modality raise :class:`ModelInputError`.
        """
        given = [k for k in inputs if k in MODALITIES]
        foreign = [k for k in given if k not in self.modalities]
        if foreign:
            raise ModelInputError(f"this {self.kind} model has modalities {self.modalities}; got {foreign}")
        if not given:
            raise ModelInputError(f"no modality given; expected a non-empty subset of {self.modalities}")
        batch = None
        for m in given:
            x = inputs[m]
            if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != MODEL_SHAPES[m]:
                shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
                raise ModelInputError(f"{m!r} must be a tensor of shape (B, {', '.join(map(str, MODEL_SHAPES[m]))}), "
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
