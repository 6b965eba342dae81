# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Network building blocks of the modality units and the models (``models.networks`` re-exports them)."""
from __future__ import annotations

import torch
from torch import nn


def mlp_stack(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """``layers`` x [Linear, BatchNorm1d, LeakyReLU], the block used across the spec's MLPs."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU()]
    return nn.Sequential(*mods)


class GaussianHeads(nn.Module):
    """Two linear heads: a feature vector -> ``(mu, logvar)`` of a diagonal Gaussian."""

    def __init__(self, in_dim: int, latent_dim: int):
        super().__init__()
        self.mu = nn.Linear(in_dim, latent_dim)
        self.logvar = nn.Linear(in_dim, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h)
