# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""crossmodal-train on several processes: torchrun + DDP on CPU (gloo), resume on another world
size, gradient accumulation, autocast. Tiny data; every torchrun launch takes ~10 s.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from crossmodal_ros.checkpoint import model_from_checkpoint_dict, read_checkpoint, state_digest
from crossmodal_ros.training import distributed as D
from crossmodal_ros.training import train as T

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]

NEXUS = {"kind": "nexus", "data": "digits", "model": {"latent_dims": {"audio": 16}},
         "train": {"epochs": 1, "batch_size": 8, "sound_pretrain_epochs": 1, "sound_pretrain_batch_size": 8,
                   "val_fraction": 0.25, "num_threads": 1}}
ASSOC = {"kind": "associator", "data": "digits",
         "model": {"modalities": ["image", "audio"], "latent_dims": {"image": 8, "audio": 8, "trajectory": 16,
                                                                     "label": 5},
                   "assoc_hidden": 32, "paired_fraction": 0.5, "phase_epochs": {"vaes": 1, "associators": 1}},
         "train": {"epochs": 1, "batch_size": 8, "val_fraction": 0.25, "num_threads": 1}}

# Runs crossmodal-train's main() and then writes this rank's parameter/buffer digests and the
# digest of the freshly built (untrained) model: the test compares them across ranks.
HELPER = r'''
import json, os, sys
import crossmodal_ros.training.train as T
from crossmodal_ros.checkpoint import state_digest
built = []
_build = T.build_model
def build(*a, **k):
    m = _build(*a, **k)
    built.append((m, state_digest(dict(m.named_parameters()))))
    return m
T.build_model = build
rc = T.main(sys.argv[2:])
model, initial = built[-1]
Path = __import__("pathlib").Path
Path(sys.argv[1], f"rank{os.environ['RANK']}.json").write_text(json.dumps({
    "rc": rc, "initial": initial, "params": state_digest(dict(model.named_parameters())),
    "buffers": state_digest(dict(model.named_buffers())), "world": os.environ["WORLD_SIZE"]}))
sys.exit(rc)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(tmp: Path, cfg: dict, nproc: int, *args, timeout=240):
    """Launch the helper under ``torchrun --nproc_per_node nproc``; returns (proc, [rank reports])."""
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    (tmp / "helper.py").write_text(HELPER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(tmp / "helper.py"), str(tmp),
           "--config", str(tmp / "cfg.yaml"), "--limit", "40", "--quiet", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    reports = [json.loads(p.read_text()) for p in sorted(tmp.glob("rank*.json"))]
    return proc, reports


@pytest.fixture(scope="module")
def two_rank_nexus(tmp_path_factory):
    """One 2-process Nexus run (sound pretraining + 1 epoch), shared by the tests below."""
    tmp = tmp_path_factory.mktemp("ddp_nexus")
    proc, reports = torchrun(tmp, NEXUS, 2, "--out", str(tmp / "run"), "--seed", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc, reports


def test_two_processes_keep_identical_parameters(two_rank_nexus):
    tmp, proc, reports = two_rank_nexus
    assert len(reports) == 2 and all(r["rc"] == 0 and r["world"] == "2" for r in reports)
    r0, r1 = reports
    assert r0["params"] == r1["params"]            # DDP kept the replicas equal ...
    assert r0["params"] != r0["initial"]           # ... after real training steps
    assert "2 processes (gloo)" in proc.stderr and proc.stderr.count("loading data") == 1  # rank 0 logs
    # rank 0 wrote the checkpoints; they hold the trained parameters
    last = read_checkpoint(tmp / "run" / "last.pt")
    saved = model_from_checkpoint_dict(last)
    assert state_digest(dict(saved.named_parameters())) == r0["params"]
    assert last["train"]["world_size"] == 2 and last["train"]["epoch"] == 1
    # the sound stage ran under DDP and the checkpoint serves in the FusionEngine
    from crossmodal_ros.engine import FusionEngine

    engine = FusionEngine.from_checkpoint(tmp / "run" / "best.pt", device="cpu")
    assert bool(engine.model.bottom.audio_pretrained)
    out = engine.infer_tensors({"image": torch.rand(2, 1, 28, 28)})
    assert out["label_probs"].shape == (2, 10) and np.isfinite(out["latent_mu"]).all()
    log = json.loads((tmp / "run" / "log.json").read_text())
    assert np.isfinite(log["epochs"][0]["train/loss"]) and np.isfinite(log["epochs"][0]["val/loss"])


def test_two_process_run_resumes_as_one_process(two_rank_nexus, tmp_path, capsys):
    import shutil

    src, _, _ = two_rank_nexus
    run = tmp_path / "run"
    shutil.copytree(src / "run", run)
    before = read_checkpoint(run / "last.pt")["train"]
    cfg = src / "cfg.yaml"
    common = ["--config", str(cfg), "--limit", "40", "--quiet", "--seed", "3", "--epochs", "2"]
    assert T.main([*common, "--out", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resuming nexus" in err and "trained on 2 process(es), now 1" in err and "stage 1" not in err
    after = read_checkpoint(run / "last.pt")["train"]
    assert after["epoch"] == 2 and "world_size" not in after
    log = json.loads((run / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1, 2]
    # the optimizer state carried over: Adam's step count continues (4 steps per epoch of 30 samples)
    steps = lambda st: {int(s["step"]) for s in st["optimizer"]["state"].values()}  # noqa: E731
    assert steps(before) == {4} and steps(after) == {8}
    # the shuffling generator does not depend on the world size: an uninterrupted 1-process run
    # ends its epochs in the same generator state as the 2-process run + 1-process resume
    assert T.main([*common, "--out", str(tmp_path / "ref"), "--epochs", "1"]) == 0
    ref1 = read_checkpoint(tmp_path / "ref" / "last.pt")["train"]
    assert torch.equal(ref1["generator"], before["generator"])
    assert T.main([*common, "--out", str(tmp_path / "ref"), "--resume"]) == 0
    assert torch.equal(read_checkpoint(tmp_path / "ref" / "last.pt")["train"]["generator"], after["generator"])


def test_phased_model_under_ddp(tmp_path):
    proc, reports = torchrun(tmp_path, ASSOC, 2, "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(reports) == 2 and reports[0]["params"] == reports[1]["params"] != reports[0]["initial"]
    assert (tmp_path / "run" / "best.pt").is_file()
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [r["phase"] for r in log["epochs"]] == ["vaes", "associators"]


def test_step_batches_cover_the_global_batch():
    data = {"x": torch.arange(21)}
    ctxs = [D.DistContext(rank=r, world_size=2) for r in range(2)]
    per_rank = [list(D.step_batches(data, 8, torch.Generator().manual_seed(5), "cpu", None, c, accum=2))
                for c in ctxs]
    single = list(T.batches(data, 8, torch.Generator().manual_seed(5), "cpu"))
    # 21 = 8 + 8 + 5: the last batch cannot give 4 micro-batches 2 samples each -> dropped
    assert len(per_rank[0]) == len(per_rank[1]) == D.n_steps(21, 8, 4) == 2
    for step in range(2):
        got = torch.cat([b["x"] for a in range(2) for r in range(2) for b in [per_rank[r][step][a][1]]])
        assert torch.equal(got, single[step]["x"])           # the same global batch, same order
        assert sum(w for r in range(2) for w, _ in per_rank[r][step]) / 2 == pytest.approx(1.0)
    one = list(D.step_batches(data, 8, torch.Generator().manual_seed(5), "cpu"))
    assert [w for (w, _), in one] == [1.0, 1.0, 1.0] and torch.equal(one[2][0][1]["x"], single[2]["x"])


def test_accumulation_follows_the_full_batch_gradient():
    torch.manual_seed(0)
    x, y = torch.randn(12, 5), torch.randn(12, 1)
    data = {"x": x, "y": y}

    def run(accum):
        lin = torch.nn.Linear(5, 1)
        torch.nn.init.constant_(lin.weight, 0.1)
        torch.nn.init.zeros_(lin.bias)
        opt = torch.optim.SGD(lin.parameters(), lr=0.5)
        mod = D.LossModule(lin, lambda m, b: (((m(b["x"]) - b["y"]) ** 2).mean(), {"mse": 1.0}))
        sums = {}
        for micro in D.step_batches(data, 12, torch.Generator().manual_seed(1), "cpu", None, None, accum):
            T._train_step(mod, micro, (), opt, lin.parameters(), 0.0, torch.device("cpu"), "fp32", "t", None, sums)
        return lin.weight.detach().clone(), sums

    (w1, s1), (w3, s3) = run(1), run(3)
    assert torch.allclose(w1, w3, atol=1e-6) and not torch.equal(w1, torch.full_like(w1, 0.1))
    assert s1["mse"] == pytest.approx(1.0) and s3["mse"] == pytest.approx(1.0)  # logs stay batch means


def test_bf16_autocast_trains_with_finite_loss(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**NEXUS, "train": {**NEXUS["train"], "precision": "bf16", "grad_accum": 2}}))
    assert T.main(["--config", str(cfg), "--limit", "40", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    rec = log["epochs"][0]
    assert np.isfinite(rec["train/loss"]) and np.isfinite(rec["val/loss"])
    assert np.isfinite(log["sound_pretrain"]["history"][0]["train_loss"])
    state = read_checkpoint(tmp_path / "run" / "best.pt")["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values() if torch.is_floating_point(v))


def test_precision_and_split_errors(tmp_path):
    with pytest.raises(T.ConfigError, match=r"train\.precision"):
        T.resolve_config({**NEXUS, "train": {"precision": "fp8"}})
    with pytest.raises(T.ConfigError, match=r"train\.grad_accum"):
        T.resolve_config({**NEXUS, "train": {"grad_accum": 0}})
    data = {"image": torch.rand(12, 1, 28, 28), "audio": torch.rand(12, 1, 128, 32),
            "trajectory": torch.rand(12, 200), "label": torch.eye(10)[torch.arange(12) % 10]}
    tr, va = T.split_train_val(data, 0.25, 0)
    fp16 = T.resolve_config({**NEXUS, "train": {**NEXUS["train"], "precision": "fp16"}})
    if not torch.cuda.is_available():
        with pytest.raises(T.TrainingError, match="fp16 needs a CUDA device"):
            T.run_training(fp16, tr, va, tmp_path, {}, device="cpu", quiet=True, log=lambda s: None)
    big = T.resolve_config({**NEXUS, "train": {**NEXUS["train"], "grad_accum": 8, "sound_pretrain_epochs": 0}})
    with pytest.raises(T.ConfigError, match=r"train\.batch_size = 8 .* micro-batches of 1"):
        T.run_training(big, tr, va, tmp_path, {}, device="cpu", quiet=True, log=lambda s: None)


def test_auto_precision_follows_the_hardware(tmp_path, monkeypatch):
    """``train.precision: auto`` trains in bf16 where the CPU (or GPU) has native bf16 and in fp32
    elsewhere; the run records what it resolved to.
    """
    from crossmodal_ros.training import distributed

    cpu = torch.device("cpu")
    assert distributed.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(distributed, "fast_bf16", lambda device: False)
    assert distributed.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(distributed, "fast_bf16", lambda device: True)
    assert distributed.resolve_precision("auto", cpu) == "bf16"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**NEXUS, "train": {**NEXUS["train"], "precision": "auto"}}))
    assert T.main(["--config", str(cfg), "--limit", "40", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    stored = json.loads(read_checkpoint(tmp_path / "run" / "last.pt")["train"]["train_config_json"])
    assert stored["precision"] == "bf16"
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    monkeypatch.undo()
    expect = "amx_bf16" in flags or "avx512_bf16" in flags
    assert distributed.fast_bf16(cpu) == expect
