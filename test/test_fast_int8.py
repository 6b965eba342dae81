# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The int8 fast path (FastNexus(weights="int8"), FusionEngine backend "int8", crossmodal-eval
--backend int8): weight-only int8 products stay close to the float fast path on real validation
samples for every input subset, the kernel's input-width limit is enforced, and the engine's
lazy outputs and errors work as on the float path.

Tolerances (max over 200 validation samples x 15 subsets, against the float fast path): the
measured maxima on the shipped model were image 0.092 (mean 0.0011), audio 0.023, trajectory
0.094, label probability 0.23 with the same argmax everywhere, latent mean 0.047, log-variance
0.144; the bounds below leave about 1.5-2x room. The accuracy cost on the whole test split is in
benchmarks/README.md.
"""
import numpy as np
import pytest
import torch

from crossmodal_ros.codecs import default_codecs
from crossmodal_ros.engine import FusionEngine
from crossmodal_ros.evaluation.evaluate import load_eval_tensors
from crossmodal_ros.modalities import all_subsets
from crossmodal_ros.models import build_model
from crossmodal_ros.models.fast import INT8_ALIGN, FastNexus, Int8Weight, int8_available

pytestmark = pytest.mark.skipif(not int8_available(), reason="this torch build has no _weight_int8pack_mm")

BOUNDS = {"image": 0.2, "audio": 0.05, "trajectory": 0.15, "label": 0.35, "latent_mu": 0.1, "latent_logvar": 0.25}


@pytest.fixture(scope="module")
def shipped():
    eng = FusionEngine.from_checkpoint(device="cpu")
    return eng, FastNexus(eng.model, weights="int8")


@pytest.fixture(scope="module")
def val():
    t = load_eval_tensors("digits", "val")
    return {m: t[m][:200].float() for m in ("image", "audio", "trajectory", "label")}


def test_int8_stays_close_to_the_float_path_on_every_subset(shipped, val):
    eng, q = shipped
    f = eng._fast
    assert f.weights == "float" and q.weights == "int8"
    assert q.weight_bytes() < 0.4 * f.weight_bytes()  # most weight bytes are int8 now
    with torch.inference_mode():
        for subset in all_subsets(eng.modalities):
            x = {m: val[m] for m in subset}
            a, b = f.infer(x), q.infer(x)
            assert set(a) == set(b)
            for key, bound in BOUNDS.items():
                if key == "label":
                    diff = (a[key].softmax(1) - b[key].softmax(1)).abs().max()
                else:
                    diff = (a[key] - b[key]).abs().max()
                assert float(diff) <= bound, (subset, key, float(diff))
            assert float((a["image"] - b["image"]).abs().mean()) < 0.005
            agree = (a["label"].argmax(1) == b["label"].argmax(1)).float().mean()
            assert float(agree) >= 0.99, subset


def test_int8_weight_product_columns_and_width_limit():
    g = torch.Generator().manual_seed(0)
    wt = torch.randn(64, 48, generator=g) * 0.1
    w8 = Int8Weight(wt)
    x = torch.randn(3, 64, generator=g)
    ref = x @ wt
    assert w8.q.dtype == torch.int8 and w8.q.shape == (48, 64) and w8.nbytes == 48 * 64 + 2 * 48
    assert float((w8.matmul(x) - ref).abs().max() / ref.abs().max()) < 0.02
    part = w8.columns(slice(16, 32))
    assert torch.equal(part.matmul(x), w8.matmul(x)[:, 16:32])
    with pytest.raises(ValueError, match=f"divisible by {INT8_ALIGN}"):
        Int8Weight(torch.randn(200, 16))


def test_engine_backend_int8_path_lazy_outputs_and_errors(shipped, val):
    eng, _ = shipped
    q = FusionEngine(eng.model, eng.codecs, device="cpu", backend="int8")
    assert q.path == "fast-int8" and eng.path == "fast"
    x = {m: val[m][:1].numpy() for m in ("image", "trajectory")}
    full = q.infer_tensors(x)
    with torch.inference_mode():
        t = {m: torch.as_tensor(v) for m, v in x.items()}
        from crossmodal_ros.engine import _fast_infer_select

        latent_only = _fast_infer_select(q._fast, t, False, ())
        image_only = _fast_infer_select(q._fast, t, False, ("image",))
    assert set(latent_only) == {"latent_mu", "latent_logvar"}
    assert np.allclose(latent_only["latent_mu"].numpy(), full["latent_mu"], atol=1e-6)
    assert np.allclose(image_only["image"].numpy(), full["image"], atol=1e-6)
    with pytest.raises(ValueError, match="float32 models on the CPU"):
        FusionEngine(eng.model, eng.codecs, device="cpu", backend="int8", half=True)
    with pytest.raises(ValueError, match="weights must be one of"):
        FastNexus(eng.model, weights="int4")


def test_a_kind_without_a_fast_path_runs_the_reference_with_backend_int8():
    model = build_model("mmvae", {}).eval()
    eng = FusionEngine(model, default_codecs(), device="cpu", backend="int8")
    assert eng.path == "reference"


def test_crossmodal_eval_measures_the_fast_paths(tmp_path, shipped):
    from crossmodal_ros.evaluation.evaluate import EvaluationError, FastPathModel, main

    with pytest.raises(EvaluationError, match="Nexus-family"):
        FastPathModel(build_model("mmvae", {}))
    out = tmp_path / "int8"
    # --device auto on a CUDA machine: --backend int8 still evaluates on the CPU
    assert main(["--backend", "int8", "--limit", "40", "--no-plots", "--threads", "1", "--out", str(out)]) == 0
    md = (out / "results.md").read_text()
    assert "**inference path**: int8" in md
    ref = tmp_path / "ref"
    assert main(["--backend", "fast", "--limit", "40", "--no-plots", "--threads", "1", "--device", "cpu",
                 "--out", str(ref)]) == 0
    import json

    a = json.loads((out / "results.json").read_text())
    b = json.loads((ref / "results.json").read_text())
    assert a["header"]["inference path"] == "int8" and b["header"]["inference path"] == "fast"
    assert abs(a["mean_cross_accuracy"] - b["mean_cross_accuracy"]) < 0.02
    rows_b = {(r["given_name"], r["target"]): r["accuracy"] for r in b["rows"]}
    assert all(abs(r["accuracy"] - rows_b[(r["given_name"], r["target"])]) <= 0.051 for r in a["rows"])  # <= 2 of 40
