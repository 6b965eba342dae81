# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Cross-modal variational alignment of latent spaces (Theodoridis et al. 2020).

Two modalities, a source M1 and a target M2 (``source``/``target``), and three branches:

* upper: ``E1`` (source encoder) -> latent LS1 -> ``D1`` (a decoder of the *target*): the
  M1->M2 VAE;
* lower: ``E2`` -> LS2 -> ``D2``: the M2->M2 VAE;
* middle (the *mapper*): ``VE`` maps E1's ``(mu1, logvar1)`` to an intermediate Gaussian, a
  sample of which ``VD`` maps to ``(mu_m, logvar_m)`` over LS2; a sample of that is decoded by
  ``D2``. The 2-Wasserstein distance between ``N(mu_m, sigma_m)`` and ``N(mu2, sigma2)`` (Eq. 5,
  diagonal covariances: ``sqrt(|mu_m - mu2|^2 + |sigma_m - sigma2|^2)``) aligns the two.

Training phases (Eq. 6 with the paper's zero weights per phase): ``branches`` (upper and lower
trained independently: reconstruction + KL each), ``mapper`` (only VE/VD; E1, E2, D2 frozen:
reconstruction through D2 + intermediate KL + W2), ``finetune`` (every term, every parameter).

Interface: the shared latent is LS2 (``latent_dim``). From the target, ``E2``; from the source
alone, ``E1`` then the mapper. ``decode`` gives the target through ``D2`` and the source through
a *reverse decoder* LS2 -> M1 — an addition of ours (not in the paper, trained in the branches
phase on detached LS2 samples so it never shapes LS2) so that the model generates both
modalities as the shared interface requires. :meth:`VariationalAlignment.translate` exposes the
ablation routes: ``mapper`` (the method), ``branch`` (D1(E1(x)), the model without the mapper)
and ``swap`` (D2(E1(x)), unaligned latents fed to the target decoder).
"""
from __future__ import annotations

import torch
from torch import nn

from ..modalities import IMAGE, TRAJECTORY
from . import register_model
from .base import ModelConfigError, ModelInputError, kl_standard_normal, loss_report, reparameterize
from .pair import DEFAULT_REC_WEIGHTS, PairLatentModel, reconstruction_loss
from .networks import ModalityVAE
from .phased import phase_defaults


def wasserstein2_diag(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor,
                      eps: float = 1e-8) -> torch.Tensor:
    """2-Wasserstein distance between diagonal Gaussians per sample (Eq. 5) -> (B,)."""
    s1, s2 = torch.exp(0.5 * logvar1), torch.exp(0.5 * logvar2)
    return torch.sqrt((mu1 - mu2).pow(2).sum(-1) + (s1 - s2).pow(2).sum(-1) + eps)


class Mapper(nn.Module):
    """VE/VD: (mu1, logvar1) -> intermediate Gaussian (single FC) -> sample -> (mu_m, logvar_m) (single FC)."""

    def __init__(self, latent_dim: int, mapper_dim: int):
        super().__init__()
        self.ve = nn.Linear(2 * latent_dim, 2 * mapper_dim)
        self.vd = nn.Linear(mapper_dim, 2 * latent_dim)

    def forward(self, mu1: torch.Tensor, logvar1: torch.Tensor, sample: bool = True):
        """-> ``(mu_m, logvar_m, mu_v, logvar_v)``."""
        mu_v, logvar_v = self.ve(torch.cat([mu1, logvar1], 1)).chunk(2, 1)
        v = reparameterize(mu_v, logvar_v) if sample else mu_v
        mu_m, logvar_m = self.vd(v).chunk(2, 1)
        return mu_m, logvar_m, mu_v, logvar_v


@register_model("alignment")
class VariationalAlignment(PairLatentModel):
    """The variational alignment model (see the module docstring)."""

    PHASES = ("branches", "mapper", "finetune")
    DEFAULTS = {
        "modalities": [IMAGE, TRAJECTORY],   # filled from source/target when not given
        "source": IMAGE,
        "target": TRAJECTORY,
        "shared_dim": 32,                    # d of LS1 and LS2
        "mapper_dim": 32,                    # intermediate distribution
        "rec_weights": dict(DEFAULT_REC_WEIGHTS),
        "kl_weights": {"branch": 1.0, "target": 1.0, "mapper": 1.0},   # w_1^KL, w_2^KL, w_m^KL
        "wasserstein_weight": 10.0,          # w^W
        "reverse_weight": 1.0,               # reverse decoder (our addition)
        **phase_defaults(("branches", "mapper", "finetune")),
    }

    @classmethod
    def resolve_config(cls, config: dict | None) -> dict:
        config = dict(config or {})
        src, tgt = config.get("source", cls.DEFAULTS["source"]), config.get("target", cls.DEFAULTS["target"])
        if src == tgt:
            raise ModelConfigError(f"config keys 'model.source' and 'model.target' must differ, both are {src!r}")
        if "modalities" not in config:
            config["modalities"] = [config.get("source", cls.DEFAULTS["source"]),
                                    config.get("target", cls.DEFAULTS["target"])]
        return super().resolve_config(config)

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        cls.check_phase_config(cfg)
        if cfg["source"] == cfg["target"] or set(cfg["modalities"]) != {cfg["source"], cfg["target"]}:
            raise ModelConfigError(f"config keys 'model.source' ({cfg['source']!r}) and 'model.target' "
                                   f"({cfg['target']!r}) must be two distinct modalities equal to 'model.modalities' "
                                   f"({cfg['modalities']})")
        for key in ("shared_dim", "mapper_dim"):
            if cfg[key] < 1:
                raise ModelConfigError(f"config key 'model.{key}' must be >= 1, got {cfg[key]}")
        for key, w in [("wasserstein_weight", cfg["wasserstein_weight"]), ("reverse_weight", cfg["reverse_weight"]),
                       *((f"kl_weights.{k}", v) for k, v in cfg["kl_weights"].items())]:
            if w < 0:
                raise ModelConfigError(f"config key 'model.{key}' must be >= 0, got {w}")

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        d = int(cfg["shared_dim"])
        self.source, self.target = cfg["source"], cfg["target"]
        self.latent_dim = d
        self.branch_encoder = ModalityVAE(self.source, d).encoder          # E1
        self.branch_decoder = ModalityVAE(self.target, d).decoder          # D1
        self.target_vae = ModalityVAE(self.target, d)                      # E2, D2
        self.reverse_decoder = ModalityVAE(self.source, d).decoder         # LS2 -> M1 (ours)
        self.mapper = Mapper(d, int(cfg["mapper_dim"]))
        self.w_rec_t = float(cfg["rec_weights"].get(self.target, 1.0))
        self.w_rec_s = float(cfg["rec_weights"].get(self.source, 1.0))

    def phase_modules(self, phase: str) -> list[str]:
        if phase == "branches":
            return ["branch_encoder", "branch_decoder", "target_vae", "reverse_decoder"]
        if phase == "mapper":
            return ["mapper"]
        return ["branch_encoder", "branch_decoder", "target_vae", "reverse_decoder", "mapper"]

    # ---- loss (Eq. 6)
    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        s, t = self.source, self.target
        if s not in batch or t not in batch:
            raise ModelInputError(f"the alignment loss needs paired {s} and {t} batches")
        rows = present.all(1)
        x1, x2 = batch[s], batch[t]
        kw = self.config["kl_weights"]
        logs = {}
        total = torch.zeros(x2.shape[0], device=x2.device)
        mu1, lv1 = self.branch_encoder(x1)
        mu2, lv2 = self.target_vae.encoder(x2)
        if self.phase in ("branches", "finetune"):
            rec1 = self.w_rec_t * reconstruction_loss(t, self.branch_decoder(reparameterize(mu1, lv1)), x2)
            kl1 = kl_standard_normal(mu1, lv1)
            z2 = reparameterize(mu2, lv2)
            rec2 = self.w_rec_t * reconstruction_loss(t, self.target_vae.decoder(z2), x2)
            kl2 = kl_standard_normal(mu2, lv2)
            rev = self.w_rec_s * reconstruction_loss(s, self.reverse_decoder(z2.detach()), x1)
            total = total + rec1 + kw["branch"] * kl1 + rec2 + kw["target"] * kl2 + self.config["reverse_weight"] * rev
            logs.update({"rec/branch": rec1, "kl/branch": kl1, "rec/target": rec2, "kl/target": kl2,
                         "rec/reverse": rev})
        if self.phase in ("mapper", "finetune"):
            mu_m, lv_m, mu_v, lv_v = self.mapper(mu1, lv1)
            recm = self.w_rec_t * reconstruction_loss(t, self.target_vae.decoder(reparameterize(mu_m, lv_m)), x2)
            klm = kl_standard_normal(mu_v, lv_v)
            w2 = wasserstein2_diag(mu_m, lv_m, mu2, lv2)
            total = total + recm + kw["mapper"] * klm + self.config["wasserstein_weight"] * w2
            logs.update({"rec/mapper": recm, "kl/mapper": klm, "w2": w2})
        total = torch.where(rows, total, torch.zeros_like(total))
        return loss_report(total.sum() / rows.sum().clamp_min(1), logs)

    # ---- inference
    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        present = self.presence(inputs, mask)
        i_s, i_t = self.modalities.index(self.source), self.modalities.index(self.target)
        b = present.shape[0]
        ref = inputs[next(k for k in inputs if k in self.modalities)]
        mu = ref.new_zeros((b, self.latent_dim))
        lv = ref.new_zeros((b, self.latent_dim))
        from_source = present[:, i_s] & ~present[:, i_t]
        if self.target in inputs and bool(present[:, i_t].any()):
            tmu, tlv = self.target_vae.encoder(inputs[self.target])
            mu = torch.where(present[:, i_t:i_t + 1], tmu, mu)
            lv = torch.where(present[:, i_t:i_t + 1], tlv, lv)
        if bool(from_source.any()):
            mu1, lv1 = self.branch_encoder(inputs[self.source])
            mmu, mlv, _, _ = self.mapper(mu1, lv1, sample=sample)
            mu = torch.where(from_source.unsqueeze(1), mmu, mu)
            lv = torch.where(from_source.unsqueeze(1), mlv, lv)
        return mu, lv

    def decode(self, z: torch.Tensor, modalities=None) -> dict:
        mods = self.check_decode(z, modalities)
        out = {}
        for m in mods:
            out[m] = self.target_vae.decoder(z) if m == self.target else self.reverse_decoder(z)
        return out

    @torch.no_grad()
    def translate(self, x_source: torch.Tensor, route: str = "mapper") -> torch.Tensor:
        """The target generated from source data by ``route``: ``mapper`` (the method, means),
        ``branch`` (D1(E1), without the mapper) or ``swap`` (D2(E1), unaligned).
        """
        mu1, lv1 = self.branch_encoder(x_source)
        if route == "mapper":
            return self.target_vae.decoder(self.mapper(mu1, lv1, sample=False)[0])
        if route == "branch":
            return self.branch_decoder(mu1)
        if route == "swap":
            return self.target_vae.decoder(mu1)
        raise ValueError(f"unknown route {route!r}; use mapper, branch or swap")
