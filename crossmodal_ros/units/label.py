# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The label unit: a digit class (``std_msgs/Int32`` on ``label``).

Model tensor ``(10,)``: one-hot in, class logits out; MLP networks; cross-entropy
reconstruction (squared error on the bottom latent at the top level); the fusion output is the
(10,) class probabilities (``FusionResult.label`` is their argmax).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import messages
from ..codecs import LabelCodec
from ..modalities import LABEL, MODEL_SHAPES
from .blocks import GaussianHeads, mlp_stack
from .losses import cross_entropy_loss
from .registry import ModalityUnit, register


class LabelEncoder(nn.Module):
    """One-hot label (10) -> (mu, logvar): 3 x [FC 128, BN, LeakyReLU]."""

    def __init__(self, latent_dim: int = 5, num_classes: int = 10, hidden: int = 128):
        super().__init__()
        self.features = mlp_stack(num_classes, hidden, 3)
        self.heads = GaussianHeads(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


class LabelDecoder(nn.Module):
    """Latent -> 10 class logits: 3 x [FC 128, BN, LeakyReLU], FC 10."""

    def __init__(self, latent_dim: int = 5, num_classes: int = 10, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(mlp_stack(latent_dim, hidden, 3), nn.Linear(hidden, num_classes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def softmax(logits) -> np.ndarray:
    """Class probabilities (float32) of ``logits`` along the last axis."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def warm_up(sample_rate: int = 16000):
    """Class 0."""
    return 0


UNIT = register(ModalityUnit(
    name=LABEL, shape=MODEL_SHAPES[LABEL], codec=LabelCodec, encoder=LabelEncoder, decoder=LabelDecoder,
    latent_dim=5, rec_weight=50.0, reconstruction=cross_entropy_loss,
    to_output=lambda t, codec: softmax(t), empty_output=lambda: np.zeros(0, np.float32),
    input_topic="label", input_msg="std_msgs/msg/Int32", msg_to_input=messages.label_input,
    warm_up=warm_up))
