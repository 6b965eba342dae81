# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Benchmark: batch-1 fused inference per input subset on each engine backend.

For each of the 15 subsets, one ``FusionEngine.infer_tensors`` call (batch 1, every modality
decoded, numpy out) with the shipped checkpoint on the CPU, for the backends ``reference``
(torch eager, the module graph), ``fast`` (FastNexus, the engine's default), ``int8`` (FastNexus
with weight-only int8 products; what the node's default ``int8_auto`` runs on a CPU with
AVX512-BF16 or AMX), ``onnx`` (ONNX Runtime: an encode graph per subset, a decode
graph per modality; needs onnxruntime + onnx) and ``onnx_int8`` (the same with int8 products).
The backends are timed interleaved
in rounds (each round: ``--runs``/``--rounds`` calls per backend and subset) so that a change of
machine load hits them alike. Also recorded: the largest absolute difference of each backend's
outputs from the reference's (every output, every subset), the ONNX export/session time and
the process RSS after each backend's engine is ready, the CPU model (``lscpu``) and the
1-minute load average before and after. JSON: ``results/backends.json``. Licence: Apache-2.0.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import numpy as np
import torch

from common import load_average, set_threads, summarize_ms, table, write_result

from crossmodal_ros.engine import FusionEngine
from crossmodal_ros.modalities import MODEL_SHAPES, all_subsets, subset_name
from crossmodal_ros.paths import default_checkpoint

BACKENDS = ("reference", "fast", "int8", "onnx", "onnx_int8")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return ""


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=300, help="timed calls per backend and subset")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds the runs are split into")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--checkpoint", default=None, help="checkpoint (default: the shipped one)")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    load_before = load_average()
    path = args.checkpoint or default_checkpoint()
    backends = [b for b in args.backends.split(",") if b]
    engines, setup = {}, {}
    base = FusionEngine.from_checkpoint(path, device="cpu", backend="reference")
    for b in backends:
        t0 = time.perf_counter()
        eng = FusionEngine(base.model, base.codecs, device="cpu", backend=b)
        if eng._onnx is not None:
            eng._onnx.prepare()
        engines[b] = eng
        setup[b] = {"path": eng.path, "setup_s": round(time.perf_counter() - t0, 2), "rss_mb_after": round(rss_mb(), 1)}
    modalities = base.modalities
    rng = torch.Generator().manual_seed(0)
    x = {m: torch.rand((1, *MODEL_SHAPES[m]), generator=rng) for m in modalities}
    x["label"] = torch.nn.functional.one_hot(torch.tensor([7]), 10).float()
    subsets = list(all_subsets(modalities))

    worst = {b: 0.0 for b in backends}
    for s in subsets:
        ref = engines["reference"].infer_tensors({m: x[m] for m in s}) if "reference" in engines else None
        for b in backends:
            if ref is None:
                break
            out = engines[b].infer_tensors({m: x[m] for m in s})
            worst[b] = max(worst[b], max(float(np.abs(out[k] - ref[k]).max()) for k in ref))

    times = {(b, s): [] for b in backends for s in subsets}
    per_round = max(1, args.runs // args.rounds)
    for _ in range(args.rounds):
        for s in subsets:
            given = {m: x[m] for m in s}
            for b in backends:
                eng = engines[b]
                for _ in range(10):
                    eng.infer_tensors(given)
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    eng.infer_tensors(given)
                    times[(b, s)].append(time.perf_counter() - t0)
    rows = []
    for s in subsets:
        row = {"subset": subset_name(s)}
        for b in backends:
            st = summarize_ms(times[(b, s)])
            row[f"{b}_median"], row[f"{b}_p99"] = st["median_ms"], st["p99_ms"]
        rows.append(row)
    summary = {}
    for b in backends:
        meds = [r[f"{b}_median"] for r in rows]
        summary[b] = {"median_of_subset_medians_ms": round(statistics.median(meds), 4),
                      "worst_subset_median_ms": round(max(meds), 4),
                      "worst_subset_p99_ms": round(max(r[f"{b}_p99"] for r in rows), 4),
                      "max_abs_diff_vs_reference": worst[b], **setup[b]}
    load_after = load_average()
    cols = ["subset"] + [f"{b}_{k}" for b in backends for k in ("median", "p99")]
    print(f"CPU: {cpu_model()}; load average before {load_before}, after {load_after}")
    print(table(rows, cols, "batch-1 infer_tensors per subset (ms)"))
    for b, v in summary.items():
        print(b, v)
    write_result("backends", {"cpu_model": cpu_model(), "load_average_before": load_before,
                              "load_average_after": load_after, "runs": args.runs, "threads": args.threads,
                              "checkpoint": str(path), "summary": summary, "rows": rows},
                 args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
