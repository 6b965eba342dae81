"""When to fuse: the one scheduling policy of the inference node and the offline bag evaluator.

ROS-free and clock-agnostic: every method takes ``now`` in seconds of the caller's clock (the
node uses ``time.monotonic()``, :func:`crossmodal_ros.ros.bag_eval.evaluate_bag` bag time, the
tests a fake clock), so the node and the bag evaluator make the same decisions.

Rules (issue 11):

* **fresh input is fused at once** unless a fusion is running (then as soon as it ends) or the
  previous *fresh* fusion started less than ``1 / max_rate_hz`` ago (then at that moment, on the
  next timer tick); inputs arriving meanwhile coalesce into that one fusion (the store keeps the
  newest per modality);
* **heartbeats only fill silence**: one runs when something is live, nothing is pending, and
  neither a fusion nor a fresh input happened for ``1 / heartbeat_hz``;
* heartbeats never delay fresh input: they do not count against ``max_rate_hz`` (only fresh
  fusions do), and a pending input always wins over a due heartbeat.

The caller drives it with :meth:`FusionScheduler.note_input` (a fresh input was stored),
:meth:`decide` (on every input and every timer tick: ``"fresh"``, ``"heartbeat"`` or None) and
:meth:`started` / :meth:`finished` around each fusion. :attr:`tick_period` is the timer period
both callers poll with.
"""
from __future__ import annotations

import math
from typing import Optional

FRESH = "fresh"
HEARTBEAT = "heartbeat"

#: Timer ticks are periodic; a deadline that falls a hair after a tick is taken at that tick.
_SLACK = 0.999


class FusionScheduler:
    """Decides when to fuse (see the module docstring). Not thread-safe: call it from the one
    thread (or mutually exclusive callback group) that fuses."""

    def __init__(self, max_rate_hz: float = 100.0, heartbeat_hz: float = 5.0):
        self.configure(max_rate_hz, heartbeat_hz)
        self.reset()

    def configure(self, max_rate_hz: float, heartbeat_hz: float) -> None:
        """Set the rates (live parameter changes keep the history)."""
        max_rate_hz, heartbeat_hz = float(max_rate_hz), float(heartbeat_hz)
        if not max_rate_hz > 0.0 or not math.isfinite(max_rate_hz):
            raise ValueError(f"max_rate_hz must be positive and finite, got {max_rate_hz}")
        if not 0.0 <= heartbeat_hz <= max_rate_hz:
            raise ValueError(f"heartbeat_hz must be in [0, max_rate_hz], got {heartbeat_hz}")
        self.max_rate_hz = max_rate_hz
        self.heartbeat_hz = heartbeat_hz
        self.min_fresh_gap = _SLACK / max_rate_hz
        self.heartbeat_gap = _SLACK / heartbeat_hz if heartbeat_hz > 0.0 else math.inf

    def reset(self) -> None:
        """Forget the history (node activation)."""
        self.last_fresh = -math.inf  # start of the last fresh fusion
        self.last_fusion = -math.inf  # start of the last fusion of either kind
        self.last_input = -math.inf  # arrival of the newest fresh input
        self.busy = False

    @property
    def tick_period(self) -> float:
        """Period of the polling timer: catches rate-deferred fresh input and heartbeats."""
        return 1.0 / self.max_rate_hz

    def note_input(self, now: float) -> None:
        """A fresh input was stored at ``now``."""
        self.last_input = max(self.last_input, now)

    def decide(self, now: float, pending: bool, any_live: bool) -> Optional[str]:
        """What to do at ``now``: :data:`FRESH`, :data:`HEARTBEAT` or None (nothing).

        ``pending``: some input arrived since the last fusion took the inputs; ``any_live``:
        some stored input is within its staleness window (only needed for heartbeats).
        """
        if self.busy:
            return None
        if pending:
            return FRESH if now - self.last_fresh >= self.min_fresh_gap else None
        if (any_live and now - self.last_fusion >= self.heartbeat_gap
                and now - self.last_input >= self.heartbeat_gap):
            return HEARTBEAT
        return None

    def started(self, now: float, kind: str) -> None:
        """A fusion of ``kind`` starts at ``now`` (call even when it then finds nothing live)."""
        self.busy = True
        self.last_fusion = now
        if kind == FRESH:
            self.last_fresh = now

    def finished(self, now: float = 0.0) -> None:
        """The running fusion ended; a pending input may be fused at the next :meth:`decide`."""
        self.busy = False

    def wait_of_fresh(self, now: float) -> float:
        """Seconds until pending fresh input may be fused (0: now; ignores ``busy``)."""
        return max(0.0, self.last_fresh + self.min_fresh_gap - now)


class ClockWatch:
    """Notices a clock that stopped (a bag that ended or is paused under ``use_sim_time``):
    :meth:`stalled` is true once ``clock_ns`` has not changed for ``timeout`` seconds of a
    steady clock ``mono``."""

    def __init__(self):
        self._ns: Optional[int] = None
        self._since = 0.0

    def stalled(self, clock_ns: int, mono: float, timeout: float) -> bool:
        if clock_ns != self._ns:
            self._ns, self._since = clock_ns, mono
        return mono - self._since > timeout


def fuse_rejecting_bad(infer, values: dict, is_input_error, on_bad):
    """``infer(values)`` (values: ``{modality: raw input}``); when it raises an input error
    (``is_input_error(exc)``: a codec rejected an input), find the bad input(s) by fusing each
    alone, report each with ``on_bad(modality, message)`` and fuse the rest. A single input, or
    inputs bad only in combination, are all reported. Other exceptions propagate.

    Returns ``(result, values_fused)``, or ``(None, {})`` when no input is left.
    """
    values = dict(values)
    while values:
        try:
            return infer(values), values
        except Exception as exc:  # noqa: BLE001 - sorted below
            if not is_input_error(exc):
                raise
            bad = {}
            if len(values) > 1:
                for m, v in values.items():
                    try:
                        infer({m: v})
                    except Exception as one:  # noqa: BLE001
                        if not is_input_error(one):
                            raise
                        bad[m] = str(one)
            if not bad:
                bad = {m: str(exc) for m in values}
            for m, message in bad.items():
                on_bad(m, message)
            values = {m: v for m, v in values.items() if m not in bad}
    return None, {}
