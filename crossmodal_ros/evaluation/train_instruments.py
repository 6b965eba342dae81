# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Train the evaluation judges once on real data and ship them.

    python -m crossmodal_ros.evaluation.train_instruments --data digits --out models/instruments_digits.pt
    (without ``--out``: ``runs/instruments_<dataset>.pt``, so the shipped judges are replaced only on purpose)

For every judged modality (image, audio, trajectory) it trains a classifier (cross-entropy,
light data augmentation, best validation accuracy kept) and a feature auto-encoder (mean
squared error, best validation loss kept) on the real training split, then measures each
classifier's accuracy on the real test split (the paper's Table 2 analogue: the ceiling of the
judge) and stores everything in one plain-tensor checkpoint (see ``instruments.Instruments``).
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
import torch.nn.functional as F
from torch import nn

from crossmodal_ros.evaluation.instruments import DEFAULT_FEATURE_DIM, JUDGED_MODALITIES, Instruments
from crossmodal_ros.evaluation.metrics import EvaluationError, accuracy
from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY

#: Default epochs per (modality, judge kind); early stopping may end sooner.
#: Sized for a shared 2-core CPU (a few minutes in total).
DEFAULT_EPOCHS = {
    (IMAGE, "classifier"): 4, (AUDIO, "classifier"): 20, (TRAJECTORY, "classifier"): 30,
    (IMAGE, "autoencoder"): 5, (AUDIO, "autoencoder"): 12, (TRAJECTORY, "autoencoder"): 30,
}


def distinct_rows(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct samples of ``x`` (first occurrence order) and their labels.

    Datasets that pair many pen samples with fewer recordings repeat each mel several times;
    training the sound judges on the distinct clips gives the same data in fewer steps.
    """
    flat = x.flatten(1)
    keys = {}
    for i in range(flat.shape[0]):
        keys.setdefault(flat[i].numpy().tobytes(), i)
    idx = torch.tensor(sorted(keys.values()), dtype=torch.long)
    return x[idx], y[idx]


# --------------------------------------------------------------------------- augmentation
def augment(modality: str, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light, label-preserving augmentation of a training batch (vectorised, seeded).

    image: random affine (rotation up to 10 degrees, scale 0.9-1.1, shift up to 2 px);
    audio: random time shift up to 3 frames and additive noise; trajectory: additive noise.
    The judges see generated samples later, which are smoother than real ones; the jitter
    keeps them from keying on pixel-exact detail.
    """
    n = x.shape[0]
    if modality == IMAGE:
        ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
        scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.1
        shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 / 14)
        cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    if modality == AUDIO:
        shifts = torch.randint(-3, 4, (n,), generator=gen)
        idx = (torch.arange(x.shape[-1]).unsqueeze(0) - shifts.unsqueeze(1)).clamp(0, x.shape[-1] - 1)
        x = torch.gather(x, 3, idx.view(n, 1, 1, -1).expand_as(x).to(x.device))
        return (x + 0.02 * torch.randn(x.shape, generator=gen).to(x)).clamp(0, 1)
    if modality == TRAJECTORY:
        return (x + 0.01 * torch.randn(x.shape, generator=gen).to(x)).clamp(0, 1)
    return x


# --------------------------------------------------------------------------- training loops
def _batches(n: int, batch_size: int, gen: torch.Generator | None):
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


@torch.no_grad()
def _eval_classifier(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    net.eval()
    logits = torch.cat([net(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    return accuracy(logits, y)


@torch.no_grad()
def _eval_autoencoder(net: nn.Module, x: torch.Tensor, batch_size: int = 512) -> float:
    """Mean squared error per element."""
    net.eval()
    total = sum(float(F.mse_loss(net(x[i:i + batch_size]), x[i:i + batch_size], reduction="sum"))
                for i in range(0, x.shape[0], batch_size))
    return total / x.numel()


def train_classifier(net: nn.Module, modality: str, train: tuple, val: tuple, *, epochs: int,
                     batch_size: int = 64, lr: float = 2e-3, patience: int = 8, seed: int = 0,
                     log=print) -> dict:
    """Train ``net`` in place (best validation accuracy restored); returns a summary dict."""
    (xt, yt), (xv, yv) = train, val
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * math.ceil(xt.shape[0] / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    best, best_state, best_epoch, since = -1.0, None, 0, 0
    start = time.time()
    for epoch in range(1, epochs + 1):
        net.train()
        t0, tot, n = time.time(), 0.0, 0
        for idx in _batches(xt.shape[0], batch_size, gen):
            if idx.numel() < 2:  # BatchNorm needs two samples
                continue
            xb = augment(modality, xt[idx], gen)
            loss = F.cross_entropy(net(xb), yt[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot, n = tot + float(loss.detach()) * idx.numel(), n + idx.numel()
        val_acc = _eval_classifier(net, xv, yv)
        mark = ""
        if val_acc > best:
            best, best_state, best_epoch, since, mark = val_acc, copy.deepcopy(net.state_dict()), epoch, 0, " *"
        else:
            since += 1
        log(f"  [{modality} classifier] epoch {epoch}/{epochs} loss {tot / max(n, 1):.4f} "
            f"val-acc {100 * val_acc:.2f}% ({time.time() - t0:.1f}s){mark}")
        if since >= patience:
            log(f"  [{modality} classifier] early stop: no better validation accuracy for {patience} epochs")
            break
    net.load_state_dict(best_state)
    net.eval()
    return {"val_accuracy": best, "best_epoch": best_epoch, "seconds": round(time.time() - start, 1)}


def train_autoencoder(net: nn.Module, modality: str, train: torch.Tensor, val: torch.Tensor, *, epochs: int,
                      batch_size: int = 64, lr: float = 1e-3, patience: int = 8, seed: int = 0,
                      log=print) -> dict:
    """Train a feature AE in place on MSE (best validation loss restored); returns a summary."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_state, best_epoch, since = math.inf, None, 0, 0
    start = time.time()
    for epoch in range(1, epochs + 1):
        net.train()
        t0 = time.time()
        for idx in _batches(train.shape[0], batch_size, gen):
            xb = train[idx]
            loss = F.mse_loss(net(xb), xb, reduction="sum") / xb.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val_mse = _eval_autoencoder(net, val)
        mark = ""
        if val_mse < best:
            best, best_state, best_epoch, since, mark = val_mse, copy.deepcopy(net.state_dict()), epoch, 0, " *"
        else:
            since += 1
        log(f"  [{modality} autoencoder] epoch {epoch}/{epochs} val-mse {val_mse:.5f} ({time.time() - t0:.1f}s){mark}")
        if since >= patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return {"val_mse": best, "best_epoch": best_epoch, "seconds": round(time.time() - start, 1)}


def train_instruments(train: dict, val: dict, test: dict | None = None, *, dataset: str = "",
                      modalities=JUDGED_MODALITIES, feature_dim: int = DEFAULT_FEATURE_DIM,
                      epochs: dict | None = None, batch_size: int = 64, seed: int = 0,
                      log=print) -> Instruments:
    """Train all judges on model-tensor dicts (``model_tensors`` schema, with ``"y"``).

    ``epochs`` maps ``(modality, "classifier"|"autoencoder")`` to an epoch count (defaults:
    :data:`DEFAULT_EPOCHS`). With ``test`` given, each classifier's accuracy on it is stored in
    ``instruments.test_accuracy`` and each AE's test MSE in ``instruments.meta``.
    """
    for name, split in (("train", train), ("val", val)) + ((("test", test),) if test is not None else ()):
        missing = [k for k in (*modalities, "y") if k not in split]
        if missing:
            raise EvaluationError(f"{name} split lacks {missing}")
    epochs = {**DEFAULT_EPOCHS, **(epochs or {})}
    inst = Instruments(modalities=modalities, feature_dim=feature_dim, dataset=dataset)
    summary: dict = {"seed": seed, "batch_size": batch_size, "n_train": int(train["y"].shape[0]),
                     "n_val": int(val["y"].shape[0]), "classifiers": {}, "autoencoders": {}}
    start = time.time()
    for i, m in enumerate(inst.modalities):
        xt, yt = train[m].float(), train["y"]
        if m == AUDIO:
            xt, yt = distinct_rows(xt, yt)
            log(f"{m}: {xt.shape[0]} distinct clips among {train[m].shape[0]} training samples")
        torch.manual_seed(seed + 101 * i)
        inst.classifiers[m] = type(inst.classifiers[m])()  # fresh init under the seed
        log(f"training {m} classifier ({sum(p.numel() for p in inst.classifiers[m].parameters())} parameters)")
        summary["classifiers"][m] = train_classifier(
            inst.classifiers[m], m, (xt, yt), (val[m].float(), val["y"]),
            epochs=epochs[(m, "classifier")], batch_size=batch_size, seed=seed + i, log=log)
        torch.manual_seed(seed + 101 * i + 7)
        inst.autoencoders[m] = type(inst.autoencoders[m])(feature_dim)
        log(f"training {m} feature auto-encoder ({feature_dim}-d bottleneck)")
        summary["autoencoders"][m] = train_autoencoder(
            inst.autoencoders[m], m, xt, val[m].float(),
            epochs=epochs[(m, "autoencoder")], batch_size=batch_size, seed=seed + i, log=log)
    inst.eval()
    if test is not None:
        summary["n_test"] = int(test["y"].shape[0])
        for m in inst.modalities:
            inst.test_accuracy[m] = accuracy(inst.classify(m, test[m]), test["y"])
            summary["autoencoders"][m]["test_mse"] = _eval_autoencoder(inst.autoencoders[m], test[m].float())
    summary["seconds"] = round(time.time() - start, 1)
    summary["torch_threads"] = torch.get_num_threads()
    inst.meta = summary
    return inst


# --------------------------------------------------------------------------- data + CLI
def load_tensors(spec: str, split: str) -> dict:
    """Model tensors of one split of a dataset spec (``digits``, ``mhd:<dir>``, ``bag:<file>``)."""
    try:
        from crossmodal_ros.data import load_dataset
        from crossmodal_ros.data.features import model_tensors
    except ImportError as exc:
        raise EvaluationError(f"the dataset package is not available: {exc}") from exc
    return model_tensors(load_dataset(spec, split))


def _split_off_validation(train: dict, fraction: float, seed: int) -> tuple[dict, dict]:
    n = train["y"].shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(n * fraction)))
    pick = lambda idx: {k: v[idx] for k, v in train.items() if isinstance(v, torch.Tensor)}  # noqa: E731
    return pick(perm[n_val:]), pick(perm[:n_val])


def main(argv=None) -> int:
    """Command line: train the evaluation instruments (judge classifiers, feature AEs)."""
    parser = argparse.ArgumentParser(
        prog="python -m crossmodal_ros.evaluation.train_instruments",
        description="Train the evaluation judges (classifiers + feature auto-encoders) on real data.")
    parser.add_argument("--data", default="digits", help="dataset spec: digits | mhd:<dir> | bag:<file>")
    parser.add_argument("--out", default=None,
                        help="output checkpoint (default: runs/instruments_<dataset>.pt; crossmodal-eval reads "
                             "models/instruments_<dataset>.pt, the shipped judges)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every default epoch count")
    parser.add_argument("--feature-dim", type=int, default=DEFAULT_FEATURE_DIM)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    try:
        print(f"loading {args.data} ...", flush=True)
        train = load_tensors(args.data, "train")
        try:
            val = load_tensors(args.data, "val")
        except Exception as exc:  # noqa: BLE001 - datasets without a validation split
            print(f"no validation split ({exc}); holding out 10 % of train", flush=True)
            train, val = _split_off_validation(train, 0.1, args.seed)
        test = load_tensors(args.data, "test")
        modalities = tuple(m for m in JUDGED_MODALITIES if m in train)
        print(f"train {train['y'].shape[0]}, val {val['y'].shape[0]}, test {test['y'].shape[0]}; "
              f"judging {', '.join(modalities)}", flush=True)
        epochs = {k: max(1, int(round(v * args.epochs_scale))) for k, v in DEFAULT_EPOCHS.items()}
        inst = train_instruments(train, val, test, dataset=args.data.split(":")[0], modalities=modalities,
                                 feature_dim=args.feature_dim, epochs=epochs, batch_size=args.batch_size,
                                 seed=args.seed, log=lambda s: print(s, flush=True))
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = inst.save(args.out or Path("runs") / f"instruments_{args.data.split(':')[0]}.pt")
    print(f"\nJudge accuracy on the real {args.data} test split (the ceiling of the evaluation):")
    for m in inst.modalities:
        print(f"  {m:<11} {100 * inst.test_accuracy[m]:6.2f} %   (feature AE test MSE "
              f"{inst.meta['autoencoders'][m]['test_mse']:.5f})")
    print("  label       100.00 %   (argmax of the one-hot label)")
    print(f"total training time {inst.meta['seconds']:.0f} s; wrote {path}")
    print(json.dumps({"test_accuracy": inst.test_accuracy}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
