# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Build the model-comparison Markdown tables from ``crossmodal-eval`` result folders, over seeds.

Usage::

    python tools/compare_results.py NAME=DIR[,DIR...] [NAME=DIR[,DIR...] ...]
        [--robustness NAME=DIR[,DIR...] ...] [--weak-classes] [--out FILE]

Each DIR holds a ``results.json`` written by ``crossmodal-eval`` (one training seed each); with
several DIRs per NAME every cell is the mean ± standard deviation over them (sample std, n - 1).
Prints one table with, per model, the cross-modal accuracy per target for 1 and 3 given
modalities and the overall mean (the Nexus paper's Table 3 layout); with ``--robustness``
(``crossmodal-eval --robustness`` folders, the same NAMEs), a second table with the suite's rows.
Then, for the first NAME (the shipped default), its lead over every other model on the overall
mean and on the mean of the robustness rows, and whether the lead exceeds two standard deviations
(the larger of the two models' seed stds) - computed from the numbers, nothing assumed.
``--weak-classes`` lists, per seed, the digit classes a cross-modal row judges right less than
half the time (folders written by a ``crossmodal-eval`` that keeps per-class accuracies).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

TARGETS = ("image", "audio", "trajectory", "label")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values: list[float]) -> str:
    """Percent cell: ``m`` for one seed, ``m ± s`` for several."""
    m, s = mean_std([100 * v for v in values])
    return f"{m:.1f}" if len(values) == 1 else f"{m:.1f} ± {s:.1f}"


def table(entries: list[tuple[str, list[dict]]]) -> str:
    """Cross-modal table: one row per model, every cell over that model's seeds."""
    head = (["model", "seeds"] + [f"{t} 1 given" for t in TARGETS] + [f"{t} 3 given" for t in TARGETS]
            + ["mean (all pairs)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in entries:
        cells = [name, str(len(runs))]
        for n in ("1", "3"):
            for t in TARGETS:
                vals = [r["summary"][t][n]["accuracy_mean"] for r in runs if n in r["summary"].get(t, {})]
                cells.append(cell(vals) if len(vals) == len(runs) else "–")
        cells.append(f"**{cell([r['mean_cross_accuracy'] for r in runs])}**")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def robustness_rows(runs: list[dict]) -> dict[str, dict]:
    """Row id -> {"name", "n", "values"} over the seeds (rows with an accuracy in every seed)."""
    per_seed = [{r["id"]: r for r in res["rows"] if r.get("accuracy") is not None} for res in runs]
    ids = [i for i in per_seed[0] if all(i in s for s in per_seed)]
    return {i: {"name": per_seed[0][i]["name"], "n": per_seed[0][i]["n"],
                "values": [s[i]["accuracy"] for s in per_seed]} for i in ids}


def robustness_table(entries: list[tuple[str, list[dict]]]) -> str:
    """Robustness rows present for every model, one column per model."""
    rows = {name: robustness_rows(runs) for name, runs in entries}
    common = [i for i in rows[entries[0][0]] if all(i in r for r in rows.values())]
    first = rows[entries[0][0]]
    lines = ["| robustness row (label accuracy, modality alone) | n | " + " | ".join(n for n, _ in entries) + " |",
             "|---|---|" + "---|" * len(entries)]
    for i in common:
        lines.append(f"| {first[i]['name']} | {first[i]['n']} | "
                     + " | ".join(cell(rows[n][i]["values"]) for n, _ in entries) + " |")
    means = {n: [statistics.fmean(v) for v in zip(*(rows[n][i]["values"] for i in common))] for n, _ in entries}
    lines.append("| **mean of these rows** | | " + " | ".join(f"**{cell(means[n])}**" for n, _ in entries) + " |")
    return "\n".join(lines) + "\n"


def robustness_means(entries: list[tuple[str, list[dict]]]) -> dict[str, list[float]]:
    """Per model: the mean over the common robustness rows, one value per seed."""
    rows = {name: robustness_rows(runs) for name, runs in entries}
    common = [i for i in rows[entries[0][0]] if all(i in r for r in rows.values())]
    return {n: [statistics.fmean(v) for v in zip(*(rows[n][i]["values"] for i in common))] for n, _ in entries}


def leads(values: dict[str, list[float]], measure: str) -> list[str]:
    """Lines: the first model's lead over each other one on ``measure`` and the 2-std test."""
    names = list(values)
    base_m, base_s = mean_std(values[names[0]])
    out = []
    for other in names[1:]:
        m, s = mean_std(values[other])
        lead = 100 * (base_m - m)
        bound = 2 * 100 * max(base_s, s)
        single = [n for n in (names[0], other) if len(values[n]) < 2]
        head = f"- {measure}: {names[0]} {100 * base_m:.2f} vs {other} {100 * m:.2f}: lead {lead:+.2f} points, "
        if len(single) == 2:  # no spread on either side: any gap would pass a 2-std test of 0
            out.append(head + "no verdict (one seed for each: no std to compare the lead with)")
            continue
        verdict = "more than" if lead > bound else "not more than"
        note = f" (one seed for {', '.join(single)}: no std from it)" if single else ""
        out.append(head + f"{verdict} 2 std ({bound:.2f}){note}")
    return out


def weak_class_lines(entries: list[tuple[str, list[dict]]], threshold: float = 0.5) -> list[str]:
    """Per model and result folder (one seed each), the digit classes that some cross-modal row
    judges right less often than ``threshold`` (one failing class moves a seed's mean by little and
    its audio cells by a tenth), with the rows' count and the class they were most often judged as.
    Folders evaluated before ``crossmodal-eval`` kept per-class accuracies are named as such.
    """
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from crossmodal_ros.evaluation.evaluate import weak_classes

    lines = []
    for name, runs in entries:
        parts = []
        for i, run in enumerate(runs):
            folder = run.get("_folder", f"folder {i + 1}")
            if not any("per_class_accuracy" in r for r in run.get("rows", [])):
                parts.append(f"{folder}: no per-class rows")
                continue
            weak = weak_classes(run, threshold)
            by_class: dict[tuple, list] = {}
            for w in weak:
                by_class.setdefault((w["target"], w["class"], w["confused_with"]), []).append(w["accuracy"])
            if by_class:
                parts.append(f"{folder}: " + "; ".join(
                    f"{t} class {k} (judged as {c}) in {len(a)} rows, {100 * min(a):.1f}-{100 * max(a):.1f} %"
                    for (t, k, c), a in sorted(by_class.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2])))))
        lines.append(f"- {name}: " + (", ".join(parts) if parts else "none"))
    return lines


def _load(spec: str, error) -> tuple[str, list[dict]]:
    name, _, dirs = spec.partition("=")
    if not dirs:
        error(f"expected NAME=DIR[,DIR...], got {spec!r}")
    runs = []
    for d in dirs.split(","):
        path = Path(d) / "results.json"
        if not path.is_file():
            error(f"{path} does not exist (run crossmodal-eval --out {d} first)")
        run = json.loads(path.read_text())
        run["_folder"] = Path(d).name  # named in --weak-classes lines
        runs.append(run)
    return name, runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("entries", nargs="+", help="NAME=DIR[,DIR...] with DIR/results.json (crossmodal-eval)")
    p.add_argument("--robustness", nargs="*", default=[], help="NAME=DIR[,DIR...] (crossmodal-eval --robustness)")
    p.add_argument("--weak-classes", action="store_true",
                   help="also list, per seed, the classes some cross-modal row judges right less than half the time")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    entries = [_load(e, p.error) for e in a.entries]
    text = table(entries)
    counts = {f"{name} {len(runs)} seed(s)": sorted({r.get("n_samples", "unknown") for r in runs}, key=str)
              for name, runs in entries}
    # a --limit run beside a full one (in one entry or across entries), or another split
    if len({str(c) for c in counts.values()}) > 1 or any(len(c) > 1 for c in counts.values()):
        text += ("\n**Warning: the result folders were evaluated on different numbers of samples** ("
                 + "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in counts.items())
                 + "): their means are not comparable.\n")
    summary = leads({n: [r["mean_cross_accuracy"] for r in runs] for n, runs in entries}, "mean cross-modal")
    if a.robustness:
        rob = [_load(e, p.error) for e in a.robustness]
        text += "\n" + robustness_table(rob)
        summary += leads(robustness_means(rob), "robustness rows mean")
    text += "\n" + "\n".join(summary) + "\n"
    if a.weak_classes:
        text += ("\nClasses that some cross-modal row judges right less than half the time (per result "
                 "folder):\n\n" + "\n".join(weak_class_lines(entries)) + "\n")
    if a.out:
        a.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
