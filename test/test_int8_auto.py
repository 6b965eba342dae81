# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""``backend: int8_auto``, the node's default: the weight-only int8 path where it pays (torch's
kernel and a CPU that multiplies bfloat16 natively, AVX512-BF16 or AMX), the float fast path
elsewhere, on CUDA and in float16, and when the kernel fails its probe product. How close int8
stays to the float path is tested in test_fast_int8.py.
"""
import os

import pytest
import torch

from crossmodal_ros.engine import BACKENDS, FusionEngine
from crossmodal_ros.models.fast import cpu_flags, int8_available, int8_preferred, native_bf16_cpu


@pytest.fixture(scope="module")
def shipped():
    return FusionEngine.from_checkpoint(device="cpu")


def test_the_cpu_check_reads_the_bf16_flags():
    assert native_bf16_cpu(frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert native_bf16_cpu(frozenset({"amx_bf16", "amx_tile"}))
    assert not native_bf16_cpu(frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert not int8_preferred(frozenset({"avx2", "fma"}))  # no bf16 path: int8 would be slower
    assert int8_preferred(frozenset({"avx512_bf16"})) == int8_available()
    if os.path.exists("/proc/cpuinfo"):
        text = open("/proc/cpuinfo").read()
        flags = cpu_flags()
        assert flags is not None and "fpu" in flags  # every x86 CPU lists it; the parse found the line
        assert native_bf16_cpu() == (" avx512_bf16" in text or " amx_bf16" in text)


def test_int8_auto_resolves_to_int8_where_it_pays_else_fast(shipped):
    assert "int8_auto" in BACKENDS
    eng = FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8_auto")
    want = "int8" if int8_preferred() else "fast"
    assert eng.requested_backend == "int8_auto" and eng.backend == want
    assert eng.path == ("fast-int8" if want == "int8" else "fast")
    half = FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8_auto", half=True)
    assert half.backend == "fast" and half.path == "fast"  # the int8 kernel runs float32 models only
    shipped.model.float()  # .half() above converted the shared module in place
    x = {"image": torch.rand(1, 1, 28, 28).numpy()}
    out = eng.infer_tensors(x)
    ref = shipped.infer_tensors(x)
    assert out["label_probs"].argmax() == ref["label_probs"].argmax()


@pytest.mark.skipif(not int8_preferred(), reason="int8_auto runs the float path on this machine anyway")
def test_int8_auto_falls_back_to_fast_when_the_kernel_fails_its_probe(shipped, monkeypatch):
    """A kernel that computes garbage (as the int8 kernel did for some input widths, see
    ``Int8Weight``) fails the probe product: int8_auto warns and runs the float path; an explicit
    ``int8`` is an error.
    """
    monkeypatch.setattr(torch, "_weight_int8pack_mm",
                        lambda x, q, scale: torch.zeros((x.shape[0], q.shape[0]), dtype=x.dtype))
    with pytest.warns(RuntimeWarning, match="int8 path is not usable here"):
        eng = FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8_auto")
    assert eng.backend == "fast" and eng.path == "fast"
    with pytest.raises(RuntimeError, match="not usable"):
        FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8")


def test_crossmodal_eval_resolves_int8_auto_as_the_node(tmp_path):
    import json

    from crossmodal_ros.evaluation.evaluate import main

    out = tmp_path / "auto"
    assert main(["--backend", "int8_auto", "--device", "cpu", "--limit", "20", "--no-plots", "--threads", "1",
                 "--out", str(out)]) == 0
    header = json.loads((out / "results.json").read_text())["header"]
    assert header["inference path"] == ("int8" if int8_preferred() else "fast")
