# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Benchmark 2: training throughput (samples/s), batch 64, ours vs multivae's Nexus.

Same architecture (multivae_nexus.py wraps our networks), same data (the embedded digits
training split as model tensors), same optimiser (Adam, lr 1e-3), FPD rate 0.2 on both sides.
One step = loss, backward, optimiser step. Ours runs twice: as the trainer runs it
(``ours``: ``make_adam`` with the shipped config's ``train.fused_adam`` and ``train.precision``,
or ``--precision``) and plain (``ours-plain``: fp32, torch's default for-each Adam, as multivae's
trainer uses), so the table separates the trainer's settings from the model code. Ours trains
the reference configuration (sound VAE pretrained and frozen, so no bottom sound loss, as
NEXUS_SPEC.md prescribes); multivae has no frozen-modality option and trains every bottom VAE.
The sides alternate in blocks so they see the same machine load. Licence: Apache-2.0.
"""
from __future__ import annotations

import argparse
import time

import torch

from common import load_average, set_threads, summarize_ms, table, write_result
from multivae_nexus import available, build_multivae_nexus, multivae_dataset

from crossmodal_ros.models import build_model


def load_batches(n_batches: int, batch: int, seed: int = 0) -> list[dict]:
    """``n_batches`` shuffled batches of the digits training split (model tensors)."""
    from crossmodal_ros.training.train import load_tensors

    tensors, _ = load_tensors("digits", "train")
    n = tensors["image"].shape[0]
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        idx = torch.randperm(n, generator=g)[:batch]
        out.append({m: tensors[m][idx].contiguous() for m in ("image", "audio", "trajectory", "label")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per side")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                    help="autocast of the 'ours' side (default: the shipped config/train_nexus.yaml's)")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    torch.manual_seed(0)
    load_before = load_average()
    batches = load_batches(8, args.batch)

    from pathlib import Path

    from crossmodal_ros.training.config import load_config
    from crossmodal_ros.training.distributed import autocast, resolve_precision
    from crossmodal_ros.training.loop import make_adam

    shipped = load_config(Path(__file__).resolve().parents[1] / "config" / "train_nexus.yaml")["train"]
    cpu = torch.device("cpu")
    precision = resolve_precision(args.precision or shipped["precision"], cpu)  # auto -> bf16 | fp32 here
    ours = build_model("nexus", {}).train()
    trainable = [p for p in ours.parameters() if p.requires_grad]
    opt = make_adam(trainable, 1e-3, shipped, cpu)
    plain_opt = torch.optim.Adam(trainable, lr=1e-3)
    fused = bool(opt.param_groups[0]["fused"])

    def ours_step(batch, epoch=5, optimizer=opt, dtype=precision):
        with autocast(cpu, dtype):  # the trainer's autocast (none for fp32)
            loss, _ = ours.loss(batch, None, epoch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def plain_step(batch):
        ours_step(batch, optimizer=plain_opt, dtype="fp32")

    why_not = available()
    mv_step = None
    info = {}
    if why_not is None:
        mv, _, info = build_multivae_nexus(fpd_rho=0.2)
        mv.train()
        mv_opt = torch.optim.Adam(mv.parameters(), lr=1e-3)
        mv_sets = [multivae_dataset(b) for b in batches]

        def mv_step(i):
            out = mv(mv_sets[i % len(mv_sets)], epoch=5)
            mv_opt.zero_grad(set_to_none=True)
            out.loss.backward()
            mv_opt.step()

    times = {"ours": [], "multivae": [], "ours-plain": []}
    for i in range(3):  # warm-up
        ours_step(batches[i])
        plain_step(batches[i])
        if mv_step:
            mv_step(i)
    block = 5
    for start in range(0, args.steps, block):
        for side, fn in (("ours", ours_step), ("ours-plain", plain_step)):
            for i in range(start, min(start + block, args.steps)):
                t0 = time.perf_counter()
                fn(batches[i % len(batches)])
                times[side].append(time.perf_counter() - t0)
        if mv_step:
            for i in range(start, min(start + block, args.steps)):
                t0 = time.perf_counter()
                mv_step(i)
                times["multivae"].append(time.perf_counter() - t0)

    rows = []
    for side, ts in times.items():
        if not ts:
            continue
        s = summarize_ms(ts)
        rows.append({"side": side, "step_median_ms": s["median_ms"], "step_p99_ms": s["p99_ms"],
                     "samples_per_s": round(args.batch / (s["median_ms"] / 1e3), 1)})
    sps = {r["side"]: r["samples_per_s"] for r in rows}
    ratio = round(sps["ours"] / sps["multivae"], 2) if "multivae" in sps else None
    plain_ratio = round(sps["ours-plain"] / sps["multivae"], 2) if "multivae" in sps else None
    load_after = load_average()
    print(table(rows, ["side", "step_median_ms", "step_p99_ms", "samples_per_s"],
                f"Training step, batch {args.batch} (torch {torch.__version__}, {args.threads} thread(s), "
                f"{args.steps} steps; load avg before {load_before} after {load_after})"))
    print(f"ours = {precision}, {'fused' if fused else 'for-each'} Adam; ours-plain = fp32, for-each Adam")
    print("throughput ratio ours/multivae:", ratio, " ours-plain/multivae:", plain_ratio,
          " ours/ours-plain:", round(sps["ours"] / sps["ours-plain"], 2))
    if why_not:
        print("multivae:", why_not)
    path = write_result("training", {"batch": args.batch, "steps": args.steps, "threads": args.threads,
                                     "load_avg_before": load_before, "load_avg_after": load_after,
                                     "parameters": info, "rows": rows, "ratio_ours_over_multivae": ratio,
                                     "ratio_plain_over_multivae": plain_ratio,
                                     "ours": {"precision": precision, "fused_adam": fused},
                                     "multivae": why_not or "multivae==1.0.3 Nexus with our networks"}, args.out)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
