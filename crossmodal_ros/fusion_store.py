# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Keep-latest input store with per-modality staleness windows (ROS-free, clock-agnostic).

This is the fusion bookkeeping of the Nexus node (docs/architecture.md), kept apart from the
node so the offline bag evaluator can run the same logic over bag time:

* ``put`` stores the newest sample of a modality (older unfused ones are superseded);
* a modality is *live* while ``now - arrival < staleness[modality]``, all in seconds of one
  clock chosen by the caller (the node uses its ROS clock, so ``use_sim_time`` works);
* a staleness window of 0 disables a modality (never live);
* bookkeeping for reconciling message counts: ``superseded[m]`` (replaced before any fusion
  took it) and ``expired[m]`` (not live any more when a fusion took the pending inputs, so
  never fused);
* if the clock jumps backwards (``now < arrival``, e.g. a bag loops or ``/clock`` restarts), the
  sample is treated as fresh once: its arrival is re-based to ``now`` and it then ages normally.

All methods are thread-safe (subscription callbacks and the fusion timer may run on different
executor threads).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Sample:
    """One validated input: ``value`` for the engine, its header ``stamp`` (opaque, copied into
    output headers), ``stamp_s`` (the same in seconds, to find the newest), ``arrival_s`` (on
    the liveness clock), the sender's ``frame_id`` and ``seq``, a caller-chosen message number
    (the node uses it to count each input message once, however many fusions reuse it).
    """

    value: Any
    stamp: Any
    stamp_s: float
    arrival_s: float
    frame_id: str = ""
    seq: int = -1


class LatestSamples:
    """The newest :class:`Sample` per modality plus a 'new input since last fusion' flag."""

    def __init__(self, modalities: Iterable[str]):
        self.modalities = tuple(modalities)
        self._lock = threading.Lock()
        self._samples: dict[str, Sample] = {}
        self._unfused: set[str] = set()
        self.superseded: dict[str, int] = {m: 0 for m in self.modalities}
        self.expired: dict[str, int] = {m: 0 for m in self.modalities}

    def put(self, modality: str, sample: Sample) -> None:
        """Store ``sample`` as the newest of ``modality`` and mark new input pending."""
        if modality not in self.superseded:
            raise KeyError(f"unknown modality {modality!r}; known: {self.modalities}")
        with self._lock:
            if modality in self._unfused:
                self.superseded[modality] += 1
            self._samples[modality] = sample
            self._unfused.add(modality)

    @property
    def pending(self) -> bool:
        """True when some modality received a sample since the last :meth:`live` with take."""
        with self._lock:
            return bool(self._unfused)

    def live(self, now_s: float, staleness: Mapping[str, float], take: bool = False) -> dict:
        """The live samples at ``now_s`` as ``{modality: Sample}`` in canonical order.

        With ``take=True`` the pending flag is cleared (the caller fuses them now); a pending
        sample that is not live at that moment is counted in ``expired``.
        """
        out: dict[str, Sample] = {}
        with self._lock:
            for m in self.modalities:
                s = self._samples.get(m)
                window = float(staleness.get(m, 0.0))
                if s is None or window <= 0.0:
                    continue
                age = now_s - s.arrival_s
                if age < 0.0:  # clock jumped backwards: fresh once, then ages from now
                    s = replace(s, arrival_s=now_s)
                    self._samples[m] = s
                    age = 0.0
                if age < window:
                    out[m] = s
            if take:
                for m in self._unfused:
                    if m not in out:
                        self.expired[m] += 1
                self._unfused.clear()
        return out

    def pending_modalities(self) -> tuple[str, ...]:
        """The modalities holding a sample that no fusion has taken yet."""
        with self._lock:
            return tuple(m for m in self.modalities if m in self._unfused)

    def __len__(self) -> int:
        """Number of stored samples (at most one per modality: the store is bounded)."""
        with self._lock:
            return len(self._samples)

    def ages(self, now_s: float) -> dict[str, float]:
        """Seconds since each stored modality's newest arrival (negative after a clock jump)."""
        with self._lock:
            return {m: now_s - s.arrival_s for m, s in self._samples.items()}

    def discard(self, modalities: Iterable[str]) -> None:
        """Forget the stored samples of ``modalities`` (e.g. ones a codec rejected)."""
        with self._lock:
            for m in modalities:
                self._samples.pop(m, None)
                self._unfused.discard(m)

    def clear(self) -> None:
        """Forget every sample (node cleanup)."""
        with self._lock:
            self._samples.clear()
            self._unfused.clear()


def newest(samples: Mapping[str, Sample]) -> Sample:
    """The sample with the newest header stamp (ties: canonical order wins)."""
    if not samples:
        raise ValueError("no samples")
    return max(samples.values(), key=lambda s: s.stamp_s)
