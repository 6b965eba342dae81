# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Stream segmenters for the sensor nodes (ROS-free).

* :class:`VoiceActivitySegmenter` cuts a continuous microphone stream into utterance windows by
  frame energy: an utterance starts after ``min_speech_s`` of loud frames (keeping ``preroll_s``
  of audio before the onset), ends after ``hangover_s`` of quiet frames, and is cut at
  ``max_utterance_s``. The loudness threshold adapts to the background: it is the tracked noise
  floor (which drops at once to a quieter frame and rises slowly over quiet frames) plus
  ``margin_db``, but never below ``min_threshold_db``.
* :class:`SileroVADSegmenter` has the same streaming interface and utterance rules (pre-roll,
  hangover, minimum and maximum length) but decides speech per 32 ms frame with the silero-vad
  neural network (the model file shipped inside the ``silero_vad`` package; nothing is
  downloaded). It runs at 16 kHz and 8 kHz natively; other rates are resampled for the model
  only (the emitted samples keep the input rate).
* :func:`make_voice_segmenter` builds either by name (``"energy"`` | ``"silero"``) and
  :func:`segment_stream` drives one over a whole recorded stream.
* :class:`StrokeSegmenter` turns a stream of stamped pen/end-effector positions into one
  trajectory per written digit: a pen-up is a time gap longer than ``gap_s`` between
  consecutive points or a height above ``pen_up_height``; after ``pause_s`` without pen-down
  points the digit's strokes are emitted together.

Both raise :class:`SegmenterError` for bad settings or input.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "SegmenterError",
    "Utterance",
    "VoiceActivitySegmenter",
    "SileroVADSegmenter",
    "VAD_KINDS",
    "make_voice_segmenter",
    "segment_stream",
    "PenDigit",
    "StrokeSegmenter",
]


class SegmenterError(ValueError):
    """Bad segmenter settings or input samples/positions."""


# ------------------------------------------------------------------ voice activity
@dataclass(frozen=True)
class Utterance:
    """A detected utterance: PCM samples and their position in the stream (seconds)."""

    samples: np.ndarray
    t_start: float
    t_end: float
    truncated: bool  # cut at max_utterance_s rather than ended by silence

    @property
    def duration(self) -> float:
        return self.t_end - self.t_start


def _check_limits(sample_rate, frame_s, min_speech_s, hangover_s, preroll_s, min_utterance_s,
                  max_utterance_s) -> None:
    if not (isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, bool)
            and 1000 <= sample_rate <= 384000):
        raise SegmenterError(f"sample_rate must be an integer in [1000, 384000], got {sample_rate!r}")
    for name, value in (("frame_s", frame_s), ("max_utterance_s", max_utterance_s)):
        if not (_is_number(value) and value > 0 and math.isfinite(value)):
            raise SegmenterError(f"{name} must be positive, got {value!r}")
    for name, value in (
        ("min_speech_s", min_speech_s),
        ("hangover_s", hangover_s),
        ("preroll_s", preroll_s),
        ("min_utterance_s", min_utterance_s),
    ):
        if not (_is_number(value) and value >= 0 and math.isfinite(value)):
            raise SegmenterError(f"{name} must be >= 0, got {value!r}")
    if min_utterance_s > max_utterance_s:
        raise SegmenterError("min_utterance_s must not exceed max_utterance_s")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class _UtteranceStateMachine:
    """Frame bookkeeping shared by the voice segmenters: pre-roll, start after ``min_speech_s``
    of speech frames, end after ``hangover_s`` of non-speech frames, cut at ``max_utterance_s``,
    drop utterances shorter than ``min_utterance_s``. Subclasses set ``self.frame`` (samples per
    decision at the input rate) and implement :meth:`_is_speech`.
    """

    sample_rate: int
    frame: int

    def _init_limits(self, min_speech_s, hangover_s, preroll_s, min_utterance_s, max_utterance_s) -> None:
        fs = self.frame / self.sample_rate
        self.start_frames = max(1, int(math.ceil(min_speech_s / fs - 1e-9)))
        self.hangover_frames = int(math.ceil(hangover_s / fs - 1e-9))
        self.preroll_frames = int(math.ceil(preroll_s / fs - 1e-9))
        self.min_frames = int(math.ceil(min_utterance_s / fs - 1e-9))
        self.max_frames = max(1, int(max_utterance_s / fs + 1e-9))

    def _reset_machine(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_seen = 0
        self._history: deque = deque(maxlen=self.preroll_frames + self.start_frames)
        self._in_speech = False
        self._active_run = 0
        self._silent_run = 0
        self._utt: list[np.ndarray] = []
        self._utt_start = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def _is_speech(self, frame: np.ndarray) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def feed(self, samples) -> list[Utterance]:
        """Process a chunk of PCM samples; returns the utterances completed by it."""
        x = np.asarray(samples)
        if x.ndim == 2 and 1 in x.shape:
            x = x.reshape(-1)
        if x.ndim != 1:
            raise SegmenterError(f"expected mono 1-D samples, got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise SegmenterError(f"expected float PCM in [-1, 1], got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
        if not np.all(np.isfinite(x)):
            raise SegmenterError("samples contain NaN or Inf")
        buf = np.concatenate([self._pending, x]) if self._pending.size else x
        n = buf.shape[0] // self.frame
        out: list[Utterance] = []
        for i in range(n):
            u = self._step(buf[i * self.frame : (i + 1) * self.frame])
            if u is not None:
                out.append(u)
        self._pending = buf[n * self.frame :].copy()
        return out

    def flush(self) -> list[Utterance]:
        """End of stream: emit the utterance in progress if it is long enough."""
        out = []
        if self._in_speech:
            u = self._finish(truncated=False)
            if u is not None:
                out.append(u)
        self._pending = np.zeros(0, dtype=np.float32)
        return out

    # one frame of the state machine
    def _step(self, frame: np.ndarray) -> Utterance | None:
        idx = self._frames_seen
        self._frames_seen += 1
        speech = self._is_speech(frame)
        if not self._in_speech:
            self._history.append(frame)
            self._active_run = self._active_run + 1 if speech else 0
            if self._active_run >= self.start_frames:
                keep = min(len(self._history), self.start_frames + self.preroll_frames)
                self._utt = list(self._history)[-keep:]
                self._utt_start = idx + 1 - keep
                self._in_speech = True
                self._silent_run = 0
                self._history.clear()
            return None
        self._utt.append(frame)
        self._silent_run = 0 if speech else self._silent_run + 1
        if self._silent_run > self.hangover_frames:
            return self._finish(truncated=False)
        if len(self._utt) >= self.max_frames:
            return self._finish(truncated=True)
        return None

    def _finish(self, truncated: bool) -> Utterance | None:
        frames = self._utt
        if not truncated and self._silent_run > 0:
            # drop the trailing quiet frames beyond the hangover's worth of tail
            tail = max(0, self._silent_run - self.hangover_frames)
            frames = frames[: len(frames) - tail] if tail else frames
        self._in_speech = False
        self._active_run = 0
        self._silent_run = 0
        self._utt = []
        if len(frames) < max(self.min_frames, 1):
            return None
        samples = np.concatenate(frames)
        t0 = self._utt_start * self.frame / self.sample_rate
        return Utterance(samples, t0, t0 + samples.shape[0] / self.sample_rate, truncated)


class VoiceActivitySegmenter(_UtteranceStateMachine):
    """Energy-based voice activity detection with hangover, pre-roll and a maximum length.

    Feed mono float PCM in [-1, 1] in chunks of any size with :meth:`feed`; complete utterances
    come back in order. :meth:`flush` ends the stream (an utterance in progress is emitted if
    long enough).
    """

    kind = "energy"

    def __init__(
        self,
        sample_rate: int,
        frame_s: float = 0.02,
        margin_db: float = 12.0,
        min_threshold_db: float = -55.0,
        min_speech_s: float = 0.06,
        hangover_s: float = 0.3,
        preroll_s: float = 0.1,
        min_utterance_s: float = 0.15,
        max_utterance_s: float = 2.0,
        noise_adapt: float = 0.05,
    ):
        _check_limits(sample_rate, frame_s, min_speech_s, hangover_s, preroll_s, min_utterance_s,
                      max_utterance_s)
        for name, value in (("margin_db", margin_db), ("min_threshold_db", min_threshold_db)):
            if not (_is_number(value) and math.isfinite(value)):
                raise SegmenterError(f"{name} must be a finite number, got {value!r}")
        if not (_is_number(noise_adapt) and 0 <= noise_adapt <= 1):
            raise SegmenterError(f"noise_adapt must be in [0, 1], got {noise_adapt!r}")
        self.sample_rate = int(sample_rate)
        self.frame = max(1, int(round(frame_s * sample_rate)))
        self.margin_db = float(margin_db)
        self.min_threshold_db = float(min_threshold_db)
        self._init_limits(min_speech_s, hangover_s, preroll_s, min_utterance_s, max_utterance_s)
        self.noise_adapt = float(noise_adapt)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (noise floor included)."""
        self._reset_machine()
        self.noise_floor_db: float | None = None

    @property
    def threshold_db(self) -> float:
        """The current loudness threshold (dBFS RMS) for a frame to count as speech."""
        floor = self.noise_floor_db if self.noise_floor_db is not None else -math.inf
        return max(floor + self.margin_db, self.min_threshold_db)

    @staticmethod
    def frame_db(frame: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        return 20.0 * math.log10(max(rms, 1e-10))

    def _is_speech(self, frame: np.ndarray) -> bool:
        db = self.frame_db(frame)
        loud = db >= self.threshold_db
        if not self._in_speech:
            # noise floor: follows quieter frames at once, louder non-speech frames slowly
            if self.noise_floor_db is None or db < self.noise_floor_db:
                self.noise_floor_db = max(db, -120.0)
            elif not loud:
                a = self.noise_adapt
                self.noise_floor_db = (1 - a) * self.noise_floor_db + a * db
        return loud


def _load_silero_model():
    """A fresh silero-vad JIT model from the file inside the ``silero_vad`` package.

    Importing ``silero_vad`` calls ``torch.set_num_threads(1)``; the caller's thread count is
    restored so that loading a VAD does not slow down inference elsewhere in the process.
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a project dependency
        raise SegmenterError(f"the silero VAD needs torch ({exc})") from exc
    threads = torch.get_num_threads()
    try:
        try:
            from silero_vad import load_silero_vad
        except ImportError as exc:
            raise SegmenterError(
                f"the silero VAD needs the Python package silero-vad (pip install silero-vad==6.2.3): {exc}"
            ) from exc
        try:
            model = load_silero_vad()
        except Exception as exc:  # noqa: BLE001 - a damaged install: report it as a settings error
            raise SegmenterError(f"cannot load the silero-vad model shipped with the package: {exc}") from exc
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return model


class SileroVADSegmenter(_UtteranceStateMachine):
    """Neural voice activity detection (silero-vad) with the energy segmenter's utterance rules.

    Each 32 ms frame (512 samples at 16 kHz, 256 at 8 kHz) gets a speech probability from the
    silero-vad network (its recurrent state carries over between frames). A frame counts as
    speech when the probability is at least ``threshold`` outside an utterance, or at least
    ``neg_threshold`` (default ``threshold - 0.15``, silero's own hysteresis) inside one. Pre-roll,
    hangover, minimum and maximum length work exactly as in :class:`VoiceActivitySegmenter`,
    rounded up to whole 32 ms frames.

    Sample rates other than 8 and 16 kHz are resampled to 16 kHz for the network only; the
    utterances carry the input samples. ``model``: an already loaded silero model to use (it
    must not be shared by two segmenters at once; default: a fresh one from the package).
    """

    kind = "silero"
    FRAME_SAMPLES = {16000: 512, 8000: 256}

    def __init__(
        self,
        sample_rate: int,
        threshold: float = 0.5,
        neg_threshold: float | None = None,
        min_speech_s: float = 0.06,
        hangover_s: float = 0.3,
        preroll_s: float = 0.1,
        min_utterance_s: float = 0.15,
        max_utterance_s: float = 2.0,
        model=None,
    ):
        _check_limits(sample_rate, 0.032, min_speech_s, hangover_s, preroll_s, min_utterance_s,
                      max_utterance_s)
        if not (_is_number(threshold) and 0.0 < threshold < 1.0):
            raise SegmenterError(f"threshold must be in (0, 1), got {threshold!r}")
        if neg_threshold is None:
            neg_threshold = max(0.01, float(threshold) - 0.15)
        if not (_is_number(neg_threshold) and 0.0 < neg_threshold <= threshold):
            raise SegmenterError(f"neg_threshold must be in (0, threshold], got {neg_threshold!r}")
        self.sample_rate = int(sample_rate)
        self.threshold = float(threshold)
        self.neg_threshold = float(neg_threshold)
        if self.sample_rate in self.FRAME_SAMPLES:
            self.model_rate = self.sample_rate
            self.frame = self.FRAME_SAMPLES[self.sample_rate]
        else:
            self.model_rate = 16000
            self.frame = max(1, int(round(512 * self.sample_rate / 16000)))
        self.model_frame = self.FRAME_SAMPLES[self.model_rate]
        self._init_limits(min_speech_s, hangover_s, preroll_s, min_utterance_s, max_utterance_s)
        self.model = model if model is not None else _load_silero_model()
        self.last_probability = 0.0
        self.reset()

    def reset(self) -> None:
        """Forget the stream (the network's recurrent state included)."""
        self._reset_machine()
        self._prev_frame = np.zeros(self.frame, dtype=np.float32)
        self.model.reset_states()

    def speech_probability(self, frame: np.ndarray) -> float:
        """The network's speech probability for the next frame of the stream (updates its state)."""
        import torch

        x = frame
        if self.model_rate != self.sample_rate:
            x = self._to_model_rate(frame)
        with torch.inference_mode():
            p = self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None], self.model_rate)
        return float(p.reshape(-1)[0])

    def _to_model_rate(self, frame: np.ndarray) -> np.ndarray:
        """One frame at the input rate -> exactly ``model_frame`` samples at 16 kHz (polyphase
        resampling with the previous frame as context, so frame edges carry no filter ringing).
        """
        from scipy.signal import resample_poly

        g = math.gcd(self.sample_rate, self.model_rate)
        both = np.concatenate([self._prev_frame, frame]).astype(np.float64)
        self._prev_frame = frame
        y = resample_poly(both, self.model_rate // g, self.sample_rate // g)
        half = y[len(y) // 2 :]
        if len(half) != self.model_frame:
            half = np.interp(np.linspace(0, len(half) - 1, self.model_frame), np.arange(len(half)), half)
        return np.clip(half, -1.0, 1.0).astype(np.float32)

    def _is_speech(self, frame: np.ndarray) -> bool:
        p = self.speech_probability(frame)
        self.last_probability = p
        return p >= (self.neg_threshold if self._in_speech else self.threshold)


#: Names accepted by :func:`make_voice_segmenter` (and the microphone node's ``vad`` parameter).
VAD_KINDS = ("energy", "silero")

# parameters every voice segmenter takes (the utterance rules)
_COMMON = ("min_speech_s", "hangover_s", "preroll_s", "min_utterance_s", "max_utterance_s")
_KIND_PARAMS = {
    "energy": _COMMON + ("frame_s", "margin_db", "min_threshold_db", "noise_adapt"),
    "silero": _COMMON + ("threshold", "neg_threshold", "model"),
}


def make_voice_segmenter(vad: str, sample_rate: int, **params):
    """A voice segmenter by name: ``"energy"`` (:class:`VoiceActivitySegmenter`) or ``"silero"``
    (:class:`SileroVADSegmenter`). Parameters the chosen kind does not take raise
    :class:`SegmenterError` (so a typo is not silently ignored).
    """
    if vad not in VAD_KINDS:
        raise SegmenterError(f"vad must be one of {VAD_KINDS}, got {vad!r}")
    unknown = sorted(set(params) - set(_KIND_PARAMS[vad]))
    if unknown:
        raise SegmenterError(f"the {vad} VAD has no parameter(s) {unknown}; it takes {sorted(_KIND_PARAMS[vad])}")
    cls = VoiceActivitySegmenter if vad == "energy" else SileroVADSegmenter
    return cls(sample_rate, **params)


def segment_stream(stream, sample_rate: int, vad: str = "energy", block_s: float = 0.05,
                   **params) -> list[tuple[float, float, np.ndarray]]:
    """Run a voice segmenter over a whole recorded mono float stream in ``block_s`` blocks (50 ms,
    as the microphone node receives them) and flush at the end.

    Returns ``[(start_s, end_s, pcm), ...]``: each utterance's position in the stream in seconds
    and its samples at ``sample_rate``. ``params`` go to :func:`make_voice_segmenter`.
    """
    seg = make_voice_segmenter(vad, sample_rate, **params)
    x = np.asarray(stream)
    if not (_is_number(block_s) and block_s > 0):
        raise SegmenterError(f"block_s must be positive, got {block_s!r}")
    block = max(1, int(round(block_s * sample_rate)))
    utts: list[Utterance] = []
    for k in range(0, max(1, x.shape[0]), block):
        utts += seg.feed(x[k : k + block])
    utts += seg.flush()
    return [(u.t_start, u.t_end, u.samples) for u in utts]


# ------------------------------------------------------------------ pen strokes
@dataclass(frozen=True)
class PenDigit:
    """One written digit: its pen-down points (strokes concatenated) and their times."""

    points: np.ndarray  # float64 (N, 2)
    stroke_starts: tuple[int, ...]  # index of each stroke's first point
    times: np.ndarray  # float64 (N,) seconds

    @property
    def n_strokes(self) -> int:
        return len(self.stroke_starts)

    @property
    def t_start(self) -> float:
        return float(self.times[0])

    @property
    def t_end(self) -> float:
        return float(self.times[-1])

    def strokes(self) -> list[np.ndarray]:
        bounds = list(self.stroke_starts) + [len(self.points)]
        return [self.points[a:b] for a, b in zip(bounds, bounds[1:])]


@dataclass
class StrokeSegmenter:
    """Segments stamped positions into digits by pen-up gaps.

    Attributes:
        gap_s: a time gap longer than this between pen-down points starts a new stroke.
        pause_s: after this long without a pen-down point the digit is complete.
        pen_up_height: points with z above this are pen-up (None: z is ignored).
        min_points: digits with fewer pen-down points are discarded (noise, taps).
        max_points: a digit is emitted early once it holds this many points.
    """

    gap_s: float = 0.25
    pause_s: float = 0.8
    pen_up_height: float | None = None
    min_points: int = 5
    max_points: int = 5000
    _points: list = field(default_factory=list, init=False, repr=False)
    _times: list = field(default_factory=list, init=False, repr=False)
    _starts: list = field(default_factory=list, init=False, repr=False)
    _last_t: float | None = field(default=None, init=False, repr=False)
    _last_down_t: float | None = field(default=None, init=False, repr=False)
    _pen_was_up: bool = field(default=True, init=False, repr=False)
    discarded: int = field(default=0, init=False)

    def __post_init__(self):
        if not (self.gap_s > 0 and self.pause_s > 0):
            raise SegmenterError("gap_s and pause_s must be positive")
        if self.pause_s < self.gap_s:
            raise SegmenterError(f"pause_s ({self.pause_s}) must be >= gap_s ({self.gap_s})")
        if self.min_points < 2 or self.max_points < self.min_points:
            raise SegmenterError("need 2 <= min_points <= max_points")

    def reset(self) -> None:
        self._points, self._times, self._starts = [], [], []
        self._last_t = self._last_down_t = None
        self._pen_was_up = True

    @property
    def pending_points(self) -> int:
        return len(self._points)

    def add(self, t: float, x: float, y: float, z: float | None = None) -> list[PenDigit]:
        """One position sample at time ``t`` (seconds); returns digits completed by it."""
        vals = (t, x, y) + ((z,) if z is not None else ())
        if not all(math.isfinite(float(v)) for v in vals):
            raise SegmenterError(f"non-finite position sample {vals}")
        out: list[PenDigit] = []
        if self._last_t is not None and t < self._last_t:
            # time went backwards (a bag restarted, sim time reset): start afresh
            self.reset()
        self._last_t = t
        out.extend(self.poll(t))
        pen_up = self.pen_up_height is not None and z is not None and z > self.pen_up_height
        if pen_up:
            self._pen_was_up = True
            return out
        new_stroke = (
            self._pen_was_up
            or self._last_down_t is None
            or (t - self._last_down_t) > self.gap_s
        )
        if new_stroke:
            self._starts.append(len(self._points))
        self._points.append((float(x), float(y)))
        self._times.append(float(t))
        self._last_down_t = t
        self._pen_was_up = False
        if len(self._points) >= self.max_points:
            out.extend(self._emit())
        return out

    def poll(self, now: float) -> list[PenDigit]:
        """Emit the digit in progress if the pen has been up for ``pause_s`` at time ``now``."""
        if self._points and self._last_down_t is not None and now - self._last_down_t >= self.pause_s:
            return self._emit()
        return []

    def flush(self) -> list[PenDigit]:
        return self._emit() if self._points else []

    def _emit(self) -> list[PenDigit]:
        pts, times, starts = self._points, self._times, self._starts
        self._points, self._times, self._starts = [], [], []
        self._pen_was_up = True
        if len(pts) < self.min_points:
            self.discarded += 1
            return []
        return [PenDigit(np.asarray(pts, dtype=np.float64), tuple(starts), np.asarray(times))]
