# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""ONNX Runtime path for batch-1 inference of Nexus-family models and the hierarchical baselines.

Batch-1 inference in PyTorch is dominated by per-operator dispatch (hundreds of small aten
calls) and weight reads, not arithmetic. :class:`OnnxNexus` exports the reference
``model.encode`` of one live input subset, and ``model.decode`` of one modality, to ONNX with
the TorchScript exporter (``torch.onnx.export(dynamo=False)``, fixed batch size 1, the subset's
control flow baked in) and runs them in ``onnxruntime.InferenceSession``s (one intra-op
thread, sequential execution, every graph optimisation: BatchNorm folding, Gemm fusion,
constant folding, prepacked weights). A graph is built on first use of its key (``prepare``
builds the 15 encode and 4 decode graphs at once) and kept in memory; with ``cache_dir`` the
exported graphs (1-10 MB each) are also kept on disk, keyed by a digest of the weights, the
torch version and the opset, so a restart skips the export.

With float weights the outputs equal the reference within float32 rounding (max abs difference
about 3e-5 on the shipped model, tested on every subset with atol 1e-4); with
``weights="int8"`` (:func:`quantize_int8`) they are close, not equal (bounds in
``test/test_onnx_path.py``). The disk cache never deletes graphs of other keys (an older torch,
or the earlier one-graph-per-subset layout): remove ``cache_dir`` to reclaim them. Only unmasked, deterministic
(``sample=False``), float32 batch-1 calls with model-shaped inputs run here; :meth:`infer`
returns None for anything else so the caller falls back to another path.

Needs the optional ``onnxruntime`` and ``onnx`` packages (requirements.txt pins them);
:func:`available` says whether they import. Licence: Apache-2.0.
"""
from __future__ import annotations

import io
import itertools
import logging
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from ..modalities import MODEL_SHAPES
from .base import state_digest

#: ONNX opset of the exported graphs
OPSET = 18
#: keys of the latent outputs, after the decoded modalities
LATENTS = ("latent_mu", "latent_logvar")
#: weight formats: float (exact within float rounding) or int8 (:func:`quantize_int8`)
WEIGHTS = ("float", "int8")
#: the int8 graphs' quantization settings, part of their disk-cache key
INT8_TAG = "dyn-perchannel-s8-reduced"


def available() -> bool:
    """True when onnxruntime and onnx (the exporter's dependency) import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    """Raise ImportError with an install hint when the ONNX path cannot run."""
    if not available():
        raise ImportError("backends 'onnx' and 'onnx_int8' need the onnxruntime and onnx packages "
                          "(pip install onnxruntime onnx, versions pinned in requirements.txt); "
                          "use backend='fast' or 'reference' without them")


def matmul_form(proto):
    """Rewrite each ``Gemm`` of ``proto`` (an ``onnx.ModelProto``, changed in place and returned)
    whose weight is an initializer, transposed (``transB=1``, as the exporter writes
    ``nn.Linear``), with ``alpha = beta = 1`` and no ``transA``, as ``MatMul`` of the transposed
    weight plus ``Add`` of the bias: ONNX Runtime's dynamic quantization handles ``MatMul``
    only. Other nodes are kept.
    """
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in proto.graph.initializer}
    nodes = []
    for node in proto.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if not (node.op_type == "Gemm" and node.input[1] in inits and attrs.get("transB", 0) == 1
                and not attrs.get("transA", 0) and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        wt = numpy_helper.from_array(np.ascontiguousarray(w.T), node.input[1] + "__t")
        proto.graph.initializer.append(wt)
        has_bias = len(node.input) > 2 and node.input[2]
        product = node.output[0] + "__mm" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], wt.name], [product], name=node.name + "__mm"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=node.name + "__add"))
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto


def quantize_int8(data: bytes) -> bytes:
    """The graph ``data`` with int8 matrix products: ONNX Runtime's dynamic quantization
    (``onnxruntime.quantization.quantize_dynamic``: int8 weights with one scale per output
    channel, the activations quantized to uint8 per call, ``reduce_range`` (7-bit weights) so
    that x86 CPUs without VNNI do not saturate) of every ``MatMul``, after :func:`matmul_form`.
    Convolutions stay float. Close to the float graph, not equal: bounds in
    ``test/test_onnx_path.py``.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = matmul_form(onnx.load_from_string(data))
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, src)
        root = logging.getLogger()  # the quantizer's advice to pre-process, on the root logger

        def quiet(record) -> bool:
            return "pre-processing before quantization" not in record.getMessage()

        root.addFilter(quiet)
        try:
            quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True,
                             weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(quiet)
        return dst.read_bytes()


class _Encode(torch.nn.Module):
    """``model.encode`` of one input subset with positional inputs: ``(mu, logvar)``."""

    def __init__(self, model, given: tuple):
        super().__init__()
        self.model = model
        self.given = given

    def forward(self, *xs):
        return self.model.encode(dict(zip(self.given, xs)))


class _Decode(torch.nn.Module):
    """``model.decode`` of one modality from the shared latent's mean."""

    def __init__(self, model, modality: str):
        super().__init__()
        self.model = model
        self.modality = modality

    def forward(self, z):
        return self.model.decode(z, modalities=(self.modality,))[self.modality]


class OnnxNexus:
    """Batch-1 inference of ``model`` (any kind whose ``encode``/``decode`` export: Nexus, Nexus-0
    and the hierarchical baselines; eval mode, float32, CPU) through ONNX Runtime.
    ``digest``: a string identifying the weights (the checkpoint's ``state_sha256``; computed
    when None), used for the disk cache under ``cache_dir``.

    One call runs two kinds of graph: the **encode graph of the live subset** (``model.encode``:
    its encoders and the fusion into the shared latent, ``(mu, logvar)``) and one **decode graph
    per modality asked for** (``model.decode`` of that modality from ``mu``). So a latent-only
    call runs the encoders alone, any set of decoded modalities needs no graph of its own, and
    every decoder's weights exist once (the encoders' once per subset that holds them: the 15
    encode and 4 decode graphs are 105 MB on disk). Each session keeps its weights as constant
    initializers, which ONNX Runtime prepacks for its matrix kernels: on a 2-core AMD EPYC this
    ran batch-1 calls about 1.9x faster than sessions sharing one copy of the weights as bound
    inputs (the earlier design, which ORT cannot prepack), for more memory: ``prepare`` adds
    about 250 MB to the process (the shared design: about 190 MB) in about 2 s (0.25 s from the
    disk cache) for the shipped model.
    """

    def __init__(self, model, digest: str | None = None, cache_dir: Path | str | None = None,
                 weights: str = "float"):
        require()
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        self.weights = weights
        if model.training:
            raise ValueError("OnnxNexus needs a model in eval mode")
        ref = next(model.parameters())
        if ref.device.type != "cpu" or ref.dtype != torch.float32:
            raise ValueError("OnnxNexus runs float32 models on the CPU")
        self.model = model
        self.modalities: tuple[str, ...] = tuple(model.modalities)
        if digest is None:
            digest = state_digest(model.state_dict())
        self.digest = str(digest)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._sessions: dict[tuple, tuple] = {}  # ("encode", subset) | ("decode", modality) -> (session, names)
        self._build_lock = threading.Lock()  # one export at a time (the exporter keeps global state)
        #: the decode graphs' input: a batch-1 shared latent
        self.latent_shape: tuple[int, int] = (1, int(model.latent_dim))

    # ------------------------------------------------------------------ build
    def subsets(self):
        """Every non-empty input subset, in canonical order."""
        for k in range(1, len(self.modalities) + 1):
            yield from itertools.combinations(self.modalities, k)

    def prepare(self, encode: bool = True) -> None:
        """Build every decode graph and (``encode``, default) every encode graph, one per input
        subset, now rather than on first use.
        """
        for given in self.subsets() if encode else ():
            self._session(("encode", given))
        for m in self.modalities:
            self._session(("decode", m))

    def _cache_file(self, key: tuple) -> Path | None:
        if self.cache_dir is None:
            return None
        tag = f"{self.digest[:32]}-t{torch.__version__}-o{OPSET}-split-{self.weights}"
        if self.weights == "int8":  # the quantizer's version and settings
            import onnxruntime

            tag += f"-ort{onnxruntime.__version__}-{INT8_TAG}"
        tag = tag.replace("+", "_")
        kind, what = key
        name = f"{kind}--" + ("_".join(what) if kind == "encode" else what) + ".onnx"
        return self.cache_dir / tag / name

    def _example(self, given: tuple) -> tuple:
        g = torch.Generator().manual_seed(0)
        return tuple(torch.rand((1, *MODEL_SHAPES[m]), generator=g) for m in given)

    def _export(self, key: tuple) -> bytes:
        kind, what = key
        if kind == "encode":
            graph, args = _Encode(self.model, what), self._example(what)
            names_in, names_out = [f"in_{m}" for m in what], [f"out_{k}" for k in LATENTS]
        else:
            graph, args = _Decode(self.model, what), (torch.zeros(self.latent_shape),)
            names_in, names_out = ["in_latent"], [f"out_{what}"]
        buf = io.BytesIO()
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the subset's Python checks are baked in
            torch.onnx.export(graph.eval(), args, buf, dynamo=False, opset_version=OPSET,
                              input_names=names_in, output_names=names_out)
        return buf.getvalue()

    def _load(self, key: tuple) -> bytes:
        path = self._cache_file(key)
        if path is not None and path.is_file():
            try:
                return path.read_bytes()
            except OSError:
                pass
        data = self._export(key)
        if self.weights == "int8":
            data = quantize_int8(data)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            except OSError:
                pass  # the disk cache is best effort
        return data

    @staticmethod
    def _options():
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3  # not the warning that an optimised graph is hardware-specific (it is
        return so                  # only kept in memory, on this machine)

    @classmethod
    def _new_session(cls, data: bytes):
        import onnxruntime as ort

        return ort.InferenceSession(data, cls._options(), providers=["CPUExecutionProvider"])

    def _session(self, key: tuple):
        hit = self._sessions.get(key)
        if hit is not None:
            return hit
        with self._build_lock:
            hit = self._sessions.get(key)
            if hit is not None:  # built by another thread meanwhile
                return hit
            try:
                sess = self._new_session(self._load(key))
            except Exception:  # noqa: BLE001 - a corrupt cached file: export afresh
                path = self._cache_file(key)
                if path is None or not path.is_file():
                    raise
                path.unlink(missing_ok=True)
                sess = self._new_session(self._load(key))
            hit = self._sessions[key] = (sess, frozenset(i.name for i in sess.get_inputs()))
            return hit

    # ------------------------------------------------------------------ run
    def applicable(self, inputs: dict) -> tuple | None:
        """The live subset when ``inputs`` is a valid batch-1 float32 call for this path, else None."""
        given = tuple(m for m in self.modalities if m in inputs)
        if not given or any(k not in self.modalities for k in inputs):
            return None
        for m in given:
            x = inputs[m]
            if (not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.device.type != "cpu"
                    or tuple(x.shape) != (1, *MODEL_SHAPES[m])):
                return None
        return given

    def infer(self, inputs: dict, decode: tuple | None = None) -> dict | None:
        """``model.infer(inputs)`` (decoding only ``decode`` when given) as torch tensors, or
        None when the call does not fit this path (see :meth:`applicable`). Safe to call from
        several threads (``InferenceSession.run`` is; graphs are built one at a time).
        """
        given = self.applicable(inputs)
        if given is None:
            return None
        decode = self.modalities if decode is None else tuple(m for m in self.modalities if m in decode)
        sess, names = self._session(("encode", given))
        # by name: the exporter drops inputs a graph does not use (a modality the kind ignores)
        mu, logvar = sess.run(None, {f"in_{m}": np.ascontiguousarray(inputs[m].numpy())
                                     for m in given if f"in_{m}" in names})
        out = self.decode(mu, decode)
        out["latent_mu"], out["latent_logvar"] = torch.from_numpy(mu), torch.from_numpy(logvar)
        return out

    def decode(self, mu, modalities: tuple) -> dict:
        """``model.decode`` of each of ``modalities`` from the batch-1 shared latent mean ``mu``
        (float32, ``(1, D)``, numpy or a CPU tensor) by its decode graph, as torch tensors.
        """
        mu = np.ascontiguousarray(mu.numpy() if isinstance(mu, torch.Tensor) else mu, dtype=np.float32)
        out = {}
        for m in modalities:
            sess, _ = self._session(("decode", m))
            out[m] = torch.from_numpy(sess.run(None, {"in_latent": mu})[0])
        return out
