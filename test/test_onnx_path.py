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
    assert ("encode", subset) in onnx._onnx._sessions  # it really ran on ONNX Runtime


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


@needs_ort
def test_a_stream_uses_the_encoding_cache_and_the_onnx_decoders(engines):
    """``FusionEngine.infer`` (the node's call): unchanged inputs are not encoded again (the fast
    path's encoding cache) and the outputs come from the ONNX decode graphs; equal to the reference.
    """
    onnx, ref, _ = engines
    stroke = np.stack([np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2], 1)
    rng = np.random.default_rng(0)
    onnx._fast.clear_memo()
    hits = onnx._fast.memo_hits
    for _ in range(4):
        raw = {"image": rng.random((28, 28), dtype=np.float32), "trajectory": stroke, "label": 5}
        a, b = ref.infer(raw), onnx.infer(raw, decode=("image", "audio"))
        np.testing.assert_allclose(b.latent_mu, a.latent_mu, atol=ATOL)
        np.testing.assert_allclose(b.latent_logvar, a.latent_logvar, atol=ATOL)
        for m in ("image", "audio"):
            np.testing.assert_allclose(b.output(m), a.output(m), atol=ATOL, err_msg=m)
        assert not b.decoded("trajectory")
    assert onnx._fast.memo_hits - hits == 2 * 3  # stroke and label reused by frames 2-4
    assert {("decode", "image"), ("decode", "audio")} <= set(onnx._onnx._sessions)


@needs_ort
def test_a_call_builds_only_the_graphs_it_runs(engines):
    """Latent only: the subset's encode graph alone; each decoded modality adds its decode graph,
    shared by every subset.
    """
    onnx, ref, _ = engines
    runner = onnx_path.OnnxNexus(onnx.model)
    x = _inputs(1, ("image", "label"))
    out = runner.infer(x, decode=())
    assert set(runner._sessions) == {("encode", ("image", "label"))}
    assert set(out) == {"latent_mu", "latent_logvar"}
    runner.infer(x, decode=("audio",))
    runner.infer(_inputs(1, ("trajectory",)), decode=("audio",))
    assert set(runner._sessions) == {("encode", ("image", "label")), ("decode", "audio"),
                                     ("encode", ("trajectory",))}
    a = ref.infer_tensors(_inputs(1, ("trajectory",)))
    np.testing.assert_allclose(runner.infer(_inputs(1, ("trajectory",)))["audio"].numpy(), a["audio"], atol=ATOL)


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
    x = _inputs(1, ("label",))  # infer_tensors: the ONNX encode graph (infer takes the fast path's latent)
    before = eng.infer_tensors(x)["latent_mu"]
    with torch.no_grad():
        eng.model.shared_encoder.heads.mu.bias.add_(1.0)
    assert np.allclose(eng.infer_tensors(x)["latent_mu"], before)  # snapshot until refreshed
    eng.refresh_fast_path()
    np.testing.assert_allclose(eng.infer_tensors(x)["latent_mu"], before + 1.0, atol=ATOL)


@needs_ort
def test_disk_cache_is_keyed_by_the_weights(tmp_path):
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    first = onnx_path.OnnxNexus(model, cache_dir=tmp_path)
    x = _inputs(1, ("label",))
    a = first.infer(x)
    files = sorted(tmp_path.rglob("*.onnx"))  # the label's encode graph and the four decode graphs
    assert len(files) == 5 and all(first.digest[:32] in str(f) for f in files)
    assert sum(f.name.startswith("encode--label") for f in files) == 1
    second = onnx_path.OnnxNexus(model, cache_dir=tmp_path)
    b = second.infer(x)  # read from disk
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    for f in files:
        f.write_bytes(b"not a graph")  # a corrupt cache file is exported afresh
    c = onnx_path.OnnxNexus(model, cache_dir=tmp_path).infer(x)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), c[k].numpy())


def test_invalid_backend_is_rejected():
    model = build_model("nexus", {}).eval()
    with pytest.raises(ValueError, match="backend must be one of"):
        FusionEngine(model, default_codecs(), device="cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="backend must be one of"):
        FusionEngine.from_checkpoint("/nonexistent.pt", device="cpu", backend="ONNX")
    assert BACKENDS == ("reference", "fast", "onnx", "auto", "int8", "onnx_int8", "int8_auto")


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
    with pytest.raises(ImportError, match="need the onnxruntime and onnx packages"):
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
    assert {key for key in onnx._onnx._sessions if key[0] == "encode"} == {
        ("encode", ("image",)), ("encode", ("audio", "label")), ("encode", ("image", "audio", "trajectory", "label"))}


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


#: onnx_int8 against the reference on every 4th of the first 100 validation samples x 15 subsets
#: (max abs difference; label as probabilities). Measured on the shipped model (AMD EPYC,
#: AVX512-VNNI): image 0.171 (mean 0.0014), audio 0.028, trajectory 0.052, label probability
#: 0.043 with the same argmax everywhere, latent mean 0.10; the bounds leave about 1.5-3x room.
INT8_BOUNDS = {"image": 0.3, "audio": 0.08, "trajectory": 0.15, "label": 0.15, "latent_mu": 0.2}


@needs_ort
def test_onnx_int8_stays_close_to_the_reference_on_every_subset(engines):
    from crossmodal_ros.evaluation.evaluate import load_eval_tensors

    _, ref, _ = engines
    q = FusionEngine(ref.model, ref.codecs, device="cpu", backend="onnx_int8")
    assert q.path == "onnx-int8"
    t = load_eval_tensors("digits", "val")
    val = {m: t[m][:100].float() for m in q.modalities}
    worst, agree, pixel = dict.fromkeys(INT8_BOUNDS, 0.0), [], []
    for subset in all_subsets(q.modalities):
        for i in range(0, 100, 4):
            x = {m: val[m][i:i + 1] for m in subset}
            a, b = ref.infer_tensors(x), q.infer_tensors(x)
            for key in INT8_BOUNDS:
                k = "label_probs" if key == "label" else key
                worst[key] = max(worst[key], float(np.abs(a[k] - b[k]).max()))
            agree.append(a["label"].argmax() == b["label"].argmax())
            pixel.append(float(np.abs(a["image"] - b["image"]).mean()))
        assert ("encode", subset) in q._onnx._sessions
    for key, bound in INT8_BOUNDS.items():
        assert worst[key] <= bound, (key, worst[key])
    assert worst["image"] > 1e-4  # really quantized, not the float graph
    assert np.mean(agree) >= 0.99 and np.mean(pixel) < 0.005
    graph = q._onnx._load(("decode", "image"))
    assert b"MatMulInteger" in graph and b"DynamicQuantizeLinear" in graph


@needs_ort
def test_matmul_form_keeps_the_graph_equal():
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    runner = onnx_path.OnnxNexus(build_model("nexus", {}).eval())
    data = runner._export(("decode", "trajectory"))
    proto = onnx_path.matmul_form(onnx.load_from_string(data))
    kinds = {n.op_type for n in proto.graph.node}
    assert "Gemm" not in kinds and "MatMul" in kinds
    z = np.random.default_rng(0).standard_normal(runner.latent_shape).astype(np.float32)
    a, b = (ort.InferenceSession(g, providers=["CPUExecutionProvider"]).run(None, {"in_latent": z})[0]
            for g in (data, proto.SerializeToString()))
    np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="weights must be one of"):
        onnx_path.OnnxNexus(runner.model, weights="fp8")


@needs_ort
def test_crossmodal_eval_measures_the_onnx_paths(tmp_path, engines):
    """``crossmodal-eval --backend onnx`` equals the reference evaluation (within one judged
    sample of 40 per row), ``onnx_int8`` within 2 of 40; a sampled evaluation is refused.
    """
    import json

    from crossmodal_ros.evaluation.evaluate import EvaluationError, OnnxPathModel, main

    with pytest.raises(EvaluationError, match="deterministic"):
        OnnxPathModel(engines[1].model).infer({"label": torch.zeros(2, 10)}, sample=True)
    res = {}
    for backend in ("reference", "onnx", "onnx_int8"):
        out = tmp_path / backend
        assert main(["--backend", backend, "--limit", "40", "--no-plots", "--threads", "1", "--device", "cpu",
                     "--out", str(out)]) == 0
        res[backend] = json.loads((out / "results.json").read_text())
    assert res["onnx_int8"]["header"]["inference path"] == "onnx_int8"
    ref = {(r["given_name"], r["target"]): r["accuracy"] for r in res["reference"]["rows"]}
    assert len(ref) == 60  # 15 subsets x 4 targets
    for r in res["onnx"]["rows"]:  # equal within float rounding: at most one judged sample of 40 may flip
        assert abs(r["accuracy"] - ref[(r["given_name"], r["target"])]) <= 0.026
    assert all(abs(r["accuracy"] - ref[(r["given_name"], r["target"])]) <= 0.051 for r in res["onnx_int8"]["rows"])


@needs_ort
def test_input_errors_stay_the_callers_and_auto_keeps_onnx():
    """An invalid input is an EngineInputError on every ONNX backend; ``auto`` does not take it
    for a failure of the path (it keeps running ONNX).
    """
    from crossmodal_ros.engine import EngineInputError

    model = build_model("nexus", {}).eval()
    for backend in ("auto", "onnx"):
        eng = FusionEngine(model, default_codecs(), device="cpu", backend=backend)
        with pytest.raises(EngineInputError):
            eng.infer_tensors({"image": torch.zeros(1, 1, 27, 28)})
        with pytest.raises(EngineInputError):
            eng.infer({"image": np.zeros((28, 28), np.float32), "smell": 1.0})
        assert eng.path == "onnx"
        assert eng.infer({"label": 2}).decoded("image") and eng.path == "onnx"


@needs_ort
def test_a_kind_that_cannot_encode_its_first_modality_alone_runs_on_onnx():
    """The decode graphs' input is (1, latent_dim), not the latent of a probe encoding of the
    first modality (an associator without a pair for it cannot encode it alone); graph inputs are
    fed by name (the exporter drops inputs a graph does not use).
    """
    torch.manual_seed(0)
    model = build_model("associator", {"modalities": ["image", "audio", "trajectory"],
                                       "pairs": [["audio", "trajectory"]]}).eval()
    ref = FusionEngine(model, default_codecs(), device="cpu", backend="reference")
    onnx = FusionEngine(model, default_codecs(), device="cpu", backend="onnx")
    x = _inputs(1, ("image", "audio", "trajectory"))
    a, b = ref.infer_tensors(x), onnx.infer_tensors(x)
    assert onnx.path == "onnx" and set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=ATOL, err_msg=k)
    align = build_model("alignment", {}).eval()  # its fused graph does not read every input
    x = _inputs(1, align.modalities)
    a = FusionEngine(align, default_codecs(), device="cpu", backend="reference").infer_tensors(x)
    b = FusionEngine(align, default_codecs(), device="cpu", backend="onnx").infer_tensors(x)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=ATOL, err_msg=k)


def test_plot_inference_draws_the_benchmark_json(tmp_path):
    """``benchmarks/plot_inference.py``: a PNG from a bench_inference result; a result without
    per-subset medians is an error, not an empty picture.
    """
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "plot_inference.py"
    spec = importlib.util.spec_from_file_location("plot_inference", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = [{"subset": s, "ours_med": 2.0, "ours_onnx_med": 1.0, "multivae_med": 4.0} for s in ("image", "label")]
    out = mod.plot({"rows": rows, "machine": {"cpu": "test"}}, tmp_path / "inference.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="no per-subset medians"):
        mod.plot({"rows": []}, tmp_path / "empty.png")


@needs_ort
def test_an_unwritable_cache_folder_is_a_warning(monkeypatch):
    """``onnx_cache`` with no writable cache folder: a warning, and the graphs stay in memory."""
    import crossmodal_ros.paths as paths

    def unwritable():
        raise PermissionError("read-only home")

    monkeypatch.setattr(paths, "cache_dir", unwritable)
    with pytest.warns(RuntimeWarning, match="no disk cache for the ONNX graphs"):
        eng = FusionEngine(build_model("nexus", {}).eval(), default_codecs(), device="cpu", backend="onnx",
                           onnx_cache=True)
    assert eng.path == "onnx" and eng._onnx.cache_dir is None
    assert eng.infer({"label": 3}).decoded("image")


@needs_ort
def test_concurrent_first_calls_build_each_graph_once():
    """Several threads hitting a fresh runner at once (a multi-threaded executor, a learner's
    worker threads): every graph is built once, under the lock, and every result is right.
    """
    import threading

    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    runner = onnx_path.OnnxNexus(model)
    built = []
    export = runner._export

    def counting(key):
        built.append(key)
        return export(key)

    runner._export = counting
    x = _inputs(1, ("image", "label"))
    with torch.no_grad():
        ref = model.infer(x)
    results, errors = [], []

    def call():
        try:
            results.append(runner.infer(x))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 4
    assert sorted(built) == sorted([("encode", ("image", "label"))] + [("decode", m) for m in model.modalities])
    for out in results:
        for k in ref:
            np.testing.assert_allclose(out[k].numpy(), ref[k].numpy(), atol=ATOL, err_msg=k)
