# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""When to fuse: the one scheduling policy of the inference node and the offline bag evaluator,
and :class:`FusionCore`, the node's fusion without ROS (store, scheduler, accounting, one step).

ROS-free and clock-agnostic: every method takes ``now`` in seconds of the caller's clock (the
node uses ``time.monotonic()``, :func:`crossmodal_ros.bags.evaluate.evaluate_bag` bag time, the
tests a fake clock), so the node and the bag evaluator make the same decisions.

Rules (issue 11):

* **fresh input is fused at once** unless a fusion is running (then as soon as it ends) or the
  rate limit is spent (then on the timer tick that refills it); inputs arriving meanwhile
  coalesce into that one fusion (the store keeps the newest per modality). The rate limit is a
  token bucket: ``max_burst`` fresh fusions may run back to back, and tokens come back at
  ``max_rate_hz``, so no window of T seconds has more than ``max_burst + T * max_rate_hz`` fresh
  fusions. ``max_burst`` 1 is a plain minimum gap of ``1 / max_rate_hz``; more lets inputs of
  several sensors that arrive together (a microphone window and a pen stroke) each be fused at
  once instead of the second waiting ``1 / max_rate_hz`` for the refill;
* **heartbeats only fill silence**: one runs when something is live, nothing is pending, and
  neither a fusion nor a fresh input happened for ``1 / heartbeat_hz``;
* heartbeats never delay fresh input: they do not count against ``max_rate_hz`` (only fresh
  fusions do), and a pending input always wins over a due heartbeat.

The caller drives it with :meth:`FusionScheduler.note_input` (a fresh input was stored),
:meth:`decide` (on every input and every timer tick: ``"fresh"``, ``"heartbeat"`` or None) and
:meth:`started` / :meth:`finished` around each fusion. The timer is a deadline, not a poll:
after each tick, and when the rate limit defers an input, both callers set it to
:meth:`FusionScheduler.next_tick` (the refill of the rate limit, the next heartbeat, or an idle
check, never more than :data:`IDLE_POLL_S` ahead), so a node fed at 30 Hz wakes about five times
a second for its timer instead of ``max_rate_hz`` times (each wake-up of the Python callback cost
about 0.14 ms of CPU on a 2-core AMD EPYC, ``benchmarks/README.md``).
"""
from __future__ import annotations

import math
import time
from collections import Counter, deque
from typing import Callable, Mapping, Optional

import numpy as np

FRESH = "fresh"
HEARTBEAT = "heartbeat"

#: Longest gap between two timer ticks (also when nothing is due: nothing live, heartbeats off,
#: a stalled sim clock): the ticks that notice a stalled or resumed sim clock.
IDLE_POLL_S = 0.25
#: A deadline is at least this far ahead, and this much after the refill it waits for (a
#: rounding error must not make a tick come a hair too early and repeat itself).
_MIN_WAIT = 1e-6


class FusionScheduler:
    """Decides when to fuse (see the module docstring). Not thread-safe: call it from the one
    thread (or mutually exclusive callback group) that fuses.
    """

    def __init__(self, max_rate_hz: float = 100.0, heartbeat_hz: float = 5.0, max_burst: int = 1):
        self.configure(max_rate_hz, heartbeat_hz, max_burst)
        self.reset()

    def configure(self, max_rate_hz: float, heartbeat_hz: float, max_burst: int | None = None) -> None:
        """Set the rates and the burst size (None keeps it; live changes keep the history)."""
        max_rate_hz, heartbeat_hz = float(max_rate_hz), float(heartbeat_hz)
        if not max_rate_hz > 0.0 or not math.isfinite(max_rate_hz):
            raise ValueError(f"max_rate_hz must be positive and finite, got {max_rate_hz}")
        if not 0.0 <= heartbeat_hz <= max_rate_hz:
            raise ValueError(f"heartbeat_hz must be in [0, max_rate_hz], got {heartbeat_hz}")
        if max_burst is not None:
            if isinstance(max_burst, bool) or int(max_burst) != max_burst or max_burst < 1:
                raise ValueError(f"max_burst must be an integer >= 1, got {max_burst!r}")
            self.max_burst = int(max_burst)
            if hasattr(self, "_tokens_now"):
                self._tokens_now = min(self._tokens_now, float(self.max_burst))
        self.max_rate_hz = max_rate_hz
        self.heartbeat_hz = heartbeat_hz
        self.heartbeat_gap = 1.0 / heartbeat_hz if heartbeat_hz > 0.0 else math.inf

    def reset(self) -> None:
        """Forget the history (node activation): a full token bucket."""
        self.last_fresh = -math.inf  # start of the last fresh fusion
        self.last_fusion = -math.inf  # start of the last fusion of either kind
        self.last_input = -math.inf  # arrival of the newest fresh input
        self.busy = False
        self._tokens_now, self._tokens_at = float(self.max_burst), -math.inf

    def tokens(self, now: float) -> float:
        """Fresh fusions the rate limit allows at ``now`` (fractional; refills at ``max_rate_hz``
        up to ``max_burst``).
        """
        if self._tokens_at == -math.inf:
            return float(self.max_burst)
        return min(float(self.max_burst), self._tokens_now + max(0.0, now - self._tokens_at) * self.max_rate_hz)

    @property
    def tick_period(self) -> float:
        """``1 / max_rate_hz``: the first tick after activation, and a deferred input's retry
        while a fusion runs on another thread.
        """
        return 1.0 / self.max_rate_hz

    def next_tick(self, now: float, pending: bool, any_live: bool) -> float:
        """When the timer must tick next (absolute, this clock), given the state at ``now``
        (arguments as :meth:`decide`): when the rate limit lets pending input through, when the
        next heartbeat is due (the silence that :meth:`decide` waits for, only while something is
        live), else ``now + IDLE_POLL_S`` (at most the heartbeat gap); never later than
        ``now + IDLE_POLL_S``. A tick earlier than that finds nothing to do; an input that
        arrives first is fused on its own wake-up.
        """
        if pending:
            return now + min(IDLE_POLL_S, self.tick_period if self.busy else self.wait_of_fresh(now) + _MIN_WAIT)
        if any_live and self.heartbeat_gap < math.inf:
            due = max(now, max(self.last_fusion, self.last_input) + self.heartbeat_gap) + _MIN_WAIT
            return min(due, now + IDLE_POLL_S)
        return now + min(IDLE_POLL_S, self.heartbeat_gap)

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
            return FRESH if self.tokens(now) >= 1.0 else None
        if (any_live and now - self.last_fusion >= self.heartbeat_gap
                and now - self.last_input >= self.heartbeat_gap):
            return HEARTBEAT
        return None

    def started(self, now: float, kind: str) -> None:
        """A fusion of ``kind`` starts at ``now`` (call even when it then finds nothing live)."""
        self.busy = True
        self.last_fusion = now
        if kind == FRESH:
            self._tokens_now, self._tokens_at = self.tokens(now) - 1.0, now
            self.last_fresh = now

    def finished(self, now: float = 0.0) -> None:
        """The running fusion ended; a pending input may be fused at the next :meth:`decide`."""
        self.busy = False

    def wait_of_fresh(self, now: float) -> float:
        """Seconds until pending fresh input may be fused (0: now; ignores ``busy``)."""
        return max(0.0, (1.0 - self.tokens(now)) / self.max_rate_hz)


class WakeGate:
    """Serves wake-ups on whichever thread can take ``lock`` without blocking, and loses none.

    :meth:`wake` sets a flag, then tries the lock; every holder calls :meth:`flush` after letting
    go of it, so the flag set while it held the lock is served by it. (An input callback fuses its
    input at once unless another thread fuses; then that thread fuses it next.)
    """

    def __init__(self, lock):
        self.lock, self.requested = lock, False

    def wake(self, serve: Callable[[], object]) -> None:
        self.requested = True
        self.flush(serve)

    def flush(self, serve: Callable[[], object]) -> None:
        while self.requested and self.lock.acquire(blocking=False):
            try:
                self.requested = False
                serve()
            finally:
                self.lock.release()


class ClockWatch:
    """Notices a clock that stopped (a bag that ended or is paused under ``use_sim_time``):
    :meth:`stalled` is true once ``clock_ns`` has not changed for ``timeout`` seconds of a
    steady clock ``mono``.
    """

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


class LatencyStats:
    """The last value and the median over the last ``window`` latencies (seconds)."""

    def __init__(self, window: int = 200):
        self._values: deque[float] = deque(maxlen=window)
        self.last: Optional[float] = None

    def add(self, seconds: float) -> None:
        self.last = float(seconds)
        self._values.append(float(seconds))

    def median(self) -> Optional[float]:
        return float(np.median(self._values)) if self._values else None

    def percentile(self, q: float) -> Optional[float]:
        return float(np.percentile(self._values, q)) if self._values else None

    def __len__(self) -> int:
        return len(self._values)


class FusionCore:
    """The inference node's fusion without ROS: the latest-sample store, the scheduler, the
    input accounting and one fusion step.

    ``store`` is a keep-latest store (``LatestSamples``: ``put``, ``live``, ``pending``,
    ``discard``, ``superseded``, ``expired``); ``log`` has ``info``, ``warning`` and ``error``
    taking one string (a ROS or a ``logging`` logger); ``is_input_error(exc)`` tells an input a
    codec rejected from a bug; ``mono`` is the steady clock of the scheduler and of the stalled-clock
    timeout (tests replace it).
    The caller supplies the clocks (``now_s``: the liveness clock, ROS time on the node) and the
    inference function, and publishes what :meth:`fuse` returns.

    Counters and state (:data:`COUNTERS`), read by the node's diagnostics, the demo and the
    tests: ``received[m]``, ``dropped[m][reason]``, :attr:`superseded`, ``fused_inputs[m]``
    (each input message once), :attr:`expired`, ``decoded[m]``, ``fused_count``,
    ``fusions_by_kind``, ``last_fusion_kind``, ``latency``, ``last_latency_s``, ``last_result``,
    ``last_fused``, ``last_error``, ``clock_stalled``; :meth:`accounting` reconciles them.

    Threads: :meth:`accept`, :meth:`drop` and :meth:`put` may run on any input thread; the
    decisions (:meth:`on_input`, :meth:`on_tick`) and :meth:`fuse` on one thread at a time (the
    node holds its fusion lock around them; the store is thread-safe; :meth:`put` touches the
    scheduler only through ``note_input``).
    """

    #: The counters and state the class docstring lists (the node exposes them by these names).
    COUNTERS = ("received", "dropped", "superseded", "fused_inputs", "expired", "decoded", "fused_count",
                "fusions_by_kind", "last_fusion_kind", "latency", "last_latency_s", "last_result", "last_fused",
                "last_error", "clock_stalled")

    #: Seconds between two log lines about one kind of trouble (drops of a modality for a reason,
    #: failed inferences).
    LOG_THROTTLE_S = 5.0

    def __init__(self, store, log, is_input_error: Callable[[BaseException], bool],
                 mono: Callable[[], float] = time.monotonic):
        self.store, self.log, self.is_input_error, self.mono = store, log, is_input_error, mono
        self.modalities: tuple[str, ...] = tuple(store.modalities)
        self.scheduler = FusionScheduler()
        self.active = False
        self.staleness: dict[str, float] = {m: 0.0 for m in self.modalities}
        self.clock_timeout_s = 0.0
        self.received = {m: 0 for m in self.modalities}
        self.dropped: dict[str, Counter] = {m: Counter() for m in self.modalities}
        self.fused_inputs = {m: 0 for m in self.modalities}
        self.decoded = {m: 0 for m in self.modalities}
        self.last_arrival: dict[str, Optional[float]] = {m: None for m in self.modalities}
        self.fused_count = 0
        self.fusions_by_kind: Counter = Counter()
        self.last_fusion_kind = ""
        self.latency = LatencyStats()
        self.last_latency_s: Optional[float] = None
        self.last_result, self.last_fused, self.last_error = None, (), ""
        self.clock_stalled = False
        self._fused_seq = {m: -1 for m in self.modalities}
        self._clock_watch = ClockWatch()
        self._log_times: dict[tuple, float] = {}

    def configure(self, max_rate_hz: float, heartbeat_hz: float, staleness: Mapping[str, float],
                  clock_timeout_s: float = 0.0, max_burst: int | None = None) -> None:
        """Set the rates, the staleness windows (seconds; 0 ignores a modality), the stalled
        clock timeout and the burst size (None keeps it); a live change keeps the scheduler's
        history.
        """
        self.scheduler.configure(max_rate_hz, heartbeat_hz, max_burst)
        self.staleness = {m: float(staleness.get(m, 0.0)) for m in self.modalities}
        self.clock_timeout_s = float(clock_timeout_s or 0.0)

    def activate(self) -> None:
        """Start fusing with a fresh scheduler history."""
        self.scheduler.reset()
        self.active = True

    @property
    def superseded(self) -> dict[str, int]:
        """Messages per modality replaced by a newer one before they were fused."""
        return dict(self.store.superseded)

    @property
    def expired(self) -> dict[str, int]:
        """Messages per modality that went stale before any fusion took them."""
        return dict(self.store.expired)

    def accounting(self) -> dict[str, dict[str, int]]:
        """Where every received input message went, per modality: ``{m: {received, dropped,
        superseded, fused, expired, pending, unaccounted}}``; ``unaccounted`` (received minus
        the others) is 0 for a running node.
        """
        pending = set(self.store.pending_modalities())
        sup, exp = self.store.superseded, self.store.expired
        out = {}
        for m in self.modalities:
            row = {"received": self.received[m], "dropped": sum(self.dropped[m].values()),
                   "superseded": sup[m], "fused": self.fused_inputs[m], "expired": exp[m],
                   "pending": int(m in pending)}
            row["unaccounted"] = row["received"] - sum(v for k, v in row.items() if k != "received")
            out[m] = row
        return out

    # ------------------------------------------------------------------ inputs
    def accept(self, modality: str, now_s: float) -> bool:
        """Count a message that arrived at ``now_s``; False (dropped as ``inactive``) while
        inactive.
        """
        self.received[modality] += 1
        self.last_arrival[modality] = now_s
        if not self.active:
            self.dropped[modality]["inactive"] += 1
            return False
        return True

    def drop(self, modality: str, reason: str, message: str) -> None:
        """Count a dropped input and log it, at most once per ``LOG_THROTTLE_S`` per reason."""
        self.dropped[modality][reason] += 1
        self._throttled((modality, reason), self.log.warning,
                        f"dropped {modality} input ({reason}, {self.dropped[modality][reason]} so far): {message}")

    def _throttled(self, key, log: Callable[[str], None], text: str) -> None:
        """``log(text)`` unless the same ``key`` was logged less than ``LOG_THROTTLE_S`` ago."""
        now = time.monotonic()
        if now - self._log_times.get(key, -math.inf) >= self.LOG_THROTTLE_S:
            self._log_times[key] = now
            log(text)

    def put(self, modality: str, sample) -> None:
        """Store a validated sample as the newest of ``modality`` (fresh input for the scheduler)."""
        self.store.put(modality, sample)
        self.scheduler.note_input(self.mono())

    # ------------------------------------------------------------------ decisions
    def check_clock(self, clock_ns: int, sim_time: bool) -> bool:
        """Whether the liveness clock is stalled: under sim time, ``clock_ns`` has not moved for
        ``clock_timeout_s`` steady seconds (a bag ended or is paused); then nothing is live.
        """
        if self.clock_timeout_s <= 0.0 or not sim_time:
            self.clock_stalled = False
            return False
        stalled = self._clock_watch.stalled(clock_ns, self.mono(), self.clock_timeout_s)
        if stalled and not self.clock_stalled:
            self.log.info(f"/clock has not advanced for {self.clock_timeout_s:g} s (bag ended or paused): "
                          "outputs stop until it moves again")
        self.clock_stalled = stalled
        return stalled

    def live(self, now_s: float) -> tuple[str, ...]:
        """The modalities live at ``now_s`` (call :meth:`check_clock` first)."""
        if self.clock_stalled:
            return ()
        return tuple(self.store.live(now_s, self.staleness))

    def on_input(self) -> Optional[str]:
        """After a :meth:`put`: :data:`FRESH` when the input is to be fused now, else None (a
        fusion runs or ``max_rate_hz`` defers it to a tick).
        """
        if self.active and self.store.pending and self.scheduler.decide(self.mono(), True, False) == FRESH:
            return FRESH
        return None

    def on_tick(self, now_s: float) -> Optional[str]:
        """On a timer tick: deferred fresh input, a heartbeat in silence, or None."""
        if not self.active:
            return None
        return self.scheduler.decide(*self._tick_state(now_s))

    def next_tick(self, now_s: float) -> float:
        """When the timer must tick next, on ``mono``'s clock (:meth:`FusionScheduler.next_tick`;
        while the sim clock is stalled, only the idle check that notices it resume).
        """
        if self.clock_stalled:
            return self.mono() + IDLE_POLL_S
        return self.scheduler.next_tick(*self._tick_state(now_s))

    def _tick_state(self, now_s: float) -> tuple[float, bool, bool]:
        """``(now, pending, any_live)`` for the scheduler at a tick (liveness only matters,
        and is only computed, when nothing is pending).
        """
        pending = self.store.pending
        return self.mono(), pending, (not pending) and bool(self.live(now_s))

    # ------------------------------------------------------------------ fusion
    def fuse(self, kind: str, now_s: float, infer: Callable, decode: set):
        """One fusion of ``kind`` over the inputs live at ``now_s``: ``infer(values, decode)``
        with ``{modality: value}``; an input a codec rejects is dropped (``codec``) and the rest
        fused. Returns ``(result, samples_fused)``, or None when nothing was fused (not active,
        clock stalled, nothing live, inference failed: ``last_error``, logged).
        """
        if not self.active:
            return None
        self.scheduler.started(self.mono(), kind)
        try:
            return self._fuse(kind, now_s, infer, decode)
        finally:
            self.scheduler.finished(self.mono())

    def _fuse(self, kind: str, now_s: float, infer: Callable, decode: set):
        live = {} if self.clock_stalled else self.store.live(now_s, self.staleness, take=True)
        if not live:
            return None
        t0 = time.perf_counter()
        try:
            result, used = fuse_rejecting_bad(lambda values: infer(values, decode),
                                              {m: s.value for m, s in live.items()},
                                              self.is_input_error, self._reject)
        except Exception as exc:  # noqa: BLE001 - never let one bad input kill the caller
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._throttled("inference", self.log.error, f"inference failed: {self.last_error}")
            return None
        if result is None:
            return None
        self.last_latency_s = time.perf_counter() - t0
        self.latency.add(self.last_latency_s)
        self.fused_count += 1
        self.fusions_by_kind[kind] += 1
        self.last_fusion_kind = kind
        for m in decode:
            self.decoded[m] += 1
        fused = {m: s for m, s in live.items() if m in used}
        for m, s in fused.items():  # count each input message once, at its first fusion
            if s.seq != self._fused_seq[m]:
                self._fused_seq[m] = s.seq
                self.fused_inputs[m] += 1
        self.last_result, self.last_fused, self.last_error = result, tuple(result.fused), ""
        return result, fused

    def _reject(self, modality: str, message: str) -> None:
        self.drop(modality, "codec", message)
        self.store.discard([modality])
