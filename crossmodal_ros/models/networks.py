# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Networks of the models: the bottom VAE of a modality and the top-level MLPs (docs/NEXUS_SPEC.md).

The per-modality encoder/decoder pairs live in their modality units (``crossmodal_ros.units``:
``image``, ``audio``, ``trajectory``, ``label``), re-exported here. Every encoder maps a batch
of model tensors (the unit's ``shape``) to ``(mu, logvar)`` of the modality latent; every
decoder maps a latent back to the model tensor shape. The same classes serve Nexus and the
hierarchical baselines, so all models compare on one bottom level.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import units
from ..modalities import MODALITIES
from ..units.audio import SoundDecoder, SoundEncoder  # noqa: F401 - re-exported
from ..units.blocks import GaussianHeads, mlp_stack  # noqa: F401 - re-exported
from ..units.image import ImageDecoder, ImageEncoder  # noqa: F401 - re-exported
from ..units.label import LabelDecoder, LabelEncoder  # noqa: F401 - re-exported
from ..units.trajectory import TrajectoryDecoder, TrajectoryEncoder  # noqa: F401 - re-exported

#: Bottom latent sizes of the reference model (the units' ``latent_dim``).
DEFAULT_LATENT_DIMS: dict[str, int] = {m: units.unit(m).latent_dim for m in MODALITIES}
#: Reconstruction weights per modality of the reference model (Nexus's lambda and gamma; the
#: pair models' ``rec_weights``; the units' ``rec_weight``): the 200-d trajectory and the label
#: would otherwise be drowned by the KL term.
DEFAULT_REC_WEIGHTS: dict[str, float] = {m: units.unit(m).rec_weight for m in MODALITIES}


class ModalityVAE(nn.Module):
    """The bottom-level VAE of one modality: ``encoder(x) -> (mu, logvar)``, ``decoder(z) -> x``."""

    def __init__(self, modality: str, latent_dim: int):
        super().__init__()
        if not units.is_registered(modality):
            raise ValueError(f"no bottom network for modality {modality!r}; known: {list(units.names())}")
        unit = units.unit(modality)
        self.modality = modality
        self.latent_dim = int(latent_dim)
        self.encoder = unit.encoder(self.latent_dim)
        self.decoder = unit.decoder(self.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)


class TopDecoder(nn.Module):
    """Shared latent z_sigma -> mean of one bottom latent: 3 x [FC 512, BN, LeakyReLU], Linear."""

    def __init__(self, shared_dim: int, out_dim: int, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(mlp_stack(shared_dim, hidden, 3), nn.Linear(hidden, out_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class SharedEncoder(nn.Module):
    """Aggregated message -> (mu, logvar) of z_sigma: 2 x [FC 512, BN, LeakyReLU], heads."""

    def __init__(self, in_dim: int, shared_dim: int, hidden: int = 512):
        super().__init__()
        self.features = mlp_stack(in_dim, hidden, 2)
        self.heads = GaussianHeads(hidden, shared_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(h))
