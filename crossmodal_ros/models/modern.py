# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Modern multimodal-VAE baselines on Nexus's bottom level: MoPoE, MVTCAE and MMVAE+.

Like :mod:`~crossmodal_ros.models.baselines` (MVAE, MMVAE), each reuses Nexus's bottom level (the
same per-modality VAEs, the pretrained frozen sound VAE, the same bottom losses), its top decoders
and one expert per modality (message map + z_sigma encoder) over the detached bottom latents. They
differ in how the experts are combined and in the top-level objective. Written behind our model
interface rather than run through multivae so that every method trains with the shipped
real-sensor recipe (augmentation, denoising bottom level, sound pretraining, validation split) and
is measured by the same judges, robustness suite and inference node (docs/results/v2_comparison.md).

* :class:`HierarchicalMoPoE` (Sutter et al. 2021): q(z | X) is the uniform mixture, over every
  non-empty subset S of the present modalities, of the product of experts of S (with the N(0, I)
  prior expert, as in the MVAE). Training: each sample draws one subset from the mixture, its
  sample reconstructs every present modality; the KL term is the mean of KL(q_S || p) over the
  subsets (the upper bound the MoPoE paper optimises).
* :class:`HierarchicalMVTCAE` (Hwang et al. 2021): q(z | X) is the product of the present experts
  without a prior expert; objective (M present modalities, weights alpha and beta):
  (M - alpha) / M * E_q[log p(X | z)] - beta [(1 - alpha) KL(q(z|X) || p(z))
  + alpha / M * sum_m KL(q(z|X) || q_m(z|x_m))].
* :class:`HierarchicalMMVAEPlus` (Palumbo et al. 2023): a shared z_sigma (mixture of experts, as
  MMVAE) plus one modality-specific latent w_m per modality, both from the modality's expert.
  Decoder n reads (z_sigma, w_n). For the expert of modality m, w_m comes from q(w_m | z^m) and
  every other w_n is drawn from a learnable prior r_n = N(0, diag(s_n^2)) (the paper's
  auxiliary prior, learnt as multivae's ``learn_modality_prior``; its log-scale gets gradients from
  the KL of w_m and from the cross-reconstructions that sample it, and is not bounded). Stratified
  mixture ELBO with one sample per expert (K = 1, no importance weighting, like our MMVAE); the
  paper uses K samples with the DReG estimator. The latent this model publishes is (z_sigma, w_1,
  ..., w_M): the given modalities' posterior means, the prior mean 0 for the missing ones.

All three use Gaussian posteriors, priors and likelihoods, as the rest of this package (the MMVAE+
paper and multivae's MMVAE+ runs use Laplace distributions).
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from . import register_model
from .base import (gaussian_log_density, kl_standard_normal, kl_warmup, loss_report, masked, mixture_moments,
                   reparameterize)
from .baselines import ModalityExpert, _ExpertModel
from .networks import TopDecoder


def gaussian_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mu1, exp(logvar1)) || N(mu2, exp(logvar2))) summed over the last axis."""
    return 0.5 * torch.sum(logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2).pow(2)) * torch.exp(-logvar2) - 1.0,
                           dim=-1)


@register_model("mopoe")
class HierarchicalMoPoE(_ExpertModel):
    """Hierarchical MoPoE: mixture over subsets of products of experts."""

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        m = len(self.modalities)
        rows = [[i in s for i in range(m)] for k in range(1, m + 1) for s in itertools.combinations(range(m), k)]
        self.register_buffer("subsets", torch.tensor(rows, dtype=torch.bool), persistent=False)   # (S, M)

    def subset_posteriors(self, e_mu: torch.Tensor, e_logvar: torch.Tensor, present: torch.Tensor):
        """PoE (with the prior expert) of every subset -> ``(mu, logvar)`` (B, S, D) and
        ``valid`` (B, S): the subset is non-empty and every member is present.
        """
        subsets = self.subsets.to(present.device)
        valid = (~subsets.unsqueeze(0) | present.unsqueeze(1)).all(-1)                       # (B, S)
        keep = (subsets.unsqueeze(0) & present.unsqueeze(1)).unsqueeze(-1)                   # (B, S, M, 1)
        # absent experts' log-variances are replaced before exp (an extreme value there would
        # give inf * 0 = NaN), then masked
        lv = torch.where(present.unsqueeze(-1), e_logvar, torch.zeros((), dtype=e_logvar.dtype,
                                                                         device=e_logvar.device))
        precision = torch.exp(-lv).unsqueeze(1) * keep
        total = 1.0 + precision.sum(2)
        mu = (e_mu.unsqueeze(1) * precision).sum(2) / total
        return mu, -torch.log(total), valid

    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        present = self.presence(inputs, mask)
        z = self.bottom_latents(inputs, present, sample)
        mu, logvar, valid = self.subset_posteriors(*self.expert_params(z, present), present)
        weight = valid.to(mu.dtype) / valid.sum(1, keepdim=True).clamp_min(1).to(mu.dtype)
        return mixture_moments(mu, logvar, weight)

    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        w = kl_warmup(epoch, self.config["warmup_epochs"])
        z, per_sample, logs = self.train_bottom(batch, present, w * self.config["bottom_beta"])
        mu, logvar, valid = self.subset_posteriors(*self.expert_params(z, present), present)
        rows = valid.any(1)
        n_valid = valid.sum(1).clamp_min(1).to(mu.dtype)
        kl = (kl_standard_normal(mu, logvar) * valid).sum(1) / n_valid
        pick = torch.multinomial(valid.to(mu.dtype), 1).squeeze(1)         # one mixture component per sample
        idx = torch.arange(mu.shape[0], device=mu.device)
        zs = reparameterize(mu[idx, pick], logvar[idx, pick])
        term = w * self.config["top_beta"] * kl
        for i, m in enumerate(self.modalities):
            if m in z:
                term = term + self.top_reconstruction(m, self.top_decoders[m](zs), z[m], present[:, i])
        term = masked(term, rows)
        logs["top/kl"] = masked(kl, rows).detach()
        logs["top/elbo"] = term.detach()
        return loss_report((per_sample + term).mean(), logs, kl_weight=w)


@register_model("mvtcae")
class HierarchicalMVTCAE(_ExpertModel):
    """Hierarchical MVTCAE: product of experts (no prior expert), total-correlation objective."""

    DEFAULTS = {**_ExpertModel.DEFAULTS, "tc_alpha": 0.1}

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        super().check_config(cfg)
        from .base import ModelConfigError
        if not 0.0 <= float(cfg["tc_alpha"]) <= 1.0:
            raise ModelConfigError(f"config key 'model.tc_alpha' must lie in [0, 1], got {cfg['tc_alpha']!r}")

    @staticmethod
    def product_of_experts(mu: torch.Tensor, logvar: torch.Tensor, keep: torch.Tensor):
        """PoE of the experts where ``keep`` (B, M) is true (no prior expert)."""
        lv = torch.where(keep.unsqueeze(-1), logvar, torch.zeros((), dtype=logvar.dtype, device=logvar.device))
        precision = torch.exp(-lv) * keep.unsqueeze(-1)
        total = precision.sum(1).clamp_min(1e-8)
        return (mu * precision).sum(1) / total, -torch.log(total)

    combine = product_of_experts

    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        w = kl_warmup(epoch, self.config["warmup_epochs"])
        z, per_sample, logs = self.train_bottom(batch, present, w * self.config["bottom_beta"])
        e_mu, e_logvar = self.expert_params(z, present)
        mu, logvar = self.product_of_experts(e_mu, e_logvar, present)
        rows = present.any(1)
        n = present.sum(1).clamp_min(1).to(mu.dtype)
        alpha = float(self.config["tc_alpha"])
        zs = reparameterize(mu, logvar)
        rec = torch.zeros_like(per_sample)
        for i, m in enumerate(self.modalities):
            if m in z:
                rec = rec + self.top_reconstruction(m, self.top_decoders[m](zs), z[m], present[:, i])
        kl_prior = kl_standard_normal(mu, logvar)
        zero = torch.zeros((), dtype=e_logvar.dtype, device=e_logvar.device)
        keep = present.unsqueeze(-1)
        kl_each = gaussian_kl(mu.unsqueeze(1), logvar.unsqueeze(1), torch.where(keep, e_mu, zero),
                              torch.where(keep, e_logvar, zero))
        kl_experts = torch.where(present, kl_each, zero).sum(1)
        term = (n - alpha) / n * rec + w * self.config["top_beta"] * ((1 - alpha) * kl_prior + alpha / n * kl_experts)
        term = masked(term, rows)
        logs["top/kl_prior"] = masked(kl_prior, rows).detach()
        logs["top/kl_experts"] = masked(kl_experts, rows).detach()
        return loss_report((per_sample + term).mean(), logs, kl_weight=w)


@register_model("mmvae_plus")
class HierarchicalMMVAEPlus(_ExpertModel):
    """Hierarchical MMVAE+: mixture-of-experts shared latent plus modality-specific latents."""

    DEFAULTS = {**_ExpertModel.DEFAULTS, "private_dim": 16}

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        d, p = int(cfg["shared_dim"]), int(cfg["private_dim"])
        self.shared_dim, self.private_dim = d, p
        # each expert gives (z_sigma, w_m) together; each top decoder reads (z_sigma, w_n)
        self.experts = nn.ModuleDict({
            m: ModalityExpert(self.bottom.latent_dim(m), cfg["message_dim"], d + p, cfg["hidden_dim"])
            for m in self.modalities})
        self.top_decoders = nn.ModuleDict({
            m: TopDecoder(d + p, self.bottom.latent_dim(m), cfg["hidden_dim"]) for m in self.modalities})
        self.prior_log_scale = nn.Parameter(torch.zeros(len(self.modalities), p))   # r_n = N(0, diag(s_n^2))
        self.expert_dim = d + p
        self.latent_dim = d + len(self.modalities) * p

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        super().check_config(cfg)
        from .base import ModelConfigError
        if int(cfg["private_dim"]) < 1:
            raise ModelConfigError(f"config key 'model.private_dim' must be >= 1, got {cfg['private_dim']!r}")

    def _split(self, t: torch.Tensor):
        return t[..., :self.shared_dim], t[..., self.shared_dim:]

    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        present = self.presence(inputs, mask)
        z = self.bottom_latents(inputs, present, sample)
        mu, logvar = self.expert_params(z, present)                            # (B, M, D + P)
        (s_mu, w_mu), (s_lv, w_lv) = self._split(mu), self._split(logvar)
        weight = present.to(mu.dtype) / present.sum(1, keepdim=True).clamp_min(1).to(mu.dtype)
        shared_mu, shared_lv = mixture_moments(s_mu, s_lv, weight)
        keep = present.unsqueeze(-1)
        prior_lv = (2 * self.prior_log_scale).unsqueeze(0).expand_as(w_lv)
        w_mu = torch.where(keep, w_mu, torch.zeros((), dtype=mu.dtype, device=mu.device))
        w_lv = torch.where(keep, w_lv, prior_lv)
        b = mu.shape[0]
        return torch.cat([shared_mu, w_mu.reshape(b, -1)], 1), torch.cat([shared_lv, w_lv.reshape(b, -1)], 1)

    def decode(self, z: torch.Tensor, modalities=None) -> dict:
        mods = self.check_decode(z, modalities)
        shared, private = self._split(z)
        private = private.reshape(z.shape[0], len(self.modalities), self.private_dim)
        out = {}
        for m in mods:
            i = self.modalities.index(m)
            out[m] = self.bottom.decode(m, self.top_decoders[m](torch.cat([shared, private[:, i]], 1)))
        return out

    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        w = kl_warmup(epoch, self.config["warmup_epochs"])
        z, per_sample, logs = self.train_bottom(batch, present, w * self.config["bottom_beta"])
        mu, logvar = self.expert_params(z, present)
        (s_mu, w_mu), (s_lv, w_lv) = self._split(mu), self._split(logvar)
        n_present = present.sum(1).clamp_min(1).to(mu.dtype)
        log_weight = torch.where(present, -torch.log(n_present).unsqueeze(1),
                                 torch.full_like(present, -math.inf, dtype=mu.dtype))
        prior_lv = 2 * self.prior_log_scale
        beta = w * self.config["top_beta"]
        total = torch.zeros_like(per_sample)
        for i, m in enumerate(self.modalities):
            if m not in z:
                continue
            zs = reparameterize(s_mu[:, i], s_lv[:, i])
            ws = reparameterize(w_mu[:, i], w_lv[:, i])
            log_q = torch.logsumexp(gaussian_log_density(zs.unsqueeze(1), s_mu, s_lv) + log_weight, dim=1)
            log_p = gaussian_log_density(zs, torch.zeros_like(zs), torch.zeros_like(zs))
            kl_w = gaussian_kl(w_mu[:, i], w_lv[:, i], torch.zeros_like(ws), prior_lv[i].expand_as(ws))
            term = beta * (log_q - log_p + kl_w)
            for j, n in enumerate(self.modalities):
                if n not in z:
                    continue
                wn = ws if j == i else reparameterize(torch.zeros_like(ws), prior_lv[j].expand_as(ws))
                term = term + self.top_reconstruction(n, self.top_decoders[n](torch.cat([zs, wn], 1)), z[n],
                                                      present[:, j])
            term = masked(term, present[:, i])
            logs[f"elbo/from_{m}"] = term.detach()
            total = total + term
        return loss_report((per_sample + total / n_present).mean(), logs, kl_weight=w)
