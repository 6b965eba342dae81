# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Seeded simulations of what real sensors deliver (ROS-free; numpy, OpenCV, audiomentations).

Used in three places, so that training, evaluation and the demo see the same kind of input:

* training augmentation (:mod:`crossmodal_ros.augment`),
* the robustness suite (``crossmodal-eval --robustness``),
* the demo's playback sensors (camera frames, a continuous microphone stream).

Camera: :func:`render_frame` draws a 28x28 digit into a camera frame the way a camera sees a
digit on paper or a screen: either polarity, any scale and position, a lighting gradient, mild
perspective, blur and sensor noise.

Microphone: :func:`add_noise` (white / pink / babble at a given SNR), :func:`reverberate`
(room impulse responses from ``pyroomacoustics``' image-source model), :func:`change_speed`,
:func:`time_shift`, and :func:`continuous_stream` (utterances separated by silence over
background noise, as a microphone hears them).

Every function takes a ``numpy.random.Generator``: the same seed gives the same output.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "FrameSpec",
    "render_frame",
    "add_noise",
    "noise_like",
    "reverberate",
    "room_impulse_response",
    "change_speed",
    "time_shift",
    "continuous_stream",
]


# --------------------------------------------------------------------------- camera
class FrameSpec(dict):
    """Options of :func:`render_frame` (a dict with defaults; unknown keys raise)."""

    DEFAULTS = {
        "height": 480,
        "width": 640,
        "digit_frac": (0.25, 0.9),   # digit height / frame height, drawn uniformly
        "polarity": "random",         # dark_on_light | light_on_dark | random
        "gradient": 0.35,             # max lighting change across the frame (fraction of paper level)
        "noise_std": (0.0, 0.04),     # Gaussian sensor noise std (fraction of full scale)
        "blur_sigma": (0.0, 1.5),     # Gaussian blur in pixels of a 480-line frame
        "perspective": 0.06,          # max corner displacement (fraction of the digit size)
        "contrast": (0.45, 0.85),     # |paper - ink| level difference
        "colour": True,               # rgb frame with a tinted paper (else grey)
    }

    def __init__(self, **kw):
        unknown = sorted(set(kw) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"FrameSpec: unknown options {unknown}; known: {sorted(self.DEFAULTS)}")
        super().__init__({**self.DEFAULTS, **kw})


def _draw(rng: np.random.Generator, v):
    """A scalar option, or a (lo, hi) range drawn uniformly."""
    if isinstance(v, (tuple, list)):
        return float(rng.uniform(float(v[0]), float(v[1])))
    return float(v)


def render_frame(digit: np.ndarray, rng: np.random.Generator, spec: FrameSpec | None = None,
                 return_box: bool = False):
    """Draw a 28x28 digit (bright on dark, values in [0,1] or uint8) into a uint8 camera frame.

    Returns an (H,W,3) rgb8 frame (or (H,W) mono when ``spec["colour"]`` is false) and, with
    ``return_box``, the digit's ink bounding box ``(x0, y0, x1, y1)`` in frame pixels.
    """
    import cv2

    spec = spec or FrameSpec()
    h, w = int(spec["height"]), int(spec["width"])
    d = np.asarray(digit, np.float32)
    if d.ndim == 3:
        d = d[0]
    if d.max() > 1.0:
        d = d / 255.0
    ys, xs = np.nonzero(d > 0.1)
    if len(ys) == 0:
        raise ValueError("render_frame: the digit has no ink")
    # crop the ink so that digit_frac means the ink height, keep a 1 px margin for anti-aliasing
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    ink = np.pad(d[y0:y1, x0:x1], 1)
    frac = _draw(rng, spec["digit_frac"])
    target_h = max(8, int(round(frac * h)))
    scale = target_h / ink.shape[0]
    target_w = max(2, int(round(ink.shape[1] * scale)))
    if target_w > 0.95 * w:  # very wide digits: fit the width instead
        scale = 0.95 * w / ink.shape[1]
        target_w, target_h = int(0.95 * w), max(8, int(round(ink.shape[0] * scale)))
    big = cv2.resize(ink, (target_w, target_h), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big, 0.0, 1.0)
    # mild perspective: move the four corners of the digit's box by up to `perspective` of its size
    pmax = float(spec["perspective"])
    src = np.float32([[0, 0], [target_w, 0], [target_w, target_h], [0, target_h]])
    jitter = rng.uniform(-pmax, pmax, size=(4, 2)) * np.float32([target_w, target_h])
    dst = src + jitter.astype(np.float32)
    dst -= dst.min(0)
    out_w, out_h = int(np.ceil(dst[:, 0].max())) + 1, int(np.ceil(dst[:, 1].max())) + 1
    out_w, out_h = min(out_w, w), min(out_h, h)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(big, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)
    # place it anywhere in the frame
    ox = int(rng.integers(0, max(1, w - out_w + 1)))
    oy = int(rng.integers(0, max(1, h - out_h + 1)))
    inkmap = np.zeros((h, w), np.float32)
    inkmap[oy : oy + out_h, ox : ox + out_w] = warped
    # paper and ink levels, lighting gradient
    polarity = spec["polarity"]
    if polarity == "random":
        polarity = "dark_on_light" if rng.random() < 0.5 else "light_on_dark"
    contrast = _draw(rng, spec["contrast"])
    if polarity == "dark_on_light":
        paper = rng.uniform(0.6, 0.95)
        ink_level = paper - contrast
    elif polarity == "light_on_dark":
        paper = rng.uniform(0.03, 0.35)
        ink_level = paper + contrast
    else:
        raise ValueError(f"render_frame: polarity must be dark_on_light, light_on_dark or random, got {polarity!r}")
    g = float(spec["gradient"])
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5))
    light = 1.0 + g * rng.uniform(0.3, 1.0) * ramp  # multiplicative illumination
    img = (paper + (ink_level - paper) * inkmap) * light
    sigma = _draw(rng, spec["blur_sigma"]) * h / 480.0
    if sigma > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise = _draw(rng, spec["noise_std"])
    if spec["colour"]:
        tint = 1.0 + rng.uniform(-0.08, 0.08, size=3).astype(np.float32)
        img = img[:, :, None] * tint[None, None, :]
        shape = img.shape
    else:
        shape = img.shape
    if noise > 0:
        img = img + rng.normal(0.0, noise, size=shape).astype(np.float32)
    frame = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    if not return_box:
        return frame
    ys, xs = np.nonzero(inkmap > 0.2)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return frame, box


# --------------------------------------------------------------------------- microphone
def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def noise_like(n: int, kind: str, rng: np.random.Generator, babble: list | None = None,
               sample_rate: int = 16000) -> np.ndarray:
    """``n`` samples of unit-RMS noise: ``white``, ``pink`` (1/f power) or ``babble``.

    ``babble`` sums 4-6 randomly chosen, randomly placed speech clips from ``babble`` (a list of
    float arrays at ``sample_rate``); the clips must not be the evaluated ones.
    """
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1.0 / sample_rate)
        # 1/f power above 20 Hz; below, nothing (a microphone's high-pass: otherwise half the
        # power would be a slow drift under the speech)
        spec = np.where(f >= 20.0, spec / np.sqrt(np.maximum(f, 20.0)), 0.0)
        x = np.fft.irfft(spec, n)
    elif kind == "babble":
        if not babble:
            raise ValueError("noise_like: babble noise needs a list of speech clips")
        x = np.zeros(n)
        for _ in range(int(rng.integers(4, 7))):
            c = np.asarray(babble[int(rng.integers(len(babble)))], np.float64)
            c = c / (_rms(c) + 1e-9)
            reps = int(np.ceil(n / max(1, len(c)))) + 1
            tiled = np.tile(np.concatenate([c, np.zeros(int(rng.integers(0, sample_rate // 4)))]), reps)
            s = int(rng.integers(0, max(1, len(tiled) - n)))
            x += tiled[s : s + n]
    else:
        raise ValueError(f"noise_like: kind must be white, pink or babble, got {kind!r}")
    return (x / (_rms(x) + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator,
              babble: list | None = None, sample_rate: int = 16000,
              reference: np.ndarray | None = None) -> np.ndarray:
    """``x`` plus noise at ``snr_db`` relative to the RMS of ``reference`` (default: ``x``'s
    loud part, i.e. the speech, not the silence around it).
    """
    x = np.asarray(x, np.float32)
    ref = x if reference is None else np.asarray(reference, np.float32)
    # speech level: RMS over the frames within 30 dB of the loudest, so padding does not count
    frame = max(1, sample_rate // 50)
    k = len(ref) // frame
    if k >= 1:
        e = np.mean(np.square(ref[: k * frame].reshape(k, frame), dtype=np.float64), axis=1)
        level = float(np.sqrt(np.mean(e[e >= e.max() * 1e-3]))) if e.max() > 0 else 0.0
    else:
        level = _rms(ref)
    n = noise_like(len(x), kind, rng, babble, sample_rate)
    return (x + n * level * 10.0 ** (-snr_db / 20.0)).astype(np.float32)


def room_impulse_response(rng: np.random.Generator, sample_rate: int = 16000,
                          rt60: tuple = (0.2, 0.8)) -> np.ndarray:
    """A room impulse response from ``pyroomacoustics``' image-source model: a random shoebox
    room (3-8 m x 3-7 m x 2.4-3.5 m), reverberation time drawn from ``rt60`` seconds, random
    source and microphone positions.
    """
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 8), rng.uniform(3, 7), rng.uniform(2.4, 3.5)])
    t60 = float(rng.uniform(*rt60))
    try:
        e_abs, max_order = pra.inverse_sabine(t60, dims)
    except ValueError:  # the room is too small for that t60: take the most reverberant it allows
        e_abs, max_order = 0.05, 20
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(e_abs), max_order=min(int(max_order), 20))
    margin = 0.5
    src = rng.uniform(margin, dims - margin)
    mic = rng.uniform(margin, dims - margin)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], np.float32)
    return rir / (np.max(np.abs(rir)) + 1e-12)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir``, aligned on the direct path, same length and peak as ``x``."""
    from scipy.signal import fftconvolve

    x = np.asarray(x, np.float32)
    d = int(np.argmax(np.abs(rir)))
    y = fftconvolve(x, rir)[d : d + len(x)]
    peak_x, peak_y = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    return (y * (peak_x / peak_y) if peak_y > 0 else y).astype(np.float32)


def change_speed(x: np.ndarray, factor: float, sample_rate: int = 16000) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (tempo and pitch together, as a tape would): resampling."""
    import soxr

    if factor <= 0:
        raise ValueError("change_speed: factor must be > 0")
    return soxr.resample(np.asarray(x, np.float32), sample_rate * factor, sample_rate).astype(np.float32)


def time_shift(x: np.ndarray, shift_s: float, sample_rate: int, length: int | None = None) -> np.ndarray:
    """``x`` placed ``shift_s`` later (negative: earlier) inside a zero window of ``length``
    samples (default: len(x)); the part that falls outside is cut.
    """
    x = np.asarray(x, np.float32)
    n = len(x) if length is None else int(length)
    out = np.zeros(n, np.float32)
    start = (n - len(x)) // 2 + int(round(shift_s * sample_rate))
    a, b = max(0, start), min(n, start + len(x))
    if b > a:
        out[a:b] = x[a - start : b - start]
    return out


def continuous_stream(clips: list, sample_rate: int, rng: np.random.Generator, *,
                      gap_s: tuple = (0.6, 1.4), lead_s: float = 1.0, snr_db: float | None = 20.0,
                      noise: str = "pink", babble: list | None = None, equal_levels: bool = False):
    """Utterances separated by silence, over continuous background noise, as a microphone
    hears them.

    Returns ``(stream float32, spans)`` with ``spans[i] = (start, end)`` sample indices of
    ``clips[i]`` in the stream. ``snr_db`` is relative to the mean speech level of the clips;
    ``None`` adds no noise. ``equal_levels``: every clip is first scaled to that mean level
    (speakers equally loud at the microphone), so every utterance is at ``snr_db``; otherwise
    the clips keep their recorded levels and quiet ones are below ``snr_db`` (the FSDD
    recordings' speech levels spread over about 28 dB, 5th to 95th percentile).
    """
    def level(c):
        return _rms(c[np.abs(c) > 0.05 * np.max(np.abs(c))]) if np.any(c) else 0.0

    clips = [np.asarray(c, np.float32) for c in clips]
    levels = [level(c) for c in clips]
    if equal_levels and clips:
        mean = float(np.mean(levels))
        clips = [c * np.float32(mean / lv) if lv > 0 else c for c, lv in zip(clips, levels)]
        clips = [np.clip(c, -1.0, 1.0) for c in clips]
        levels = [level(c) for c in clips]
    parts, spans, pos = [np.zeros(int(lead_s * sample_rate), np.float32)], [], int(lead_s * sample_rate)
    for c in clips:
        spans.append((pos, pos + len(c)))
        parts.append(c)
        pos += len(c)
        gap = np.zeros(int(rng.uniform(*gap_s) * sample_rate), np.float32)
        parts.append(gap)
        pos += len(gap)
    stream = np.concatenate(parts)
    if snr_db is not None:
        level = float(np.mean(levels)) if levels else 0.0
        stream = stream + noise_like(len(stream), noise, rng, babble, sample_rate) * level * 10.0 ** (-snr_db / 20.0)
    return stream.astype(np.float32), spans
