# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""multivae's Nexus built with OUR MHD networks, for side-by-side benchmarks (benchmark-only).

multivae (PyPI, installed only in benchmarks/.venv-multivae by setup_multivae.sh; the project
never imports it) accepts custom architectures as pythae ``BaseEncoder``/``BaseDecoder``
modules. The adapters below wrap this project's own modules (``models.networks``: bottom
encoders/decoders, ``SharedEncoder``, ``TopDecoder``, and the 512-d message Linear), so both
sides run exactly the same layers and the comparison measures the two libraries' machinery, not
two architectures. ``build_multivae_nexus`` also returns both parameter counts.
Licence: Apache-2.0.
"""
from __future__ import annotations

import torch
from torch import nn

import common  # noqa: F401  (puts the repository root on sys.path)
from crossmodal_ros.modalities import MODALITIES, MODEL_SHAPES
from crossmodal_ros.models import build_model, count_parameters
from crossmodal_ros.models.networks import DEFAULT_LATENT_DIMS, ModalityVAE, SharedEncoder, TopDecoder


def available() -> str | None:
    """None when multivae imports, else the reason (shown in the tables)."""
    try:
        import multivae  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not comparable here"
        return f"multivae not importable ({type(exc).__name__}: {exc}); run `make bench-env` and use its python"
    return None


def build_multivae_nexus(modalities=MODALITIES, fpd_rho: float = 0.2):
    """(multivae Nexus model, our Nexus model) with the same MHD architecture.

    Returns ``(mv_model, ours, info)`` where ``info`` has both parameter counts.
    """
    from multivae.models import Nexus, NexusConfig
    from multivae.models.base import BaseDecoder, BaseEncoder
    from pythae.models.base.base_utils import ModelOutput

    class GaussianEncoder(BaseEncoder):
        """Any module returning (mu, logvar) as a pythae encoder."""

        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x):
            mu, logvar = self.net(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class MessageEncoder(BaseEncoder):
        """The Nexus message layer (one Linear d_m -> 512) as a pythae encoder."""

        def __init__(self, in_dim: int, msg_dim: int):
            super().__init__()
            self.net = nn.Linear(in_dim, msg_dim)

        def forward(self, x):
            return ModelOutput(embedding=self.net(x))

    class Decoder(BaseDecoder):
        """Any module z -> tensor as a pythae decoder."""

        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    mods = [m for m in MODALITIES if m in modalities]
    dims = {m: DEFAULT_LATENT_DIMS[m] for m in mods}
    cfg = NexusConfig(n_modalities=len(mods), latent_dim=32, input_dims={m: MODEL_SHAPES[m] for m in mods},
                      modalities_specific_dim=dims, msg_dim=512, dropout_rate=fpd_rho,
                      gammas={m: 1.0 for m in mods}, bottom_betas={m: 1.0 for m in mods})
    vaes = {m: ModalityVAE(m, dims[m]) for m in mods}
    mv = Nexus(cfg,
               encoders={m: GaussianEncoder(vaes[m].encoder) for m in mods},
               decoders={m: Decoder(vaes[m].decoder) for m in mods},
               top_encoders={m: MessageEncoder(dims[m], 512) for m in mods},
               joint_encoder=GaussianEncoder(SharedEncoder(512, 32, 512)),
               top_decoders={m: Decoder(TopDecoder(32, dims[m], 512)) for m in mods})
    ours = build_model("nexus", {"modalities": mods})
    info = {"params_multivae": count_parameters(mv), "params_ours": count_parameters(ours)}
    return mv, ours, info


def multivae_dataset(batch: dict):
    """A multivae dataset of model tensors (dict modality -> (B, ...))."""
    from multivae.data.datasets.base import MultimodalBaseDataset

    n = next(iter(batch.values())).shape[0]
    return MultimodalBaseDataset(data=dict(batch), labels=torch.zeros(n, dtype=torch.long))
