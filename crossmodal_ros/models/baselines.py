# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Hierarchical baselines of the Nexus paper: MVAE (product of experts) and MMVAE (mixture).

Both reuse Nexus's bottom level (:class:`~crossmodal_ros.models.nexus.BottomLevel`: the same
per-modality VAEs, the same pretrained frozen sound VAE, the same bottom losses and weights) and
its top decoders; they differ only in how z_sigma is inferred from the (detached) bottom latents
and in the top-level objective:

* :class:`HierarchicalMVAE` (Wu & Goodman 2018): q(z_sigma | z^{1:M}) proportional to
  p(z_sigma) prod_m q_m(z_sigma | z^m) (a prior expert plus one Gaussian expert per present
  modality). Sub-sampled objective: the ELBO of the full joint plus the ELBO of each single
  modality, where each ELBO term reconstructs only the modalities it conditions on.
* :class:`HierarchicalMMVAE` (Shi et al. 2019): q(z_sigma | z^{1:M}) = 1/M sum_m q_m(z_sigma | z^m).
  Mixture ELBO with stratified sampling (one sample per expert, K=1, no importance weights):
  each unimodal posterior's sample reconstructs every present modality, and the KL term is the
  Monte-Carlo estimate log q_mix(z) - log p(z).

Each expert q_m is the Nexus message map (Linear d_m -> 512) followed by a z_sigma encoder
(2 x [FC 512, BN, LeakyReLU], Gaussian heads), one per modality.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import register_model
from .base import (gaussian_log_density, kl_standard_normal, kl_warmup, loss_report, masked, mixture_moments,
                   reparameterize)
from .nexus import HierarchicalModel
from .networks import SharedEncoder


class ModalityExpert(nn.Module):
    """q_m(z_sigma | z^m): Linear d_m -> message, then the z_sigma encoder -> (mu, logvar)."""

    def __init__(self, in_dim: int, message_dim: int, shared_dim: int, hidden: int):
        super().__init__()
        self.message = nn.Linear(in_dim, message_dim)
        self.encoder = SharedEncoder(message_dim, shared_dim, hidden)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(self.message(z))


class _ExpertModel(HierarchicalModel):
    """Hierarchical model whose top encoder is one expert per modality."""

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        self.expert_dim = int(cfg["shared_dim"])   # size of each expert's Gaussian
        self.experts = nn.ModuleDict({
            m: ModalityExpert(self.bottom.latent_dim(m), cfg["message_dim"], cfg["shared_dim"], cfg["hidden_dim"])
            for m in self.modalities})

    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        """The experts of the present modalities, combined by the kind's ``combine(mu, logvar, present)``."""
        present = self.presence(inputs, mask)
        z = self.bottom_latents(inputs, present, sample)
        mu, logvar = self.expert_params(z, present)
        return self.combine(mu, logvar, present)

    def expert_params(self, z: dict, present: torch.Tensor):
        """Stacked expert (mu, logvar), each (B, M, D); modalities absent from ``z`` are zeros
        (callers mask them out with ``present``).
        """
        b = present.shape[0]
        d = self.expert_dim
        dtype = next(iter(z.values())).dtype
        mus, logvars = [], []
        for m in self.modalities:
            if m in z:
                mu, lv = self.experts[m](z[m])
            else:
                mu = lv = present.new_zeros((b, d), dtype=dtype)
            mus.append(mu)
            logvars.append(lv)
        return torch.stack(mus, 1), torch.stack(logvars, 1)


@register_model("mvae")
class HierarchicalMVAE(_ExpertModel):
    """Hierarchical MVAE: product of experts with a prior expert over z_sigma."""

    @staticmethod
    def product_of_experts(mu: torch.Tensor, logvar: torch.Tensor, keep: torch.Tensor):
        """PoE of the N(0, I) prior expert and the experts where ``keep`` (B, M) is true."""
        precision = torch.exp(-logvar) * keep.unsqueeze(-1)
        total = 1.0 + precision.sum(1)
        mu_joint = (mu * precision).sum(1) / total
        return mu_joint, -torch.log(total)

    combine = product_of_experts

    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        w = kl_warmup(epoch, self.config["warmup_epochs"])
        z, per_sample, logs = self.train_bottom(batch, present, w * self.config["bottom_beta"])
        e_mu, e_logvar = self.expert_params(z, present)
        eye = torch.eye(len(self.modalities), dtype=torch.bool, device=present.device)
        subsets = [("joint", present)] + [(m, present & eye[i]) for i, m in enumerate(self.modalities) if m in z]
        for name, keep in subsets:
            rows = keep.any(1)
            mu, logvar = self.product_of_experts(e_mu, e_logvar, keep)
            zs = reparameterize(mu, logvar)
            term = w * self.config["top_beta"] * kl_standard_normal(mu, logvar)
            for i, m in enumerate(self.modalities):
                if m in z and bool(keep[:, i].any()):
                    term = term + self.top_reconstruction(m, self.top_decoders[m](zs), z[m], keep[:, i])
            term = masked(term, rows)
            per_sample = per_sample + term
            logs[f"elbo/{name}"] = term.detach()
        return loss_report(per_sample.mean(), logs, kl_weight=w)


@register_model("mmvae")
class HierarchicalMMVAE(_ExpertModel):
    """Hierarchical MMVAE: uniform mixture of experts over z_sigma.

    ``encode`` returns the moment-matched Gaussian of the mixture of the present experts (its
    mean is the average expert mean), which ``infer`` uses for deterministic generation.
    """

    @staticmethod
    def combine(mu: torch.Tensor, logvar: torch.Tensor, present: torch.Tensor):
        """Moment-matched uniform mixture of the present experts."""
        return mixture_moments(mu, logvar, present.to(mu.dtype) / present.sum(1, keepdim=True).to(mu.dtype))

    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        w = kl_warmup(epoch, self.config["warmup_epochs"])
        z, per_sample, logs = self.train_bottom(batch, present, w * self.config["bottom_beta"])
        e_mu, e_logvar = self.expert_params(z, present)                       # (B, M, D)
        n_present = present.sum(1).float()
        log_weight = torch.where(present, -torch.log(n_present).unsqueeze(1),
                                 torch.full_like(n_present.unsqueeze(1).expand_as(present), -math.inf))
        mmvae = torch.zeros_like(per_sample)
        for i, m in enumerate(self.modalities):
            if m not in z:
                continue
            p = present[:, i]
            zs = reparameterize(e_mu[:, i], e_logvar[:, i])                    # stratified: one per expert
            log_q = torch.logsumexp(
                gaussian_log_density(zs.unsqueeze(1), e_mu, e_logvar) + log_weight, dim=1)
            log_p = gaussian_log_density(zs, torch.zeros_like(zs), torch.zeros_like(zs))
            term = w * self.config["top_beta"] * (log_q - log_p)
            for j, n in enumerate(self.modalities):
                if n in z:
                    term = term + self.top_reconstruction(n, self.top_decoders[n](zs), z[n], present[:, j])
            term = masked(term, p)
            logs[f"elbo/from_{m}"] = term.detach()
            mmvae = mmvae + term
        per_sample = per_sample + mmvae / n_present
        return loss_report(per_sample.mean(), logs, kl_weight=w)
