# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""``crossmodal-train``: offline training of any registered model kind from a YAML config.

Usage::

    crossmodal-train --config config/train_nexus.yaml [--data digits|mhd:<dir>|bag:<file>]
                     [--device auto|cpu|cuda] [--epochs N] [--out runs/<name>] [--resume]
                     [--seed S] [--limit N] [--grad-accum K] [--precision fp32|bf16|fp16]
    torchrun --nproc_per_node N -m crossmodal_ros.training.train --config ...   (same options)

The trainer knows no model; it runs the phases a model declares. (1) The model's pretraining
phases (``model.pretraining_phases()``, e.g. Nexus's sound SigmaVAE when the model config says
``sound_pretrain: true``): a part trained alone for ``train.<phase>_epochs`` (e.g.
``train.sound_pretrain_epochs``), its best validation epoch kept, then frozen. (2) The model's
own training: its ``loss`` over ``train.epochs``; or, for a phased model (one with
``training_phases()``: associator, alignment, latent_constraint), its phases in order, each
with its own optimizer over the phase's trainable parameters, on the phase's fraction of the
training data, for the phase's ``model.phase_epochs`` (0 = ``train.epochs``). Every stage runs
the one epoch loop of :mod:`crossmodal_ros.training.loop`. Every epoch is validated on
``train.val_fraction`` of the training split (a seeded split); ``<out>/best.pt`` (lowest
validation loss, the shippable model, no optimizer state) and ``<out>/last.pt`` (with optimizer
and RNG state, for ``--resume``) are written atomically; ``<out>/log.csv`` and
``<out>/log.json`` record every epoch. Config: :mod:`~crossmodal_ros.training.config`; data:
:mod:`~crossmodal_ros.training.data`.

Several processes or machines: run the same command under ``torchrun`` (``torchrun
--nproc_per_node N -m crossmodal_ros.training.train ...``); see
:mod:`crossmodal_ros.training.distributed`. ``train.batch_size`` stays the batch of one
optimizer step, split over the processes and ``train.grad_accum`` accumulation steps;
``train.precision`` (fp32 | bf16 | fp16) turns on autocast.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from ..data.digits import DatasetError
from ..models import build_model, count_parameters
from . import distributed
from .config import (CONFIG_KEYS, PRECISIONS, TRAIN_DEFAULTS, ConfigError, TrainingError,  # noqa: F401
                     load_config, resolve_config, resolve_device)
from .data import (batches, exclude_speaker_audio, fraction_subset, limit_samples, load_tensors,  # noqa: F401
                   load_train_data, split_train_val)
from .loop import (checkpoint_metrics, epoch_record, grad_scaler, make_adam, run_epochs, split_or_fail, train_step,
                   validate, write_logs)
from .stages import _model_loss, run_phase, run_phases, run_pretraining  # noqa: F401

_train_step = train_step  # the name the tests and older callers use


# --------------------------------------------------------------------------- run
def run_training(cfg: dict, train: dict, val: dict, out_dir, codecs_dict: dict | None = None,
                 resume: bool = False, device="auto", quiet: bool = False, log=print, bank=None) -> dict:
    """Train ``cfg["kind"]`` on tensor dicts ``train``/``val``; write checkpoints and logs to
    ``out_dir``. Returns a summary dict (best metrics, timings, paths).

    Under ``torchrun`` (several processes) every process calls this with the same arguments:
    the model trains in DistributedDataParallel, rank 0 validates, logs and writes the files.
    """
    tcfg = cfg["train"]
    out = Path(out_dir)
    dev = resolve_device(device if device != "auto" else tcfg["device"])
    try:
        ctx, dev = distributed.setup(dev)
        tcfg = {**tcfg, "precision": distributed.resolve_precision(tcfg["precision"], dev)}
        distributed.check_precision(tcfg["precision"], dev)
    except (distributed.DistributedSetupError, ValueError) as exc:
        raise TrainingError(str(exc)) from exc
    if not ctx.is_main:
        log, quiet = (lambda s: None), True
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    if tcfg["num_threads"]:
        torch.set_num_threads(tcfg["num_threads"])
    torch.manual_seed(tcfg["seed"])
    gen = torch.Generator().manual_seed(tcfg["seed"])
    missing = [m for m in cfg["model"]["modalities"] if m not in train]
    if missing:
        raise TrainingError(f"the data lacks modalities {missing} required by the model config")
    accum, precision = tcfg["grad_accum"], tcfg["precision"]

    model = build_model(cfg["kind"], cfg["model"]).to(dev)
    opt = make_adam([p for p in model.parameters() if p.requires_grad], tcfg["lr"], tcfg, dev)
    scaler = grad_scaler(precision, dev)
    start_epoch, best_val, history, stage_info = 0, float("inf"), [], {}
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and hasattr(model, "training_phases"):
        raise TrainingError(f"--resume is not supported for the phased kind {cfg['kind']!r}; start a new run")
    if not hasattr(model, "training_phases"):
        split_or_fail(tcfg["batch_size"], ctx, accum, "train.batch_size")
    if resume:
        def read_last():
            if not last_path.is_file():
                raise TrainingError(f"--resume: {last_path} does not exist (nothing to resume)")
            try:
                ck = read_checkpoint(last_path, "cpu")
            except CheckpointError as exc:
                raise TrainingError(f"--resume: {exc}") from exc
            if ck["kind"] != cfg["kind"] or ck["config"] != cfg["model"]:
                raise TrainingError(f"--resume: {last_path} was trained with kind {ck['kind']!r} and another model "
                                    "config; use the same config or a new --out directory")
            return ck

        ck = ctx.on_main(read_last)  # rank 0 reads, every rank gets it (no shared disk needed)
        model.load_state_dict(ck["state_dict"])
        st = ck["train"]
        opt.load_state_dict(st["optimizer"])
        for group in opt.param_groups:  # the Adam kind of this run's config, not the checkpoint's
            group["fused"], group["foreach"] = opt.defaults["fused"], opt.defaults["foreach"]
        if scaler is not None and st.get("grad_scaler"):
            scaler.load_state_dict(st["grad_scaler"])
        start_epoch, best_val = int(st["epoch"]), float(st["best_val"])
        history = json.loads(st.get("history_json", "[]"))
        stage_info = json.loads(st.get("stage_json", "{}"))
        gen.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        was = int(st.get("world_size", 1))
        log(f"resuming {cfg['kind']} from {last_path} after epoch {start_epoch}"
            f"{f' (trained on {was} process(es), now {ctx.world_size})' if was != ctx.world_size else ''}")

    n_total = count_parameters(model)
    log(f"{cfg['kind']}: {n_total / 1e6:.2f} M parameters ({count_parameters(model, True) / 1e6:.2f} M trainable), "
        f"{next(iter(train.values())).shape[0]} train / {next(iter(val.values())).shape[0]} val samples, device {dev}"
        f"{f', {torch.get_num_threads()} CPU threads' if dev.type == 'cpu' else ''}"
        f"{f', {ctx.world_size} processes ({ctx.backend})' if ctx.enabled else ''}"
        f"{f', {accum} accumulation steps' if accum > 1 else ''}"
        f"{f', {precision} autocast' if precision != 'fp32' else ''}")

    t_run = time.time()
    for i, phase in enumerate(model.pretraining_phases()):
        if tcfg[f"{phase.config}_epochs"] <= 0:
            log(f"warning: train.{phase.config}_epochs is 0: {phase.description} is skipped and the model's "
                f"{phase.name} part keeps its random initialisation")
            continue
        log(f"stage {i + 1}: {phase.description} for {tcfg[f'{phase.config}_epochs']} epochs")
        t0 = time.time()
        stage_info.update(run_pretraining(phase, train, val, tcfg, dev, gen, quiet, log, bank=bank, ctx=ctx,
                                          index=i))
        stage_info["time_s"] = time.time() - t0
        if ctx.enabled:
            distributed.release()
        # the optimizer was built before; a part frozen after its pretraining is not in it either way

    if hasattr(model, "training_phases"):
        stage_info = run_phases(model, train, val, tcfg, dev, gen, out, codecs_dict, cfg, quiet, log, ctx=ctx)
        summary = {"kind": cfg["kind"], "best_val_loss": stage_info["best_val"], "epochs": stage_info["epochs"],
                   "parameters": n_total, "time_s": time.time() - t_run, "best": str(best_path),
                   "last": str(last_path), "history": stage_info["history"], "phases": stage_info["phases"]}
        if ctx.is_main:
            write_logs(out, stage_info["history"], cfg, {"phases": stage_info["phases"]}, summary)
        _check_replicas(ctx, model)
        return summary
    # DDP registers the parameters that are trainable now (after a pretraining phase froze its part)
    wrapped = distributed.wrap(distributed.LossModule(model, _model_loss), ctx, dev)
    epochs = tcfg["epochs"]
    loop = run_epochs(model, wrapped, opt, list(model.parameters()), train, model.modalities, epochs=epochs,
                      start=start_epoch, batch_size=tcfg["batch_size"], tcfg=tcfg, device=dev, gen=gen, ctx=ctx,
                      scaler=scaler, seed_tags=(2,), desc=cfg["kind"], quiet=quiet,
                      draw=(lambda d: bank.draw(d, gen)) if bank is not None else None)
    for epoch, means, t0 in loop:
        train_time = time.time() - t0
        if ctx.is_main:
            val_metrics = validate(model, val, dev, epoch)
            record = epoch_record({"epoch": epoch + 1}, t0, means, val_metrics)
            history.append(record)
            improved = val_metrics["loss"] < best_val
            if improved:
                best_val = val_metrics["loss"]
                save_checkpoint(best_path, model, codecs_dict, metrics=checkpoint_metrics(record, stage_info),
                                train_state={"epoch": epoch + 1, "seed": tcfg["seed"], "data": cfg["data"],
                                             "train_config_json": json.dumps(tcfg)},
                                half=tcfg["half_best"])
            state = {"epoch": epoch + 1, "best_val": best_val, "optimizer": opt.state_dict(),
                     "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                     "history_json": json.dumps(history), "stage_json": json.dumps(stage_info),
                     "train_config_json": json.dumps(tcfg)}
            if ctx.enabled:
                state["world_size"] = ctx.world_size
            if scaler is not None:
                state["grad_scaler"] = scaler.state_dict()
            save_checkpoint(last_path, model, codecs_dict, metrics=checkpoint_metrics(record, stage_info),
                            train_state=state)
            write_logs(out, history, cfg, stage_info)
            accs = " ".join(f"{k[len('acc_label_from_'):]}->label {v:.3f}" for k, v in val_metrics.items()
                            if k.startswith("acc_label_from_"))
            log(f"epoch {epoch + 1}/{epochs}: train loss {record.get('train/loss', float('nan')):.2f}, val loss "
                f"{val_metrics['loss']:.2f}{' (best)' if improved else ''}, {accs}, {time.time() - t0:.1f}s")
            if epoch == start_epoch and epochs - epoch > 1:
                remaining = (epochs - epoch - 1) * (time.time() - t0)
                log(f"estimated time for the remaining {epochs - epoch - 1} epochs: {remaining / 60:.1f} min "
                    f"({train_time:.1f}s training + {time.time() - t0 - train_time:.1f}s validation per epoch)")
        ctx.barrier()  # last.pt is complete before any rank goes on (or exits)
    summary = {"kind": cfg["kind"], "best_val_loss": best_val, "epochs": epochs, "parameters": n_total,
               "time_s": time.time() - t_run, "best": str(best_path), "last": str(last_path),
               "history": history, "sound_pretrain": stage_info}
    if ctx.is_main:
        write_logs(out, history, cfg, stage_info, summary)
    _check_replicas(ctx, model)
    return summary


def _check_replicas(ctx, model) -> None:
    try:
        ctx.check_replicas(model)
    except RuntimeError as exc:
        raise TrainingError(str(exc)) from exc



# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The ``crossmodal-train`` command line."""
    p = argparse.ArgumentParser(prog="crossmodal-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (config/train_nexus.yaml, ...)")
    p.add_argument("--data", help="dataset spec overriding the config: digits | mhd:<dir> | bag:<file>")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (overrides train.device)")
    p.add_argument("--epochs", type=int, help="overrides train.epochs")
    p.add_argument("--sound-epochs", type=int, help="overrides train.sound_pretrain_epochs")
    p.add_argument("--out", help="output directory (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--seed", type=int, help="overrides train.seed")
    p.add_argument("--limit", type=int, help="use only N training samples, spread over the split (tiny runs; "
                   "the augmentation variants are built for those only)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--grad-accum", type=int, help="overrides train.grad_accum (micro-batches per optimizer step)")
    p.add_argument("--precision", choices=PRECISIONS, help="overrides train.precision")
    return p


def main(argv=None) -> int:
    """``crossmodal-train``: returns the exit status."""
    args = build_parser().parse_args(argv)
    ctx = distributed.DistContext()
    try:
        cfg = load_config(args.config)
        if args.data:
            cfg["data"] = args.data
        for flag, key in ((args.epochs, "epochs"), (args.seed, "seed"), (args.device, "device"),
                          (args.sound_epochs, "sound_pretrain_epochs"), (args.grad_accum, "grad_accum"),
                          (args.precision, "precision")):
            if flag is not None:
                cfg["train"][key] = flag
        cfg = resolve_config(cfg, "command line")
        if args.limit is not None and args.limit < 4:
            raise ConfigError("--limit must be >= 4")
        out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
        tcfg = cfg["train"]
        try:  # under torchrun: join the process group before loading (data loading is ordered below)
            ctx, _ = distributed.setup(resolve_device(tcfg["device"]))
        except distributed.DistributedSetupError as exc:
            raise TrainingError(str(exc)) from exc
        say = (lambda s: print(s, file=sys.stderr)) if ctx.is_main else (lambda s: None)  # noqa: E731
        say(f"loading data {cfg['data']!r} ...")
        # one process per machine fills the on-disk caches (mel spectrograms, augmentation bank)
        # first; the others then read them instead of writing the same files at the same time
        if ctx.local_rank != 0:
            ctx.barrier()
        tensors, codecs, bank = load_train_data(cfg["data"], "train", tcfg["exclude_speakers"], cfg["augment"],
                                                tcfg["seed"], log=say, limit=args.limit)
        if tcfg["val_split"]:
            # a split of its own: other writers and other recordings than the training data
            val, _ = load_tensors(cfg["data"], tcfg["val_split"])
            train = tensors  # load_train_data kept --limit samples already
            if args.limit:
                val = limit_samples(val, max(4, args.limit // 4))
        else:
            train, val = split_train_val(tensors, tcfg["val_fraction"], tcfg["seed"])
        if ctx.local_rank == 0:
            ctx.barrier()
        summary = run_training(cfg, train, val, out, codecs, resume=args.resume, device=tcfg["device"],
                               quiet=args.quiet, log=say, bank=bank)
    except (ConfigError, TrainingError, CheckpointError, DatasetError) as exc:
        print(f"crossmodal-train: error{f' (rank {ctx.rank})' if ctx.enabled else ''}: {exc}", file=sys.stderr)
        ctx.close()
        return 2
    except KeyboardInterrupt:
        print("crossmodal-train: interrupted; resume with --resume", file=sys.stderr)
        return 130
    ctx.close()
    if ctx.is_main:
        print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
