# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The modalities of the MHD setting and the shapes of their model tensors.

Every component passes modalities as ``dict[name -> tensor]`` plus a presence mask, keyed by
the names below, always in this order when an order is needed (masks, subsets, layouts).
Everything else about a modality (codec, networks, losses, messages, topic, warm-up sample) is
its unit in :mod:`crossmodal_ros.units`, whose registry also holds modalities added later.
"""
from __future__ import annotations

from itertools import combinations

IMAGE = "image"
AUDIO = "audio"
TRAJECTORY = "trajectory"
LABEL = "label"

#: Canonical order of the modalities.
MODALITIES: tuple[str, ...] = (IMAGE, AUDIO, TRAJECTORY, LABEL)

#: Shape of one sample's model tensor (without the batch axis).
#: image: grey, bright stroke on dark, [0,1]; audio: log-mel (mel x frames) in [0,1];
#: trajectory: x1..x100, y1..y100 in [0,1]; label: 10 class scores (one-hot in, logits out).
MODEL_SHAPES: dict[str, tuple[int, ...]] = {
    IMAGE: (1, 28, 28),
    AUDIO: (1, 128, 32),
    TRAJECTORY: (200,),
    LABEL: (10,),
}

NUM_CLASSES = 10


def all_subsets(modalities: tuple[str, ...] = MODALITIES) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities`` in canonical order (15 for the four modalities)."""
    out: list[tuple[str, ...]] = []
    for k in range(1, len(modalities) + 1):
        out.extend(combinations(modalities, k))
    return out


def subset_name(subset) -> str:
    """A stable, human-readable name for a subset, e.g. ``image+trajectory``."""
    order = {m: i for i, m in enumerate(MODALITIES)}
    return "+".join(sorted(subset, key=lambda m: order.get(m, len(order))))
