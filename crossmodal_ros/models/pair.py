# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Shared machinery of the models whose shared latent joins per-modality VAE latents
(associator, alignment, latent_constraint): the per-modality reconstruction loss, the unpaired
VAE phase in which every modality's VAE learns its own modality alone, and latent splitting.
"""
from __future__ import annotations

import torch

from ..modalities import LABEL
from .base import kl_standard_normal, reparameterize, soft_cross_entropy, sum_squared_error
from .networks import DEFAULT_REC_WEIGHTS, ModalityVAE
from .phased import PhasedModel

__all__ = ["DEFAULT_REC_WEIGHTS", "PairLatentModel", "reconstruction_loss", "unimodal_vae_loss"]


def reconstruction_loss(modality: str, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample reconstruction error: cross-entropy for the label (logits), squared error else."""
    if modality == LABEL:
        return soft_cross_entropy(x_hat, x)
    return sum_squared_error(x_hat, x)


def unimodal_vae_loss(vae: ModalityVAE, x: torch.Tensor, rec_weight: float, beta: float):
    """Eq. 6 per sample: ``rec_weight * rec(D(z), x) + beta * KL(q(z|x) || N(0, I))`` -> (rec, kl)."""
    mu, logvar = vae.encoder(x)
    x_hat = vae.decoder(reparameterize(mu, logvar))
    return rec_weight * reconstruction_loss(vae.modality, x_hat, x), kl_standard_normal(mu, logvar)


class PairLatentModel(PhasedModel):
    """A phased model built on one VAE per modality (``self.vaes``, weights ``self.rec_weights``
    where it has them): latent splitting and the unpaired VAE phase.
    """

    def latent_slices(self) -> dict:
        """``{modality: slice}`` of each modality's part of a concatenated shared latent."""
        out, start = {}, 0
        for m in self.modalities:
            d = int(self.config["latent_dims"][m])
            out[m] = slice(start, start + d)
            start += d
        return out

    def unimodal_vae_terms(self, batch: dict, present: torch.Tensor, logs: dict) -> torch.Tensor:
        """The unpaired VAE phase: every VAE on its own modality (Eq. 6, KL weight
        ``vae_beta``), masked to the present samples -> per-sample loss (B,). Adds the terms
        ``rec/<m>`` and ``kl/<m>`` to ``logs``.
        """
        total = torch.zeros(present.shape[0], device=present.device)
        for i, m in enumerate(self.modalities):
            p = present[:, i]
            if m not in batch or not bool(p.any()):
                continue
            rec, kl = unimodal_vae_loss(self.vaes[m], batch[m], self.rec_weights[m], 1.0)
            total = total + torch.where(p, rec + self.config["vae_beta"] * kl, torch.zeros_like(rec))
            logs[f"rec/{m}"], logs[f"kl/{m}"] = rec.detach(), kl.detach()
        return total
