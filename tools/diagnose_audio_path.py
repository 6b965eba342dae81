# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Why a checkpoint's generated audio fails: per digit class, how the sound generated from the
label alone is judged, and how the sound decoded from the class's *mean* audio latent is judged.

Usage::

    python tools/diagnose_audio_path.py runs/a/best.pt [MORE.pt ...] [--split val] [--limit N]
        [--second-judges K [--results DIR,... [--labels NAME,...]]] [--out FILE.md]

For each checkpoint (any kind with a bottom sound VAE: Nexus, MMVAE, MMVAE+, ...):

* **label -> audio**: the model's ``infer`` with only the one-hot label of each ``--split`` sample
  given; the shipped audio judge classifies the generated mel; accuracy per class and the class
  its wrong samples were most often heard as;
* **class-mean latent**: the bottom sound VAE's latent means of the *training-split* recordings
  are averaged per class, decoded by the sound VAE and judged: the probability the judge gives
  the true class. A model that predicts the conditional mean of the audio latent from a label
  (the top-level reconstruction does) can at best reproduce this sound; a value near or below
  0.5 means the class's average latent sits between two words ("seven" between "six" and "two").

What issue 15's comparison runs showed with it: ``docs/results/audio_path/README.md``. Prints
Markdown tables; ``--out`` writes them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crossmodal_ros.checkpoint import load_checkpoint  # noqa: E402
from crossmodal_ros.evaluation.evaluate import class_breakdown, limit_tensors, load_eval_tensors  # noqa: E402
from crossmodal_ros.evaluation.instruments import Instruments  # noqa: E402

N_CLASSES = 10


def class_mean_latents(model, audio: torch.Tensor, y: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """(10, D): per class, the mean of the bottom sound VAE's latent means of ``audio``."""
    with torch.inference_mode():
        mu = torch.cat([model.bottom.encode("audio", audio[i:i + batch])[0] for i in range(0, len(audio), batch)])
    missing = [k for k in range(N_CLASSES) if not bool((y == k).any())]
    if missing:
        raise ValueError(f"no training recording of classes {missing}")
    return torch.stack([mu[y == k].mean(0) for k in range(N_CLASSES)])


def diagnose(model, judge: Instruments, train: dict, held: dict, batch: int = 256) -> list[dict]:
    """Per class: ``label_to_audio`` accuracy, ``heard_as`` (most frequent wrong class or None),
    ``mean_latent_p`` (judge probability of the true class for the decoded class-mean latent).
    """
    if not hasattr(model, "bottom") or "audio" not in getattr(model, "modalities", ()):
        raise ValueError(f"{type(model).__name__} has no bottom sound VAE to diagnose")
    ytr, y = train["y"].long(), held["y"].long()
    means = class_mean_latents(model, train["audio"].float(), ytr)
    with torch.inference_mode():
        probs = judge.classify("audio", model.bottom.decode("audio", means)).softmax(1)
        gen = torch.cat([model.infer({"label": held["label"][i:i + batch].float()})["audio"]
                         for i in range(0, len(y), batch)])
    acc, heard, _ = class_breakdown(judge.predict("audio", gen), y)
    return [{"class": k, "label_to_audio": acc.get(str(k)), "heard_as": heard.get(str(k)),
             "mean_latent_p": float(probs[k, k])} for k in range(N_CLASSES)]


def second_judges(train: dict, val: dict, count: int, epochs: int = 6, log=None) -> list:
    """``count`` sound recognisers of the judges' architecture (:class:`SoundClassifier`), trained
    here on the training split's mels with seeds 1..count (best ``val`` epoch kept): listeners
    independent of the shipped judge, to tell a sound that is wrong from one that one network hears
    wrong.
    """
    from crossmodal_ros.evaluation.instruments import SoundClassifier
    from crossmodal_ros.evaluation.train_instruments import train_classifier

    nets = []
    for seed in range(1, count + 1):
        torch.manual_seed(seed)
        net = SoundClassifier()
        train_classifier(net, "audio", (train["audio"].float(), train["y"].long()),
                         (val["audio"].float(), val["y"].long()), epochs=epochs, batch_size=128, seed=seed,
                         log=log or (lambda _s: None))
        nets.append(net.eval())
    return nets


def generated_audio_accuracy(model, judge: Instruments, others: list, held: dict, batch: int = 256) -> dict:
    """Audio generated from each single given modality, judged by the shipped judge and by each of
    ``others``: ``{given: {"judge": acc, "others": [acc, ...]}}``.
    """
    y = held["y"].long()
    out = {}
    for given in ("image", "trajectory", "label"):
        if given not in model.modalities:
            continue
        with torch.inference_mode():
            gen = torch.cat([model.infer({given: held[given][i:i + batch].float()})["audio"]
                             for i in range(0, len(y), batch)])
            out[given] = {"judge": float((judge.predict("audio", gen) == y).float().mean()),
                          "others": [float((net(gen).argmax(1) == y).float().mean()) for net in others]}
    return out


def rescore_audio_rows(model, result: dict, held: dict, others: list, batch: int = 256, judge=None) -> dict:
    """Re-judge the audio rows of a ``crossmodal-eval`` result (``results.json`` of the same model
    on the same split) with the recognisers ``others`` (mean of their accuracies per row); the
    other rows keep the shipped judges' accuracy. Returns ``{"mean_cross": shipped mean,
    "mean_cross_rescored", "audio_rows": shipped mean of the audio rows, "audio_rows_rescored"}``.

    With ``judge`` (the shipped instruments) the regenerated audio is also judged by it and must
    reproduce each row's recorded accuracy: a result folder of another checkpoint or split fails
    with ValueError instead of mixing two models' numbers.
    """
    y = held["y"].long()
    if int(result.get("n_samples", len(y))) != len(y):
        raise ValueError(f"the result has {result.get('n_samples')} samples, the split {len(y)}")
    cross = [r for r in result["rows"] if r["kind"] == "cross"]
    audio = [r for r in cross if r["target"] == "audio"]
    if not audio:
        raise ValueError("the result has no cross-modal audio rows")
    new = {}
    for r in audio:
        with torch.inference_mode():
            inputs = {m: held[m] for m in r["given"]}
            gen = torch.cat([model.infer({m: v[i:i + batch].float() for m, v in inputs.items()})["audio"]
                             for i in range(0, len(y), batch)])
            accs = [float((net(gen).argmax(1) == y).float().mean()) for net in others]
            if judge is not None:
                own = float((judge.predict("audio", gen) == y).float().mean())
                if abs(own - r["accuracy"]) > 1.5 / len(y):
                    raise ValueError(f"row {r['given_name']} -> audio: the judge gives {100 * own:.2f} % on this "
                                     f"model's audio, the result folder {100 * r['accuracy']:.2f} %: not this "
                                     "checkpoint's evaluation on this split")
        new[r["given_name"]] = sum(accs) / len(accs)
    rescored = [new[r["given_name"]] if r["target"] == "audio" else r["accuracy"] for r in cross]
    return {"mean_cross": sum(r["accuracy"] for r in cross) / len(cross),
            "mean_cross_rescored": sum(rescored) / len(rescored),
            "audio_rows": sum(r["accuracy"] for r in audio) / len(audio),
            "audio_rows_rescored": sum(new.values()) / len(new)}


def mean_std_cell(values: list[float]) -> str:
    """``mean ± std`` (sample std) with two decimals; a single value alone."""
    import statistics

    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--split", default="val", choices=("val", "test"),
                   help="samples whose labels are given (default val; choose recipes on it, not on test)")
    p.add_argument("--limit", type=int, default=0, help="first N samples of each split (default all)")
    p.add_argument("--second-judges", type=int, default=0, metavar="K",
                   help="also train K independent sound recognisers (about 20 s each) and judge the audio "
                        "generated from each single modality with them and with the shipped judge")
    p.add_argument("--results", default=None, metavar="DIR[,DIR...]",
                   help="with --second-judges: the crossmodal-eval folders of the checkpoints (same order, same "
                        "--split); their audio rows are re-judged by the other recognisers and the mean recomputed")
    p.add_argument("--labels", default=None, metavar="NAME[,NAME...]",
                   help="with --results: one label per checkpoint (e.g. the method); the means of the checkpoints "
                        "that share a label are summarised as mean +- std (seeds)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    results = a.results.split(",") if a.results else []
    if results and (len(results) != len(a.checkpoints) or a.second_judges <= 0):
        p.error("--results needs --second-judges and one folder per checkpoint")
    labels = a.labels.split(",") if a.labels else []
    if labels and (not results or len(labels) != len(a.checkpoints)):
        p.error("--labels needs --results and one label per checkpoint")
    torch.set_num_threads(1)
    judge = Instruments.load()
    train = limit_tensors(load_eval_tensors("digits", "train"), a.limit)
    held = limit_tensors(load_eval_tensors("digits", a.split), a.limit)
    lines = [f"Audio generated from the label alone, judged per class on the {len(held['y']):,} `{a.split}` samples, "
             f"and the judge's probability of the true class for the decoded class-mean audio latent of the "
             f"{len(train['y']):,} training-split samples (`tools/diagnose_audio_path.py`). Cells: label -> audio "
             "accuracy % (heard as) / p(class-mean latent).", "",
             "| checkpoint | " + " | ".join(str(k) for k in range(N_CLASSES)) + " |",
             "|---|" + "---|" * N_CLASSES]
    models = {}
    for path in a.checkpoints:
        model = models[path] = load_checkpoint(path)[0].float().eval()
        try:
            rows = diagnose(model, judge, train, held)
        except ValueError as exc:
            p.error(f"{path}: {exc}")
        cells = []
        for r in rows:
            acc = "–" if r["label_to_audio"] is None else f"{100 * r['label_to_audio']:.0f}"
            heard = "" if r["heard_as"] is None or (r["label_to_audio"] or 0) >= 0.5 else f" ({r['heard_as']})"
            cells.append(f"{acc}{heard} / {r['mean_latent_p']:.2f}")
        lines.append(f"| `{path.parent.name}/{path.name}` | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    if a.second_judges > 0:
        val = limit_tensors(load_eval_tensors("digits", "val"), a.limit)
        others = second_judges(train, val, a.second_judges, log=None)
        with torch.inference_mode():
            real = [float((net(held["audio"].float()).argmax(1) == held["y"]).float().mean()) for net in others]
        lines += ["", f"Audio generated from one given modality, judged on the {len(held['y']):,} `{a.split}` "
                  f"samples by the shipped judge and by {a.second_judges} sound recognisers of the same architecture "
                  f"trained here on the training split (seeds 1..{a.second_judges}; on the real `{a.split}` mels "
                  "they score " + ", ".join(f"{100 * r:.1f}" for r in real) + " %). Cells: accuracy %, "
                  "shipped judge / other recognisers (mean, min-max).", "",
                  "| checkpoint | image -> audio | trajectory -> audio | label -> audio |", "|---|---|---|---|"]
        for path, model in models.items():
            res = generated_audio_accuracy(model, judge, others, held)
            cells = []
            for given in ("image", "trajectory", "label"):
                r = res.get(given)
                if r is None:
                    cells.append("–")
                    continue
                o = r["others"]
                cells.append(f"{100 * r['judge']:.1f} / {100 * sum(o) / len(o):.1f} "
                             f"({100 * min(o):.1f}-{100 * max(o):.1f})")
            lines.append(f"| `{path.parent.name}/{path.name}` | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    if results:
        lines += ["", f"Mean cross-modal accuracy (all 28 subset x target pairs, `{a.split}`) from each checkpoint's "
                  "`crossmodal-eval` result with the shipped judges, and the same with its 7 audio rows judged by "
                  f"the {a.second_judges} other recognisers (mean over them); the audio rows' own mean beside it.", "",
                  "| checkpoint | mean, shipped judges | mean, audio re-judged | audio rows, shipped judge | "
                  "audio rows, re-judged |", "|---|---|---|---|---|"]
        rescored = []
        for (path, model), folder in zip(models.items(), results):
            result = json.loads((Path(folder) / "results.json").read_text())
            data = str(result.get("header", {}).get("data", ""))
            if data and f"({a.split} split" not in data:
                p.error(f"{folder}: evaluated on {data!r}, not the {a.split} split")
            try:
                r = rescore_audio_rows(model, result, held, others, judge=judge)
            except ValueError as exc:
                p.error(f"{folder}: {exc}")
            lines.append(f"| `{path.parent.name}/{path.name}` | {100 * r['mean_cross']:.2f} | "
                         f"{100 * r['mean_cross_rescored']:.2f} | {100 * r['audio_rows']:.2f} | "
                         f"{100 * r['audio_rows_rescored']:.2f} |")
            print(lines[-1], flush=True)
            rescored.append(r)
        if labels:
            lines += ["", "Per label, mean ± std over its checkpoints (seeds; sample std):", "",
                      "| label | seeds | mean, shipped judges | mean, audio re-judged | audio rows, shipped judge | "
                      "audio rows, re-judged |", "|---|---|---|---|---|---|"]
            for name in dict.fromkeys(labels):
                group = [r for r, lab in zip(rescored, labels) if lab == name]
                cells = [mean_std_cell([100 * r[k] for r in group])
                         for k in ("mean_cross", "mean_cross_rescored", "audio_rows", "audio_rows_rescored")]
                lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
