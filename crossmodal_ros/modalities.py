# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The modalities of the MHD setting and the shapes of their model tensors.

Every component passes modalities as ``dict[name -> tensor]`` plus a presence mask, keyed by
the names below, always in this order when an order is needed (masks, subsets, layouts).
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


def warm_up_sample(modality: str, sample_rate: int = 16000):
    """A small valid raw input of ``modality`` (what a sensor delivers), for warm-up inferences
    that pay first-call costs before real data arrives: a 28x28 diagonal, a quarter second of a
    300 Hz tone, a 20-point parabola, class 0.
    """
    import numpy as np

    if modality == IMAGE:
        return np.eye(28, dtype=np.float32)
    if modality == AUDIO:
        t = np.arange(sample_rate // 4) / sample_rate
        return (0.3 * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32)
    if modality == TRAJECTORY:
        return np.stack([np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2], axis=1)
    if modality == LABEL:
        return 0
    raise ValueError(f"no warm-up sample for modality {modality!r}; known: {MODALITIES}")
