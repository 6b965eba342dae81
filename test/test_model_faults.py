# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Model and training faults: bad checkpoints at lifecycle configure (missing, truncated,
corrupt, not ours, wrong format version, wrong modality set, mismatched weights, a pickle that
would run code) fail with a message naming the problem and leave the node up and configurable;
training catches NaN loss, resumes after SIGKILL from the last atomic checkpoint, and reports a
corrupt dataset file clearly.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Int32, String

from crossmodal_ros.checkpoint import read_checkpoint, save_checkpoint, state_digest
from crossmodal_ros.codecs import codecs_to_dict, default_codecs
from crossmodal_ros.models import build_model
from crossmodal_ros.ros.nexus_node import make_node
from crossmodal_ros.training import train as T

from ros_helpers import Collector, ros_context, ros_module_context  # noqa: F401 (fixtures)

REPO = pathlib.Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _save(path, modalities=None):
    torch.manual_seed(0)
    cfg = {"modalities": list(modalities)} if modalities else None
    return str(save_checkpoint(path, build_model("nexus", cfg), codecs_to_dict(default_codecs()),
                               half=True))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("ckpt") / "good.pt")


class CodeOnLoad:
    """Unpickling this object calls ``Path.touch(marker)``: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _bad_checkpoints(tmp_path, good: str) -> dict:
    """Name -> (path, phrase the configure error must contain)."""
    ckpt = read_checkpoint(good)
    out = {}
    out["missing"] = (tmp_path / "absent.pt", "does not exist")
    data = pathlib.Path(good).read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    out["truncated"] = (tmp_path / "truncated.pt", "corrupt or truncated")
    rng = np.random.default_rng(0)
    (tmp_path / "corrupt.pt").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out["corrupt"] = (tmp_path / "corrupt.pt", "corrupt or truncated")
    flipped = bytearray(data)  # bit rot in the weights: torch's zip reader does not notice
    for i in rng.integers(len(flipped) // 4, 3 * len(flipped) // 4, 16):
        flipped[i] ^= 0x10
    (tmp_path / "bitrot.pt").write_bytes(bytes(flipped))
    out["bitrot"] = (tmp_path / "bitrot.pt", "do not match the checksum")
    model = build_model("nexus")
    with torch.no_grad():
        next(iter(model.parameters())).fill_(float("nan"))
    save_checkpoint(tmp_path / "nan.pt", model, codecs_to_dict(default_codecs()))
    out["nan_weights"] = (tmp_path / "nan.pt", "NaN/Inf weights")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    out["foreign"] = (tmp_path / "foreign.pt", "not a crossmodal_ros checkpoint")
    torch.save({**ckpt, "format_version": 99}, tmp_path / "v99.pt")
    out["version"] = (tmp_path / "v99.pt", "format_version 99")
    state = dict(ckpt["state_dict"])
    state.pop(next(iter(state)))
    torch.save({**ckpt, "state_dict": state, "state_sha256": state_digest(state)},
               tmp_path / "weights.pt")  # consistent file, but not this model's weights
    out["weights"] = (tmp_path / "weights.pt", "state dict does not match")
    marker = tmp_path / "CODE_RAN"
    torch.save({**ckpt, "payload": CodeOnLoad(marker)}, tmp_path / "pickle.pt")
    out["pickle"] = (tmp_path / "pickle.pt", "pickled code")
    return out


def test_bad_checkpoints_fail_configure_with_a_named_problem_then_recover(ros_context, good,
                                                                          tmp_path):
    rc = ros_context
    node = rc.add(make_node(context=rc.context, checkpoint=good, autostart=False,
                            heartbeat_hz=0.0, max_rate_hz=20.0))
    cases = _bad_checkpoints(tmp_path, good)
    for name, (path, phrase) in cases.items():
        node.set_parameters([Parameter("checkpoint", value=str(path))])
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE, name
        assert node.lifecycle_state == "unconfigured" and node.engine is None, name
        assert phrase in node.last_error and str(path) in node.last_error, (name, node.last_error)
    assert not (tmp_path / "CODE_RAN").exists(), "unpickling ran code from the checkpoint"
    # the same node is configured with a good checkpoint and works
    node.set_parameters([Parameter("checkpoint", value=good)])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.last_error == ""
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    _fuses_a_label(rc, node)


def test_wrong_modality_set_fails_configure_and_names_both_sets(ros_context, good, tmp_path):
    rc = ros_context
    two = _save(tmp_path / "image_audio.pt", ["image", "audio"])
    node = rc.add(make_node(context=rc.context, checkpoint=two, autostart=False,
                            modalities=["image", "audio", "trajectory", "label"]))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    err = node.last_error
    assert "trained for modalities image+audio" in err, err
    assert "configured for image+audio+trajectory+label" in err and "trajectory+label" in err, err
    assert node.lifecycle_state == "unconfigured"
    # an unknown name in the parameter is refused up front
    assert not node.set_parameters([Parameter("modalities", value=["image", "smell"])])[0].successful
    # a subset the model has is fine, and so is the full model
    node.set_parameters([Parameter("modalities", value=["image", "audio"])])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    node.set_parameters([Parameter("checkpoint", value=good),
                         Parameter("modalities", value=["image", "audio", "trajectory", "label"])])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    _fuses_a_label(rc, node)


def _fuses_a_label(rc, node):
    peer = rc.add(Node("label_source", context=rc.context))
    pub = peer.create_publisher(Int32, "label", 10)
    out = Collector(peer, {"/nexus/modalities": String})
    assert rc.spin_until(lambda: pub.get_subscription_count() > 0
                         and peer.count_publishers("/nexus/modalities") > 0, 5.0)
    pub.publish(Int32(data=3))
    assert rc.spin_until(lambda: out.count("/nexus/modalities") > 0, 5.0)
    assert out.last("/nexus/modalities").data == "label"


# --------------------------------------------------------------------------- training
TINY = {"kind": "nexus", "data": "digits",
        "model": {"latent_dims": {"audio": 16}},
        "train": {"epochs": 1, "batch_size": 8, "sound_pretrain_epochs": 0,
                  "val_fraction": 0.25, "num_threads": 1}}


def _cfg(tmp_path, **train):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], **train}}))
    return str(path)


def _mhd_file(folder: pathlib.Path, n=16, nan=False) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 28, 28, generator=g)
    if nan:
        images[3, 0, 5, 5] = float("nan")
    data = (torch.randint(0, 10, (n,), generator=g), images, torch.rand(n, 200, generator=g),
            torch.rand(n, 128, 32, generator=g), {"min": 0.0, "max": 1.0}, {"min": 0.0, "max": 1.0})
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(data, folder / "mhd_train.pt")


def test_nan_in_the_data_stops_training_with_a_clear_message(tmp_path, capsys):
    _mhd_file(tmp_path / "mhd", nan=True)
    rc = T.main(["--config", _cfg(tmp_path), "--data", f"mhd:{tmp_path / 'mhd'}", "--quiet",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "loss is nan" in err and "check the data for NaN/Inf" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_mhd_file_is_a_clear_error(tmp_path, capsys, damage):
    _mhd_file(tmp_path / "mhd")
    f = tmp_path / "mhd" / "mhd_train.pt"
    data = f.read_bytes()
    f.write_bytes(b"\x80\x04garbage" * 50 if damage == "garbage" else data[: len(data) // 3])
    rc = T.main(["--config", _cfg(tmp_path), "--data", f"mhd:{tmp_path / 'mhd'}", "--quiet",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot be read as an MHD file" in err and str(f) in err, err


@pytest.mark.parametrize("victim", ["samples.npz", "recordings.npz", "recordings.flac",
                                    "manifest.json"])
def test_corrupt_digits_file_is_a_clear_error(tmp_path, capsys, victim):
    from crossmodal_ros.data import load_dataset
    from crossmodal_ros.data.digits import DEFAULT_ROOT, DatasetError

    root = tmp_path / "digits"
    shutil.copytree(DEFAULT_ROOT, root)
    data = (root / victim).read_bytes()
    (root / victim).write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=f"{victim} is corrupt or unreadable"):
        load_dataset(f"digits:{root}", "train")
    rc = T.main(["--config", _cfg(tmp_path), "--data", f"digits:{root}", "--quiet",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "corrupt or unreadable" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_training_killed_mid_run_resumes_from_the_last_atomic_checkpoint(tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(tmp_path, epochs=200)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "crossmodal_ros.training.train", "--config", cfg, "--limit",
            "40", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "last.pt").exists(), proc.stderr.read().decode() if proc.poll() else "timeout"
        time.sleep(0.3)  # somewhere in the next epoch, possibly mid-save
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    last = read_checkpoint(out / "last.pt")  # complete despite the kill (temp file + rename)
    done = int(last["train"]["epoch"])
    assert 1 <= done < 200
    res = subprocess.run(base + ["--resume", "--epochs", str(done + 1)], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=180)
    assert res.returncode == 0, res.stderr
    assert f"resuming nexus from {out / 'last.pt'} after epoch {done}" in res.stderr
    assert read_checkpoint(out / "last.pt")["train"]["epoch"] == done + 1
    assert (out / "best.pt").is_file()
