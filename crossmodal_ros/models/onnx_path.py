# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""ONNX Runtime path for batch-1 inference of Nexus-family models and the hierarchical baselines.

Batch-1 inference in PyTorch is dominated by per-operator dispatch (hundreds of small aten
calls), not arithmetic. :class:`OnnxNexus` exports the reference ``model.infer`` of one live
input subset (and one set of decoded modalities) to ONNX with the TorchScript exporter
(``torch.onnx.export(dynamo=False)``, fixed batch size 1, the subset's control flow baked in)
and runs it in an ``onnxruntime.InferenceSession`` (one intra-op thread, sequential execution,
every graph optimisation: BatchNorm folding, Gemm fusion, constant folding). A graph is built
on first use of its key (``prepare`` builds the 15 full-decode subsets at once) and kept in
memory, its large weights shared with the other graphs' sessions; with ``cache_dir`` the
exported graphs (about 20 MB each) are also kept on disk, keyed by a digest of the weights,
the torch version and the opset, so a restart skips the export.

Outputs equal the reference within float32 rounding (max abs difference about 3e-5 on the
shipped model, tested on every subset with atol 1e-4). Only unmasked, deterministic
(``sample=False``), float32 batch-1 calls with model-shaped inputs run here; :meth:`infer`
returns None for anything else so the caller falls back to another path.

Needs the optional ``onnxruntime`` and ``onnx`` packages (requirements.txt pins them);
:func:`available` says whether they import. Licence: Apache-2.0.
"""
from __future__ import annotations

import hashlib
import io
import itertools
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
#: initializers with at least this many elements are shared between the sessions
_SHARE_MIN = 1024


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
        raise ImportError("backend 'onnx' needs the onnxruntime and onnx packages "
                          "(pip install onnxruntime onnx, versions pinned in requirements.txt); "
                          "use backend='fast' or 'reference' without them")


class _Graph(torch.nn.Module):
    """``model.infer`` of one subset with positional inputs and a tuple of outputs."""

    def __init__(self, model, given: tuple, decode: tuple):
        super().__init__()
        self.model = model
        self.given = given
        self.decode = decode

    def forward(self, *xs):
        inputs = dict(zip(self.given, xs))
        mu, logvar = self.model.encode(inputs)
        out = self.model.decode(mu, modalities=self.decode) if self.decode else {}
        return tuple(out[m] for m in self.decode) + (mu, logvar)


class OnnxNexus:
    """Batch-1 inference of ``model`` (any kind whose ``encode``/``decode`` export: Nexus, Nexus-0
    and the hierarchical baselines; eval mode, float32, CPU) through
    ONNX Runtime. ``digest``: a string identifying the weights (the checkpoint's
    ``state_sha256``; computed when None), used for the disk cache under ``cache_dir``.
    ``share_weights`` (default on): one copy of the weights for all subset sessions (about 160 MB
    over the fast path for the 15 subsets instead of about 750 MB; measured 0.07-0.1 ms slower
    per call, as ONNX Runtime prepacks only constant initializers, not bound inputs).
    """

    def __init__(self, model, digest: str | None = None, cache_dir: Path | str | None = None,
                 share_weights: bool = True):
        require()
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
        self.share_weights = bool(share_weights)
        self._sessions: dict[tuple, tuple] = {}
        self._shared: dict[str, object] = {}  # content key -> OrtValue shared by every session

    # ------------------------------------------------------------------ build
    def subsets(self):
        """Every non-empty input subset, in canonical order."""
        for k in range(1, len(self.modalities) + 1):
            yield from itertools.combinations(self.modalities, k)

    def prepare(self) -> None:
        """Build the full-decode graph of every input subset now (not on first use)."""
        for given in self.subsets():
            self._session(given, self.modalities)

    def _cache_file(self, given: tuple, decode: tuple) -> Path | None:
        if self.cache_dir is None:
            return None
        tag = f"{self.digest[:32]}-t{torch.__version__}-o{OPSET}".replace("+", "_")
        name = "_".join(given) + "--" + ("_".join(decode) if decode else "latent") + ".onnx"
        return self.cache_dir / tag / name

    def _export(self, given: tuple, decode: tuple) -> bytes:
        g = torch.Generator().manual_seed(0)
        xs = tuple(torch.rand((1, *MODEL_SHAPES[m]), generator=g) for m in given)
        buf = io.BytesIO()
        graph = _Graph(self.model, given, decode).eval()
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the subset's Python checks are baked in
            torch.onnx.export(graph, xs, buf, dynamo=False, opset_version=OPSET,
                              input_names=[f"in_{m}" for m in given],
                              output_names=[f"out_{k}" for k in (*decode, *LATENTS)])
        return buf.getvalue()

    def _load(self, given: tuple, decode: tuple) -> bytes:
        path = self._cache_file(given, decode)
        if path is not None and path.is_file():
            try:
                return path.read_bytes()
            except OSError:
                pass
        data = self._export(given, decode)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
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

    def _new_session(self, data: bytes):
        """A session on ``data`` whose large weights are shared with the other subsets' sessions,
        and an IOBinding with those weights bound (returned as ``(session, binding)``).

        Each subset graph holds most of the model's weights, and ONNX Runtime copies (and
        prepacks) the initializers of every session: 15 plain sessions cost about 740 MB. So the
        graph is optimised once (ORT's folding, written to a temporary file), its large
        initializers become graph inputs named after their content, and those inputs are bound
        once to ``OrtValue``s shared by every session (one copy of each distinct tensor: about
        120 MB for the 15 full-decode sessions; measured about 0.05-0.1 ms slower per call than
        private initializers).
        """
        import tempfile

        import onnx
        import onnxruntime as ort
        from onnx import helper, numpy_helper

        if not self.share_weights:
            sess = ort.InferenceSession(data, self._options(), providers=["CPUExecutionProvider"])
            return sess, sess.io_binding()
        with tempfile.TemporaryDirectory() as tmp:
            so = self._options()
            so.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
            ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
            proto = onnx.load(so.optimized_model_filepath)
        renamed, dropped, types = {}, [], {}
        for init in proto.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.size < _SHARE_MIN:
                continue
            key = "w_" + hashlib.sha1(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes()).hexdigest()[:24]
            if key not in self._shared:
                self._shared[key] = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr))
            renamed[init.name] = key
            types[key] = (init.data_type, list(init.dims))
            dropped.append(init)
        for init in dropped:
            proto.graph.initializer.remove(init)
        for key in sorted(types):
            proto.graph.input.append(helper.make_tensor_value_info(key, *types[key]))
        for node in proto.graph.node:
            for i, name in enumerate(node.input):
                if name in renamed:
                    node.input[i] = renamed[name]
        sess = ort.InferenceSession(proto.SerializeToString(), self._options(), providers=["CPUExecutionProvider"])
        binding = sess.io_binding()
        for key in set(renamed.values()):
            binding.bind_ortvalue_input(key, self._shared[key])
        return sess, binding

    def _session(self, given: tuple, decode: tuple):
        key = (given, decode)
        hit = self._sessions.get(key)
        if hit is None:
            data = self._load(given, decode)
            try:
                sess, binding = self._new_session(data)
            except Exception:  # noqa: BLE001 - a corrupt cached file: export afresh
                path = self._cache_file(given, decode)
                if path is None or not path.is_file():
                    raise
                path.unlink(missing_ok=True)
                sess, binding = self._new_session(self._load(given, decode))
            names = [f"out_{k}" for k in (*decode, *LATENTS)]
            for name in names:
                binding.bind_output(name, "cpu")
            hit = self._sessions[key] = (binding, sess, [f"in_{m}" for m in given], (*decode, *LATENTS),
                                         threading.Lock())
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
        None when the call does not fit this path (see :meth:`applicable`).
        """
        given = self.applicable(inputs)
        if given is None:
            return None
        decode = self.modalities if decode is None else tuple(m for m in self.modalities if m in decode)
        binding, sess, in_names, out_keys, lock = self._session(given, decode)
        with lock:  # the binding holds per-call state
            for name, m in zip(in_names, given):
                binding.bind_cpu_input(name, np.ascontiguousarray(inputs[m].numpy()))
            sess.run_with_iobinding(binding)
            outs = binding.copy_outputs_to_cpu()
        return {k: torch.from_numpy(v) for k, v in zip(out_keys, outs)}
