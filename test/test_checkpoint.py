# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Checkpoints: weights_only round trips (float32 exact, float16 close) and every CheckpointError."""
import os
import pickle

import pytest
import torch

from crossmodal_ros.checkpoint import (FORMAT_VERSION, CheckpointError, load_checkpoint, read_checkpoint,
                                      save_checkpoint, set_model_options)
from crossmodal_ros.modalities import all_subsets
from crossmodal_ros.models import build_model

CODECS = {"image": {"type": "ImageCodec", "size": 28}}


def _batch(n=3):
    g = torch.Generator().manual_seed(0)
    return {"image": torch.rand(n, 1, 28, 28, generator=g), "audio": torch.rand(n, 1, 128, 32, generator=g),
            "trajectory": torch.rand(n, 200, generator=g),
            "label": torch.nn.functional.one_hot(torch.arange(n) % 10, 10).float()}


def _trained_model(kind="nexus", config=None):
    torch.manual_seed(0)
    model = build_model(kind, config)
    # move BatchNorm statistics and weights away from their initial values
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss, _ = model.loss(_batch(6), None, 0)
    loss.backward()
    opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return _trained_model()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["nexus", "nexus0", "mvae", "mmvae", "mopoe", "mvtcae", "mmvae_plus"])
def test_round_trip_identical_outputs(tmp_path, kind):
    m = _trained_model(kind, {"latent_dims": {"image": 8}})
    path = save_checkpoint(tmp_path / "m.pt", m, CODECS, metrics={"val/loss": 1.5}, train_state={"epoch": 3})
    # the file is plain data: loadable with weights_only=True alone
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "crossmodal_ros" and raw["format_version"] == FORMAT_VERSION
    loaded, codecs, meta = load_checkpoint(path)
    assert codecs == CODECS and meta["kind"] == kind and meta["metrics"] == {"val/loss": 1.5}
    assert meta["train"] == {"epoch": 3} and loaded.config == m.config and not loaded.training
    b = _batch()
    with torch.inference_mode():
        for subset in all_subsets():
            a = m.infer({k: b[k] for k in subset})
            c = loaded.infer({k: b[k] for k in subset})
            for k in a:
                assert torch.equal(a[k], c[k]), (kind, subset, k)


def test_half_checkpoint_is_smaller_and_close(tmp_path, model):
    full = save_checkpoint(tmp_path / "full.pt", model, CODECS)
    half = save_checkpoint(tmp_path / "half.pt", model, CODECS, half=True)
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    loaded, _, _ = load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())  # upcast on load
    b = _batch()
    with torch.inference_mode():
        a, c = model.infer(b), loaded.infer(b)
    for k in a:
        assert torch.allclose(a[k], c[k], atol=2e-2, rtol=2e-2), k
    assert bool(loaded.bottom.audio_pretrained) == bool(model.bottom.audio_pretrained)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, model):
    path = tmp_path / "sub" / "m.pt"
    save_checkpoint(path, model, CODECS)
    save_checkpoint(path, model, CODECS)  # overwrite
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model, CODECS)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "g.pt"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "crossmodal_ros", "format_version": 1, "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="pickled code"):
        load_checkpoint(path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": _Evil()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)


def test_not_a_crossmodal_checkpoint(tmp_path, model):
    path = tmp_path / "sd.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a crossmodal_ros checkpoint"):
        load_checkpoint(path)


def _edit(tmp_path, model, **changes):
    path = save_checkpoint(tmp_path / "m.pt", model, CODECS)
    ck = torch.load(path, weights_only=True)
    for k, v in changes.items():
        if v is None:
            del ck[k]
        else:
            ck[k] = v(ck) if callable(v) else v
    if changes.get("state_dict") is not None and "state_sha256" in ck:  # consistent, other weights
        from crossmodal_ros.checkpoint import state_digest

        ck["state_sha256"] = state_digest(ck["state_dict"])
    torch.save(ck, path)
    return path


def test_flipped_weight_bytes_fail_the_checksum(tmp_path, model):
    """Torch does not check zip CRCs: without the stored digest a flipped bit loads silently."""
    path = save_checkpoint(tmp_path / "m.pt", model, CODECS)
    ck = torch.load(path, weights_only=True)
    name = next(k for k, v in ck["state_dict"].items() if torch.is_floating_point(v))
    ck["state_dict"][name].view(-1)[0] += 1.0
    torch.save(ck, path)
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_checkpoint(path)


def test_wrong_format_version(tmp_path, model):
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(_edit(tmp_path, model, format_version=99))


def test_unknown_kind(tmp_path, model):
    with pytest.raises(CheckpointError, match="unknown kind 'diffusion'"):
        load_checkpoint(_edit(tmp_path, model, kind="diffusion"))


def test_missing_entry(tmp_path, model):
    with pytest.raises(CheckpointError, match="state_dict"):
        load_checkpoint(_edit(tmp_path, model, state_dict=None))


def test_bad_config(tmp_path, model):
    with pytest.raises(CheckpointError, match="cannot build.*aggregator"):
        load_checkpoint(_edit(tmp_path, model, config=lambda ck: {**ck["config"], "aggregator": "max"}))


@pytest.mark.slow
def test_state_dict_mismatch(tmp_path, model):
    def drop_one(ck):
        sd = dict(ck["state_dict"])
        sd.pop(next(iter(sd)))
        sd["extra.weight"] = torch.zeros(1)
        return sd

    with pytest.raises(CheckpointError, match="missing 1 tensors.*unexpected 1"):
        load_checkpoint(_edit(tmp_path, model, state_dict=drop_one))

    # a config that does not match the weights (different latent size)
    path = _edit(tmp_path, model, config=lambda ck: {**ck["config"], "shared_dim": 16})
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_checkpoint(path)


def test_read_checkpoint_returns_the_raw_dict(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model, CODECS, train_state={"optimizer": {"state": {}}})
    ck = read_checkpoint(path)
    assert ck["kind"] == "nexus" and "created" in ck and ck["train"]["optimizer"] == {"state": {}}


def test_set_model_options_changes_inference_not_weights(tmp_path, model):
    src = save_checkpoint(tmp_path / "m.pt", model, CODECS)
    dst = set_model_options(src, tmp_path / "mix.pt", {"infer_combine": "mixture"})
    a, b = read_checkpoint(src), read_checkpoint(dst)
    assert b["config"]["infer_combine"] == "mixture" and a["config"]["infer_combine"] == "aggregate"
    assert a["state_sha256"] == b["state_sha256"]
    m_a, m_b = load_checkpoint(src)[0], load_checkpoint(dst)[0]
    x = {"image": torch.rand(2, 1, 28, 28), "trajectory": torch.rand(2, 200)}
    with torch.no_grad():
        assert not torch.allclose(m_a.infer(x)["latent_mu"], m_b.infer(x)["latent_mu"])
        one = {"image": x["image"]}
        assert torch.allclose(m_a.infer(one)["latent_mu"], m_b.infer(one)["latent_mu"], atol=1e-6)
    with pytest.raises(CheckpointError, match="infer_combine"):
        set_model_options(src, tmp_path / "bad.pt", {"infer_combine": "vote"})
    with pytest.raises(CheckpointError, match="shape mismatch"):
        set_model_options(src, tmp_path / "bad.pt", {"shared_dim": 16})
    assert not (tmp_path / "bad.pt").exists()
