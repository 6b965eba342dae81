# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Benchmark 1: batch-1 fused inference for every input subset, ours vs multivae's Nexus.

For each of the 15 subsets of (image, audio, trajectory, label), one fused inference that
yields all four reconstructions + the latent, batch 1, CPU:

* ``ours``: ``FusionEngine.infer_tensors`` on model tensors (the fast path; numpy out);
  ``ours_onnx`` the same with ``backend="onnx"`` (ONNX Runtime; equal to the reference within
  1e-4; where onnxruntime imports), ``ours_onnx_int8`` with ``backend="onnx_int8"`` (its int8
  products; close to, not equal to, the reference) and ``ours_int8`` with ``backend="int8"`` (weight-only int8
  products; where the torch build has the kernel);
* ``ours_ref``: the same engine with ``fast=False`` (the module-graph reference path);
* ``multivae``: multivae's Nexus built with the same networks (multivae_nexus.py),
  ``predict(cond_mod=subset, gen_mod="all", return_mean=True)`` on the same tensors;
* ``*_raw``: preprocessing included: raw sensor data (camera frame 480x640 mono8, 1 s of 16 kHz
  audio, a 60-point stroke, a label) through the codecs first (``FusionEngine.infer`` with the
  equal-input preprocessing cache off, so the codecs really run every call; multivae has no
  preprocessing, so it gets our codecs + predict).

Median and p99 over ``--runs`` calls after a warm-up, ratio multivae/ours per subset, in one
process on one torch build. Run with benchmarks/.venv-multivae/bin/python for the comparison
(with the project venv the multivae columns are empty). Licence: Apache-2.0.
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from common import load_average, set_threads, summarize_ms, table, time_calls, write_result
from multivae_nexus import available, build_multivae_nexus, multivae_dataset

from crossmodal_ros.codecs import default_codecs
from crossmodal_ros.engine import FusionEngine
from crossmodal_ros.models import onnx_path
from crossmodal_ros.models.fast import int8_available
from crossmodal_ros.modalities import AUDIO, MODALITIES, MODEL_SHAPES, all_subsets, subset_name
from crossmodal_ros.models import build_model


def raw_inputs(sample_rate: int = 16000) -> dict:
    """Realistic raw sensor readings: a VGA camera frame, 1 s of audio, a pen stroke, a label."""
    rng = np.random.default_rng(0)
    frame = np.zeros((480, 640), np.uint8)
    frame[100:380, 300:340] = 255
    t = np.arange(sample_rate) / sample_rate
    audio = (0.3 * np.sin(2 * np.pi * 300 * t) * np.exp(-3 * t) + 0.01 * rng.standard_normal(sample_rate))
    s = np.linspace(0, 1, 60)
    stroke = np.stack([0.5 + 0.3 * np.cos(5 * s), 0.5 + 0.3 * np.sin(5 * s)], 1)
    return {"image": frame, "audio": audio.astype(np.float32), "trajectory": stroke.astype(np.float32), "label": 7}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=300, help="timed calls per subset and side")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both sides)")
    ap.add_argument("--checkpoint", default=None, help="our checkpoint (default: a freshly built Nexus)")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    torch.manual_seed(0)
    load_before = load_average()

    codecs = default_codecs()
    if args.checkpoint:
        engine = FusionEngine.from_checkpoint(args.checkpoint, device="cpu")
        codecs = engine.codecs
    else:
        engine = FusionEngine(build_model("nexus", {}).eval(), codecs, device="cpu")
    ref = FusionEngine(engine.model, codecs, device="cpu", fast=False)
    # preprocessing measured for real: the same raw input is passed every call, so the
    # engine's equal-input cache would otherwise skip the codecs
    engine_raw = FusionEngine(engine.model, codecs, device="cpu", cache_preprocessing=False, cache_encodings=False)
    # the other backends: onnx (ONNX Runtime, equal within float rounding; its graphs built now,
    # not in the timing) and int8 (weight-only int8 products; close to, not equal to, the float path)
    extras = {}
    if onnx_path.available():
        for name in ("onnx", "onnx_int8"):
            extras[name] = FusionEngine(engine.model, codecs, device="cpu", backend=name)
            extras[name]._onnx.prepare()
    if int8_available():
        extras["int8"] = FusionEngine(engine.model, codecs, device="cpu", backend="int8")
    why_not = available()
    mv = None
    info = {"params_ours": sum(p.numel() for p in engine.model.parameters())}
    if why_not is None:
        mv, _, info = build_multivae_nexus()
        mv.eval()
    raw = raw_inputs()
    sr = 16000
    x = {m: torch.rand(1, *MODEL_SHAPES[m]) for m in MODALITIES}
    x["label"] = torch.nn.functional.one_hot(torch.tensor([7]), 10).float()

    rows = []
    for subset in all_subsets():
        sub_x = {m: x[m] for m in subset}
        sub_raw = {m: raw[m] for m in subset}
        row = {"subset": subset_name(subset)}
        res = {}
        res["ours"] = summarize_ms(time_calls(lambda: engine.infer_tensors(sub_x), args.runs))
        for name, eng in extras.items():
            res[f"ours_{name}"] = summarize_ms(time_calls(lambda: eng.infer_tensors(sub_x), args.runs))
        res["ours_ref"] = summarize_ms(time_calls(lambda: ref.infer_tensors(sub_x), max(50, args.runs // 3)))
        res["ours_raw"] = summarize_ms(time_calls(lambda: engine_raw.infer(sub_raw, sample_rate=sr),
                                                  max(50, args.runs // 3)))
        if mv is not None:
            ds = multivae_dataset(sub_x)
            cond = list(subset)

            def mv_call():
                with torch.no_grad():
                    return mv.predict(ds, cond_mod=cond, gen_mod="all", return_mean=True)

            def mv_raw():
                arrays = engine_raw.encode_raw(sub_raw, sr)  # our codecs: multivae has no preprocessing
                d = multivae_dataset({m: torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0)
                                      for m, a in arrays.items()})
                with torch.no_grad():
                    return mv.predict(d, cond_mod=cond, gen_mod="all", return_mean=True)

            res["multivae"] = summarize_ms(time_calls(mv_call, args.runs))
            res["multivae_raw"] = summarize_ms(time_calls(mv_raw, max(50, args.runs // 3)))
        for k, v in res.items():
            row[f"{k}_med"] = v["median_ms"]
            row[f"{k}_p99"] = v["p99_ms"]
        if mv is not None:
            row["ratio"] = round(res["multivae"]["median_ms"] / res["ours"]["median_ms"], 2)
            row["ratio_raw"] = round(res["multivae_raw"]["median_ms"] / res["ours_raw"]["median_ms"], 2)
            for name in extras:
                row[f"ratio_{name}"] = round(res["multivae"]["median_ms"] / res[f"ours_{name}"]["median_ms"], 2)
        rows.append(row)
        print(f"  {row['subset']:<28} ours {row['ours_med']:.3f} ms"
              + (f"  multivae {row['multivae_med']:.3f} ms  x{row['ratio']}" if mv is not None else ""), flush=True)

    cols = ["subset", "ours_med", "ours_p99"] + [f"ours_{name}_med" for name in extras] + ["ours_ref_med"]
    if mv is not None:
        cols += ["multivae_med", "multivae_p99", "ratio"] + [f"ratio_{name}" for name in extras]
    cols += ["ours_raw_med", "ours_raw_p99"] + (["multivae_raw_med", "ratio_raw"] if mv is not None else [])
    summary = {"ours_median_of_medians_ms": statistics.median(r["ours_med"] for r in rows),
               "ours_worst_median_ms": max(r["ours_med"] for r in rows),
               "ours_ref_median_of_medians_ms": statistics.median(r["ours_ref_med"] for r in rows),
               "ours_raw_median_of_medians_ms": statistics.median(r["ours_raw_med"] for r in rows)}
    for name in extras:
        summary.update({f"ours_{name}_median_of_medians_ms": statistics.median(r[f"ours_{name}_med"] for r in rows),
                        f"ours_{name}_worst_median_ms": max(r[f"ours_{name}_med"] for r in rows),
                        f"ours_{name}_subsets_at_most_1ms": sum(r[f"ours_{name}_med"] <= 1.0 for r in rows)})
    if mv is not None:
        summary.update({"multivae_median_of_medians_ms": statistics.median(r["multivae_med"] for r in rows),
                        "min_ratio": min(r["ratio"] for r in rows),
                        "median_ratio": statistics.median(r["ratio"] for r in rows)})
        for name in extras:
            summary.update({f"min_ratio_{name}": min(r[f"ratio_{name}"] for r in rows),
                            f"median_ratio_{name}": statistics.median(r[f"ratio_{name}"] for r in rows)})
    load_after = load_average()
    title = (f"Batch-1 fused inference, all four outputs (ms; torch {torch.__version__}, {args.threads} thread(s), "
             f"{args.runs} runs; load avg before {load_before} after {load_after})")
    print(table(rows, cols, title))
    print("summary:", summary)
    if why_not:
        print("multivae:", why_not)
    path = write_result("inference", {
        "runs": args.runs, "threads": args.threads, "load_avg_before": load_before, "load_avg_after": load_after,
        "multivae": why_not or "multivae==1.0.3 Nexus with our networks; predict(return_mean=True)",
        "parameters": info, "engine_path": engine.path, "rows": rows, "summary": summary,
        "audio_raw": f"{sr} Hz, 1 s; image raw 480x640 mono8", "audio_key": AUDIO}, args.out)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
