# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""NexusNode with real rclpy in-process: outputs per input subset, staleness, lifecycle, params,
malformed input. An untrained model is enough for these contract tests.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Int32, String

from crossmodal_ros.ros import conversions as conv
from crossmodal_ros.fusion_store import LatestSamples, Sample, newest
from crossmodal_ros.ros.nexus_node import OUTPUT_NAMES, make_node

from ros_helpers import Collector, ros_context, ros_context_mt, ros_module_context  # noqa: F401

OUT_TYPES = {"image": Image, "audio_mel": Image, "trajectory": Path, "label": Int32,
             "label_probs": Float32MultiArray, "latent": Float32MultiArray,
             "modalities": String}
FAST = dict(max_rate_hz=50.0, heartbeat_hz=0.0, autostart=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(untrained_checkpoint):
    return untrained_checkpoint


# --------------------------------------------------------------------------- helpers
def _image_msg(stamp_s: float) -> Image:
    frame = np.zeros((56, 56), np.uint8)
    frame[10:46, 26:30] = 255  # a "1"
    return conv.numpy_to_image(frame, "mono8", stamp=conv.seconds_to_stamp(stamp_s),
                               frame_id="camera")


def _audio_msg(n: int = 8000) -> Float32MultiArray:
    t = np.arange(n) / 16000.0
    return conv.numpy_to_audio((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))


def _stroke_msg(stamp_s: float) -> Path:
    s = np.linspace(0, 1, 30)
    return conv.numpy_to_path(np.stack([0.5 + 0.3 * np.cos(6 * s), 0.5 + 0.3 * np.sin(6 * s)], 1),
                              stamp=conv.seconds_to_stamp(stamp_s), frame_id="pen")


class Sensors:
    """A test node publishing on the four input topics, and a collector of every output."""

    def __init__(self, rc, ns: str = "/nexus"):
        node = rc.add(rc_node(rc, "test_sensors"))
        self.node = node
        self.pub = {
            "image": node.create_publisher(Image, "camera/image_raw", 10),
            "audio": node.create_publisher(Float32MultiArray, "audio/chunk", 10),
            "trajectory": node.create_publisher(Path, "pen/stroke", 10),
            "label": node.create_publisher(Int32, "label", 10),
        }
        topics = {f"{ns}/{name}": t for name, t in OUT_TYPES.items()}
        topics[f"{ns}/audio"] = Float32MultiArray
        topics["/diagnostics"] = DiagnosticArray
        self.out = Collector(node, topics)
        self.ns = ns

    def publish(self, modality, msg):
        self.pub[modality].publish(msg)

    def msgs(self, name):
        return self.out.messages[f"{self.ns}/{name}" if name != "/diagnostics" else name]


def rc_node(rc, name):
    from rclpy.node import Node

    return Node(name, context=rc.context)


def _nexus(rc, checkpoint, **params):
    node = make_node(context=rc.context, checkpoint=checkpoint, **{**FAST, **params})
    rc.add(node)
    return node


def _wait_connected(rc, sensors, node):
    # both ends of the 'modalities' output: the node builds no message for an output it sees no subscriber on
    ok = rc.spin_until(lambda: all(p.get_subscription_count() > 0 for p in sensors.pub.values())
                       and sensors.node.count_publishers(f"{sensors.ns}/modalities") > 0
                       and (node.outputs.pubs.get("modalities") is None
                            or node.outputs.pubs["modalities"].get_subscription_count() > 0),
                       timeout=5.0)
    assert ok, "test publishers never matched the node"


def _wait_modalities(rc, sensors, expected: str, timeout=8.0):
    return rc.spin_until(lambda: any(m.data == expected for m in sensors.msgs("modalities")),
                         timeout=timeout)


# --------------------------------------------------------------------------- outputs per subset
SUBSETS = [("image",), ("audio",), ("trajectory",), ("image", "audio", "trajectory", "label")]


@pytest.mark.parametrize("subset", SUBSETS, ids=["+".join(s) for s in SUBSETS])
def test_every_output_arrives_for_subset(ros_context, checkpoint, subset):
    rc = ros_context
    node = _nexus(rc, checkpoint)
    assert node.lifecycle_state == "active"
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    future = time.time() + 1000.0  # newest stamp: the image/stroke header, not an arrival time
    if "image" in subset:
        sensors.publish("image", _image_msg(future))
    if "trajectory" in subset:
        sensors.publish("trajectory", _stroke_msg(future - 1.0))
    if "audio" in subset:
        sensors.publish("audio", _audio_msg())
    if "label" in subset:
        sensors.publish("label", Int32(data=3))
    expected = "+".join(subset)
    assert _wait_modalities(rc, sensors, expected), [m.data for m in sensors.msgs("modalities")]
    rc.spin_until(lambda: all(sensors.msgs(n) for n in OUT_TYPES), timeout=2.0)
    for name, msg_type in OUT_TYPES.items():
        assert sensors.msgs(name), f"no {name} output"
        assert all(isinstance(m, msg_type) for m in sensors.msgs(name))
    img, mel = sensors.msgs("image")[-1], sensors.msgs("audio_mel")[-1]
    assert (img.encoding, img.height, img.width) == ("mono8", 28, 28)
    assert (mel.encoding, mel.height, mel.width) == ("32FC1", 128, 32)
    assert np.isfinite(conv.image_to_numpy(mel)).all()
    traj = sensors.msgs("trajectory")[-1]
    assert len(traj.poses) == 100
    assert 0 <= sensors.msgs("label")[-1].data < 10
    probs = conv.probs_from_msg(sensors.msgs("label_probs")[-1])
    assert probs.shape == (10,) and int(np.argmax(probs)) == sensors.msgs("label")[-1].data
    mu, logvar = conv.latent_from_msg(sensors.msgs("latent")[-1])
    assert mu.shape == logvar.shape and mu.size == node.engine.model.latent_dim
    # headers: newest fused input stamp and the frame_id parameter
    for m in (img, mel, traj):
        assert m.header.frame_id == "nexus"
    if "image" in subset:
        assert conv.stamp_to_seconds(img.header.stamp) == pytest.approx(future, abs=1e-6)
        assert conv.stamp_to_seconds(traj.header.stamp) == pytest.approx(future, abs=1e-6)
    elif "trajectory" in subset:
        assert conv.stamp_to_seconds(img.header.stamp) == pytest.approx(future - 1.0, abs=1e-6)
    else:  # audio carries no header: its arrival time on the node clock
        assert abs(conv.stamp_to_seconds(img.header.stamp) - time.time()) < 10.0
    assert node.fused_count >= 1 and node.last_latency_s > 0
    assert node.received[subset[0]] == 1 and not any(node.dropped[m] for m in subset)
    assert not sensors.msgs("audio"), "audio waveform must be off without griffin_lim"


def test_two_thread_executor_with_lifecycle_changes_mid_stream(ros_context_mt, checkpoint):
    """The demo's executor: inputs and fusion on separate threads; deactivate/activate while
    messages flow must neither crash nor publish while inactive.
    """
    rc = ros_context_mt
    # long staleness windows: on rclpy's multi-threaded executor the audio can arrive more than
    # the default 1 s after the image (CI: image and audio fused apart)
    node = _nexus(rc, checkpoint, heartbeat_hz=20.0, staleness={"image": 30.0, "audio": 30.0})
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    for _ in range(3):
        sensors.publish("image", _image_msg(time.time()))
        sensors.publish("audio", _audio_msg(4000))
        assert rc.spin_until(lambda: node.last_fused == ("image", "audio"), timeout=5.0), \
            (node.last_fused, node.accounting())
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        fused = node.fused_count  # deactivate waits for a running fusion (the fusion lock)
        published = node.published_count
        inactive_drops = node.dropped["image"]["inactive"]
        sensors.publish("image", _image_msg(time.time()))  # arrives while inactive: dropped
        # wait for its arrival, not a fixed time (on CI a fixed 0.5 s missed all three)
        rc.spin_until(lambda: node.dropped["image"]["inactive"] > inactive_drops, timeout=5.0)
        assert node.fused_count == fused and node.published_count == published
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        node.core.last_fused = ()
    assert node.fused_count >= 3 and node.dropped["image"]["inactive"] >= 1
    # every 'modalities' message received came from a fusion while active (transport on rclpy's
    # multi-threaded executor can take longer than any fixed wait, so they are counted at the end)
    rc.spin_for(0.5)
    assert 0 < len(sensors.msgs("modalities")) <= node.fused_count


def test_a_fusion_on_one_thread_serves_inputs_and_ticks_from_others(ros_context, checkpoint):
    """Multi-threaded executor races, made deterministic: while an input callback's fusion runs,
    a second input's wake-up returns at once and the input is fused right after (not on a later
    tick), and a timer tick waits for the running fusion instead of deciding beside it.
    """
    import threading

    rc = ros_context
    node = _nexus(rc, checkpoint)
    gate, entered, calls = threading.Event(), threading.Event(), []
    infer = node._infer

    def slow(values, decode):
        calls.append(tuple(values))
        if len(calls) == 1:
            entered.set()
            gate.wait(5.0)
        return infer(values, decode)

    node._infer = slow
    first = threading.Thread(target=node.inputs.store, args=("image", np.eye(28, dtype=np.float32)))
    first.start()
    assert entered.wait(5.0)
    s = np.linspace(0, 1, 20)
    node.inputs.store("trajectory", np.stack([s, s ** 2], 1))  # returns: the lock is held
    tick = threading.Thread(target=node._on_fusion_timer)
    tick.start()
    time.sleep(0.2)
    assert tick.is_alive() and first.is_alive()  # the tick waits for the fusion
    gate.set()
    first.join(5.0)
    tick.join(5.0)
    assert calls == [("image",), ("image", "trajectory")]
    assert node.fused_count == 2 and dict(node.fusions_by_kind) == {"fresh": 2}
    assert node.accounting()["trajectory"]["pending"] == 0


def test_griffin_lim_waveform_output(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint, griffin_lim=True)
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    sensors.publish("audio", _audio_msg())
    assert rc.spin_until(lambda: sensors.msgs("audio"), timeout=10.0)
    wave = conv.audio_to_numpy(sensors.msgs("audio")[-1])
    assert wave.ndim == 1 and wave.size > 1000


# --------------------------------------------------------------------------- fusion semantics
def test_staleness_drops_a_silent_sensor_and_nothing_is_published_when_all_stale(
        ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint, heartbeat_hz=20.0,
                  staleness={"image": 0.6, "trajectory": 2.0})
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    now = time.time()
    sensors.publish("image", _image_msg(now))
    sensors.publish("trajectory", _stroke_msg(now))
    assert _wait_modalities(rc, sensors, "image+trajectory")
    # the heartbeat keeps publishing; the camera goes silent and drops out after 0.6 s (windows wide
    # enough that a scheduling stall on a busy CI machine does not age an input out early)
    assert _wait_modalities(rc, sensors, "trajectory", timeout=3.0)
    assert node.live_inputs() == ("trajectory",)
    # after 2 s the stroke is stale too: no live input -> nothing published
    assert rc.spin_until(lambda: node.live_inputs() == (), timeout=3.0)
    rc.spin_for(0.1)
    count = len(sensors.msgs("modalities"))
    rc.spin_for(0.3)
    assert len(sensors.msgs("modalities")) == count
    # a heartbeat ran while inputs were live: more fusions than inputs
    assert node.fused_count > 2


def test_bursts_are_coalesced_and_rate_limited(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint, max_rate_hz=5.0, max_burst=1)
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    t0 = time.monotonic()
    for i in range(6):  # 6 images within ~0.12 s (the input queue depth is 5)
        sensors.publish("image", _image_msg(time.time()))
        rc.spin_for(0.02)
    assert rc.spin_until(lambda: node.received["image"] == 6, timeout=2.0)
    rc.spin_until(lambda: not node.core.store.pending, timeout=3.0)
    elapsed = time.monotonic() - t0
    # the first image is fused at once, the rest coalesced: fewer fusions than images, every
    # image either fused or superseded, and never more than 5 Hz
    assert 2 <= node.fused_count < 6
    assert node.fused_count + node.superseded["image"] == 6
    assert node.fused_count <= 1 + elapsed * 5.0
    assert node.superseded["image"] >= 3


# --------------------------------------------------------------------------- lifecycle
def test_configure_with_bad_checkpoint_fails_then_recovers(ros_context, checkpoint, tmp_path):
    rc = ros_context
    missing = tmp_path / "missing.pt"
    node = _nexus(rc, str(missing), autostart=False)
    assert node.lifecycle_state == "unconfigured"
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node.lifecycle_state == "unconfigured" and node.engine is None
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    node.set_parameters([Parameter("checkpoint", value=str(corrupt))])
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node.lifecycle_state == "unconfigured"
    node.set_parameters([Parameter("checkpoint", value=checkpoint)])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.lifecycle_state == "inactive" and node.engine is not None
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    sensors.publish("label", Int32(data=7))
    assert _wait_modalities(rc, sensors, "label")
    # deactivate: inputs are no longer fused; cleanup releases the model
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    n = node.fused_count
    sensors.publish("label", Int32(data=7))
    rc.spin_until(lambda: node.dropped["label"]["inactive"] == 1, timeout=3.0)
    assert node.fused_count == n
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.engine is None and node.lifecycle_state == "unconfigured"


def test_cuda_without_a_gpu_fails_configure_instead_of_falling_back(ros_context, checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    node = _nexus(ros_context, checkpoint, device="cuda", autostart=False)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    node.set_parameters([Parameter("device", value="auto")])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert str(node.engine.device) == "cpu"


def test_diagnostics_report_device_and_live_inputs(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint)
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    sensors.publish("label", Int32(data=1))
    assert _wait_modalities(rc, sensors, "label")
    assert rc.spin_until(lambda: any(
        kv.key == "live inputs" and kv.value == "label"
        for d in sensors.msgs("/diagnostics") for s in d.status for kv in s.values), timeout=3.0)
    status = sensors.msgs("/diagnostics")[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["device"] == str(node.engine.device)
    assert values["inference path"] == node.engine.path and node.engine.path in ("fast", "fast-int8")
    assert values["checkpoint kind"] == "nexus"
    assert float(values["inference latency median (ms)"]) > 0
    assert values["label received"] == "1"


def test_num_threads_parameter_caps_the_thread_pools(ros_context, checkpoint):
    """num_threads (default 1) caps torch, BLAS and OpenCV at configure; 0 leaves them alone."""
    import cv2
    import numpy  # noqa: F401 - its BLAS pool is one of those capped
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = (torch.get_num_threads(), cv2.getNumThreads())
    restore = threadpool_limits(None)  # remembers the BLAS pools' sizes
    try:
        torch.set_num_threads(2)
        threadpool_limits(2, user_api="blas")
        cv2.setNumThreads(2)
        node = _nexus(ros_context, checkpoint)  # the default
        assert node.get_parameter("num_threads").value == 1
        assert torch.get_num_threads() == 1 and blas() == {1} and cv2.getNumThreads() == 1
        torch.set_num_threads(2)
        _nexus(ros_context, checkpoint, num_threads=0)
        assert torch.get_num_threads() == 2 and blas() == {1}
        _nexus(ros_context, checkpoint, num_threads=3)
        assert torch.get_num_threads() == 3 and blas() == {3} and cv2.getNumThreads() == 3
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
        restore.restore_original_limits()


def test_freeze_startup_objects_exempts_the_loaded_objects_from_gc_scans():
    """In a process of its own (a frozen object's cyclic garbage is never collected)."""
    import subprocess
    import sys

    code = ("import gc, torch, librosa\n"
            "from crossmodal_ros.ros.inference_params import freeze_startup_objects\n"
            "n = freeze_startup_objects()\n"
            "assert n == gc.get_freeze_count() and n > 50000, n\n"
            "assert len(gc.get_objects()) < n / 20, (len(gc.get_objects()), n)\n"
            "print('frozen', n)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "frozen" in proc.stdout, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- parameters
def test_parameter_validation(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint, autostart=False)

    def ok(name, value):
        return node.set_parameters([Parameter(name, value=value)])[0].successful

    assert not ok("device", "tpu")
    assert not ok("backend", "tensorrt")
    assert not ok("qos_reliability", "fast")
    assert not ok("outputs", ["image", "hologram"])
    assert not ok("heartbeat_hz", 100.0)  # above max_rate_hz
    assert not ok("max_rate_hz", -1.0)  # out of range
    assert not ok("staleness.image", -0.5)
    assert not ok("qos_depth", 0)
    assert not ok("autostart", False)  # read-only
    assert ok("staleness.image", 0.25) and ok("device", "cpu") and ok("outputs", ["latent"])
    assert node.get_parameter("staleness.image").value == 0.25
    # live-tunable values reach a configured node at once
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert ok("staleness.audio", 0.75) and node.core.staleness["audio"] == 0.75
    assert ok("sample_latent", True) and node.engine.sample is True
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert ok("max_rate_hz", 10.0)
    assert ok("max_rate_hz", 10) and node.get_parameter("max_rate_hz").value == 10.0  # a whole number, as a double
    assert node.get_parameter("max_rate_hz").type_ == Parameter.Type.DOUBLE
    # the timer is set again to the scheduler's next deadline (nothing live: the idle check)
    assert node.fusion_timer.due == pytest.approx(node.core.mono() + 0.2, abs=0.1)
    assert 0 < node.fusion_timer.timer.timer_period_ns <= 250_000_000
    # a value read at configure, set on a configured node: accepted, not applied yet, and warned about
    assert not node.pending_reconfigure
    assert ok("backend", node.get_parameter("backend").value) and not node.pending_reconfigure  # no change
    assert ok("backend", "fast") and ok("heartbeat_hz", 4.0) and node.pending_reconfigure == {"backend"}
    assert node.engine.requested_backend == "int8_auto"  # the running engine is unchanged
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert ok("device", "cpu") and node.pending_reconfigure == {"backend"}  # unconfigured: applies next, no warning
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.engine.requested_backend == "fast" and not node.pending_reconfigure
    # values given at construction are validated at configure
    bad = make_node("nexus_bad", context=rc.context, checkpoint=checkpoint, device="tpu")
    rc.add(bad)
    assert bad.lifecycle_state == "unconfigured"
    ints = make_node("nexus_ints", context=rc.context, autostart=False, staleness={"image": 1})
    rc.add(ints)
    assert ints.get_parameter("staleness.image").value == 1.0
    with pytest.raises(ValueError, match="unknown inference node parameter"):
        make_node(context=rc.context, checkpoin="typo.pt")


def test_onnx_backend_node_fuses_like_the_fast_path(ros_context, checkpoint, tmp_path, monkeypatch):
    """The onnx and onnx_int8 backends in the node: the fast path's latent, the ONNX decoders; the decode
    graphs are built at configure and kept in the disk cache (``onnx_cache``, default on).
    """
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("CROSSMODAL_ROS_CACHE", str(tmp_path))
    rc = ros_context
    image = np.eye(28, dtype=np.float32)
    latents, images = {}, {}
    for backend in ("fast", "onnx", "onnx_int8"):
        node = make_node(f"nexus_{backend}", context=rc.context, checkpoint=checkpoint, device="cpu",
                         backend=backend, always_decode=["image"])
        rc.add(node)
        assert node.lifecycle_state == "active" and node.engine.backend == backend
        results = []
        infer = node._infer
        node._infer = lambda *a, **k: results.append(infer(*a, **k)) or results[-1]
        node.inputs.store("image", image, wake=False)
        assert node._fuse() and len(results) == 1
        latents[backend] = np.asarray(results[0].latent_mu)
        images[backend] = np.asarray(results[0].output("image"), np.float64)
    assert node.engine.path == "onnx-int8" and images["fast"].shape == (28, 28)  # float pixels in [0, 1]
    cached = sorted(p.name for p in (tmp_path / "onnx").rglob("*.onnx"))
    assert cached == sorted([f"decode--{m}.onnx" for m in node.engine.modalities] * 2)  # float and int8
    # the node's call takes the latent from the fast path's encoding cache and decodes on ONNX
    for backend, tol in (("onnx", 1e-4), ("onnx_int8", 0.3)):
        np.testing.assert_allclose(latents[backend], latents["fast"], atol=1e-4)
        assert np.abs(images[backend] - images["fast"]).max() <= tol, backend
    assert np.abs(images["onnx_int8"] - images["fast"]).max() > 0  # int8 decoders really ran


def test_infer_combine_parameter_overrides_the_stored_rule(ros_context, checkpoint, tmp_path):
    """``infer_combine`` switches how several given modalities combine, weights untouched: one
    given modality fuses alike, two differ; a bad value or a kind without the option fails
    configure with a reason.
    """
    import torch

    from crossmodal_ros.checkpoint import save_checkpoint
    from crossmodal_ros.codecs import codecs_to_dict, default_codecs
    from crossmodal_ros.models import build_model

    from crossmodal_ros import units
    from crossmodal_ros.paths import default_checkpoint

    rc = ros_context
    sample = {m: units.unit(m).warm_up(16000) for m in ("image", "trajectory")}
    latents = {}
    shipped = str(default_checkpoint())  # trained: an untrained model's posteriors combine alike
    for rule in ("aggregate", "mixture"):
        node = rc.add(make_node(f"nexus_{rule}", context=rc.context, checkpoint=shipped, device="cpu",
                                infer_combine=rule))
        assert node.lifecycle_state == "active" and node.engine.model.config["infer_combine"] == rule
        for given in (("image",), ("image", "trajectory")):
            results = []
            infer = node._infer
            node._infer = lambda *a, infer=infer, **k: results.append(infer(*a, **k)) or results[-1]
            for m in given:
                node.inputs.store(m, sample[m], wake=False)
            assert node._fuse() and len(results) == 1
            assert node.core.fused_inputs["trajectory"] == given.count("trajectory")  # both were fused
            latents[rule, given] = np.asarray(results[0].latent_mu)
            node._infer = infer
    np.testing.assert_allclose(latents["aggregate", ("image",)], latents["mixture", ("image",)], atol=1e-5)
    both = ("image", "trajectory")
    assert np.abs(latents["aggregate", both] - latents["mixture", both]).max() > 1e-3
    bad = rc.add(make_node("nexus_bad_rule", context=rc.context, checkpoint=checkpoint, device="cpu",
                           infer_combine="median"))
    assert bad.lifecycle_state == "unconfigured" and "infer_combine" in bad.last_error
    torch.manual_seed(0)
    mmvae = save_checkpoint(tmp_path / "mmvae.pt", build_model("mmvae"), codecs_to_dict(default_codecs()))
    other = rc.add(make_node("nexus_mmvae_rule", context=rc.context, checkpoint=str(mmvae), device="cpu",
                             infer_combine="aggregate"))
    assert other.lifecycle_state == "unconfigured" and "do not apply to the mmvae checkpoint" in other.last_error


def test_incompatible_qos_publisher_is_reported(ros_context, checkpoint):
    """The classic camera pitfall: a best-effort camera and a reliable subscription."""
    from rclpy.event_handler import PublisherEventCallbacks
    from rclpy.qos import qos_profile_sensor_data

    rc = ros_context
    node = _nexus(rc, checkpoint, qos_reliability="reliable")
    cam = rc.add(rc_node(rc, "best_effort_camera"))
    cam.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data,
                         event_callbacks=PublisherEventCallbacks(incompatible_qos=lambda i: None))
    assert rc.spin_until(lambda: node.qos_incompatible["image"] > 0, timeout=5.0)


def test_outputs_parameter_limits_publishers(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint, outputs=["latent", "modalities"])
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    sensors.publish("label", Int32(data=2))
    assert _wait_modalities(rc, sensors, "label")
    rc.spin_until(lambda: sensors.msgs("latent"), timeout=2.0)
    assert sensors.msgs("latent") and not sensors.msgs("image") and not sensors.msgs("label")
    assert sorted(OUTPUT_NAMES)  # the full list stays the default


# --------------------------------------------------------------------------- malformed input
def test_malformed_messages_are_counted_and_the_node_keeps_working(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint)
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    bad_enc = _image_msg(1.0)
    bad_enc.encoding = "yuv422"
    bad_step = _image_msg(1.0)
    bad_step.step += 3
    nan_audio = Float32MultiArray()
    nan_audio.data = [0.1, float("nan"), 0.2]
    loud_audio = Float32MultiArray()
    loud_audio.data = [0.1, 3.0]
    sensors.publish("image", bad_enc)
    sensors.publish("image", bad_step)
    sensors.publish("audio", nan_audio)
    sensors.publish("audio", loud_audio)
    sensors.publish("trajectory", Path())
    sensors.publish("label", Int32(data=42))
    expected = {"image": {"encoding": 1, "step": 1}, "audio": {"nonfinite": 1, "range": 1},
                "trajectory": {"empty": 1}, "label": {"range": 1}}
    assert rc.spin_until(lambda: {m: dict(c) for m, c in node.dropped.items()} == expected,
                         timeout=5.0), node.dropped
    assert node.fused_count == 0 and not sensors.msgs("modalities")
    sensors.publish("image", _image_msg(time.time()))
    assert _wait_modalities(rc, sensors, "image")


def test_codec_rejections_are_attributed_to_their_modality(ros_context, checkpoint):
    """A stroke the converter accepts but the trajectory codec rejects (all points identical)
    is dropped as 'codec' and the other live input is still fused.
    """
    rc = ros_context
    node = _nexus(rc, checkpoint)
    sensors = Sensors(rc)
    _wait_connected(rc, sensors, node)
    sensors.publish("trajectory", conv.numpy_to_path(np.full((5, 2), 0.5)))
    sensors.publish("label", Int32(data=4))
    assert _wait_modalities(rc, sensors, "label")
    assert node.dropped["trajectory"]["codec"] == 1
    assert "trajectory" not in node.live_inputs()


# --------------------------------------------------------------------------- fusion store (no ROS)
def _s(arrival, stamp=0.0):
    return Sample(value=arrival, stamp=None, stamp_s=stamp, arrival_s=arrival)


def test_latest_samples_liveness_and_clock_jumps():
    store = LatestSamples(("image", "audio"))
    win = {"image": 1.0, "audio": 0.0}
    assert store.live(0.0, win) == {} and not store.pending
    store.put("image", _s(10.0))
    store.put("image", _s(10.5))
    assert store.superseded["image"] == 1 and store.pending
    assert list(store.live(11.0, win)) == ["image"]
    assert store.live(11.5, win, take=True) == {}  # 1.0 s after 10.5: stale
    assert not store.pending
    store.put("audio", _s(11.0))
    assert "audio" not in store.live(11.0, win)  # window 0 disables a modality
    # clock jumps backwards (bag loop): fresh once, then ages from the new time
    live = store.live(2.0, win)
    assert list(live) == ["image"] and live["image"].arrival_s == 2.0
    assert store.live(2.9, win) and not store.live(3.1, win)
    with pytest.raises(KeyError):
        store.put("smell", _s(0.0))
    assert newest({"a": _s(0, 5.0), "b": _s(0, 7.0)}).stamp_s == 7.0
    assert math.isclose(store.ages(4.0)["image"], 2.0)


# --------------------------------------------------------------------------- parameter file, main
def test_parameter_file_lists_every_parameter_with_its_default():
    import yaml

    from crossmodal_ros.paths import config_dir
    from crossmodal_ros.ros.nexus_node import PARAMETERS, _flatten

    doc = yaml.safe_load((config_dir() / "nexus.yaml").read_text())
    params = _flatten(doc["/**"]["ros__parameters"])
    assert set(params) == set(PARAMETERS)
    for name, (default, desc) in PARAMETERS.items():
        assert params[name] == default, name
        assert desc.description, name


@pytest.mark.ros
@pytest.mark.parametrize("executor", ["events", "single"])
def test_main_runs_with_the_parameter_file_and_stops_on_sigint(checkpoint, tmp_path, executor):
    """The console entry on each executor: params file + override, autostart to active; a stamped
    frame comes back as a latent with its stamp, the lifecycle and parameter services answer;
    clean exit on Ctrl-C.
    """
    import os
    import signal
    import subprocess
    import sys

    from crossmodal_ros.paths import config_dir

    cmd = [sys.executable, "-c", "from crossmodal_ros.ros.nexus_node import main; main()",
           "--ros-args", "--params-file", str(config_dir() / "nexus.yaml"),
           "-p", f"checkpoint:={checkpoint}", "-p", "device:=cpu", "-r", "__node:=nexus_main",
           "-p", f"executor:={executor}", "-r", "/camera/image_raw:=/main_test/camera",
           "-r", "~/latent_stamped:=/main_test/latent_stamped"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    import queue
    import threading

    q: "queue.Queue[str]" = queue.Queue()
    reader = threading.Thread(target=lambda: [q.put(x) for x in proc.stdout], daemon=True)
    reader.start()
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                lines.append(q.get(timeout=0.2))
            except queue.Empty:
                continue
            if "[nexus_main]: active" in lines[-1]:
                break
        assert any("[nexus_main]: active" in x for x in lines), "".join(lines)
        # the shipped backend, int8_auto, as it resolves on this machine
        from crossmodal_ros.models.fast import int8_preferred

        path = "fast-int8" if int8_preferred() else "fast"
        assert any(f"torch threads, path {path})" in x for x in lines), "".join(lines)
        expected = {"events": "EventsExecutor", "single": "SingleThreadedExecutor"}[executor]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(f"spinning {expected}" in x for x in lines):
            try:
                lines.append(q.get(timeout=0.2))
            except queue.Empty:
                continue
        assert any(f"spinning {expected}" in x for x in lines), "".join(lines)
        _exercise_running_node("/main_test", "/nexus_main")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    while not q.empty():
        lines.append(q.get())
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def _exercise_running_node(prefix: str, node: str) -> None:
    """From a client in its own context: a stamped frame on ``prefix``/camera comes back on
    ``prefix``/latent_stamped with its stamp; ``node``'s get_state and set_parameters answer.
    """
    import rclpy
    from lifecycle_msgs.srv import GetState
    from rcl_interfaces.srv import SetParameters
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    try:
        client = rclpy.create_node("main_test_client", context=ctx)
        ex.add_node(client)
        got = []
        client.create_subscription(JointState, f"{prefix}/latent_stamped", got.append, 10)
        pub = client.create_publisher(Image, f"{prefix}/camera", 10)
        stamps = []
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not any(
                conv.stamp_to_seconds(m.header.stamp) in stamps for m in got):
            if pub.get_subscription_count() > 0:
                stamps.append(1000.0 + len(stamps))
                pub.publish(_image_msg(stamps[-1]))
            ex.spin_once(timeout_sec=0.2)
        assert any(conv.stamp_to_seconds(m.header.stamp) in stamps for m in got), (len(stamps), len(got))

        def call(srv_type, name, request):
            cli = client.create_client(srv_type, name)
            assert cli.wait_for_service(timeout_sec=10.0), name
            future = cli.call_async(request)
            ex.spin_until_future_complete(future, timeout_sec=10.0)
            assert future.done(), name
            return future.result()

        assert call(GetState, f"{node}/get_state", GetState.Request()).current_state.label == "active"
        res = call(SetParameters, f"{node}/set_parameters",
                   SetParameters.Request(parameters=[Parameter("heartbeat_hz", value=2.0).to_parameter_msg()]))
        assert [r.successful for r in res.results] == [True]
        res = call(SetParameters, f"{node}/set_parameters",
                   SetParameters.Request(parameters=[Parameter("executor", value="single").to_parameter_msg()]))
        assert [r.successful for r in res.results] == [False]  # read-only
        # a live max_rate_hz change re-creates the fusion timer; frames still come back
        res = call(SetParameters, f"{node}/set_parameters",
                   SetParameters.Request(parameters=[Parameter("max_rate_hz", value=50.0).to_parameter_msg()]))
        assert [r.successful for r in res.results] == [True]
        got.clear()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not any(conv.stamp_to_seconds(m.header.stamp) >= 2000.0 for m in got):
            stamps.append(2000.0 + len(stamps))
            pub.publish(_image_msg(stamps[-1]))
            ex.spin_once(timeout_sec=0.2)
        assert any(conv.stamp_to_seconds(m.header.stamp) >= 2000.0 for m in got)
    finally:
        ex.shutdown()
        rclpy.shutdown(context=ctx)


def test_liveness_follows_sim_time(ros_context, checkpoint):
    """With use_sim_time the staleness windows run on /clock: a stored sample stays live while
    simulated time stands still, goes stale when /clock moves past its window, and a /clock
    jump backwards (bag loop) makes it fresh once instead of breaking anything.
    """
    from rosgraph_msgs.msg import Clock as ClockMsg

    rc = ros_context
    node = _nexus(rc, checkpoint, use_sim_time=True, staleness={"label": 2.0})
    sensors = Sensors(rc)
    clock_pub = sensors.node.create_publisher(ClockMsg, "/clock", 10)

    def set_clock(t):
        clock_pub.publish(ClockMsg(clock=conv.seconds_to_stamp(t)))
        return rc.spin_until(lambda: abs(node._now_s() - t) < 1e-6, timeout=3.0)

    _wait_connected(rc, sensors, node)
    assert rc.spin_until(lambda: clock_pub.get_subscription_count() > 0, timeout=3.0)
    assert set_clock(100.0)
    sensors.publish("label", Int32(data=5))
    assert _wait_modalities(rc, sensors, "label")
    out = sensors.msgs("modalities")
    stamp = conv.stamp_to_seconds(sensors.msgs("image")[-1].header.stamp)
    assert stamp == pytest.approx(100.0)  # header-less input: arrival on the sim clock
    rc.spin_for(0.3)  # wall time passes, sim time does not
    assert node.live_inputs() == ("label",)
    assert set_clock(101.5) and node.live_inputs() == ("label",)
    assert set_clock(102.5) and node.live_inputs() == ()
    assert set_clock(50.0) and node.live_inputs() == ("label",)  # jumped back: fresh once
    assert set_clock(52.5) and node.live_inputs() == ()
    assert out


def test_a_model_without_a_modality_does_not_subscribe_to_it(ros_context, tmp_path):
    import torch

    from crossmodal_ros.checkpoint import save_checkpoint
    from crossmodal_ros.codecs import codecs_to_dict, default_codecs
    from crossmodal_ros.models import build_model

    torch.manual_seed(0)
    model = build_model("nexus", {"modalities": ["image", "trajectory"]})
    path = save_checkpoint(tmp_path / "two.pt", model, codecs_to_dict(default_codecs()), half=True)
    rc = ros_context
    node = _nexus(rc, str(path))
    sensors = Sensors(rc)
    assert rc.spin_until(lambda: sensors.pub["image"].get_subscription_count() > 0, timeout=5.0)
    assert sensors.pub["label"].get_subscription_count() == 0
    assert sensors.pub["audio"].get_subscription_count() == 0
    sensors.publish("image", _image_msg(time.time()))
    assert _wait_modalities(rc, sensors, "image")
    assert node.lifecycle_state == "active" and node.last_error == ""
    assert rc.spin_until(lambda: sensors.msgs("image") and sensors.msgs("trajectory"), 2.0)
    assert not sensors.msgs("audio_mel") and not sensors.msgs("label_probs")
    assert sorted(node.outputs.pubs) == ["image", "latent", "latent_stamped", "modalities", "trajectory"]


def test_qos_overrides_and_per_input_diagnostics(ros_context, checkpoint):
    """qos_overrides.<topic>.subscription.* parameters win over qos_reliability; /diagnostics has
    one diagnostic_updater-style status per input (frequency window, expected rate, stale).
    """
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.qos import ReliabilityPolicy

    from crossmodal_ros.ros.nexus_node import NexusNode

    overrides = [Parameter(k, value=v) for k, v in {
        "checkpoint": checkpoint, "device": "cpu", "qos_reliability": "best_effort",
        "qos_overrides./camera/image_raw.subscription.reliability": "reliable",
        "qos_overrides./camera/image_raw.subscription.depth": 7,
        "diagnostics.expected_hz.image": 10.0, "staleness.image": 0.5}.items()]
    node = ros_context.add(NexusNode("nexus", context=ros_context.context, parameter_overrides=overrides))
    subs = {s.topic_name: s.qos_profile for s in node.inputs.subs}
    assert subs["/camera/image_raw"].reliability == ReliabilityPolicy.RELIABLE
    assert subs["/camera/image_raw"].depth == 7
    assert subs["/pen/stroke"].reliability == ReliabilityPolicy.BEST_EFFORT
    statuses = {s.name: s for s in node.diagnostics()}
    image = statuses["/nexus: input image"]
    assert image.level == DiagnosticStatus.WARN and image.message == "No events recorded"
    keys = {kv.key for kv in image.values}
    assert {"Events in window", "Actual frequency (Hz)", "Minimum acceptable frequency (Hz)",
            "Seconds since last message"} <= keys
    assert statuses["/nexus: input audio"].level == DiagnosticStatus.OK  # no expected rate
    node.core.accept("image", node._now_s())
    node.core.last_arrival["image"] -= 2.0  # newest image 2 s old, staleness 0.5 s
    image = {s.name: s for s in node.diagnostics()}["/nexus: input image"]
    assert image.level == DiagnosticStatus.WARN and "stale" in image.message


# --------------------------------------------------------------------------- lazy outputs
@pytest.mark.parametrize("combine", ["aggregate", "mixture"])
def test_engine_decodes_only_the_requested_modalities_with_equal_values(checkpoint, combine):
    """``FusionEngine.infer(decode=...)``: every subset of inputs, several decode sets, fast and
    reference paths, both ways of combining given modalities: decoded fields and the latent equal
    the full call, the others empty.
    """
    import itertools

    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.modalities import MODALITIES

    t = np.arange(8000) / 16000.0
    raw = {"image": np.eye(28, dtype=np.float32),
           "audio": (0.3 * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32),
           "trajectory": np.stack([np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2], 1),
           "label": 3}
    field = {"image": "image", "audio": "audio_mel", "trajectory": "trajectory",
             "label": "label_probs"}
    for fast in (True, False):
        engine = FusionEngine.from_checkpoint(checkpoint, device="cpu", fast=fast,
                                              model_options={"infer_combine": combine})
        subsets = [s for r in range(1, 5) for s in itertools.combinations(MODALITIES, r)]
        for subset in subsets if fast else subsets[:4]:
            given = {m: raw[m] for m in subset}
            full = engine.infer(given, sample_rate=16000)
            assert engine.infer(given, sample_rate=16000, decode=None).fused == full.fused
            for decode in [(), ("image",), ("audio", "label"), ("trajectory",), MODALITIES]:
                part = engine.infer(given, sample_rate=16000, decode=decode)
                np.testing.assert_allclose(part.latent_mu, full.latent_mu, atol=1e-5)
                np.testing.assert_allclose(part.latent_logvar, full.latent_logvar, atol=1e-5)
                assert part.fused == full.fused
                for m in MODALITIES:
                    got, ref = getattr(part, field[m]), getattr(full, field[m])
                    if m in decode:
                        np.testing.assert_allclose(got, ref, atol=1e-5, err_msg=f"{subset} {m}")
                    else:
                        assert got.size == 0, (subset, decode, m)
                assert (part.label == full.label) if "label" in decode else part.label == -1
    with pytest.raises(ValueError):
        engine.infer({"label": 1}, decode=("smell",))


def test_no_subscriber_no_decode_and_subscribed_outputs_decode_only_theirs(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint)
    calls = []
    fast = node.engine._fast
    original = fast._decode_mod
    fast._decode_mod = lambda i, m, zb: calls.append(m) or original(i, m, zb)
    image = np.eye(28, dtype=np.float32)

    def fuse():
        node.inputs.store("image", image, wake=False)
        assert node._fuse()

    fuse()  # nobody listens: encoders and latent only, and no message is built (volatile outputs)
    assert calls == [] and sum(node.decoded.values()) == 0 and node.published_count == 0
    listener = rc.add(rc_node(rc, "lazy_listener"))
    got = {"latent": [], "image": []}
    listener.create_subscription(Float32MultiArray, "/nexus/latent",
                                 lambda msg: got["latent"].append(msg), 10)
    assert rc.spin_until(lambda: node.outputs.pubs["latent"].get_subscription_count() > 0, timeout=5.0)
    fuse()  # a latent-only subscriber: still no decoder runs; the latent alone is published
    assert calls == [] and node.published_count == 1
    assert rc.spin_until(lambda: got["latent"], timeout=3.0)
    listener.create_subscription(Image, "/nexus/image", lambda msg: got["image"].append(msg), 10)
    assert rc.spin_until(lambda: node.outputs.pubs["image"].get_subscription_count() > 0, timeout=5.0)
    fuse()  # an image subscriber: the image decoder only
    assert calls == ["image"] and node.decoded["image"] == 1 and node.decoded["label"] == 0
    assert rc.spin_until(lambda: got["image"], timeout=3.0)
    assert got["image"][-1].height == 28


def test_always_decode_forces_decoding_without_subscribers(ros_context, checkpoint):
    rc = ros_context
    node = _nexus(rc, checkpoint, always_decode=["label", "trajectory"])
    node.inputs.store("image", np.eye(28, dtype=np.float32), wake=False)
    assert node._fuse()
    assert node.decoded == {"image": 0, "audio": 0, "trajectory": 1, "label": 1}
    assert node.last_result.label >= 0 and node.last_result.image.size == 0
    ok = node.set_parameters([Parameter("always_decode", value=["smell"])])[0].successful
    assert not ok
