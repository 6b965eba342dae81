# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""FusionEngine: ROS-free inference on raw sensor arrays (numpy in, numpy out).

The engine owns a model loaded from a checkpoint and the codecs stored with it, so a robot
preprocesses exactly as in training. ``infer`` takes any non-empty subset of raw readings and
returns reconstructions of every modality plus the shared latent; ``infer_tensors`` is the
batched path on model tensors. The inference node (crossmodal_ros.ros.inference_node) wraps it.

Raw forms: ``image`` camera frame HxW / HxWxC (uint8/uint16/float); ``audio`` mono PCM 1-D
(needs ``sample_rate``); ``trajectory`` (N, 2) points (or strokes, as the TrajectoryCodec
accepts); ``label`` int.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint
from . import units
from .codecs import CodecError
from .models import fast as fm
from .models.base import ModelInputError
from .modalities import AUDIO, IMAGE, LABEL, TRAJECTORY
from .units.label import softmax as _softmax


#: inference backends (``FusionEngine(backend=...)``)
BACKENDS = ("reference", "fast", "onnx", "auto", "int8", "onnx_int8", "int8_auto")


class EngineInputError(ValueError):
    """Input the engine cannot fuse: empty subset, unknown modality, bad raw data (the codec's
    message is included), missing sample rate.
    """


@dataclass(frozen=True)
class FusionResult:
    """One fusion: the modalities reconstructed from the ``fused`` inputs (numpy arrays).

    ``outputs`` maps each decoded modality to its output (the unit's ``to_output``): ``image``
    (28, 28) float32 in [0, 1]; ``audio`` the (128, 32) mel, float32 in [0, 1] (mel x frames);
    ``trajectory`` (100, 2) float32 points (x, y) in [0, 1]; ``label`` (10,) float32 class
    probabilities. ``latent_mu`` / ``latent_logvar`` (latent_dim,) float32; ``fused`` the
    modality names that were given, in canonical order; ``device`` "cpu"/"cuda".

    The attributes of the four built-in modalities (``image``, ``audio_mel``, ``trajectory``,
    ``label_probs``, and ``label`` the argmax) read ``outputs``; a modality that was not decoded
    reads as its unit's empty output (``label`` -1).
    """

    outputs: dict
    latent_mu: np.ndarray
    latent_logvar: np.ndarray
    fused: tuple
    device: str

    def output(self, modality: str):
        """The output of ``modality``, or its unit's empty output when it was not decoded."""
        if modality in self.outputs:
            return self.outputs[modality]
        return units.unit(modality).empty_output()

    def decoded(self, modality: str) -> bool:
        """Whether ``modality`` was decoded (lazy decoding leaves it out)."""
        return modality in self.outputs and np.asarray(self.outputs[modality]).size > 0

    @property
    def image(self) -> np.ndarray:
        return self.output(IMAGE)

    @property
    def audio_mel(self) -> np.ndarray:
        return self.output(AUDIO)

    @property
    def trajectory(self) -> np.ndarray:
        return self.output(TRAJECTORY)

    @property
    def label_probs(self) -> np.ndarray:
        return self.output(LABEL)

    @property
    def label(self) -> int:
        probs = self.output(LABEL)
        return int(np.argmax(probs)) if np.asarray(probs).size else -1


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; asking for cuda without a GPU raises RuntimeError."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


def resolve_int8_auto(device: torch.device, half: bool, model) -> str:
    """The backend ``int8_auto`` becomes: ``"int8"`` for a float32 CPU engine of a model the fast
    path runs (Nexus family) where :func:`~crossmodal_ros.models.fast.int8_preferred` (torch's
    kernel and a CPU that multiplies bfloat16 natively); else ``"fast"``. Puts ``model`` in eval
    mode (as every engine does).
    """
    if torch.device(device).type != "cpu" or half or not fm.FastNexus.supports(model.eval()):
        return "fast"
    return "int8" if fm.int8_preferred() else "fast"


def _memory_order(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` with every negatively strided axis flipped back (a view) and the flipped axes.

    A bgr8 frame reaches the engine as a channel-reversed view of the message buffer; copying or
    comparing it in that order goes element by element (0.9 ms for a VGA frame), in memory order
    at memcpy speed. Two arrays are equal iff their memory-order views with the same flips are.
    """
    flips = tuple(i for i, st in enumerate(x.strides) if st < 0)
    return (np.flip(x, flips) if flips else x), flips


class _Preproc:
    """One modality's stored codec result (:meth:`FusionEngine._lookup`): the last raw input
    object seen with it and that object's layout, a private copy of the content in memory order
    (with the flipped axes), the sample rate, the encoded array and, once
    :meth:`FusionEngine.infer` needed it, a batch-1 tensor of it.
    """

    __slots__ = ("obj", "layout", "mem", "flips", "rate", "encoded", "tensor")

    def __init__(self, obj, mem, flips, rate, encoded):
        self.mem, self.flips, self.rate, self.encoded = mem, flips, rate, encoded
        self.see(obj)
        self.tensor = None

    def see(self, obj) -> None:
        """Remember ``obj`` (an input equal to the stored one) for the identity test."""
        self.obj, self.layout = obj, (obj.shape, obj.strides, obj.dtype)

    def unchanged(self, value) -> bool:
        """``value`` is the remembered object, owns its memory, is read-only and has kept its
        layout: its content cannot have changed.
        """
        flags = value.flags
        return (value is self.obj and not flags.writeable and flags.owndata
                and (value.shape, value.strides, value.dtype) == self.layout)


class FusionEngine:
    """Model + codecs + device. Build with :meth:`from_checkpoint`.

    ``sample`` (attribute, may be changed at run time): sample the shared latent instead of
    using its mean. ``half``: run the model in float16 (meant for CUDA; it also runs, slowly, on
    CPU, which is how the tests check it). ``fast`` (default on): run Nexus-family models through
    :class:`~crossmodal_ros.models.fast.FastNexus` (folded weights, only the live subset's
    encoders; same outputs as the reference ``model.infer``, which other kinds and ``fast=False``
    use). ``cuda_graphs``: on CUDA, replay a captured graph per (subset, batch size) for unmasked
    calls of the fast path (ignored on CPU). ``engine.path`` says which path runs.
    ``backend``: ``"reference"`` (``model.infer``), ``"fast"`` (FastNexus, as ``fast=True``),
    ``"onnx"`` (ONNX Runtime, :class:`~crossmodal_ros.models.onnx_path.OnnxNexus`, any model kind
    whose ``encode``/``decode`` export, for unmasked, deterministic, float32 batch-1 calls on the
    CPU; every other call runs on the fast path, or the reference path for kinds it does not run;
    needs the onnxruntime and onnx packages, ImportError without them) or ``"auto"`` (onnx where
    it can run, else fast; an export or runtime failure switches to fast with a warning) or
    ``"int8"`` (the fast path with weight-only int8 products, :class:`~crossmodal_ros.models.fast.Int8Weight`:
    float32 models on the CPU; close to the reference, not equal: label agreement and output
    tolerances in ``test/test_fast_int8.py``, accuracy in ``benchmarks/README.md``; Nexus-family
    models, other kinds run on the reference path) or ``"onnx_int8"`` (the onnx path with int8
    matrix products, :func:`~crossmodal_ros.models.onnx_path.quantize_int8`: the fastest batch-1
    path on the AMD CPU it was measured on, ``benchmarks/README.md``; close to the reference, not
    equal: bounds in ``test/test_onnx_path.py``) or ``"int8_auto"`` (the node's default: ``int8``
    on a CPU where it pays, :func:`~crossmodal_ros.models.fast.int8_preferred`: torch's kernel and
    a native bfloat16 path, AVX512-BF16 or AMX; else, and on CUDA or with ``half``, ``fast``; a
    kernel that fails its probe product falls back to ``fast`` with a warning;
    ``engine.backend`` says which it became). None
    (default) keeps ``fast``'s choice. ``onnx_cache`` (default off): keep the exported graphs on
    disk under ``paths.cache_dir()``/onnx, keyed by the weights' digest (about 100 MB for the
    15 encode and 4 decode graphs), so a restart skips the export.
    ``cache_preprocessing`` (default on): when a raw array input equals (by content) the previous
    one of its modality, its codec result is reused; a node fusing a 30 Hz camera with a 1 s
    audio window otherwise recomputes the same mel spectrogram for every frame. The very array
    object of the previous call counts as unchanged without comparing its content when it owns
    its memory (``a.flags.owndata``) and is read-only (``a.flags.writeable`` False) with the same
    shape, strides and dtype. numpy refuses writes through such an array; the engine assumes
    nobody writes to it another way (a writeable view made before the flag was cleared, or the
    flag turned back on, would go unnoticed). The inference node stores its audio and strokes so;
    a view of other memory, such as a camera frame over its message buffer, is always compared.
    ``cache_encodings`` (default on): in :meth:`infer` on the fast path (``fast``, ``int8``; not
    sampling), a modality whose model input equals the previous call's is not encoded again: its
    bottom latent and, for the mixture, its z_sigma posterior are reused
    (:meth:`~crossmodal_ros.models.fast.FastNexus.shared_latent`); equal to a call without the
    cache up to float rounding. :meth:`infer_tensors` never uses it.
    """

    def __init__(self, model, codecs: dict, device: str = "auto", sample: bool = False, half: bool = False,
                 meta: dict | None = None, fast: bool = True, cuda_graphs: bool = False,
                 cache_preprocessing: bool = True, backend: str | None = None, onnx_cache: bool = False,
                 cache_encodings: bool = True):
        self.device = resolve_device(device)
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} (or None: fast={fast!r} decides), got {backend!r}")
        #: the backend asked for; ``backend`` is what it resolved to (int8_auto -> int8 or fast)
        self.requested_backend = backend
        if backend == "int8_auto":
            backend = resolve_int8_auto(self.device, half, model)
        if backend in ("fast", "onnx", "auto", "int8", "onnx_int8"):
            fast = True
        elif backend == "reference":
            fast = False
        self.backend = backend if backend is not None else ("fast" if fast else "reference")
        self.onnx_cache = bool(onnx_cache)
        if self.backend in ("onnx", "onnx_int8"):
            from .models.onnx_path import require

            require()
        if self.backend == "int8":
            from .models.fast import int8_available

            if self.device.type != "cpu" or half or not int8_available():
                raise ValueError("backend 'int8' runs float32 models on the CPU with torch's weight-only int8 kernel "
                                 f"(this engine: {self.device.type}{', float16' if half else ''}"
                                 f"{'' if int8_available() else ', kernel missing in this torch build'}); "
                                 "use backend='fast'")
        self.half = bool(half)
        self.model = model.to(self.device).eval()
        if self.half:
            self.model.half()
        self.dtype = torch.float16 if self.half else torch.float32
        self.cache_preprocessing = bool(cache_preprocessing)
        self.cache_encodings = bool(cache_encodings)
        self._preproc_cache: dict = {}
        self.fast = bool(fast)
        self.cuda_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        self._fast = None
        self._graphs = None
        self._onnx = None
        self.refresh_fast_path()
        self.codecs = codecs
        self.sample = bool(sample)
        self.meta = meta or {}
        self.kind = getattr(model, "kind", "")
        self.modalities: tuple[str, ...] = tuple(model.modalities)
        missing = [m for m in self.modalities if m not in codecs]
        if missing:
            raise ValueError(f"no codec for modalities {missing}; the checkpoint's codecs cover {sorted(codecs)}")

    def refresh_fast_path(self) -> None:
        """(Re)build the fast path from the model's current weights (call after changing them)."""
        from .models.fast import FastNexus

        weights = "int8" if self.backend == "int8" else "float"
        self._fast = None
        if self.fast and FastNexus.supports(self.model):
            try:
                self._fast = FastNexus(self.model, weights=weights)
            except RuntimeError as exc:  # the int8 kernel failed its probe product on this machine
                if self.requested_backend != "int8_auto":
                    raise
                import warnings

                warnings.warn(f"backend int8_auto: the int8 path is not usable here ({exc}); this engine uses "
                              "the fast path", RuntimeWarning, stacklevel=2)
                self.backend = "fast"
                self._fast = FastNexus(self.model, weights="float")
        self._graphs = None
        if self._fast is not None and self.cuda_graphs:
            from .models.fast import CudaGraphRunner

            self._graphs = CudaGraphRunner(self._fast)
        self._onnx = self._build_onnx()

    def _build_onnx(self):
        """The ONNX Runtime runner for ``backend`` onnx/auto, or None (other backends, or a model,
        device or dtype it does not run; ``auto`` without onnxruntime).
        """
        if self.backend not in ("onnx", "auto", "onnx_int8"):
            return None
        from .models import onnx_path

        runs = self.device.type == "cpu" and not self.half
        if self.backend == "auto" and not (runs and onnx_path.available()):
            return None
        if not runs:
            raise ValueError(f"backend {self.backend!r} runs float32 models on the CPU; this engine has a "
                             f"{type(self.model).__name__} on {self.device.type}{' in float16' if self.half else ''}"
                             "; use backend='auto' to fall back")
        folder = None
        if self.onnx_cache:
            from .paths import cache_dir

            try:
                folder = cache_dir() / "onnx"
            except OSError as exc:  # an unwritable home: no disk cache, not a failed engine
                import warnings

                warnings.warn(f"no disk cache for the ONNX graphs ({exc}); set CROSSMODAL_ROS_CACHE to a "
                              "writable folder", RuntimeWarning, stacklevel=2)
        return onnx_path.OnnxNexus(self.model, cache_dir=folder,
                                   weights="int8" if self.backend == "onnx_int8" else "float")

    @property
    def path(self) -> str:
        """Which inference path runs: ``"cuda-graphs"``, ``"onnx"`` or ``"onnx-int8"`` (batch-1
        calls; the others run on the fast path), ``"fast"``, ``"fast-int8"`` (backend int8) or ``"reference"``.
        """
        if self._graphs is not None:
            return "cuda-graphs"
        if self._onnx is not None:
            return "onnx-int8" if self._onnx.weights == "int8" else "onnx"
        if self._fast is not None:
            return "fast-int8" if self._fast.weights == "int8" else "fast"
        return "reference"

    @classmethod
    def from_checkpoint(cls, path=None, device: str = "auto", sample: bool = False, half: bool = False,
                        fast: bool = True, cuda_graphs: bool = False, backend: str | None = None,
                        model_options: dict | None = None, **options):
        """Load ``path`` (default: the shipped ``paths.default_checkpoint()``); raises
        ``CheckpointError`` for an unusable file. ``model_options``: inference-only options over
        the stored config (``checkpoint.load_checkpoint``), e.g. ``{"infer_combine": "aggregate"}``.
        ``options``: the constructor's other keywords (``cache_preprocessing``, ``cache_encodings``,
        ``onnx_cache``).
        """
        from .codecs import codecs_from_dict
        from .paths import default_checkpoint

        resolve_device(device)  # a bad device name or backend fails before any file is read
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} (or None: fast={fast!r} decides), got {backend!r}")
        path = default_checkpoint() if path in (None, "") else path
        model, codecs_dict, meta = load_checkpoint(path, "cpu", options=model_options)
        return cls(model, codecs_from_dict(codecs_dict), device=device, sample=sample, half=half, meta=meta,
                   fast=fast, cuda_graphs=cuda_graphs, backend=backend, **options)

    # ------------------------------------------------------------------ raw -> tensors
    def encode_raw(self, raw: dict, sample_rate: int | None = None) -> dict[str, np.ndarray]:
        """Raw sensor readings -> model tensors (numpy, without batch axis) via the codecs."""
        return {m: a.copy() if entry is not None and a is entry.encoded else a
                for m, (a, entry) in self._encode(raw, sample_rate).items()}

    def _encode(self, raw: dict, sample_rate: int | None) -> dict:
        """``{modality: (model array, stored entry or None)}``; a stored result's array is the
        store's own (do not change it), a fresh one the codec's.
        """
        if not isinstance(raw, dict) or not raw:
            raise EngineInputError(f"give a non-empty dict of raw readings for a subset of {self.modalities}")
        unknown = [m for m in raw if m not in self.modalities]
        if unknown:
            raise EngineInputError(f"this {self.kind} model fuses {self.modalities}; it has no modality {unknown}")
        out = {}
        for m in units.canonical(raw):
            value = raw[m]
            if value is None:
                raise EngineInputError(f"{m!r} is None; leave a missing modality out of the dict")
            entry = self._lookup(m, value, sample_rate)
            if entry is not None:
                out[m] = (entry.encoded, entry)
                continue
            try:
                if units.unit(m).needs_sample_rate:
                    if sample_rate is None:
                        raise EngineInputError(f"{m} needs sample_rate (Hz)")
                    encoded = self.codecs[m].encode(value, sample_rate)
                else:
                    encoded = self.codecs[m].encode(value)
            except CodecError as exc:
                raise EngineInputError(f"{m}: {exc}") from exc
            out[m] = (encoded, self._remember(m, value, sample_rate, encoded))
        return out

    def _lookup(self, m: str, value, sample_rate):
        """The stored :class:`_Preproc` of ``m`` when ``value`` is its input: the same read-only
        array object that owns its memory (:meth:`_Preproc.unchanged`), or an array equal in
        content (in-place changes of a writeable array are seen); else None.
        """
        entry = self._preproc_cache.get(m) if self.cache_preprocessing else None
        if entry is None or not isinstance(value, np.ndarray) or entry.rate != sample_rate:
            return None
        if entry.unchanged(value):
            return entry
        mem, flips = _memory_order(value)
        prev = entry.mem
        if flips == entry.flips and prev.shape == mem.shape and prev.dtype == mem.dtype and np.array_equal(prev, mem):
            entry.see(value)  # equal: the next call may pass this object again
            return entry
        return None

    def _remember(self, m: str, value, sample_rate, encoded):
        """Store ``encoded`` as ``m``'s result for ``value``; the new :class:`_Preproc` (None when
        nothing is stored).
        """
        if self.cache_preprocessing and isinstance(value, np.ndarray) and value.size >= 64:
            mem, flips = _memory_order(value)
            entry = self._preproc_cache[m] = _Preproc(value, mem.copy(), flips, sample_rate,
                                                      np.array(encoded, copy=True))
            return entry
        return None

    # ------------------------------------------------------------------ inference
    def infer(self, raw: dict, sample_rate: int | None = None, decode=None) -> FusionResult:
        """Fuse one set of raw readings (any non-empty subset) -> :class:`FusionResult`.

        ``decode``: the modalities to reconstruct (an iterable of names; default None = every
        modality of the model). The others are not decoded at all (their fields in the result
        are empty arrays, ``label`` -1), so ``decode=()`` costs the encoders and the shared
        latent only; the latent and the decoded outputs equal those of a full call.
        """
        encoded = self._encode(raw, sample_rate)
        tensors = {}
        for m, (a, entry) in encoded.items():
            if entry is None:
                tensors[m] = torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0)
                continue
            if entry.tensor is None:  # the store's array, batch axis added (nobody writes to it)
                entry.tensor = torch.from_numpy(entry.encoded).unsqueeze(0)
            tensors[m] = entry.tensor
        # a stored result names its input to the encoding memo: a memo entry made from the same
        # stored result holds this input's encoding, without comparing the tensors
        keys = {m: entry for m, (_, entry) in encoded.items() if entry is not None}
        out = self._run(tensors, None, self._decode_set(decode), memo=self.cache_encodings, keys=keys)
        return self._result(out, 0, tuple(encoded))

    def _decode_set(self, decode):
        """None (decode everything) or the tuple of model modalities in ``decode``."""
        if decode is None:
            return None
        wanted = set(decode)
        unknown = [m for m in wanted if not units.is_registered(m)]
        if unknown:
            raise EngineInputError(f"decode: unknown modalities {sorted(unknown)}; known: {list(units.names())}")
        chosen = tuple(m for m in self.modalities if m in wanted)
        return None if chosen == self.modalities else chosen

    def infer_tensors(self, tensors: dict, mask: torch.Tensor | np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Batched inference on model tensors ``(B, ...)`` (numpy or torch) with an optional bool
        presence mask (B, M) over ``engine.modalities``. Returns numpy arrays: ``image``
        (B,1,28,28), ``audio`` (B,1,128,32), ``trajectory`` (B,200), ``label`` logits (B,10),
        ``label_probs`` (B,10), ``latent_mu``/``latent_logvar`` (B,D).
        """
        if not tensors:
            raise EngineInputError(f"give a non-empty subset of {self.modalities}")
        unknown = [m for m in tensors if units.is_registered(m) and m not in self.modalities]
        if unknown:
            raise EngineInputError(f"this {self.kind} model fuses {self.modalities}; it has no modality {unknown}")
        ts = {m: torch.as_tensor(v) for m, v in tensors.items() if m in self.modalities}
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool)
        out = self._run(ts, mask)
        res = {k: v.float().cpu().numpy() for k, v in out.items()}
        if LABEL in res:
            res["label_probs"] = _softmax(res[LABEL])
        return res

    def _run(self, tensors: dict, mask, decode: tuple | None = None, memo: bool = False,
             keys: dict | None = None) -> dict:
        dev, dt = self.device, self.dtype
        inputs = {m: t.to(dev, dt, non_blocking=True) for m, t in tensors.items()}
        if mask is not None:
            mask = mask.to(dev)
        try:
            if self._onnx is not None and mask is None and not self.sample:
                out = self._onnx_infer(inputs, decode, memo, keys)
                if out is not None:
                    return out
            with torch.inference_mode():
                if decode is not None:
                    if self._fast is not None and mask is None:
                        return _fast_infer_select(self._fast, inputs, self.sample, decode, memo, keys)
                    mu, logvar = self.model.encode(inputs, mask, sample=self.sample)
                    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.sample else mu
                    out = _decode_subset(self.model, z, decode, self.sample)
                    out["latent_mu"], out["latent_logvar"] = mu, logvar
                    return out
                if self._graphs is not None and mask is None and not self.sample:
                    return self._graphs.infer(inputs)
                if self._fast is not None:
                    return self._fast.infer(inputs, mask, sample=self.sample, memo=memo and mask is None, keys=keys)
                return self.model.infer(inputs, mask, sample=self.sample)
        except ModelInputError as exc:
            raise EngineInputError(str(exc)) from exc

    def _onnx_infer(self, inputs: dict, decode, memo: bool = False, keys: dict | None = None):
        """The ONNX path's result, or None when the call does not fit it. With ``memo`` and a fast
        path (Nexus-family models, :meth:`infer`: the node's call), the shared latent comes from
        the fast path's encoding cache (an input equal to the previous call's is not encoded
        again; float weights, also for ``onnx_int8``) and the decoded modalities from the ONNX
        decode graphs; otherwise the subset's encode graph runs too. With backend ``auto`` a
        failure to export or run a graph switches this engine to the fast path (with a warning)
        instead of failing the call; with ``onnx``/``onnx_int8`` it raises. An invalid input is
        the caller's error either way (``ModelInputError``), never a reason to switch.
        """
        hybrid = memo and self._fast is not None
        if hybrid:
            if self._onnx.applicable(inputs) is None:
                return None
            given = self._fast._check(inputs)  # raises ModelInputError for the caller
        try:
            if not hybrid:
                return self._onnx.infer(inputs, decode)
            with torch.inference_mode():
                mu, logvar = self._fast.shared_latent(inputs, given, False, True, keys)
            out = self._onnx.decode(mu, self.modalities if decode is None else decode)
            out["latent_mu"], out["latent_logvar"] = mu, logvar
            return out
        except Exception as exc:  # noqa: BLE001 - onnxruntime/exporter errors have no common base
            if self.backend != "auto":
                raise
            import warnings

            warnings.warn(f"ONNX Runtime path failed ({type(exc).__name__}: {exc}); this engine uses the fast "
                          "path from now on", RuntimeWarning, stacklevel=3)
            self._onnx = None
            return None

    def _result(self, out: dict, i: int, fused: tuple) -> FusionResult:
        cpu = {k: v[i].float().cpu().numpy() for k, v in out.items()}
        return FusionResult(
            outputs={m: units.unit(m).to_output(cpu[m], self.codecs[m]) for m in self.modalities if m in cpu},
            latent_mu=cpu["latent_mu"],
            latent_logvar=cpu["latent_logvar"],
            fused=units.canonical(fused),
            device=self.device.type,
        )

    def warm_up(self, sample_rate: int) -> dict[str, str]:
        """One inference per modality on its warm-up sample (the unit's ``warm_up``), so
        first-call costs (the audio features compile on first use) are paid before real input.
        Best effort: returns ``{modality: error message}`` for the inferences that failed.
        """
        failed = {}
        if self._onnx is not None:
            try:
                # export now, not on the first fusion of each subset; infer() with the encoding
                # cache takes its latent from the fast path, so it needs the decode graphs only
                self._onnx.prepare(encode=not (self.cache_encodings and self._fast is not None))
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                failed["onnx"] = f"{type(exc).__name__}: {exc}"
        for m in self.modalities:
            try:
                self.infer({m: units.unit(m).warm_up(sample_rate)}, sample_rate=sample_rate)
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                failed[m] = f"{type(exc).__name__}: {exc}"
        return failed

    def mel_to_waveform(self, mel, n_iter: int = 60) -> np.ndarray:
        """Model mel (128, 32) or (1, 128, 32) -> waveform at the codec's sample rate
        (Griffin-Lim; slow, keep it off the inference hot path).
        """
        return self.codecs[AUDIO].decode(np.asarray(mel, dtype=np.float32), n_iter=n_iter)

    @property
    def sample_rate(self) -> int:
        """Sample rate (Hz) of the waveforms :meth:`mel_to_waveform` returns."""
        return int(self.codecs[AUDIO].sample_rate)


def _decode_subset(model, z: torch.Tensor, decode: tuple, sample: bool) -> dict:
    """Reference path: decode only ``decode`` from the shared latent ``z``."""
    if not decode:
        return {}
    import inspect

    params = inspect.signature(model.decode).parameters
    kwargs = {"sample": sample} if "sample" in params else {}
    if "modalities" in params:
        return dict(model.decode(z, modalities=decode, **kwargs))
    out = model.decode(z, **kwargs)
    return {m: out[m] for m in decode}


def _fast_infer_select(fast, inputs: dict, sample: bool, decode: tuple, memo: bool = False,
                       keys: dict | None = None) -> dict:
    """:meth:`FastNexus.infer` (unmasked call) decoding only ``decode``: the same operations as
    the full call for the encoders, the shared latent and each decoded modality (so the same
    values), none for the others. ``memo``, ``keys``: :meth:`FastNexus.shared_latent`.
    """
    given = fast._check(inputs)
    mu, logvar = fast.shared_latent(inputs, given, sample, memo, keys)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
    out = {}
    if decode:
        wt, b = fast.top_first
        hid = fast.hidden
        for i, m in enumerate(fast.modalities):
            if m not in decode:
                continue
            sl = slice(i * hid, (i + 1) * hid)
            h = F.leaky_relu(fm._lin_columns(z, wt, b, sl), fm._LEAK)
            for layer in fast.top_hidden[i]:
                h = F.leaky_relu(fm._lin(h, *layer), fm._LEAK)
            out[m] = fast._decode_mod(i, m, fm._lin(h, *fast.top_out[i]))
    out["latent_mu"] = mu
    out["latent_logvar"] = logvar
    return out


def set_cpu_threads(n: int) -> int:
    """Apply a thread count (the node's ``num_threads``, ``bag_eval --threads``) to the process's
    CPU thread pools and return torch's thread count now: ``n`` > 0 sets torch's intra-op threads,
    the BLAS pools numpy and scipy load (threadpoolctl) and OpenCV's to ``n`` (process-wide); 0
    leaves them as they are.

    Idle pool threads busy-wait: with ``OMP_NUM_THREADS=2`` on the 2-core machine the node used
    65 % of a core at 30 fusions/s, 41 % with torch alone at 1 thread and 19 % with every pool at 1
    (benchmarks/results/ros_latency_omp2_*_num_threads.json).
    """
    import cv2
    import scipy.linalg  # noqa: F401 - loads scipy's own OpenBLAS (librosa uses it) so it is capped too
    import torch
    from threadpoolctl import threadpool_limits

    if int(n) > 0:
        torch.set_num_threads(int(n))
        threadpool_limits(int(n), user_api="blas")
        cv2.setNumThreads(int(n))
    return torch.get_num_threads()
