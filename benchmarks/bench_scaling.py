# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Benchmark 4: scaling of the fast path with batch size and with the number of live modalities,
and the memory (RSS) of an inference process.

* batch size 1..256, all four modalities given, ``FusionEngine.infer_tensors`` (fast path and,
  for reference, the module-graph path): median/p99 per call and per sample;
* number of live modalities 1..4 at batch 1: median over every subset of that size;
* RSS (VmRSS/VmHWM from /proc/self/status) after importing torch, after loading the engine and
  after the batch sweep; the ROS node's RSS under load is in bench_ros_latency.py.
Licence: Apache-2.0.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from common import load_average, set_threads, summarize_ms, table, time_calls, write_result

from crossmodal_ros.modalities import MODALITIES, MODEL_SHAPES, all_subsets


def rss_mb() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, val = line.split(":")
            out[key.lower() + "_mb"] = round(int(val.split()[0]) / 1024, 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1,2,4,8,16,32,64,128,256")
    ap.add_argument("--checkpoint", default=None, help="default: the shipped checkpoint, else a fresh Nexus")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    load_before = load_average()
    mem = {"after_import": rss_mb()}
    from crossmodal_ros.codecs import default_codecs
    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.models import build_model
    from crossmodal_ros.paths import default_checkpoint

    ckpt = args.checkpoint or (default_checkpoint() if Path(default_checkpoint()).exists() else None)
    if ckpt:
        engine = FusionEngine.from_checkpoint(ckpt, device="cpu")
        ref = FusionEngine(engine.model, engine.codecs, device="cpu", fast=False)
    else:
        model = build_model("nexus", {}).eval()
        engine = FusionEngine(model, default_codecs(), device="cpu")
        ref = FusionEngine(model, default_codecs(), device="cpu", fast=False)
    mem["after_engine_load"] = rss_mb()

    g = torch.Generator().manual_seed(0)
    batch_rows = []
    for b in [int(v) for v in args.batches.split(",")]:
        x = {m: torch.rand(b, *MODEL_SHAPES[m], generator=g) for m in MODALITIES}
        runs = max(10, args.runs // max(1, b // 16))
        fast = summarize_ms(time_calls(lambda: engine.infer_tensors(x), runs, warmup=5))
        slow = summarize_ms(time_calls(lambda: ref.infer_tensors(x), max(5, runs // 2), warmup=3))
        batch_rows.append({"batch": b, "fast_med_ms": fast["median_ms"], "fast_p99_ms": fast["p99_ms"],
                           "fast_us_per_sample": round(1e3 * fast["median_ms"] / b, 1),
                           "ref_med_ms": slow["median_ms"], "speedup": round(slow["median_ms"] / fast["median_ms"], 2)})
        print(f"  batch {b}: fast {fast['median_ms']:.3f} ms, reference {slow['median_ms']:.3f} ms", flush=True)
    mem["after_batch_sweep"] = rss_mb()

    x1 = {m: torch.rand(1, *MODEL_SHAPES[m], generator=g) for m in MODALITIES}
    live_rows = []
    for k in range(1, len(MODALITIES) + 1):
        meds, p99s = [], []
        for subset in (s for s in all_subsets() if len(s) == k):
            sx = {m: x1[m] for m in subset}
            s = summarize_ms(time_calls(lambda: engine.infer_tensors(sx), args.runs))
            meds.append(s["median_ms"])
            p99s.append(s["p99_ms"])
        live_rows.append({"live_modalities": k, "subsets": len(meds), "median_ms": round(statistics.median(meds), 4),
                          "worst_median_ms": max(meds), "worst_p99_ms": max(p99s)})
    load_after = load_average()
    print(table(batch_rows, list(batch_rows[0]),
                f"Latency vs batch size, all four inputs (torch {torch.__version__}, {args.threads} thread(s); "
                f"load avg before {load_before} after {load_after})"))
    print(table(live_rows, list(live_rows[0]), "Latency vs number of live modalities, batch 1 (fast path)"))
    mem_rows = [{"stage": k, **v} for k, v in mem.items()]
    print(table(mem_rows, ["stage", "vmrss_mb", "vmhwm_mb"], "Memory of the inference process"))
    path = write_result("scaling", {"threads": args.threads, "checkpoint": str(ckpt) if ckpt else None,
                                    "load_avg_before": load_before, "load_avg_after": load_after,
                                    "batch": batch_rows, "live_modalities": live_rows, "memory": mem}, args.out)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
