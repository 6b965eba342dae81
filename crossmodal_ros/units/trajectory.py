# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The trajectory unit: one pen stroke (``nav_msgs/Path`` on ``pen/stroke``).

Model tensor ``(200,)``: x1..x100, y1..y100 in [0, 1] (the codec resamples a stroke by arc
length); MLP networks; squared-error reconstruction; the fusion output is (100, 2) points.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import messages
from ..codecs import TrajectoryCodec
from ..modalities import MODEL_SHAPES, TRAJECTORY
from .blocks import GaussianHeads, mlp_stack
from .losses import squared_error_loss
from .registry import ModalityUnit, register


class TrajectoryEncoder(nn.Module):
    """200-vector (x1..x100, y1..y100) -> (mu, logvar): 3 x [FC 512, BN, LeakyReLU]."""

    def __init__(self, latent_dim: int = 16, in_dim: int = 200, hidden: int = 512):
        super().__init__()
        self.features = mlp_stack(in_dim, hidden, 3)
        self.heads = GaussianHeads(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


class TrajectoryDecoder(nn.Module):
    """Latent -> 200-vector in [0, 1]: 3 x [FC 512, BN, LeakyReLU], FC 200, sigmoid."""

    def __init__(self, latent_dim: int = 16, out_dim: int = 200, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(mlp_stack(latent_dim, hidden, 3), nn.Linear(hidden, out_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


def warm_up(sample_rate: int = 16000):
    """A 20-point parabola."""
    return np.stack([np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2], axis=1)


UNIT = register(ModalityUnit(
    name=TRAJECTORY, shape=MODEL_SHAPES[TRAJECTORY], codec=TrajectoryCodec, encoder=TrajectoryEncoder,
    decoder=TrajectoryDecoder, latent_dim=16, rec_weight=50.0, reconstruction=squared_error_loss,
    to_output=lambda t, codec: codec.decode(t), empty_output=lambda: np.zeros((0, 2), np.float32),
    input_topic="pen/stroke", input_msg="nav_msgs/msg/Path", msg_to_input=messages.stroke_input,
    warm_up=warm_up))
