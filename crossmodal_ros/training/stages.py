# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The stages ``crossmodal-train`` runs, each on the one epoch loop
(:func:`~crossmodal_ros.training.loop.run_epochs`): a model's pretraining phases
(:class:`~crossmodal_ros.models.phased.PretrainPhase`) and the phases of a phased model
(:class:`~crossmodal_ros.models.phased.TrainingPhase`).
"""
from __future__ import annotations

import copy
import json
import time
import zlib
from pathlib import Path

import torch

from ..checkpoint import save_checkpoint
from . import distributed
from .config import TrainingError
from .data import batches, fraction_subset
from .loop import (checkpoint_metrics, epoch_record, grad_scaler, make_adam, run_epochs, split_or_fail, validate,
                   write_logs)


def _model_loss(model, batch, epoch):
    return model.loss(batch, None, epoch)


def _val_loss(phase, val: dict, device, batch_size: int = 256) -> float:
    """Mean loss of a pretraining phase over the validation data (its module in eval mode)."""
    phase.module.eval()
    with torch.inference_mode():
        total = sum(phase.loss(phase.module, b, 0)[0].item() * next(iter(b.values())).shape[0]
                    for b in batches({k: val[k] for k in phase.keys}, batch_size, None, device))
    return total / next(iter(val.values())).shape[0]


def run_pretraining(phase, train, val, tcfg, device, gen, quiet=False, log=print, bank=None, ctx=None,
                    index: int = 0) -> dict:
    """Run one :class:`~crossmodal_ros.models.phased.PretrainPhase`: ``phase.module`` trained
    alone with ``phase.loss`` (a fresh Adam, ``train.<phase.config>_lr``), its best validation
    epoch kept, then ``phase.finish()``.

    Returns the stage info ``{"<config>_best_val", "<config>_epochs", "history"}``. ``ctx``
    (several processes): DDP over the module, validation on rank 0, which broadcasts the result.
    """
    ctx = ctx or distributed.DistContext()
    c, module = phase.config, phase.module
    epochs, bs = tcfg[f"{c}_epochs"], tcfg[f"{c}_batch_size"]
    split_or_fail(bs, ctx, int(tcfg.get("grad_accum", 1)), f"train.{c}_batch_size")
    module.requires_grad_(True)
    opt = make_adam(module.parameters(), tcfg[f"{c}_lr"], tcfg, device)
    wrapped = distributed.wrap(distributed.LossModule(module, phase.loss), ctx, device)
    best, best_state, history = float("inf"), None, []
    loop = run_epochs(module, wrapped, opt, (), train, phase.keys, epochs=epochs, batch_size=bs, tcfg=tcfg,
                      device=device, gen=gen, ctx=ctx, scaler=grad_scaler(tcfg.get("precision", "fp32"), device),
                      clip=0.0, seed_tags=(1,) if index == 0 else (1, index), desc=phase.name,
                      where=f"{phase.name} pretraining ", quiet=quiet,
                      draw=(lambda d: bank.draw(d, gen)) if bank is not None else None)
    for epoch, means, t0 in loop:
        val_loss = ctx.broadcast_object(_val_loss(phase, val, device) if ctx.is_main else None)
        train_loss = means.get("loss", 0.0)
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "time_s": time.time() - t0})
        log(f"{phase.name} pretrain epoch {epoch + 1}/{epochs}: train {train_loss:.2f} val {val_loss:.2f} "
            f"({time.time() - t0:.1f}s)")
        if val_loss < best:
            best, best_state = val_loss, copy.deepcopy(module.state_dict())
    if best_state is not None:
        module.load_state_dict(best_state)
    ctx.sync_module(module, buffers_only=True)  # BatchNorm statistics: rank 0's
    phase.finish()
    return {f"{c}_best_val": best, f"{c}_epochs": epochs, "history": history}


def run_phase(model, phase, train: dict, val: dict, tcfg: dict, device, gen, quiet=False, log=print,
              on_epoch=None, ctx=None) -> list:
    """Train one :class:`~crossmodal_ros.models.phased.TrainingPhase` of a phased model.

    A fresh Adam optimizer over the phase's trainable parameters (the rest frozen by
    ``model.set_phase``), ``phase.epochs`` passes over ``phase.data_fraction`` of ``train``,
    validation on all of ``val`` after each epoch. ``on_epoch(record, val_metrics)`` is called
    after each epoch. Returns the epoch records. ``ctx`` (several processes): the phase trains in
    its own DDP wrapper (with ``find_unused_parameters``: a phase's loss need not touch every
    trainable parameter); validation and ``on_epoch`` run on rank 0 only (``val_metrics`` is
    None on the other ranks).
    """
    ctx = ctx or distributed.DistContext()
    accum, precision = int(tcfg.get("grad_accum", 1)), tcfg.get("precision", "fp32")
    params = model.set_phase(phase.name)
    opt = make_adam(params, tcfg["lr"], tcfg, device)
    data = fraction_subset(train, phase.data_fraction) if phase.data_fraction < 1.0 else train
    n = next(iter(data.values())).shape[0]
    bs = min(tcfg["batch_size"], n)
    if ctx.world_size * accum > 1 and bs // (ctx.world_size * accum) < 2:
        raise TrainingError(f"phase {phase.name!r} trains on {n} samples, batches of {bs}: too few to give each of "
                            f"{ctx.world_size} process(es) x {accum} accumulation step(s) 2 samples; use fewer "
                            "processes or accumulation steps (or more data / a larger batch)")
    wrapped = distributed.wrap(distributed.LossModule(model, _model_loss), ctx, device, find_unused=True)
    log(f"{phase.description}: {phase.epochs} epochs on {n} samples, {sum(p.numel() for p in params) / 1e6:.2f} M "
        "trainable parameters")
    history = []
    loop = run_epochs(model, wrapped, opt, params, data, model.modalities, epochs=phase.epochs, batch_size=bs,
                      tcfg=tcfg, device=device, gen=gen, ctx=ctx, scaler=grad_scaler(precision, device),
                      seed_tags=(3, zlib.crc32(phase.name.encode())), desc=phase.name,
                      where=f"phase {phase.name} ", quiet=quiet)
    for epoch, means, t0 in loop:
        val_metrics = validate(model, val, device, epoch) if ctx.is_main else None
        record = epoch_record({"phase": phase.name, "epoch": epoch + 1}, t0, means, val_metrics)
        if val_metrics is not None:
            log(f"{phase.name} epoch {epoch + 1}/{phase.epochs}: train loss "
                f"{record.get('train/loss', float('nan')):.2f}, val loss {val_metrics['loss']:.2f}, "
                f"{record['time_s']:.1f}s")
        history.append(record)
        if on_epoch is not None and ctx.is_main:
            on_epoch(record, val_metrics)
        ctx.barrier()
    del loop, wrapped
    if ctx.enabled:
        ctx.sync_module(model, buffers_only=True)
        distributed.release()
    return history


def run_phases(model, train, val, tcfg, device, gen, out: Path, codecs_dict, cfg, quiet=False, log=print,
               ctx=None) -> dict:
    """Run every phase of a phased model in order (``model.training_phases(train.epochs)``).

    ``best.pt`` is the epoch of the *last* phase with the lowest validation loss (earlier phases
    optimise other objectives; their final state is what the next phase builds on); ``last.pt``
    is written after every epoch (no resume for phased models). Files are written by rank 0.
    """
    ctx = ctx or distributed.DistContext()
    phases = model.training_phases(tcfg["epochs"])
    history, info, best = [], [], {"val": float("inf")}
    for i, phase in enumerate(phases):
        t0 = time.time()
        final = i == len(phases) - 1

        def on_epoch(record, val_metrics, final=final):
            metrics = checkpoint_metrics(record, {})
            state = {"epoch": len(history) + 1, "phase": record["phase"], "seed": tcfg["seed"], "data": cfg["data"],
                     "train_config_json": json.dumps(tcfg)}
            if final and val_metrics["loss"] < best["val"]:
                best["val"] = val_metrics["loss"]
                save_checkpoint(out / "best.pt", model, codecs_dict, metrics=metrics, train_state=state,
                                half=tcfg["half_best"])
            save_checkpoint(out / "last.pt", model, codecs_dict, metrics=metrics, train_state=state)
            history.append(record)
            write_logs(out, history, cfg, {"phases": info})

        run_phase(model, phase, train, val, tcfg, device, gen, quiet, log, on_epoch, ctx=ctx)
        info.append({"phase": phase.name, "epochs": phase.epochs, "data_fraction": phase.data_fraction,
                     "time_s": round(time.time() - t0, 2)})
    model.unfreeze()
    if ctx.is_main and (phases and phases[-1].epochs == 0 or not (out / "best.pt").is_file()):
        save_checkpoint(out / "best.pt", model, codecs_dict, metrics={}, half=tcfg["half_best"])
    ctx.barrier()
    return {"best_val": best["val"], "epochs": sum(p.epochs for p in phases), "history": history, "phases": info}
