# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""``crossmodal-train``: offline training of any registered model kind from a YAML config.

Usage::

    crossmodal-train --config config/train_nexus.yaml [--data digits|mhd:<dir>|bag:<file>]
                     [--device auto|cpu|cuda] [--epochs N] [--out runs/<name>] [--resume]
                     [--seed S] [--limit N] [--grad-accum K] [--precision fp32|bf16|fp16]
    torchrun --nproc_per_node N -m crossmodal_ros.training.train --config ...   (same options)

Stages: (1) when the model config says ``sound_pretrain: true``, the sound VAE is pretrained
alone as a SigmaVAE for ``train.sound_pretrain_epochs`` and frozen; (2) the model is trained
with its own loss. A phased model (one with ``training_phases()``: associator, alignment,
latent_constraint) instead runs its phases in order, each with its own optimizer over the
phase's trainable parameters, on the phase's fraction of the training data, for the phase's
``model.phase_epochs`` (0 = ``train.epochs``). Every epoch is validated on ``train.val_fraction`` of the training split
(a seeded split); ``<out>/best.pt`` (lowest validation loss, the shippable model, no optimizer
state) and ``<out>/last.pt`` (with optimizer and RNG state, for ``--resume``) are written
atomically; ``<out>/log.csv`` and ``<out>/log.json`` record every epoch.

Several processes or machines: run the same command under ``torchrun`` (``torchrun
--nproc_per_node N -m crossmodal_ros.training.train ...``); see
:mod:`crossmodal_ros.training.distributed`. ``train.batch_size`` stays the batch of one
optimizer step, split over the processes and ``train.grad_accum`` accumulation steps;
``train.precision`` (fp32 | bf16 | fp16) turns on autocast.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import sys
import time
import zlib
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from ..data.digits import DatasetError
from ..modalities import LABEL
from ..models import MODEL_KINDS, build_model, count_parameters
from ..models.base import ModelConfigError, merge_config
from ..models.nexus import sigma_vae_loss
from . import distributed

#: The ``train:`` section of a config with its defaults (the reference training setup).
TRAIN_DEFAULTS: dict = {
    "epochs": 100,
    "batch_size": 64,
    "lr": 1.0e-3,
    "seed": 0,
    "val_fraction": 0.1,
    "device": "auto",
    "sound_pretrain_epochs": 30,
    "sound_pretrain_lr": 1.0e-3,
    "sound_pretrain_batch_size": 64,
    "grad_clip": 0.0,           # max gradient norm; 0 = off
    "num_threads": 0,           # torch CPU threads; 0 = torch's default
    "half_best": False,         # store best.pt as float16
    "val_split": "",            # "" = a seeded val_fraction of the train split; else a dataset split (e.g. "val")
    "exclude_speakers": [],     # speakers never heard in training (their samples get other speakers' clips)
    "grad_accum": 1,            # micro-batches per optimizer step (batch_size is the step's batch, split over them)
    "precision": "fp32",        # fp32 | bf16 | fp16 (autocast; fp16 with loss scaling, CUDA only)
}
#: ``train.precision`` values.
PRECISIONS = ("fp32", "bf16", "fp16")
#: Top-level keys of a config file.
CONFIG_KEYS = ("kind", "data", "model", "train", "augment")


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, resume mismatch, no data); the message says why."""


class ConfigError(ValueError):
    """A bad training config; the message names the offending key."""


# --------------------------------------------------------------------------- config
def load_config(path) -> dict:
    """Read and validate a YAML config -> ``{"kind", "data", "model", "train"}`` fully resolved.

    Raises :class:`ConfigError` for a missing file, bad YAML, unknown keys or bad values.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    return resolve_config(raw, str(path))


def resolve_config(raw, source: str = "<config>") -> dict:
    """Validate a config mapping (see :func:`load_config`) and fill in defaults."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping with keys {CONFIG_KEYS}")
    unknown = [k for k in raw if k not in CONFIG_KEYS]
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s) {unknown}; allowed: {list(CONFIG_KEYS)}")
    kind = raw.get("kind")
    if kind not in MODEL_KINDS:
        raise ConfigError(f"{source}: config key 'kind' must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    data = raw.get("data", "digits")
    if not isinstance(data, str) or not data:
        raise ConfigError(f"{source}: config key 'data' must be a dataset spec string, got {data!r}")
    try:
        model_cfg = MODEL_KINDS[kind].resolve_config(raw.get("model") or {})
        train_cfg = merge_config(TRAIN_DEFAULTS, raw.get("train") or {}, "train")
    except ModelConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    _check_train(train_cfg, source)
    from ..augment import AugmentError, resolve_augment

    try:
        aug_cfg = resolve_augment(raw.get("augment"))
    except AugmentError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return {"kind": kind, "data": data, "model": model_cfg, "train": train_cfg, "augment": aug_cfg}


def _check_train(t: dict, source: str) -> None:
    def bad(key, why):
        raise ConfigError(f"{source}: config key 'train.{key}' {why}, got {t[key]!r}")

    for key in ("epochs", "sound_pretrain_epochs", "num_threads"):
        if t[key] < 0:
            bad(key, "must be >= 0")
    for key in ("batch_size", "sound_pretrain_batch_size"):
        if t[key] < 2:
            bad(key, "must be >= 2 (BatchNorm needs two samples)")
    for key in ("lr", "sound_pretrain_lr"):
        if not t[key] > 0 or not math.isfinite(t[key]):
            bad(key, "must be a positive number")
    if not 0.0 < t["val_fraction"] < 1.0:
        bad("val_fraction", "must be in (0, 1)")
    if t["grad_clip"] < 0:
        bad("grad_clip", "must be >= 0")
    if t["device"] not in ("auto", "cpu", "cuda") and not str(t["device"]).startswith("cuda:"):
        bad("device", "must be auto, cpu, cuda or cuda:N")
    if not isinstance(t["val_split"], str):
        bad("val_split", "must be a split name or ''")
    if not isinstance(t["exclude_speakers"], list) or not all(isinstance(x, str) for x in t["exclude_speakers"]):
        bad("exclude_speakers", "must be a list of speaker names")
    if t["grad_accum"] < 1:
        bad("grad_accum", "must be >= 1")
    if t["precision"] not in PRECISIONS:
        bad("precision", f"must be one of {list(PRECISIONS)}")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu (engine.resolve_device); errors as TrainingError."""
    from ..engine import resolve_device as _resolve

    try:
        return _resolve(name)
    except (ValueError, RuntimeError) as exc:
        raise TrainingError(str(exc)) from exc


# --------------------------------------------------------------------------- data
def load_tensors(spec: str, split: str = "train"):
    """Model tensors (docs/architecture.md) of dataset ``spec`` and the codecs that made them:
    ``(tensors, codecs_dict)``.
    """
    tensors, codecs, _ = load_train_data(spec, split)
    return tensors, codecs


def load_train_data(spec: str, split: str = "train", exclude_speakers=(), augment: dict | None = None,
                    seed: int = 0, log=None):
    """Model tensors of dataset ``spec`` as the trainer uses them, the codecs, and the
    augmentation bank.

    ``exclude_speakers``: samples whose recording is by one of them get a recording of the same
    label by another speaker (seeded), so those speakers are never heard. ``augment`` (a resolved
    ``augment:`` section with ``enabled``): also returns the :class:`~crossmodal_ros.augment.AugmentBank`
    and adds ``aug_index`` to the tensors. Returns ``(tensors, codecs_dict, bank_or_None)``.
    """
    from ..codecs import codecs_to_dict, default_codecs
    from ..data import load_dataset
    from ..data.features import model_tensors

    codecs = default_codecs()
    ds = load_dataset(spec, split)
    if exclude_speakers:
        ds = exclude_speaker_audio(ds, list(exclude_speakers), seed)
    tensors = model_tensors(ds, codecs)
    bank = None
    if augment and augment.get("enabled"):
        from ..augment import build_bank

        bank, index = build_bank(ds, codecs, augment, log=log)
        tensors["aug_index"] = torch.from_numpy(index)
    return tensors, codecs_to_dict(codecs), bank


def exclude_speaker_audio(ds: dict, speakers: list, seed: int) -> dict:
    """A copy of dataset dict ``ds`` in which no sample's audio is by one of ``speakers``: each
    such sample takes the clip of a seeded random sample of the same label by another speaker.
    """
    import numpy as np

    if "speaker" not in ds or "audio" not in ds:
        raise TrainingError("train.exclude_speakers needs a dataset with audio and speaker names")
    spk = np.asarray(ds["speaker"]).astype(str)
    unknown = sorted(set(speakers) - set(spk.tolist()))
    if unknown:
        raise TrainingError(f"train.exclude_speakers: {unknown} not in the data (speakers: "
                            f"{sorted(set(spk.tolist()))})")
    bad = np.isin(spk, speakers)
    rng = np.random.default_rng([int(seed), 17])
    src = np.arange(len(spk))
    labels = np.asarray(ds["label"])
    for d in np.unique(labels[bad]):
        pool = np.flatnonzero((labels == d) & ~bad)
        if len(pool) == 0:
            raise TrainingError(f"train.exclude_speakers: no other speaker's recording of label {d}")
        rows = np.flatnonzero((labels == d) & bad)
        src[rows] = rng.choice(pool, len(rows))
    out = dict(ds)
    for key in ("audio", "audio_length", "speaker", "recording", "audio_file"):
        if key in ds:
            out[key] = np.asarray(ds[key])[src]
    return out


def split_train_val(tensors: dict, val_fraction: float, seed: int, limit: int | None = None):
    """Seeded split of a tensor dict into (train, val); ``limit`` keeps the first N samples."""
    n = next(iter(tensors.values())).shape[0]
    if limit:
        n = min(n, int(limit))
    n_val = max(2, int(round(n * val_fraction)))
    if n - n_val < 2:
        raise TrainingError(f"{n} samples are too few to split off a validation set (need >= {n_val + 2})")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    take = lambda idx: {k: v[idx] for k, v in tensors.items() if isinstance(v, torch.Tensor)}  # noqa: E731
    return take(train_idx), take(val_idx)


def limit_samples(tensors: dict, limit: int | None) -> dict:
    """The first ``limit`` samples of a tensor dict (all of them when ``limit`` is falsy)."""
    if not limit:
        return tensors
    return {k: v[: int(limit)] for k, v in tensors.items()}


def batches(tensors: dict, batch_size: int, generator: torch.Generator | None, device, keys=None):
    """Mini-batches (dicts) over ``tensors``; shuffled when ``generator`` is given. A final
    batch of one sample is dropped in training (BatchNorm needs two).
    """
    n = next(iter(tensors.values())).shape[0]
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    keys = keys or list(tensors)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if generator is not None and idx.numel() < 2:
            break
        yield {k: tensors[k][idx].to(device, non_blocking=True) for k in keys}


# --------------------------------------------------------------------------- stages
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


def _train_step(wrapped, micro, args: tuple, opt, clip_params, clip: float, device, precision: str, where: str,
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


def _reduce_sums(sums: dict, ctx, device) -> dict:
    """``sums`` summed over all ranks (rank 0's keys; a key a rank lacks counts 0 there)."""
    if not ctx.enabled:
        return sums
    keys = ctx.broadcast_object(sorted(sums))
    return dict(zip(keys, ctx.all_reduce_sum([float(sums.get(k, 0.0)) for k in keys], device)))


def _grad_scaler(precision: str, device):
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def _sound_loss(vae, batch, beta, clip):
    loss, logs = sigma_vae_loss(vae, batch["audio"], beta, clip, target=batch.get("clean:audio"))
    return loss, {**logs, "loss": float(loss.detach())}


def _model_loss(model, batch, epoch):
    return model.loss(batch, None, epoch)


def _split_or_fail(batch_size: int, ctx, accum: int, key: str) -> None:
    try:
        distributed.check_batch_split(batch_size, ctx, accum, key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def pretrain_sound(model, train, val, tcfg, device, gen, quiet=False, log=print, bank=None, ctx=None) -> dict:
    """SigmaVAE pretraining of the model's sound VAE, then freeze it (best validation epoch).

    Returns a dict of stage metrics. The VAE is trained alone on ``train["audio"]`` with KL
    weight ``model.config["sound_beta"]``. ``ctx``: the :class:`distributed.DistContext`
    (several processes: DDP over the VAE, validation on rank 0, which broadcasts the result).
    """
    ctx = ctx or distributed.DistContext()
    vae = model.bottom.vaes["audio"]
    beta, clip = model.config["sound_beta"], model.config["min_log_sigma"]
    accum, precision = int(tcfg.get("grad_accum", 1)), tcfg.get("precision", "fp32")
    bs = tcfg["sound_pretrain_batch_size"]
    _split_or_fail(bs, ctx, accum, "train.sound_pretrain_batch_size")
    vae.requires_grad_(True)
    opt = torch.optim.Adam(vae.parameters(), lr=tcfg["sound_pretrain_lr"])
    wrapped = distributed.wrap(distributed.LossModule(vae, _sound_loss), ctx, device)
    scaler = _grad_scaler(precision, device)
    n = train["audio"].shape[0]
    best, best_state, history = float("inf"), None, []
    epochs = tcfg["sound_pretrain_epochs"]
    for epoch in range(epochs):
        t0 = time.time()
        vae.train()
        if ctx.enabled:
            torch.manual_seed(ctx.rank_seed(tcfg["seed"], 1, epoch))
        sums, count = {}, 0
        drawn = bank.draw(train, gen) if bank is not None else train
        sound = {k: drawn[k] for k in ("audio", "clean:audio") if k in drawn}
        bar = _progress(distributed.step_batches(sound, bs, gen, device, None, ctx, accum),
                        distributed.n_steps(n, bs, ctx.world_size * accum), f"sound {epoch + 1}/{epochs}", quiet)
        for micro in bar:
            logs = _train_step(wrapped, micro, (beta, clip), opt, (), 0.0, device, precision,
                               f"sound pretraining epoch {epoch + 1}", scaler, sums, ctx.world_size)
            count += 1
            if not quiet:
                bar.set_postfix(loss=f"{logs['rec'] + beta * logs['kl']:.1f}", kl=f"{logs['kl']:.1f}")
        total = _reduce_sums(sums, ctx, device).get("loss", 0.0)
        val_loss = None
        if ctx.is_main:
            vae.eval()
            with torch.inference_mode():
                vals = [sigma_vae_loss(vae, b["audio"], beta, clip)[0].item() * b["audio"].shape[0]
                        for b in batches({"audio": val["audio"]}, 256, None, device)]
            val_loss = sum(vals) / val["audio"].shape[0]
        val_loss = ctx.broadcast_object(val_loss)
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1), "val_loss": val_loss,
                        "time_s": time.time() - t0})
        log(f"sound pretrain epoch {epoch + 1}/{epochs}: train {total / max(count, 1):.2f} val {val_loss:.2f} "
            f"({time.time() - t0:.1f}s)")
        if val_loss < best:
            best, best_state = val_loss, copy.deepcopy(vae.state_dict())
    if best_state is not None:
        vae.load_state_dict(best_state)
    ctx.sync_module(vae, buffers_only=True)  # BatchNorm statistics: rank 0's
    vae.requires_grad_(False)
    model.bottom.audio_pretrained.fill_(True)
    model.train()  # re-applies the frozen-in-eval rule
    return {"sound_pretrain_best_val": best, "sound_pretrain_epochs": epochs, "history": history}


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
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=tcfg["lr"])
    scaler = _grad_scaler(precision, dev)
    start_epoch, best_val, history, stage_info = 0, float("inf"), [], {}
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and hasattr(model, "training_phases"):
        raise TrainingError(f"--resume is not supported for the phased kind {cfg['kind']!r}; start a new run")
    if not hasattr(model, "training_phases"):
        _split_or_fail(tcfg["batch_size"], ctx, accum, "train.batch_size")
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
    bottom = getattr(model, "bottom", None)
    needs_sound = (bottom is not None and "audio" in getattr(bottom, "frozen",
                                                             ()) and not bool(bottom.audio_pretrained))
    if needs_sound and tcfg["sound_pretrain_epochs"] > 0:
        log(f"stage 1: sound SigmaVAE pretraining for {tcfg['sound_pretrain_epochs']} epochs")
        t0 = time.time()
        stage_info = pretrain_sound(model, train, val, tcfg, dev, gen, quiet, log, bank=bank, ctx=ctx)
        stage_info["time_s"] = time.time() - t0
        if ctx.enabled:
            distributed.release()
        # the optimizer was built before; the frozen sound VAE is not in it either way
    elif needs_sound:
        log("warning: sound_pretrain is true but train.sound_pretrain_epochs is 0: the sound VAE stays at its "
            "random initialisation, frozen")

    keys = list(model.modalities)
    if hasattr(model, "training_phases"):
        stage_info = run_phases(model, train, val, tcfg, dev, gen, out, codecs_dict, cfg, quiet, log, ctx=ctx)
        summary = {"kind": cfg["kind"], "best_val_loss": stage_info["best_val"], "epochs": stage_info["epochs"],
                   "parameters": n_total, "time_s": time.time() - t_run, "best": str(best_path),
                   "last": str(last_path), "history": stage_info["history"], "phases": stage_info["phases"]}
        if ctx.is_main:
            _write_logs(out, stage_info["history"], cfg, {"phases": stage_info["phases"]}, summary)
        _check_replicas(ctx, model)
        return summary
    # DDP registers the parameters that are trainable now (after the sound stage froze its VAE)
    wrapped = distributed.wrap(distributed.LossModule(model, _model_loss), ctx, dev)
    epochs, bs = tcfg["epochs"], tcfg["batch_size"]
    n_train = next(iter(train.values())).shape[0]
    summary = {}
    for epoch in range(start_epoch, epochs):
        t0 = time.time()
        model.train()
        if ctx.enabled:
            torch.manual_seed(ctx.rank_seed(tcfg["seed"], 2, epoch))
        sums: dict[str, float] = {}
        count = 0
        epoch_train = bank.draw(train, gen) if bank is not None else train
        step_keys = keys + [k for k in epoch_train if k.startswith("clean:") and k[len("clean:"):] in keys]
        bar = _progress(distributed.step_batches(epoch_train, bs, gen, dev, step_keys, ctx, accum),
                        distributed.n_steps(n_train, bs, ctx.world_size * accum),
                        f"{cfg['kind']} {epoch + 1}/{epochs}", quiet)
        for step, micro in enumerate(bar):
            logs = _train_step(wrapped, micro, (epoch,), opt, model.parameters(), tcfg["grad_clip"], dev, precision,
                               f"epoch {epoch + 1} step {step + 1}", scaler, sums, ctx.world_size)
            count += 1
            if not quiet:
                bar.set_postfix({k.split("/")[-1] if k.startswith("top/") else k: f"{v:.3g}"
                                 for k, v in logs.items() if k == "loss" or k.startswith("top/")})
        sums = _reduce_sums(sums, ctx, dev)
        train_time = time.time() - t0
        if ctx.is_main:
            val_metrics = validate(model, val, dev, epoch)
            record = {"epoch": epoch + 1, "time_s": round(time.time() - t0, 3)}
            record.update({f"train/{k}": v / max(count, 1) for k, v in sums.items()})
            record.update({f"val/{k}": v for k, v in val_metrics.items()})
            history.append(record)
            improved = val_metrics["loss"] < best_val
            if improved:
                best_val = val_metrics["loss"]
                save_checkpoint(best_path, model, codecs_dict, metrics=_metrics(record, stage_info),
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
            save_checkpoint(last_path, model, codecs_dict, metrics=_metrics(record, stage_info), train_state=state)
            _write_logs(out, history, cfg, stage_info)
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
        _write_logs(out, history, cfg, stage_info, summary)
    _check_replicas(ctx, model)
    return summary


def _check_replicas(ctx, model) -> None:
    try:
        ctx.check_replicas(model)
    except RuntimeError as exc:
        raise TrainingError(str(exc)) from exc


def fraction_subset(tensors: dict, fraction: float) -> dict:
    """The first ``ceil(fraction * N)`` samples (at least 2) of an already shuffled tensor dict:
    a fixed subset, e.g. the few paired samples of a semi-supervised phase.
    """
    n = next(iter(tensors.values())).shape[0]
    k = min(n, max(2, math.ceil(fraction * n)))
    return {key: v[:k] for key, v in tensors.items()}


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
    opt = torch.optim.Adam(params, lr=tcfg["lr"])
    scaler = _grad_scaler(precision, device)
    data = fraction_subset(train, phase.data_fraction) if phase.data_fraction < 1.0 else train
    keys = list(model.modalities)
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
    for epoch in range(phase.epochs):
        t0 = time.time()
        model.train()
        if ctx.enabled:
            torch.manual_seed(ctx.rank_seed(tcfg["seed"], 3, zlib.crc32(phase.name.encode()), epoch))
        sums, count = {}, 0
        bar = _progress(distributed.step_batches(data, bs, gen, device, keys, ctx, accum),
                        distributed.n_steps(n, bs, ctx.world_size * accum),
                        f"{phase.name} {epoch + 1}/{phase.epochs}", quiet)
        for step, micro in enumerate(bar):
            _train_step(wrapped, micro, (epoch,), opt, params, tcfg["grad_clip"], device, precision,
                        f"phase {phase.name} epoch {epoch + 1} step {step + 1}", scaler, sums, ctx.world_size)
            count += 1
        sums = _reduce_sums(sums, ctx, device)
        val_metrics = validate(model, val, device, epoch) if ctx.is_main else None
        record = {"phase": phase.name, "epoch": epoch + 1, "time_s": round(time.time() - t0, 3)}
        record.update({f"train/{k}": v / max(count, 1) for k, v in sums.items()})
        if val_metrics is not None:
            record.update({f"val/{k}": v for k, v in val_metrics.items()})
            log(f"{phase.name} epoch {epoch + 1}/{phase.epochs}: train loss "
                f"{record.get('train/loss', float('nan')):.2f}, val loss {val_metrics['loss']:.2f}, "
                f"{record['time_s']:.1f}s")
        history.append(record)
        if on_epoch is not None and ctx.is_main:
            on_epoch(record, val_metrics)
        ctx.barrier()
    del wrapped
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
            metrics = _metrics(record, {})
            state = {"epoch": len(history) + 1, "phase": record["phase"], "seed": tcfg["seed"], "data": cfg["data"],
                     "train_config_json": json.dumps(tcfg)}
            if final and val_metrics["loss"] < best["val"]:
                best["val"] = val_metrics["loss"]
                save_checkpoint(out / "best.pt", model, codecs_dict, metrics=metrics, train_state=state,
                                half=tcfg["half_best"])
            save_checkpoint(out / "last.pt", model, codecs_dict, metrics=metrics, train_state=state)
            history.append(record)
            _write_logs(out, history, cfg, {"phases": info})

        run_phase(model, phase, train, val, tcfg, device, gen, quiet, log, on_epoch, ctx=ctx)
        info.append({"phase": phase.name, "epochs": phase.epochs, "data_fraction": phase.data_fraction,
                     "time_s": round(time.time() - t0, 2)})
    model.unfreeze()
    if ctx.is_main and (phases and phases[-1].epochs == 0 or not (out / "best.pt").is_file()):
        save_checkpoint(out / "best.pt", model, codecs_dict, metrics={}, half=tcfg["half_best"])
    ctx.barrier()
    return {"best_val": best["val"], "epochs": sum(p.epochs for p in phases), "history": history, "phases": info}


def _metrics(record: dict, stage_info: dict) -> dict:
    m = {k: v for k, v in record.items() if isinstance(v, (int, float))}
    if stage_info:
        m["sound_pretrain_best_val"] = stage_info.get("sound_pretrain_best_val")
    return m


def _write_logs(out: Path, history: list, cfg: dict, stage_info: dict, summary: dict | None = None) -> None:
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


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``crossmodal-train``."""
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
    p.add_argument("--limit", type=int, help="use only the first N training samples (tiny runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--grad-accum", type=int, help="overrides train.grad_accum (micro-batches per optimizer step)")
    p.add_argument("--precision", choices=PRECISIONS, help="overrides train.precision")
    return p


def main(argv=None) -> int:
    """Console entry ``crossmodal-train``."""
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
                                             tcfg["seed"], log=say)
        if tcfg["val_split"]:
            # a split of its own: other writers and other recordings than the training data
            val, _ = load_tensors(cfg["data"], tcfg["val_split"])
            train = limit_samples(tensors, args.limit)
            if args.limit:
                val = limit_samples(val, max(4, args.limit // 4))
        else:
            train, val = split_train_val(tensors, tcfg["val_fraction"], tcfg["seed"], args.limit)
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
