"""Conversions between ROS 2 messages and numpy arrays (pure functions, no node needed).

Every function raises :class:`ConversionError` (a ``ValueError``) for a message or an array it
cannot convert; nothing else is raised for bad input.

Images (``sensor_msgs/Image``)
    Encodings ``mono8``, ``mono16``, ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``32FC1``.
    :func:`image_to_numpy` honours ``step`` (rows may be padded), ``is_bigendian`` (16-bit and
    float data are returned in native byte order) and returns ``(H, W)`` for one channel,
    ``(H, W, C)`` otherwise, channels in the order the encoding names them. The result may
    share memory with ``msg.data`` when no copy is needed; copy it before mutating the message.
    :func:`numpy_to_image` writes a packed image (``step = width * channels * itemsize``) in the
    native byte order.

Audio (``std_msgs/Float32MultiArray``)
    Mono PCM, float32 in [-1, 1], one dimension labelled ``"samples"``. The sample rate is not
    carried; both ends share the ``sample_rate`` parameter (DESIGN.md section 5).

Strokes (``nav_msgs/Path``)
    One stroke = the poses' ``position.x``/``position.y`` as ``(N, 2)`` points; ``z`` and the
    orientation are ignored. Per-pose stamps can be returned/written (seconds, float64).

Latent topic contract (``std_msgs/Float32MultiArray`` on ``<node>/latent``)
    The shared latent (Nexus ``z_sigma``) of one fused observation as a Gaussian::

        layout.dim[0]: label "stat", size 2,   stride 2*D   -> index 0 = mu, 1 = logvar
        layout.dim[1]: label "z",    size D,   stride D
        layout.data_offset: 0
        data: [mu_0 .. mu_{D-1}, logvar_0 .. logvar_{D-1}]   (row-major (2, D), float32)

    ``np.asarray(msg.data, np.float32).reshape(2, D)`` gives ``[mu, logvar]``;
    :func:`latent_from_msg` does that with validation. Consumers that want a deterministic
    observation use ``mu``; ``exp(0.5 * logvar)`` is the per-dimension standard deviation.

Label probabilities (``std_msgs/Float32MultiArray``)
    One dimension labelled ``"class"`` of size K (10 digits); values in [0, 1] summing to 1.
"""
from __future__ import annotations

import array
import sys
from typing import Optional, Sequence, Union

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Header, MultiArrayDimension

__all__ = [
    "ConversionError",
    "IMAGE_ENCODINGS",
    "DEFAULT_MAX_PIXELS",
    "image_to_numpy",
    "numpy_to_image",
    "image_to_canonical",
    "audio_to_numpy",
    "numpy_to_audio",
    "path_to_numpy",
    "numpy_to_path",
    "latent_to_msg",
    "latent_from_msg",
    "latent_to_stamped",
    "latent_from_stamped",
    "StampedLatent",
    "probs_to_msg",
    "probs_from_msg",
    "make_header",
    "stamp_to_seconds",
    "seconds_to_stamp",
    "msg_to_input",
]


class ConversionError(ValueError):
    """A message or array that cannot be converted (bad encoding, size, layout or values).

    ``reason`` is a short machine-readable category for counting drops: ``encoding``, ``size``,
    ``step``, ``layout``, ``empty``, ``nonfinite``, ``range``, ``dtype`` or ``shape``.
    """

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


#: encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "32FC1": (np.dtype(np.float32), 1),
}

#: Default cap on width*height of an incoming image (4096 x 4096).
DEFAULT_MAX_PIXELS = 4096 * 4096

_NATIVE_BIG = sys.byteorder == "big"
_AUDIO_LABEL = "samples"
_LATENT_LABELS = ("stat", "z")
_PROBS_LABEL = "class"

HeaderLike = Union[Header, None]


# --------------------------------------------------------------------------- time and headers
def stamp_to_seconds(stamp: Time) -> float:
    """``builtin_interfaces/Time`` -> seconds as a float."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    """Seconds (float, >= 0) -> ``builtin_interfaces/Time``."""
    if not np.isfinite(seconds) or seconds < 0:
        raise ConversionError(f"stamp must be a finite time >= 0 s, got {seconds!r}",
                              reason="range")
    ns = int(round(float(seconds) * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def make_header(stamp: Optional[Time] = None, frame_id: str = "") -> Header:
    """A ``std_msgs/Header`` with ``stamp`` (zero when None) and ``frame_id``."""
    header = Header(frame_id=frame_id)
    if stamp is not None:
        header.stamp = stamp
    return header


def _header(header: HeaderLike, stamp: Optional[Time], frame_id: Optional[str]) -> Header:
    out = Header()
    if header is not None:
        out.stamp = header.stamp
        out.frame_id = header.frame_id
    if stamp is not None:
        out.stamp = stamp
    if frame_id is not None:
        out.frame_id = frame_id
    return out


# --------------------------------------------------------------------------- images
def image_to_numpy(msg: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``sensor_msgs/Image`` -> ``(H, W)`` or ``(H, W, C)`` array of the encoding's dtype.

    Checks: known encoding, non-zero size, ``width*height <= max_pixels``,
    ``step >= width * channels * itemsize`` and ``len(data) == step * height``.
    Row padding is removed; big-endian 16-bit/float data is converted to native order.
    """
    enc = msg.encoding
    if enc not in IMAGE_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {enc!r}; supported: {', '.join(IMAGE_ENCODINGS)}",
            reason="encoding")
    dtype, channels = IMAGE_ENCODINGS[enc]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ConversionError(f"image has zero size ({width}x{height})", reason="size")
    if width * height > max_pixels:
        raise ConversionError(
            f"image {width}x{height} has {width * height} pixels, over the cap of {max_pixels}",
            reason="size")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ConversionError(
            f"step {step} is smaller than one row of {width} {enc} pixels ({row_bytes} bytes)",
            reason="step")
    nbytes = len(msg.data)
    if nbytes != step * height:
        raise ConversionError(
            f"image data has {nbytes} bytes, expected step*height = {step}*{height} = "
            f"{step * height}", reason="step")
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != _NATIVE_BIG:
        dtype = dtype.newbyteorder()
    if step == row_bytes:
        out = raw.view(dtype)
    else:  # strip the row padding (works for any step, aligned or not)
        out = raw.reshape(height, step)[:, :row_bytes].copy().view(dtype)
    out = out.reshape((height, width) if channels == 1 else (height, width, channels))
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out


def numpy_to_image(
    arr: np.ndarray,
    encoding: str,
    header: HeaderLike = None,
    *,
    stamp: Optional[Time] = None,
    frame_id: Optional[str] = None,
) -> Image:
    """Array -> packed ``sensor_msgs/Image`` in native byte order.

    ``arr`` must be ``(H, W)`` (one channel) or ``(H, W, C)`` matching ``encoding``'s channel
    count, with exactly the encoding's dtype (no silent casts). ``header`` is copied; ``stamp``
    and ``frame_id`` override its fields.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}",
            reason="encoding")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(arr)
    if arr.ndim == 3 and channels == 1 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    expected_ndim = 2 if channels == 1 else 3
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        raise ConversionError(
            f"{encoding} needs an array of shape (H, W{'' if channels == 1 else f', {channels}'})"
            f", got {arr.shape}", reason="shape")
    if arr.dtype.newbyteorder("=") != dtype:
        raise ConversionError(f"{encoding} needs dtype {dtype}, got {arr.dtype}", reason="dtype")
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        raise ConversionError(f"image has zero size ({width}x{height})", reason="size")
    arr = np.ascontiguousarray(arr, dtype=dtype)  # native order, packed rows
    msg = Image()
    msg.header = _header(header, stamp, frame_id)
    msg.height, msg.width = int(height), int(width)
    msg.encoding = encoding
    msg.is_bigendian = int(_NATIVE_BIG)
    msg.step = int(width * channels * dtype.itemsize)
    data = array.array("B")
    data.frombytes(arr.data.cast("B"))
    msg.data = data
    return msg


def image_to_canonical(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Camera array -> ``(H, W)`` grey or ``(H, W, 3)`` RGB (BGR swapped, alpha dropped).

    The form the engine's image codec takes; dtypes are kept (uint8/uint16/float32).
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError(f"unsupported image encoding {encoding!r}", reason="encoding")
    if encoding in ("bgr8", "bgra8"):
        return arr[:, :, 2::-1]
    if encoding == "rgba8":
        return arr[:, :, :3]
    return arr


# --------------------------------------------------------------------------- audio
def audio_to_numpy(msg: Float32MultiArray) -> np.ndarray:
    """``Float32MultiArray`` mono PCM -> 1-D float32 array in [-1, 1].

    Accepts an empty layout or one whose dimensions have at most one size > 1 (mono);
    ``layout.data_offset`` is honoured. Rejects empty chunks, NaN/Inf and values outside
    [-1, 1].
    """
    offset = int(msg.layout.data_offset)
    data = np.frombuffer(msg.data, dtype=np.float32) if len(msg.data) else np.zeros(0, np.float32)
    dims = [int(d.size) for d in msg.layout.dim]
    if dims:
        if sum(1 for s in dims if s > 1) > 1:
            raise ConversionError(f"audio must be mono (one dimension), got layout sizes {dims}",
                                  reason="layout")
        n = int(np.prod(dims))
        if offset + n > data.size:
            raise ConversionError(
                f"audio layout needs {offset + n} values, message has {data.size}", reason="layout")
        pcm = data[offset:offset + n]
    else:
        pcm = data[offset:]
    if pcm.size == 0:
        raise ConversionError("audio chunk is empty", reason="empty")
    if not np.isfinite(pcm).all():
        raise ConversionError("audio chunk contains NaN or Inf", reason="nonfinite")
    peak = float(np.abs(pcm).max())
    if peak > 1.0:
        raise ConversionError(f"audio samples must lie in [-1, 1], peak is {peak:.4g}",
                              reason="range")
    return pcm


def numpy_to_audio(pcm: np.ndarray) -> Float32MultiArray:
    """1-D PCM (float, finite, in [-1, 1]) -> ``Float32MultiArray`` labelled ``"samples"``."""
    pcm = np.asarray(pcm)
    if pcm.ndim != 1 or pcm.size == 0:
        raise ConversionError(f"audio must be a non-empty 1-D array, got shape {pcm.shape}",
                              reason="shape")
    if not np.issubdtype(pcm.dtype, np.floating):
        raise ConversionError(f"audio must be floating point PCM, got {pcm.dtype}", reason="dtype")
    pcm = np.ascontiguousarray(pcm, dtype=np.float32)
    if not np.isfinite(pcm).all():
        raise ConversionError("audio contains NaN or Inf", reason="nonfinite")
    if np.abs(pcm).max() > 1.0:
        raise ConversionError("audio samples must lie in [-1, 1]", reason="range")
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=_AUDIO_LABEL, size=pcm.size, stride=pcm.size)]
    msg.data = _float_array(pcm)
    return msg


def _float_array(values: np.ndarray) -> array.array:
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).data.cast("B"))
    return out


# --------------------------------------------------------------------------- paths
def path_to_numpy(msg: Path, with_stamps: bool = False):
    """``nav_msgs/Path`` -> ``(N, 2)`` float64 points (x, y); ``z`` is ignored.

    With ``with_stamps=True`` returns ``(points, stamps)`` where ``stamps`` is ``(N,)`` float64
    seconds of each pose's header stamp. Rejects empty paths and non-finite coordinates.
    """
    n = len(msg.poses)
    if n == 0:
        raise ConversionError("path has no poses", reason="empty")
    pts = np.empty((n, 2), dtype=np.float64)
    for i, pose in enumerate(msg.poses):
        p = pose.pose.position
        pts[i, 0] = p.x
        pts[i, 1] = p.y
    if not np.isfinite(pts).all():
        raise ConversionError("path has NaN or Inf coordinates", reason="nonfinite")
    if not with_stamps:
        return pts
    stamps = np.array([stamp_to_seconds(p.header.stamp) for p in msg.poses], dtype=np.float64)
    return pts, stamps


def numpy_to_path(
    points: np.ndarray,
    header: HeaderLike = None,
    *,
    stamp: Optional[Time] = None,
    frame_id: Optional[str] = None,
    stamps: Optional[Sequence[float]] = None,
) -> Path:
    """``(N, 2)`` (or ``(N, 3)``, z kept) points -> ``nav_msgs/Path``.

    Every pose carries the path header; ``stamps`` (N seconds) gives per-pose stamps instead.
    Orientation is the identity quaternion.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (2, 3) or pts.shape[0] == 0:
        raise ConversionError(f"points must be a non-empty (N, 2) or (N, 3) array, got {pts.shape}",
                              reason="shape")
    if not np.isfinite(pts).all():
        raise ConversionError("points contain NaN or Inf", reason="nonfinite")
    if stamps is not None:
        stamps = np.asarray(stamps, dtype=np.float64)
        if stamps.shape != (pts.shape[0],):
            raise ConversionError(f"stamps must have shape ({pts.shape[0]},), got {stamps.shape}",
                                  reason="shape")
    msg = Path()
    msg.header = _header(header, stamp, frame_id)
    poses = []
    for i, row in enumerate(pts.tolist()):
        pose = PoseStamped()
        pose.header.frame_id = msg.header.frame_id
        pose.header.stamp = seconds_to_stamp(stamps[i]) if stamps is not None else msg.header.stamp
        pos = pose.pose.position
        pos.x = row[0]
        pos.y = row[1]
        if len(row) == 3:
            pos.z = row[2]
        pose.pose.orientation.w = 1.0
        poses.append(pose)
    msg.poses = poses
    return msg


# --------------------------------------------------------------------------- latent, probabilities
def _latent_pair(mu, logvar) -> tuple[np.ndarray, np.ndarray]:
    """``mu``, ``logvar`` as flat float32 arrays of one non-empty size, else ConversionError."""
    mu = np.asarray(mu, dtype=np.float32).reshape(-1)
    logvar = np.asarray(logvar, dtype=np.float32).reshape(-1)
    if mu.size == 0 or mu.shape != logvar.shape:
        raise ConversionError(
            f"mu and logvar must be non-empty with equal sizes, got {mu.shape} and {logvar.shape}",
            reason="shape")
    return mu, logvar


def latent_to_msg(mu: np.ndarray, logvar: np.ndarray) -> Float32MultiArray:
    """``mu``, ``logvar`` (D,) -> the layout-labelled latent message (module docstring)."""
    mu, logvar = _latent_pair(mu, logvar)
    d = mu.size
    msg = Float32MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label=_LATENT_LABELS[0], size=2, stride=2 * d),
        MultiArrayDimension(label=_LATENT_LABELS[1], size=d, stride=d),
    ]
    msg.layout.data_offset = 0
    msg.data = _float_array(np.concatenate([mu, logvar]))
    return msg


def latent_from_msg(msg: Float32MultiArray) -> tuple[np.ndarray, np.ndarray]:
    """Latent message -> ``(mu, logvar)``, each ``(D,)`` float32; checks the layout labels."""
    dims = msg.layout.dim
    labels = tuple(d.label for d in dims)
    if labels != _LATENT_LABELS or int(dims[0].size) != 2:
        raise ConversionError(
            f"latent layout must be [stat(2), z(D)], got {[(d.label, d.size) for d in dims]}",
            reason="layout")
    d = int(dims[1].size)
    off = int(msg.layout.data_offset)
    data = np.frombuffer(msg.data, dtype=np.float32) if len(msg.data) else np.zeros(0, np.float32)
    if d == 0 or data.size < off + 2 * d:
        raise ConversionError(f"latent data has {data.size} values, layout needs {off + 2 * d}",
                              reason="layout")
    stats = data[off:off + 2 * d].reshape(2, d)
    return stats[0].copy(), stats[1].copy()


#: Name prefixes of the stamped latent (sensor_msgs/JointState on ``<node>/latent_stamped``).
STAMPED_PREFIXES = ("mu/", "logvar/", "fused/", "model/")


class StampedLatent(tuple):
    """``(stamp_s, frame_id, mu, logvar, fused, model)`` read from a stamped latent message:
    ``fused`` is a tuple of modality names, ``model`` a ``{"kind", "checkpoint_sha256"}`` dict."""

    __slots__ = ()

    def __new__(cls, stamp_s, frame_id, mu, logvar, fused, model):
        return super().__new__(cls, (stamp_s, frame_id, mu, logvar, fused, model))

    stamp_s = property(lambda self: self[0])
    frame_id = property(lambda self: self[1])
    mu = property(lambda self: self[2])
    logvar = property(lambda self: self[3])
    fused = property(lambda self: self[4])
    model = property(lambda self: self[5])


def latent_to_stamped(mu: np.ndarray, logvar: np.ndarray, fused: Sequence[str], kind: str,
                      checkpoint_sha256: str, header: Header, modalities: Sequence[str] = ()):
    """The stamped, self-describing latent as a ``sensor_msgs/JointState`` ("named scalars with a
    header"; the package defines no message types, see the README):

    * ``header``: the stamp of the newest fused input and the node's ``frame_id``;
    * ``name[i]`` / ``position[i]`` pairs: ``mu/<k>`` -> mu_k and ``logvar/<k>`` -> logvar_k for
      k < D; ``fused/<modality>`` -> 1.0 (fused) or 0.0 (not fused) for every modality of the
      model (``modalities``; the fused ones when empty); ``model/<kind>/<sha256>`` -> 0.0, the
      model kind and the checkpoint file's SHA-256 (one entry);
    * ``velocity`` and ``effort`` are empty.
    """
    from sensor_msgs.msg import JointState

    mu, logvar = _latent_pair(mu, logvar)
    if "/" in kind or "/" in checkpoint_sha256:
        raise ConversionError("model kind and hash must not contain '/'", reason="value")
    d = mu.size
    fused = tuple(fused)
    every = tuple(modalities) or fused
    msg = JointState()
    msg.header = header
    msg.name = ([f"mu/{k}" for k in range(d)] + [f"logvar/{k}" for k in range(d)]
                + [f"fused/{m}" for m in every] + [f"model/{kind}/{checkpoint_sha256}"])
    msg.position = np.concatenate([
        mu.astype(np.float64), logvar.astype(np.float64),
        np.array([1.0 if m in fused else 0.0 for m in every] + [0.0])]).tolist()
    return msg


def latent_from_stamped(msg) -> StampedLatent:
    """A stamped latent message (:func:`latent_to_stamped`) -> :class:`StampedLatent`."""
    names, values = list(msg.name), list(msg.position)
    if len(names) != len(values):
        raise ConversionError(f"{len(names)} names but {len(values)} positions", reason="shape")
    mu, logvar, fused, model = {}, {}, [], None
    for name, value in zip(names, values):
        head, _, rest = name.partition("/")
        if head == "mu":
            mu[int(rest)] = value
        elif head == "logvar":
            logvar[int(rest)] = value
        elif head == "fused":
            if value >= 0.5:
                fused.append(rest)
        elif head == "model":
            kind, _, digest = rest.partition("/")
            model = {"kind": kind, "checkpoint_sha256": digest}
        else:
            raise ConversionError(f"unknown stamped-latent entry {name!r}", reason="layout")
    d = len(mu)
    if d == 0 or sorted(mu) != list(range(d)) or sorted(logvar) != list(range(d)) or model is None:
        raise ConversionError("stamped latent needs mu/0..D-1, logvar/0..D-1 and one model/ entry",
                              reason="layout")
    return StampedLatent(
        stamp_to_seconds(msg.header.stamp), msg.header.frame_id,
        np.array([mu[k] for k in range(d)], np.float32), np.array([logvar[k] for k in range(d)], np.float32),
        tuple(fused), model)


def probs_to_msg(probs: np.ndarray) -> Float32MultiArray:
    """Class probabilities (K,) -> ``Float32MultiArray`` with one dimension ``"class"``."""
    p = np.asarray(probs, dtype=np.float32).reshape(-1)
    if p.size == 0 or not np.isfinite(p).all():
        raise ConversionError("probabilities must be a non-empty finite vector", reason="nonfinite")
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=_PROBS_LABEL, size=p.size, stride=p.size)]
    msg.data = _float_array(p)
    return msg


def probs_from_msg(msg: Float32MultiArray, atol: float = 1e-3) -> np.ndarray:
    """Probability message -> ``(K,)`` float32; values in [0, 1] summing to 1 (within atol)."""
    data = np.frombuffer(msg.data, dtype=np.float32) if len(msg.data) else np.zeros(0, np.float32)
    dims = msg.layout.dim
    if len(dims) != 1 or dims[0].label != _PROBS_LABEL or int(dims[0].size) != data.size:
        raise ConversionError(
            f"probabilities layout must be [class(K)] matching {data.size} values, got "
            f"{[(d.label, d.size) for d in dims]}", reason="layout")
    if data.size == 0 or not np.isfinite(data).all() or (data < 0).any() or (data > 1).any():
        raise ConversionError("probabilities must be finite values in [0, 1]", reason="range")
    if abs(float(data.sum()) - 1.0) > atol:
        raise ConversionError(f"probabilities sum to {float(data.sum()):.4f}, not 1",
                              reason="range")
    return data.copy()


# --------------------------------------------------------------------------- fusion inputs
def _image_input(msg: Image, max_pixels: int) -> np.ndarray:
    arr = image_to_numpy(msg, max_pixels=max_pixels)
    if msg.encoding == "32FC1" and arr.size and not (
            np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ConversionError("32FC1 camera frames must hold finite values in [0, 1]", reason="range")
    return image_to_canonical(arr, msg.encoding)


def _stroke_input(msg: Path, max_pixels: int) -> np.ndarray:
    pts = path_to_numpy(msg)
    if pts.shape[0] < 2:
        raise ConversionError("a stroke needs at least 2 poses", reason="empty")
    return pts


def _label_input(msg, max_pixels: int) -> int:
    from crossmodal_ros.modalities import NUM_CLASSES

    if not 0 <= msg.data < NUM_CLASSES:
        raise ConversionError(f"label {msg.data} outside 0..{NUM_CLASSES - 1}", reason="range")
    return int(msg.data)


_INPUTS = {"image": _image_input, "audio": lambda msg, max_pixels: audio_to_numpy(msg).copy(),
           "trajectory": _stroke_input, "label": _label_input}


def msg_to_input(modality: str, msg, max_pixels: int = DEFAULT_MAX_PIXELS):
    """A sensor message as the fusion takes it: every check of the live node and of the offline
    bag evaluator, so both drop the same messages.

    image: canonical array (:func:`image_to_canonical`; a 32FC1 frame must hold finite values
    in [0, 1], reason ``range``); audio: a float32 PCM copy; trajectory: ``(N, 2)`` points with
    ``N >= 2`` (reason ``empty``); label (``std_msgs/Int32``): the class in ``0 ..
    NUM_CLASSES - 1`` (reason ``range``). Raises :class:`ConversionError`.
    """
    if modality not in _INPUTS:
        raise ConversionError(f"no input conversion for modality {modality!r}", reason="invalid")
    return _INPUTS[modality](msg, max_pixels)
