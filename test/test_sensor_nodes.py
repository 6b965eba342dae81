# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Sensor nodes: outage schedules, playback timing, segmenters (ROS-free) and the nodes in a graph."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY
from crossmodal_ros.sensors.outages import OutageSchedule, Phase, ScheduleError, demo_schedule, parse_modalities
from crossmodal_ros.sensors.playback import PlaybackClock, SensorError, resample_audio, sample_for
from crossmodal_ros.sensors.segmenters import SegmenterError, StrokeSegmenter, VoiceActivitySegmenter


@pytest.fixture(scope="module")
def digits():
    from crossmodal_ros.data import load_dataset

    return load_dataset("digits", "test")


# ------------------------------------------------------------------ outage schedules
def test_schedule_parsing_and_lookup():
    s = OutageSchedule.parse(["0-10: all", "camera off @ 10-20: microphone, pen", "25-30: pen", "30-40: none"])
    assert s.duration == 40
    assert s.live_at(0) == {IMAGE, AUDIO, TRAJECTORY}
    assert s.live_at(10) == {AUDIO, TRAJECTORY}
    assert s.phase_at(15).label == "camera off"
    assert s.live_at(22) == {IMAGE, AUDIO, TRAJECTORY}  # gap: default all live
    assert s.live_at(27) == {TRAJECTORY}
    assert s.live_at(35) == frozenset()
    assert s.live_at(45) == {IMAGE, AUDIO, TRAJECTORY}  # after the end
    r = OutageSchedule.parse("0-1: pen; 1-2: audio", repeat=True)
    assert r.live_at(3.5) == {AUDIO} and r.live_at(4.2) == {TRAJECTORY}
    # round trip through the string form
    assert OutageSchedule.parse(s.to_strings()).phases == s.phases


@pytest.mark.parametrize(
    "bad", ["0-10 all", "10-5: all", "0-10: camera, sonar", "0-10: all; 5-12: pen"]
)
def test_schedule_rejects_bad_phases(bad):
    with pytest.raises(ScheduleError):
        OutageSchedule.parse(bad)


def test_demo_schedule_order():
    s = demo_schedule(2.0)
    assert [p.live for p in s.phases] == [
        parse_modalities("all"), {AUDIO, TRAJECTORY}, {TRAJECTORY}, {AUDIO}, parse_modalities("all")
    ]
    assert s.duration == 10.0
    with pytest.raises(ScheduleError):
        Phase(3, 1, frozenset())


# ------------------------------------------------------------------ playback clock
def test_playback_clock_agrees_across_sensors_and_follows_schedule():
    sched = OutageSchedule.parse(["0-3: all", "3-6: pen"])
    a = PlaybackClock(50, 0.5, seed=3, schedule=sched, schedule_start=100.0)
    b = PlaybackClock(50, 0.5, seed=3, schedule=sched, schedule_start=100.0)
    ticks_a = [a.poll(100.0 + 0.1 * k) for k in range(60)]
    ticks_a = [t for t in ticks_a if t is not None]
    # one tick per period, each returned once, none replayed
    assert [t.tick for t in ticks_a] == list(range(200, 212))
    # a late poll skips ticks instead of replaying them
    t = b.poll(103.26)
    assert t.tick == 206 and b.poll(103.3) is None
    assert a.describe(206).index == t.index
    assert len({a.index_for_tick(k) for k in range(50)}) == 50  # a permutation
    assert ticks_a[0].live == parse_modalities("all") and ticks_a[7].live == {TRAJECTORY}
    with pytest.raises(SensorError):
        PlaybackClock(0, 1.0)
    with pytest.raises(SensorError):
        PlaybackClock(5, 0.0)


def test_sample_for_shapes(digits):
    i = 3
    frame = sample_for(digits, IMAGE, i)
    assert frame.dtype == np.uint8 and frame.shape == (28, 28)
    np.testing.assert_allclose(frame / 255.0, digits[IMAGE][i, 0], atol=1 / 255)
    big = sample_for(digits, IMAGE, i, frame_size=112)
    assert big.shape == (112, 112)
    wave = sample_for(digits, AUDIO, i)
    assert wave.shape == (int(digits["audio_length"][i]),)
    pts = sample_for(digits, TRAJECTORY, i)
    assert pts.shape == (100, 2)
    np.testing.assert_array_equal(pts[:, 0], digits[TRAJECTORY][i, :100])
    up = resample_audio(wave, int(digits["sample_rate"]), 2 * int(digits["sample_rate"]))
    assert abs(up.shape[0] - 2 * wave.shape[0]) <= 1


# ------------------------------------------------------------------ voice activity
def _padded_speech(digits, rows, rate, noise=5e-4, seed=0):
    """Real FSDD utterances with 1 s of faint noise around and between them.

    Returns the stream and each utterance's speech span (first to last sample above 10 % of its
    peak; FSDD files keep some near-silence at their ends).
    """
    rng = np.random.default_rng(seed)
    parts, truth, t = [], [], 0.0
    for r in rows:
        gap = (rng.standard_normal(rate) * noise).astype(np.float32)
        wave = sample_for(digits, AUDIO, r)
        parts += [gap, wave]
        t += 1.0
        above = np.flatnonzero(np.abs(wave) > 0.1 * np.abs(wave).max())
        truth.append((t + above[0] / rate, t + above[-1] / rate))
        t += wave.shape[0] / rate
    parts.append((rng.standard_normal(rate) * noise).astype(np.float32))
    return np.concatenate(parts), truth


def test_vad_finds_real_utterances_in_padded_audio(digits):
    rate = int(digits["sample_rate"])
    rows = [0, 1, 2, 3]
    stream, truth = _padded_speech(digits, rows, rate)
    vad = VoiceActivitySegmenter(rate, hangover_s=0.3, preroll_s=0.1)
    utts = []
    for k in range(0, stream.shape[0], 333):  # odd chunk size: frames straddle chunks
        utts += vad.feed(stream[k : k + 333])
    utts += vad.flush()
    assert len(utts) == len(rows)
    for u, (on, off) in zip(utts, truth):
        assert on - 0.15 <= u.t_start <= on + 0.1  # pre-roll before the onset
        assert off <= u.t_end <= off + 0.5  # hangover (0.3 s) after the quiet tail
        assert not u.truncated
        assert abs(u.samples.shape[0] / rate - u.duration) < 1e-6


def test_vad_max_length_silence_and_bad_input(digits):
    rate = int(digits["sample_rate"])
    loud = sample_for(digits, AUDIO, 0)
    background = (np.random.default_rng(1).standard_normal(rate // 2) * 5e-4).astype(np.float32)
    speech = np.tile(loud, int(math.ceil(3.0 * rate / loud.shape[0])))  # >= 3 s without a pause
    long_speech = np.concatenate([background, speech])
    vad = VoiceActivitySegmenter(rate, max_utterance_s=1.0, hangover_s=2.0)
    utts = vad.feed(long_speech) + vad.flush()
    assert utts and utts[0].truncated and utts[0].duration <= 1.0 + 1e-6
    quiet = VoiceActivitySegmenter(rate)
    assert quiet.feed(np.zeros(3 * rate, np.float32)) + quiet.flush() == []
    with pytest.raises(SegmenterError):
        quiet.feed(np.array([0.1, np.nan], np.float32))
    with pytest.raises(SegmenterError):
        quiet.feed(np.zeros((10, 2), np.float32))
    with pytest.raises(SegmenterError):
        VoiceActivitySegmenter(rate, min_utterance_s=3.0, max_utterance_s=1.0)


# ------------------------------------------------------------------ pen strokes
def _pen_stream(points, t0=0.0, dt=0.02, z=None):
    return [(t0 + i * dt, x, y, z) for i, (x, y) in enumerate(points)]


def test_stroke_segmenter_splits_by_gap_and_pause(digits):
    pts = sample_for(digits, TRAJECTORY, 5)
    seg = StrokeSegmenter(gap_s=0.1, pause_s=0.5, min_points=5)
    stream = _pen_stream(pts[:60]) + _pen_stream(pts[60:], t0=60 * 0.02 + 0.3)  # pen lifted 0.3 s
    out = []
    for t, x, y, z in stream:
        out += seg.add(t, x, y)
    assert out == []  # still writing
    assert seg.poll(stream[-1][0] + 0.2) == []  # short pause: not yet complete
    (digit,) = seg.poll(stream[-1][0] + 0.6)
    assert digit.n_strokes == 2 and digit.stroke_starts == (0, 60)
    np.testing.assert_allclose(digit.points, pts)
    # the next digit after the pause starts fresh; a height above pen_up_height lifts the pen
    seg2 = StrokeSegmenter(gap_s=0.1, pause_s=0.5, pen_up_height=0.01)
    stream2 = _pen_stream(pts[:30], z=0.0) + _pen_stream(pts[30:40], t0=0.6, z=0.05) + _pen_stream(pts[40:], t0=0.8,
                                                                                                   z=0.0)
    for t, x, y, z in stream2:
        out += seg2.add(t, x, y, z)
    (d2,) = out + seg2.flush()
    assert d2.n_strokes == 2 and len(d2.points) == 90


def test_stroke_segmenter_drops_taps_and_handles_time_jumps():
    seg = StrokeSegmenter(gap_s=0.1, pause_s=0.3, min_points=5)
    for i in range(3):
        seg.add(i * 0.02, i, i)
    assert seg.poll(1.0) == [] and seg.discarded == 1
    for i in range(10):
        seg.add(2.0 + i * 0.02, i, 0)
    seg.add(0.5, 0, 0)  # time went backwards: restart
    assert seg.pending_points == 1
    with pytest.raises(SegmenterError):
        seg.add(3.0, float("nan"), 0.0)
    with pytest.raises(SegmenterError):
        StrokeSegmenter(gap_s=1.0, pause_s=0.5)


# ------------------------------------------------------------------ PortAudio
def test_missing_portaudio_gives_clear_error(monkeypatch):
    import importlib

    from crossmodal_ros.ros import microphone_node

    real_import = importlib.import_module

    def no_portaudio(name, *a, **k):
        if name == "sounddevice":  # what sounddevice does when libportaudio is absent
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **k)

    monkeypatch.setattr(microphone_node.importlib, "import_module", no_portaudio)
    with pytest.raises(SensorError, match="libportaudio2"):
        microphone_node.import_sounddevice()


# ------------------------------------------------------------------ nodes in a graph
@pytest.fixture()
def ros():
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    nodes = []

    class Graph:
        ctx = context

        def add(self, node):
            nodes.append(node)
            executor.add_node(node)
            return node

        def spin_until(self, cond, timeout):
            end = time.monotonic() + timeout
            while time.monotonic() < end and not cond():
                executor.spin_once(timeout_sec=0.02)
            return cond()

    yield Graph()
    for n in nodes:
        executor.remove_node(n)
        n.destroy_node()
    executor.shutdown()
    rclpy.shutdown(context=context)


def _collector(ros, topics):
    from rclpy.node import Node

    node = ros.add(Node("collector", context=ros.ctx))
    got = {t: [] for t in topics}
    for topic, msg_type in topics.items():
        node.create_subscription(msg_type, topic, lambda m, t=topic: got[t].append((time.monotonic(), m)), 50)
    return got


def _params(**kw):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in kw.items()]


@pytest.mark.ros
def test_dataset_playback_nodes_follow_schedule_and_agree(ros, digits):
    from nav_msgs.msg import Path
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray

    from crossmodal_ros.ros.camera_node import CameraNode
    from crossmodal_ros.ros.conversions import audio_to_numpy, image_to_numpy, path_to_numpy
    from crossmodal_ros.ros.microphone_node import MicrophoneNode
    from crossmodal_ros.ros.pen_node import PenNode

    got = _collector(ros, {"camera/image_raw": Image, "audio/chunk": Float32MultiArray, "pen/stroke": Path})
    start = time.time() + 0.3
    common = dict(period_s=0.25, seed=7, schedule_start=start,
                  outage_schedule=["0-1: all", "1-3: pen"])
    cam = ros.add(CameraNode(context=ros.ctx, dataset=digits, parameter_overrides=_params(**common)))
    mic = ros.add(MicrophoneNode(context=ros.ctx, dataset=digits,
                                 parameter_overrides=_params(sample_rate=8000, **common)))
    pen = ros.add(PenNode(context=ros.ctx, dataset=digits, parameter_overrides=_params(**common)))
    ros.spin_until(lambda: time.time() > start + 2.0, 5.0)
    ros.spin_until(lambda: False, 0.2)  # drain
    n_img, n_aud, n_pen = (len(got[t]) for t in ("camera/image_raw", "audio/chunk", "pen/stroke"))
    def playback_time(msg):
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 - start

    # 4 ticks in the all phase, 4 more for the pen only (a tick may be lost on a loaded machine)
    assert 2 <= n_img <= 4 and 2 <= n_aud <= 4 and 6 <= n_pen <= 9, (n_img, n_aud, n_pen)

    assert all(0 <= playback_time(m) < 1.0 + 0.1 for _, m in got["camera/image_raw"])
    assert all(0 <= playback_time(m) < 2.5 for _, m in got["pen/stroke"])
    assert any(playback_time(m) >= 1.0 for _, m in got["pen/stroke"])
    assert cam.playback.skipped >= 3 and mic.playback.skipped >= 3
    # the same tick plays the same dataset row on every sensor
    clock = cam.playback.clock

    def row_of(msg):
        return clock.index_for_tick(clock.tick_at(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    pen_rows = [row_of(m) for _, m in got["pen/stroke"]]
    for _, img in got["camera/image_raw"]:
        row = row_of(img)
        assert row in pen_rows
        np.testing.assert_allclose(image_to_numpy(img) / 255.0, digits[IMAGE][row, 0], atol=1 / 255)
    # the rows the clock plays in the 'all' phase (from the clock itself, so a pen tick lost on a
    # loaded machine does not hide the row its audio twin played)
    all_phase_rows = [clock.index_for_tick(k) for k in range(clock.tick_at(start) - 1, clock.tick_at(start + 1.0) + 2)]
    for _, aud in got["audio/chunk"]:  # audio has no header: it must be one of the phase's samples
        pcm = audio_to_numpy(aud)
        assert any(
            pcm.shape == sample_for(digits, AUDIO, r).shape
            and np.allclose(pcm, sample_for(digits, AUDIO, r), atol=1e-6) for r in all_phase_rows
        )
    for (_, path), row in zip(got["pen/stroke"], pen_rows):
        np.testing.assert_allclose(path_to_numpy(path), sample_for(digits, TRAJECTORY, row), atol=1e-6)
    assert n_pen <= pen.digits_published <= n_pen + 1  # the last one may still be in flight


@pytest.mark.ros
def test_camera_node_captures_a_video_file(ros, tmp_path, digits):
    import cv2
    from sensor_msgs.msg import Image

    from crossmodal_ros.ros.camera_node import CameraNode
    from crossmodal_ros.ros.conversions import image_to_numpy

    path = str(tmp_path / "digits.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        frame = cv2.resize(sample_for(digits, IMAGE, i), (64, 48))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    got = _collector(ros, {"camera/image_raw": Image})
    ros.add(CameraNode(context=ros.ctx, parameter_overrides=_params(source=path, rate_hz=30.0, encoding="rgb8")))
    assert ros.spin_until(lambda: len(got["camera/image_raw"]) >= 8, 5.0)  # more than 5: it loops
    arr = image_to_numpy(got["camera/image_raw"][0][1])
    assert arr.shape == (48, 64, 3) and arr.dtype == np.uint8
    expect = cv2.resize(sample_for(digits, IMAGE, 0), (64, 48)).astype(float)
    assert np.abs(arr.mean(axis=2) - expect).mean() < 12  # JPEG-compressed copy of the frame
    with pytest.raises(SensorError, match="could not be opened"):
        CameraNode("cam2", context=ros.ctx, parameter_overrides=_params(source=str(tmp_path / "none.avi")))


@pytest.mark.ros
def test_microphone_node_segments_a_wav_file(ros, tmp_path, digits):
    import soundfile
    from std_msgs.msg import Float32MultiArray

    from crossmodal_ros.ros.conversions import audio_to_numpy
    from crossmodal_ros.ros.microphone_node import MicrophoneNode

    rate = int(digits["sample_rate"])
    stream, truth = _padded_speech(digits, [4], rate)
    stream = stream[: int(0.4 * rate) + (stream.shape[0] - rate)]  # 0.4 s of silence before
    wav = tmp_path / "utterance.wav"
    soundfile.write(str(wav), stream, rate)
    got = _collector(ros, {"audio/chunk": Float32MultiArray})
    mic = ros.add(MicrophoneNode(context=ros.ctx, parameter_overrides=_params(
        source=str(wav), sample_rate=16000, loop=False, file_gap_s=0.0, vad="energy")))
    assert ros.spin_until(lambda: len(got["audio/chunk"]) >= 1, 5.0)
    pcm = audio_to_numpy(got["audio/chunk"][0][1])
    speech_s = truth[0][1] - truth[0][0]
    assert speech_s <= pcm.shape[0] / 16000 <= speech_s + 0.5  # at 16 kHz, with pre-roll + hangover
    assert mic.utterances_published == 1


def test_microphone_device_without_portaudio(ros):
    from crossmodal_ros.ros.microphone_node import MicrophoneNode

    try:
        import sounddevice  # noqa: F401
    except OSError:
        with pytest.raises(SensorError, match="libportaudio2"):
            MicrophoneNode(context=ros.ctx, parameter_overrides=_params(source="microphone"))
    else:
        pytest.skip("PortAudio is installed here; the missing-library path is covered above")


def test_pen_node_segments_point_stream(ros, digits):
    from geometry_msgs.msg import PointStamped
    from nav_msgs.msg import Path
    from rclpy.node import Node

    from crossmodal_ros.ros.conversions import path_to_numpy, seconds_to_stamp
    from crossmodal_ros.ros.pen_node import PenNode

    got = _collector(ros, {"pen/stroke": Path})
    pen = ros.add(PenNode(context=ros.ctx, parameter_overrides=_params(
        source="topic", gap_s=0.1, pause_s=0.3, pen_up_height=0.01)))
    src = ros.add(Node("pen_source", context=ros.ctx))
    pub = src.create_publisher(PointStamped, "pen/position", 100)
    ros.spin_until(lambda: pub.get_subscription_count() > 0, 3.0)
    pts = sample_for(digits, TRAJECTORY, 2)
    t0 = None
    for i, (x, y) in enumerate(pts):
        msg = PointStamped()
        now = time.time()  # stamped on the clock the node measures the pause with
        t0 = now if t0 is None else t0
        msg.header.stamp = seconds_to_stamp(now)
        msg.point.x, msg.point.y = float(x), float(y)
        msg.point.z = 0.05 if 48 <= i < 52 else 0.0  # lifted for 4 samples: two strokes
        pub.publish(msg)
        ros.spin_until(lambda: False, 0.001)
    assert ros.spin_until(lambda: len(got["pen/stroke"]) >= 1, 3.0)
    points, stamps = path_to_numpy(got["pen/stroke"][0][1], with_stamps=True)
    np.testing.assert_allclose(points, np.concatenate([pts[:48], pts[52:]]), atol=1e-9)
    assert np.all(np.diff(stamps) > 0) and abs(stamps[0] - t0) < 1e-6
    assert pen.digits_published == 1 and pen.invalid_positions == 0
