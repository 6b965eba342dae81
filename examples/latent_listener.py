#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""A minimal consumer of the Nexus latent: ``nexus/latent_stamped`` -> numpy observations.

This is how an RL agent (or any learner) would use the inference node as a multimodal state
encoder: every message is one fused observation of whatever sensors are live, as a diagonal
Gaussian over the shared latent, stamped with the newest fused input's time and naming the fused
sensors and the checkpoint (see examples/README.md for the topic contracts). ``--plain`` reads the
older header-less ``nexus/latent`` (``std_msgs/Float32MultiArray``) and ``nexus/modalities``
instead.

Run next to the graph (``make demo`` in another terminal, same ROS_DOMAIN_ID)::

    python examples/latent_listener.py --count 20

Each line prints the observation vector's shape and a few values; an agent would instead push
``obs`` into its replay buffer or policy.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy  # noqa: E402
from rclpy.executors import ExternalShutdownException  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float32MultiArray, String  # noqa: E402

from crossmodal_ros.ros.conversions import latent_from_stamped  # noqa: E402


def latent_observation(msg: Float32MultiArray, use_std: bool = True):
    """``(obs, mu, logvar)`` from one latent message, by the documented layout.

    layout.dim[0] is ``stat`` (size 2: mu, logvar), layout.dim[1] is ``z`` (size D);
    ``data`` holds mu then logvar. ``obs`` is mu, or [mu, std] with ``use_std``
    (the agent then also sees how certain the fused estimate is - e.g. wide when only one
    weak sensor is live).
    """
    dims = {d.label: d.size for d in msg.layout.dim}
    if set(dims) != {"stat", "z"} or dims["stat"] != 2:
        raise ValueError(f"not a latent message: layout {dims}")
    d = dims["z"]
    data = np.asarray(msg.data, dtype=np.float32)
    if data.size != 2 * d:
        raise ValueError(f"latent data has {data.size} values, layout says {2 * d}")
    mu, logvar = data[msg.layout.data_offset:].reshape(2, d)
    obs = np.concatenate([mu, np.exp(0.5 * logvar)]) if use_std else mu
    return obs, mu, logvar


def stamped_observation(msg: JointState, use_std: bool = True):
    """``(obs, latent)`` from one ``latent_stamped`` message: ``latent`` is the package's reading
    of it (``stamp_s``, ``frame_id``, ``mu``, ``logvar``, ``fused``, ``model``), ``obs`` as in
    :func:`latent_observation`. Raises ``ValueError`` for a message that is not a stamped latent.
    """
    latent = latent_from_stamped(msg)  # ConversionError is a ValueError
    mu, logvar = np.asarray(latent.mu, np.float32), np.asarray(latent.logvar, np.float32)
    obs = np.concatenate([mu, np.exp(0.5 * logvar)]) if use_std else mu
    return obs, latent


class LatentListener(Node):
    """Collects latent observations (and which sensors were fused into each)."""

    def __init__(self, topic: str, modalities_topic: str, use_std: bool, plain: bool = False):
        super().__init__("latent_listener")
        self.use_std = use_std
        self.observations: list[np.ndarray] = []
        self.last_fused = ""
        # reliable matches the node's outputs; depth 10 absorbs short bursts
        if plain:
            self.create_subscription(Float32MultiArray, topic, self.on_latent, 10)
            self.create_subscription(String, modalities_topic, self.on_modalities, 10)
        else:
            self.create_subscription(JointState, topic, self.on_stamped, 10)

    def on_modalities(self, msg: String) -> None:
        self.last_fused = msg.data

    def on_stamped(self, msg: JointState) -> None:
        try:
            obs, latent = stamped_observation(msg, self.use_std)
        except ValueError as exc:
            self.get_logger().warning(str(exc), throttle_duration_sec=5.0)
            return
        self._record(obs, latent.mu, latent.logvar,
                     f"{'+'.join(latent.fused) or '?'} at {latent.stamp_s:.3f} s, {latent.model['kind']}")

    def on_latent(self, msg: Float32MultiArray) -> None:
        try:
            obs, mu, logvar = latent_observation(msg, self.use_std)
        except ValueError as exc:
            self.get_logger().warning(str(exc), throttle_duration_sec=5.0)
            return
        self._record(obs, mu, logvar, self.last_fused or "?")

    def _record(self, obs, mu, logvar, fused: str) -> None:
        self.observations.append(obs)
        self.get_logger().info(
            f"obs {obs.shape} mu[:3]={np.round(np.asarray(mu)[:3], 2)} "
            f"mean std={np.exp(0.5 * np.asarray(logvar)).mean():.3f} (fused: {fused})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Print numpy observations from nexus/latent_stamped.")
    p.add_argument("--topic", default=None,
                   help="latent topic (default /nexus/latent_stamped; with --plain /nexus/latent)")
    p.add_argument("--plain", action="store_true",
                   help="read the older header-less Float32MultiArray latent and the modalities topic")
    p.add_argument("--modalities-topic", default="/nexus/modalities", help="with --plain: the fused set")
    p.add_argument("--count", type=int, default=0, help="stop after N observations (0: run until Ctrl-C)")
    p.add_argument("--mean-only", action="store_true", help="observation = mu only")
    a = p.parse_args(argv)
    try:
        with rclpy.init():
            topic = a.topic or ("/nexus/latent" if a.plain else "/nexus/latent_stamped")
            node = LatentListener(topic, a.modalities_topic, not a.mean_only, plain=a.plain)
            while rclpy.ok() and (a.count <= 0 or len(node.observations) < a.count):
                rclpy.spin_once(node, timeout_sec=0.1)
            if node.observations:
                batch = np.stack(node.observations)
                print(f"collected {batch.shape[0]} observations of size {batch.shape[1]}", flush=True)
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
