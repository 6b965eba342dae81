"""Microphone node: publishes utterance windows on ``audio/chunk`` (std_msgs/Float32MultiArray).

Every message is one utterance of mono float32 PCM in [-1, 1] at the ``sample_rate`` parameter
(shared with the inference node; the rate is not carried in the message).

Sources (parameter ``source``):

* ``microphone``: a sounddevice input stream (``device``: name or index, empty = default) cut
  into utterances by the energy-based :class:`~crossmodal_ros.ros.segmenters.VoiceActivitySegmenter`
  (``vad_*`` parameters: margin over the noise floor, hangover, pre-roll, maximum length);
* a WAV/FLAC file, a directory of them or a glob: streamed in real time through the same
  segmenter (``loop`` repeats them), so recordings behave like a live microphone;
* ``dataset``: playback of the embedded FSDD waveforms, one per ``period_s`` following
  ``outage_schedule``, resampled to ``sample_rate``.

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

from crossmodal_ros.modalities import AUDIO
from crossmodal_ros.ros.conversions import numpy_to_audio
from crossmodal_ros.ros.playback import SensorError, resample_audio, sample_for
from crossmodal_ros.ros.segmenters import SegmenterError, VoiceActivitySegmenter
from crossmodal_ros.ros.sensor_base import PlaybackSource, declare, publisher_qos, run_node

__all__ = ["MicrophoneNode", "import_sounddevice", "read_audio_files", "main"]

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

    def __init__(self, node_name: str = "microphone_node", *, dataset: dict | None = None, **kwargs):
        super().__init__(node_name, **kwargs)
        self.source = declare(self, "source", "dataset",
                              "'dataset', 'microphone', or a WAV/FLAC file, directory or glob.")
        self.sample_rate = declare(self, "sample_rate", 16000,
                                   "Sample rate (Hz) of the published PCM; the inference node must match it.")
        if not 1000 <= self.sample_rate <= 384000:
            raise SensorError(f"sample_rate must be in [1000, 384000] Hz, got {self.sample_rate}")
        qos = publisher_qos(self)
        self.publisher = self.create_publisher(Float32MultiArray, "audio/chunk", qos)
        self.utterances_published = 0
        self.dropped_blocks = 0
        self.stream = None
        self.playback: PlaybackSource | None = None
        if self.source == "dataset":
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

    def _make_vad(self) -> VoiceActivitySegmenter:
        try:
            return VoiceActivitySegmenter(
                self.sample_rate,
                margin_db=declare(self, "vad_margin_db", 12.0, "Speech threshold over the noise floor (dB)."),
                min_threshold_db=declare(self, "vad_min_threshold_db", -55.0, "Lowest speech threshold (dBFS RMS)."),
                min_speech_s=declare(self, "vad_min_speech_s", 0.06, "Loud time (s) that starts an utterance."),
                hangover_s=declare(self, "vad_hangover_s", 0.3, "Quiet time (s) that ends an utterance."),
                preroll_s=declare(self, "vad_preroll_s", 0.1, "Audio (s) kept before the onset."),
                min_utterance_s=declare(self, "vad_min_utterance_s", 0.15, "Shorter utterances are dropped (s)."),
                max_utterance_s=declare(self, "vad_max_utterance_s", 2.0, "Utterances are cut at this length (s)."),
            )
        except SegmenterError as exc:
            raise SensorError(f"voice activity parameters: {exc}") from exc

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
            for utt in self.vad.feed(block):
                self._publish(utt.samples)

    def _publish_sample(self, tick) -> None:
        ds = self.playback.dataset
        wave = sample_for(ds, AUDIO, tick.index)
        self._publish(resample_audio(wave, int(ds["sample_rate"]), self.sample_rate))

    def _publish(self, pcm: np.ndarray) -> None:
        self.publisher.publish(numpy_to_audio(np.clip(pcm, -1.0, 1.0)))
        self.utterances_published += 1

    def destroy_node(self):
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
            self.stream = None
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(MicrophoneNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
