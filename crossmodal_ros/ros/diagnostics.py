"""Rate and latency bookkeeping and the ``/diagnostics`` status of the Nexus node."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Iterable, Mapping, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


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
) -> DiagnosticStatus:
    """One ``DiagnosticStatus``: OK while active with live input, WARN when inactive, idle or
    dropping input, ERROR after a failed inference (``last_error``)."""
    live = list(live)
    values = [
        KeyValue(key="state", value=state),
        KeyValue(key="live inputs", value="+".join(live) if live else "none"),
        KeyValue(key="device", value=device),
        KeyValue(key="checkpoint", value=checkpoint),
        KeyValue(key="checkpoint kind", value=checkpoint_kind),
        KeyValue(key="inference latency last (ms)", value=_ms(latency.last)),
        KeyValue(key="inference latency median (ms)", value=_ms(latency.median())),
        KeyValue(key="fused", value=str(fused)),
        KeyValue(key="published", value=str(published)),
    ]
    for m, r in rates.items():
        values.append(KeyValue(key=f"{m} rate (Hz)", value=f"{r:.2f}"))
    for m, n in received.items():
        values.append(KeyValue(key=f"{m} received", value=str(n)))
    for m, n in superseded.items():
        values.append(KeyValue(key=f"{m} superseded", value=str(n)))
    for m, n in (fused_inputs or {}).items():
        values.append(KeyValue(key=f"{m} fused", value=str(n)))
    for m, n in (expired or {}).items():
        values.append(KeyValue(key=f"{m} expired unfused", value=str(n)))
    n_incompatible = 0
    for m, n in (qos_incompatible or {}).items():
        if n:
            n_incompatible += n
            values.append(KeyValue(key=f"{m} incompatible QoS publishers", value=str(n)))
    n_dropped = 0
    for m, reasons in dropped.items():
        for reason, n in sorted(reasons.items()):
            n_dropped += n
            values.append(KeyValue(key=f"{m} dropped ({reason})", value=str(n)))
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
