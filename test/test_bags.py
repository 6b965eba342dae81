"""Bags: export a dataset split, read it back with the independent mcap reader, replay it into a
live subscriber with /clock, build a training dataset from it, and evaluate it offline."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY
from crossmodal_ros.ros.bag_export import TOPICS, TRUTH_TOPIC, BagError, export_bag
from crossmodal_ros.ros.outages import OutageSchedule
from crossmodal_ros.ros.playback import resample_audio, sample_for

COUNT = 10
PERIOD = 0.5
START = 1000.0


@pytest.fixture(scope="module")
def digits():
    from crossmodal_ros.data import load_dataset

    return load_dataset("digits", "test")


@pytest.fixture(scope="module")
def bag(tmp_path_factory, digits):
    """10 samples, 0.5 s apart: all sensors for 2.5 s, then the pen only."""
    path = tmp_path_factory.mktemp("bags") / "digits_test"
    schedule = OutageSchedule.parse("0-2.5: all; 2.5-5: pen")
    summary = export_bag(digits, path, count=COUNT, period=PERIOD, start_time=START,
                         schedule=schedule, sample_rate=16000, seed=1)
    return path, summary


def test_export_counts_and_refuses_overwrite(bag, digits):
    path, summary = bag
    assert summary.counts == {"/camera/image_raw": 5, "/audio/chunk": 5, "/pen/stroke": 10, TRUTH_TOPIC: 10}
    assert summary.start_ns == int(START * 1e9)
    with pytest.raises(BagError, match="exists"):
        export_bag(digits, path, count=2)


def test_mcap_reader_cross_check(bag, digits):
    """The independent mcap + mcap_ros2 reader sees the same topics, counts, stamps and data."""
    from mcap_ros2.reader import read_ros2_messages

    path, summary = bag
    (mcap_file,) = list(path.glob("*.mcap"))
    msgs = list(read_ros2_messages(str(mcap_file)))
    assert len(msgs) == sum(summary.counts.values())
    by_topic: dict = {}
    for m in msgs:
        by_topic.setdefault(m.channel.topic, []).append(m)
    assert {t: len(v) for t, v in by_topic.items()} == summary.counts
    assert {m.schema.name for m in msgs} == {mt for _, mt in TOPICS.values()} | {"std_msgs/msg/Int32"}
    truth = [m.ros_msg.data for m in by_topic[TRUTH_TOPIC]]
    assert truth == [int(digits["label"][i]) for i in summary.indices]
    for k, m in enumerate(by_topic["/camera/image_raw"]):
        img = m.ros_msg
        assert (img.encoding, img.height, img.width) == ("mono8", 28, 28)
        stamp_ns = img.header.stamp.sec * 10**9 + img.header.stamp.nanosec
        assert stamp_ns == m.log_time_ns == int(round((START + k * PERIOD) * 1e9))  # header = bag time
        pixels = np.frombuffer(bytes(img.data), np.uint8).reshape(28, 28)
        np.testing.assert_array_equal(pixels, sample_for(digits, IMAGE, summary.indices[k]))
    k = 2
    pcm = np.asarray(by_topic["/audio/chunk"][k].ros_msg.data, np.float32)
    expect = resample_audio(sample_for(digits, AUDIO, summary.indices[k]), int(digits["sample_rate"]), 16000)
    np.testing.assert_allclose(pcm, expect, atol=1e-6)
    path_msg = by_topic["/pen/stroke"][7].ros_msg
    pts = np.array([[p.pose.position.x, p.pose.position.y] for p in path_msg.poses])
    np.testing.assert_allclose(pts, sample_for(digits, TRAJECTORY, summary.indices[7]), atol=1e-6)


def test_replay_into_subscriber_with_clock(bag):
    import rclpy
    from nav_msgs.msg import Path
    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray, Int32

    from crossmodal_ros.ros.bag_player import BagPlayer

    path, summary = bag
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    try:
        sub = rclpy.create_node("bag_listener", context=ctx)
        pub_node = rclpy.create_node("bag_player", context=ctx)
        executor.add_node(sub)
        got = {t: [] for t in summary.counts}
        clock = []
        types = {"/camera/image_raw": Image, "/audio/chunk": Float32MultiArray, "/pen/stroke": Path,
                 TRUTH_TOPIC: Int32}
        for topic, mt in types.items():
            sub.create_subscription(mt, topic, lambda m, t=topic: got[t].append(m), 50)
        sub.create_subscription(Clock, "/clock", lambda m: clock.append(m.clock.sec + m.clock.nanosec * 1e-9), 50)
        player = BagPlayer(pub_node, path, rate=4.0, clock_hz=50.0)
        end = time.monotonic() + 3.0
        while time.monotonic() < end and not all(p.get_subscription_count() for p in player.publishers.values()):
            executor.spin_once(timeout_sec=0.02)
        t0 = time.monotonic()
        thread = threading.Thread(target=player.play)
        thread.start()
        while thread.is_alive() or time.monotonic() < t0 + 0.3:
            executor.spin_once(timeout_sec=0.02)
            if time.monotonic() > t0 + 10:
                player.stop()
        thread.join()
        wall = time.monotonic() - t0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and (
                sum(map(len, got.values())) < sum(summary.counts.values())
                or not clock or clock[-1] < summary.end_ns * 1e-9 - 1e-6):
            executor.spin_once(timeout_sec=0.02)
        assert {t: len(v) for t, v in got.items()} == summary.counts
        assert player.published == summary.counts
        # 4.5 s of bag time at rate 4 takes about 1.1 s of wall time
        assert 0.9 < wall < 3.0
        assert clock and clock[0] == pytest.approx(START) and clock == sorted(clock)
        assert clock[-1] == pytest.approx(summary.end_ns * 1e-9, abs=1e-6)
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in got["/pen/stroke"]]
        assert stamps == pytest.approx([START + k * PERIOD + 0.008 for k in range(COUNT)])
        pub_node.destroy_node()
        sub.destroy_node()
    finally:
        executor.shutdown()
        rclpy.shutdown(context=ctx)
    with pytest.raises(BagError, match="does not exist"):
        from crossmodal_ros.ros.bag_player import open_bag

        open_bag(path.parent / "nope")


def test_bag_dataset_schema(bag, digits):
    from crossmodal_ros.data import load_dataset

    path, summary = bag
    ds = load_dataset(f"bag:{path}", "all")
    assert len(ds["label"]) == 5 and ds["skipped"] == 5  # the pen-only samples are incomplete
    assert ds[IMAGE].shape == (5, 1, 28, 28) and ds[IMAGE].dtype == np.float32
    assert ds[TRAJECTORY].shape == (5, 200) and 0 <= ds[TRAJECTORY].min() and ds[TRAJECTORY].max() <= 1
    assert ds["sample_rate"] == 16000 and ds[AUDIO].shape[0] == 5
    np.testing.assert_array_equal(ds["label"], digits["label"][summary.indices[:5]])
    k = 1
    n = int(ds["audio_length"][k])
    expect = resample_audio(sample_for(digits, AUDIO, summary.indices[k]), int(digits["sample_rate"]), 16000)
    np.testing.assert_allclose(ds[AUDIO][k, :n], expect, atol=1e-6)
    assert abs(ds[IMAGE][k, 0] - digits[IMAGE][summary.indices[k], 0]).mean() < 0.1
    from crossmodal_ros.data import DatasetError

    with pytest.raises(DatasetError):
        load_dataset(f"bag:{path}", "bogus")


def test_offline_evaluation_over_bag_time(bag, tmp_path_factory):
    """The node's fusion rules over bag time: one settled fusion per sample, subsets as exported."""
    import torch

    from crossmodal_ros.checkpoint import save_checkpoint
    from crossmodal_ros.codecs import codecs_to_dict, default_codecs
    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.models import build_model
    from crossmodal_ros.ros.bag_eval import FusionSettings, evaluate_bag

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "untrained.pt", build_model("nexus"),
                           codecs_to_dict(default_codecs()), half=True)
    engine = FusionEngine.from_checkpoint(str(ckpt), device="cpu")
    path, summary = bag
    # staleness 0.4 s < period 0.5 s: each fusion holds one sample's inputs
    settings = FusionSettings(max_rate_hz=20.0, heartbeat_hz=5.0,
                              staleness={"image": 0.4, "audio": 0.4, "trajectory": 0.4, "label": 0.0})
    report = evaluate_bag(path, engine, settings)
    assert report.inputs == {"image": 5, "audio": 5, "trajectory": 10}
    # the staggered sensors (0/4/8 ms) of a sample: the image fuses at once, audio and pen are
    # coalesced into the next fusion (50 ms later); each sample settles on everything exported
    assert report.per_subset["image"] == {"outputs": 5, "samples": 0, "correct": 0, "accuracy": pytest.approx(float("nan"), nan_ok=True)}
    assert report.per_subset["image+audio+trajectory"]["samples"] == 5
    assert report.per_subset["trajectory"]["samples"] == 5
    assert sum(v["samples"] for v in report.per_subset.values()) == COUNT
    assert report.prompt_outputs == 15
    # heartbeats every 0.2 s while an input is live (0.4 s): one per sample
    assert report.heartbeat_outputs == 10
    assert report.outputs == 25 and report.output_rate_hz == pytest.approx(25 / report.duration_s)
    assert 0.0 <= report.accuracy <= 1.0 and "image+audio+trajectory" in report.table()
