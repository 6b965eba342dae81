# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""``backend: int8_auto``, the node's default: the weight-only int8 path where it pays (torch's
kernel and a CPU that multiplies bfloat16 natively, AVX512-BF16 or AMX), the float fast path
elsewhere, on CUDA, in float16 and for model kinds without a fast path (those run the
reference), and when the kernel fails its probe product. How close int8 stays to the float path
is tested in test_fast_int8.py.
"""
import copy
import os
import platform

import numpy as np
import pytest
import torch

from crossmodal_ros.codecs import default_codecs
from crossmodal_ros.engine import FusionEngine
from crossmodal_ros.models import build_model
from crossmodal_ros.models import fast as fm
from crossmodal_ros.models.fast import cpu_flags, int8_available, int8_preferred, native_bf16_cpu


def _broken_int8_kernel(monkeypatch):
    """A CPU the check accepts, with an int8 kernel that returns zeros (it fails the probe)."""
    monkeypatch.setattr(fm, "int8_preferred", lambda flags=None: True)
    monkeypatch.setattr(torch, "_weight_int8pack_mm",
                        lambda x, q, scale: torch.zeros((x.shape[0], q.shape[0]), dtype=x.dtype), raising=False)


@pytest.fixture(scope="module")
def shipped():
    return FusionEngine.from_checkpoint(device="cpu")


def test_the_cpu_check_reads_the_bf16_flags():
    assert native_bf16_cpu(frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert native_bf16_cpu(frozenset({"amx_bf16", "amx_tile"}))
    assert not native_bf16_cpu(frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert not int8_preferred(frozenset({"avx2", "fma"}))  # no bf16 path: int8 would be slower
    assert int8_preferred(frozenset({"avx512_bf16"})) == int8_available()
    if os.path.exists("/proc/cpuinfo") and platform.machine() in ("x86_64", "AMD64"):
        text = open("/proc/cpuinfo").read()
        flags = cpu_flags()
        assert flags is not None and "fpu" in flags  # every x86 CPU lists it: the parse found the line
        assert native_bf16_cpu() == (" avx512_bf16" in text or " amx_bf16" in text)


@pytest.mark.parametrize("preferred", [True, False])
def test_int8_auto_follows_the_cpu_check(shipped, monkeypatch, preferred):
    """The decision itself, both ways, whatever this CPU is (the check is replaced by a constant;
    with True on a torch without the kernel the engine could not build int8, so that case skips).
    """
    if preferred and not int8_available():
        pytest.skip("this torch build has no _weight_int8pack_mm")
    monkeypatch.setattr(fm, "int8_preferred", lambda flags=None: preferred)
    eng = FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8_auto")
    assert eng.requested_backend == "int8_auto"
    assert eng.backend == ("int8" if preferred else "fast")
    assert eng.path == ("fast-int8" if preferred else "fast")
    assert eng._fast.weights == ("int8" if preferred else "float")
    eng.refresh_fast_path()  # a rebuild keeps the resolved path
    assert eng.path == ("fast-int8" if preferred else "fast")


def test_int8_auto_is_fast_in_float16_and_for_kinds_without_a_fast_path(shipped, monkeypatch):
    from crossmodal_ros.engine import resolve_int8_auto

    monkeypatch.setattr(fm, "int8_preferred", lambda flags=None: True)
    assert resolve_int8_auto(torch.device("cpu"), False, shipped.model) == "int8"
    assert resolve_int8_auto(torch.device("cuda"), False, shipped.model) == "fast"  # the kernel is CPU only
    assert resolve_int8_auto(torch.device("cpu"), True, shipped.model) == "fast"
    half = FusionEngine(copy.deepcopy(shipped.model), shipped.codecs, device="cpu", backend="int8_auto", half=True)
    assert half.backend == "fast" and half.path == "fast"  # the int8 kernel runs float32 models only
    mmvae = FusionEngine(build_model("mmvae", {}).eval(), default_codecs(), device="cpu", backend="int8_auto")
    assert mmvae.backend == "fast" and mmvae.path == "reference"


def test_int8_auto_on_this_machine_reads_real_digits_as_the_float_path(shipped):
    from crossmodal_ros.evaluation.evaluate import load_eval_tensors

    eng = FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8_auto")
    assert eng.path == ("fast-int8" if int8_preferred() else "fast")
    val = load_eval_tensors("digits", "val")
    x = {"image": val["image"][:64].numpy(), "trajectory": val["trajectory"][:64].numpy()}
    out, ref = eng.infer_tensors(x), shipped.infer_tensors(x)
    assert np.mean(out["label_probs"].argmax(1) == ref["label_probs"].argmax(1)) >= 0.98
    assert np.abs(out["latent_mu"] - ref["latent_mu"]).max() <= 0.1  # test_fast_int8.BOUNDS


def test_int8_auto_falls_back_to_fast_when_the_kernel_fails_its_probe(shipped, monkeypatch):
    """A kernel that computes garbage (as the int8 kernel did for some input widths, see
    ``Int8Weight``) fails the probe product: int8_auto warns and runs the float path; an explicit
    ``int8`` is an error. Runs on any CPU: the check and the kernel are replaced.
    """
    _broken_int8_kernel(monkeypatch)
    with pytest.warns(RuntimeWarning, match="int8 path is not usable here"):
        eng = FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8_auto")
    assert eng.backend == "fast" and eng.path == "fast" and eng.requested_backend == "int8_auto"
    with pytest.raises(RuntimeError, match="not usable"):
        FusionEngine(shipped.model, shipped.codecs, device="cpu", backend="int8")


def test_crossmodal_eval_resolves_int8_auto_as_the_node(tmp_path, monkeypatch):
    import json

    from crossmodal_ros.evaluation.evaluate import main

    out = tmp_path / "auto"
    assert main(["--backend", "int8_auto", "--device", "cpu", "--limit", "20", "--no-plots", "--threads", "1",
                 "--out", str(out)]) == 0
    header = json.loads((out / "results.json").read_text())["header"]
    assert header["inference path"] == ("int8" if int8_preferred() else "fast")
    assert header["backend requested"] == "int8_auto"
    # a kernel failing its probe: the float path is evaluated, with a warning, not a traceback
    _broken_int8_kernel(monkeypatch)
    assert main(["--backend", "int8_auto", "--device", "cpu", "--limit", "20", "--no-plots", "--threads", "1",
                 "--out", str(tmp_path / "fallback")]) == 0
    header = json.loads((tmp_path / "fallback" / "results.json").read_text())["header"]
    assert header["inference path"] == "fast"
