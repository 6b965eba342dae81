# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Dataset playback for sensor nodes without sensors (ROS-free).

A playback source publishes one dataset sample every ``period_s`` seconds. Which sample is a
pure function of the clock: tick ``k = floor((t - tick_origin) / period)`` plays sample
``order[k % N]`` where ``order`` is a seeded permutation. Camera, microphone and pen playback
therefore agree on the sample (and the label) at every tick, even in separate processes, as long
as they share ``period_s``, ``seed`` and ``tick_origin`` (default 0 = the Unix epoch, which every
process shares). An :class:`~crossmodal_ros.sensors.outages.OutageSchedule` read at playback time
``t - schedule_start`` decides whether the modality is live at that tick.

:func:`sample_for` turns dataset rows into raw sensor data of the form the sensors produce
(a mono8 frame, a PCM waveform, an (N,2) pen trajectory).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, TRAJECTORY
from crossmodal_ros.sensors.outages import OutageSchedule

__all__ = ["SensorError", "PlaybackTick", "PlaybackClock", "sample_for", "frame_from_image"]


class SensorError(ValueError):
    """A sensor source that cannot run: bad settings, a missing device or driver library, or a
    dataset that lacks what a playback source needs. The message says what to do.
    """


@dataclass(frozen=True)
class PlaybackTick:
    """One playback tick: which dataset row to publish and whether the modality is live."""

    tick: int
    index: int
    t_tick: float  # nominal clock time of the tick (tick_origin + tick * period)
    playback_time: float  # t_tick - schedule_start: the time the outage schedule is read at
    live: frozenset
    phase: str


class PlaybackClock:
    """Maps clock time to playback ticks and dataset rows (one per ``period_s``)."""

    def __init__(
        self,
        n_samples: int,
        period_s: float,
        seed: int = 0,
        schedule: OutageSchedule | None = None,
        schedule_start: float = 0.0,
        tick_origin: float = 0.0,
        shuffle: bool = True,
    ):
        if n_samples <= 0:
            raise SensorError("the playback dataset is empty")
        if not (period_s > 0 and math.isfinite(period_s)):
            raise SensorError(f"period must be a positive number of seconds, got {period_s}")
        self.n_samples = int(n_samples)
        self.period_s = float(period_s)
        self.tick_origin = float(tick_origin)
        self.schedule_start = float(schedule_start)
        self.schedule = schedule or OutageSchedule()
        rng = np.random.default_rng(seed)
        self.order = rng.permutation(self.n_samples) if shuffle else np.arange(self.n_samples)
        self._last_tick: int | None = None

    def tick_at(self, t: float) -> int:
        return math.floor((t - self.tick_origin) / self.period_s + 1e-9)

    def index_for_tick(self, tick: int) -> int:
        return int(self.order[tick % self.n_samples])

    def describe(self, tick: int) -> PlaybackTick:
        t_tick = self.tick_origin + tick * self.period_s
        rel = t_tick - self.schedule_start
        phase = self.schedule.phase_at(rel)
        return PlaybackTick(
            tick=tick,
            index=self.index_for_tick(tick),
            t_tick=t_tick,
            playback_time=rel,
            live=self.schedule.live_at(rel),
            phase=phase.label if phase else "",
        )

    def poll(self, t: float) -> PlaybackTick | None:
        """The tick that started at or before ``t`` if it was not returned before, else None.

        Ticks skipped because of a late poll are not replayed (a sensor publishes the present);
        ticks before ``schedule_start`` are not played.
        """
        tick = self.tick_at(t)
        if self._last_tick is not None and tick <= self._last_tick:
            return None
        if self.tick_origin + tick * self.period_s < self.schedule_start - 1e-9:
            return None  # playback has not started yet
        self._last_tick = tick
        return self.describe(tick)


def frame_from_image(image: np.ndarray, size: int = 28) -> np.ndarray:
    """A mono8 camera frame (size x size, uint8) from a dataset image (1,28,28) in [0,1]."""
    img = np.asarray(image, dtype=np.float32).reshape(image.shape[-2], image.shape[-1])
    frame = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    if size != frame.shape[0]:
        import cv2

        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
    return frame


def sample_for(dataset: dict, modality: str, index: int, frame_size: int = 28):
    """Raw sensor data for row ``index`` of a dataset dict (docs/architecture.md schema).

    image -> uint8 (frame_size, frame_size) mono frame; audio -> float32 PCM (valid samples
    only); trajectory -> float32 (100, 2) points in [0,1], y up; label -> int.
    """
    if modality not in dataset:
        raise SensorError(f"dataset {dataset.get('name', '?')!r} has no {modality!r} data")
    if modality == IMAGE:
        return frame_from_image(dataset[IMAGE][index], frame_size)
    if modality == AUDIO:
        wave = np.asarray(dataset[AUDIO][index], dtype=np.float32)
        if "audio_length" in dataset:
            wave = wave[: int(dataset["audio_length"][index])]
        return wave
    if modality == TRAJECTORY:
        flat = np.asarray(dataset[TRAJECTORY][index], dtype=np.float32)
        half = flat.shape[0] // 2
        return np.stack([flat[:half], flat[half:]], axis=1)
    if modality == LABEL:
        return int(dataset[LABEL][index])
    raise SensorError(f"unknown modality {modality!r}")


def resample_audio(wave: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling of mono float PCM from ``rate_in`` to ``rate_out`` Hz, kept in [-1, 1]."""
    if rate_in == rate_out:
        return np.asarray(wave, dtype=np.float32)
    if rate_in <= 0 or rate_out <= 0:
        raise SensorError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
    from scipy.signal import resample_poly

    g = math.gcd(int(rate_in), int(rate_out))
    out = resample_poly(np.asarray(wave, dtype=np.float64), int(rate_out) // g, int(rate_in) // g)
    return np.clip(out, -1.0, 1.0).astype(np.float32)
