# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The audio unit: a mono utterance (``std_msgs/Float32MultiArray`` PCM on ``audio/chunk``).

Model tensor ``(1, 128, 32)``: log-mel (mel x frames) in [0, 1]; the codec needs the sample
rate. Reconstruction: Gaussian NLL with a batch-shared optimal sigma (SigmaVAE) at both levels;
the fusion output is the (128, 32) mel, which Griffin-Lim turns into a waveform.

Audio layout: the model tensor is ``(1, 128, 32)`` = mel bins x frames (our contract), while
the reference sound network convolves ``1 x 32 x 128`` = frames x mel with 2-D kernels of
width 1 along one axis. Those are 1-D convolutions over frames with the mel bins as channels;
:class:`SoundEncoder`/:class:`SoundDecoder` implement them so (mathematically the reference
network, same parameter count), which absorbs the frames/mel transpose and trains several
times faster on CPU.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import messages
from ..codecs import AudioCodec
from ..modalities import AUDIO, MODEL_SHAPES
from .blocks import GaussianHeads
from .losses import sigma_nll_loss
from .registry import ModalityUnit, register


class SoundEncoder(nn.Module):
    """Mel spectrogram (1, 128 mel, 32 frames) -> (mu, logvar).

    The reference network takes 1 x 32 frames x 128 mel and applies Conv2d 1->128 k(1,128)
    (collapsing the mel axis), then two Conv2d k(4,1) s(2,1) p(1,0) over the frame axis
    (128->128, 128->256; 32 -> 16 -> 8 frames), each without bias + BN + ReLU; flatten
    256*8 = 2048; Gaussian heads. On a 1-wide axis those 2-D convolutions are exactly 1-D
    convolutions over frames with the mel bins as input channels, which is how they are
    implemented here: our (1, 128 mel, 32 frames) tensor viewed as (128 channels, 32 frames)
    *is* the reference input transposed, so no explicit transpose is needed, the parameter count
    is identical, and CPU training is several times faster than with 2-D kernels of width 1.
    """

    def __init__(self, latent_dim: int = 128, n_mels: int = 128):
        super().__init__()
        self.n_mels = n_mels
        self.features = nn.Sequential(
            nn.Conv1d(n_mels, 128, 1, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Conv1d(128, 128, 4, 2, 1, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Conv1d(128, 256, 4, 2, 1, bias=False), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Flatten(),  # channel-major (c * 8 + t), as the reference flattens 256x8x1
        )
        self.heads = GaussianHeads(2048, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x.reshape(x.shape[0], self.n_mels, -1)))


class SoundDecoder(nn.Module):
    """Latent -> mel spectrogram (1, 128 mel, 32 frames) in [0, 1] (mirror of the encoder).

    Reference: FC 128->2048, BN, ReLU; reshape 256x8x1; ConvT2d 256->128 and 128->128 (k(4,1)
    s(2,1) p(1,0), BN, ReLU); ConvT2d 128->1 k(1,128) (one scalar bias); sigmoid; giving
    1 x 32 frames x 128 mel. Implemented with the equivalent 1-D transposed convolutions over
    frames; the last one maps 128 channels to the 128 mel bins per frame, which yields the
    (mel x frames) layout of our contract directly.
    """

    def __init__(self, latent_dim: int = 128, n_mels: int = 128):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(latent_dim, 2048), nn.BatchNorm1d(2048), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose1d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
            nn.ConvTranspose1d(128, 128, 4, 2, 1, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
            nn.ConvTranspose1d(128, n_mels, 1, bias=False),
        )
        self.out_bias = nn.Parameter(torch.zeros(1))  # the reference's single output-channel bias

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mel_by_frames = self.deconv(self.fc(z).view(-1, 256, 8)) + self.out_bias  # (B, 128, 32)
        return torch.sigmoid(mel_by_frames).unsqueeze(1)


def warm_up(sample_rate: int = 16000):
    """A quarter second of a 300 Hz tone."""
    t = np.arange(sample_rate // 4) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32)


UNIT = register(ModalityUnit(
    name=AUDIO, shape=MODEL_SHAPES[AUDIO], codec=AudioCodec, encoder=SoundEncoder, decoder=SoundDecoder,
    latent_dim=128, rec_weight=1.0, reconstruction=sigma_nll_loss, latent_reconstruction=sigma_nll_loss,
    to_output=lambda t, codec: t[0], empty_output=lambda: np.zeros((0, 0), np.float32),
    input_topic="audio/chunk", input_msg="std_msgs/msg/Float32MultiArray", msg_to_input=messages.audio_input,
    warm_up=warm_up, needs_sample_rate=True))
