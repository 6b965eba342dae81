# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Latent-constraint mapping between embedding auto-encoders (Chaudhury et al. 2017).

Stage 1 (phase ``embeddings``): every modality gets a low-dimensional *embedding* ``x_z``
from its own VAE (the bottom networks of ``networks.py``), trained unpaired — the paper's
"embedding extracted first" (its image side is a conv VAE too).
Stage 2 (phase ``mapping``, embedding VAEs frozen): per modality an auto-encoder of the
embedding, ``l_m = f_m(x_z^m)`` and ``x_z^m ~ f'_m(l_m)`` (one hidden layer of 256, as in the
paper), trained with the L2 reconstruction of the embedding plus the L2 constraint
``|l_a - l_b|^2`` between the latent codes of paired samples (Eq. 2). The proxy-variable trick:
at inference the latent code of the available modality stands in for the other's, so
``y = D_y(f'_y(f_x(E_x(x))))``.

``anchor`` (the paper's choice for the image): that modality's mapping is the fixed
normalisation ``(a - mean) / std`` of its embedding (running statistics) and its inverse,
which pins the common space (otherwise the constraint could shrink both codes towards zero).

Interface: the shared latent is the common code ``l`` (``common_dim``), the mean of the codes of
the present modalities. The code is deterministic: ``encode`` returns a constant log-variance
of :data:`DETERMINISTIC_LOGVAR`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..modalities import AUDIO, IMAGE, LABEL, TRAJECTORY
from . import register_model
from .base import ModelConfigError, loss_report
from .networks import ModalityVAE
from .pair import DEFAULT_REC_WEIGHTS, PairLatentModel
from .phased import phase_defaults

#: log-variance reported for the deterministic common code (variance ~ 2e-9).
DETERMINISTIC_LOGVAR = -20.0


class Normalizer(nn.Module):
    """Fixed (non-learned) normalisation of an embedding with running mean/std and its inverse.

    In training mode each batch updates the running statistics (the first batch sets them);
    normalisation always uses the running statistics, so forward and inverse agree.
    """

    def __init__(self, dim: int, momentum: float = 0.05):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.training and a.shape[0] > 1:
            with torch.no_grad():
                m, s = a.mean(0), a.std(0).clamp_min(1e-4)
                if not bool(self.initialized):
                    self.mean.copy_(m)
                    self.std.copy_(s)
                    self.initialized.fill_(True)
                else:
                    self.mean.lerp_(m, self.momentum)
                    self.std.lerp_(s, self.momentum)
        return (a - self.mean) / self.std

    def inverse(self, code: torch.Tensor) -> torch.Tensor:
        return code * self.std + self.mean


class EmbeddingAutoencoder(nn.Module):
    """``f``: embedding -> common code and ``f'``: code -> embedding, one hidden layer each."""

    def __init__(self, embed_dim: int, common_dim: int, hidden: int = 256):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, common_dim))
        self.dec = nn.Sequential(nn.Linear(common_dim, hidden), nn.ReLU(), nn.Linear(hidden, embed_dim))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.enc(a)

    def inverse(self, code: torch.Tensor) -> torch.Tensor:
        return self.dec(code)


@register_model("latent_constraint")
class LatentConstraintMapping(PairLatentModel):
    """Embedding VAEs + auto-encoders tied by an L2 latent constraint (see the module docstring)."""

    PHASES = ("embeddings", "mapping")
    DEFAULTS = {
        "modalities": [IMAGE, AUDIO],
        "latent_dims": {IMAGE: 64, AUDIO: 64, TRAJECTORY: 16, LABEL: 5},   # embedding sizes
        "common_dim": 64,
        "hidden_dim": 256,
        "anchor": IMAGE,                 # "" = learned auto-encoders on every side
        "constraint_weight": 1.0,        # weight of L1(l_x, l_y)
        "rec_weights": dict(DEFAULT_REC_WEIGHTS),   # embedding VAEs (stage 1)
        "vae_beta": 1.0,
        "paired_fraction": 1.0,
        **phase_defaults(("embeddings", "mapping")),
    }

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        cls.check_phase_config(cfg)
        mods = cfg["modalities"]
        if len(mods) < 2:
            raise ModelConfigError(f"config key 'model.modalities' needs at least two modalities, got {mods}")
        for key in ("common_dim", "hidden_dim"):
            if cfg[key] < 1:
                raise ModelConfigError(f"config key 'model.{key}' must be >= 1, got {cfg[key]}")
        if cfg["anchor"]:
            if cfg["anchor"] not in mods:
                raise ModelConfigError(f"config key 'model.anchor' must be one of {mods} or '', got {cfg['anchor']!r}")
            if cfg["latent_dims"][cfg["anchor"]] != cfg["common_dim"]:
                raise ModelConfigError(f"config key 'model.common_dim' ({cfg['common_dim']}) must equal "
                                       f"'model.latent_dims.{cfg['anchor']}' when {cfg['anchor']!r} is the anchor")
        if cfg["constraint_weight"] < 0 or cfg["vae_beta"] < 0:
            raise ModelConfigError("config keys 'model.constraint_weight' and 'model.vae_beta' must be >= 0")

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        dims = {m: int(cfg["latent_dims"][m]) for m in self.modalities}
        self.latent_dim = int(cfg["common_dim"])
        self.vaes = nn.ModuleDict({m: ModalityVAE(m, dims[m]) for m in self.modalities})
        self.maps = nn.ModuleDict({
            m: Normalizer(dims[m]) if m == cfg["anchor"] else EmbeddingAutoencoder(dims[m], self.latent_dim,
                                                                                   cfg["hidden_dim"])
            for m in self.modalities})
        self.rec_weights = {m: float(cfg["rec_weights"].get(m, 1.0)) for m in self.modalities}

    def phase_modules(self, phase: str) -> list[str]:
        return ["vaes"] if phase == "embeddings" else ["maps"]

    def phase_data_fraction(self, phase: str) -> float:
        return float(self.config["paired_fraction"]) if phase == "mapping" else 1.0

    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        logs = {}
        if self.phase == "embeddings":  # every embedding VAE on its own modality (unpaired)
            total = self.unimodal_vae_terms(batch, present, logs)
        else:
            total = torch.zeros(present.shape[0], device=present.device)
            codes = {}
            for i, m in enumerate(self.modalities):
                if m not in batch:
                    continue
                with torch.no_grad():
                    emb = self.vaes[m].encoder(batch[m])[0]
                l_m = self.maps[m](emb)
                codes[m] = l_m
                rec = (self.maps[m].inverse(l_m) - emb).pow(2).sum(1)
                total = total + torch.where(present[:, i], rec, torch.zeros_like(rec))
                logs[f"rec/{m}"] = rec.detach()
            mods = [m for m in self.modalities if m in codes]
            for a_i, a in enumerate(mods):
                for b in mods[a_i + 1:]:
                    both = present[:, self.modalities.index(a)] & present[:, self.modalities.index(b)]
                    c = (codes[a] - codes[b]).pow(2).sum(1)
                    total = total + self.config["constraint_weight"] * torch.where(both, c, torch.zeros_like(c))
                    logs[f"constraint/{a}-{b}"] = c.detach()
        return loss_report(total.mean(), logs)

    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        """Mean of the common codes of the present modalities; deterministic (constant logvar)."""
        present = self.presence(inputs, mask)
        ref = inputs[next(k for k in inputs if k in self.modalities)]
        acc = ref.new_zeros((present.shape[0], self.latent_dim))
        for i, m in enumerate(self.modalities):
            if m in inputs and bool(present[:, i].any()):
                code = self.maps[m](self.vaes[m].encoder(inputs[m])[0])
                acc = acc + torch.where(present[:, i:i + 1], code, torch.zeros_like(code))
        mu = acc / present.sum(1, keepdim=True).to(acc.dtype)
        return mu, torch.full_like(mu, DETERMINISTIC_LOGVAR)

    def decode(self, z: torch.Tensor, modalities=None) -> dict:
        mods = self.check_decode(z, modalities)
        return {m: self.vaes[m].decoder(self.maps[m].inverse(z)) for m in mods}
