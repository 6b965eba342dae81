# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Shared helpers of the benchmark scripts: timing statistics, machine facts, table + JSON output.

Benchmarks are not tests: they measure, print a table and write ``benchmarks/results/<name>.json``.
Every result records the machine, the torch build and the load average before and after the
run, because timings on a shared 2-core machine are noisy. Licence: Apache-2.0.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a fresh clone without installing the package
    sys.path.insert(0, str(ROOT))


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def percentile(values, q: float) -> float:
    """``q``-th percentile (0..100) by linear interpolation."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize_ms(seconds) -> dict:
    """Median / p99 / mean / min of durations in seconds, reported in milliseconds."""
    ms = [s * 1e3 for s in seconds]
    return {"median_ms": round(statistics.median(ms), 4), "p99_ms": round(percentile(ms, 99), 4),
            "mean_ms": round(statistics.fmean(ms), 4), "min_ms": round(min(ms), 4), "n": len(ms)}


def time_calls(fn, runs: int, warmup: int = 20, sync=None) -> list[float]:
    """Wall time of ``runs`` calls of ``fn`` after ``warmup`` calls (seconds each)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        out.append(time.perf_counter() - t0)
    return out


def table(rows: list[dict], columns: list[str], title: str = "") -> str:
    """Plain-text table of ``rows`` (dicts) over ``columns``; floats with 3 significant decimals."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def write_result(name: str, payload: dict, out_dir: Path | None = None) -> Path:
    """Write ``payload`` (+ machine facts and a timestamp) to ``<out_dir>/<name>.json``."""
    out_dir = Path(out_dir) if out_dir else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **payload}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    return path


def set_threads(n: int) -> None:
    """Pin torch to ``n`` intra-op threads (the inference node's setting on a 2-core robot)."""
    import torch

    torch.set_num_threads(int(n))
