# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""QoS profiles of the crossmodal_ros graph.

Sensor inputs default to sensor-data QoS (best effort, keep last, volatile) and can be made
reliable: a best-effort subscriber receives from both reliable and best-effort publishers,
while a reliable subscriber never connects to a best-effort publisher (the classic camera
pitfall). Outputs of the inference node are reliable, so every subscriber kind connects.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Accepted values of the ``qos_reliability`` parameter.
RELIABILITY_CHOICES = ("best_effort", "reliable")

_RELIABILITY = {
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
}


def input_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """Profile for sensor input subscriptions (and sensor publishers that want to match)."""
    if reliability not in _RELIABILITY:
        raise ValueError(f"qos reliability must be one of {RELIABILITY_CHOICES}, got {reliability!r}")
    if int(depth) < 1:
        raise ValueError(f"qos depth must be >= 1, got {depth}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(depth),
        reliability=_RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def output_qos(depth: int = 10) -> QoSProfile:
    """Profile for the inference node's outputs: reliable, keep last ``depth``, volatile."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(depth),
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
