# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""ROS adapter for RL agents: observations from the inference node's live latent topic.

A policy trained in simulation (:mod:`crossmodal_ros.rl`) runs unchanged against a live node:
:class:`LatentObserver` subscribes to the node's latent and keeps the newest reading, and
:class:`RosPointerEnv` is the same digit-pointer task as the simulated environment (same
dynamics function, same observation builder) with the latent taken from the topic instead of
a table.

Topics (relative to the node's prefix, default ``/nexus``):

* ``latent_stamped`` (``sensor_msgs/JointState``: ``mu/<k>``, ``logvar/<k>``, ``fused/<m>``,
  ``model/<kind>/<sha256>``) when the node publishes it: preferred, it says which inputs were
  fused and which checkpoint produced the latent;
* ``latent`` (``std_msgs/Float32MultiArray``, layout ``stat``(2) x ``z``(D)) otherwise, with
  ``modalities`` (``std_msgs/String``) for the fused inputs.

While the stamped topic has a publisher (or once a stamped message has arrived) the plain
topic is ignored (both carry the same fusions), so a reading never mixes the two. Readings are
numpy arrays; nothing here needs torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from crossmodal_ros.rl.env import ACTIONS, N_CELLS, TaskConfig, latent_observation, observation_space, task_step


@dataclass
class LatentReading:
    """One fused latent as received: ``mu``/``logvar`` (D,) float32, ``fused`` modality names,
    ``stamp`` (s; 0 for the plain topic, which has no header), ``source`` ``"stamped"`` or
    ``"plain"``, ``model`` ({"kind", "checkpoint_sha256"} when stamped), ``seq`` (1, 2, ...),
    ``received`` (monotonic seconds).
    """

    mu: np.ndarray
    logvar: np.ndarray
    fused: tuple = ()
    stamp: float = 0.0
    source: str = "plain"
    model: dict = field(default_factory=dict)
    seq: int = 0
    received: float = 0.0


def parse_stamped(msg) -> tuple:
    """``(stamp_s, mu, logvar, fused, model)`` from a stamped latent (JointState) message.

    Uses :func:`crossmodal_ros.ros.conversions.latent_from_stamped` when the package has it,
    else reads the documented name/position pairs itself.
    """
    from crossmodal_ros.ros import conversions as conv

    reader = getattr(conv, "latent_from_stamped", None)
    if reader is not None:
        stamp_s, _frame, mu, logvar, fused, model = reader(msg)
        return (float(stamp_s), np.asarray(mu, np.float32), np.asarray(logvar, np.float32), tuple(fused),
                dict(model or {}))
    mu, lv, fused, model = {}, {}, [], {}
    for name, value in zip(msg.name, msg.position):
        kind, _, rest = name.partition("/")
        if kind == "mu":
            mu[int(rest)] = value
        elif kind == "logvar":
            lv[int(rest)] = value
        elif kind == "fused" and value > 0.5:
            fused.append(rest)
        elif kind == "model":
            k, _, sha = rest.partition("/")
            model = {"kind": k, "checkpoint_sha256": sha}
    d = len(mu)
    if d == 0 or sorted(mu) != list(range(d)) or sorted(lv) != list(range(d)):
        raise ValueError(f"stamped latent without a complete mu/logvar: {len(mu)} mu, {len(lv)} logvar entries")
    stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
    return (float(stamp), np.array([mu[k] for k in range(d)], np.float32), np.array([lv[k] for k in range(d)],
                                                                                    np.float32),
            tuple(fused), model)


class LatentObserver:
    """Subscriptions on ``node`` to the latent topics of the inference node at ``prefix``.

    ``prefer``: ``"auto"`` (stamped once seen, else plain; the first stamped reading drops the
    plain and modalities subscriptions, so the inference node, which publishes only to subscribed
    topics, then builds one latent message per fusion instead of three), ``"stamped"`` or
    ``"plain"`` (only that topic). ``newest`` is the latest :class:`LatentReading` (None before the first);
    ``wait(executor, after_seq, timeout)`` spins until a reading newer than ``after_seq``.
    """

    def __init__(self, node, prefix: str = "/nexus", prefer: str = "auto", depth: int = 10):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_msgs.msg import Float32MultiArray, String

        if prefer not in ("auto", "stamped", "plain"):
            raise ValueError(f"prefer must be 'auto', 'stamped' or 'plain', got {prefer!r}")
        self.node, self.prefer = node, prefer
        self.prefix = prefix.rstrip("/")
        self.newest: LatentReading | None = None
        self.counts = {"stamped": 0, "plain": 0, "invalid": 0}
        self._fused_plain: tuple = ()
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self._subs = []
        if prefer in ("auto", "plain"):
            self._plain_subs = [
                node.create_subscription(Float32MultiArray, f"{self.prefix}/latent", self._on_plain, qos),
                node.create_subscription(String, f"{self.prefix}/modalities", self._on_modalities, qos)]
            self._subs.extend(self._plain_subs)
        else:
            self._plain_subs = []
        if prefer in ("auto", "stamped"):
            try:
                from sensor_msgs.msg import JointState
            except ImportError:  # pragma: no cover - sensor_msgs is a dependency of the package
                JointState = None
            if JointState is not None:
                self._subs.append(node.create_subscription(JointState, f"{self.prefix}/latent_stamped",
                                                           self._on_stamped, qos))

    @property
    def seq(self) -> int:
        return self.newest.seq if self.newest is not None else 0

    def _store(self, **kw) -> None:
        self.newest = LatentReading(seq=self.seq + 1, received=time.monotonic(), **kw)

    def _on_modalities(self, msg) -> None:
        # published right after the plain latent of the same fusion: complete that reading
        self._fused_plain = tuple(m for m in msg.data.split("+") if m)
        if self.newest is not None and self.newest.source == "plain":
            self.newest.fused = self._fused_plain

    def _stamped_published(self) -> bool:
        try:
            return self.node.count_publishers(f"{self.prefix}/latent_stamped") > 0
        except Exception:  # noqa: BLE001 - graph queries during shutdown
            return False

    def _on_plain(self, msg) -> None:
        if self.prefer == "auto" and (self.counts["stamped"] or self._stamped_published()):
            return
        from crossmodal_ros.ros import conversions as conv

        try:
            mu, logvar = conv.latent_from_msg(msg)
        except Exception as exc:  # noqa: BLE001 - ConversionError and malformed data alike
            self.counts["invalid"] += 1
            self.node.get_logger().warning(f"ignoring a latent message: {exc}", throttle_duration_sec=5.0)
            return
        self.counts["plain"] += 1
        self._store(mu=mu, logvar=logvar, fused=(), source="plain")

    def _on_stamped(self, msg) -> None:
        try:
            stamp, mu, logvar, fused, model = parse_stamped(msg)
        except Exception as exc:  # noqa: BLE001
            self.counts["invalid"] += 1
            self.node.get_logger().warning(f"ignoring a stamped latent: {exc}", throttle_duration_sec=5.0)
            return
        self.counts["stamped"] += 1
        self._store(mu=mu, logvar=logvar, fused=fused, stamp=stamp, source="stamped", model=model)
        if self._plain_subs:  # auto: the plain topics are ignored from now on (_on_plain), so unsubscribe
            for sub in self._plain_subs:
                self._subs.remove(sub)
                self.node.destroy_subscription(sub)
            self._plain_subs = []

    def wait(self, executor, after_seq: int = 0, timeout: float = 5.0) -> LatentReading | None:
        """Spin ``executor`` until a reading with ``seq > after_seq`` exists (it, or None on timeout)."""
        deadline = time.monotonic() + timeout
        while self.seq <= after_seq:
            if time.monotonic() >= deadline:
                return None
            executor.spin_once(timeout_sec=0.01)
        return self.newest

    def destroy(self) -> None:
        for s in self._subs:
            self.node.destroy_subscription(s)
        self._subs = []


class RosPointerEnv(gym.Env):
    """The digit-pointer task with the latent of a live inference node.

    ``observer``: a :class:`LatentObserver`; ``executor``: the rclpy executor that spins its node
    (and whatever else the process runs). ``target_fn()`` returns the ground-truth digit of what
    the sensors currently show (e.g. from playback), or None when unknown: rewards are then 0
    and ``info["success"]`` is None. Each step waits ``step_s`` seconds of spinning (the agent's
    control period), then observes the newest latent. ``latent_dim`` fixes the observation size
    (a reading of another size raises). ``expected_checkpoint``: a SHA-256 the stamped latent
    must carry (a policy's ``checkpoint_sha256``); a mismatch raises ``RuntimeError``.
    """

    metadata = {"render_modes": []}

    def __init__(self, observer: LatentObserver, executor, latent_dim: int, target_fn=None, obs_mode: str = "mu",
                 step_s: float = 0.1, config: TaskConfig = TaskConfig(), wait_s: float = 5.0,
                 expected_checkpoint: str = ""):
        self.observer, self.executor = observer, executor
        self.latent_dim, self.obs_mode = int(latent_dim), obs_mode
        self.target_fn = target_fn
        self.step_s, self.cfg, self.wait_s = float(step_s), config, float(wait_s)
        self.expected_checkpoint = expected_checkpoint
        self.observation_space = observation_space(obs_mode, self.latent_dim)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.pointer = 0
        self.steps = 0
        self.reading: LatentReading | None = None

    def _observe(self) -> np.ndarray:
        r = self.observer.newest
        if r is None:
            r = self.observer.wait(self.executor, 0, self.wait_s)
            if r is None:
                raise TimeoutError(f"no latent on {self.observer.prefix}/latent(_stamped) within {self.wait_s} s")
        if r.mu.shape != (self.latent_dim,):
            raise ValueError(f"the node's latent has {r.mu.size} dimensions, the policy expects {self.latent_dim}")
        sha = r.model.get("checkpoint_sha256", "") if r.model else ""
        if self.expected_checkpoint and sha and sha != self.expected_checkpoint:
            raise RuntimeError(f"the node runs checkpoint {sha[:12]}, the policy was trained on "
                               f"{self.expected_checkpoint[:12]}: retrain the policy or start the node with that model")
        self.reading = r
        return latent_observation(r.mu, r.logvar, [self.pointer], self.obs_mode)[0]

    def _info(self) -> dict:
        r = self.reading
        return {"pointer": int(self.pointer), "fused": r.fused if r else (), "source": r.source if r else "",
                "latent_seq": r.seq if r else 0, "target": self._target()}

    def _target(self):
        t = self.target_fn() if self.target_fn is not None else None
        return None if t is None else int(t)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start = (options or {}).get("start")
        self.pointer = int(start) if start is not None else int(self.np_random.integers(0, N_CELLS))
        self.steps = 0
        obs = self._observe()
        return obs, self._info()

    def step(self, action):
        target = self._target()
        ptr, steps, rew, term, trunc, hit = task_step([self.pointer], [self.steps], [int(action)],
                                                     [target if target is not None else -1], self.cfg)
        self.pointer, self.steps = int(ptr[0]), int(steps[0])
        deadline = time.monotonic() + self.step_s
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.01, deadline - time.monotonic())))
        obs = self._observe()
        info = self._info()
        info["target"] = target
        info["success"] = bool(hit[0]) if target is not None else None
        reward = float(rew[0]) if target is not None else 0.0
        return obs, reward, bool(term[0]), bool(trunc[0]), info
