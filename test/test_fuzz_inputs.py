# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Property-based fuzzing of every input topic of the Nexus node (real rclpy, in-process).

One node serves the whole module. Hypothesis generates bad messages per topic (unknown
encodings, step/size mismatches, zero-size and over-cap images, NaN/Inf/out-of-range audio,
bad layouts, empty/one-point/degenerate strokes, NaN coordinates, labels out of range) and valid
ones with odd stamps (zero, past, far future, negative). For every message: the node keeps
running (no exception escapes a callback - the executor would re-raise it here), a bad message is
dropped and counted under the expected reason, a valid one is accepted, and every received
message is accounted for (``NexusNode.accounting``). After each topic's run a known valid input
must give exactly the engine's offline result; the drop counts must show in ``/diagnostics`` and
the drop warnings must be throttled.
"""
from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nav_msgs.msg import Path
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Int32, MultiArrayDimension, String

from crossmodal_ros.ros import conversions as conv
from crossmodal_ros.ros.nexus_node import make_node

from ros_helpers import Collector, ros_module_context, spin_until  # noqa: F401 (fixture)

PIXEL_CAP = 96 * 96  # the node's max_image_pixels in this module (a parameter)
STALE_S = 0.3
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
TOPIC = {"image": "camera/image_raw", "audio": "audio/chunk", "trajectory": "pen/stroke",
         "label": "label"}
TYPES = {"image": Image, "audio": Float32MultiArray, "trajectory": Path, "label": Int32}


@pytest.fixture(scope="module")
def checkpoint(untrained_checkpoint):
    return untrained_checkpoint


class Rig:
    """The node under test, a publisher per input topic and a collector of outputs."""

    def __init__(self, ctx, checkpoint):
        from rclpy.node import Node

        self.executor = SingleThreadedExecutor(context=ctx)
        self.node = make_node(context=ctx, checkpoint=checkpoint, max_image_pixels=PIXEL_CAP,
                              max_rate_hz=50.0, heartbeat_hz=0.0, qos_depth=50,
                              staleness={m: STALE_S for m in TOPIC})
        self.peer = Node("fuzz_sensors", context=ctx)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = {m: self.peer.create_publisher(TYPES[m], TOPIC[m], qos) for m in TOPIC}
        self.out = Collector(self.peer, {"/nexus/latent": Float32MultiArray,
                                         "/nexus/modalities": String,
                                         "/nexus/image": Image,
                                         "/diagnostics": DiagnosticArray})
        for n in (self.node, self.peer):
            self.executor.add_node(n)
        assert self.node.lifecycle_state == "active", self.node.last_error
        assert self.spin_until(lambda: all(p.get_subscription_count() for p in self.pub.values())
                               and self.peer.count_publishers("/nexus/latent") > 0, 10.0)

    def spin_until(self, pred, timeout=5.0) -> bool:
        return spin_until(self.executor, pred, timeout)

    def settled(self) -> bool:
        """Nothing pending and every received message accounted for."""
        acc = self.node.accounting()
        return all(a["pending"] == 0 and a["unaccounted"] == 0 for a in acc.values())

    def send(self, modality: str, msg, reason: str | None) -> None:
        """Publish ``msg``; assert it is received, then dropped for ``reason`` (None: accepted),
        with every message accounted for and the node still active.
        """
        node = self.node
        received = node.received[modality]
        before = dict(node.dropped[modality])
        self.pub[modality].publish(msg)
        assert self.spin_until(lambda: node.received[modality] == received + 1), \
            f"{modality} message never arrived"
        if reason is not None:
            ok = self.spin_until(lambda: node.dropped[modality][reason] == before.get(reason, 0) + 1)
            assert ok, f"expected a {reason!r} drop, got {dict(node.dropped[modality])}"
        assert self.spin_until(self.settled), node.accounting()
        after = dict(node.dropped[modality])
        changed = {r: n - before.get(r, 0) for r, n in after.items() if n != before.get(r, 0)}
        assert changed == ({reason: 1} if reason else {}), changed
        assert node.lifecycle_state == "active"

    def destroy(self):
        for n in (self.node, self.peer):
            self.executor.remove_node(n)
            n.destroy_node()
        self.executor.shutdown()


@pytest.fixture(scope="module")
def rig(ros_module_context, checkpoint):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    r = Rig(ros_module_context, checkpoint)
    yield r
    r.destroy()
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- strategies
stamps = st.one_of(
    st.just(Time(sec=0, nanosec=0)),                                     # unset
    st.builds(Time, sec=st.integers(1, 1000), nanosec=st.integers(0, 999_999_999)),  # past
    st.builds(Time, sec=st.integers(int(time.time()) + 10**6, 2**31 - 1),           # future
              nanosec=st.integers(0, 999_999_999)),
    st.builds(Time, sec=st.integers(-(2**31), -1), nanosec=st.integers(0, 999_999_999)),
)
ENCODINGS = list(conv.IMAGE_ENCODINGS)


def _image(enc: str, h: int, w: int, seed: int, pad: int = 0, stamp: Time | None = None,
           values: np.ndarray | None = None) -> tuple[Image, np.ndarray]:
    dtype, ch = conv.IMAGE_ENCODINGS[enc]
    shape = (h, w) if ch == 1 else (h, w, ch)
    rng = np.random.default_rng(seed)
    if values is None:
        values = (rng.random(shape, dtype=np.float32) if dtype == np.float32
                  else rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True))
    msg = conv.numpy_to_image(values, enc, stamp=stamp or Time(), frame_id="cam")
    if pad:
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(h, msg.step)
        padded = np.zeros((h, msg.step + pad), np.uint8)
        padded[:, :msg.step] = rows
        msg.step += pad
        msg.data = padded.tobytes()
    return msg, values


@st.composite
def bad_images(draw):
    kind = draw(st.sampled_from(["encoding", "zero", "over_cap", "step_small", "data_len",
                                 "float_range"]))
    enc = draw(st.sampled_from(ENCODINGS))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    msg, _ = _image(enc, h, w, draw(st.integers(0, 1000)))
    if kind == "encoding":
        msg.encoding = draw(st.text(max_size=12).filter(lambda s: s not in conv.IMAGE_ENCODINGS))
        return msg, "encoding"
    if kind == "zero":
        if draw(st.booleans()):
            msg.height = 0
        else:
            msg.width = 0
        return msg, "size"
    if kind == "over_cap":  # a real frame just over the cap, or a header claiming a huge one
        if draw(st.booleans()):
            side = draw(st.integers(int(math.isqrt(PIXEL_CAP)) + 1, 200))
            msg, _ = _image("mono8", side, side, 0)
        else:
            msg.height, msg.width = draw(st.integers(10**4, 2**31 - 1)), draw(st.integers(10**4, 2**31 - 1))
        return msg, "size"
    if kind == "step_small":
        msg.step = draw(st.integers(0, msg.step - 1))
        return msg, "step"
    if kind == "data_len":
        cut = draw(st.integers(1, len(msg.data)))
        if draw(st.booleans()):
            msg.data = bytes(msg.data)[:-cut]
        else:
            msg.data = bytes(msg.data) + b"\0" * cut
        return msg, "step"
    # 32FC1 values outside [0, 1] or not finite
    bad = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.5, 1.5, 1e30]))
    vals = np.full((h, w), 0.5, np.float32)
    vals[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = bad
    msg, _ = _image("32FC1", h, w, 0, values=vals)
    return msg, "range"


@st.composite
def good_images(draw):
    enc = draw(st.sampled_from(ENCODINGS))
    side = int(math.isqrt(PIXEL_CAP))
    msg, _ = _image(enc, draw(st.integers(1, side)), draw(st.integers(1, side)),
                    draw(st.integers(0, 1000)), pad=draw(st.sampled_from([0, 0, 1, 3, 8])),
                    stamp=draw(stamps))
    if draw(st.booleans()) and conv.IMAGE_ENCODINGS[enc][0].itemsize > 1:  # byte-swapped data
        arr = conv.image_to_numpy(msg)
        msg = conv.numpy_to_image(arr.byteswap().view(arr.dtype.newbyteorder()), enc,
                                  stamp=msg.header.stamp)
        msg.is_bigendian = int(not msg.is_bigendian)
        msg.data = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder())).tobytes()
    return msg


def _audio(values, dims=None, offset=0) -> Float32MultiArray:
    msg = Float32MultiArray()
    msg.data = np.asarray(values, np.float32).tolist()
    if dims is not None:
        msg.layout.dim = [MultiArrayDimension(label="samples", size=int(s), stride=int(s))
                          for s in dims]
    msg.layout.data_offset = offset
    return msg


@st.composite
def bad_audio(draw):
    kind = draw(st.sampled_from(["nonfinite", "range", "empty", "layout_2d", "layout_short"]))
    n = draw(st.integers(2, 4000))
    pcm = np.random.default_rng(draw(st.integers(0, 99))).uniform(-1, 1, n).astype(np.float32)
    if kind == "nonfinite":
        pcm[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return _audio(pcm), "nonfinite"
    if kind == "range":
        pcm[draw(st.integers(0, n - 1))] = draw(st.floats(1.0001, 1e30)) * draw(st.sampled_from([1, -1]))
        return _audio(pcm), "range"
    if kind == "empty":
        return _audio([], dims=draw(st.sampled_from([None, [0]]))), "empty"
    if kind == "layout_2d":  # not mono
        return _audio(np.zeros(4 * n, np.float32), dims=[2, 2 * n]), "layout"
    return _audio(pcm, dims=[n + draw(st.integers(1, 100))]), "layout"


@st.composite
def good_audio(draw):
    n = draw(st.integers(1, 16000))
    pcm = np.random.default_rng(draw(st.integers(0, 99))).uniform(-1, 1, n).astype(np.float32)
    offset = draw(st.integers(0, 3))
    return _audio(np.concatenate([np.zeros(offset, np.float32), pcm]), dims=[n], offset=offset)


def _path(points, stamp=None) -> Path:
    msg = Path()
    msg.header.stamp = stamp or Time()
    from geometry_msgs.msg import PoseStamped

    for x, y in points:
        p = PoseStamped()
        p.pose.position.x, p.pose.position.y = float(x), float(y)
        msg.poses.append(p)
    return msg


@st.composite
def bad_paths(draw):
    kind = draw(st.sampled_from(["empty", "one", "nonfinite", "degenerate"]))
    if kind == "empty":
        return Path(), "empty"
    if kind == "one":
        return _path([(draw(st.floats(-1e6, 1e6)), draw(st.floats(-1e6, 1e6)))]), "empty"
    n = draw(st.integers(2, 50))
    if kind == "nonfinite":
        pts = np.random.default_rng(n).random((n, 2))
        pts[draw(st.integers(0, n - 1)), draw(st.integers(0, 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf]))
        return _path(pts), "nonfinite"
    x, y = draw(st.floats(-1e6, 1e6)), draw(st.floats(-1e6, 1e6))
    return _path([(x, y)] * n), "codec"  # no extent: the trajectory codec rejects it


@st.composite
def good_paths(draw):
    n = draw(st.integers(2, 300))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e4]))
    pts = np.random.default_rng(draw(st.integers(0, 999))).random((n, 2)) * scale
    return _path(pts, draw(stamps))


# --------------------------------------------------------------------------- tests
def test_pixel_cap_is_a_parameter(rig):
    assert rig.node.get_parameter("max_image_pixels").value == PIXEL_CAP
    side = int(math.isqrt(PIXEL_CAP))
    rig.send("image", _image("mono8", side, side, 1)[0], None)
    rig.send("image", _image("mono8", side, side + 1, 1)[0], "size")


def test_fuzz_image(rig):
    @FUZZ
    @given(case=bad_images())
    def bad(case):
        rig.send("image", *case)

    from crossmodal_ros.codecs import CodecError, ImageCodec

    codec = ImageCodec()  # the untrained checkpoint stores the default codecs

    @FUZZ
    @given(msg=good_images())
    def good(msg):
        # a well-formed frame is fused, or - when the image codec finds no digit in it (random
        # pixels often hold none) - a counted 'codec' drop; the codec itself says which
        try:
            codec.encode(conv.image_to_numpy(msg))
            expected = None
        except CodecError:
            expected = "codec"
        rig.send("image", msg, expected)

    bad()
    good()
    _valid_input_gives_the_engine_result(rig, "image")


def test_fuzz_audio(rig):
    @FUZZ
    @given(case=bad_audio())
    def bad(case):
        rig.send("audio", *case)

    @FUZZ
    @given(msg=good_audio())
    def good(msg):
        rig.send("audio", msg, None)

    bad()
    good()
    # longer than the audio codec allows (60 s): passes conversion, rejected at fusion
    rig.send("audio", _audio(np.zeros(60 * 16000 + 1, np.float32)), "codec")
    _valid_input_gives_the_engine_result(rig, "audio")


def test_fuzz_trajectory(rig):
    @FUZZ
    @given(case=bad_paths())
    def bad(case):
        rig.send("trajectory", *case)

    @FUZZ
    @given(msg=good_paths())
    def good(msg):
        rig.send("trajectory", msg, None)

    bad()
    good()
    _valid_input_gives_the_engine_result(rig, "trajectory")


def test_fuzz_label(rig):
    @FUZZ
    @given(value=st.one_of(st.integers(-(2**31), -1), st.integers(10, 2**31 - 1)))
    def bad(value):
        rig.send("label", Int32(data=value), "range")

    @FUZZ
    @given(value=st.integers(0, 9))
    def good(value):
        rig.send("label", Int32(data=value), None)

    bad()
    good()
    _valid_input_gives_the_engine_result(rig, "label")


def test_odd_stamps_reach_the_output_header(rig):
    """Zero stamp -> arrival time on the node clock; past, future and negative stamps are
    carried as they are (liveness follows arrival, not the stamp).
    """
    for stamp in (Time(sec=0), Time(sec=5, nanosec=7), Time(sec=2**31 - 1, nanosec=999_999_999),
                  Time(sec=-3, nanosec=1)):
        assert rig.spin_until(lambda: rig.node.live_inputs() == (), 3.0)
        n = rig.out.count("/nexus/image")
        t0 = time.time()
        rig.send("image", _image("mono8", 28, 28, 3, stamp=stamp)[0], None)
        assert rig.spin_until(lambda: rig.out.count("/nexus/image") > n, 3.0)
        got = rig.out.last("/nexus/image").header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            assert abs(conv.stamp_to_seconds(got) - t0) < 5.0
        else:
            assert (got.sec, got.nanosec) == (stamp.sec, stamp.nanosec)


def test_drops_show_in_diagnostics_and_warnings_are_throttled(rig, capfd):
    node = rig.node
    capfd.readouterr()
    t0 = time.monotonic()
    bad, _ = _image("mono8", 8, 8, 0)
    bad.encoding = "yuv422"
    for _ in range(25):
        rig.send("image", bad, "encoding")
        rig.send("label", Int32(data=-1), "range")
    elapsed = time.monotonic() - t0
    # diagnostics: a status published after the last drop carries every per-reason count
    expected = {f"{m} dropped ({r})": str(n) for m, c in node.dropped.items() for r, n in c.items()}
    start = rig.out.count("/diagnostics")

    def diag_matches():
        for d in rig.out.messages["/diagnostics"][start:]:
            for s in d.status:
                values = {kv.key: kv.value for kv in s.values}
                if all(values.get(k) == v for k, v in expected.items()):
                    return True
        return False

    assert rig.spin_until(diag_matches, 5.0), expected
    err = capfd.readouterr().err
    warnings = re.findall(r"dropped (image|label) input \((\w+)", err)
    # 50 drops, two (modality, reason) keys, at most one warning per key per 5 s
    per_key_limit = 1 + int(elapsed // 5.0)
    assert warnings, "drops must be logged"
    for key in {("image", "encoding"), ("label", "range")}:
        assert warnings.count(key) <= per_key_limit, (warnings, elapsed)


# --------------------------------------------------------------------------- helpers
def _valid_input_gives_the_engine_result(rig, modality: str) -> None:
    """After the fuzzing, one known valid input alone yields exactly the engine's offline
    result for it (the node is not left in a bad state).
    """
    node = rig.node
    assert rig.spin_until(lambda: node.live_inputs() == (), 3.0)
    # every fusion so far published one latent: receive them all before clearing (else the
    # fuzzing's last latent can arrive after the clear and be taken for this input's)
    assert rig.spin_until(lambda: rig.out.total["/nexus/latent"] == node.fused_count, 3.0), \
        (rig.out.total["/nexus/latent"], node.fused_count)
    rig.out.clear()
    if modality == "image":
        frame = np.zeros((56, 56), np.uint8)
        frame[10:46, 26:30] = 255
        msg, raw = conv.numpy_to_image(frame, "mono8"), frame
    elif modality == "audio":
        raw = (0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)).astype(np.float32)
        msg = conv.numpy_to_audio(raw)
    elif modality == "trajectory":
        s = np.linspace(0, 1, 30)
        raw = np.stack([0.5 + 0.3 * np.cos(6 * s), 0.5 + 0.3 * np.sin(6 * s)], 1)
        msg = conv.numpy_to_path(raw)
    else:
        raw, msg = 7, Int32(data=7)
    rig.send(modality, msg, None)
    assert rig.spin_until(lambda: any(m.data == modality
                                      for m in rig.out.messages["/nexus/modalities"]), 3.0)
    assert rig.spin_until(lambda: rig.out.count("/nexus/latent") >= 1, 2.0)
    mu, logvar = conv.latent_from_msg(rig.out.messages["/nexus/latent"][0])
    expected = node.engine.infer({modality: raw}, sample_rate=16000)
    np.testing.assert_allclose(mu, expected.latent_mu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logvar, expected.latent_logvar, rtol=1e-5, atol=1e-5)
