# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The ONNX Runtime batch-1 path (models/onnx_path.py, FusionEngine backend="onnx") equals the
reference path, and the backend option is validated.

Tolerance: 1e-4 absolute on every output (latent mu/logvar, every decoded modality; the label
as logits and probabilities). Measured on the shipped model: at most about 5e-5 (float32
rounding of a different operation order; the fast path's own difference is about 4e-5).
"""
import os

import numpy as np
import pytest
import torch

from crossmodal_ros.codecs import default_codecs
from crossmodal_ros.engine import BACKENDS, FusionEngine
from crossmodal_ros.modalities import MODEL_SHAPES, all_subsets
from crossmodal_ros.models import build_model
from crossmodal_ros.models import onnx_path

ATOL = 1e-4
needs_ort = pytest.mark.skipif(not onnx_path.available(), reason="onnxruntime / onnx not installed")


def _inputs(batch, modalities, seed=3):
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.rand(batch, *MODEL_SHAPES[m], generator=g) for m in modalities}
    if "label" in x:
        x["label"] = torch.nn.functional.one_hot(torch.arange(batch) % 10, 10).float()
    return x


@pytest.fixture(scope="module")
def engines():
    from crossmodal_ros.paths import default_checkpoint

    path = default_checkpoint()
    if not path or not os.path.exists(path):
        pytest.skip("no shipped checkpoint")
    if not onnx_path.available():
        pytest.skip("onnxruntime / onnx not installed")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    onnx = FusionEngine.from_checkpoint(path, device="cpu", backend="onnx")
    ref = FusionEngine(onnx.model, onnx.codecs, device="cpu", backend="reference")
    fast = FusionEngine(onnx.model, onnx.codecs, device="cpu", backend="fast")
    yield onnx, ref, fast
    torch.set_num_threads(before)


@needs_ort
@pytest.mark.parametrize("subset", all_subsets(), ids=lambda s: "+".join(s))
def test_every_subset_equals_reference(engines, subset):
    onnx, ref, _ = engines
    assert onnx.path == "onnx" and ref.path == "reference"
    x = _inputs(1, subset)
    a, b = ref.infer_tensors(x), onnx.infer_tensors(x)
    assert set(a) == set(b) == {*onnx.modalities, "label_probs", "latent_mu", "latent_logvar"}
    for k in a:
        assert a[k].shape == b[k].shape, k
        err = float(np.abs(a[k] - b[k]).max())
        assert err <= ATOL, f"{subset} {k}: max abs difference {err:.3g} > {ATOL}"
    assert subset in {key[0] for key in onnx._onnx._sessions}  # it really ran on ONNX Runtime


@needs_ort
def test_raw_input_and_lazy_decode_equal_reference(engines):
    onnx, ref, _ = engines
    raw = {"image": np.eye(28, dtype=np.float32), "label": 3,
           "trajectory": np.stack([np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2], 1)}
    a, b = ref.infer(raw), onnx.infer(raw)
    assert a.fused == b.fused and a.label == b.label
    for m in onnx.modalities:
        np.testing.assert_allclose(a.output(m), b.output(m), atol=ATOL, err_msg=m)
    np.testing.assert_allclose(a.latent_mu, b.latent_mu, atol=ATOL)
    np.testing.assert_allclose(a.latent_logvar, b.latent_logvar, atol=ATOL)
    for decode in [(), ("image",), ("audio", "label")]:
        part = onnx.infer(raw, decode=decode)
        np.testing.assert_allclose(part.latent_mu, a.latent_mu, atol=ATOL)
        for m in onnx.modalities:
            if m in decode:
                np.testing.assert_allclose(part.output(m), a.output(m), atol=ATOL, err_msg=m)
            else:
                assert not part.decoded(m)
    assert any(key[1] == () for key in onnx._onnx._sessions)  # the latent-only graph ran


@needs_ort
def test_other_calls_fall_back_to_the_fast_path(engines):
    onnx, _, fast = engines
    x = _inputs(3, onnx.modalities)
    a, b = fast.infer_tensors(x), onnx.infer_tensors(x)  # batch 3: not ONNX
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    mask = np.array([[1, 0, 1, 0]] * 3, bool)
    a, b = fast.infer_tensors(x, mask), onnx.infer_tensors(x, mask)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    one = _inputs(1, ("label",))
    onnx.sample = fast.sample = True
    try:
        torch.manual_seed(5)
        a = fast.infer_tensors(one)
        torch.manual_seed(5)
        b = onnx.infer_tensors(one)
    finally:
        onnx.sample = fast.sample = False
    np.testing.assert_array_equal(a["latent_mu"], b["latent_mu"])
    np.testing.assert_array_equal(a["image"], b["image"])


@needs_ort
def test_refresh_after_weight_change_rebuilds_the_graphs():
    torch.manual_seed(0)
    eng = FusionEngine(build_model("nexus", {}).eval(), default_codecs(), device="cpu", backend="onnx")
    before = eng.infer({"label": 1}).latent_mu
    with torch.no_grad():
        eng.model.shared_encoder.heads.mu.bias.add_(1.0)
    assert np.allclose(eng.infer({"label": 1}).latent_mu, before)  # snapshot until refreshed
    eng.refresh_fast_path()
    np.testing.assert_allclose(eng.infer({"label": 1}).latent_mu, before + 1.0, atol=ATOL)


@needs_ort
def test_disk_cache_is_keyed_by_the_weights(tmp_path):
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    first = onnx_path.OnnxNexus(model, cache_dir=tmp_path)
    x = _inputs(1, ("label",))
    a = first.infer(x)
    files = list(tmp_path.rglob("*.onnx"))
    assert len(files) == 1 and first.digest[:32] in str(files[0])
    second = onnx_path.OnnxNexus(model, cache_dir=tmp_path)
    b = second.infer(x)  # read from disk
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    files[0].write_bytes(b"not a graph")  # a corrupt cache file is exported afresh
    c = onnx_path.OnnxNexus(model, cache_dir=tmp_path).infer(x)
    np.testing.assert_array_equal(a["latent_mu"].numpy(), c["latent_mu"].numpy())


def test_invalid_backend_is_rejected():
    model = build_model("nexus", {}).eval()
    with pytest.raises(ValueError, match="backend must be one of"):
        FusionEngine(model, default_codecs(), device="cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="backend must be one of"):
        FusionEngine.from_checkpoint("/nonexistent.pt", device="cpu", backend="ONNX")
    assert BACKENDS == ("reference", "fast", "onnx", "auto", "int8")


def test_backend_choices_and_fallbacks(monkeypatch):
    model = build_model("nexus", {}).eval()
    assert FusionEngine(model, default_codecs(), device="cpu", backend="reference").path == "reference"
    assert FusionEngine(model, default_codecs(), device="cpu", backend="fast").path == "fast"
    assert FusionEngine(model, default_codecs(), device="cpu").path == "fast"  # the default is unchanged
    assert FusionEngine(model, default_codecs(), device="cpu", fast=False).path == "reference"
    mvae = build_model("mvae", {})
    assert FusionEngine(mvae, default_codecs(), device="cpu", backend="fast").path == "reference"
    assert (FusionEngine(mvae, default_codecs(), device="cpu", backend="auto").path
            == ("onnx" if onnx_path.available() else "reference"))
    if onnx_path.available():
        assert FusionEngine(mvae, default_codecs(), device="cpu", backend="onnx").path == "onnx"
        with pytest.raises(ValueError, match="float32 models on the CPU"):
            FusionEngine(build_model("nexus", {}).eval(), default_codecs(), device="cpu", half=True, backend="onnx")
        assert FusionEngine(model, default_codecs(), device="cpu", backend="auto").path == "onnx"
    monkeypatch.setattr(onnx_path, "available", lambda: False)
    assert FusionEngine(model, default_codecs(), device="cpu", backend="auto").path == "fast"
    with pytest.raises(ImportError, match="needs the onnxruntime and onnx packages"):
        FusionEngine(model, default_codecs(), device="cpu", backend="onnx")


@needs_ort
@pytest.mark.parametrize("kind", ["mvae", "mmvae", "mopoe", "mvtcae", "mmvae_plus"])
def test_baseline_kinds_equal_reference(kind):
    """The ONNX path runs every hierarchical kind (they have no fast path): equal to the reference."""
    torch.manual_seed(0)
    model = build_model(kind, {}).eval()
    onnx = FusionEngine(model, default_codecs(), device="cpu", backend="onnx")
    ref = FusionEngine(model, default_codecs(), device="cpu", backend="reference")
    for subset in (("image",), ("audio", "label"), ("image", "audio", "trajectory", "label")):
        x = _inputs(1, subset)
        a, b = ref.infer_tensors(x), onnx.infer_tensors(x)
        for k in a:
            err = float(np.abs(a[k] - b[k]).max())
            assert err <= ATOL, f"{kind} {subset} {k}: {err:.3g}"
    assert len(onnx._onnx._sessions) == 3


@needs_ort
def test_private_weights_give_the_same_outputs():
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    x = _inputs(1, ("image", "label"))
    a = onnx_path.OnnxNexus(model).infer(x)
    b = onnx_path.OnnxNexus(model, share_weights=False).infer(x)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-5, err_msg=k)


@needs_ort
def test_auto_falls_back_to_fast_when_onnx_fails(monkeypatch):
    model = build_model("nexus", {}).eval()
    auto = FusionEngine(model, default_codecs(), device="cpu", backend="auto")
    onnx = FusionEngine(model, default_codecs(), device="cpu", backend="onnx")
    fast = FusionEngine(model, default_codecs(), device="cpu", backend="fast")

    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(onnx_path.OnnxNexus, "_export", broken)
    with pytest.warns(RuntimeWarning, match="exporter broke"):
        got = auto.infer({"label": 4})
    assert auto.path == "fast"
    np.testing.assert_array_equal(got.latent_mu, fast.infer({"label": 4}).latent_mu)
    with pytest.raises(RuntimeError, match="exporter broke"):
        onnx.infer({"label": 4})
