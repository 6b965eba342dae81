# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Robustness suite: how the model copes with inputs as real sensors deliver them.

``crossmodal-eval --robustness`` (this module's :func:`main`) measures, per *row* (one input
modality under one seeded transformation of held-out data):

* ``n``: the number of evaluated inputs (test-split samples, distinct recordings, utterances);
* the label accuracy when that modality is given ALONE (argmax of the model's label output) and
  its 95 % Wilson confidence interval; inputs a codec refuses (e.g. a camera frame in which the
  image codec finds no digit) count as wrong and are reported as ``dropped``;
* the shipped instruments' accuracy on the OTHER modalities the model generates from that input
  (e.g. image -> generated audio, judged by the sound classifier against the true label).

Rows (sources: the ``test`` split of the digits dataset unless a row says otherwise):

* camera: test images rendered into 640x480 camera frames with :func:`crossmodal_ros.sim.render_frame`
  (digit height 25-40 / 40-60 / 60-90 % of the frame, dark-on-light and light-on-dark, and all
  conditions mixed), the 28x28 image as shipped, and the held-out MNIST digits
  (``load_eval_set("mnist_test")``) as shipped and in frames;
* microphone: distinct test recordings, clean and time-shifted inside a 1.5 s buffer, with gain,
  speed, white / pink / babble noise (babble made of TRAINING-split recordings), room
  reverberation, different source rates, the held-out espeak-ng voices, held-out FSDD speakers
  (when the checkpoint's training config excluded some), and the live path: continuous streams
  through the voice segmenter into the model;
* pen: test trajectories rotated, scaled, resampled, jittered and reversed, re-encoded through
  the checkpoint's TrajectoryCodec.

Every raw input is preprocessed by the codecs stored in the checkpoint (through
:class:`~crossmodal_ros.engine.FusionEngine`); model calls are batched. Every transformation is
drawn from a generator seeded by ``(seed, row id)``: the same seed gives the same numbers, and a
row's numbers do not depend on which other rows run.

Outputs (``--out``; default ``docs/results/robustness/`` of the source checkout, the shipped
model's report, only for the shipped checkpoint on the test split with every other option at its
default, else ``runs/robustness_<checkpoint>_<path hash>_<split>/``, so that a partial run, a
validation run or another model never overwrites that report): ``results.json``, ``README.md`` (a
table per modality, generated from the numbers), ``snr.png``, ``shift.png``, ``scale.png`` and
``camera_examples.png``.

Runtime (measured on one CPU core of the development machine, shared with other work): 86 s with
``--limit 300``; the default ``--limit 1000`` (rows with fewer inputs use all of them: the test
split has 300 distinct recordings) takes a few minutes, well under the 15-minute budget. The
README written next to the results states the runtime of the run that wrote it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, TRAJECTORY

DEFAULT_LIMIT = 1000
DEFAULT_OUT = Path("docs") / "results" / "robustness"
GROUPS = ("camera", "microphone", "pen")
GROUP_MODALITY = {"camera": IMAGE, "microphone": AUDIO, "pen": TRAJECTORY}
BATCH = 256
BUFFER_S = 1.5          # the window a segmenter delivers around an utterance
STREAM_UTTERANCES = 10  # utterances per simulated continuous stream
VADS = ("silero", "energy")  # the microphone node's detectors (silero is its default)
RIR_POOL = 16           # room impulse responses drawn per reverberation row

SHIFTS_MS = (-150, -100, -50, 50, 100, 150)
SNRS_DB = (30, 20, 10, 5, 0)
NOISES = ("white", "pink", "babble")
SCALES = (("25-40", (0.25, 0.40)), ("40-60", (0.40, 0.60)), ("60-90", (0.60, 0.90)))
POLARITIES = ("dark_on_light", "light_on_dark")


class RobustnessError(RuntimeError):
    """The suite cannot run (no data, bad row selection, ...)."""


# --------------------------------------------------------------------------- statistics
def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float | None, float | None]:
    """95 % Wilson score interval of ``k`` successes in ``n`` trials (None, None for n = 0)."""
    if n <= 0:
        return None, None
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return lo, hi


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def _pick(n_total: int, limit: int | None, seed: int, key: str) -> np.ndarray:
    """A seeded subset of ``limit`` indices (all when limit is 0/None or >= n_total), sorted."""
    if not limit or limit >= n_total:
        return np.arange(n_total)
    return np.sort(_rng(seed, "pick/" + key).permutation(n_total)[:limit])


# --------------------------------------------------------------------------- context
class Suite:
    """Holds the engine, instruments, data and settings of one run."""

    def __init__(self, engine, instruments, *, limit: int = DEFAULT_LIMIT, seed: int = 0, data_root=None,
                 progress=None, meta: dict | None = None, vad: str = "energy", split: str = "test"):
        self.engine = engine
        self.instruments = instruments
        self.codecs = engine.codecs
        self.limit = int(limit or 0)
        self.seed = int(seed)
        self.data_root = data_root
        self.progress = progress or (lambda s: None)
        self.meta = meta if meta is not None else getattr(engine, "meta", {}) or {}
        self.vad = vad
        if split not in ("test", "val"):
            raise RobustnessError(f"split must be 'test' or 'val' (model selection), got {split!r}")
        self.split = split
        self._cache: dict = {}
        self.examples: list = []  # (row name, frame, codec output or None)
        self.notes: list[str] = []

    # ------------------------------------------------------------------ data
    def test_split(self) -> dict:
        """The evaluated split: ``test`` (reports) or ``val`` (model selection; other writers
        and recordings than training, never the test data).
        """
        if "split" not in self._cache:
            from crossmodal_ros.data import digits

            ds = digits.load_digits(self.split, self.data_root)
            if self.split == "val" and "source" in ds:  # pen-rendered samples, as in the test split
                keep = np.flatnonzero(np.asarray(ds["source"]) == 0)
                ds = {k: (np.asarray(v)[keep] if isinstance(v, np.ndarray) and len(v) == len(ds["label"]) else v)
                      for k, v in ds.items()}
            self._cache["split"] = ds
        return self._cache["split"]

    def eval_set(self, name: str):
        """``load_eval_set(name)`` or ``(None, reason)`` when it is not available."""
        key = "eval/" + name
        if key not in self._cache:
            from crossmodal_ros.data import digits

            if not hasattr(digits, "load_eval_set"):
                self._cache[key] = (None, "this dataset version has no load_eval_set")
            else:
                try:
                    self._cache[key] = (digits.load_eval_set(name, self.data_root), "")
                except Exception as exc:  # noqa: BLE001 - DatasetError and missing keys alike
                    self._cache[key] = (None, f"eval set {name!r} unavailable: {str(exc).splitlines()[0]}")
        return self._cache[key]

    def recordings(self) -> dict:
        """Distinct test-split recordings: clips (float32 list), labels, speakers, files, rate."""
        if "recs" not in self._cache:
            ds = self.test_split()
            rec = np.asarray(ds["recording"])
            _, first = np.unique(rec, return_index=True)
            first = np.sort(first)
            lens = np.asarray(ds["audio_length"])
            self._cache["recs"] = {
                "clips": [np.asarray(ds["audio"][i, : lens[i]], np.float32) for i in first],
                "label": np.asarray(ds["label"])[first],
                "speaker": np.asarray(ds["speaker"])[first],
                "file": np.asarray(ds["audio_file"])[first],
                "rate": int(ds["sample_rate"]),
                "n_samples": len(rec),
            }
        return self._cache["recs"]

    def speaker_recordings(self, speaker: str) -> dict:
        """Every stored recording (any split) of ``speaker``: clips and labels from the file stems."""
        key = f"spk/{speaker}"
        if key not in self._cache:
            from crossmodal_ros.data import digits

            clips, names, sr = digits.load_recordings(self.data_root)
            if sr != self.recordings()["rate"]:
                raise RobustnessError("recordings and test split disagree on the sample rate")
            keep = [k for k, n in enumerate(names) if n.split("_")[1:2] == [speaker]]
            self._cache[key] = {"clips": [clips[k].astype(np.float32) / 32768.0 for k in keep],
                                "label": np.array([int(names[k].split("_")[0]) for k in keep], np.int64)}
        return self._cache[key]

    def babble_pool(self, rate: int | None = None) -> list:
        """Up to 300 TRAINING-split recordings (never evaluated ones), optionally resampled."""
        key = f"babble/{rate}"
        if key not in self._cache:
            if "babble/None" not in self._cache:
                self._cache["babble/None"] = self._load_babble()
            pool = self._cache["babble/None"]
            if rate is not None and rate != self.recordings()["rate"]:
                import soxr

                pool = [soxr.resample(c, self.recordings()["rate"], rate).astype(np.float32) for c in pool]
            self._cache[key] = pool
        return self._cache[key]

    def _load_babble(self) -> list:
        from crossmodal_ros.data import digits

        test_files = set(self.recordings()["file"].tolist())
        r = digits.digits_root(self.data_root)
        with np.load(r / "samples.npz", allow_pickle=False) as npz:
            train_rec = np.unique(npz["train_recording"].astype(np.int64))
        clips, names, sr = digits.load_recordings(self.data_root)
        if sr != self.recordings()["rate"]:
            raise RobustnessError("recordings and test split disagree on the sample rate")
        cand = [k for k in train_rec if names[k] not in test_files]
        chosen = _rng(self.seed, "babble-pool").permutation(len(cand))[:300]
        return [clips[cand[i]].astype(np.float32) / 32768.0 for i in sorted(chosen)]

    def held_out_speakers(self) -> list[str]:
        """``exclude_speakers`` of the checkpoint's saved training config (empty when none)."""
        found: list = []
        train = self.meta.get("train") or {}
        cfgs = [train, (self.meta.get("config") or {}).get("train") or {}]
        raw = train.get("train_config_json") if isinstance(train, dict) else None
        if isinstance(raw, str):
            try:
                cfgs.append(json.loads(raw))
            except ValueError:
                pass
        for c in cfgs:
            if isinstance(c, dict):
                for s in c.get("exclude_speakers") or []:
                    if str(s) not in found:
                        found.append(str(s))
        return found

    # ------------------------------------------------------------------ judging
    def judge(self, modality: str, encoded: list, labels: np.ndarray) -> dict:
        """Run the model on ``encoded`` inputs (model tensors; None = dropped) given alone and score.

        Returns n, correct, accuracy, ci95, dropped, and ``cross`` {target: accuracy} of the
        instruments on the modalities generated from it (dropped inputs count as wrong).
        """
        import torch

        labels = np.asarray(labels, np.int64)
        n = len(labels)
        ok = np.array([e is not None for e in encoded], bool)
        pred = np.full(n, -1, np.int64)
        targets = [m for m in getattr(self.instruments, "modalities", ()) if m != modality]
        cross_pred = {t: np.full(n, -1, np.int64) for t in targets}
        idx = np.flatnonzero(ok)
        for b in range(0, len(idx), BATCH):
            sel = idx[b : b + BATCH]
            x = np.stack([encoded[i] for i in sel]).astype(np.float32)
            out = self.engine.infer_tensors({modality: x})
            pred[sel] = np.argmax(out[LABEL], axis=1)
            for t in targets:
                cross_pred[t][sel] = self.instruments.predict(t, torch.from_numpy(np.ascontiguousarray(out[t]))).numpy()
        correct = int(np.sum(pred == labels))
        lo, hi = wilson_interval(correct, n)
        return {
            "n": n,
            "correct": correct,
            "accuracy": correct / n if n else None,
            "ci95": [lo, hi],
            "dropped": int(n - ok.sum()),
            "cross": {t: (float(np.mean(cross_pred[t] == labels)) if n else None) for t in targets},
        }

    def encode(self, modality: str, raw, sample_rate: int | None = None):
        """The checkpoint codec's model tensor of one raw input, or None when the codec refuses it."""
        from crossmodal_ros.codecs import CodecError

        try:
            if modality == AUDIO:
                return self.codecs[AUDIO].encode(raw, sample_rate)
            return self.codecs[modality].encode(raw)
        except CodecError:
            return None


# --------------------------------------------------------------------------- row definitions
def _row(group, rid, name, measured_on, params=None, plot=None):
    return {"group": group, "id": f"{group}/{rid}", "name": name, "measured_on": measured_on,
            "params": params or {}, "plot": plot}


def row_specs(suite: Suite | None = None) -> list[dict]:
    """Every row of the suite (the held-out speaker rows only when ``suite`` names some)."""
    rows = [_row("camera", "as-shipped", "test image as shipped (28x28, no camera)",
                 "test-split images fed as model tensors (no codec)")]
    for pol in POLARITIES:
        for tag, frac in SCALES:
            rows.append(_row("camera", f"framed-{tag}-{pol}",
                             f"framed, digit {tag} % of height, {pol.replace('_', '-')}",
                             "test-split images rendered into 640x480 frames",
                             {"digit_frac": list(frac), "polarity": pol}, plot=("scale", pol, tag)))
    rows.append(_row("camera", "framed-all", "framed, all conditions",
                     "test-split images rendered into 640x480 frames (FrameSpec defaults)", {}))
    rows.append(_row("camera", "mnist-as-shipped", "MNIST held-out (image as shipped)",
                     "load_eval_set('mnist_test') images fed as model tensors (no codec)", {"eval_set": "mnist_test"}))
    rows.append(_row("camera", "mnist-framed", "MNIST held-out in frames",
                     "load_eval_set('mnist_test') rendered into 640x480 frames (FrameSpec defaults)",
                     {"eval_set": "mnist_test"}))

    rec = "distinct test-split recordings"
    rows.append(_row("microphone", "clean", "clean (8 kHz source as recorded)", rec, {}, plot=("shift", None, 0)))
    for ms in SHIFTS_MS:
        rows.append(_row("microphone", f"shift{ms:+d}ms", f"time shift {ms:+d} ms in a {BUFFER_S:g} s buffer", rec,
                         {"shift_ms": ms}, plot=("shift", None, ms)))
    for g in (0.1, 3.0):
        rows.append(_row("microphone", f"gain-x{g:g}", f"gain x{g:g}" + (" (clipped)" if g > 1 else ""), rec,
                         {"gain": g}))
    for f in (0.85, 1.15):
        rows.append(_row("microphone", f"speed-{f:g}", f"speed x{f:g}", rec, {"speed": f}))
    for kind in NOISES:
        for snr in SNRS_DB:
            note = " (training-split speech)" if kind == "babble" else ""
            rows.append(_row("microphone", f"{kind}-{snr}dB", f"{kind} noise{note} at {snr} dB SNR",
                             rec + f" in a {BUFFER_S:g} s buffer", {"noise": kind, "snr_db": snr},
                             plot=("snr", kind, snr)))
    rows.append(_row("microphone", "reverb", "room reverberation (RT60 0.2-0.8 s)",
                     rec + f" in a {BUFFER_S:g} s buffer",
                     {"rt60": [0.2, 0.8], "rir_pool": RIR_POOL}))
    for rate in (8000, 16000, 44100):
        name = f"source at {rate / 1000:g} kHz" + ("" if rate == 8000 else " (8 kHz clip resampled up: content "
                                                   "band-limited to 4 kHz)")
        rows.append(_row("microphone", f"rate-{rate}", name, rec, {"rate": rate}))
    rows.append(_row("microphone", "espeak", "espeak-ng held-out voices",
                     "load_eval_set('espeak_test') clips", {"eval_set": "espeak_test"}))
    for spk in (suite.held_out_speakers() if suite is not None else []):
        rows.append(_row("microphone", f"speaker-{spk}", f"held-out speaker {spk} (never heard in training)",
                         f"every stored recording of speaker {spk} (all splits; none was heard in training)",
                         {"speaker": spk}))
        rows.append(_row("microphone", f"speaker-{spk}-pink-20dB", f"held-out speaker {spk}, pink noise at 20 dB SNR",
                         f"every stored recording of speaker {spk} in a {BUFFER_S:g} s buffer",
                         {"speaker": spk, "noise": "pink", "snr_db": 20}))
    for vad in VADS:
        for bg, snr, equal in ((None, None, True), ("pink", 20, True), ("white", 20, True), ("babble", 20, True),
                               ("pink", 10, True), ("pink", 20, False)):
            tag = ("clean" if bg is None else f"{bg}-{snr}dB") + ("" if equal else "-as-recorded")
            rows.append(_row("microphone", f"live-{tag}-{vad}",
                             f"live ({vad} VAD): continuous stream, "
                             + ("no background" if bg is None else f"{bg} background at {snr} dB")
                             + ("" if equal else ", speech levels as recorded (SNR per utterance spread "
                                                 "around it)"),
                             f"distinct test-split recordings in continuous streams of {STREAM_UTTERANCES} utterances "
                             + ("at one speech level " if equal else "at their recorded levels ")
                             + f"through the {vad} voice segmenter (n = utterances)",
                             {"live": True, "noise": bg, "snr_db": snr, "vad": vad, "equal_levels": equal}))

    traj = "test-split pen trajectories (100 points reconstructed from the stored 200-vector, re-encoded)"
    rows.append(_row("pen", "as-stored", "trajectory as stored",
                     "test-split trajectories fed as model tensors (no codec)"))
    rows.append(_row("pen", "reencoded", "re-encoded (no change)", traj, {}))
    for deg in (-20, -10, 10, 20):
        rows.append(_row("pen", f"rot{deg:+d}", f"rotation {deg:+d} deg", traj, {"rotate_deg": deg}))
    for s in (0.5, 2.0):
        rows.append(_row("pen", f"scale-{s:g}", f"scale x{s:g}", traj, {"scale": s}))
    rows.append(_row("pen", "rate-half", "sampling rate halved", traj, {"resample": 0.5}))
    rows.append(_row("pen", "rate-double", "sampling rate doubled", traj, {"resample": 2.0}))
    for j in (0.01, 0.03):
        rows.append(_row("pen", f"jitter-{int(j * 100)}pct", f"jitter {int(j * 100)} % of digit size", traj,
                         {"jitter": j}))
    rows.append(_row("pen", "reversed", "reversed order (stroke order and direction; stroke bounds not stored)",
                     traj, {"reverse": True}))
    return rows


def select_rows(rows: list[dict], spec) -> list[dict]:
    """Rows named by ``spec``: a comma-separated string or list of groups (camera, microphone,
    pen), row ids (``microphone/clean``) or fnmatch patterns (``pen/rot*``).
    """
    from fnmatch import fnmatchcase

    if not spec:
        return list(rows)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    chosen = []
    for r in rows:
        if any(it == r["group"] or fnmatchcase(r["id"], it) for it in items):
            chosen.append(r)
    unknown = [it for it in items if not any(it == r["group"] or fnmatchcase(r["id"], it) for r in rows)]
    if unknown:
        raise RobustnessError(f"--rows: {unknown} match no row; groups are {list(GROUPS)}, ids e.g. "
                              f"{', '.join(r['id'] for r in rows[:3])}")
    return chosen


# --------------------------------------------------------------------------- camera
def _camera_row(suite: Suite, row: dict) -> dict:
    from crossmodal_ros import sim

    p = row["params"]
    rng = _rng(suite.seed, row["id"])
    if p.get("eval_set"):
        ds, why = suite.eval_set(p["eval_set"])
        if ds is None:
            return {"skipped": why}
        images, labels = ds["image"], np.asarray(ds["label"])
        idx = _pick(len(labels), suite.limit, suite.seed, "mnist")
    else:
        ds = suite.test_split()
        images, labels = ds["image"], np.asarray(ds["label"])
        idx = _pick(len(labels), suite.limit, suite.seed, "test-samples")
    if row["id"].endswith("as-shipped"):
        enc = [np.asarray(images[i], np.float32) for i in idx]
        return suite.judge(IMAGE, enc, labels[idx])
    spec = sim.FrameSpec(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in p.items() if k != "eval_set"})
    enc = []
    for j, i in enumerate(idx):
        try:
            frame = sim.render_frame(images[i], rng, spec)
        except ValueError:  # an image without ink cannot be framed: counts as a drop
            enc.append(None)
            continue
        e = suite.encode(IMAGE, frame)
        enc.append(e)
        if j < 2:
            suite.examples.append((row["name"], frame, e))
    return suite.judge(IMAGE, enc, labels[idx])


# --------------------------------------------------------------------------- microphone
def _buffer(clip: np.ndarray, rate: int) -> np.ndarray:
    from crossmodal_ros import sim

    return sim.time_shift(clip, 0.0, rate, length=max(int(BUFFER_S * rate), len(clip)))


def _audio_row(suite: Suite, row: dict) -> dict:
    import soxr

    from crossmodal_ros import sim

    p = row["params"]
    if p.get("live"):
        return _live_row(suite, row)
    rng = _rng(suite.seed, row["id"])
    if p.get("eval_set"):
        ds, why = suite.eval_set(p["eval_set"])
        if ds is None:
            return {"skipped": why}
        lens = np.asarray(ds["audio_length"])
        idx = _pick(len(lens), suite.limit, suite.seed, "espeak")
        clips = [np.asarray(ds["audio"][i, : lens[i]], np.float32) for i in idx]
        labels, rate = np.asarray(ds["label"])[idx], int(ds["sample_rate"])
    else:
        recs = suite.recordings()
        rate = recs["rate"]
        if "speaker" in p:
            spk = suite.speaker_recordings(p["speaker"])
            if not spk["clips"]:
                return {"skipped": f"no stored recording of speaker {p['speaker']!r}"}
            idx = _pick(len(spk["clips"]), suite.limit, suite.seed, "speaker")
            clips, labels = [spk["clips"][i] for i in idx], spk["label"][idx]
        else:
            idx = _pick(len(recs["clips"]), suite.limit, suite.seed, "test-recordings")
            clips, labels = [recs["clips"][i] for i in idx], recs["label"][idx]
    rirs = None
    if "rt60" in p:
        rirs = [sim.room_impulse_response(rng, rate, tuple(p["rt60"])) for _ in range(int(p["rir_pool"]))]
    babble = suite.babble_pool() if p.get("noise") == "babble" else None
    enc = []
    for c in clips:
        sr = rate
        if "shift_ms" in p:
            x = sim.time_shift(c, p["shift_ms"] / 1000.0, rate, length=max(int(BUFFER_S * rate), len(c)))
        elif "gain" in p:
            x = np.clip(c * p["gain"], -1.0, 1.0)
        elif "speed" in p:
            x = sim.change_speed(c, p["speed"], rate)
        elif "noise" in p:
            x = sim.add_noise(_buffer(c, rate), p["snr_db"], p["noise"], rng, babble=babble, sample_rate=rate,
                              reference=c)
        elif rirs is not None:
            x = sim.reverberate(_buffer(c, rate), rirs[int(rng.integers(len(rirs)))])
        elif "rate" in p and p["rate"] != rate:
            x, sr = soxr.resample(c, rate, p["rate"]).astype(np.float32), int(p["rate"])
        else:
            x = c
        enc.append(suite.encode(AUDIO, x, sr))
    return suite.judge(AUDIO, enc, labels)


def _segments(suite: Suite, stream: np.ndarray, rate: int, vad: str) -> list[tuple[int, int, np.ndarray]]:
    """The segmenter's utterances as ``(start, end, pcm)`` in samples of ``stream``."""
    from crossmodal_ros.sensors import segmenters

    if hasattr(segmenters, "segment_stream"):
        raw = segmenters.segment_stream(stream, rate, vad=vad)
        out = []
        for a, b, pcm in raw:
            n = len(pcm)
            # seconds or samples: whichever makes end - start match the pcm length
            if abs((b - a) * rate - n) <= abs((b - a) - n):
                a, b = a * rate, b * rate
            out.append((int(round(a)), int(round(b)), np.asarray(pcm, np.float32)))
        return out
    vad = segmenters.VoiceActivitySegmenter(rate)
    block = int(round(0.05 * rate))
    utts = []
    for k in range(0, len(stream), block):
        utts += vad.feed(stream[k : k + block])
    utts += vad.flush()
    return [(int(round(u.t_start * rate)), int(round(u.t_end * rate)), u.samples) for u in utts]


def match_segments(spans: list, segments: list) -> dict:
    """Assign segments to utterance spans. Returns ``assigned`` {utterance: segment index},
    ``missed``, ``merged`` (utterances sharing a segment with another one: wrong) and
    ``false_alarms`` (segments on no utterance, plus extra pieces of a split utterance).
    """
    def ov(a, b, c, d):
        return max(0, min(b, d) - max(a, c))

    hits = [[u for u, (s, e) in enumerate(spans) if ov(a, b, s, e) > 0] for a, b, _ in segments]
    merged = sorted({u for h in hits if len(h) > 1 for u in h})
    assigned, missed, extra = {}, [], 0
    for u, (s, e) in enumerate(spans):
        mine = [k for k, h in enumerate(hits) if h == [u]]
        if u in merged:
            extra += len(mine)
            continue
        if not mine:
            missed.append(u)
            continue
        best = max(mine, key=lambda k: ov(segments[k][0], segments[k][1], s, e))
        assigned[u] = best
        extra += len(mine) - 1
    false_alarms = sum(1 for h in hits if not h) + extra
    return {"assigned": assigned, "missed": missed, "merged": merged, "false_alarms": false_alarms}


def _live_row(suite: Suite, row: dict) -> dict:
    import soxr

    from crossmodal_ros import sim

    p = row["params"]
    rng = _rng(suite.seed, row["id"])
    recs = suite.recordings()
    rate = int(suite.codecs[AUDIO].sample_rate)  # a microphone node delivers the codec's rate
    idx = _pick(len(recs["clips"]), suite.limit, suite.seed, "test-recordings")
    idx = idx[_rng(suite.seed, "live-order").permutation(len(idx))]
    clips = [soxr.resample(recs["clips"][i], recs["rate"], rate).astype(np.float32) for i in idx]
    labels = recs["label"][idx]
    babble = suite.babble_pool(rate) if p.get("noise") == "babble" else None
    enc: list = [None] * len(clips)
    stats = {"segments": 0, "detected": 0, "missed": 0, "merged": 0, "false_alarms": 0, "streams": 0,
             "stream_seconds": 0.0}
    for s0 in range(0, len(clips), STREAM_UTTERANCES):
        group = clips[s0 : s0 + STREAM_UTTERANCES]
        stream, spans = sim.continuous_stream(group, rate, rng, snr_db=p.get("snr_db"),
                                              noise=p.get("noise") or "pink", babble=babble,
                                              equal_levels=bool(p.get("equal_levels", False)))
        segs = _segments(suite, stream, rate, p.get("vad") or suite.vad)
        m = match_segments(spans, segs)
        for u, k in m["assigned"].items():
            enc[s0 + u] = suite.encode(AUDIO, segs[k][2], rate)
        stats["segments"] += len(segs)
        stats["detected"] += len(m["assigned"])
        stats["missed"] += len(m["missed"])
        stats["merged"] += len(m["merged"])
        stats["false_alarms"] += m["false_alarms"]
        stats["streams"] += 1
        stats["stream_seconds"] += round(len(stream) / rate, 2)
    res = suite.judge(AUDIO, enc, labels)
    res["dropped"] = int(sum(e is None for e in enc)) - stats["missed"] - stats["merged"]  # codec refusals
    res["live"] = stats
    return res


# --------------------------------------------------------------------------- pen
def _points(vec: np.ndarray) -> np.ndarray:
    n = len(vec) // 2
    return np.stack([vec[:n], vec[n:]], axis=1).astype(np.float64)


def transform_points(pts: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """One pen transformation of an ordered (N,2) point sequence."""
    c = pts.mean(axis=0)
    if "rotate_deg" in p:
        a = math.radians(p["rotate_deg"])
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        return (pts - c) @ rot.T + c
    if "scale" in p:
        return (pts - c) * p["scale"] + c
    if "resample" in p:
        n = max(2, int(round(len(pts) * p["resample"])))
        t = np.linspace(0, len(pts) - 1, n)
        i = np.arange(len(pts))
        return np.stack([np.interp(t, i, pts[:, 0]), np.interp(t, i, pts[:, 1])], axis=1)
    if "jitter" in p:
        size = float(np.max(pts.max(0) - pts.min(0)))
        return pts + rng.normal(0.0, p["jitter"] * size, size=pts.shape)
    if p.get("reverse"):
        return pts[::-1].copy()
    return pts


def _pen_row(suite: Suite, row: dict) -> dict:
    ds = suite.test_split()
    traj, labels = ds["trajectory"], np.asarray(ds["label"])
    idx = _pick(len(labels), suite.limit, suite.seed, "test-samples")
    if row["id"].endswith("as-stored"):
        return suite.judge(TRAJECTORY, [np.asarray(traj[i], np.float32) for i in idx], labels[idx])
    rng = _rng(suite.seed, row["id"])
    enc = [suite.encode(TRAJECTORY, transform_points(_points(traj[i]), row["params"], rng)) for i in idx]
    return suite.judge(TRAJECTORY, enc, labels[idx])


RUNNERS = {"camera": _camera_row, "microphone": _audio_row, "pen": _pen_row}


# --------------------------------------------------------------------------- the suite
def run_suite(engine, instruments, *, rows=None, limit: int = DEFAULT_LIMIT, seed: int = 0, data_root=None,
              progress=None, meta: dict | None = None, checkpoint_info: dict | None = None,
              split: str = "test") -> tuple[dict, Suite]:
    """Run the selected rows -> (result dict, the Suite with example frames).

    ``split="val"`` runs the same transformations on the validation split (for choosing between
    training runs without looking at test data); the rows on the held-out evaluation sets and
    held-out speakers are skipped there.
    """
    suite = Suite(engine, instruments, limit=limit, seed=seed, data_root=data_root, progress=progress, meta=meta,
                  split=split)
    if checkpoint_info is None and suite.meta.get("path") and Path(suite.meta["path"]).is_file():
        checkpoint_info = checkpoint_identity(suite.meta["path"], suite.meta)
    specs = select_rows(row_specs(suite), rows)
    t_all = time.time()
    results = []
    for k, spec in enumerate(specs, 1):
        t0 = time.time()
        if split != "test" and (spec["params"].get("eval_set") or "speaker" in spec["params"]):
            res = {"skipped": "held-out evaluation data: test reports only"}
        else:
            res = RUNNERS[spec["group"]](suite, spec)
        entry = {**spec, **res, "seconds": round(time.time() - t0, 2)}
        results.append(entry)
        if "skipped" in res:
            msg = f"skipped: {res['skipped']}"
        else:
            cross = ", ".join(f"->{t} {100 * a:.1f}%" for t, a in res["cross"].items() if a is not None)
            msg = (f"label {100 * res['accuracy']:.1f}% (n={res['n']}, dropped {res['dropped']}); {cross}"
                   if res["n"] else "n=0")
            if "live" in res:
                live = res["live"]
                msg += f"; missed {live['missed']}, merged {live['merged']}, false alarms {live['false_alarms']}"
        suite.progress(f"[{k}/{len(specs)}] {spec['id']}: {msg} ({entry['seconds']:.1f}s)")
    result = {
        "format": "crossmodal_ros.robustness",
        "format_version": 1,
        "seed": int(seed),
        "split": split,
        "limit": int(limit or 0),
        "checkpoint": checkpoint_info or {},
        "instruments": {"dataset": getattr(instruments, "dataset", ""),
                        "test_accuracy": dict(getattr(instruments, "test_accuracy", {}))},
        "codecs": {m: c.to_dict() for m, c in suite.codecs.items() if hasattr(c, "to_dict")},
        "config": {"batch": BATCH, "buffer_s": BUFFER_S, "stream_utterances": STREAM_UTTERANCES,
                   "rir_pool": RIR_POOL, "vad": suite.vad, "frame": "640x480", "torch_threads": _threads(),
                   "inference_path": getattr(engine, "path", "?"),
                   "segmenter": "segment_stream" if _has_segment_stream() else "VoiceActivitySegmenter (50 ms blocks)",
                   "rows": rows or ",".join(GROUPS)},
        "held_out_speakers": suite.held_out_speakers(),
        "rows": results,
        "seconds": round(time.time() - t_all, 1),
    }
    return result, suite


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _has_segment_stream() -> bool:
    try:
        from crossmodal_ros.sensors import segmenters
    except ImportError:
        return False
    return hasattr(segmenters, "segment_stream")


# --------------------------------------------------------------------------- reports
def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def results_markdown(result: dict) -> str:
    """README text: tables per modality, generated from the numbers only (nothing time-dependent)."""
    ck = result.get("checkpoint", {})
    lines = ["# Robustness suite", "",
             "Generated by `crossmodal-eval --robustness` "
             "(crossmodal_ros/evaluation/robustness.py); every number below comes from `results.json`.", "",
             f"- **checkpoint**: {ck.get('name', '?')} (sha256 {str(ck.get('sha256', '?'))[:16]}…, created "
             f"{ck.get('created', '?')})",
             f"- **split**: {result.get('split', 'test')}"
             + (" (VALIDATION split, for choosing between training runs: where a row says test-split, read "
                "val-split)" if result.get("split", "test") != "test" else ""),
             f"- **seed**: {result['seed']}; **limit per row**: {result['limit'] or 'all'} (rows with fewer "
             f"inputs use all of them); **runtime**: {result.get('seconds', 0):.0f} s "
             f"({result['config'].get('torch_threads', '?')} torch thread(s)"
             + (f", inference path {result['config']['inference_path']}" if "inference_path" in result["config"]
                else "") + ")",
             f"- **instruments**: trained on {result['instruments'].get('dataset') or '?'}; stored test accuracy "
             + ", ".join(f"{m} {_pct(a)} %" for m, a in result["instruments"].get("test_accuracy", {}).items()),
             "- **label acc.**: accuracy of the model's label output (argmax) with the row's modality given alone; "
             "95 % CI: Wilson score interval. Inputs the codec refused (`dropped`) count as wrong.",
             "- **→ image / audio / trajectory**: the shipped instruments' accuracy on that modality as "
             "generated by the model from the row's input, against the true label.", ""]
    if result.get("held_out_speakers"):
        lines += [f"- **held-out speakers** (excluded from training by the checkpoint's config): "
                  f"{', '.join(result['held_out_speakers'])}", ""]
    for group in GROUPS:
        rows = [r for r in result["rows"] if r["group"] == group]
        if not rows:
            continue
        targets = []
        for r in rows:
            for t in r.get("cross", {}):
                if t not in targets:
                    targets.append(t)
        lines += [f"## {group} ({GROUP_MODALITY[group]} given alone)", ""]
        head = "| row | measured on | n | label acc. % | 95 % CI | dropped | " + " | ".join(f"→ {t} %" for t in targets)
        extra = group == "microphone" and any("live" in r for r in rows)
        lines += [head + (" | live: missed / merged / false alarms |" if extra else " |"),
                  "|---" * (6 + len(targets) + (1 if extra else 0)) + "|"]
        for r in rows:
            if "skipped" in r:
                cells = [r["name"], r["measured_on"], "–", "skipped", r["skipped"], "–"] + ["–"] * len(targets)
            else:
                lo, hi = r["ci95"]
                ci = "–" if lo is None else f"{100 * lo:.1f}–{100 * hi:.1f}"
                cells = [r["name"], r["measured_on"], str(r["n"]), _pct(r["accuracy"]), ci, str(r["dropped"])]
                cells += [_pct(r["cross"].get(t)) for t in targets]
            if extra:
                lv = r.get("live")
                cells.append(f"{lv['missed']} / {lv['merged']} / {lv['false_alarms']}" if lv else "")
            lines.append("| " + " | ".join(cells) + " |")
        done = [r for r in rows if "skipped" not in r and r["n"]]
        if done:
            lo_r = min(done, key=lambda r: r["accuracy"])
            hi_r = max(done, key=lambda r: r["accuracy"])
            lines += ["", f"Lowest label accuracy: {lo_r['name']} ({_pct(lo_r['accuracy'])} %, n={lo_r['n']}); "
                      f"highest: {hi_r['name']} ({_pct(hi_r['accuracy'])} %, n={hi_r['n']}). "
                      f"Inputs refused by the codec over these rows: {sum(r['dropped'] for r in done)} "
                      f"of {sum(r['n'] for r in done)}."]
        lines.append("")
    figs = [f for f in ("snr.png", "shift.png", "scale.png", "camera_examples.png") if f in result.get("plots", [])]
    if figs:
        lines += ["## Plots", ""] + [f"![{f[:-4]}]({f})" for f in figs] + [""]
    lines += ["## Notes", "",
              "- Microphone rows use the distinct recordings of the test split (samples share recordings); "
              f"noise and reverberation rows place the clip in a {BUFFER_S:g} s buffer and add the noise over "
              "the whole buffer, at an SNR relative to the speech level. Babble is made of training-split recordings.",
              "- The source-rate rows resample the 8 kHz recordings up: their content stays band-limited to 4 kHz.",
              f"- Live rows: {STREAM_UTTERANCES} utterances per stream, segmented by "
              f"{result['config']['segmenter']}; accuracy = correct labels / utterances in the streams (missed and "
              "merged utterances count as wrong); segments on no utterance and extra pieces of a split utterance "
              "are false alarms.",
              "- Pen rows: the dataset stores only the 200-vector trajectory, so 100 points are reconstructed from it, "
              "transformed and re-encoded by the checkpoint's TrajectoryCodec; stroke boundaries are not stored, so "
              "the reversed row reverses the whole point order.",
              f"- Reverberation: {RIR_POOL} room impulse responses per run (pyroomacoustics image-source model).",
              ""]
    return "\n".join(lines)


def write_plots(result: dict, suite: Suite, out: Path) -> list[str]:
    """Write the robustness plots of ``result`` into ``out``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = [r for r in result["rows"] if "skipped" not in r and r.get("n")]

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)

    clean = next((r for r in rows if r["id"] == "microphone/clean"), None)
    snr = [r for r in rows if r.get("plot") and r["plot"][0] == "snr"]
    if snr:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for kind in NOISES:
            pts = sorted((r["plot"][2], r["accuracy"], r["ci95"]) for r in snr if r["plot"][1] == kind)
            if pts:
                x = [p[0] for p in pts]
                y = [100 * p[1] for p in pts]
                err = [[100 * (p[1] - p[2][0]) for p in pts], [100 * (p[2][1] - p[1]) for p in pts]]
                ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=kind)
        if clean:
            ax.axhline(100 * clean["accuracy"], color="grey", ls="--", label="clean")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("label accuracy from audio (%)")
        ax.set_ylim(0, 100)
        ax.legend()
        ax.set_title("microphone: accuracy vs SNR")
        save(fig, "snr.png")
    shift = sorted((r["plot"][2], r["accuracy"], r["ci95"]) for r in rows if r.get("plot") and r["plot"][0] == "shift")
    if len(shift) > 1:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        ax.errorbar([p[0] for p in shift], [100 * p[1] for p in shift],
                    yerr=[[100 * (p[1] - p[2][0]) for p in shift], [100 * (p[2][1] - p[1]) for p in shift]],
                    marker="o", capsize=3)
        ax.set_xlabel("time shift (ms)")
        ax.set_ylabel("label accuracy from audio (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"microphone: accuracy vs shift ({BUFFER_S:g} s buffer)")
        save(fig, "shift.png")
    scale = [r for r in rows if r.get("plot") and r["plot"][0] == "scale"]
    if scale:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        tags = [t for t, _ in SCALES]
        for pol in POLARITIES:
            pts = [next((r for r in scale if r["plot"][1] == pol and r["plot"][2] == t), None) for t in tags]
            xs = [i for i, r in enumerate(pts) if r]
            if xs:
                ax.errorbar(xs, [100 * pts[i]["accuracy"] for i in xs],
                            yerr=[[100 * (pts[i]["accuracy"] - pts[i]["ci95"][0]) for i in xs],
                                  [100 * (pts[i]["ci95"][1] - pts[i]["accuracy"]) for i in xs]],
                            marker="o", capsize=3, label=pol.replace("_", "-"))
        ax.set_xticks(range(len(tags)))
        ax.set_xticklabels([f"{t} %" for t in tags])
        ax.set_xlabel("digit height / frame height")
        ax.set_ylabel("label accuracy from image (%)")
        ax.set_ylim(0, 100)
        ax.legend()
        ax.set_title("camera: accuracy vs digit scale")
        save(fig, "scale.png")
    if suite.examples:
        ex = suite.examples[:16]
        cols = 4
        nrows = int(math.ceil(len(ex) / cols))
        fig, axes = plt.subplots(nrows, 2 * cols, figsize=(2 * cols * 1.6, nrows * 1.6),
                                 gridspec_kw={"width_ratios": [4 / 3, 1] * cols}, squeeze=False)
        for a in axes.ravel():
            a.axis("off")
        for k, (name, frame, enc) in enumerate(ex):
            a1, a2 = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
            a1.imshow(frame[::4, ::4] if frame.ndim == 3 else frame[::4, ::4], cmap="gray", vmin=0, vmax=255)
            short = name.replace("framed, digit ", "").replace(" of height", "").replace("framed, ", "")
            a1.set_title(short[:34], fontsize=5)
            if enc is None:
                a2.text(0.5, 0.5, "no digit\n(dropped)", ha="center", va="center", fontsize=6)
            else:
                a2.imshow(enc[0], cmap="gray", vmin=0, vmax=1)
                a2.set_title("codec", fontsize=5)
        fig.suptitle("camera frames and what the image codec made of them", fontsize=8)
        save(fig, "camera_examples.png")
    return written


def write_outputs(result: dict, suite: Suite, out) -> list[Path]:
    """Write the robustness result (JSON, page, plots) into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result["plots"] = write_plots(result, suite, out)
    plain = {k: v for k, v in result.items()}
    (out / "results.json").write_text(json.dumps(plain, indent=1, sort_keys=True, default=_json_default) + "\n")
    (out / "README.md").write_text(results_markdown(result))
    return [out / "results.json", out / "README.md"] + [out / p for p in result["plots"]]


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def checkpoint_identity(path, meta: dict) -> dict:
    """Name, hash and training metadata identifying the checkpoint at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"name": Path(path).name, "path": str(path), "sha256": h.hexdigest(), "kind": meta.get("kind"),
            "created": meta.get("created"),
            "epoch": (meta.get("train") or {}).get("epoch") if isinstance(meta.get("train"), dict) else None}


# --------------------------------------------------------------------------- CLI
def default_out(checkpoint: Path, split: str, full_suite: bool = True, backend: str = "fast") -> Path:
    """Where a run writes without ``--out``. The committed report (:data:`DEFAULT_OUT` in the
    source checkout) only for the shipped checkpoint on the test split with the suite's defaults
    (``full_suite``: every row, the default limit, seed, judges, data and backend); any other run
    goes to ``runs/robustness_<checkpoint name>_<hash of its path>_<split>`` in the working
    directory, with ``_<backend>`` appended for a backend other than fast.
    """
    import hashlib

    from crossmodal_ros.paths import _SOURCE_ROOT, default_checkpoint

    ckpt = Path(checkpoint).resolve()
    source_report = _SOURCE_ROOT / DEFAULT_OUT
    if (full_suite and backend == "fast" and split == "test" and ckpt == default_checkpoint().resolve()
            and source_report.parent.is_dir()):
        return source_report
    tag = hashlib.sha1(str(ckpt).encode()).hexdigest()[:6]
    return Path("runs") / f"robustness_{ckpt.stem}_{tag}_{split}{'' if backend == 'fast' else '_' + backend}"


def main(argv=None) -> int:
    """Command line of the robustness suite (``crossmodal-eval --robustness``)."""
    parser = argparse.ArgumentParser(
        prog="crossmodal-eval --robustness",
        description="Robustness suite: accuracy of each modality given alone under seeded sensor "
                    "transformations (camera frames, microphone noise/shift/reverb/live streams, pen).")
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped nexus_digits.pt)")
    parser.add_argument("--instruments", default=None, help="judge file (default: models/instruments_digits.pt)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"inputs per row (default {DEFAULT_LIMIT}; 0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help=f"output directory (default: the committed report, {DEFAULT_OUT} of the source "
                             "checkout, for the shipped checkpoint on the test split with every other option at "
                             "its default; else runs/robustness_<checkpoint name>_<path hash>_<split>)")
    parser.add_argument("--rows", default=",".join(GROUPS),
                        help="comma-separated groups (camera,microphone,pen), row ids or patterns (pen/rot*)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--backend", default="fast", choices=("fast", "int8", "int8_auto", "reference"),
                        help="inference path, as the node's backend parameter (default fast: equal to the "
                             "training model; int8_auto is the node's default)")
    parser.add_argument("--data-root", default=None, help="digits dataset directory (default: the shipped one)")
    parser.add_argument("--split", default="test", choices=("test", "val"),
                        help="test (reports) or val (choosing between training runs; skips held-out sets)")
    args = parser.parse_args(argv)
    if args.limit < 0:
        print("error: --limit must be >= 0", file=sys.stderr)
        return 2
    import torch

    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.evaluation.instruments import Instruments
    from crossmodal_ros.evaluation.metrics import EvaluationError
    from crossmodal_ros.paths import default_checkpoint

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    full_suite = (args.rows == ",".join(GROUPS) and args.limit == DEFAULT_LIMIT and args.seed == 0
                  and args.instruments is None and args.data_root is None and args.backend == "fast")
    out = args.out if args.out is not None else str(default_out(ckpt, args.split, full_suite, args.backend))
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    try:
        engine = FusionEngine.from_checkpoint(ckpt, device=args.device, backend=args.backend)
        instruments = Instruments.load(args.instruments, engine.device)
        info = checkpoint_identity(ckpt, engine.meta)
        log(f"robustness suite: {ckpt} (sha256 {info['sha256'][:12]}), limit {args.limit}, seed {args.seed}, "
            f"path {engine.path}")
        result, suite = run_suite(engine, instruments, rows=args.rows, limit=args.limit, seed=args.seed,
                                  data_root=args.data_root, progress=log, checkpoint_info=info, split=args.split)
    except (RobustnessError, EvaluationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - checkpoint/data errors carry their own message
        if type(exc).__name__ in ("CheckpointError", "DatasetError", "CodecError", "SegmenterError"):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    written = write_outputs(result, suite, out)
    log(f"robustness suite took {result['seconds']:.1f} s; wrote {len(written)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
