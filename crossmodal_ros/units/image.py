# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The image unit: a grey 28x28 camera frame (``sensor_msgs/Image`` on ``camera/image_raw``).

Model tensor ``(1, 28, 28)``, bright stroke on dark, in [0, 1]; bottom networks of the
reference model (two stride-2 convolutions with Swish, two FC 128 layers); squared-error
reconstruction; the fusion output is the (28, 28) frame.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import messages
from ..codecs import ImageCodec
from ..modalities import IMAGE, MODEL_SHAPES
from .blocks import GaussianHeads
from .losses import squared_error_loss
from .registry import ModalityUnit, register


class ImageEncoder(nn.Module):
    """1x28x28 image -> (mu, logvar): two stride-2 convs with Swish, two FC 128 layers."""

    def __init__(self, latent_dim: int = 64):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1, bias=False), nn.SiLU(),
            nn.Conv2d(32, 64, 4, 2, 1, bias=False), nn.SiLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128), nn.SiLU(),
            nn.Linear(128, 128), nn.SiLU(),
        )
        self.heads = GaussianHeads(128, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


class ImageDecoder(nn.Module):
    """Latent -> 1x28x28 image in [0, 1] (mirror of :class:`ImageEncoder`)."""

    def __init__(self, latent_dim: int = 64):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.SiLU(),
            nn.Linear(128, 128), nn.SiLU(),
            nn.Linear(128, 64 * 7 * 7), nn.SiLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.deconv(self.fc(z).view(-1, 64, 7, 7)))


def warm_up(sample_rate: int = 16000):
    """A 28x28 diagonal."""
    return np.eye(28, dtype=np.float32)


UNIT = register(ModalityUnit(
    name=IMAGE, shape=MODEL_SHAPES[IMAGE], codec=ImageCodec, encoder=ImageEncoder, decoder=ImageDecoder,
    latent_dim=64, rec_weight=1.0,
    reconstruction=squared_error_loss,
    to_output=lambda t, codec: t[0], empty_output=lambda: np.zeros((0, 0), np.float32),
    input_topic="camera/image_raw", input_msg="sensor_msgs/msg/Image", msg_to_input=messages.image_input,
    warm_up=warm_up))
