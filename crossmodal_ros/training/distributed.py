# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Training on several processes or machines with PyTorch's own engine (torchrun + DDP).

``crossmodal-train`` runs unchanged under ``torchrun``: when the environment torchrun sets
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) says there are
several processes, :func:`setup` initialises the default process group (NCCL for CUDA, gloo for
CPU), and the trainer wraps its loss in :class:`torch.nn.parallel.DistributedDataParallel`.

Batches (:func:`step_batches`): every rank draws the epoch's augmentation variants and its
shuffled order with the *same* seeded generator (so every rank agrees on which variant each
sample gets and on the order), cuts the order into the global batches of ``train.batch_size``
that a single process would use, and splits each global batch into ``world_size x grad_accum``
near-equal micro-batches; rank ``r`` takes micro-batches ``a * world_size + r``. Each micro-batch
loss is weighted by its share of the global batch (times ``world_size``, which DDP's gradient
averaging divides out), so one optimizer step follows the gradient of the global batch's mean
loss whatever the number of processes and accumulation steps. This is a
``DistributedSampler`` in which the shard is taken per batch rather than per epoch; the
generator's state after an epoch does not depend on the world size, which is what lets a run
resume on another number of processes.

Only rank 0 validates, logs and writes checkpoints; the others wait at barriers.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
from torch import nn


#: How long a collective (a barrier) waits for the other processes: long enough for one process
#: per machine to build the augmentation bank cache (minutes) while the others wait for it.
TIMEOUT = datetime.timedelta(minutes=60)


class DistributedSetupError(RuntimeError):
    """The distributed environment is inconsistent or cannot be initialised."""


@dataclass
class DistContext:
    """This process's place in the job. ``world_size == 1``: plain single-process training."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    owns_group: bool = False   # this module initialised the process group (and destroys it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def broadcast_object(self, obj=None, src: int = 0):
        """``obj`` of rank ``src`` on every rank (pickled; for small plain values)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def on_main(self, fn):
        """Run ``fn()`` on rank 0 only and give its result - or raise its exception - on every
        rank (so that an error on rank 0, e.g. a missing checkpoint, does not leave the other
        ranks waiting at the next collective).
        """
        if not self.enabled:
            return fn()
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
                error = exc
        result, error = self.broadcast_object((result, error))
        if error is not None:
            raise error
        return result

    def all_reduce_sum(self, values: list, device) -> list:
        """Element-wise sum of a list of floats over all ranks (float64)."""
        if not self.enabled or not values:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def sync_module(self, module: nn.Module, buffers_only: bool = False) -> None:
        """Copy rank 0's buffers (e.g. BatchNorm running statistics, which each rank updates with
        its own micro-batches) and, unless ``buffers_only``, parameters to every rank.
        """
        if not self.enabled:
            return
        import torch.distributed as dist

        tensors = list(module.buffers()) if buffers_only else list(module.parameters()) + list(module.buffers())
        with torch.no_grad():
            for t in tensors:
                if t.dtype == torch.bool:  # gloo/nccl broadcast no bool tensors
                    tmp = t.to(torch.uint8)
                    dist.broadcast(tmp, 0)
                    t.copy_(tmp.bool())
                else:
                    dist.broadcast(t.data, 0)

    def check_replicas(self, module: nn.Module) -> None:
        """Raise RuntimeError unless every rank holds the same parameters (DDP keeps them equal;
        a difference means the replicas diverged, e.g. a rank ran other steps).
        """
        if not self.enabled:
            return
        import torch.distributed as dist

        from ..checkpoint import state_digest

        digest = state_digest(dict(module.named_parameters()))
        every = [None] * self.world_size
        dist.all_gather_object(every, digest)
        if len(set(every)) != 1:
            raise RuntimeError(f"the {self.world_size} training processes ended with different parameters "
                               f"(digests {[d[:12] for d in every]}); the replicas diverged")

    def rank_seed(self, seed: int, *tags: int) -> int:
        """A seed for this rank's global torch RNG (dropout masks, reparameterisation noise):
        different per rank, stage and epoch, the same for every run with the same ``seed``.
        """
        import hashlib

        h = hashlib.sha256(repr((int(seed), self.rank) + tuple(int(t) for t in tags)).encode())
        return int.from_bytes(h.digest()[:8], "little") & ((1 << 63) - 1)

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the environment torchrun sets (0, 1, 0 without)."""
    def num(name, default):
        raw = os.environ.get(name, "")
        try:
            return int(raw) if raw != "" else default
        except ValueError as exc:
            raise DistributedSetupError(f"environment variable {name}={raw!r} is not an integer") from exc

    world = num("WORLD_SIZE", 1)
    rank = num("RANK", 0)
    local = num("LOCAL_RANK", rank if world > 1 else 0)
    if world < 1 or not 0 <= rank < world:
        raise DistributedSetupError(f"RANK={rank} WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
    return rank, world, local


def current() -> DistContext:
    """The context of an already initialised default process group (single-process otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        _, _, local = env_world() if "LOCAL_RANK" in os.environ else (0, 1, 0)
        return DistContext(dist.get_rank(), dist.get_world_size(), local, dist.get_backend())
    return DistContext()


def setup(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the job torchrun started (no-op for a single process).

    ``device``: the resolved training device. For CUDA each process takes ``cuda:LOCAL_RANK``
    and the NCCL backend; for CPU the gloo backend. Returns ``(context, device)``.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        ctx = current()
        if ctx.enabled and device.type == "cuda":
            device = torch.device("cuda", ctx.local_rank)
        return ctx, device
    rank, world, local = env_world()
    if world == 1:
        return DistContext(), device
    if not dist.is_available():
        raise DistributedSetupError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise DistributedSetupError(f"WORLD_SIZE={world} but {var} is not set; start the trainer with torchrun")
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DistributedSetupError(f"LOCAL_RANK={local} but this machine has {torch.cuda.device_count()} "
                                        "CUDA devices; use --nproc_per_node <= the number of GPUs")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
        dist.init_process_group(backend, device_id=device, timeout=TIMEOUT)
    else:
        backend = "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT)
    return DistContext(rank, world, local, backend, owns_group=True), device


def wrap(module: nn.Module, ctx: DistContext, device: torch.device, find_unused: bool = False) -> nn.Module:
    """``module`` in DistributedDataParallel when the job has several processes, else itself.
    Call after the set of trainable parameters is final (DDP registers them at construction).
    """
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids, output_device=ids[0] if ids else None,
               find_unused_parameters=find_unused)


class LossModule(nn.Module):
    """``forward(*args) = fn(model, *args)``: routes a model's loss method (DDP only hooks
    ``forward``) through DistributedDataParallel. Holds ``model`` as a submodule, so the
    parameters are shared, not copied.
    """

    def __init__(self, model: nn.Module, fn):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(self.model, *args, **kwargs)


def release() -> None:
    """Collect a dropped DDP wrapper now (its gradient hooks go with it) before the next stage
    wraps another set of trainable parameters; the caller deletes its reference first.
    """
    import gc

    gc.collect()


def no_sync(wrapped: nn.Module, skip: bool):
    """DDP's ``no_sync`` (no gradient all-reduce; accumulation micro-steps) when ``skip``."""
    if skip and hasattr(wrapped, "no_sync"):
        return wrapped.no_sync()
    return contextlib.nullcontext()


def check_batch_split(batch_size: int, ctx: DistContext, accum: int, key: str = "train.batch_size") -> None:
    """Every process must get >= 2 samples per micro-batch (BatchNorm); raises ValueError."""
    parts = ctx.world_size * accum
    if batch_size // parts < 2:
        raise ValueError(f"{key} = {batch_size} is the batch of one optimizer step, split over {ctx.world_size} "
                         f"process(es) x train.grad_accum = {accum} micro-batches of {batch_size // parts} samples; "
                         "BatchNorm needs >= 2 per micro-batch: raise the batch size or use fewer processes / "
                         "accumulation steps")


def n_steps(n: int, batch_size: int, parts: int = 1) -> int:
    """The number of optimizer steps :func:`step_batches` makes over ``n`` samples."""
    full, rest = divmod(n, batch_size)
    if rest >= 2 and rest // parts >= 2:  # tensor_split: the smallest piece has rest // parts
        full += 1
    return full


def step_batches(tensors: dict, batch_size: int, generator: torch.Generator, device, keys=None,
                 ctx: DistContext | None = None, accum: int = 1):
    """One epoch of optimizer steps over ``tensors`` for this rank (see the module docstring).

    Yields, per step, a list of ``(weight, batch)`` micro-batches: ``batch`` a dict of tensors on
    ``device``, ``weight`` the factor for its mean loss (``len(micro) * world_size /
    len(global batch)``; exactly 1.0 for one process without accumulation, where the batches
    are exactly those of :func:`crossmodal_ros.training.train.batches`). The order is
    ``torch.randperm(n, generator=generator)`` on every rank. A final global batch too small
    to give every micro-batch 2 samples is dropped (as a final batch of one sample is dropped
    in single-process training).
    """
    ctx = ctx or DistContext()
    world, parts = ctx.world_size, ctx.world_size * accum
    n = next(iter(tensors.values())).shape[0]
    order = torch.randperm(n, generator=generator)
    keys = keys or list(tensors)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if idx.numel() < 2:
            break
        pieces = torch.tensor_split(idx, parts) if parts > 1 else (idx,)
        if min(p.numel() for p in pieces) < 2:
            break
        total = idx.numel()
        mine = [pieces[a * world + ctx.rank] for a in range(accum)]
        yield [(1.0 if parts == 1 else p.numel() * world / total,
                {k: tensors[k][p].to(device, non_blocking=True) for k in keys}) for p in mine]


def autocast(device: torch.device, precision: str):
    """The autocast context of ``train.precision`` (``fp32``: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matrix products natively: a CUDA GPU with bf16 support,
    or a CPU with AMX-BF16 or AVX512-BF16 (``/proc/cpuinfo`` flags; elsewhere torch's own check).
    """
    if device.type == "cuda":  # native only: emulated bf16 (pre-Ampere GPUs) is slow
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type != "cpu":
        return False
    from crossmodal_ros.models.fast import native_bf16_cpu

    return native_bf16_cpu()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``train.precision``: ``auto`` -> ``bf16`` where :func:`fast_bf16`, else ``fp32``; others as given."""
    if precision != "auto":
        return precision
    return "bf16" if fast_bf16(device) else "fp32"


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ValueError when ``precision`` cannot run on ``device``."""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("train.precision fp16 needs a CUDA device (float16 training needs loss scaling with "
                         "torch's GradScaler, which this trainer uses on CUDA only); on CPU use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"train.precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                         "use fp16 or fp32")
