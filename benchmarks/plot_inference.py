# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Plot ``results/inference.json`` (``bench_inference.py``): batch-1 time per input subset for
each backend it timed and for multivae, one horizontal bar group per subset, written next to
the JSON as ``inference.png``. Licence: Apache-2.0.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: (column prefix in the rows, label), in drawing order; columns the run lacks are skipped
SERIES = (("ours", "fast"), ("ours_onnx", "onnx"), ("ours_onnx_int8", "onnx_int8"),
          ("ours_int8", "int8"), ("multivae", "multivae Nexus"))


def plot(result: dict, out: Path) -> Path:
    rows = result["rows"]
    series = [(key, label) for key, label in SERIES if all(f"{key}_med" in r for r in rows)]
    if not rows or not series:
        raise ValueError("the result has no per-subset medians to plot")
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.8))
    height = 0.8 / len(series)
    for j, (key, label) in enumerate(series):
        ys = [i + j * height for i in range(len(rows))]
        ax.barh(ys, [r[f"{key}_med"] for r in rows], height=height, label=label)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
    ax.set_yticklabels([r["subset"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("batch-1 fused inference, all four outputs: median ms (lower is better; dotted: 1 ms)")
    machine = result.get("machine", {})
    device = "CUDA" if machine.get("cuda") else "CPU"
    ax.set_title(f"{result.get('created', '')}  {machine.get('cpu', '')}  torch {machine.get('torch', '')} on the "
                 f"{device}, {result.get('threads', 1)} thread(s), load {result.get('load_avg_before', ['?'])[0]}",
                 fontsize=8)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=len(series), frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--result", default=str(Path(__file__).parent / "results" / "inference.json"))
    args = ap.parse_args(argv)
    path = Path(args.result)
    print("wrote", plot(json.loads(path.read_text()), path.with_suffix(".png")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
