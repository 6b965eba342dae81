# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Microphone node: publishes utterance windows on ``audio/chunk`` (std_msgs/Float32MultiArray).

Every message is one utterance of mono float32 PCM in [-1, 1] at the ``sample_rate`` parameter
(shared with the inference node; the rate is not carried in the message).

Sources (parameter ``source``):

* ``microphone``: a sounddevice input stream (``device``: name or index, empty = default) cut
  into utterances by a voice activity segmenter: parameter ``vad`` = ``silero`` (default; the
  silero-vad network, :class:`~crossmodal_ros.sensors.segmenters.SileroVADSegmenter`,
  ``vad_threshold``) or ``energy`` (:class:`~crossmodal_ros.sensors.segmenters.VoiceActivitySegmenter`,
  ``vad_margin_db`` over the tracked noise floor); both take the utterance rules ``vad_*``
  (hangover, pre-roll, minimum/maximum length). docs/results/vad.md compares the two;
* a WAV/FLAC file, a directory of them or a glob: streamed in real time through the same
  segmenter (``loop`` repeats them), so recordings behave like a live microphone;
* ``dataset``: playback of the embedded FSDD waveforms, one per ``period_s`` following
  ``outage_schedule``, resampled to ``sample_rate``. With ``stream`` false (default) each clip
  is published as it is. With ``stream`` true the node plays a continuous microphone signal in
  real time - each tick's utterance over background noise (``stream_noise``: pink | white |
  none, at ``stream_snr_db``; :func:`crossmodal_ros.sim.continuous_stream`), silence (noise only)
  at ticks when audio is off - through the same voice activity segmenter as a live microphone,
  and publishes only what the segmenter emits. Each utterance ends at its tick's start, so the
  segmenter, which emits after the hangover, publishes it early in the tick.

sounddevice needs the PortAudio library; without it the node stops with an error naming the
Debian package ``libportaudio2``.
"""
from __future__ import annotations

import glob
import importlib
import os
import queue
import time

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray

from crossmodal_ros import units
from crossmodal_ros.modalities import AUDIO
from crossmodal_ros.ros.conversions import numpy_to_audio
from crossmodal_ros.sensors.playback import SensorError, resample_audio, sample_for
from crossmodal_ros.sensors.segmenters import VAD_KINDS, SegmenterError, make_voice_segmenter
from crossmodal_ros.ros.sensor_base import QOS_OVERRIDES, PlaybackSource, declare, now_s, publisher_qos, run_node

__all__ = ["MicrophoneNode", "import_sounddevice", "read_audio_files", "DEFAULT_VAD", "main"]

#: The default voice activity detector (docs/results/vad.md: tools/compare_vad.py picks it).
DEFAULT_VAD = "silero"

PORTAUDIO_HINT = (
    "the PortAudio library is missing, so the microphone cannot be opened. Install it with "
    "'sudo apt-get install libportaudio2' (Debian/Ubuntu package libportaudio2), or use "
    "source:=dataset or a WAV file as the microphone source"
)


def import_sounddevice():
    """The ``sounddevice`` module; :class:`SensorError` naming ``libportaudio2`` if PortAudio is missing."""
    try:
        return importlib.import_module("sounddevice")
    except OSError as exc:  # sounddevice raises OSError at import when libportaudio is absent
        raise SensorError(f"{PORTAUDIO_HINT} ({exc})") from exc
    except ImportError as exc:
        raise SensorError(f"the Python package sounddevice is not installed ({exc})") from exc


def read_audio_files(source: str, sample_rate: int) -> list[np.ndarray]:
    """Mono float32 waveforms at ``sample_rate`` from a file, a directory or a glob pattern."""
    import soundfile

    if os.path.isdir(source):
        files = sorted(
            f for f in glob.glob(os.path.join(source, "*")) if f.lower().endswith((".wav", ".flac", ".ogg"))
        )
    elif any(c in source for c in "*?["):
        files = sorted(glob.glob(source))
    else:
        files = [source]
    if not files or not all(os.path.isfile(f) for f in files):
        raise SensorError(f"microphone source {source!r}: no such audio file(s)")
    out = []
    for f in files:
        try:
            wave, rate = soundfile.read(f, dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - soundfile raises its own error types
            raise SensorError(f"cannot read audio file {f}: {exc}") from exc
        out.append(resample_audio(wave.mean(axis=1), int(rate), sample_rate))
    return out


class MicrophoneNode(Node):
    """Publishes utterances from a microphone, audio files or dataset playback."""

    EXECUTABLE = "microphone_node"
    # Class defaults: destroy_node() may run on a node whose __init__ failed half-way (the
    # context destroys the nodes it tracks at shutdown), before these were assigned.
    stream = None
    playback: PlaybackSource | None = None

    def __init__(self, node_name: str = "microphone_node", *, dataset: dict | None = None, **kwargs):
        super().__init__(node_name, **kwargs)
        self.source = declare(self, "source", "dataset",
                              "'dataset', 'microphone', or a WAV/FLAC file, directory or glob.")
        self.sample_rate = declare(self, "sample_rate", 16000,
                                   "Sample rate (Hz) of the published PCM; the inference node must match it.")
        if not 1000 <= self.sample_rate <= 384000:
            raise SensorError(f"sample_rate must be in [1000, 384000] Hz, got {self.sample_rate}")
        qos = publisher_qos(self)
        self.publisher = self.create_publisher(Float32MultiArray, units.unit(AUDIO).input_topic, qos,
                                               qos_overriding_options=QOS_OVERRIDES)
        self.utterances_published = 0
        self.dropped_blocks = 0
        self.stream = None
        self.playback: PlaybackSource | None = None
        if self.source == "dataset":
            self.stream_playback = declare(self, "stream", False,
                                           "Play dataset audio as a continuous stream through the VAD.")
            if self.stream_playback:
                self._init_stream(dataset)
            else:
                self.playback = PlaybackSource(self, AUDIO, self._publish_sample, dataset)
        else:
            self.vad = self._make_vad()
            self._blocks: queue.Queue = queue.Queue(maxsize=200)
            if self.source == "microphone":
                self._open_microphone()
            else:
                self.loop = declare(self, "loop", True, "Repeat the audio files at their end.")
                gap = declare(self, "file_gap_s", 1.0, "Silence (s) streamed between audio files.")
                waves = read_audio_files(self.source, self.sample_rate)
                silence = np.zeros(int(gap * self.sample_rate), dtype=np.float32)
                parts = []
                for w in waves:
                    parts += [silence, w]
                self._file_stream = np.concatenate(parts + [silence])
                self._file_pos = 0
                self._file_t0 = time.monotonic()
                self.create_timer(0.05, self._stream_file)
            self.create_timer(0.05, self._drain)
        self.get_logger().info(f"microphone source: {self.source} at {self.sample_rate} Hz")

    def _make_vad(self):
        kind = declare(self, "vad", DEFAULT_VAD,
                       f"Voice activity detector: {' | '.join(VAD_KINDS)} (docs/results/vad.md).")
        if kind not in VAD_KINDS:
            raise SensorError(f"parameter vad must be one of {', '.join(VAD_KINDS)}, got {kind!r}")
        common = dict(
            min_speech_s=declare(self, "vad_min_speech_s", 0.06, "Speech time (s) that starts an utterance."),
            hangover_s=declare(self, "vad_hangover_s", 0.3, "Non-speech time (s) that ends an utterance."),
            preroll_s=declare(self, "vad_preroll_s", 0.1, "Audio (s) kept before the onset."),
            min_utterance_s=declare(self, "vad_min_utterance_s", 0.15, "Shorter utterances are dropped (s)."),
            max_utterance_s=declare(self, "vad_max_utterance_s", 2.0, "Utterances are cut at this length (s)."),
        )
        # both kinds' own parameters are declared (a launch file may set either); the chosen one is used
        energy = dict(
            margin_db=declare(self, "vad_margin_db", 12.0, "energy VAD: speech threshold over the noise floor (dB)."),
            min_threshold_db=declare(self, "vad_min_threshold_db", -55.0,
                                     "energy VAD: lowest speech threshold (dBFS RMS)."),
        )
        silero = dict(threshold=declare(self, "vad_threshold", 0.5,
                                        "silero VAD: speech probability that starts speech (0-1)."))
        try:
            return make_voice_segmenter(kind, self.sample_rate, **common, **(energy if kind == "energy" else silero))
        except SegmenterError as exc:
            raise SensorError(f"voice activity parameters ({kind} VAD): {exc}") from exc

    # ------------------------------------------------------------ dataset as a live stream
    STREAM_TAIL_S = 0.05  # audio after each utterance's end that belongs to its tick's chunk

    def _init_stream(self, dataset) -> None:
        self.stream_snr_db = float(declare(self, "stream_snr_db", 20.0,
                                           "Speech-to-noise ratio (dB) of the streamed playback."))
        self.stream_noise = declare(self, "stream_noise", "pink", "Background noise: pink | white | none.")
        if self.stream_noise not in ("pink", "white", "none"):
            raise SensorError(f"stream_noise must be pink, white or none, got {self.stream_noise!r}")
        if not np.isfinite(self.stream_snr_db):
            raise SensorError(f"stream_snr_db must be finite, got {self.stream_snr_db}")
        # the tick callback only counts spoken utterances; the stream timer does the rest
        self.playback = PlaybackSource(self, AUDIO, lambda tick: None, dataset)
        self.vad = self._make_vad()
        period = self.playback.clock.period_s
        if period < 0.5:
            raise SensorError(f"stream playback needs period_s >= 0.5 s, got {period}")
        self._chunk_n = int(round(period * self.sample_rate))
        self._chunk_cache: tuple[int, np.ndarray] | None = None
        self._stream_t: float | None = None
        self._noise_rms: float | None = None
        self.create_timer(0.05, self._stream_dataset)

    def _chunk(self, k: int) -> np.ndarray:
        """The stream's audio for tick ``k``: ``period_s`` seconds ending ``STREAM_TAIL_S`` after
        the tick starts, with the tick's utterance (if audio is live) ending at the tick start.
        """
        from crossmodal_ros import sim
        from crossmodal_ros.codecs import loudest_window

        if self._chunk_cache is not None and self._chunk_cache[0] == k:
            return self._chunk_cache[1]
        clock, sr, n = self.playback.clock, self.sample_rate, self._chunk_n
        tail = int(round(self.STREAM_TAIL_S * sr))
        rng = np.random.default_rng([abs(int(self.get_parameter("seed").value)), k % (2**32), 0xA0])
        desc = clock.describe(k)
        noise = None if self.stream_noise == "none" else self.stream_noise
        chunk = None
        if AUDIO in desc.live and desc.t_tick >= clock.schedule_start - 1e-9:
            ds = self.playback.dataset
            clip = resample_audio(sample_for(ds, AUDIO, desc.index), int(ds["sample_rate"]), sr)
            room = n - tail - int(0.15 * sr)  # keep some background before the utterance
            if len(clip) > room:
                a = loudest_window(clip, room)
                clip = clip[a : a + room]
            lead = n - tail - len(clip)
            chunk, _ = sim.continuous_stream([clip], sr, rng, gap_s=(tail / sr, tail / sr), lead_s=lead / sr,
                                             snr_db=None if noise is None else self.stream_snr_db,
                                             noise=noise or "pink")
            if noise is not None and lead > 0:
                self._noise_rms = float(np.sqrt(np.mean(np.square(chunk[:lead], dtype=np.float64))))
        if chunk is None:  # audio off: background only
            chunk = np.zeros(n, np.float32)
            if noise is not None:
                chunk = sim.noise_like(n, noise, rng, sample_rate=sr) * (self._noise_rms or self._default_noise_rms())
        chunk = np.pad(chunk, (0, max(0, n - len(chunk))))[:n].astype(np.float32)
        self._chunk_cache = (k, chunk)
        return chunk

    def _default_noise_rms(self) -> float:
        """Noise level before the first utterance: the dataset's typical speech level at the SNR."""
        ds = self.playback.dataset
        levels = []
        for i in range(min(20, len(ds[AUDIO]))):
            c = sample_for(ds, AUDIO, i)
            if np.any(c):
                levels.append(float(np.sqrt(np.mean(np.square(c[np.abs(c) > 0.05 * np.max(np.abs(c))])))))
        self._noise_rms = (float(np.mean(levels)) if levels else 0.05) * 10.0 ** (-self.stream_snr_db / 20.0)
        return self._noise_rms

    def _stream_dataset(self) -> None:
        """Feed the segmenter the stream samples a real-time microphone would have delivered by now."""
        clock, sr, n = self.playback.clock, self.sample_rate, self._chunk_n
        period, tail = clock.period_s, self.STREAM_TAIL_S
        now = now_s(self)
        if self._stream_t is None:
            k0 = int(np.ceil((clock.schedule_start - clock.tick_origin) / period - 1e-9))
            start = clock.tick_origin + k0 * period - period + tail
            if now < start:
                return
            self._stream_t = start
        if now - self._stream_t > 1.0:  # the executor stalled: skip ahead as a live stream would
            self.dropped_blocks += 1
            self._stream_t = now - 0.05
        while now - self._stream_t > 0.5 / sr:
            k = int(np.floor((self._stream_t - tail - clock.tick_origin) / period + 1e-9)) + 1
            chunk_t0 = clock.tick_origin + k * period - period + tail
            a = min(n - 1, max(0, int(round((self._stream_t - chunk_t0) * sr))))
            take = min(n - a, max(1, int(round((now - self._stream_t) * sr))))
            self._feed(self._chunk(k)[a : a + take])
            self._stream_t = chunk_t0 + (a + take) / sr

    def _open_microphone(self) -> None:
        device = declare(self, "device", "", "sounddevice input device (name or index; empty: default).")
        block_s = declare(self, "block_s", 0.05, "Audio block length (s) of the input stream.")
        sd = import_sounddevice()
        dev = int(device) if device.strip().isdigit() else (device or None)

        def on_block(indata, frames, time_info, status):  # PortAudio thread: only enqueue
            try:
                self._blocks.put_nowait(indata[:, 0].copy())
            except queue.Full:
                self.dropped_blocks += 1

        try:
            self.stream = sd.InputStream(
                samplerate=self.sample_rate, channels=1, dtype="float32", device=dev,
                blocksize=max(1, int(block_s * self.sample_rate)), callback=on_block,
            )
            self.stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError for bad devices
            raise SensorError(f"cannot open microphone {device or '(default)'}: {exc}") from exc

    def _stream_file(self) -> None:
        """Push the file samples that a real-time microphone would have delivered by now."""
        n = len(self._file_stream)
        due = int((time.monotonic() - self._file_t0) * self.sample_rate)
        if not self.loop:
            due = min(due, n)
        while self._file_pos < due:
            a = self._file_pos % n
            take = min(due - self._file_pos, n - a)
            self._enqueue(self._file_stream[a : a + take])
            self._file_pos += take

    def _enqueue(self, block: np.ndarray) -> None:
        try:
            self._blocks.put_nowait(block)
        except queue.Full:
            self.dropped_blocks += 1

    def _drain(self) -> None:
        while True:
            try:
                block = self._blocks.get_nowait()
            except queue.Empty:
                return
            self._feed(block)

    def _feed(self, block: np.ndarray) -> None:
        try:
            utts = self.vad.feed(block)
        except SegmenterError as exc:  # a bad block (NaN, wrong shape) is dropped, never fatal
            self.dropped_blocks += 1
            self.get_logger().warning(f"audio block dropped: {exc}", throttle_duration_sec=5.0)
            return
        for utt in utts:
            self._publish(utt.samples)

    def _publish_sample(self, tick) -> None:
        ds = self.playback.dataset
        wave = sample_for(ds, AUDIO, tick.index)
        self._publish(resample_audio(wave, int(ds["sample_rate"]), self.sample_rate))

    def _publish(self, pcm: np.ndarray) -> None:
        self.publisher.publish(numpy_to_audio(np.clip(pcm, -1.0, 1.0)))
        self.utterances_published += 1

    def destroy_node(self):
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.stop()
            stream.close()
        return super().destroy_node()


def main(args=None) -> int:
    """Console entry ``microphone_node``."""
    return run_node(MicrophoneNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
