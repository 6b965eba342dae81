# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Seeded training augmentation per modality (ROS-free): what real sensors deliver.

Configured by the ``augment:`` section of a training YAML (:data:`AUGMENT_DEFAULTS`); off unless
``enabled: true``, and never applied in validation or evaluation.

How it runs. Audio features (resampling, STFT) are the costly part of a batch on a CPU, so
augmentation is done once per run into a *bank*: for every training sample (images,
trajectories) and every distinct training recording (audio), ``variants`` augmented copies are
made with a generator seeded from ``seed`` and the sample index, and cached on disk (keyed by a
hash of the data, the codecs and this config). Every epoch, :meth:`AugmentBank.draw` picks for
every sample and modality either the clean tensor (probability ``p_clean``) or one of its
variants, with the trainer's seeded generator. A run therefore sees ``variants + 1`` versions
of each input, freshly combined across modalities every epoch; given the seed, everything is
deterministic.

What a variant is:

* image: with probability ``frame_p`` the digit is drawn into a camera frame
  (:func:`crossmodal_ros.sim.render_frame`: polarity, scale, position, lighting, perspective,
  blur, noise) and read back through the image codec - exactly the robot's path; otherwise a
  random affine (rotation, shear, aspect), stroke thickness change, blur and noise on the
  28x28 image, re-normalised by the codec.
* audio (``audiomentations`` where it has the transform; ``pyroomacoustics`` rooms): speed
  (tape-like resampling), pitch shift, gain, time shift inside a longer buffer, room
  reverberation, white / pink / babble noise at a random SNR (babble from other training
  recordings), a random microphone sample rate; then the audio codec.
* trajectory: rotation, aspect change, point jitter, a resampled point count and (rarely) a
  reversed point order; then the trajectory codec.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import sys
import time

import numpy as np

__all__ = ["AUGMENT_DEFAULTS", "AugmentError", "resolve_augment", "AugmentBank", "build_bank"]

AUGMENT_DEFAULTS: dict = {
    "enabled": False,
    "seed": 0,
    "variants": 6,          # augmented copies per sample / recording
    "p_clean": 0.2,         # chance per epoch, sample and modality of the clean input
    "clean_targets": True,  # reconstruct the clean original of an augmented input (denoising)
    "image": {
        "frame_p": 0.6,               # share of variants made through a rendered camera frame
        "frame_height": [96, 360],    # frame heights drawn (width 4:3)
        "rotate_deg": 12.0,
        "shear": 0.2,
        "aspect": [0.8, 1.2],
        "thickness": [-1, 2],         # dilate (>0) / erode (<0) steps at 2x resolution
        "blur_sigma": [0.0, 0.8],
        "noise_std": [0.0, 0.05],
    },
    "audio": {
        "speed": [0.85, 1.15],
        "pitch_semitones": 2.0,
        "pitch_p": 0.3,
        "gain_db": [-18.0, 6.0],
        "shift_s": 0.15,
        "buffer_pad_s": [0.1, 0.9],   # silence (then noise) around the utterance, seconds
        "reverb_p": 0.3,
        "rt60": [0.15, 0.7],
        "rooms": 32,                  # distinct simulated room impulse responses
        "noise_p": 0.85,
        "snr_db": [0.0, 30.0],
        "noise_kinds": ["white", "pink", "babble"],
        "rates": [8000, 16000, 44100],
    },
    "trajectory": {
        "rotate_deg": 20.0,
        "aspect": [0.8, 1.25],
        "jitter": 0.015,              # std of point noise, fraction of the digit size
        "points": [30, 300],          # resampled point count before the codec
        "reverse_p": 0.05,
    },
}


class AugmentError(ValueError):
    """A bad ``augment:`` config."""


def resolve_augment(raw) -> dict:
    """``augment:`` section merged over :data:`AUGMENT_DEFAULTS`; unknown keys raise."""
    cfg = copy.deepcopy(AUGMENT_DEFAULTS)
    if raw is None:
        return cfg
    if not isinstance(raw, dict):
        raise AugmentError(f"augment: expected a mapping, got {type(raw).__name__}")
    for k, v in raw.items():
        if k not in cfg:
            raise AugmentError(f"augment: unknown key {k!r}; known: {sorted(cfg)}")
        if isinstance(cfg[k], dict):
            if not isinstance(v, dict):
                raise AugmentError(f"augment.{k}: expected a mapping")
            unknown = sorted(set(v) - set(cfg[k]))
            if unknown:
                raise AugmentError(f"augment.{k}: unknown keys {unknown}; known: {sorted(cfg[k])}")
            cfg[k].update(v)
        else:
            cfg[k] = v
    if int(cfg["variants"]) < 1:
        raise AugmentError("augment.variants must be >= 1")
    if not 0.0 <= float(cfg["p_clean"]) <= 1.0:
        raise AugmentError("augment.p_clean must be in [0, 1]")
    return cfg


def _u(rng, r):
    return float(rng.uniform(float(r[0]), float(r[1])))


# --------------------------------------------------------------------------- image
def augment_image(img: np.ndarray, rng: np.random.Generator, cfg: dict, codec) -> np.ndarray:
    """One augmented variant of a (28,28) float image in [0,1] -> (1,28,28) through ``codec``."""
    import cv2

    from .codecs import CodecError
    from .sim import FrameSpec, render_frame

    c = cfg["image"]
    if rng.random() < float(c["frame_p"]):
        fh = int(rng.integers(int(c["frame_height"][0]), int(c["frame_height"][1]) + 1))
        spec = FrameSpec(height=fh, width=int(round(fh * 4 / 3)))
        try:
            return codec.encode(render_frame(img, rng, spec))
        except (CodecError, ValueError):
            return img[None].astype(np.float32)
    big = cv2.resize(img.astype(np.float32), (56, 56), interpolation=cv2.INTER_LINEAR)
    t = int(rng.integers(int(c["thickness"][0]), int(c["thickness"][1]) + 1))
    if t:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        big = cv2.dilate(big, k, iterations=t) if t > 0 else cv2.erode(big, k, iterations=-t)
    ang = np.deg2rad(rng.uniform(-c["rotate_deg"], c["rotate_deg"]))
    sh = rng.uniform(-c["shear"], c["shear"])
    asp = _u(rng, c["aspect"])
    a = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]]) @ np.array([[asp, sh], [0, 1.0]])
    centre = np.array([28.0, 28.0])
    m = np.hstack([a, (centre - a @ centre)[:, None]]).astype(np.float32)
    big = cv2.warpAffine(big, m, (56, 56), flags=cv2.INTER_LINEAR, borderValue=0.0)
    s = _u(rng, c["blur_sigma"])
    if s > 0.05:
        big = cv2.GaussianBlur(big, (0, 0), 2 * s)
    big = np.clip(big + rng.normal(0, _u(rng, c["noise_std"]), big.shape).astype(np.float32), 0, 1)
    try:
        return codec.encode(np.round(big * 255).astype(np.uint8))
    except CodecError:
        return img[None].astype(np.float32)


# --------------------------------------------------------------------------- trajectory
def augment_trajectory(v: np.ndarray, rng: np.random.Generator, cfg: dict, codec) -> np.ndarray:
    """One augmented variant of a (200,) trajectory vector -> (200,) through ``codec``."""
    from .codecs import resample_arc_length

    c = cfg["trajectory"]
    n = len(v) // 2
    p = np.stack([v[:n], v[n:]], 1).astype(np.float64)
    p -= p.mean(0)
    ang = np.deg2rad(rng.uniform(-c["rotate_deg"], c["rotate_deg"]))
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    asp = _u(rng, c["aspect"])
    p = p @ rot.T * np.array([asp, 1.0])
    k = int(rng.integers(int(c["points"][0]), int(c["points"][1]) + 1))
    p = resample_arc_length(p, k)
    size = float(np.ptp(p, axis=0).max()) or 1.0
    p = p + rng.normal(0, float(c["jitter"]) * size, p.shape)
    if rng.random() < float(c["reverse_p"]):
        p = p[::-1]
    return codec.encode(p)


# --------------------------------------------------------------------------- audio
class _AudioAugmenter:
    def __init__(self, cfg: dict, sample_rate: int, babble: list, rng: np.random.Generator):
        from audiomentations import Gain, PitchShift

        from .sim import room_impulse_response

        self.c = cfg["audio"]
        self.sr = sample_rate
        self.babble = babble
        self.gain = Gain(min_gain_db=float(self.c["gain_db"][0]), max_gain_db=float(self.c["gain_db"][1]), p=1.0)
        self.pitch = PitchShift(min_semitones=-float(self.c["pitch_semitones"]),
                                max_semitones=float(self.c["pitch_semitones"]), p=1.0)
        self.rirs = [room_impulse_response(rng, sample_rate, tuple(self.c["rt60"]))
                     for _ in range(int(self.c["rooms"])) if float(self.c["reverb_p"]) > 0]

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        from .sim import add_noise, change_speed, reverberate, time_shift

        c, sr = self.c, self.sr
        # audiomentations draws from the global `random` / `np.random`: seed them from rng
        random.seed(int(rng.integers(2**31)))
        np.random.seed(int(rng.integers(2**31)))
        y = change_speed(x, _u(rng, c["speed"]), sr)
        if rng.random() < float(c["pitch_p"]):
            y = self.pitch(samples=y, sample_rate=sr)
        # the buffer around the utterance: sometimes shorter than the codec window (a segmenter's
        # cut, zero padded by the codec), sometimes longer (noise under the whole window)
        pad = rng.uniform(float(c["buffer_pad_s"][0]), float(c["buffer_pad_s"][1]))
        y = time_shift(y, rng.uniform(-c["shift_s"], c["shift_s"]), sr, length=len(y) + int(pad * sr))
        if self.rirs and rng.random() < float(c["reverb_p"]):
            y = reverberate(y, self.rirs[int(rng.integers(len(self.rirs)))])
        if rng.random() < float(c["noise_p"]):
            kind = str(c["noise_kinds"][int(rng.integers(len(c["noise_kinds"])))])
            y = add_noise(y, _u(rng, c["snr_db"]), kind, rng, self.babble, sr)
        y = self.gain(samples=y.astype(np.float32), sample_rate=sr)
        y = np.clip(y, -1.0, 1.0)  # a microphone clips
        rate = int(c["rates"][int(rng.integers(len(c["rates"])))])
        if rate != sr:
            import soxr

            y = soxr.resample(y, sr, rate)
        return y.astype(np.float32), rate


# --------------------------------------------------------------------------- bank
class AugmentBank:
    """Augmented variants of a training set, and the per-epoch draw (see the module docstring).

    ``image`` (N,V,1,28,28), ``trajectory`` (N,V,200) float16 per sample; ``audio`` (K,V,1,128,32)
    float16 per distinct recording with ``audio_index`` (N,) mapping samples to recordings.
    """

    def __init__(self, arrays: dict, p_clean: float, clean_targets: bool = False):
        self.arrays = arrays
        self.p_clean = float(p_clean)
        self.clean_targets = bool(clean_targets)

    def draw(self, tensors: dict, generator, index_key: str = "aug_index") -> dict:
        """A copy of ``tensors`` with each sample's inputs replaced by a random variant (or kept
        clean with probability ``p_clean``), drawn with the torch ``generator``.
        """
        import torch

        idx = tensors[index_key]
        n = idx.shape[0]
        out = dict(tensors)
        for m in ("image", "trajectory", "audio"):
            bank = self.arrays.get(m)
            if bank is None or m not in tensors:
                continue
            rows = idx if m != "audio" else self.arrays["audio_index"][idx]
            v = bank.shape[1]
            pick = torch.randint(0, v, (n,), generator=generator)
            clean = torch.rand(n, generator=generator) < self.p_clean
            aug = bank[rows, pick].to(tensors[m].dtype)
            out[m] = torch.where(clean.view(-1, *([1] * (aug.dim() - 1))), tensors[m], aug)
            if self.clean_targets:
                out[f"clean:{m}"] = tensors[m]
        return out


#: Dataset arrays each modality's variants are made from (part of its cache key).
_SOURCES = {"image": ("image",), "trajectory": ("trajectory",), "audio": ("audio", "audio_length", "recording")}


def _cache_key(ds: dict, codecs: dict, cfg: dict, modality: str) -> str:
    """Hash of what one modality's variants depend on: the seed, the variant count, that
    modality's options and codec, and its source arrays (so changing the audio options never
    rebuilds the image variants).
    """
    from .codecs import codecs_to_dict

    h = hashlib.sha256()
    content = {"seed": cfg["seed"], "variants": cfg["variants"], "options": cfg[modality],
               "codec": codecs_to_dict({modality: codecs[modality]}), "modality": modality, "v": 2}
    h.update(json.dumps(content, sort_keys=True).encode())
    for k in _SOURCES[modality]:
        if k in ds:
            h.update(hashlib.sha256(np.ascontiguousarray(ds[k]).tobytes()).digest())
    return h.hexdigest()[:24]


def _load_cached(path: str):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        return None


def _save_cached(path: str, arrays: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def build_bank(ds: dict, codecs: dict, cfg: dict, cache: bool = True, log=None):
    """Build (or load from the cache) the :class:`AugmentBank` of dataset dict ``ds``.

    Returns ``(bank, sample_index)``: ``sample_index`` (N,) int64 numbers the samples of ``ds``
    (the trainer carries it through its splits as ``aug_index``). Each modality's variants are
    cached in a file of their own under :func:`crossmodal_ros.paths.cache_dir`.
    """
    import torch

    log = log or (lambda s: print(s, file=sys.stderr))
    n = len(ds["label"])
    arrays: dict = {}
    builders = {"image": _image_bank, "trajectory": _trajectory_bank, "audio": _audio_bank}
    for m, build in builders.items():
        if m not in ds or m not in codecs:
            continue
        path = None
        if cache:
            from .paths import cache_dir

            path = os.path.join(cache_dir(), f"augment_{m}_{_cache_key(ds, codecs, cfg, m)}.npz")
            got = _load_cached(path) if os.path.isfile(path) else None
            if got is not None:
                log(f"augment: loaded the {m} variants from {path}")
                arrays.update(got)
                continue
        t0 = time.time()
        got = build(ds, codecs[m], cfg, log)
        log(f"augment: {m} variants ({cfg['variants']} per input) built in {time.time() - t0:.0f} s")
        if path is not None:
            _save_cached(path, got)
        arrays.update(got)
    bank = AugmentBank({k: torch.from_numpy(a) for k, a in arrays.items()}, cfg["p_clean"], cfg["clean_targets"])
    return bank, np.arange(n, dtype=np.int64)


def _image_bank(ds: dict, codec, cfg: dict, log) -> dict:
    n, v, t0 = len(ds["label"]), int(cfg["variants"]), time.time()
    out = np.empty((n, v, 1, 28, 28), np.float16)
    for i in range(n):
        rng = np.random.default_rng([int(cfg["seed"]), 1, i])
        for j in range(v):
            out[i, j] = augment_image(ds["image"][i, 0], rng, cfg, codec)
        if i % 2000 == 0:
            log(f"augment: images {i}/{n} ({time.time() - t0:.0f} s)")
    return {"image": out}


def _trajectory_bank(ds: dict, codec, cfg: dict, log) -> dict:
    n, v = len(ds["label"]), int(cfg["variants"])
    out = np.empty((n, v, ds["trajectory"].shape[1]), np.float16)
    for i in range(n):
        rng = np.random.default_rng([int(cfg["seed"]), 2, i])
        for j in range(v):
            out[i, j] = augment_trajectory(ds["trajectory"][i], rng, cfg, codec)
    return {"trajectory": out}


def _audio_bank(ds: dict, codec, cfg: dict, log) -> dict:
    import soxr

    from .data.features import _distinct_clips

    v, t0 = int(cfg["variants"]), time.time()
    clips, lengths, index = _distinct_clips(ds)
    sr = int(ds["sample_rate"])
    work_sr = int(codec.sample_rate)
    waves = [soxr.resample(clips[k, : lengths[k]].astype(np.float32), sr, work_sr) for k in range(len(clips))]
    # babble: other training recordings (the clip itself is 1 of ~3,000 candidates)
    aug = _AudioAugmenter(cfg, work_sr, waves, np.random.default_rng([int(cfg["seed"]), 4]))
    out = np.empty((len(waves), v, 1, codec.n_mels, codec.n_frames), np.float16)
    for k in range(len(waves)):
        rng = np.random.default_rng([int(cfg["seed"]), 3, k])
        for j in range(v):
            y, rate = aug(waves[k], rng)
            out[k, j] = codec.encode(y, rate)
        if k % 500 == 0:
            log(f"augment: recordings {k}/{len(waves)} ({time.time() - t0:.0f} s)")
    return {"audio": out, "audio_index": index.astype(np.int64)}
