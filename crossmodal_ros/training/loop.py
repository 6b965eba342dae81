# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The one epoch loop of ``crossmodal-train`` and its parts: an optimizer step over (possibly
distributed, accumulated, autocast) micro-batches, validation, and the log files.

:func:`run_epochs` serves every stage (a model's pretraining phases, its joint training, each
phase of a phased model); the caller validates and writes checkpoints after each epoch it yields.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import torch

from ..modalities import LABEL
from . import distributed
from .config import ConfigError, TrainingError
from .data import batches


def _progress(iterable, total, desc, quiet):
    if quiet:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)


def _check_finite(loss: torch.Tensor, logs: dict, where: str) -> None:
    if not torch.isfinite(loss):
        terms = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
        raise TrainingError(f"loss is {loss.item()} at {where} (terms: {terms}); lower train.lr, "
                            "set train.grad_clip, or check the data for NaN/Inf")


def train_step(wrapped, micro, args: tuple, opt, clip_params, clip: float, device, precision: str, where: str,
                scaler, sums: dict, world_size: int = 1) -> dict:
    """One optimizer step over this rank's micro-batches ``micro`` (``[(weight, batch), ...]``
    from :func:`distributed.step_batches`): forward (under autocast) and backward of each
    weighted micro-batch loss (DDP all-reduces the gradients after the last one), gradient
    clipping, the optimizer step. Adds each log term times the micro-batch's share of the global
    batch to ``sums``. Returns the last micro-batch's logs.
    """
    opt.zero_grad(set_to_none=True)
    last = len(micro) - 1
    logs = {}
    for j, (w, batch) in enumerate(micro):
        with distributed.no_sync(wrapped, j < last):
            with distributed.autocast(device, precision):
                loss, logs = wrapped(batch, *args)
            _check_finite(loss, logs, where)
            if w != 1.0:
                loss = loss * w
            (scaler.scale(loss) if scaler is not None else loss).backward()
        share = w / world_size
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + (v if share == 1.0 else v * share)
    if scaler is not None:
        if clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(clip_params, clip)
        scaler.step(opt)
        scaler.update()
    else:
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(clip_params, clip)
        opt.step()
    return logs


def reduce_sums(sums: dict, ctx, device) -> dict:
    """``sums`` summed over all ranks (rank 0's keys; a key a rank lacks counts 0 there)."""
    if not ctx.enabled:
        return sums
    keys = ctx.broadcast_object(sorted(sums))
    return dict(zip(keys, ctx.all_reduce_sum([float(sums.get(k, 0.0)) for k in keys], device)))


def grad_scaler(precision: str, device):
    """A loss scaler for fp16 autocast, else None."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def make_adam(params, lr: float, tcfg: dict, device) -> torch.optim.Adam:
    """The trainer's Adam over ``params`` (already on ``device``), with ``train.fused_adam``:
    ``auto`` (the default) uses torch's fused kernel (one kernel over every parameter) on CPU
    and CUDA, where it exists; ``true`` requires it; ``false`` keeps torch's default
    (for-each) implementation. The update is the same algorithm; fused and for-each results
    differ only by floating-point rounding.
    """
    params = [p for p in params]
    mode = tcfg.get("fused_adam", "auto")
    usable = bool(params) and device.type in ("cpu", "cuda") and all(
        p.is_floating_point() and p.device.type == device.type for p in params)
    if mode is True and not usable:
        raise ConfigError(f"train.fused_adam: true, but torch has no fused Adam for these parameters on {device}; "
                          "use auto or false")
    fused = usable if mode == "auto" else bool(mode)
    return torch.optim.Adam(params, lr=lr, fused=True) if fused else torch.optim.Adam(params, lr=lr)



def split_or_fail(batch_size: int, ctx, accum: int, key: str) -> None:
    """Every process must get micro-batches of >= 2 samples; else a ConfigError naming ``key``."""
    try:
        distributed.check_batch_split(batch_size, ctx, accum, key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def step_keys(keys, data: dict) -> list:
    """The batch keys of a stage: ``keys`` the data has, then their ``clean:<key>`` originals
    (augmented training) where the data has them.
    """
    return [k for k in keys if k in data] + [f"clean:{k}" for k in keys if f"clean:{k}" in data]


def _postfix(logs: dict) -> dict:
    return {k.split("/")[-1] if "/" in k else k: f"{v:.3g}" for k, v in logs.items()
            if k in ("loss", "kl") or k.startswith("top/")}


def run_epochs(module, loss_module, opt, params, data: dict, keys, *, epochs: int, start: int = 0,
               batch_size: int, tcfg: dict, device, gen, ctx, scaler=None, clip: float | None = None,
               seed_tags: tuple = (), desc: str = "", where: str = "", quiet: bool = False, draw=None):
    """The one epoch loop. Yields ``(epoch, train_means, t0)`` after each epoch's optimizer
    steps (``train_means``: the log terms averaged over the epoch and every process; ``t0``: the
    epoch's start time); the caller validates and saves before the next epoch starts.

    ``module`` is put in train mode each epoch; ``loss_module`` (a
    :class:`distributed.LossModule`, DDP-wrapped under torchrun) is called with ``(batch,
    epoch)``; ``params`` are the clipped parameters (``clip``, default ``train.grad_clip``).
    ``draw(data)`` (the augmentation bank) gives each epoch's variant of ``data``; the batches
    carry :func:`step_keys` of ``keys``. ``seed_tags`` make each rank's torch seed per stage and
    epoch; ``desc`` names the progress bar, ``where`` the step in a non-finite-loss error.
    """
    accum, precision = int(tcfg.get("grad_accum", 1)), tcfg.get("precision", "fp32")
    clip = tcfg["grad_clip"] if clip is None else clip
    n = next(iter(data.values())).shape[0]
    for epoch in range(start, epochs):
        t0 = time.time()
        module.train()
        if ctx.enabled:
            torch.manual_seed(ctx.rank_seed(tcfg["seed"], *seed_tags, epoch))
        sums, count = {}, 0
        epoch_data = draw(data) if draw is not None else data
        bar = _progress(distributed.step_batches(epoch_data, batch_size, gen, device, step_keys(keys, epoch_data),
                                                 ctx, accum),
                        distributed.n_steps(n, batch_size, ctx.world_size * accum), f"{desc} {epoch + 1}/{epochs}",
                        quiet)
        for step, micro in enumerate(bar):
            logs = train_step(loss_module, micro, (epoch,), opt, params, clip, device, precision,
                              f"{where}epoch {epoch + 1} step {step + 1}", scaler, sums, ctx.world_size)
            count += 1
            if not quiet:
                bar.set_postfix(_postfix(logs))
        sums = reduce_sums(sums, ctx, device)
        yield epoch, {k: v / max(count, 1) for k, v in sums.items()}, t0


def epoch_record(head: dict, t0: float, train_means: dict, val_metrics: dict | None) -> dict:
    """One row of the log: ``head`` (epoch, phase), the time, ``train/<term>`` and ``val/<term>``."""
    record = {**head, "time_s": round(time.time() - t0, 3)}
    record.update({f"train/{k}": v for k, v in train_means.items()})
    if val_metrics is not None:
        record.update({f"val/{k}": v for k, v in val_metrics.items()})
    return record


@torch.inference_mode()
def validate(model, val: dict, device, epoch: int, batch_size: int = 256) -> dict:
    """Validation metrics: the loss at full KL weight (the negative ELBO Nexus optimises, no
    FPD) and the label accuracy decoded from each single other modality.
    """
    model.eval()
    n = next(iter(val.values())).shape[0]
    keys = [m for m in model.modalities if m in val]
    sums: dict[str, float] = {}
    correct = {m: 0 for m in keys if m != LABEL}
    for b in batches(val, batch_size, None, device, keys + (["y"] if "y" in val else [])):
        bs = b[keys[0]].shape[0]
        _, logs = model.loss({k: b[k] for k in keys}, None, epoch=1e9)
        for k, v in logs.items():
            if k != "kl_weight":
                sums[k] = sums.get(k, 0.0) + v * bs
        if LABEL in model.modalities and "y" in b:
            for m in correct:
                logits = model.infer({m: b[m]})[LABEL]
                correct[m] += int((logits.argmax(1) == b["y"]).sum())
    out = {k: v / n for k, v in sums.items()}
    for m, c in correct.items():
        out[f"acc_label_from_{m}"] = c / n
    model.train()
    return out



def checkpoint_metrics(record: dict, stage_info: dict) -> dict:
    """The numbers of a log row and the pretraining phases' best validation losses."""
    m = {k: v for k, v in record.items() if isinstance(v, (int, float))}
    m.update({k: v for k, v in stage_info.items() if k.endswith("_best_val")})  # pretraining results
    return m


def write_logs(out: Path, history: list, cfg: dict, stage_info: dict, summary: dict | None = None) -> None:
    """``log.csv`` (one row an epoch) and ``log.json`` (config, epochs, stage info, summary), atomically."""
    if history:
        fields = list(dict.fromkeys(k for r in history for k in r))
        tmp = out / "log.csv.tmp"
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(history)
        tmp.replace(out / "log.csv")
    doc = {"config": cfg, "epochs": history, "sound_pretrain": stage_info}
    if summary:
        doc["summary"] = {k: v for k, v in summary.items() if k != "history"}
    tmp = out / "log.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    tmp.replace(out / "log.json")

