# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Cross-modal associator network (Jo et al. 2019): unimodal VAEs joined by variational associators.

Each modality has its own VAE (the bottom networks of ``networks.py``, a latent size of its
own: ``latent_dims``), trained **unpaired** (phase ``vaes``: every VAE sees only its own
modality, loss Eq. 6 ``w_m ||x - x_hat||^2 + lambda_int KL``; the label uses cross-entropy).
Then, with the VAEs frozen, a *variational associator* ``A_ji`` per direction of every
associated pair maps the latent of modality i to a Gaussian over the latent space of modality
j (phase ``associators``, Eq. 7: ``w_j ||x_j - D_j(z_ji)||^2 + lambda_crs KL(q(z_ji|x_i) || N(0, I))``,
trained on the *paired* samples only: ``paired_fraction`` of the training set).

Shared latent of the interface: the concatenation of every modality's latent ``[z_1 | ... |
z_M]`` (``latent_dim = sum(latent_dims)``). A present modality contributes its own encoder's
posterior; a missing one is reached through the associators, hop by hop (a *cascade* where no
direct associator exists), fusing several sources of the same hop by a product of the
associators' Gaussians. ``decode`` splits the vector and runs each modality's decoder.
:meth:`AssociatorNetwork.translate` follows an explicit chain of associators (the cascade
experiment).
"""
from __future__ import annotations

import torch
from torch import nn

from ..modalities import AUDIO, IMAGE, LABEL, TRAJECTORY
from . import register_model
from .base import ModelConfigError, ModelInputError, kl_standard_normal, loss_report, reparameterize
from .networks import GaussianHeads, ModalityVAE, mlp_stack
from .pair import DEFAULT_REC_WEIGHTS, PairLatentModel, reconstruction_loss
from .phased import phase_defaults

def pair_key(source: str, target: str) -> str:
    """Module key of the associator ``source -> target``."""
    return f"{source}_to_{target}"


class VariationalAssociator(nn.Module):
    """``A_ji``: latent of modality i -> (mu, logvar) over the latent space of modality j.

    ``layers`` x [FC hidden, BN, LeakyReLU] then Gaussian heads (the paper's associators are
    MLPs; sizes are configurable).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.features = mlp_stack(in_dim, hidden, layers)
        self.heads = GaussianHeads(hidden, out_dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(z))


@register_model("associator")
class AssociatorNetwork(PairLatentModel):
    """Unimodal VAEs + pairwise variational associators (Jo et al. 2019); see the module docstring."""

    PHASES = ("vaes", "associators")
    DEFAULTS = {
        "modalities": [IMAGE, AUDIO],
        "latent_dims": {IMAGE: 64, AUDIO: 64, TRAJECTORY: 16, LABEL: 5},   # flexible, per modality
        "pairs": [],                 # [[a, b], ...] associated pairs (both directions); [] = every pair
        "assoc_hidden": 256,
        "assoc_layers": 2,
        "rec_weights": dict(DEFAULT_REC_WEIGHTS),
        "vae_beta": 1.0,             # lambda_int (Eq. 6)
        "assoc_beta": 1.0,           # lambda_crs (Eq. 7)
        "paired_fraction": 1.0,      # fraction of the training pairs the associators see
        **phase_defaults(("vaes", "associators")),
    }

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        cls.check_phase_config(cfg)
        mods = cfg["modalities"]
        if len(mods) < 2:
            raise ModelConfigError(f"config key 'model.modalities' needs at least two modalities, got {mods}")
        for m in mods:
            if cfg["latent_dims"][m] < 1:
                raise ModelConfigError(f"config key 'model.latent_dims.{m}' must be >= 1")
        for pair in cfg["pairs"]:
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or pair[0] == pair[1]
                    or any(m not in mods for m in pair)):
                raise ModelConfigError(f"config key 'model.pairs' must list pairs of two distinct modalities of "
                                       f"{mods}, got {pair!r}")
        for key in ("vae_beta", "assoc_beta"):
            if cfg[key] < 0:
                raise ModelConfigError(f"config key 'model.{key}' must be >= 0, got {cfg[key]}")
        if cfg["assoc_hidden"] < 1 or cfg["assoc_layers"] < 1:
            raise ModelConfigError("config keys 'model.assoc_hidden' and 'model.assoc_layers' must be >= 1")

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        dims = {m: int(cfg["latent_dims"][m]) for m in self.modalities}
        self.latent_dim = sum(dims.values())
        self.vaes = nn.ModuleDict({m: ModalityVAE(m, dims[m]) for m in self.modalities})
        pairs = cfg["pairs"] or [[a, b] for i, a in enumerate(self.modalities) for b in self.modalities[i + 1:]]
        self.directions: list[tuple[str, str]] = []
        for a, b in pairs:
            for s, t in ((a, b), (b, a)):
                if (s, t) not in self.directions:
                    self.directions.append((s, t))
        self.associators = nn.ModuleDict({
            pair_key(s, t): VariationalAssociator(dims[s], dims[t], cfg["assoc_hidden"], cfg["assoc_layers"])
            for s, t in self.directions})
        self.rec_weights = {m: float(cfg["rec_weights"].get(m, 1.0)) for m in self.modalities}

    # ---- phases
    def phase_modules(self, phase: str) -> list[str]:
        return ["vaes"] if phase == "vaes" else ["associators"]

    def phase_data_fraction(self, phase: str) -> float:
        return float(self.config["paired_fraction"]) if phase == "associators" else 1.0

    # ---- losses
    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        present = self.presence(batch, mask)
        logs: dict[str, torch.Tensor] = {}
        if self.phase == "vaes":  # every VAE on its own modality (unpaired)
            total = self.unimodal_vae_terms(batch, present, logs)
        else:  # associators on the pairs, VAEs frozen (Eq. 7)
            total = torch.zeros(present.shape[0], device=present.device)
            lat = {}
            for i, m in enumerate(self.modalities):
                if m in batch:
                    with torch.no_grad():
                        lat[m] = self.vaes[m].encoder(batch[m])
            for s, t in self.directions:
                i, j = self.modalities.index(s), self.modalities.index(t)
                p = present[:, i] & present[:, j]
                if s not in lat or t not in lat or not bool(p.any()):
                    continue
                term = self.association_loss(s, t, lat[s][0], batch[t])
                total = total + torch.where(p, term, torch.zeros_like(term))
                logs[f"assoc/{s}->{t}"] = term.detach()
        return loss_report(total.mean(), logs)

    def association_loss(self, source: str, target: str, z_source: torch.Tensor,
                         x_target: torch.Tensor) -> torch.Tensor:
        """Eq. 7 per sample for ``A_{target,source}`` from source latent means ``z_source``."""
        mu, logvar = self.associators[pair_key(source, target)](z_source)
        x_hat = self.vaes[target].decoder(reparameterize(mu, logvar))
        rec = self.rec_weights[target] * reconstruction_loss(target, x_hat, x_target)
        return rec + self.config["assoc_beta"] * kl_standard_normal(mu, logvar)

    # ---- inference
    def modality_latents(self, inputs: dict, present: torch.Tensor, sample: bool = False) -> dict:
        """``{m: (mu, logvar, have)}`` for every modality: own encoder where present, else through
        the associators hop by hop (``have`` (B,) marks the rows filled).
        """
        b = present.shape[0]
        ref = inputs[next(k for k in inputs if k in self.modalities)]
        lat = {}
        for i, m in enumerate(self.modalities):
            d = int(self.config["latent_dims"][m])
            mu = ref.new_zeros((b, d))
            lv = ref.new_zeros((b, d))
            have = present[:, i].clone()
            if m in inputs and bool(have.any()):
                emu, elv = self.vaes[m].encoder(inputs[m])
                mu = torch.where(have.unsqueeze(1), emu, mu)
                lv = torch.where(have.unsqueeze(1), elv, lv)
            lat[m] = [mu, lv, have]
        for _hop in range(len(self.modalities) - 1):
            snapshot = {m: v[2].clone() for m, v in lat.items()}
            for t in self.modalities:
                need = ~snapshot[t]
                if not bool(need.any()):
                    continue
                mus, lvs, masks = [], [], []
                for s, tt in self.directions:
                    if tt != t or not bool((snapshot[s] & need).any()):
                        continue
                    zs = reparameterize(lat[s][0], lat[s][1]) if sample else lat[s][0]
                    amu, alv = self.associators[pair_key(s, t)](zs)
                    mus.append(amu)
                    lvs.append(alv)
                    masks.append(snapshot[s] & need)
                if not mus:
                    continue
                # per row, fuse the sources available there (product of Gaussians)
                prec = torch.stack([torch.exp(-lv) * mk.unsqueeze(1) for lv, mk in zip(lvs, masks)])
                tot = prec.sum(0).clamp_min(1e-12)
                fmu = (torch.stack(mus) * prec).sum(0) / tot
                rows = torch.stack(masks).any(0)
                lat[t][0] = torch.where(rows.unsqueeze(1), fmu, lat[t][0])
                lat[t][1] = torch.where(rows.unsqueeze(1), -torch.log(tot), lat[t][1])
                lat[t][2] = lat[t][2] | rows
        return lat

    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        present = self.presence(inputs, mask)
        lat = self.modality_latents(inputs, present, sample)
        unreachable = [m for m, v in lat.items() if not bool(v[2].all())]
        if unreachable:
            raise ModelInputError(f"no chain of associators reaches {unreachable} from the given modalities")
        return (torch.cat([lat[m][0] for m in self.modalities], 1), torch.cat([lat[m][1] for m in self.modalities], 1))

    def decode(self, z: torch.Tensor, modalities=None) -> dict:
        mods = self.check_decode(z, modalities)
        sl = self.latent_slices()
        return {m: self.vaes[m].decoder(z[:, sl[m]]) for m in mods}

    @torch.no_grad()
    def translate(self, x: torch.Tensor, path) -> torch.Tensor:
        """Generate ``path[-1]`` from data ``x`` of ``path[0]`` through the explicit associator
        chain ``path`` (means at every hop), e.g. ``["audio", "trajectory", "image"]``.
        """
        path = list(path)
        if len(path) < 2:
            raise ModelInputError("a translation path needs at least two modalities")
        missing = [pair_key(s, t) for s, t in zip(path, path[1:]) if (s, t) not in self.directions]
        if missing:
            raise ModelInputError(f"this model has no associators {missing}; it has "
                                  f"{[pair_key(s, t) for s, t in self.directions]}")
        z = self.vaes[path[0]].encoder(x)[0]
        for s, t in zip(path, path[1:]):
            z = self.associators[pair_key(s, t)](z)[0]
        return self.vaes[path[-1]].decoder(z)
