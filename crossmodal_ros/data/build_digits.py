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
  official split: index 0-4 test, 5-49 train.

Each sample: the pen trajectory (all strokes in order, arc-length resampled to 100 points and
normalised by :class:`~crossmodal_ros.codecs.TrajectoryCodec`), a 28x28 image rendered from
the strokes (anti-aliased, MNIST-like: digit in a ~20x20 box, centred by centre of mass,
bright on dark, upright; pen-up gaps are not drawn), a real FSDD recording of the same digit
from the matching split (paired at random, seeded: per digit, a seeded permutation of the
recordings is cycled, so every recording is used about equally often), and the label.

Splits: ``test`` = the pendigits test file with FSDD test recordings; ``val`` = 3 of the 30
training writers (seeded choice), ``train`` = the other 27, both with FSDD training recordings.

Committed files (``--out``):

* ``samples.npz``: per split ``<split>_trajectory`` int16 (N,200) (12-bit, differences: see
  :func:`crossmodal_ros.data.digits.quantise_trajectory`),
  ``<split>_image`` uint8 (N,28,28), ``<split>_label`` uint8, ``<split>_writer`` int16,
  ``<split>_recording`` int16 (index into the recordings);
* ``recordings.flac``: every used recording once, int16 8 kHz, concatenated;
  ``recordings.npz``: ``offset`` int64 (K+1,) and ``name`` (K,) file stems;
* ``manifest.json``: counts, seed, sources, licences, byte sizes.

Recordings longer than the audio codec's 1 s window (20 of 3,000) are cut to their loudest
1 s - the part the codec would analyse anyway - to keep the loaded arrays small.
All files are byte-for-byte deterministic given the seed.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
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

_SEGMENT = re.compile(r'^\.SEGMENT\s+DIGIT\s+\S+\s+\?\s+"(\d)"')
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


class BuildError(RuntimeError):
    """The raw data is missing or not in the expected format."""


@dataclass
class PenDigit:
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


def build(raw: Path, out: Path, seed: int = 0, limit: int | None = None, log=print) -> dict:
    """Build the dataset files into ``out``; return the manifest."""
    t0 = time.perf_counter()
    raw = Path(raw)
    pen_dir, fsdd_dir = raw / "pendigits", raw / "fsdd" / "recordings"
    for p in (pen_dir / "pendigits-orig-tra.txt", pen_dir / "pendigits-orig-tes.txt", fsdd_dir):
        if not p.exists():
            raise BuildError(f"missing raw data: {p} (see ../shared/data/README.md)")
    train_file = parse_unipen(pen_dir / "pendigits-orig-tra.txt", 0)
    test_file = parse_unipen(pen_dir / "pendigits-orig-tes.txt", TEST_WRITER_OFFSET)

    ss = np.random.SeedSequence(seed)
    rng_val, rng_pair = (np.random.default_rng(s) for s in ss.spawn(2))
    train_writers = sorted({d.writer for d in train_file})
    val_writers = sorted(int(w) for w in rng_val.choice(train_writers, N_VAL_WRITERS, replace=False))
    split_digits = {
        "train": [d for d in train_file if d.writer not in val_writers],
        "val": [d for d in train_file if d.writer in val_writers],
        "test": test_file,
    }
    if limit is not None:
        split_digits = {k: v[:limit] for k, v in split_digits.items()}

    recs = fsdd_index(fsdd_dir)
    fsdd_split = {"train": "train", "val": "train", "test": "test"}
    pools = {
        part: {d: [i for i, r in enumerate(recs) if r[1] == d and ((r[3] < 5) == (part == "test"))] for d in range(10)}
        for part in ("train", "test")
    }

    codec = TrajectoryCodec()
    arrays: dict[str, np.ndarray] = {}
    paired: dict[str, np.ndarray] = {}
    for split in SPLITS:
        digs = split_digits[split]
        labels = np.array([d.label for d in digs], np.int64)
        traj = np.stack([codec.encode([s.astype(np.float64) for s in d.strokes]) for d in digs])
        imgs = np.stack([render_strokes(d.strokes) for d in digs])
        paired[split] = _pair(labels, pools[fsdd_split[split]], rng_pair)
        arrays[f"{split}_trajectory"] = quantise_trajectory(traj)
        arrays[f"{split}_image"] = imgs.astype(np.uint8)
        arrays[f"{split}_label"] = labels.astype(np.uint8)
        arrays[f"{split}_writer"] = np.array([d.writer for d in digs], np.int16)

    used = sorted(set(np.concatenate(list(paired.values())).tolist()))
    remap = {r: k for k, r in enumerate(used)}
    for split in SPLITS:
        arrays[f"{split}_recording"] = np.array([remap[r] for r in paired[split]], np.int16)
    import soundfile as sf

    clips = [read_clip(fsdd_dir / f"{recs[r][0]}.wav") for r in used]
    full_lengths = [sf.info(str(fsdd_dir / f"{recs[r][0]}.wav")).frames for r in used]
    cropped = int(sum(n > MAX_CLIP for n in full_lengths))
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_npz(out / "samples.npz", arrays)
    write_npz(out / "recordings.npz", {"offset": offsets, "name": np.array([recs[r][0] for r in used])})
    flac = io.BytesIO()
    sf.write(flac, np.concatenate(clips), FSDD_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
    _atomic_write(out / "recordings.flac", flac.getvalue())

    files = ("samples.npz", "recordings.npz", "recordings.flac")
    sizes = {f: (out / f).stat().st_size for f in files}
    manifest = {
        "name": "digits",
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "limit": limit,
        "counts": {s: int(len(split_digits[s])) for s in SPLITS},
        "class_counts": {s: np.bincount(arrays[f"{s}_label"], minlength=10).tolist() for s in SPLITS},
        "writers": {s: sorted({int(w) for w in arrays[f"{s}_writer"]}) for s in SPLITS},
        "val_writers": val_writers,
        "recordings": {"count": len(used), "sample_rate": FSDD_RATE, "cropped_to_1s": cropped},
        "fsdd_split": {"train": "index 5-49 (train, val)", "test": "index 0-4 (test)"},
        "image": {"size": 28, "box": 20, "thickness_px": 2.3, "rendered_from": "pen strokes"},
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
        },
        "licence": "CC BY-SA 4.0 (derived from CC BY-SA 4.0 FSDD and CC BY 4.0 pendigits); see NOTICE",
        "bytes": sizes,
        "total_bytes": int(sum(sizes.values())),
    }
    _atomic_write(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    manifest["build_seconds"] = round(time.perf_counter() - t0, 2)  # not written: keeps bytes stable
    log(
        f"digits: {manifest['counts']} samples, {len(used)} recordings ({cropped} cut to 1 s), "
        f"{manifest['total_bytes'] / 1e6:.2f} MB in {manifest['build_seconds']} s -> {out}"
    )
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", type=Path, default=Path("../shared/data"), help="folder with pendigits/ and fsdd/")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "digits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="at most this many samples per split (quick builds)")
    args = ap.parse_args(argv)
    try:
        build(args.raw, args.out, seed=args.seed, limit=args.limit)
    except BuildError as exc:
        print(f"build_digits: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
