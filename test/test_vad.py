# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Voice activity segmenters (energy and silero-vad): utterances at known positions in synthetic
live streams, parameter validation, determinism, and the microphone node's ``vad`` parameter.
"""
from __future__ import annotations

import numpy as np
import pytest

from crossmodal_ros import sim
from crossmodal_ros.sensors.playback import resample_audio, sample_for
from crossmodal_ros.sensors.segmenters import (
    SegmenterError,
    SileroVADSegmenter,
    VoiceActivitySegmenter,
    make_voice_segmenter,
    segment_stream,
)

pytestmark = [pytest.mark.slow]

RATE = 16000


@pytest.fixture(scope="module")
def clips():
    from crossmodal_ros.data import load_dataset

    d = load_dataset("digits", "test")
    return [resample_audio(sample_for(d, "audio", i), int(d["sample_rate"]), RATE) for i in range(6)]


def _stream(clips, snr_db, noise="pink", rate=RATE, seed=3):
    rng = np.random.default_rng(seed)
    stream, spans = sim.continuous_stream(clips, RATE, rng, snr_db=snr_db, noise=noise)
    if rate != RATE:
        stream = resample_audio(stream, RATE, rate)
        spans = [(a * rate // RATE, b * rate // RATE) for a, b in spans]
    return stream, spans


def _check_found(segments, spans, rate):
    assert len(segments) == len(spans), [(round(a, 2), round(b, 2)) for a, b, _ in segments]
    for (a, b, pcm), (s0, s1) in zip(segments, spans):
        t0, t1 = s0 / rate, s1 / rate
        overlap = min(b, t1) - max(a, t0)
        assert overlap >= 0.5 * (t1 - t0), ((a, b), (t0, t1))
        assert t0 - 0.25 <= a <= t0 + 0.2 and b <= t1 + 0.8 and b - a <= 2.0 + 1e-6
        assert abs(len(pcm) / rate - (b - a)) < 1e-6


@pytest.mark.parametrize("vad", ["energy", "silero"])
def test_clean_stream_utterances_at_known_positions(clips, vad):
    stream, spans = _stream(clips, None)
    _check_found(segment_stream(stream, RATE, vad), spans, RATE)


@pytest.mark.parametrize("rate", [8000, 22050])
def test_silero_at_other_rates(clips, rate):
    stream, spans = _stream(clips, 20, rate=rate)
    _check_found(segment_stream(stream, rate, "silero"), spans, rate)


def test_silero_beats_energy_in_noise(clips):
    stream, spans = _stream(clips, 10, noise="white")
    _check_found(segment_stream(stream, RATE, "silero"), spans, RATE)
    assert len(segment_stream(stream, RATE, "energy")) < len(spans)  # energy loses some at 10 dB white


def test_deterministic_and_chunking_independent(clips):
    stream, _ = _stream(clips, 20)
    a = segment_stream(stream, RATE, "silero")
    b = segment_stream(stream, RATE, "silero", block_s=0.0213)
    assert [(x, y) for x, y, _ in a] == [(x, y) for x, y, _ in b]
    for (_, _, p), (_, _, q) in zip(a, b):
        np.testing.assert_array_equal(p, q)
    seg = SileroVADSegmenter(RATE)
    first = seg.feed(stream) + seg.flush()
    seg.reset()
    again = seg.feed(stream) + seg.flush()
    assert [(u.t_start, u.t_end) for u in first] == [(u.t_start, u.t_end) for u in again] == [(x, y) for x, y, _ in a]


def test_silence_and_validation():
    assert segment_stream(np.zeros(3 * RATE, np.float32), RATE, "silero") == []
    with pytest.raises(SegmenterError, match="vad must be one of"):
        segment_stream(np.zeros(10, np.float32), RATE, "webrtc")
    with pytest.raises(SegmenterError, match="no parameter"):
        make_voice_segmenter("energy", RATE, threshold=0.5)
    for bad in (dict(threshold=0.0), dict(threshold=1.5), dict(threshold=0.5, neg_threshold=0.7),
                dict(hangover_s=-1.0), dict(min_utterance_s=3.0, max_utterance_s=1.0),
                dict(max_utterance_s=float("nan"))):
        with pytest.raises(SegmenterError):
            SileroVADSegmenter(RATE, **bad)
    with pytest.raises(SegmenterError):
        SileroVADSegmenter(500)
    with pytest.raises(SegmenterError):
        VoiceActivitySegmenter(RATE, margin_db=float("inf"))
    seg = SileroVADSegmenter(8000)
    assert seg.frame == 256 and seg.model_rate == 8000
    with pytest.raises(SegmenterError):
        seg.feed(np.array([0.0, np.nan], np.float32))
    with pytest.raises(SegmenterError):
        seg.feed(np.zeros(10, np.int16))


def test_loading_silero_keeps_torch_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        SileroVADSegmenter(RATE)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)




def test_continuous_stream_equal_levels_puts_every_utterance_at_the_snr():
    t = np.arange(4000) / RATE
    loud = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    quiet = (0.005 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)   # 40 dB quieter

    def levels(equal):
        stream, spans = sim.continuous_stream([loud, quiet], RATE, np.random.default_rng(0), snr_db=None,
                                              equal_levels=equal)
        return [float(np.sqrt(np.mean(np.square(stream[a:b])))) for a, b in spans]

    a, b = levels(False)
    assert a / b == pytest.approx(100.0, rel=1e-3)
    a, b = levels(True)
    assert a / b == pytest.approx(1.0, rel=0.02)  # equal by the speech-level measure (samples above 5 % of peak)
    mean_level = np.mean([0.5, 0.005]) / np.sqrt(2)
    assert a == pytest.approx(mean_level, rel=0.05)  # overall loudness kept: the mean level
