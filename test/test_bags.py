# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Bags: export a dataset split, read it back with the independent mcap reader, replay it into a
live subscriber with /clock, build a training dataset from it, and evaluate it offline.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from crossmodal_ros.bags.format import TOPICS, TRUTH_TOPIC, BagError
from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY
from crossmodal_ros.ros.bag_export import export_bag
from crossmodal_ros.sensors.outages import OutageSchedule
from crossmodal_ros.sensors.playback import resample_audio, sample_for

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
        from crossmodal_ros.bags.format import open_bag

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


@pytest.mark.slow
def test_offline_evaluation_over_bag_time(bag, tmp_path_factory):
    """The node's fusion rules over bag time: one settled fusion per sample, subsets as exported."""
    import torch

    from crossmodal_ros.checkpoint import save_checkpoint
    from crossmodal_ros.codecs import codecs_to_dict, default_codecs
    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.models import build_model
    from crossmodal_ros.bags.evaluate import FusionSettings, evaluate_bag

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
    assert report.per_subset["image"] == {"outputs": 5, "samples": 0, "correct": 0, "accuracy": None}
    assert report.per_subset["image+audio+trajectory"]["samples"] == 5
    assert report.per_subset["trajectory"]["samples"] == 5
    assert sum(v["samples"] for v in report.per_subset.values()) == COUNT
    assert report.prompt_outputs == 15
    # heartbeats 0.2 s after the last fusion while an input is live (0.4 s): one per sample (the
    # next would be due as the inputs expire: 0.45 s after the all-sensor samples, 0.4 s after a stroke)
    assert report.heartbeat_outputs == 10
    assert report.outputs == 25 and report.output_rate_hz == pytest.approx(25 / report.duration_s)
    assert 0.0 <= report.accuracy <= 1.0 and "image+audio+trajectory" in report.table()
    # a subset with outputs but no settled sample: "-" in the table, null in the JSON, never nan
    table = report.table()
    assert "nan" not in table.lower()
    assert [ln.split() for ln in table.splitlines() if ln.startswith("image ")] == [["image", "5", "0", "-"]]
    import json

    json.dumps(report.as_dict(), allow_nan=False)  # strict JSON


@pytest.fixture(scope="module")
def slow_bag(tmp_path_factory, digits):
    """8 samples 1 s apart (the replay profile's period): all sensors, then the pen only."""
    path = tmp_path_factory.mktemp("bags") / "digits_slow"
    schedule = OutageSchedule.parse("0-4: all; 4-8: pen")
    summary = export_bag(digits, path, count=8, period=1.0, start_time=START,
                         schedule=schedule, sample_rate=16000, seed=2)
    return path, summary, schedule


def test_replay_reaches_an_active_node_without_loss_and_outputs_stop(slow_bag, untrained_checkpoint):
    """bag_player waits for the node's subscriptions: every message of the bag reaches the
    active node (none lost to discovery), every one is fused, the stamped latent's stamp and
    fused set match the inputs, the outputs stop within 2 s after the bag ends (stalled
    /clock), and the number of fused samples agrees with bag_eval over the same bag.
    """
    import hashlib

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.bags.evaluate import FusionSettings, evaluate_bag
    from crossmodal_ros.ros.bag_player import BagPlayer
    from crossmodal_ros.ros.conversions import latent_from_stamped
    from crossmodal_ros.ros.nexus_node import make_node

    path, summary, schedule = slow_bag
    staleness = {"image": 0.9, "audio": 0.9, "trajectory": 0.9, "label": 0.0}
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    got = []  # (wall time, message)
    try:
        nexus = make_node("nexus", context=ctx, checkpoint=untrained_checkpoint, device="cpu",
                          use_sim_time=True, qos_reliability="reliable", qos_depth=10,
                          staleness=staleness, max_rate_hz=20.0, heartbeat_hz=5.0,
                          clock_timeout_s=1.0)
        assert nexus.lifecycle_state == "active"
        listener = rclpy.create_node("latent_listener", context=ctx)
        listener.create_subscription(
            JointState, "/nexus/latent_stamped", lambda m: got.append((time.monotonic(), m)),
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        player_node = rclpy.create_node("bag_player", context=ctx)
        for n in (nexus, listener):
            executor.add_node(n)
        player = BagPlayer(player_node, path, rate=1.0, clock_hz=100.0)
        assert player.default_wait_topics() == sorted(TOPICS)  # not the ground truth
        waiter = threading.Thread(target=lambda: setattr(player, "missing", player.wait_for_subscribers(timeout=10.0)))
        waiter.start()
        while waiter.is_alive():
            executor.spin_once(timeout_sec=0.02)
        assert player.missing == []
        thread = threading.Thread(target=player.play)
        thread.start()
        while thread.is_alive():
            executor.spin_once(timeout_sec=0.02)
        bag_done = time.monotonic()
        while time.monotonic() < bag_done + 3.0:
            executor.spin_once(timeout_sec=0.02)
        counts = {m: summary.counts[t] for t, (m, _) in TOPICS.items()}
        assert {m: nexus.received[m] for m in counts} == counts, "messages lost"
        acc = nexus.accounting()
        # every message fused, or (on a machine so loaded that two arrive within one fusion
        # period) replaced by a newer one first: none unaccounted
        assert all(acc[m]["unaccounted"] == 0 and acc[m]["fused"] + acc[m]["superseded"] == counts[m]
                   for m in counts), acc
        assert nexus.clock_stalled
        assert got, "no stamped latent"
        assert got[-1][0] - bag_done < 2.0, f"outputs went on {got[-1][0] - bag_done:.1f} s after the bag"
        # stamps and fused sets match the inputs: sample k's sensors are stamped t_k + stagger
        sha = hashlib.sha256(Path(untrained_checkpoint).read_bytes()).hexdigest()
        stagger = {"image": 0.0, "audio": 0.004, "trajectory": 0.008}
        inputs = {m: [START + j + stagger[m] for j in range(8) if m in schedule.live_at(j)]
                  for m in stagger}
        ticks = set()
        for _, msg in got:
            lat = latent_from_stamped(msg)
            assert lat.model == {"kind": "nexus", "checkpoint_sha256": sha}
            assert lat.mu.shape == lat.logvar.shape == (32,)
            assert lat.fused
            # every fused modality had an input stamped at most its staleness (+ a margin for
            # a loaded machine) before the output's stamp; the stamp is the newest fused header
            # stamp exactly (audio has no header: its stamp is its arrival on the node's clock)
            cands = {m: [t for t in inputs[m] if t <= lat.stamp_s + 0.05 and lat.stamp_s - t < 1.4]
                     for m in lat.fused}
            assert all(cands.values()), (lat.stamp_s, lat.fused)
            # a fused header never postdates the output's stamp; under load the newest input
            # of a modality may arrive after the fusion, so it is not necessarily the fused one
            headed = []
            for m in lat.fused:
                if m != "audio":
                    before = [t for t in cands[m] if t <= lat.stamp_s + 1e-6]
                    assert before, (lat.stamp_s, m, cands[m])
                    headed.append(max(before))
            if "audio" in lat.fused:
                assert lat.stamp_s >= max(headed, default=START) - 1e-6, (lat.stamp_s, lat.fused)
            else:
                assert lat.stamp_s == pytest.approx(max(headed), abs=1e-6), (lat.stamp_s, lat.fused)
            ticks.add(int(np.floor(lat.stamp_s - START + 1e-6)))
        full = {int(np.floor(latent_from_stamped(m).stamp_s - START + 1e-6)) for _, m in got
                if set(latent_from_stamped(m).fused) == {"image", "audio", "trajectory"}}
        assert full == {0, 1, 2, 3}  # the four all-sensor samples each settled on all three
        # the same number of fused samples as bag_eval over the same bag
        engine = FusionEngine.from_checkpoint(untrained_checkpoint, device="cpu")
        report = evaluate_bag(path, engine, FusionSettings(20.0, 5.0, staleness))
        assert len(ticks) == report.samples == 8
        for n in (nexus, listener, player_node):
            n.destroy_node()
    finally:
        executor.shutdown()
        rclpy.shutdown(context=ctx)


def test_player_reports_missing_subscribers_and_starts_paused(slow_bag):
    import rclpy

    from crossmodal_ros.ros.bag_player import BagPlayer

    path, summary, _ = slow_bag
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("bag_player_alone", context=ctx)
        player = BagPlayer(node, path, rate=1.0)
        t0 = time.monotonic()
        assert player.wait_for_subscribers(timeout=0.3) == sorted(TOPICS)
        assert time.monotonic() - t0 < 2.0
        with pytest.raises(BagError, match="not played"):
            player.wait_for_subscribers(["/nope"], timeout=0.1)
        # paused: /clock stands at the bag start and nothing is published until resume()
        player.pause()
        thread = threading.Thread(target=player.play)
        thread.start()
        time.sleep(0.5)
        assert player.paused and sum(player.published.values()) == 0
        player.stop()
        thread.join(timeout=5.0)
        assert not thread.is_alive()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


@pytest.mark.slow
def test_bag_eval_backend_option(bag, tmp_path):
    """``bag_eval --backend``: the ONNX path decides and scores like the fast path (equal within
    float rounding); bad settings are a usage error (exit 2), not a traceback.
    """
    import json

    pytest.importorskip("onnxruntime")
    from crossmodal_ros.bags.evaluate import main

    path, _ = bag
    reports = {}
    for backend in ("fast", "onnx"):
        out = tmp_path / f"{backend}.json"
        assert main([str(path), "--backend", backend, "--device", "cpu", "--json", str(out)]) == 0
        reports[backend] = json.loads(out.read_text())
    assert reports["onnx"]["per_subset"] == reports["fast"]["per_subset"]
    assert reports["onnx"]["outputs"] == reports["fast"]["outputs"] > 0
    assert reports["fast"]["inference_path"] == "fast" and reports["onnx"]["inference_path"] == "onnx"
    # the default is the node's: int8_auto, with the path it became on this machine in the report
    from crossmodal_ros.models.fast import int8_preferred

    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main([str(path), "--device", "cpu", "--json", str(tmp_path / "default.json")]) == 0
        assert torch.get_num_threads() == 1  # one thread by default, as the node's num_threads
    finally:
        torch.set_num_threads(before)
    default = json.loads((tmp_path / "default.json").read_text())
    assert default["inference_path"] == ("fast-int8" if int8_preferred() else "fast")
    assert default["outputs"] == reports["fast"]["outputs"]  # the same scheduler decisions
    with pytest.raises(SystemExit) as exc:
        main([str(path), "--backend", "onnx", "--device", "cpu", "--max-rate-hz", "-1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([str(path), "--device", "cpu", "--threads", "-1"])
    assert exc.value.code == 2


def _renamed_copy(src, dst, rename: dict):
    """A copy of bag ``src`` at ``dst`` with its topics renamed (``rename``: old -> new), as a
    robot's recording of its own drivers would name them: the same messages, byte for byte.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    from crossmodal_ros.bags.format import open_bag, typestore

    ts = typestore()
    reader = open_bag(src)
    writer = Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        conns = {c.id: writer.add_connection(rename.get(c.topic, c.topic), c.msgtype, typestore=ts)
                 for c in reader.connections}
        for c, stamp_ns, raw in reader.messages():
            writer.write(conns[c.id], stamp_ns, raw)
    finally:
        writer.close()
        reader.close()


def test_bag_eval_reads_a_bag_under_other_topic_names(bag, tmp_path, capsys):
    """A bag recorded from a robot's drivers: ``bag_eval --camera-topic ... --truth-topic ...``
    scores it exactly as the same messages under the package's names; without the options the
    error names the bag's topics and the options (exit 2).
    """
    import json

    from crossmodal_ros.bags.evaluate import main
    from crossmodal_ros.bags.reader import bag_topics

    path, _ = bag
    rename = {"/camera/image_raw": "/robot/camera/color/image_raw", "/audio/chunk": "/robot/utterances",
              "/pen/stroke": "/arm/stroke", TRUTH_TOPIC: "/experiment/digit"}
    robot = tmp_path / "robot_bag"
    _renamed_copy(path, robot, rename)
    ref, got = tmp_path / "ref.json", tmp_path / "got.json"
    assert main([str(path), "--device", "cpu", "--json", str(ref)]) == 0
    assert main([str(robot), "--device", "cpu", "--json", str(got), "--camera-topic", "/robot/camera/color/image_raw",
                 "--audio-topic", "robot/utterances", "--pen-topic", "/arm/stroke",
                 "--truth-topic", "/experiment/digit"]) == 0
    a, b = json.loads(ref.read_text()), json.loads(got.read_text())
    assert b["inputs"] == a["inputs"] == {"image": 5, "audio": 5, "trajectory": 10}
    assert b["per_subset"] == a["per_subset"] and b["outputs"] == a["outputs"] > 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(robot), "--device", "cpu"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "/robot/utterances" in err and "--camera-topic" in err
    with pytest.raises(SystemExit):  # sensors found, labels not
        main([str(robot), "--device", "cpu", "--camera-topic", "/robot/camera/color/image_raw"])
    assert "--truth-topic" in capsys.readouterr().err
    capsys.readouterr()
    with pytest.raises(SystemExit):  # a misspelt topic is an error, not a run without that sensor
        main([str(robot), "--device", "cpu", "--camera-topic", "/robot/camera/color/image_raw",
              "--audio-topic", "/robot/utterance", "--pen-topic", "/arm/stroke", "--truth-topic", "/experiment/digit"])
    assert "/robot/utterance'" in capsys.readouterr().err
    with pytest.raises(BagError, match="also the image topic"):
        bag_topics({"image": "/x", "audio": "/x"})
    with pytest.raises(BagError, match="modality"):
        bag_topics({"sonar": "/x"})
    for bad in ("~/cam", " /x", "/x/", "/a//b"):
        with pytest.raises(BagError, match="not a topic name"):
            bag_topics({"image": bad})
    assert bag_topics({"image": "robot/cam"})[0]["/robot/cam"] == ("image", "sensor_msgs/msg/Image")
    # the same bag as a training set: the bag: spec names the topics after a "?"
    from crossmodal_ros.data import DatasetError, load_dataset

    want = load_dataset(f"bag:{path}", "all")
    got = load_dataset(f"bag:{robot}?camera=/robot/camera/color/image_raw&audio=/robot/utterances&pen=/arm/stroke"
                       "&truth=/experiment/digit", "all")
    for key in ("image", "audio", "trajectory", "label", "audio_length"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    with pytest.raises(DatasetError, match="truth=<topic>"):
        load_dataset(f"bag:{robot}?camera=/robot/camera/color/image_raw", "all")
    with pytest.raises(DatasetError, match="expected one of"):
        load_dataset(f"bag:{robot}?lidar=/scan", "all")
    with pytest.raises(DatasetError, match="key=topic"):
        load_dataset(f"bag:{robot}?camera", "all")
