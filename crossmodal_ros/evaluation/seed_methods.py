# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Experiments of the three seed papers on the digits data, and the results page.

    python -m crossmodal_ros.evaluation.seed_methods --out runs/seed_methods [--device auto]
        [--vae-epochs N] [--assoc-epochs N] [--align-epochs B M F] [--lc-epochs N]
        [--nexus models/nexus_digits.pt] [--ship models] [--report docs/results/seed_methods.md]

Runs, in order, writing ``<out>/results.json`` after every stage (a cut-off run keeps what it
finished):

1. associator network (Jo et al. 2019) on image, audio, trajectory: unimodal VAEs unpaired, then
   the associators of every pair with 100 / 10 / 5 / 1 % of the pairs (the VAEs always see
   all data; a smaller paired set is tiled to the same number of optimizer steps per epoch);
   accuracy + Frechet distance of every direction (shared evaluator, one given modality),
   the cascade audio->trajectory->image vs the direct associator, and the new-modality test;
2. variational alignment (Theodoridis et al. 2020) image->trajectory and audio->image, three phases,
   with the ablation routes (no mapper) and the mean end-point error for trajectories;
3. latent-constraint mapping (Chaudhury et al. 2017) for every pair, reusing the stage-1 VAEs as the
   embeddings (identical architecture and unpaired objective), PSNR of audio->image against
   the nearest test image (Chaudhury et al. 2017's metric) for every system;
4. Nexus restricted to single inputs, when its checkpoint exists;
then ships the best pair model of each kind (float16) and writes the Markdown page + PNG.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch

from crossmodal_ros.checkpoint import load_checkpoint, save_checkpoint
from crossmodal_ros.evaluation.evaluate import evaluate_model, resolve_device
from crossmodal_ros.evaluation.instruments import Instruments
from crossmodal_ros.evaluation.metrics import accuracy
from crossmodal_ros.models import build_model
from crossmodal_ros.models.phased import TrainingPhase
from crossmodal_ros.training.train import TRAIN_DEFAULTS, load_tensors, run_phase, split_train_val

PAIRS = [("image", "audio"), ("audio", "trajectory"), ("image", "trajectory")]
FRACTIONS = [1.0, 0.1, 0.05, 0.01]
#: (KL weight, batch size, lr) settings of the VAE tuning probe (stage ``vae_probe``)
PROBE = [(1.0, 64, 1e-3), (0.1, 64, 1e-3), (0.02, 64, 1e-3), (0.1, 16, 1e-3), (1.0, 32, 3e-3), (0.1, 32, 3e-3)]
ALIGN_PAIRS = [("image", "trajectory"), ("audio", "image")]
MODS3 = ["image", "audio", "trajectory"]


def tiled_subset(train: dict, fraction: float) -> dict:
    """First ``ceil(fraction*N)`` samples of the (shuffled) train dict, tiled to ~N rows so a
    small paired set gets as many optimizer steps per epoch as the full one.
    """
    n = next(iter(train.values())).shape[0]
    k = min(n, max(2, math.ceil(fraction * n)))
    reps = max(1, n // k)
    return {key: v[:k].repeat(reps, *([1] * (v.dim() - 1))) for key, v in train.items()}


def endpoint_error(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean end-point error of (N, 200) trajectories (x1..x100, y1..y100) in the normalised space."""
    p, t = pred.view(-1, 2, 100), true.view(-1, 2, 100)
    return float((p - t).pow(2).sum(1).sqrt().mean())


def nearest_psnr(generated: torch.Tensor, reference: torch.Tensor, max_value: float = 1.0, chunk: int = 512) -> float:
    """Chaudhury et al. 2017's metric: PSNR of each generated image against its nearest (Euclidean) reference
    image, ``10 log10(max^2 / MSE)`` with the per-pixel mean squared error, averaged in dB.
    """
    g, r = generated.flatten(1).float(), reference.flatten(1).float()
    vals = []
    for i in range(0, g.shape[0], chunk):
        d = torch.cdist(g[i:i + chunk], r).pow(2).min(1).values / g.shape[1]
        vals.append(10 * torch.log10(max_value ** 2 / d.clamp_min(1e-12)))
    return float(torch.cat(vals).mean())


def direction_rows(result: dict) -> dict:
    """``{"a->b": {"accuracy", "frechet"}}`` from an ``evaluate_model`` result (cross rows, one given)."""
    out = {}
    for r in result["rows"]:
        if r["kind"] == "cross" and r["n_given"] == 1 and r["target"] != "label":
            out[f"{r['given'][0]}->{r['target']}"] = {"accuracy": r["accuracy"], "frechet": r["frechet"]}
    return out


class Runner:
    """Runs the training and evaluation of every method and seed, resuming finished runs."""

    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.dev = resolve_device(args.device)
        prev = self.out / "results.json"
        # a partial rerun (e.g. --stages nexus) updates the earlier results instead of dropping them
        self.results: dict = json.loads(prev.read_text()) if prev.is_file() else {
            "config": {k: v for k, v in vars(args).items()}, "device": str(self.dev), "timings": {}}
        torch.manual_seed(0)
        tensors, self.codecs = load_tensors(args.data, "train")
        self.train, self.val = split_train_val(tensors, 0.1, 0, args.limit_train or None)
        self.train = {k: v.to(self.dev) for k, v in self.train.items()}
        self.val = {k: v.to(self.dev) for k, v in self.val.items()}
        test, _ = load_tensors(args.data, "test")
        if args.limit_test:
            test = {k: v[:args.limit_test] for k, v in test.items()}
        self.test = test
        self.judges = Instruments.load(None, "cpu")
        self.tcfg = {**TRAIN_DEFAULTS, "batch_size": args.batch_size, "lr": args.lr}
        self.gen = torch.Generator().manual_seed(0)
        self.assoc_beta = args.vae_beta if args.assoc_beta is None else args.assoc_beta

    def log(self, s):
        print(s, file=sys.stderr, flush=True)

    def save(self):
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1, default=str))

    def phase(self, model, name, epochs, train=None):
        t0 = time.time()
        run_phase(model, TrainingPhase(name, epochs, model.phase_modules(name), 1.0, f"{model.kind}: {name}"),
                  train or self.train, self.val, self.tcfg, self.dev, self.gen, quiet=True, log=self.log)
        return time.time() - t0

    def evaluate(self, model, subsets, frechet=True):
        model.unfreeze()
        model.eval()
        res = evaluate_model(model, self.test, self.judges, subsets=subsets, frechet=frechet, device=self.dev,
                             progress=None)
        return direction_rows(res)

    # ------------------------------------------------------------------ Jo et al. 2019
    def associator(self):
        a = self.args
        cfg = {"modalities": MODS3, "latent_dims": {"image": 64, "audio": 64, "trajectory": 16, "label": 5},
               "vae_beta": a.vae_beta, "assoc_beta": self.assoc_beta}
        base = build_model("associator", cfg).to(self.dev)
        t = self.phase(base, "vaes", a.vae_epochs)
        self.results["timings"]["associator_vaes_s"] = round(t, 1)
        self.vae_state = {k: v.clone() for k, v in base.vaes.state_dict().items()}
        # VAE self-reconstruction accuracy (paper Table 2)
        self.results["vae_self_accuracy"] = self.self_accuracy(base, self.test)
        curve = {}
        models = {}
        for f in FRACTIONS:
            model = copy.deepcopy(base)
            model.config["paired_fraction"] = f
            t = self.phase(model, "associators", a.assoc_epochs, tiled_subset(self.train, f) if f < 1 else None)
            rows = self.evaluate(model, [(m,) for m in MODS3], frechet=(f == 1.0))
            curve[str(f)] = rows
            models[f] = model
            self.results["timings"][f"associator_assoc_{f}_s"] = round(t, 1)
            self.log(f"associator {f:.0%} pairs: " + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in rows.items()))
            self.results["associator_curve"] = curve
            self.save()
        full = models[1.0]
        self.assoc_full = full
        # cascade vs direct
        casc = {}
        for path in (["audio", "image"], ["audio", "trajectory", "image"], ["trajectory", "audio"],
                     ["trajectory", "image", "audio"], ["image", "audio"], ["image", "trajectory", "audio"]):
            gen = torch.cat([full.translate(x.to(self.dev), path).cpu() for x in self.test[path[0]].split(512)])
            casc["->".join(path)] = accuracy(self.judges.classify(path[-1], gen), self.test["y"])
        self.results["associator_cascade"] = casc
        # new modality: trajectory joined to the image/audio network by one image<->trajectory associator
        added = build_model("associator", {**cfg, "pairs": [["image", "audio"], ["image", "trajectory"]]}).to(self.dev)
        state = {k: v for k, v in full.state_dict().items() if k in added.state_dict()}
        added.load_state_dict(state)
        self.results["associator_new_modality"] = self.evaluate(added, [(m,) for m in MODS3], frechet=False)
        self.save()

    def self_accuracy(self, model, test):
        """Judge accuracy on each VAE's reconstruction (posterior means) of the test data."""
        model.eval()
        with torch.no_grad():
            return {m: accuracy(self.judges.classify(m, torch.cat([model.vaes[m].decoder(model.vaes[m].encoder(
                        x.to(self.dev))[0]).cpu() for x in test[m].split(512)])), test["y"]) for m in MODS3}

    def vae_probe(self):
        """The tuning probe behind the KL-weight choice: the three unimodal VAEs trained for
        ``--probe-epochs`` on the first 2700 training samples with each (KL weight, batch, lr) of
        PROBE, self-reconstruction accuracy on the first 1000 test samples.
        """
        sub = {k: v[:2700] for k, v in self.train.items()}
        test = {k: v[:1000] for k, v in self.test.items()}
        out = self.results.setdefault("vae_probe", {"epochs": self.args.probe_epochs, "train": 2700, "test": 1000,
                                                    "runs": []})
        out["runs"] = []
        for beta, bs, lr in PROBE:
            torch.manual_seed(0)
            model = build_model("associator", {"modalities": MODS3, "vae_beta": beta, "latent_dims": {
                "image": 64, "audio": 64, "trajectory": 16, "label": 5}}).to(self.dev)
            t0 = time.time()
            run_phase(model, TrainingPhase("vaes", self.args.probe_epochs, model.phase_modules("vaes"), 1.0, "probe"),
                      sub, self.val, {**self.tcfg, "batch_size": bs, "lr": lr}, self.dev,
                      torch.Generator().manual_seed(0), quiet=True, log=self.log)
            acc = self.self_accuracy(model, test)
            out["runs"].append({"vae_beta": beta, "batch_size": bs, "lr": lr, "self_accuracy": acc,
                                "time_s": round(time.time() - t0, 1)})
            self.log(f"probe beta {beta} batch {bs} lr {lr}: {acc}")
            self.save()

    # ------------------------------------------------------------------ Theodoridis et al. 2020
    def alignment(self):
        a = self.args
        out = {}
        self.align_models = {}
        for s, t in ALIGN_PAIRS:
            kl = dict(zip(("branch", "target", "mapper"), a.align_kl))
            model = build_model("alignment", {"source": s, "target": t, "kl_weights": kl}).to(self.dev)
            times = {p: self.phase(model, p, e) for p, e in zip(model.PHASES, a.align_epochs)}
            rows = self.evaluate(model, [(s,), (t,)])
            model.eval()
            abl = {}
            for route in ("mapper", "branch", "swap"):
                gen = torch.cat([model.translate(x.to(self.dev), route).cpu() for x in self.test[s].split(512)])
                abl[route] = {"accuracy": accuracy(self.judges.classify(t, gen), self.test["y"])}
                if t == "trajectory":
                    abl[route]["epe"] = endpoint_error(gen, self.test["trajectory"])
            out[f"{s}->{t}"] = {"rows": rows, "ablation": abl, "times_s": {k: round(v, 1) for k, v in times.items()}}
            self.align_models[(s, t)] = model
            self.log(f"alignment {s}->{t}: {rows} {abl}")
            self.results["alignment"] = out
            self.save()

    # ------------------------------------------------------------------ Chaudhury et al. 2017
    def latent_constraint(self):
        out = {}
        self.lc_models = {}
        for pair in PAIRS:
            anchor = next(m for m in pair if m in ("image", "audio"))
            model = build_model("latent_constraint", {"modalities": list(pair), "anchor": anchor, "common_dim": 64,
                                                      "vae_beta": self.args.vae_beta,
                                                      "latent_dims": {"image": 64, "audio": 64, "trajectory": 16,
                                                                      "label": 5}}).to(self.dev)
            # the embeddings are the associator's unpaired VAEs (same networks, same objective)
            model.vaes.load_state_dict({k: v for k, v in self.vae_state.items() if k.split(".")[0] in pair})
            t = self.phase(model, "mapping", self.args.lc_epochs)
            out["+".join(pair)] = {"rows": self.evaluate(model, [(m,) for m in model.modalities]), "time_s": round(t,
                                                                                                                   1)}
            self.lc_models[pair] = model
            self.results["latent_constraint"] = out
            self.save()

    # ------------------------------------------------------------------ PSNR, Nexus
    def psnr(self):
        ref = self.test["image"]
        sel = torch.arange(0, ref.shape[0])

        def gen_from_audio(model):
            model.eval()
            with torch.no_grad():
                return torch.cat([model.infer({"audio": x.to(self.dev)})["image"].cpu()
                                  for x in self.test["audio"][sel].split(512)])

        psnr = {"latent_constraint": nearest_psnr(gen_from_audio(self.lc_models[("image", "audio")]), ref),
                "associator": nearest_psnr(gen_from_audio(self.assoc_full), ref),
                "alignment": nearest_psnr(gen_from_audio(self.align_models[("audio", "image")]), ref)}
        if getattr(self, "nexus", None) is not None:
            psnr["nexus"] = nearest_psnr(gen_from_audio(self.nexus), ref)
        self.results["psnr_audio_to_image"] = psnr
        self.save()

    def nexus_eval(self):
        path = Path(self.args.nexus)
        self.nexus = None
        if not path.is_file():
            self.results["nexus"] = None
            self.log(f"no Nexus checkpoint at {path}: its rows stay empty")
            return
        model, _, _ = load_checkpoint(path, self.dev)
        self.nexus = model
        res = evaluate_model(model, self.test, self.judges, subsets=[(m,) for m in MODS3], device=self.dev,
                             progress=None)
        self.results["nexus"] = {k: v for k, v in direction_rows(res).items() if k.split("->")[1] in MODS3}
        self.save()

    # ------------------------------------------------------------------ shipping
    def ship(self):
        if not self.args.ship:
            return
        ship = Path(self.args.ship)
        shipped = {}
        curve = self.results["associator_curve"]["1.0"]
        best = max(PAIRS, key=lambda p: (curve[f"{p[0]}->{p[1]}"]["accuracy"] + curve[f"{p[1]}->{p[0]}"]["accuracy"]))
        cfg = {**self.assoc_full.config, "modalities": list(best), "pairs": [], "paired_fraction": 1.0}
        pair_model = build_model("associator", cfg)
        pair_model.load_state_dict({k: v for k,
                                    v in self.assoc_full.state_dict().items() if k in pair_model.state_dict()})
        kinds = {"associator": (pair_model, best)}
        al = self.results["alignment"]
        s, t = max(ALIGN_PAIRS, key=lambda p: al[f"{p[0]}->{p[1]}"]["rows"][f"{p[0]}->{p[1]}"]["accuracy"])
        kinds["alignment"] = (self.align_models[(s, t)], (s, t))
        lc = self.results["latent_constraint"]
        bp = max(PAIRS, key=lambda p: sum(v["accuracy"] for v in lc["+".join(p)]["rows"].values()))
        kinds["latent_constraint"] = (self.lc_models[bp], bp)
        for kind, (model, pair) in kinds.items():
            model.unfreeze()
            path = ship / f"{kind}_{'_'.join(pair)}.pt"
            save_checkpoint(path, model.cpu(), self.codecs, metrics={}, train_state={"data": self.args.data,
                            "script": "crossmodal_ros.evaluation.seed_methods"}, half=True)
            shipped[kind] = {"path": str(path), "pair": list(pair), "bytes": path.stat().st_size}
        self.results["shipped"] = shipped
        self.save()


# --------------------------------------------------------------------------- report
NOTES_MARKER = "<!-- hand-written notes below: kept when the page is regenerated -->"

def _p(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _f(v) -> str:
    return "–" if v is None else f"{v:.1f}"


def _kl_sentence(cfg: dict) -> str:
    """The KL weights of the run, and whether they differ from the papers' weight 1."""
    beta = float(cfg.get("vae_beta", 1.0))
    assoc = float(cfg["assoc_beta"]) if cfg.get("assoc_beta") is not None else beta
    align = [float(x) for x in cfg.get("align_kl", [1.0, 1.0, 1.0])]
    text = (f"KL weights: unimodal VAEs / embeddings {beta:g}, associators {assoc:g}, alignment (branch, "
            f"target, mapper) {', '.join(f'{x:g}' for x in align)}")
    changed = [w for w in [beta, assoc, *align] if w != 1.0]
    if changed:
        return text + "; **differs from the papers** (weight 1), with the sum-of-squares reconstruction kept."
    return text + ", as in the papers."


def _probe_sentence(runs: list, cfg: dict) -> str:
    """What the KL-weight probe measured: the best and worst image accuracy and the setting used."""
    if not runs:
        return "The probe has no runs."

    def setting(r):
        return f"KL weight {r['vae_beta']}, batch {r['batch_size']}, lr {r['lr']}"

    ranked = sorted(runs, key=lambda r: r["self_accuracy"]["image"])
    best, worst = ranked[-1], ranked[0]
    text = f"Image accuracy is highest with {setting(best)} ({_p(best['self_accuracy']['image'])} %)"
    if worst is not best:
        text += f" and lowest with {setting(worst)} ({_p(worst['self_accuracy']['image'])} %)"
    used = [r for r in runs if (r["vae_beta"], r["batch_size"], r["lr"])
            == (cfg.get("vae_beta"), cfg.get("batch_size"), cfg.get("lr"))]
    text += ". The full run uses " + (f"the setting of the row {setting(used[0])}." if used
                                      else "a setting the probe did not try.")
    return text


def write_report(results: dict, md_path, png_path=None) -> str:
    """The results page (Markdown) and the semi-supervised curve (PNG) from ``results.json``.

    Only what the run measured is written; a stage that did not run is marked as such.
    """
    cfg, t = results["config"], results.get("timings", {})
    L = ["# The seed papers' systems on the digits data", "",
         "Generated by `python -m crossmodal_ros.evaluation.seed_methods` (numbers below are from "
         f"`{cfg.get('out')}/results.json`). Device: {results.get('device')}; "
         f"VAE/embedding epochs {cfg.get('vae_epochs')}, associator epochs {cfg.get('assoc_epochs')}, "
         f"alignment epochs (branches, mapper, finetune) {cfg.get('align_epochs')}, latent-constraint mapping "
         f"epochs {cfg.get('lc_epochs')}; total wall time {t.get('total_s', '(run cut off)')} s.", "",
         f"Optimiser: Adam, batch {cfg.get('batch_size')}, lr {cfg.get('lr')}. " + _kl_sentence(cfg), "",
         "Metrics: cross-modal accuracy (%) of the shipped judges (`models/instruments_digits.pt`) on "
         "the generated modality, and the per-class Modality Frechet distance (MFD, lower is better), "
         "from the shared evaluator (`evaluate_model`, one given modality, test split).", ""]
    nexus = results.get("nexus")
    curve = results.get("associator_curve", {})
    full = curve.get("1.0", {})
    lc = results.get("latent_constraint", {})
    al = results.get("alignment", {})

    def lc_row(d):
        for v in lc.values():
            if d in v["rows"]:
                return v["rows"][d]
        return None

    def al_row(d):
        for v in al.values():
            if d in v["rows"]:
                return v["rows"][d]
        return None

    L += ["## Every pair direction", "",
          "| direction | Nexus acc | Nexus MFD | associator acc | associator MFD | alignment acc | alignment MFD "
          "| latent-constraint acc | latent-constraint MFD |", "|---|---|---|---|---|---|---|---|---|"]
    dirs = [f"{a}->{b}" for a in MODS3 for b in MODS3 if a != b]
    for d in dirs:
        n = (nexus or {}).get(d) if nexus else None
        a, g, c = full.get(d), al_row(d), lc_row(d)
        cells = []
        for r in (n, a, g, c):
            cells += [_p(r["accuracy"]) if r else "–", _f(r["frechet"]) if r and r.get("frechet") is not None else "–"]
        L.append(f"| {d} | " + " | ".join(cells) + " |")
    if nexus is None:
        L += ["", "The Nexus columns are empty: this run has no Nexus results (stage `nexus`)."]
    if al:
        forward = [k.replace("+", "->") for k in al]
        L += ["", f"Alignment rows {', '.join(forward)} are the method (mapper); the reverse directions go "
              "through our reverse decoder (not in the paper)."]
    L.append("")
    if "vae_self_accuracy" in results:
        L += ["Unimodal VAE self-reconstruction accuracy (Jo et al. 2019, Table 2 analogue): " +
              ", ".join(f"{m} {_p(v)}" for m, v in results["vae_self_accuracy"].items()), ""]
    if "vae_probe" in results:
        pr = results["vae_probe"]
        L += ["## Tuning: KL weight of the unimodal VAEs (stage `vae_probe`)", "",
              f"The three unimodal VAEs trained for {pr['epochs']} epochs on the first {pr['train']} training "
              f"samples, self-reconstruction accuracy (%) on the first {pr['test']} test samples (chance is "
              f"10 %). {_probe_sentence(pr['runs'], cfg)}", "",
              "| KL weight | batch | lr | image | audio | trajectory | time s |", "|---|---|---|---|---|---|---|"]
        for r in pr["runs"]:
            a_ = r["self_accuracy"]
            L.append(f"| {r['vae_beta']} | {r['batch_size']} | {r['lr']} | {_p(a_['image'])} | {_p(a_['audio'])} "
                     f"| {_p(a_['trajectory'])} | {r['time_s']} |")
        L.append("")
    if curve:
        L += ["## Associator: semi-supervised curve (Jo et al. 2019, Fig. 6)", "",
              "Associators trained with a fraction of the training pairs (the VAEs always used all data, "
              "unpaired); smaller paired sets tiled to the same number of optimizer steps per epoch. Accuracy %.", "",
              "| direction | " + " | ".join(f"{float(f):.0%} pairs" for f in curve) + " |",
              "|---|" + "---|" * len(curve)]
        for d in dirs:
            L.append(f"| {d} | " + " | ".join(_p(curve[f].get(d, {}).get("accuracy")) for f in curve) + " |")
        L += ["", "![semi-supervised curve](seed_methods_semi_supervised.png)", ""]
    if "associator_cascade" in results:
        L += ["## Associator: cascade vs direct (Jo et al. 2019, Table 4)", "", "| path | accuracy % |", "|---|---|"]
        L += [f"| {k} | {_p(v)} |" for k, v in results["associator_cascade"].items()]
        L.append("")
    if "associator_new_modality" in results:
        nm = results["associator_new_modality"]
        L += ["## Associator: adding a modality with one new associator (Jo et al. 2019, Sec. 3.4)", "",
              "Network image<->audio plus trajectory joined by a single image<->trajectory associator "
              "(no trajectory-audio associator): trajectory<->audio goes through image.", "",
              "| direction | accuracy % | direct associator % |", "|---|---|---|"]
        L += [f"| {d} | {_p(v['accuracy'])} | {_p(full.get(d, {}).get('accuracy'))} |" for d, v in nm.items()]
        L.append("")
    if al:
        L += ["## Variational alignment: ablation (Theodoridis et al. 2020)", "",
              "Routes from the source on the same trained model: **mapper** (the method), **branch** "
              "D1(E1(x)) (no mapper), **swap** D2(E1(x)) (unaligned latents into the target decoder). "
              "EPE: mean end-point error in the normalised [0,1] trajectory space.", "",
              "| pair | route | accuracy % | EPE |", "|---|---|---|---|"]
        for pair, v in al.items():
            for route, r in v["ablation"].items():
                L.append(f"| {pair} | {route} | {_p(r['accuracy'])} | {r['epe']:.4f} |" if "epe" in r
                         else f"| {pair} | {route} | {_p(r['accuracy'])} | – |")
        L.append("")
    if "psnr_audio_to_image" in results:
        L += ["## PSNR of audio->image (Chaudhury et al. 2017's metric)", "",
              "Per generated image: PSNR (dB, per-pixel MSE, max 1) against its nearest test image "
              "(Euclidean), averaged over the test split.", "", "| system | PSNR dB |", "|---|---|"]
        L += [f"| {k} | {v:.2f} |" for k, v in results["psnr_audio_to_image"].items()]
        L.append("")
    if "shipped" in results:
        L += ["## Shipped checkpoints", "", "| kind | file | pair | size |", "|---|---|---|---|"]
        L += [f"| {k} | `{v['path']}` | {'->'.join(v['pair'])} | {v['bytes'] / 1e6:.2f} MB |"
              for k, v in results["shipped"].items()]
        L.append("")
    L += ["## Timings (s)", "", ", ".join(f"{k} {v}" for k, v in t.items()), ""]
    text = "\n".join(L)
    md_path = Path(md_path)
    # hand-written discussion below the marker survives regeneration
    if md_path.is_file() and NOTES_MARKER in md_path.read_text():
        text = text + "\n" + NOTES_MARKER + md_path.read_text().split(NOTES_MARKER, 1)[1]
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(text)
    if png_path and curve:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        fr = [float(f) for f in curve]
        for d in dirs:
            ax.plot([100 * f for f in fr], [100 * curve[f].get(d, {}).get("accuracy", float("nan")) for f in curve],
                    marker="o", label=d)
        ax.set_xscale("log")
        ax.set_xlabel("paired training samples (%)")
        ax.set_ylabel("cross-modal accuracy (%)")
        ax.set_title("Associator network: semi-supervised")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(png_path, dpi=100)
        plt.close(fig)
    return text


def build_parser():
    """The argument parser of the seed-methods comparison."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/seed_methods")
    p.add_argument("--data", default="digits")
    p.add_argument("--device", default="auto")
    p.add_argument("--vae-epochs", type=int, default=10)
    p.add_argument("--assoc-epochs", type=int, default=10)
    p.add_argument("--align-epochs", type=int, nargs=3, default=[10, 5, 5])
    p.add_argument("--lc-epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--vae-beta", type=float, default=0.1,
                   help="KL weight of the unimodal VAEs (Jo et al. 2019: 1; at 1 the image VAE collapses to the mean "
                        "image within a CPU budget)")
    p.add_argument("--assoc-beta", type=float, default=None, help="KL weight of the associators (default: --vae-beta)")
    p.add_argument("--align-kl", type=float, nargs=3, default=[0.1, 0.1, 0.1],
                   help="alignment KL weights: branch, target, mapper (Theodoridis et al. 2020: 1 1 1)")
    p.add_argument("--limit-test", type=int, default=0)
    p.add_argument("--limit-train", type=int, default=0,
                   help="N training samples only, spread over the split (smoke runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--probe-epochs", type=int, default=3, help="epochs of the vae_probe stage (not run by default)")
    p.add_argument("--nexus", default="models/nexus_digits.pt")
    p.add_argument("--ship", default="", help="directory for the shipped pair checkpoints (empty: none)")
    p.add_argument("--stages", default="associator,alignment,latent_constraint,nexus,psnr,ship")
    p.add_argument("--report", default="", help="write the Markdown page here (and a PNG beside it)")
    p.add_argument("--report-only", default="", help="only (re)write --report from this results.json")
    return p


def main(argv=None) -> int:
    """Command line of the seed-methods comparison."""
    args = build_parser().parse_args(argv)
    if args.report_only:
        res = json.loads(Path(args.report_only).read_text())
        md = Path(args.report or "docs/results/seed_methods.md")
        write_report(res, md, md.with_name(md.stem + "_semi_supervised.png"))
        return 0
    torch.set_num_threads(args.threads)
    t0 = time.time()
    r = Runner(args)
    for stage in args.stages.split(","):
        ts = time.time()
        {"vae_probe": r.vae_probe, "associator": r.associator, "alignment": r.alignment,
         "latent_constraint": r.latent_constraint,
         "nexus": r.nexus_eval, "psnr": r.psnr, "ship": r.ship}[stage]()
        r.results["timings"][f"stage_{stage}_s"] = round(time.time() - ts, 1)
        r.save()
    r.results["timings"]["total_s"] = round(time.time() - t0, 1)
    r.save()
    if args.report:
        md = Path(args.report)
        write_report(r.results, md, md.with_name(md.stem + "_semi_supervised.png"))
    print(json.dumps(r.results["timings"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
