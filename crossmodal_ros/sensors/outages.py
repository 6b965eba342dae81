# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Sensor outage schedules for playback sources (ROS-free).

A schedule is a list of phases ``(t_start, t_end, live modalities)`` over playback time (seconds
since the playback started). Playback sources publish only while their modality is live, so a
graph can be exercised with sensors dropping in and out: e.g. all sensors, then no camera, then
only the pen, then only audio.

Phases are written as short strings, which is what ROS parameters and command lines can carry::

    "0-12: all"                     # every sensor modality live
    "12-24: audio, trajectory"      # camera off
    "24-36: pen"                    # sensor aliases: camera=image, microphone=audio, pen=trajectory
    "36-48: none"                   # nothing live

An optional name goes in front, ``"camera off @ 12-24: audio, trajectory"``. Times between
phases and after the last one count as "all live" unless ``default_live`` says otherwise; a
repeating schedule wraps playback time around its end. Malformed input raises
:class:`ScheduleError`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, MODALITIES, TRAJECTORY, subset_name

__all__ = [
    "ScheduleError",
    "Phase",
    "OutageSchedule",
    "SENSOR_MODALITIES",
    "parse_modalities",
    "demo_schedule",
]

#: The modalities that sensors (and therefore playback sources) produce.
SENSOR_MODALITIES: tuple[str, ...] = (IMAGE, AUDIO, TRAJECTORY)

_ALIASES = {
    "camera": IMAGE,
    "image": IMAGE,
    "microphone": AUDIO,
    "mic": AUDIO,
    "audio": AUDIO,
    "pen": TRAJECTORY,
    "arm": TRAJECTORY,
    "trajectory": TRAJECTORY,
    "label": LABEL,
}

_PHASE_RE = re.compile(
    r"^\s*(?:(?P<name>[^@]*?)\s*@\s*)?"
    r"(?P<start>[0-9]*\.?[0-9]+)\s*-\s*(?P<end>[0-9]*\.?[0-9]+|inf)\s*:\s*(?P<mods>.*?)\s*$"
)


class ScheduleError(ValueError):
    """A schedule or phase that cannot be understood (bad syntax, overlap, unknown sensor)."""


def parse_modalities(spec: str | Iterable[str]) -> frozenset[str]:
    """Modality names from ``"all"``, ``"none"`` or a comma/plus separated list (aliases allowed).

    ``"all"`` means every sensor modality (image, audio, trajectory), not the label.
    """
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in ("all", "*"):
            return frozenset(SENSOR_MODALITIES)
        if text in ("none", "", "-"):
            return frozenset()
        words = [w.strip() for w in re.split(r"[,+\s]+", text) if w.strip()]
    else:
        words = [str(w).strip().lower() for w in spec]
    out = set()
    for word in words:
        if word not in _ALIASES:
            raise ScheduleError(
                f"unknown sensor/modality {word!r}; use one of {sorted(_ALIASES)}, 'all' or 'none'"
            )
        out.add(_ALIASES[word])
    return frozenset(out)


@dataclass(frozen=True)
class Phase:
    """One phase of a schedule: the modalities in ``live`` publish during [t_start, t_end)."""

    t_start: float
    t_end: float
    live: frozenset[str]
    name: str = ""

    def __post_init__(self):
        if not (self.t_start >= 0 and self.t_end > self.t_start):
            raise ScheduleError(
                f"phase {self.name or ''} [{self.t_start}, {self.t_end}) must satisfy "
                "0 <= t_start < t_end"
            )

    @property
    def label(self) -> str:
        """The phase's name, or a description of its live set."""
        return self.name or describe_live(self.live)

    def contains(self, t: float) -> bool:
        return self.t_start <= t < self.t_end

    @classmethod
    def parse(cls, text: str) -> "Phase":
        """A phase from ``"[name @] start-end: modalities"``."""
        m = _PHASE_RE.match(text)
        if not m:
            raise ScheduleError(
                f"cannot parse phase {text!r}; expected '[name @] start-end: modalities', "
                "e.g. 'camera off @ 12-24: audio, pen'"
            )
        return cls(
            t_start=float(m["start"]),
            t_end=math.inf if m["end"] == "inf" else float(m["end"]),
            live=parse_modalities(m["mods"]),
            name=(m["name"] or "").strip(),
        )

    def to_string(self) -> str:
        mods = ", ".join(sorted(self.live, key=MODALITIES.index)) or "none"
        head = f"{self.name} @ " if self.name else ""
        end = "inf" if math.isinf(self.t_end) else f"{self.t_end:g}"
        return f"{head}{self.t_start:g}-{end}: {mods}"


def describe_live(live: Iterable[str]) -> str:
    """A short description of a live set: ``all``, ``none`` or e.g. ``audio+trajectory``."""
    live = frozenset(live)
    if live >= frozenset(SENSOR_MODALITIES) and LABEL not in live:
        return "all"
    if not live:
        return "none"
    return subset_name(live)


@dataclass(frozen=True)
class OutageSchedule:
    """Phases over playback time, non-overlapping and sorted by start.

    ``default_live`` applies outside every phase (gaps, after the end of a non-repeating
    schedule); ``repeat`` wraps playback time modulo :attr:`duration`.
    """

    phases: tuple[Phase, ...] = ()
    repeat: bool = False
    default_live: frozenset[str] = field(default_factory=lambda: frozenset(SENSOR_MODALITIES))

    def __post_init__(self):
        phases = tuple(sorted(self.phases, key=lambda p: p.t_start))
        for a, b in zip(phases, phases[1:]):
            if b.t_start < a.t_end:
                raise ScheduleError(f"phases overlap: {a.to_string()!r} and {b.to_string()!r}")
        if self.repeat and phases and math.isinf(phases[-1].t_end):
            raise ScheduleError("a repeating schedule needs a finite last phase")
        object.__setattr__(self, "phases", phases)

    @classmethod
    def parse(
        cls, specs: str | Sequence[str], repeat: bool = False, default_live="all"
    ) -> "OutageSchedule":
        """A schedule from phase strings (a list, or one string with phases split by ``;``)."""
        if isinstance(specs, str):
            specs = [s for s in specs.split(";") if s.strip()]
        return cls(
            phases=tuple(Phase.parse(s) for s in specs if str(s).strip()),
            repeat=repeat,
            default_live=parse_modalities(default_live),
        )

    @property
    def duration(self) -> float:
        """End of the last phase (0 for an empty schedule)."""
        return self.phases[-1].t_end if self.phases else 0.0

    def _wrap(self, t: float) -> float:
        if self.repeat and self.duration > 0 and math.isfinite(self.duration):
            return t % self.duration
        return t

    def phase_at(self, t: float) -> Phase | None:
        """The phase holding playback time ``t`` (None in gaps and outside the schedule)."""
        t = self._wrap(t)
        for phase in self.phases:
            if phase.contains(t):
                return phase
        return None

    def live_at(self, t: float) -> frozenset[str]:
        """The modalities that publish at playback time ``t``."""
        phase = self.phase_at(t)
        return phase.live if phase is not None else self.default_live

    def is_live(self, modality: str, t: float) -> bool:
        return modality in self.live_at(t)

    def to_strings(self) -> list[str]:
        return [p.to_string() for p in self.phases]


def demo_schedule(phase_s: float) -> OutageSchedule:
    """The demo's schedule: all -> camera off -> pen only -> audio only -> all, ``phase_s`` each."""
    if not phase_s > 0:
        raise ScheduleError(f"phase length must be positive, got {phase_s}")
    plan = [
        ("all sensors", "all"),
        ("camera off", "audio, trajectory"),
        ("pen only", "trajectory"),
        ("audio only", "audio"),
        ("all again", "all"),
    ]
    return OutageSchedule(
        tuple(
            Phase(i * phase_s, (i + 1) * phase_s, parse_modalities(mods), name)
            for i, (name, mods) in enumerate(plan)
        )
    )
