# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Bottom-level networks: one VAE encoder/decoder pair per modality (docs/NEXUS_SPEC.md).

Every encoder maps a batch of model tensors (``modalities.MODEL_SHAPES``) to ``(mu, logvar)``
of the modality latent; every decoder maps a latent back to the model tensor shape. Decoders of
image, audio and trajectory end in a sigmoid (outputs in [0, 1]); the label decoder returns
logits. The same classes serve Nexus and the hierarchical baselines, so all models compare on
one bottom level.

Audio layout: the model tensor is ``(1, 128, 32)`` = mel bins x frames (our contract), while
the reference sound network convolves ``1 x 32 x 128`` = frames x mel with 2-D kernels of
width 1 along one axis. Those are 1-D convolutions over frames with the mel bins as channels;
:class:`SoundEncoder`/:class:`SoundDecoder` implement them so (mathematically the reference
network, same parameter count), which absorbs the frames/mel transpose and trains several
times faster on CPU.
"""
from __future__ import annotations

import torch
from torch import nn

from ..modalities import AUDIO, IMAGE, LABEL, TRAJECTORY

#: Bottom latent sizes of the reference model.
DEFAULT_LATENT_DIMS: dict[str, int] = {IMAGE: 64, AUDIO: 128, TRAJECTORY: 16, LABEL: 5}
#: Reconstruction weights per modality of the reference model (Nexus's lambda and gamma; the
#: pair models' ``rec_weights``): the 200-d trajectory and the label would otherwise be drowned
#: by the KL term.
DEFAULT_REC_WEIGHTS: dict[str, float] = {IMAGE: 1.0, AUDIO: 1.0, TRAJECTORY: 50.0, LABEL: 50.0}


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


_NETWORKS = {
    IMAGE: (ImageEncoder, ImageDecoder),
    AUDIO: (SoundEncoder, SoundDecoder),
    TRAJECTORY: (TrajectoryEncoder, TrajectoryDecoder),
    LABEL: (LabelEncoder, LabelDecoder),
}


class ModalityVAE(nn.Module):
    """The bottom-level VAE of one modality: ``encoder(x) -> (mu, logvar)``, ``decoder(z) -> x``."""

    def __init__(self, modality: str, latent_dim: int):
        super().__init__()
        if modality not in _NETWORKS:
            raise ValueError(f"no bottom network for modality {modality!r}; known: {sorted(_NETWORKS)}")
        enc, dec = _NETWORKS[modality]
        self.modality = modality
        self.latent_dim = int(latent_dim)
        self.encoder = enc(self.latent_dim)
        self.decoder = dec(self.latent_dim)

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
