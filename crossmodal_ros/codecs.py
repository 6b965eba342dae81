# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Modality codecs: raw sensor data <-> the model tensors of the MHD setting (ROS-free).

A codec turns one raw sensor reading into the fixed-shape model tensor of its modality
(``encode``) and turns a model output back into something a robot can use (``decode``):

================  ===============================  ===========================================
codec             raw form                         model tensor
================  ===============================  ===========================================
ImageCodec        camera frame HxW / HxWxC         float32 (1,28,28) in [0,1], bright on dark
AudioCodec        mono PCM, any sample rate        float32 (1,128,32) log-mel in [0,1]
TrajectoryCodec   ordered (N,2) points / strokes   float32 (200,) x1..x100, y1..y100 in [0,1]
LabelCodec        integer class                    float32 (10,) one-hot (logits on the way out)
================  ===============================  ===========================================

Every codec is a frozen dataclass whose fields are its preprocessing constants. They are plain
data (``to_dict`` / ``from_dict``), so a checkpoint carries them (``codecs_to_dict``) and the
inference node preprocesses exactly as in training. Bad input of any kind (empty, NaN/Inf,
wrong rank or dtype, absurd sizes) raises :class:`CodecError`, whose message says what was
wrong and what is expected.

Only numpy, OpenCV and librosa are used here; torch is not needed.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CodecError",
    "ImageCodec",
    "AudioCodec",
    "TrajectoryCodec",
    "LabelCodec",
    "resample_arc_length",
    "loudest_window",
    "energy_centre",
    "centred_window",
    "default_codecs",
    "codecs_to_dict",
    "codecs_from_dict",
]


class CodecError(ValueError):
    """Input that a codec cannot turn into (or back from) a model tensor."""


# --------------------------------------------------------------------------- helpers
def _as_array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - ragged lists, odd objects
        raise CodecError(f"{what}: cannot convert {type(x).__name__} to an array ({exc})") from exc
    if arr.dtype == object:
        raise CodecError(f"{what}: expected a numeric array, got an object array")
    return arr


def _check_finite(arr: np.ndarray, what: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise CodecError(f"{what}: contains NaN or Inf values; expected finite numbers")


def _check_numeric(arr: np.ndarray, what: str, allowed: str) -> None:
    # dtype kinds: signed and unsigned integers, floats (bool is kind "b", complex "c")
    if arr.dtype.kind not in "iuf":
        raise CodecError(f"{what}: dtype {arr.dtype} is not supported; expected {allowed}")


class _Codec:
    """Shared plain-data behaviour of the codecs (dataclass fields = constants)."""

    name: str = ""
    #: constants introduced later -> the value that means "as before" (see :meth:`from_dict`)
    _LEGACY: dict = {}

    def to_dict(self) -> dict:
        """The codec's constants as a JSON-able dict (with its type name)."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        d["type"] = type(self).__name__
        return d

    @classmethod
    def from_dict(cls, d: dict):
        """Rebuild a codec from :meth:`to_dict` output; unknown or wrong keys -> CodecError."""
        if not isinstance(d, dict):
            raise CodecError(f"{cls.__name__}.from_dict: expected a dict, got {type(d).__name__}")
        d = dict(d)
        typ = d.pop("type", cls.__name__)
        if typ != cls.__name__:
            raise CodecError(f"{cls.__name__}.from_dict: dict describes a {typ}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise CodecError(f"{cls.__name__}.from_dict: unknown constants {unknown}; known: {sorted(names)}")
        for f in dataclasses.fields(cls):
            if f.name in d and isinstance(d[f.name], list):
                d[f.name] = tuple(d[f.name])
        # constants added after a checkpoint was written take the value that reproduces the old
        # preprocessing, so an older checkpoint preprocesses exactly as it was trained
        for k, v in cls._LEGACY.items():
            d.setdefault(k, v)
        try:
            return cls(**d)
        except TypeError as exc:
            raise CodecError(f"{cls.__name__}.from_dict: {exc}") from exc


# --------------------------------------------------------------------------- image
@functools.lru_cache(maxsize=None)
def _kernel(shape: int, k: int) -> np.ndarray:
    """``cv2.getStructuringElement(shape, (k, k))``, made once per (shape, k) and kept read-only."""
    import cv2

    kern = cv2.getStructuringElement(shape, (k, k))
    kern.flags.writeable = False
    return kern


def _median_above(x: np.ndarray, t: float) -> bool:
    """``np.median(x) > t``, exactly, by counting instead of sorting (0.005 vs 0.45 ms for a
    256x192 frame).
    """
    v = x.ravel()
    n = v.size
    above = v > t
    c = int(np.count_nonzero(above))  # sorted ascending, a_i > t iff i >= n - c
    k = n // 2
    if n % 2:
        return c >= k + 1  # the median a_k
    if c >= k + 1:  # median (a_{k-1} + a_k) / 2: both above t
        return True
    if c <= k - 1:  # both at or below t
        return False
    # a_{k-1} <= t < a_k: their mean as np.median computes it (in the array's dtype)
    return float(np.mean(np.array([v[~above].max(), v[above].min()], dtype=v.dtype))) > t


def _quantile(x: np.ndarray, q: float) -> float:
    """``np.percentile(x, 100 q)`` (linear interpolation) from a partition of the two order
    statistics it needs (equal within float32 rounding; half the time of ``np.percentile``).
    """
    v = x.ravel()
    n = v.size
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    frac = float(pos - lo)
    hi = min(lo + 1, n - 1)
    top = n - lo  # the order statistics wanted are among the ``top`` largest values
    if n >= 1024 and top * 16 <= n:
        # a high quantile of a frame: partition only the values at or above a threshold
        # taken from every 8th value (4x the needed count above it, so it almost always holds
        # enough); exact: below the threshold are at most ``lo`` values, so the wanted order
        # statistics keep their ranks among the candidates, shifted by the values left out
        sub = v[::8]
        j = max(0, sub.size - 1 - (4 * top) // 8 - 4)
        cand = v[v >= np.partition(sub, j)[j]]
        if cand.size >= top:
            off = n - cand.size
            v, lo, hi = cand, lo - off, hi - off
    part = np.partition(v, [lo, hi])
    a, b = float(part[lo]), float(part[hi])
    return a + (b - a) * frac  # a Python float: float32 frames divided by it stay float32


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """float32 ``0.299 R + 0.587 G + 0.114 B`` of an HxWx3 RGB array (any numeric dtype, unscaled).

    OpenCV's colour conversion (the same weights) on float32. A channel-reversed view of a
    contiguous BGR buffer (what ``image_to_canonical`` makes of bgr8 frames) is converted from
    the buffer itself, without a copy into RGB order.
    """
    import cv2

    bgr = rgb[:, :, ::-1]
    if bgr.flags.c_contiguous:
        return cv2.cvtColor(bgr.astype(np.float32), cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)


#: Polarity options of :class:`ImageCodec`.
INVERT_AUTO, INVERT_NEVER, INVERT_ALWAYS = "auto", "never", "always"


@dataclass(frozen=True)
class ImageCodec(_Codec):
    """Camera frame -> grey 1x28x28 in [0,1], bright stroke on dark (MNIST polarity).

    With ``localize`` (the default) the codec is a camera front end: it finds the digit in any
    frame and normalises it the way MNIST was made.

    1. To grey (RGB(A) luminance; alpha dropped), scaled to [0,1] by dtype (uint8 /255, uint16
       /65535, floats must already be in [0,1]); frames larger than ``work_size`` on their
       longer side are first shrunk to it (area interpolation).
    2. Polarity: with ``invert="auto"`` the frame is inverted when its background (the median of
       all pixels - ink is the minority) is brighter than ``auto_invert_threshold``, so a dark
       digit on paper becomes bright ink on dark. ``"never"`` / ``"always"`` force it.
    3. Lighting: the background (a grey opening with a kernel wider than any stroke, blurred)
       is subtracted, which removes lighting gradients.
    4. Ink: Otsu threshold of the background-free frame after a median filter (sensor noise);
       connected components; the largest one and every component close to it (digits with
       separate strokes: 4, 5, 7) form the digit. Frames whose ink contrast is below
       ``min_contrast`` or whose largest component is a speck (< ``min_ink_frac`` of the frame)
       hold no digit: :class:`CodecError` (the node counts it as a drop).
    5. MNIST normalisation: the digit's box, aspect kept, is resized to fit ``box`` x ``box``
       pixels, and placed in ``size`` x ``size`` with its centre of mass at the centre; contrast
       is stretched to [0,1].

    Without ``localize`` the old path runs: centre-crop to a square, resize, polarity, stretch
    (for inputs that are already MNIST-like crops).
    """

    size: int = 28
    invert: str = INVERT_AUTO
    auto_invert_threshold: float = 0.5
    stretch_contrast: bool = True
    max_pixels: int = 4096 * 4096
    localize: bool = True
    box: int = 20
    work_size: int = 256
    min_contrast: float = 0.12
    min_ink_frac: float = 0.0005
    name = "image"
    _LEGACY = {"localize": False}

    def __post_init__(self):
        if self.invert not in (INVERT_AUTO, INVERT_NEVER, INVERT_ALWAYS):
            raise CodecError(f"ImageCodec.invert must be 'auto', 'never' or 'always', got {self.invert!r}")
        if int(self.size) < 1:
            raise CodecError(f"ImageCodec.size must be >= 1, got {self.size}")
        if not 1 <= int(self.box) <= int(self.size):
            raise CodecError(f"ImageCodec.box must be in [1, size], got {self.box}")
        if int(self.work_size) < 32:
            raise CodecError(f"ImageCodec.work_size must be >= 32, got {self.work_size}")

    def to_grey(self, frame: Any) -> np.ndarray:
        """Validate a frame and return it as float32 grey HxW in [0,1]."""
        arr = _as_array(frame, "image frame")
        _check_numeric(arr, "image frame", "uint8, uint16 or float in [0,1]")
        if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
            pass
        elif arr.ndim != 2:
            raise CodecError(
                f"image frame: shape {arr.shape} is not supported; expected HxW or HxWxC with C in (1,3,4)"
            )
        h, w = arr.shape[:2]
        if h == 0 or w == 0:
            raise CodecError(f"image frame: empty frame of shape {arr.shape}")
        if h * w > self.max_pixels:
            raise CodecError(f"image frame: {h}x{w} pixels is more than the {self.max_pixels} allowed")
        if arr.dtype == np.uint8:
            scale = 1.0 / 255.0
        elif arr.dtype == np.uint16:
            scale = 1.0 / 65535.0
        elif np.issubdtype(arr.dtype, np.floating):
            _check_finite(arr, "image frame")
            lo, hi = float(arr.min()), float(arr.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise CodecError(f"image frame: float values span [{lo:.3g}, {hi:.3g}]; expected [0,1]")
            arr, scale = np.clip(arr, 0.0, 1.0), None
        else:
            raise CodecError(f"image frame: dtype {arr.dtype} is not supported; expected uint8, uint16 or float")
        if arr.ndim == 3:
            # RGB(A) -> luminance 0.299 R + 0.587 G + 0.114 B (BGR order changes the weights only
            # slightly); grey first, so the scaling below touches a third of the values
            arr = arr[:, :, 0] if arr.shape[2] == 1 else _luminance(arr[:, :, :3])
        if scale is None:
            return np.ascontiguousarray(arr, dtype=np.float32)
        # one pass: each value converted to float32, then times the float32 scale
        return np.multiply(arr, np.float32(scale), dtype=np.float32)

    def encode(self, frame: Any) -> np.ndarray:
        """Frame (HxW or HxWxC, C in 1/3/4; uint8, uint16 or float) -> float32 (1,28,28) in [0,1].

        Raises :class:`CodecError` for bad input and, with ``localize``, for a frame that holds
        no digit.
        """
        img = self.to_grey(frame)
        if self.localize:
            return self._localized(img)
        return self._centre_crop(img)

    def _centre_crop(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        sq = img[top : top + s, left : left + s]
        if self.invert == INVERT_ALWAYS or (self.invert == INVERT_AUTO and self._bright_background(sq)):
            sq = 1.0 - sq
        n = int(self.size)
        interp = cv2.INTER_AREA if s >= n else cv2.INTER_LINEAR
        out = cv2.resize(sq, (n, n), interpolation=interp)
        return self._stretch(out)[None]

    def _stretch(self, out: np.ndarray) -> np.ndarray:
        if self.stretch_contrast:
            lo, hi = float(out.min()), float(out.max())
            if hi - lo > 1e-6:
                out = (out - lo) / (hi - lo)
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

    def _bright_background(self, sq: np.ndarray) -> bool:
        border = np.concatenate([sq[0], sq[-1], sq[:, 0], sq[:, -1]])
        return float(np.median(border)) > self.auto_invert_threshold

    def locate(self, frame: Any) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Find the digit: ``(ink, box)`` with ``ink`` the background-free, bright-on-dark
        working-resolution image and ``box = (x0, y0, x1, y1)`` in the ORIGINAL frame's pixels.
        Raises :class:`CodecError` when the frame holds no digit.
        """
        img = self.to_grey(frame)
        ink, (x0, y0, x1, y1), f = self._find(img)
        return ink, (int(np.floor(x0 / f)), int(np.floor(y0 / f)),
                     min(img.shape[1], int(np.ceil(x1 / f))), min(img.shape[0], int(np.ceil(y1 / f))))

    def _find(self, img: np.ndarray):
        import cv2

        h, w = img.shape
        f = min(1.0, float(self.work_size) / max(h, w))
        if f < 1.0:
            img = cv2.resize(img, (max(1, int(round(w * f))), max(1, int(round(h * f)))), interpolation=cv2.INTER_AREA)
        if min(img.shape) < 56:  # tiny frames: upsample so 1-px strokes survive the median filter
            g = 56.0 / min(img.shape)
            img = cv2.resize(img, (int(round(img.shape[1] * g)), int(round(img.shape[0] * g))),
                             interpolation=cv2.INTER_LINEAR)
            f *= g
        h, w = img.shape
        if self.invert == INVERT_ALWAYS or (self.invert == INVERT_AUTO
                                             and _median_above(img, self.auto_invert_threshold)):
            img = 1.0 - img
        # background: an opening removes bright structures narrower than the kernel (strokes);
        # a kernel of 1/4 of the shorter side (of the half-size copy for larger frames) is wider
        # than the strokes of any digit that fits.
        small = img if min(h, w) <= 64 else cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        ks = max(3, (min(small.shape) // 4) | 1)
        bg = cv2.morphologyEx(small, cv2.MORPH_OPEN, _kernel(cv2.MORPH_RECT, ks))
        bg = cv2.blur(bg, (ks, ks))
        if small is not img:
            bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
        ink = np.subtract(img, bg, out=bg)  # bg is ours (a new array) and not needed after this
        np.clip(ink, 0.0, 1.0, out=ink)
        den = cv2.medianBlur(ink, 3)
        hi = _quantile(den, 0.999)
        if hi < self.min_contrast:
            raise CodecError(f"image frame: no digit found (ink contrast {hi:.3f} < {self.min_contrast})")
        u8 = np.round(den / hi * 255.0).clip(0, 255).astype(np.uint8)
        thr, mask = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        # join the pieces of a stroke broken by noise or thin anti-aliasing
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _kernel(cv2.MORPH_ELLIPSE, 3))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            raise CodecError("image frame: no digit found (no ink above the background)")
        # components as Python ints (x, y, w, h, area), label 0 (the background) left out
        comps = stats[1:, :5].tolist()
        areas = [c[cv2.CC_STAT_AREA] for c in comps]
        top = max(areas)
        best = areas.index(top)  # the first of equal areas, as np.argmax
        if top < self.min_ink_frac * h * w or top < 4:
            raise CodecError(f"image frame: no digit found (largest ink blob is {top} px)")
        bx, by, bw, bh = comps[best][:4]
        x0, y0, x1, y1 = bx, by, bx + bw, by + bh
        reach = 0.35 * max(bw, bh)
        # the others by decreasing area, equal areas in label order (np.argsort, used before,
        # left their order to its sort algorithm)
        for i in sorted(range(len(comps)), key=lambda j: -areas[j]):
            if i == best or areas[i] < 0.02 * top:
                continue
            cx, cy, cw, ch = comps[i][:4]
            gap_x = max(0, max(x0 - (cx + cw), cx - x1))
            gap_y = max(0, max(y0 - (cy + ch), cy - y1))
            if max(gap_x, gap_y) <= reach:
                x0, y0, x1, y1 = min(x0, cx), min(y0, cy), max(x1, cx + cw), max(y1, cy + ch)
        # soft ink inside the box (anti-aliased edges kept), components outside it removed
        floor = float(thr) / 255.0 * 0.5  # below half the Otsu level: background
        box = np.minimum(den[y0:y1, x0:x1] / hi, 1.0)
        ink = np.zeros((h, w), np.float32)
        ink[y0:y1, x0:x1] = np.clip((np.maximum(box, 0.0) - floor) / max(1e-6, 1.0 - floor), 0.0, 1.0)
        return ink, (x0, y0, x1, y1), f

    def _localized(self, img: np.ndarray) -> np.ndarray:
        import cv2

        ink, (x0, y0, x1, y1), _ = self._find(img)
        crop = ink[y0:y1, x0:x1]
        ch, cw = crop.shape
        box = float(self.box)
        scale = box / max(ch, cw)
        nw, nh = max(1, int(round(cw * scale))), max(1, int(round(ch * scale)))
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        digit = cv2.resize(crop, (nw, nh), interpolation=interp)
        n = int(self.size)
        total = float(digit.sum())
        if total <= 0:
            raise CodecError("image frame: no digit found (empty ink after normalisation)")
        # centre of mass of the grey ink, from the row and column sums (cv2.moments would read a
        # digit 2 pixels wide as a list of points)
        cx = float(digit.sum(axis=0, dtype=np.float64) @ np.arange(nw)) / total
        cy = float(digit.sum(axis=1, dtype=np.float64) @ np.arange(nh)) / total
        # translate so that the centre of mass lands on the image centre (sub-pixel, as MNIST)
        m = np.float32([[1, 0, (n - 1) / 2.0 - cx], [0, 1, (n - 1) / 2.0 - cy]])
        out = cv2.warpAffine(digit.astype(np.float32), m, (n, n), flags=cv2.INTER_LINEAR, borderValue=0.0)
        return self._stretch(out)[None]

    def decode(self, t: Any) -> np.ndarray:
        """Model image (1,28,28) or (28,28), values in [0,1] -> uint8 (28,28)."""
        arr = _as_array(t, "image tensor").astype(np.float32, copy=False)
        n = int(self.size)
        if arr.shape == (1, n, n):
            arr = arr[0]
        if arr.shape != (n, n):
            raise CodecError(f"image tensor: shape {arr.shape}; expected (1,{n},{n}) or ({n},{n})")
        _check_finite(arr, "image tensor")
        return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------- audio
def loudest_window(x: np.ndarray, n: int, tolerance: float = 1e-3) -> int:
    """Start index of the ``n``-sample window of ``x`` with the most energy (0 if len(x) <= n).

    Windows within ``tolerance`` (relative) of the best one count as equally loud and the
    middle one of them is taken, so a short sound inside a long silence ends up centred.
    """
    if len(x) <= n:
        return 0
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64) ** 2)])
    energy = c[n:] - c[:-n]
    best = float(energy.max())
    if best <= 0:
        return (len(x) - n) // 2
    near = np.flatnonzero(energy >= best * (1.0 - tolerance))
    return int(near[len(near) // 2])


def energy_centre(x: np.ndarray, frame: int = 160, floor_db: float = 20.0) -> float:
    """Sample index of the energy centroid of ``x``: the energy-weighted mean position of its
    ``frame``-sample frames, counting only frames within ``floor_db`` of the loudest (so a
    quiet noise floor does not pull the centre). The middle of ``x`` when it is silent.
    """
    x = np.asarray(x, dtype=np.float64)
    k = len(x) // frame
    if k < 1:
        return len(x) / 2.0
    e = np.mean(x[: k * frame].reshape(k, frame) ** 2, axis=1)
    top = float(e.max())
    if top <= 0:
        return len(x) / 2.0
    w = np.where(e >= top * 10.0 ** (-floor_db / 10.0), e, 0.0)
    return float(((np.arange(k) + 0.5) * frame * w).sum() / w.sum())


def centred_window(x: np.ndarray, n: int, frame: int = 160) -> np.ndarray:
    """The ``n``-sample window of ``x`` centred on its energy centroid (:func:`energy_centre`),
    zero padded where it reaches past either end: an utterance lands in the middle of the
    window wherever it was in the clip.
    """
    x = np.asarray(x, np.float32)
    start = int(round(energy_centre(x, frame) - n / 2.0))
    out = np.zeros(n, np.float32)
    a, b = max(0, start), min(len(x), start + n)
    if b > a:
        out[a - start : b - start] = x[a:b]
    return out


@dataclass(frozen=True)
class AudioCodec(_Codec):
    """Mono PCM at any sample rate -> float32 (1,128,32) log-mel (mel x frames) in [0,1].

    Steps: to float in [-1,1] (int16 /32768, int32 /2^31; floats as given), resample to
    ``sample_rate`` (16 kHz as in MHD), optionally scale to peak 1 (microphone gains differ
    between robots), take a ``window_s`` window centred on the clip's energy centroid
    (:func:`centred_window`; zero padded past the clip's ends - with ``centre_on_energy`` false:
    short clips padded centred, long clips the loudest window), 128-bin mel power spectrogram
    (librosa, Slaney mel from ``fmin`` to ``fmax``, ``n_fft`` 1024, ``hop_length`` 500 = exactly
    32 frames per second; centred frames give 33 per second of signal, the last one - centred on
    the window's end - is dropped), power in dB (ref 1.0), the fixed range [``db_min``,
    ``db_max``] mapped linearly to [0,1] and clipped.

    ``fmax`` is 4 kHz, the bandwidth of the 8 kHz training recordings: a 16 or 44.1 kHz
    microphone gives the same features as an 8 kHz one (the bins above 4 kHz would be empty in
    every training sample and full from a wide-band microphone).

    ``decode`` inverts the mapping and runs Griffin-Lim (``librosa.feature.inverse.mel_to_audio``).
    """

    sample_rate: int = 16000
    n_mels: int = 128
    n_frames: int = 32
    window_s: float = 1.0
    n_fft: int = 1024
    hop_length: int = 500
    fmin: float = 0.0
    fmax: float = 4000.0
    centre_on_energy: bool = True
    db_min: float = -80.0
    db_max: float = 30.0
    peak_normalize: bool = True
    max_seconds: float = 60.0
    min_rate: int = 1000
    max_rate: int = 384000
    name = "audio"
    _LEGACY = {"centre_on_energy": False}

    def __post_init__(self):
        if self.window_n != self.hop_length * self.n_frames:
            raise CodecError(
                f"AudioCodec: window of {self.window_n} samples must equal hop_length*n_frames "
                f"= {self.hop_length * self.n_frames}"
            )
        if not self.db_max > self.db_min:
            raise CodecError("AudioCodec: db_max must be greater than db_min")

    @property
    def window_n(self) -> int:
        """Samples in the analysis window at the codec rate."""
        return int(round(self.window_s * self.sample_rate))

    # -- validation
    def _check_rate(self, sample_rate: Any) -> int:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float, np.floating)):
            raise CodecError(f"audio: sample_rate must be a positive number, got {sample_rate!r}")
        sr = float(sample_rate)
        if not np.isfinite(sr) or sr != int(sr) or not (self.min_rate <= sr <= self.max_rate):
            raise CodecError(
                f"audio: sample_rate {sample_rate!r} is not an integer in [{self.min_rate}, {self.max_rate}] Hz"
            )
        return int(sr)

    def _pcm_to_float(self, arr: np.ndarray, what: str) -> np.ndarray:
        _check_numeric(arr, what, "int16, int32 or float PCM")
        if arr.dtype == np.int16:
            return arr.astype(np.float32) / 32768.0
        if arr.dtype == np.int32:
            return (arr.astype(np.float64) / 2147483648.0).astype(np.float32)
        if np.issubdtype(arr.dtype, np.floating):
            _check_finite(arr, what)
            return arr.astype(np.float32, copy=False)
        raise CodecError(f"{what}: dtype {arr.dtype} is not supported; expected int16, int32 or float PCM")

    def validate(self, pcm: Any, sample_rate: Any) -> tuple[np.ndarray, int]:
        """Check one clip; return it as float32 1-D and the sample rate as int."""
        sr = self._check_rate(sample_rate)
        arr = _as_array(pcm, "audio")
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise CodecError(f"audio: shape {arr.shape}; expected mono PCM, a 1-D array")
        if arr.size == 0:
            raise CodecError("audio: empty clip; expected at least one sample")
        if arr.size > self.max_seconds * sr:
            raise CodecError(
                f"audio: {arr.size / sr:.1f} s is longer than the {self.max_seconds:g} s allowed; send shorter chunks"
            )
        return self._pcm_to_float(arr, "audio"), sr

    # -- features
    def _window(self, x: np.ndarray) -> np.ndarray:
        n = self.window_n
        if self.centre_on_energy:
            return centred_window(x, n, frame=max(1, self.sample_rate // 100))
        if len(x) >= n:
            s = loudest_window(x, n)
            return x[s : s + n]
        out = np.zeros(n, np.float32)
        s = (n - len(x)) // 2
        out[s : s + len(x)] = x
        return out

    def _resample(self, x: np.ndarray, sr: int) -> np.ndarray:
        if sr == self.sample_rate:
            return x.astype(np.float32, copy=False)
        import librosa

        return librosa.resample(x, orig_sr=sr, target_sr=self.sample_rate, res_type="soxr_hq", axis=-1).astype(
            np.float32
        )

    def _peak(self, x: np.ndarray) -> np.ndarray:
        if not self.peak_normalize:
            return x
        p = float(np.max(np.abs(x))) if x.size else 0.0
        return x / p if p > 1e-4 else x

    def _mel_basis(self) -> np.ndarray:
        """The (n_mels, 1 + n_fft/2) mel filterbank of this codec's constants, built once."""
        key = (self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)
        cached = self.__dict__.get("_mel_basis_cache")
        if cached is None or cached[0] != key:
            import librosa

            basis = librosa.filters.mel(sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels,
                                        fmin=self.fmin, fmax=self.fmax)
            self.__dict__["_mel_basis_cache"] = cached = (key, basis)
        return cached[1]

    def _features(self, windows: np.ndarray) -> np.ndarray:
        """(B, window_n) float32 -> (B, 1, n_mels, n_frames) in [0,1]."""
        import librosa

        # The same computation as librosa.feature.melspectrogram (hann window, centred frames,
        # constant padding, power 2), with the mel filterbank built once per codec instead of
        # on every call (it was half of the codec's time for a 1 s window).
        spec = np.abs(librosa.stft(windows, n_fft=self.n_fft, hop_length=self.hop_length, window="hann",
                                   center=True, pad_mode="constant")) ** 2
        mel = np.einsum("...ft,mf->...mt", spec[..., : self.n_frames], self._mel_basis(), optimize=True)
        db = 10.0 * np.log10(np.maximum(mel, 1e-12))
        out = (db - self.db_min) / (self.db_max - self.db_min)
        return np.clip(out, 0.0, 1.0).astype(np.float32)[:, None]

    def encode(self, pcm: Any, sample_rate: Any) -> np.ndarray:
        """Mono PCM (1-D int16/int32/float) at ``sample_rate`` Hz -> float32 (1,128,32) in [0,1]."""
        x, sr = self.validate(pcm, sample_rate)
        x = self._peak(self._resample(x, sr))
        return self._features(self._window(x)[None])[0]

    def encode_batch(
        self, waveforms: Any, lengths: Any, sample_rate: Any, batch_size: int = 512
    ) -> np.ndarray:
        """Zero-padded clips (N,L) with valid ``lengths`` (N,) -> float32 (N,1,128,32).

        Same result as :meth:`encode` per row (up to resampling edge effects of the padding),
        vectorised: rows are resampled together, the mel spectrograms computed in batches.
        """
        sr = self._check_rate(sample_rate)
        w = _as_array(waveforms, "audio batch")
        if w.ndim != 2:
            raise CodecError(f"audio batch: shape {w.shape}; expected (N, L) zero-padded clips")
        lens = _as_array(lengths, "audio lengths")
        if lens.shape != (w.shape[0],) or not np.issubdtype(lens.dtype, np.integer):
            raise CodecError(f"audio lengths: expected integer array of shape ({w.shape[0]},), got {lens.shape}")
        if w.shape[0] == 0:
            return np.zeros((0, 1, self.n_mels, self.n_frames), np.float32)
        if w.shape[1] > self.max_seconds * sr:
            raise CodecError(f"audio batch: rows of {w.shape[1] / sr:.1f} s exceed {self.max_seconds:g} s")
        if np.any(lens < 1) or np.any(lens > w.shape[1]):
            raise CodecError(f"audio lengths: each must be in [1, {w.shape[1]}]")
        w = self._pcm_to_float(w, "audio batch")
        out = np.empty((w.shape[0], 1, self.n_mels, self.n_frames), np.float32)
        ratio = self.sample_rate / sr
        for b0 in range(0, w.shape[0], batch_size):
            rows = self._resample(w[b0 : b0 + batch_size], sr)
            wins = np.empty((rows.shape[0], self.window_n), np.float32)
            for i, row in enumerate(rows):
                n = min(rows.shape[1], max(1, int(round(int(lens[b0 + i]) * ratio))))
                wins[i] = self._window(self._peak(row[:n]))
            out[b0 : b0 + len(rows)] = self._features(wins)
        return out

    def to_db(self, mel: Any) -> np.ndarray:
        """Model audio tensor in [0,1] -> mel power in dB (inverse of the range mapping)."""
        m = self._check_mel(mel)
        return self.db_min + np.clip(m, 0.0, 1.0) * (self.db_max - self.db_min)

    def _check_mel(self, mel: Any) -> np.ndarray:
        m = _as_array(mel, "audio tensor").astype(np.float32, copy=False)
        if m.shape == (1, self.n_mels, self.n_frames):
            m = m[0]
        if m.shape != (self.n_mels, self.n_frames):
            raise CodecError(
                f"audio tensor: shape {m.shape}; expected (1,{self.n_mels},{self.n_frames}) or "
                             f"({self.n_mels},{self.n_frames})"
            )
        _check_finite(m, "audio tensor")
        return m

    def decode(self, mel: Any, n_iter: int = 60) -> np.ndarray:
        """Model audio tensor -> float32 waveform at ``sample_rate`` (``window_n`` samples), Griffin-Lim."""
        import librosa

        power = 10.0 ** (self.to_db(mel) / 10.0)
        # encode dropped the frame centred on the window's end: repeat the last one for the
        # inversion so that the STFT frames match a window of exactly ``window_n`` samples
        power = np.concatenate([power, power[:, -1:]], axis=1)
        y = librosa.feature.inverse.mel_to_audio(
            power.astype(np.float32),
            sr=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            fmin=self.fmin,
            fmax=self.fmax,
            power=2.0,
            center=True,
            n_iter=int(n_iter),
            length=self.window_n,
        )
        return np.nan_to_num(y.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


# --------------------------------------------------------------------------- trajectory
def resample_arc_length(points: np.ndarray, n: int) -> np.ndarray:
    """Resample an ordered (N,2) polyline to ``n`` points equally spaced by arc length.

    Raises CodecError when the polyline has zero length (a single, repeated point).
    """
    p = np.asarray(points, dtype=np.float64)
    seg = np.sqrt(np.sum(np.diff(p, axis=0) ** 2, axis=1))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = s[-1]
    if not total > 0:
        raise CodecError("trajectory: zero length (all points identical); expected a moving point sequence")
    t = np.linspace(0.0, total, n)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


@dataclass(frozen=True)
class TrajectoryCodec(_Codec):
    """Ordered 2-D points (or a list of strokes) -> float32 (200,) = x1..x100, y1..y100 in [0,1].

    Strokes are concatenated in order (the pen-up jump between strokes becomes one straight
    segment), resampled to ``n_points`` equally spaced by arc length, then normalised *per
    sample*: both axes are scaled by the larger of the two extents (aspect ratio kept) and the
    shorter axis is centred in [0,1]. MHD itself min-max scaled each axis with constants of the
    whole data set; that only works when every trajectory comes from one tablet. Robots send
    points in their own units (metres of an end effector, pixels of a touch screen, tablet
    counts), so the per-sample normalisation is what makes their trajectories comparable.
    y is kept as given (y grows upwards).
    """

    n_points: int = 100
    max_points: int = 100_000
    name = "trajectory"

    @property
    def size(self) -> int:
        return 2 * int(self.n_points)

    def points(self, points: Any) -> np.ndarray:
        """Validate ``points`` ((N,2) array or list of (Ni,2) strokes) -> float64 (N,2)."""
        if isinstance(points, (list, tuple)) and len(points) > 0:
            parts = [_as_array(s, f"trajectory stroke {i}") for i, s in enumerate(points)]
            is_strokes = all(s.ndim == 2 for s in parts)
        else:
            is_strokes = False
        if is_strokes:  # a list of (Ni,2) strokes, concatenated in order
            for i, s in enumerate(parts):
                if s.shape[1:] != (2,):
                    raise CodecError(f"trajectory stroke {i}: shape {s.shape}; expected (N,2)")
            arr = np.concatenate(parts, axis=0)
        else:
            arr = _as_array(points, "trajectory")
        _check_numeric(arr, "trajectory", "numbers")
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise CodecError(f"trajectory: shape {arr.shape}; expected ordered (N,2) points or a list of strokes")
        if arr.shape[0] == 0:
            raise CodecError("trajectory: no points; expected at least 2 distinct points")
        if arr.shape[0] > self.max_points:
            raise CodecError(f"trajectory: {arr.shape[0]} points is more than the {self.max_points} allowed")
        arr = arr.astype(np.float64)
        _check_finite(arr, "trajectory")
        return arr

    def encode(self, points: Any) -> np.ndarray:
        """Points / strokes -> float32 (200,) in [0,1]."""
        p = resample_arc_length(self.points(points), int(self.n_points))
        lo, hi = p.min(axis=0), p.max(axis=0)
        ext = hi - lo
        scale = float(ext.max())
        q = (p - lo) / scale + (1.0 - ext / scale) / 2.0
        q = np.clip(q, 0.0, 1.0).astype(np.float32)
        return np.concatenate([q[:, 0], q[:, 1]])

    def decode(self, v: Any) -> np.ndarray:
        """(200,) model vector -> (100,2) points (x, y) in [0,1]."""
        arr = _as_array(v, "trajectory tensor").astype(np.float32, copy=False)
        if arr.shape != (self.size,):
            raise CodecError(f"trajectory tensor: shape {arr.shape}; expected ({self.size},)")
        _check_finite(arr, "trajectory tensor")
        n = int(self.n_points)
        return np.stack([arr[:n], arr[n:]], axis=1)


# --------------------------------------------------------------------------- label
@dataclass(frozen=True)
class LabelCodec(_Codec):
    """Integer class <-> one-hot (10,) in, logits (10,) out."""

    num_classes: int = 10
    name = "label"

    def encode(self, label: Any) -> np.ndarray:
        """Class index -> float32 one-hot (num_classes,)."""
        if isinstance(label, np.ndarray) and label.ndim == 0:
            label = label.item()
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise CodecError(f"label: expected an integer class, got {label!r}")
        if not 0 <= int(label) < self.num_classes:
            raise CodecError(f"label: {label} is out of range; expected 0..{self.num_classes - 1}")
        out = np.zeros(self.num_classes, np.float32)
        out[int(label)] = 1.0
        return out

    def decode(self, logits: Any) -> tuple[int, np.ndarray]:
        """Logits (num_classes,) -> (argmax class, softmax probabilities float32)."""
        arr = _as_array(logits, "label logits").astype(np.float64, copy=False)
        if arr.shape != (self.num_classes,):
            raise CodecError(f"label logits: shape {arr.shape}; expected ({self.num_classes},)")
        _check_finite(arr, "label logits")
        e = np.exp(arr - arr.max())
        p = e / e.sum()
        return int(np.argmax(p)), p.astype(np.float32)


# --------------------------------------------------------------------------- registry
_CODEC_TYPES = {c.__name__: c for c in (ImageCodec, AudioCodec, TrajectoryCodec, LabelCodec)}


def default_codecs() -> dict[str, _Codec]:
    """One codec per modality with the default constants, keyed in canonical modality order."""
    return {
        "image": ImageCodec(),
        "audio": AudioCodec(),
        "trajectory": TrajectoryCodec(),
        "label": LabelCodec(),
    }


def codecs_to_dict(codecs: dict) -> dict:
    """``{modality: codec}`` -> JSON-able ``{modality: codec.to_dict()}`` (stored in checkpoints)."""
    return {name: codec.to_dict() for name, codec in codecs.items()}


def codecs_from_dict(d: dict) -> dict[str, _Codec]:
    """Inverse of :func:`codecs_to_dict`; an unknown codec type raises CodecError."""
    if not isinstance(d, dict):
        raise CodecError(f"codecs: expected a dict of codec dicts, got {type(d).__name__}")
    out = {}
    for name, cd in d.items():
        if not isinstance(cd, dict) or cd.get("type") not in _CODEC_TYPES:
            typ = cd.get("type") if isinstance(cd, dict) else type(cd).__name__
            raise CodecError(f"codecs[{name!r}]: unknown codec type {typ!r}; known: {sorted(_CODEC_TYPES)}")
        out[name] = _CODEC_TYPES[cd["type"]].from_dict(cd)
    return out

