# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""GPU check of the fast path (run on a CUDA machine): FastNexus and CudaGraphRunner against the
reference ``model.infer`` for all 15 subsets, fp32 and fp16, and batch-1 timings of the three.

Usage: python benchmarks/gpu_check.py  (needs torch with CUDA; prints a table and JSON to stdout).
Licence: Apache-2.0.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from crossmodal_ros.modalities import MODEL_SHAPES, all_subsets  # noqa: E402
from crossmodal_ros.models import build_model  # noqa: E402
from crossmodal_ros.models.fast import CudaGraphRunner, FastNexus  # noqa: E402


def timed(fn, runs=300):
    for _ in range(30):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return round(statistics.median(ts) * 1e3, 4)


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval().to(dev)
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": []}
    for dtype in (torch.float32, torch.float16):
        fast = FastNexus(model, dtype=dtype)
        graphs = CudaGraphRunner(fast)
        ref_model = model.to(dtype)
        worst_fast = worst_graph = 0.0
        for subset in all_subsets():
            x = {m: torch.rand(1, *MODEL_SHAPES[m], device=dev, dtype=dtype) for m in subset}
            with torch.inference_mode():
                a = ref_model.infer(x)
                b = fast.infer(x)
                c = {k: v.clone() for k, v in graphs.infer(x).items()}
                c = {k: v.clone() for k, v in graphs.infer(x).items()}  # replay
            worst_fast = max(worst_fast, max((a[k].float() - b[k].float()).abs().max().item() for k in a))
            worst_graph = max(worst_graph, max((a[k].float() - c[k].float()).abs().max().item() for k in a))
        x = {m: torch.rand(1, *MODEL_SHAPES[m], device=dev, dtype=dtype) for m in MODEL_SHAPES}
        with torch.inference_mode():
            row = {"dtype": str(dtype), "max_abs_diff_fast": worst_fast, "max_abs_diff_graphs": worst_graph,
                   "ref_ms": timed(lambda: ref_model.infer(x)), "fast_ms": timed(lambda: fast.infer(x)),
                   "graphs_ms": timed(lambda: graphs.infer(x))}
        out["rows"].append(row)
        print(row, flush=True)
        model.float()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
