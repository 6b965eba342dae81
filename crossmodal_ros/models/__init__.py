# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Models behind one interface (:class:`~crossmodal_ros.models.base.MultimodalModel`).

``build_model(kind, config)`` builds any registered kind from a plain config dict;
``MODEL_KINDS`` maps kind -> class. New kinds register with :func:`register_model`.
"""
from __future__ import annotations

from torch import nn

from .base import ModelConfigError, ModelInputError, MultimodalModel

#: kind name -> model class. Extend with :func:`register_model`.
MODEL_KINDS: dict[str, type[MultimodalModel]] = {}


def register_model(kind: str):
    """Class decorator adding a :class:`MultimodalModel` subclass to :data:`MODEL_KINDS`."""

    def deco(cls):
        if not (isinstance(cls, type) and issubclass(cls, MultimodalModel)):
            raise TypeError(f"{cls!r} is not a MultimodalModel subclass")
        if kind in MODEL_KINDS and MODEL_KINDS[kind] is not cls:
            raise ValueError(f"model kind {kind!r} is already registered by {MODEL_KINDS[kind].__name__}")
        cls.kind = kind
        MODEL_KINDS[kind] = cls
        return cls

    return deco


def build_model(kind: str, config: dict | None = None) -> MultimodalModel:
    """A new model of ``kind`` with ``config`` (merged over the kind's defaults).

    Raises :class:`ModelConfigError` for an unknown kind, unknown config keys or bad values.
    """
    if kind not in MODEL_KINDS:
        raise ModelConfigError(f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
    return MODEL_KINDS[kind](config)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


from . import nexus as _nexus  # noqa: E402  (registers the built-in kinds)

register_model("nexus")(_nexus.Nexus)
register_model("nexus0")(_nexus.Nexus0)

from . import baselines as _baselines  # noqa: E402,F401  (registers mvae, mmvae)
from . import modern as _modern  # noqa: E402,F401  (registers mopoe, mvtcae, mmvae_plus)

from . import associator as _associator  # noqa: E402,F401  (Jo et al. 2019)
from . import alignment as _alignment  # noqa: E402,F401  (Theodoridis et al. 2020)
from . import latent_constraint as _latent_constraint  # noqa: E402,F401  (Chaudhury et al. 2017)

__all__ = ["MODEL_KINDS", "ModelConfigError", "ModelInputError", "MultimodalModel", "build_model",
           "count_parameters", "register_model"]
