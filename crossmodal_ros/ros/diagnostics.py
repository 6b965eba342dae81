# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The inference node's ``/diagnostics``: input rate bookkeeping and the status builders.

:class:`InputMonitor` keeps the arrival rates of the inputs; :func:`node_statuses` builds the
statuses the node publishes about once a second (the fusion's, then one per input) from the
node's :class:`~crossmodal_ros.fusion_policy.FusionCore` and the monitor.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Mapping, Optional

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from crossmodal_ros.fusion_policy import LatencyStats


class RateMeter:
    """Event rate (Hz) over the last ``window`` events, measured on the monotonic clock."""

    def __init__(self, window: int = 20, clock=time.monotonic):
        self._times: deque[float] = deque(maxlen=window)
        self._clock = clock
        self._lock = threading.Lock()

    def tick(self) -> None:
        """Record one event now."""
        with self._lock:
            self._times.append(self._clock())

    def rate(self) -> float:
        """Events per second; decays toward 0 once events stop (the silent gap counts)."""
        with self._lock:
            if not self._times:
                return 0.0
            times = list(self._times)
        now = self._clock()
        span = now - times[0]
        if len(times) < 2 or span <= 0.0:
            return 0.0
        # n events over [first, now]: a stream that stopped shows a falling rate.
        return (len(times) - 1) / max(span, times[-1] - times[0])


#: per-input counters of the fusion status: name in :func:`input_counters` -> key suffix
_COUNTER_KEYS = {"received": "received", "superseded": "superseded", "fused": "fused",
                 "expired": "expired unfused"}
_DROPPED = " dropped ("


def input_counters(values: Mapping[str, str]) -> dict[str, dict]:
    """The per-input counters of a fusion status (its ``{key: value}`` pairs), read back.

    ``{modality: {"received": n, "superseded": n, "fused": n, "expired": n, "dropped":
    {reason: n}}}`` for every modality with at least one counter; counters a status does not
    carry are 0. The reader of :func:`fusion_status`'s key format (soak, benchmarks).
    """
    out: dict[str, dict] = {}

    def row(m: str) -> dict:
        return out.setdefault(m, {**{c: 0 for c in _COUNTER_KEYS}, "dropped": {}})

    for key, value in values.items():
        m, sep, reason = key.partition(_DROPPED)
        if sep and reason.endswith(")"):
            row(m)["dropped"][reason[:-1]] = int(value)
            continue
        for counter, suffix in _COUNTER_KEYS.items():
            if key.endswith(" " + suffix) and " " not in key[: -len(suffix) - 1]:
                row(key[: -len(suffix) - 1])[counter] = int(value)
                break
    return out


def _ms(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x * 1e3:.2f}"


def fusion_status(
    *,
    name: str,
    hardware_id: str,
    state: str,
    live: Iterable[str],
    rates: Mapping[str, float],
    latency: LatencyStats,
    fused: int,
    published: int,
    received: Mapping[str, int],
    dropped: Mapping[str, Mapping[str, int]],
    superseded: Mapping[str, int],
    device: str,
    checkpoint: str,
    checkpoint_kind: str,
    last_error: str = "",
    qos_incompatible: Optional[Mapping[str, int]] = None,
    fused_inputs: Optional[Mapping[str, int]] = None,
    expired: Optional[Mapping[str, int]] = None,
    path: str = "",
) -> DiagnosticStatus:
    """One ``DiagnosticStatus``: OK while active with live input, WARN when inactive, idle or
    dropping input, ERROR after a failed inference (``last_error``). ``path``: the engine's
    inference path (``FusionEngine.path``, e.g. ``fast-int8``), listed after the device when given.
    """
    live = list(live)
    values = [
        KeyValue(key="state", value=state),
        KeyValue(key="live inputs", value="+".join(live) if live else "none"),
        KeyValue(key="device", value=device),
        *([KeyValue(key="inference path", value=path)] if path else []),
        KeyValue(key="checkpoint", value=checkpoint),
        KeyValue(key="checkpoint kind", value=checkpoint_kind),
        KeyValue(key="inference latency last (ms)", value=_ms(latency.last)),
        KeyValue(key="inference latency median (ms)", value=_ms(latency.median())),
        KeyValue(key="fused", value=str(fused)),
        KeyValue(key="published", value=str(published)),
    ]
    for m, r in rates.items():
        values.append(KeyValue(key=f"{m} rate (Hz)", value=f"{r:.2f}"))
    for counter, counts in (("received", received), ("superseded", superseded), ("fused", fused_inputs or {}),
                            ("expired", expired or {})):
        for m, n in counts.items():
            values.append(KeyValue(key=f"{m} {_COUNTER_KEYS[counter]}", value=str(n)))
    n_incompatible = 0
    for m, n in (qos_incompatible or {}).items():
        if n:
            n_incompatible += n
            values.append(KeyValue(key=f"{m} incompatible QoS publishers", value=str(n)))
    n_dropped = 0
    for m, reasons in dropped.items():
        for reason, n in sorted(reasons.items()):
            n_dropped += n
            values.append(KeyValue(key=f"{m}{_DROPPED}{reason})", value=str(n)))
    if last_error:
        level, message = DiagnosticStatus.ERROR, f"inference failed: {last_error}"
    elif state != "active":
        level, message = DiagnosticStatus.WARN, f"node is {state}"
    elif not live:
        level, message = DiagnosticStatus.WARN, "no live input"
        if n_incompatible:
            message += " (a publisher has incompatible QoS: see qos_reliability)"
    else:
        level = DiagnosticStatus.OK
        message = f"fusing {'+'.join(live)} on {device}"
        if n_dropped:
            message += f" ({n_dropped} input messages dropped)"
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=values)


class FrequencyWindow:
    """Frequency over a sliding window of snapshots, as ``diagnostic_updater.FrequencyStatus``.

    :meth:`snapshot` is called once per diagnostics period with the running event count; the
    frequency is (events in the window) / (window duration), the window being the last
    ``window`` snapshots.
    """

    def __init__(self, window: int = 5, clock=time.monotonic):
        self._snaps: deque[tuple[float, int]] = deque(maxlen=max(2, int(window) + 1))
        self._clock = clock

    def snapshot(self, count: int) -> tuple[int, float, float]:
        """Record ``count`` now; return (events in window, window seconds, frequency Hz)."""
        now = self._clock()
        self._snaps.append((now, int(count)))
        t0, c0 = self._snaps[0]
        span = now - t0
        events = int(count) - c0
        return events, span, (events / span if span > 0 else 0.0)


def input_status(
    *,
    name: str,
    hardware_id: str,
    topic: str,
    events_in_window: int,
    window_s: float,
    frequency: float,
    received: int,
    expected_hz: float,
    tolerance: float,
    since_last_s: Optional[float],
    staleness_s: float,
    subscribed: bool = True,
) -> DiagnosticStatus:
    """Per-input status in the style of ``diagnostic_updater`` (FrequencyStatus + staleness).

    Level: OK when the window's frequency is within ``expected_hz`` * (1 -/+ ``tolerance``) (no
    frequency check with ``expected_hz`` 0) and the newest message is younger than its
    staleness window; WARN "Frequency too low/high" or "stale (no message for X s)"; an input
    the node does not subscribe to, or ignores (staleness 0), is OK and says so.
    """
    values = [
        KeyValue(key="Topic", value=topic),
        KeyValue(key="Events in window", value=str(events_in_window)),
        KeyValue(key="Events since startup", value=str(received)),
        KeyValue(key="Duration of window (s)", value=f"{window_s:.3f}"),
        KeyValue(key="Actual frequency (Hz)", value=f"{frequency:.3f}"),
    ]
    if expected_hz > 0:
        lo, hi = expected_hz * (1.0 - tolerance), expected_hz * (1.0 + tolerance)
        values += [KeyValue(key="Target frequency (Hz)", value=f"{expected_hz:.3f}"),
                   KeyValue(key="Minimum acceptable frequency (Hz)", value=f"{lo:.3f}"),
                   KeyValue(key="Maximum acceptable frequency (Hz)", value=f"{hi:.3f}")]
    values += [
        KeyValue(key="Seconds since last message",
                 value="never" if since_last_s is None else f"{since_last_s:.3f}"),
        KeyValue(key="Staleness window (s)", value=f"{staleness_s:.3f}"),
    ]
    level, message = DiagnosticStatus.OK, "Desired frequency met" if expected_hz > 0 else "receiving"
    if not subscribed:
        message = "not subscribed (the model has no such input)"
    elif staleness_s <= 0:
        message = "ignored (staleness 0)"
    elif since_last_s is None:
        if expected_hz > 0:
            level, message = DiagnosticStatus.WARN, "No events recorded"
        else:
            message = "no message yet"
    else:
        stale = since_last_s > staleness_s
        if expected_hz > 0 and frequency < expected_hz * (1.0 - tolerance):
            level, message = DiagnosticStatus.WARN, "Frequency too low"
        elif expected_hz > 0 and frequency > expected_hz * (1.0 + tolerance):
            level, message = DiagnosticStatus.WARN, "Frequency too high"
        if stale:
            level = DiagnosticStatus.WARN
            text = f"stale (no message for {since_last_s:.1f} s)"
            message = text if message in ("receiving", "Desired frequency met") else f"{message}; {text}"
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=values)


class InputMonitor:
    """Arrival rate (:class:`RateMeter`) and frequency window (:class:`FrequencyWindow`) of each
    input, plus ``qos_incompatible[m]``: publishers whose QoS cannot reach the subscription.
    """

    def __init__(self, modalities: Iterable[str], window: int = 5):
        self.modalities = tuple(modalities)
        self.rates = {m: RateMeter() for m in self.modalities}
        self.qos_incompatible = {m: 0 for m in self.modalities}
        self.set_window(window)

    def set_window(self, window: int) -> None:
        """Restart the frequency windows with ``window`` snapshots (parameter ``diagnostics.window``)."""
        self.freq = {m: FrequencyWindow(int(window)) for m in self.modalities}

    def tick(self, modality: str) -> None:
        """A message of ``modality`` arrived now."""
        self.rates[modality].tick()

    def qos_callback(self, modality: str, topic: str, reliability: str, log: Callable[[str], None]):
        """The ``incompatible_qos`` event callback of the ``modality`` subscription: count, warn."""
        def on_incompatible(info) -> None:
            self.qos_incompatible[modality] += 1
            log(f"a publisher on {topic!r} has QoS incompatible with this node's {reliability} subscription "
                f"(policy id {info.last_policy_kind}); it delivers nothing. A best-effort publisher needs "
                "qos_reliability:=best_effort here.")

        return on_incompatible


def node_statuses(core, monitor: InputMonitor, *, name: str, device: str, checkpoint: str, checkpoint_kind: str,
                  published: int, live: Iterable[str], now_s: float, topics: Mapping[str, str],
                  subscribed: Iterable[str], cfg: Mapping[str, Any], path: str = "") -> list[DiagnosticStatus]:
    """The inference node's statuses: ``<name>: fusion`` (:func:`fusion_status`), then
    ``<name>: input <m>`` per input (:func:`input_status`).

    ``core``: the node's FusionCore (counters, staleness windows, last arrivals); ``published``:
    output messages sent; ``live``: the modalities live now; ``now_s``: the liveness clock;
    ``topics``: resolved input topic names; ``subscribed``: the inputs the node subscribes to;
    ``cfg``: the node's parameter values (``diagnostics.expected_hz.<m>``, ``diagnostics.tolerance``);
    ``path``: the engine's inference path.
    """
    statuses = [fusion_status(
        name=f"{name}: fusion", hardware_id=device, state="active" if core.active else "inactive", live=live,
        rates={m: r.rate() for m, r in monitor.rates.items()}, latency=core.latency, fused=core.fused_count,
        published=published, received=core.received, dropped=core.dropped, superseded=core.superseded,
        fused_inputs=core.fused_inputs, expired=core.expired, device=device, checkpoint=checkpoint,
        checkpoint_kind=checkpoint_kind, last_error=core.last_error, qos_incompatible=monitor.qos_incompatible,
        path=path)]
    for m in monitor.modalities:
        events, span, freq = monitor.freq[m].snapshot(core.received[m])
        last = core.last_arrival[m]
        statuses.append(input_status(
            name=f"{name}: input {m}", hardware_id=topics[m], topic=topics[m], events_in_window=events,
            window_s=span, frequency=freq, received=core.received[m],
            expected_hz=float(cfg.get(f"diagnostics.expected_hz.{m}", 0.0)),
            tolerance=float(cfg.get("diagnostics.tolerance", 0.1)),
            since_last_s=None if last is None else max(0.0, now_s - last),
            staleness_s=core.staleness[m], subscribed=m in subscribed))
    return statuses
