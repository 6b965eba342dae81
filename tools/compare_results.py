# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Build the model-comparison Markdown table from ``crossmodal-eval`` result folders.

Usage: ``python tools/compare_results.py NAME=DIR [NAME=DIR ...] [--out FILE]``; each DIR holds
a ``results.json`` written by ``crossmodal-eval``. Prints (or writes) one table with, per
model, the cross-modal accuracy per target for 1 and 3 given modalities and the overall mean.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

TARGETS = ("image", "audio", "trajectory", "label")


def table(entries: list[tuple[str, dict]]) -> str:
    head = ["model"] + [f"{t} 1 given" for t in TARGETS] + [f"{t} 3 given" for t in TARGETS] + ["mean (all pairs)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in entries:
        summ = res["summary"]
        cells = [name]
        for n in ("1", "3"):
            for t in TARGETS:
                s = summ.get(t, {}).get(n)
                cells.append(f"{100 * s['accuracy_mean']:.1f}" if s else "–")
        cells.append(f"**{100 * res['mean_cross_accuracy']:.1f}**")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("entries", nargs="+", help="NAME=DIR with DIR/results.json")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    entries = []
    for e in a.entries:
        name, _, d = e.partition("=")
        if not d:
            p.error(f"expected NAME=DIR, got {e!r}")
        path = Path(d) / "results.json"
        if not path.is_file():
            p.error(f"{path} does not exist (run crossmodal-eval --out {d} first)")
        entries.append((name, json.loads(path.read_text())))
    text = table(entries)
    if a.out:
        a.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
