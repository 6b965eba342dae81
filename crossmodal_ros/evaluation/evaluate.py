# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The paper's cross-modal evaluation protocol (Section 6) and the ``crossmodal-eval`` tool.

For every non-empty subset of the model's modalities (15 for four modalities) the model
generates every modality from the subset's real inputs (mean latents by default). Every target
modality NOT in the subset is a cross-modal generation: the fixed judges
(:class:`~crossmodal_ros.evaluation.instruments.Instruments`) classify it and the prediction is
compared with the true class (a generated label is judged by the argmax of its logits); its
Modality Frechet Distance is the Frechet distance between Gaussians fitted to judge-AE features
of real and generated samples, per class, averaged over classes. Targets inside the subset are
reported separately as self-reconstruction.

The summary follows the paper's Table 3: per target, the mean (and spread over subsets) of the
cross-modal rows with 1, 2 and 3 given modalities.

    crossmodal-eval --checkpoint models/nexus_digits.pt [--data digits] [--split test]
        [--instruments models/instruments_digits.pt] [--out DIR]
        [--device auto] [--limit N] [--sample]
    crossmodal-eval --robustness [--checkpoint X] [--limit N] [--seed S] [--out DIR] [--rows camera,microphone,pen]
        (the robustness suite: crossmodal_ros.evaluation.robustness)

writes ``results.md``, ``results.csv`` (one row per subset x target), ``results.json`` and
``samples_<subset>.png`` grids into ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import torch

from crossmodal_ros.evaluation.instruments import Instruments, default_instruments_path
from crossmodal_ros.evaluation.metrics import EvaluationError, accuracy, mean_std, per_class_frechet
from crossmodal_ros.modalities import LABEL, MODEL_SHAPES, all_subsets, subset_name


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu`` (engine.resolve_device, EvaluationError)."""
    from crossmodal_ros.engine import resolve_device as _resolve

    try:
        return _resolve(str(device))
    except (ValueError, RuntimeError) as exc:
        raise EvaluationError(f"{exc} (--device)") from exc


def _validate_tensors(tensors: dict, modalities) -> int:
    if "y" not in tensors:
        raise EvaluationError("the tensors need a 'y' entry (true class indices)")
    n = int(tensors["y"].shape[0])
    if n == 0:
        raise EvaluationError("no samples to evaluate")
    for m in modalities:
        t = tensors[m]
        if tuple(t.shape) != (n, *MODEL_SHAPES[m]):
            raise EvaluationError(f"{m}: expected shape ({n}, {', '.join(map(str, MODEL_SHAPES[m]))}); got "
                                  f"{tuple(t.shape)}")
    return n


@torch.no_grad()
def generate(model, tensors: dict, given, *, batch_size: int = 256, sample: bool = False,
             device: torch.device | str = "cpu") -> dict:
    """All of ``model.modalities`` generated from the ``given`` subset, batch by batch (CPU tensors).

    Only the given modalities are passed to ``model.infer`` (plus a presence mask over
    ``model.modalities``).
    """
    device = torch.device(device)
    n = int(tensors["y"].shape[0])
    mods = tuple(model.modalities)
    present = torch.tensor([m in given for m in mods], dtype=torch.bool)
    outs: dict[str, list] = {m: [] for m in mods}
    for i in range(0, n, batch_size):
        inputs = {m: tensors[m][i:i + batch_size].to(device).float() for m in given}
        b = next(iter(inputs.values())).shape[0]
        mask = present.unsqueeze(0).expand(b, -1).to(device)
        out = model.infer(inputs, mask=mask, sample=sample)
        for m in mods:
            if m not in out:
                raise EvaluationError(f"model.infer did not return modality {m!r} (given {subset_name(given)})")
            outs[m].append(out[m].detach().float().cpu())
    return {m: torch.cat(v) for m, v in outs.items()}


def evaluate_model(model, tensors: dict, instruments: Instruments, *, batch_size: int = 256,
                   sample: bool = False, seed: int = 0, device: str | torch.device = "cpu",
                   subsets=None, frechet: bool = True, keep_samples: int = 0, progress=print) -> dict:
    """Run the cross-modal protocol and return a plain, JSON-able result dict.

    ``model`` implements the ``MultimodalModel`` interface (``modalities``, ``infer``);
    ``tensors`` is a ``model_tensors`` dict (with ``"y"``); the evaluated modalities are
    ``model.modalities`` (all of them must be in ``tensors``). ``subsets`` defaults to every
    non-empty subset. With ``keep_samples > 0`` the first rows of every generation are kept
    under ``"samples"`` (tensors, for plotting; drop that key before JSON). ``progress`` is a
    callable taking one line of text (or ``None``).

    Result keys: ``modalities``, ``n_samples``, ``sample``, ``seed``, ``judge_accuracy``
    (judges on these real tensors), ``judge_test_accuracy`` (stored in the instruments),
    ``rows`` (one per subset x target: ``given``, ``given_name``, ``n_given``, ``target``,
    ``kind`` = ``cross``|``self``, ``accuracy``, ``frechet`` (cross rows only),
    ``per_class_accuracy``, ``per_class_confused_with``, ``per_class_n``: see :func:`class_breakdown`), ``summary``
    (``{target: {n_given: {accuracy_mean, accuracy_std, frechet_mean, frechet_std, n_subsets}}}``
    over cross rows), ``self_summary`` (``{target: {"alone": acc, "all": acc}}``),
    ``mean_cross_accuracy``, ``mean_cross_accuracy_by_n``, ``seconds``.
    """
    log = progress or (lambda _s: None)
    mods = tuple(model.modalities)
    missing = [m for m in mods if m not in tensors]
    if missing:
        raise EvaluationError(f"the data lack modalities {missing} that the model uses ({list(mods)})")
    unjudged = [m for m in mods if m != LABEL and m not in instruments.modalities]
    if unjudged:
        raise EvaluationError(f"the instruments have no judge for {unjudged}; they judge "
                              f"{list(instruments.modalities)}")
    n = _validate_tensors(tensors, mods)
    y = tensors["y"].long().cpu()
    device = resolve_device(device)
    subsets = [tuple(s) for s in (subsets or all_subsets(mods))]
    for s in subsets:
        if not s or any(m not in mods for m in s):
            raise EvaluationError(f"bad subset {s!r} for modalities {list(mods)}")
    start = time.time()
    was_training = getattr(model, "training", False)
    model.eval()
    model.to(device)

    judge_acc = {m: accuracy(instruments.classify(m, tensors[m]), y) for m in mods}
    real_feats = {m: instruments.features(m, tensors[m]) for m in mods if frechet and instruments.has_features(m)}
    log(f"judges on the real data ({n} samples): "
        + ", ".join(f"{m} {100 * a:.1f}%" for m, a in judge_acc.items()))

    rows, samples = [], {}
    try:
        for si, given in enumerate(subsets, 1):
            t0 = time.time()
            torch.manual_seed(seed)
            gen = generate(model, tensors, given, batch_size=batch_size, sample=sample, device=device)
            for m_out, t in gen.items():
                if not torch.isfinite(t).all():
                    raise EvaluationError(f"model produced non-finite {m_out} from {subset_name(given)}")
            parts = []
            for target in mods:
                pred = instruments.classify(target, gen[target]).argmax(1).cpu()
                acc = accuracy(pred, y)
                per_class, confused, per_class_n = class_breakdown(pred, y)
                kind = "self" if target in given else "cross"
                fd = None
                if target in real_feats and kind == "cross":  # MFD for cross-modal rows only
                    try:
                        fd = per_class_frechet(real_feats[target], instruments.features(target, gen[target]), y)
                    except EvaluationError:
                        fd = None  # too few samples per class (tiny --limit)
                rows.append({"given": list(given), "given_name": subset_name(given), "n_given": len(given),
                             "target": target, "kind": kind, "accuracy": acc, "frechet": fd,
                             "per_class_accuracy": per_class, "per_class_confused_with": confused,
                             "per_class_n": per_class_n})
                if kind == "cross":
                    parts.append(f"{target} {100 * acc:.1f}%")
            if keep_samples > 0:
                samples[subset_name(given)] = {m: t[:keep_samples].clone() for m, t in gen.items()}
            log(f"[{si}/{len(subsets)}] given {subset_name(given)}: {', '.join(parts) or '(no cross targets)'}"
                f" ({time.time() - t0:.1f}s)")
    finally:
        model.train(was_training)

    summary: dict = {}
    for target in mods:
        summary[target] = {}
        for k in range(1, len(mods)):
            sel = [r for r in rows if r["kind"] == "cross" and r["target"] == target and r["n_given"] == k]
            if not sel:
                continue
            am, asd = mean_std([r["accuracy"] for r in sel])
            fm, fsd = mean_std([r["frechet"] for r in sel])
            summary[target][str(k)] = {"accuracy_mean": am, "accuracy_std": asd, "frechet_mean": fm,
                                       "frechet_std": fsd, "n_subsets": len(sel)}
    self_summary = {}
    for target in mods:
        own = [r for r in rows if r["kind"] == "self" and r["target"] == target]
        alone = [r["accuracy"] for r in own if r["given"] == [target]]
        full = [r["accuracy"] for r in own if r["n_given"] == len(mods)]
        self_summary[target] = {"alone": alone[0] if alone else None, "all": full[0] if full else None}
    cross = [r["accuracy"] for r in rows if r["kind"] == "cross"]
    by_n = {str(k): mean_std([r["accuracy"] for r in rows if r["kind"] == "cross" and r["n_given"] == k])[0]
            for k in range(1, len(mods))}
    result = {
        "modalities": list(mods),
        "n_samples": n,
        "sample": bool(sample),
        "seed": int(seed),
        "judge_accuracy": judge_acc,
        "judge_test_accuracy": dict(instruments.test_accuracy),
        "instruments_dataset": instruments.dataset,
        "rows": rows,
        "summary": summary,
        "self_summary": self_summary,
        "mean_cross_accuracy": mean_std(cross)[0],
        "mean_cross_accuracy_by_n": by_n,
        "seconds": round(time.time() - start, 2),
    }
    if keep_samples > 0:
        result["samples"] = samples
    return result


def class_breakdown(pred, y) -> tuple[dict, dict, dict]:
    """Per true class: the judged accuracy, the class its wrongly judged samples were most often
    judged as (None when none was wrong), and the number of samples.

    A failure confined to one class (e.g. every generated "seven" heard as "six") moves the mean
    accuracy by only a tenth, so the evaluator keeps this per row. Keys are class indices as
    strings (JSON); classes absent from ``y`` are left out.
    """
    p = torch.as_tensor(pred).long().cpu()
    t = torch.as_tensor(y).long().cpu()
    if p.shape != t.shape:
        raise EvaluationError(f"class_breakdown: pred {tuple(p.shape)} and y {tuple(t.shape)} differ")
    acc, confused, count = {}, {}, {}
    for k in torch.unique(t).tolist():
        sel = p[t == k]
        acc[str(k)] = float((sel == k).float().mean())
        wrong = sel[sel != k]
        confused[str(k)] = int(torch.mode(wrong).values) if wrong.numel() else None
        count[str(k)] = int(sel.numel())
    return acc, confused, count


def weak_classes(result: dict, threshold: float = 0.5) -> list[dict]:
    """Cross-modal rows in which some class is judged right less often than ``threshold``:
    ``[{"given_name", "target", "class", "accuracy", "confused_with", "n"}]``, worst first
    (``n``: the class's samples, None in results written without it). Results written before
    per-class accuracies were kept give an empty list.
    """
    weak = []
    for r in result["rows"]:
        if r["kind"] != "cross":
            continue
        for k, a in (r.get("per_class_accuracy") or {}).items():
            if a < threshold:
                weak.append({"given_name": r["given_name"], "target": r["target"], "class": int(k), "accuracy": a,
                             "confused_with": r["per_class_confused_with"].get(k),
                             "n": (r.get("per_class_n") or {}).get(k)})
    return sorted(weak, key=lambda w: (w["accuracy"], w["given_name"], w["target"]))


# --------------------------------------------------------------------------- reports
def _pct(mean, std=None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{100 * mean:.1f}" if std is None or math.isnan(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _num(mean, std=None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.2f}" if std is None or math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def results_markdown(result: dict, header: dict | None = None) -> str:
    """The results as Markdown: judges, the Table-3-layout summaries and per-subset detail.

    ``header`` (plain ``{name: value}``) is listed at the top (checkpoint, data, split, ...).
    Nothing time-dependent is written, so a rerun reproduces the file exactly.
    """
    mods = result["modalities"]
    ks = [str(k) for k in range(1, len(mods))]
    lines = ["# Cross-modal evaluation", ""]
    for key, value in (header or {}).items():
        lines.append(f"- **{key}**: {value}")
    lines += [f"- **samples**: {result['n_samples']}",
              f"- **latents**: {'sampled (seed %d)' % result['seed'] if result['sample'] else 'means (deterministic)'}",
              "",
              "## Judges (accuracy on real data, %)", "",
              "The ceiling of the accuracy metric: the fixed classifiers on real samples.", "",
              "| modality | stored test accuracy | on the evaluated data |", "|---|---|---|"]
    for m in mods:
        stored = result["judge_test_accuracy"].get(m, 1.0 if m == LABEL else None)
        lines.append(f"| {m} | {_pct(stored)} | {_pct(result['judge_accuracy'][m])} |")
    head = "| target | " + " | ".join(f"{k} given" for k in ks) + " |"
    rule = "|---|" + "---|" * len(ks)
    lines += ["", "## Cross-modal accuracy (%, higher is better)", "",
              "Per target, mean ± spread over the input subsets with that many given modalities "
              "(the target itself never given; paper Table 3 layout).", "", head, rule]
    for t in mods:
        cells = [_pct(result["summary"][t].get(k, {}).get("accuracy_mean"),
                      result["summary"][t].get(k, {}).get("accuracy_std"))
                 for k in ks]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("| **mean** | " + " | ".join(_pct(result["mean_cross_accuracy_by_n"].get(k)) for k in ks) + " |")
    lines += ["",
              f"Mean cross-modal accuracy over all subset x target pairs: **{_pct(result['mean_cross_accuracy'])} %**",
              "", "## Modality Frechet distance (lower is better)", "",
              "Frechet distance between Gaussians fitted to judge auto-encoder features of real and "
              "generated samples, computed per class and averaged over classes (no MFD for labels).", "",
              head, rule]
    for t in mods:
        if t == LABEL:
            continue
        cells = [_num(result["summary"][t].get(k, {}).get("frechet_mean"),
                      result["summary"][t].get(k, {}).get("frechet_std"))
                 for k in ks]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "## Self-reconstruction accuracy (%)", "",
              "| target | from itself alone | from all modalities |", "|---|---|---|"]
    for t in mods:
        s = result["self_summary"][t]
        lines.append(f"| {t} | {_pct(s['alone'])} | {_pct(s['all'])} |")
    weak = weak_classes(result)
    lines += ["", "## Classes judged right less than half the time (cross-modal rows)", ""]
    if weak:
        lines += ["| given | target | class | samples | accuracy % | most often judged as |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {w['given_name']} | {w['target']} | {w['class']} | {'–' if w['n'] is None else w['n']} | "
                  f"{_pct(w['accuracy'])} | {'–' if w['confused_with'] is None else w['confused_with']} |"
                  for w in weak]
    elif any("per_class_accuracy" in r for r in result["rows"]):
        lines.append("None: every class of every cross-modal row is judged right at least half the time.")
    else:
        lines.append("Not recorded in this result (written before per-class accuracies were kept).")
    lines += ["", "## Per subset", "", "| given | target | kind | accuracy % | MFD |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['given_name']} | {r['target']} | {r['kind']} | {_pct(r['accuracy'])} | "
                     f"{_num(r['frechet'])} |")
    return "\n".join(lines) + "\n"


def write_outputs(result: dict, out_dir, header: dict | None = None, plots: bool = True,
                  real: dict | None = None, plot_n: int = 6) -> list[Path]:
    """Write results.md, results.csv, results.json (and PNG grids when ``plots`` and samples exist)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    (out / "results.md").write_text(results_markdown(result, header))
    written.append(out / "results.md")
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["given", "n_given", "target", "kind", "accuracy", "frechet"])
        for r in result["rows"]:
            w.writerow([r["given_name"], r["n_given"], r["target"], r["kind"], f"{r['accuracy']:.6f}",
                        "" if r["frechet"] is None else f"{r['frechet']:.6f}"])
    written.append(out / "results.csv")
    plain = {k: v for k, v in result.items() if k not in ("samples", "seconds")}
    plain["header"] = header or {}
    (out / "results.json").write_text(json.dumps(plain, indent=1, sort_keys=True, allow_nan=True) + "\n")
    written.append(out / "results.json")
    if plots and real is not None and result.get("samples"):
        from crossmodal_ros.evaluation.plots import plot_subset_grid

        for name, gen in result["samples"].items():
            given = tuple(name.split("+"))
            written.append(plot_subset_grid(real, gen, given, out / f"samples_{name}.png",
                                            modalities=result["modalities"], n=plot_n))
    return written


# --------------------------------------------------------------------------- CLI
def load_eval_tensors(spec: str, split: str, codecs=None) -> dict:
    """Model tensors of ``split`` of dataset ``spec``, preprocessed with the checkpoint's codecs.

    ``codecs``: codec objects or the plain ``codecs_to_dict`` dict stored in a checkpoint.
    """
    try:
        from crossmodal_ros.data import load_dataset
        from crossmodal_ros.data.features import model_tensors
    except ImportError as exc:
        raise EvaluationError(f"the dataset package is not available: {exc}") from exc
    ds = load_dataset(spec, split)
    if codecs and not hasattr(next(iter(codecs.values())), "encode"):  # plain dict from a checkpoint
        from crossmodal_ros.codecs import codecs_from_dict

        codecs = codecs_from_dict(codecs)
    return model_tensors(ds, codecs or None)


class _InferencePath:
    """What :class:`FastPathModel` and :class:`OnnxPathModel` share: the model interface
    :func:`evaluate_model` uses besides ``infer`` (inference only, ``eval`` a no-op).
    """

    #: how errors name the path
    path_name = "this path"

    def __init__(self, model):
        self.kind = model.kind
        self.modalities = tuple(model.modalities)
        self.training = False

    def eval(self):
        return self

    def train(self, mode: bool = True):
        if mode:
            raise EvaluationError(f"{self.path_name} is inference only")
        return self


class FastPathModel(_InferencePath):
    """A Nexus-family model seen through its fast inference path (:class:`FastNexus`, float or
    ``weights="int8"``), with the interface :func:`evaluate_model` uses: the evaluation then
    measures the node's weights and path family (the evaluator makes masked batched calls, which
    take the path's batched branches; the node makes unmasked batch-1 calls). Raises
    :class:`EvaluationError` for kinds the path does not run.
    """

    path_name = "the fast path"

    def __init__(self, model, weights: str = "float"):
        from crossmodal_ros.models.fast import FastNexus

        model.eval()
        if not FastNexus.supports(model):
            raise EvaluationError(f"the fast path runs Nexus-family models, not {type(model).__name__}")
        try:
            self.fast = FastNexus(model, weights=weights)
        except (ValueError, RuntimeError) as exc:  # RuntimeError: the int8 kernel failed its probe product
            raise EvaluationError(str(exc)) from exc
        super().__init__(model)

    def infer(self, inputs: dict, mask=None, sample: bool = False) -> dict:
        with torch.inference_mode():
            return self.fast.infer(inputs, mask, sample=sample)

    def to(self, device):
        if torch.device(device) != self.fast.device:
            raise EvaluationError(f"the fast path was built on {self.fast.device}, not {device}")
        return self


class OnnxPathModel(_InferencePath):
    """A model seen through the ONNX Runtime batch-1 path (:class:`~crossmodal_ros.models.onnx_path.OnnxNexus`,
    float or ``weights="int8"``), with the interface :func:`evaluate_model` uses: each row of a
    batch is one batch-1 call with the modalities its mask marks present, through the subset's
    encode graph and the decode graphs: what ``FusionEngine.infer_tensors`` runs with the
    ``onnx`` and ``onnx_int8`` backends. (The node's ``infer`` takes a Nexus-family model's
    latent from the float fast path and only decodes on ONNX, so with ``onnx_int8`` this
    measures int8 encoders too: a bound on the node's loss.) Deterministic only (no
    ``--sample``); CPU only. Raises :class:`EvaluationError` where the path cannot run.
    """

    path_name = "the ONNX path"

    def __init__(self, model, weights: str = "float"):
        from crossmodal_ros.models import onnx_path

        model.eval()
        if not onnx_path.available():
            raise EvaluationError("the onnx backends need the onnxruntime and onnx packages")
        try:
            self.onnx = onnx_path.OnnxNexus(model, weights=weights)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from exc
        super().__init__(model)

    def infer(self, inputs: dict, mask=None, sample: bool = False) -> dict:
        if sample:
            raise EvaluationError("the ONNX path is deterministic: evaluate it without --sample")
        n = next(iter(inputs.values())).shape[0]
        rows = []
        for i in range(n):
            given = {m: x[i:i + 1].contiguous() for m, x in inputs.items()
                     if mask is None or bool(mask[i, self.modalities.index(m)])}
            out = self.onnx.infer(given)
            if out is None:
                raise EvaluationError(f"the ONNX path cannot run this call (given {sorted(given)})")
            rows.append(out)
        return {k: torch.cat([r[k] for r in rows]) for k in rows[0]}

    def to(self, device):
        if torch.device(device).type != "cpu":
            raise EvaluationError(f"the ONNX path runs on the CPU, not {device}")
        return self


def limit_tensors(tensors: dict, limit: int | None) -> dict:
    """The first ``limit`` samples of every tensor (all when ``limit`` is None or 0)."""
    if not limit:
        return tensors
    if limit < 0:
        raise EvaluationError("--limit must be positive")
    return {k: (v[:limit] if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}


# options that change what a run measures (the others change only speed or the plots)
_RESULT_OPTIONS = ("data", "split", "instruments", "limit", "sample", "seed")


def default_out(checkpoint: Path, args, parser, backend: str | None = None, device: str = "cpu") -> Path:
    """Where ``crossmodal-eval`` writes without ``--out``. The committed folder
    ``docs/results/<checkpoint name>/`` of the source checkout only for the shipped checkpoint on
    the CPU (``device``: the resolved one) with every option that changes the results at its
    default (the run that made that folder); ``backend``: the one asked for (default
    ``args.backend``), before ``int8_auto`` resolves;
    any other run goes to ``runs/eval_<checkpoint name>_<hash of its path>_<split>`` in the working
    directory, with ``_limit<N>``, ``_<backend>``, ``_sample``, ``_seed<N>`` appended where they
    differ from the defaults (``--data``/``--instruments``: another path hash).
    """
    import hashlib

    from crossmodal_ros.paths import _SOURCE_ROOT, default_checkpoint

    backend = args.backend if backend is None else backend
    on_cpu = str(device).startswith("cpu")
    ckpt = Path(checkpoint).resolve()
    committed = _SOURCE_ROOT / "docs" / "results" / ckpt.stem
    defaults = (all(getattr(args, k) == parser.get_default(k) for k in _RESULT_OPTIONS)
                and backend == parser.get_default("backend"))
    if defaults and on_cpu and ckpt == default_checkpoint().resolve() and committed.parent.is_dir():
        return committed
    tag = hashlib.sha1(f"{ckpt}|{args.data}|{args.instruments}".encode()).hexdigest()[:6]
    extra = (f"{f'_limit{args.limit}' if args.limit else ''}"
             f"{'' if backend == 'reference' else '_' + backend}"
             f"{'' if on_cpu else '_' + str(device).replace(':', '')}"
             f"{'_sample' if args.sample else ''}{f'_seed{args.seed}' if args.seed else ''}")
    return Path("runs") / f"eval_{ckpt.stem}_{tag}_{args.split}{extra}"


def main(argv=None) -> int:
    """Console entry ``crossmodal-eval``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--robustness" in argv:  # the robustness suite has its own options (crossmodal_ros.evaluation.robustness)
        from crossmodal_ros.evaluation.robustness import main as robustness_main

        return robustness_main([a for a in argv if a != "--robustness"])
    parser = argparse.ArgumentParser(
        prog="crossmodal-eval",
        description="Cross-modal evaluation (Nexus paper, Section 6) of a checkpoint with the shipped judges.",
        epilog="The robustness suite (each modality alone under seeded sensor transformations) has its own "
               "options: crossmodal-eval --robustness --help.")
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped nexus_digits.pt)")
    parser.add_argument("--data", default="digits", help="dataset spec: digits | mhd:<dir> | bag:<file>")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--instruments", default=None, help="judge file (default: models/instruments_<data>.pt)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: runs/eval_<checkpoint name>_<path hash>_<split>...; the "
                             "committed docs/results/nexus_digits/ only for the shipped checkpoint with every "
                             "other option at its default)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N samples")
    parser.add_argument("--sample", action="store_true", help="sample latents instead of using their means")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG sample grids")
    parser.add_argument("--plot-samples", type=int, default=6, help="examples per PNG grid")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--backend", default="reference",
                        choices=("reference", "fast", "int8", "int8_auto", "onnx", "onnx_int8"),
                        help="inference path evaluated: reference (model.infer, default), fast (the folded path), "
                             "int8 (the fast path with weight-only int8 products) or int8_auto (the node's "
                             "default: int8 on a CPU with a native bfloat16 path, else fast), all for "
                             "Nexus-family models; onnx or onnx_int8 (ONNX Runtime, float or int8 products, one "
                             "batch-1 call per sample); int8 and the onnx backends run on the CPU (--device auto "
                             "means cpu then)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        from crossmodal_ros.checkpoint import load_checkpoint
        from crossmodal_ros.paths import default_checkpoint

        ckpt_path = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
        # the int8 path runs on the CPU only: with --device auto it is evaluated there
        cpu_only = args.backend in ("int8", "onnx", "onnx_int8")
        device = resolve_device("cpu" if cpu_only and args.device == "auto" else args.device)
        dataset = args.data.split(":")[0]
        inst_path = Path(args.instruments) if args.instruments else default_instruments_path(dataset)
        print(f"loading model {ckpt_path} on {device} ...", flush=True)
        model, codecs, meta = load_checkpoint(ckpt_path, device)
        requested = args.backend
        if args.backend == "int8_auto":  # as FusionEngine resolves it for the node
            from crossmodal_ros.engine import resolve_int8_auto
            from crossmodal_ros.models.fast import FastNexus

            args.backend = resolve_int8_auto(device, False, model) if FastNexus.supports(model.eval()) else "reference"
        if args.backend in ("onnx", "onnx_int8"):
            model = OnnxPathModel(model, weights="int8" if args.backend == "onnx_int8" else "float")
        elif args.backend != "reference":
            try:
                model = FastPathModel(model, weights="int8" if args.backend == "int8" else "float")
            except EvaluationError as exc:
                if requested != "int8_auto":
                    raise
                print(f"warning: backend int8_auto: the int8 path is not usable here ({exc}); evaluating the "
                      "fast path", file=sys.stderr)
                args.backend = "fast"
                model = FastPathModel(model)
        if requested == "int8_auto":
            print(f"backend int8_auto: {args.backend} on this {device.type}", flush=True)
        instruments = Instruments.load(inst_path, device)
        if instruments.dataset and instruments.dataset != dataset:
            print(f"warning: instruments were trained on {instruments.dataset!r}, evaluating on {dataset!r}",
                  file=sys.stderr)
        print(f"loading {args.data} {args.split} ...", flush=True)
        tensors = limit_tensors(load_eval_tensors(args.data, args.split, codecs), args.limit)
        print(f"judges: {inst_path} ({instruments.dataset}); stored test accuracy: "
              + ", ".join(f"{m} {100 * a:.1f}%" for m, a in instruments.test_accuracy.items()), flush=True)
        result = evaluate_model(model, tensors, instruments, batch_size=args.batch_size, sample=args.sample,
                                seed=args.seed, device=device,
                                keep_samples=0 if args.no_plots else args.plot_samples,
                                progress=lambda s: print(s, flush=True))
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - checkpoint/data errors carry their own message
        if type(exc).__name__ in ("CheckpointError", "CodecError", "DatasetError", "ModelInputError"):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    out = Path(args.out) if args.out else default_out(ckpt_path, args, parser, requested, str(device))
    header = {"checkpoint": ckpt_path.name, "model kind": getattr(model, "kind", "?"),
              **({"inference path": args.backend} if args.backend != "reference" else {}),
              **({"backend requested": requested} if requested != args.backend else {}),
              "data": f"{args.data} ({args.split} split{', first %d' % args.limit if args.limit else ''})",
              "instruments": inst_path.name}
    real = {m: tensors[m][:args.plot_samples] for m in result["modalities"]}
    written = write_outputs(result, out, header=header, plots=not args.no_plots, real=real, plot_n=args.plot_samples)
    print()
    print(results_markdown(result, header).split("## Per subset")[0].rstrip())
    print(f"\nevaluation took {result['seconds']:.1f} s; wrote {len(written)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
