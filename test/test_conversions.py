# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Message <-> numpy conversions: round trips for every encoding, padding, endianness, errors."""
import array
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmodal_ros.ros.conversions import (
    IMAGE_ENCODINGS,
    ConversionError,
    audio_to_numpy,
    image_to_canonical,
    image_to_numpy,
    latent_from_msg,
    latent_from_stamped,
    latent_to_msg,
    latent_to_stamped,
    make_header,
    numpy_to_audio,
    numpy_to_image,
    numpy_to_path,
    PathBuilder,
    path_to_numpy,
    probs_from_msg,
    probs_to_msg,
    seconds_to_stamp,
    stamp_to_seconds,
)
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, MultiArrayDimension
from nav_msgs.msg import Path


def _random_image(rng, encoding, h, w):
    dtype, c = IMAGE_ENCODINGS[encoding]
    shape = (h, w) if c == 1 else (h, w, c)
    if dtype == np.float32:
        return rng.standard_normal(shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def _manual_image(arr, encoding, pad=0, big_endian=False):
    """Build an Image by hand (independent of numpy_to_image): optional row padding/endianness."""
    dtype, c = IMAGE_ENCODINGS[encoding]
    h, w = arr.shape[:2]
    a = arr.astype(dtype.newbyteorder(">" if big_endian else "<"))
    rows = a.reshape(h, -1).view(np.uint8).reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big_endian),
                step=rows.shape[1] + pad)
    msg.data = padded.tobytes()
    return msg


@pytest.mark.parametrize("encoding", sorted(IMAGE_ENCODINGS))
def test_image_round_trip_every_encoding(encoding, rng):
    arr = _random_image(rng, encoding, 7, 5)
    header = make_header(seconds_to_stamp(12.5), "cam")
    msg = numpy_to_image(arr, encoding, header)
    assert msg.encoding == encoding and (msg.height, msg.width) == (7, 5)
    assert msg.header.frame_id == "cam" and stamp_to_seconds(msg.header.stamp) == 12.5
    assert msg.step == 5 * IMAGE_ENCODINGS[encoding][1] * IMAGE_ENCODINGS[encoding][0].itemsize
    back = image_to_numpy(msg)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


@settings(max_examples=60, deadline=None)
@given(
    encoding=st.sampled_from(sorted(IMAGE_ENCODINGS)),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    pad=st.integers(0, 7),
    big=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_image_padding_and_endianness(encoding, h, w, pad, big, seed):
    arr = _random_image(np.random.default_rng(seed), encoding, h, w)
    back = image_to_numpy(_manual_image(arr, encoding, pad=pad, big_endian=big))
    assert back.dtype.isnative and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_big_endian_mono16_values_are_decoded():
    msg = Image(height=1, width=2, encoding="mono16", is_bigendian=1, step=4)
    msg.data = bytes([0x01, 0x02, 0xFF, 0x00])
    np.testing.assert_array_equal(image_to_numpy(msg), [[0x0102, 0xFF00]])
    msg.is_bigendian = 0
    np.testing.assert_array_equal(image_to_numpy(msg), [[0x0201, 0x00FF]])


def test_canonical_colour_order():
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 10  # blue
    bgr[..., 2] = 200  # red
    rgb = image_to_canonical(bgr, "bgr8")
    assert rgb[0, 0, 0] == 200 and rgb[0, 0, 2] == 10
    bgra = np.concatenate([bgr, np.full((2, 2, 1), 7, np.uint8)], axis=2)
    assert image_to_canonical(bgra, "bgra8").shape == (2, 2, 3)
    assert image_to_canonical(bgra[..., [2, 1, 0, 3]], "rgba8")[0, 0, 0] == 200


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda m: setattr(m, "encoding", "yuv422"), "unsupported"),
        (lambda m: setattr(m, "step", m.step - 1), "step"),
        (lambda m: setattr(m, "step", m.step + 1), "bytes"),
        (lambda m: setattr(m, "height", m.height + 1), "bytes"),
        (lambda m: setattr(m, "width", 0), "zero size"),
        (lambda m: setattr(m, "data", m.data[:-1]), "bytes"),
    ],
)
def test_bad_images_raise_conversion_error(mutate, match):
    msg = numpy_to_image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(ConversionError, match=match):
        image_to_numpy(msg)


def test_pixel_cap():
    msg = numpy_to_image(np.zeros((10, 10), np.uint8), "mono8")
    assert image_to_numpy(msg, max_pixels=100).shape == (10, 10)
    with pytest.raises(ConversionError, match="cap"):
        image_to_numpy(msg, max_pixels=99)


def test_numpy_to_image_rejects_wrong_dtype_or_shape():
    with pytest.raises(ConversionError, match="dtype"):
        numpy_to_image(np.zeros((3, 3), np.float64), "32FC1")
    with pytest.raises(ConversionError, match="shape"):
        numpy_to_image(np.zeros((3, 3), np.uint8), "rgb8")
    with pytest.raises(ConversionError, match="unsupported"):
        numpy_to_image(np.zeros((3, 3), np.uint8), "8UC1")
    with pytest.raises(ConversionError):
        numpy_to_image(np.zeros((0, 3), np.uint8), "mono8")
    assert isinstance(ConversionError("x"), ValueError)


def test_numpy_to_image_is_fast():
    """Array/bytes assignment, never per-pixel Python: 640x480 rgb8 well under 20 ms."""
    frame = np.zeros((480, 640, 3), np.uint8)
    numpy_to_image(frame, "rgb8")
    t = time.perf_counter()
    for _ in range(5):
        msg = numpy_to_image(frame, "rgb8")
    per = (time.perf_counter() - t) / 5
    assert isinstance(msg.data, array.array) and len(msg.data) == 640 * 480 * 3
    assert per < 0.02, per


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0, width=32), min_size=1, max_size=300))
def test_audio_round_trip(values):
    pcm = np.array(values, np.float32)
    msg = numpy_to_audio(pcm)
    assert msg.layout.dim[0].label == "samples" and msg.layout.dim[0].size == pcm.size
    back = audio_to_numpy(msg)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, pcm)


def test_audio_accepts_bare_and_offset_layouts():
    msg = Float32MultiArray()
    msg.data = [0.5, -0.25, 0.0]
    np.testing.assert_array_equal(audio_to_numpy(msg), [0.5, -0.25, 0.0])
    msg.layout.data_offset = 1
    msg.layout.dim = [MultiArrayDimension(label="x", size=2, stride=2)]
    np.testing.assert_array_equal(audio_to_numpy(msg), [-0.25, 0.0])


@pytest.mark.parametrize(
    "data, dims, match",
    [
        ([], [], "empty"),
        ([0.1, float("nan")], [], "NaN"),
        ([0.1, float("inf")], [], "NaN"),
        ([0.1, 1.5], [], r"\[-1, 1\]"),
        ([0.0] * 4, [2, 2], "mono"),
        ([0.0] * 3, [5], "needs"),
    ],
)
def test_bad_audio(data, dims, match):
    msg = Float32MultiArray()
    msg.data = data
    msg.layout.dim = [MultiArrayDimension(label="d", size=s, stride=s) for s in dims]
    with pytest.raises(ConversionError, match=match):
        audio_to_numpy(msg)


def test_numpy_to_audio_rejects_bad_input():
    for bad in (np.zeros(0, np.float32), np.zeros((2, 2), np.float32),
                np.array([2.0], np.float32), np.array([np.nan]), np.array([1, 0], np.int16)):
        with pytest.raises(ConversionError):
            numpy_to_audio(bad)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=1, max_size=50))
def test_path_round_trip(points):
    pts = np.array(points, np.float64)
    msg = numpy_to_path(pts, make_header(seconds_to_stamp(3.0), "pen"))
    assert len(msg.poses) == len(points) and msg.header.frame_id == "pen"
    assert all(p.header.frame_id == "pen" for p in msg.poses)
    np.testing.assert_array_equal(path_to_numpy(msg), pts)


def test_path_builder_serializes_like_numpy_to_path():
    """The node's reused Path equals a freshly built one, through size and frame changes.

    Compared after a serialization round trip (what a subscriber receives), not byte for byte:
    CDR padding bytes are not initialised.
    """
    from rclpy.serialization import deserialize_message, serialize_message

    builder = PathBuilder()
    rng = np.random.default_rng(0)
    for n, dims, frame in ((100, 2, "pen"), (100, 2, "arm"), (3, 3, "pen"), (100, 2, "pen")):
        pts = rng.random((n, dims))
        hdr = make_header(seconds_to_stamp(float(n)), frame)
        built = builder.build(pts, hdr)
        assert deserialize_message(serialize_message(built), Path) == numpy_to_path(pts, hdr)
        np.testing.assert_array_equal(path_to_numpy(built), pts[:, :2])
    with pytest.raises(ConversionError, match="NaN"):
        builder.build(np.array([[0.0, float("nan")]]))
    with pytest.raises(ConversionError):
        builder.build(np.zeros((0, 2)))


def test_path_stamps_and_z_ignored():
    pts = np.array([[0.0, 1.0, 9.0], [2.0, 3.0, -9.0]])
    msg = numpy_to_path(pts, stamps=[1.25, 2.5])
    back, stamps = path_to_numpy(msg, with_stamps=True)
    np.testing.assert_array_equal(back, pts[:, :2])
    np.testing.assert_allclose(stamps, [1.25, 2.5])


def test_bad_paths():
    with pytest.raises(ConversionError, match="no poses"):
        path_to_numpy(Path())
    msg = numpy_to_path(np.zeros((2, 2)))
    msg.poses[1].pose.position.x = float("nan")
    with pytest.raises(ConversionError, match="NaN"):
        path_to_numpy(msg)
    with pytest.raises(ConversionError):
        numpy_to_path(np.zeros((3,)))
    with pytest.raises(ConversionError):
        numpy_to_path(np.zeros((2, 2)), stamps=[1.0])


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 64), seed=st.integers(0, 2**31 - 1))
def test_latent_round_trip_and_layout(d, seed):
    rng = np.random.default_rng(seed)
    mu, logvar = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    msg = latent_to_msg(mu, logvar)
    dims = msg.layout.dim
    assert [(x.label, x.size, x.stride) for x in dims] == [("stat", 2, 2 * d), ("z", d, d)]
    # The documented consumer recipe works without this module:
    np.testing.assert_array_equal(np.asarray(msg.data, np.float32).reshape(2, d), [mu, logvar])
    m2, l2 = latent_from_msg(msg)
    np.testing.assert_array_equal(m2, mu)
    np.testing.assert_array_equal(l2, logvar)


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 48), seed=st.integers(0, 2**31 - 1),
       fused=st.sets(st.sampled_from(["image", "audio", "label"])))
def test_stamped_latent_round_trip(d, seed, fused):
    """Values exactly (float32 -> float64 -> float32), the fused flags, the model entry; the names
    are cached per model, and one message's names are its own (changing them leaves the next
    message as it was).
    """
    rng = np.random.default_rng(seed)
    mu, logvar = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    every = ("image", "audio", "trajectory", "label")
    header = make_header(seconds_to_stamp(12.5), "base")
    msg = latent_to_stamped(mu, logvar, tuple(fused), "nexus", "ab12", header, every)
    assert msg.name[0] == "mu/0" and msg.name[d] == "logvar/0" and msg.name[-1] == "model/nexus/ab12"
    assert len(msg.name) == len(msg.position) == 2 * d + len(every) + 1
    back = latent_from_stamped(msg)
    np.testing.assert_array_equal(back.mu, mu)
    np.testing.assert_array_equal(back.logvar, logvar)
    assert set(back.fused) == fused and back.stamp_s == 12.5 and back.frame_id == "base"
    assert back.model == {"kind": "nexus", "checkpoint_sha256": "ab12"}
    msg.name[0] = "changed"
    again = latent_to_stamped(mu, logvar, tuple(fused), "nexus", "ab12", header, every)
    assert again.name[0] == "mu/0" and again.name is not msg.name


def test_bad_latent():
    with pytest.raises(ConversionError):
        latent_to_msg(np.zeros(3), np.zeros(4))
    msg = latent_to_msg(np.zeros(3), np.zeros(3))
    msg.layout.dim[0].label = "x"
    with pytest.raises(ConversionError, match="layout"):
        latent_from_msg(msg)
    msg = latent_to_msg(np.zeros(3), np.zeros(3))
    msg.data = msg.data[:-1]
    with pytest.raises(ConversionError, match="needs"):
        latent_from_msg(msg)


def test_probs_round_trip_and_validation():
    p = np.full(10, 0.1, np.float32)
    msg = probs_to_msg(p)
    assert msg.layout.dim[0].label == "class" and msg.layout.dim[0].size == 10
    np.testing.assert_array_equal(probs_from_msg(msg), p)
    bad = probs_to_msg(np.full(10, 0.2, np.float32))
    with pytest.raises(ConversionError, match="sum"):
        probs_from_msg(bad)
    with pytest.raises(ConversionError):
        probs_to_msg(np.array([np.nan]))


def test_stamp_conversions():
    assert stamp_to_seconds(seconds_to_stamp(1.5)) == 1.5
    s = seconds_to_stamp(2.999999999999)
    assert s.nanosec < 1_000_000_000
    with pytest.raises(ConversionError):
        seconds_to_stamp(-1.0)


def test_errors_carry_a_reason_category():
    msg = numpy_to_image(np.zeros((2, 2), np.uint8), "mono8")
    msg.encoding = "bayer_rggb8"
    with pytest.raises(ConversionError) as info:
        image_to_numpy(msg)
    assert info.value.reason == "encoding"
    bad = Float32MultiArray()
    bad.data = [float("nan")]
    with pytest.raises(ConversionError) as info:
        audio_to_numpy(bad)
    assert info.value.reason == "nonfinite"
    with pytest.raises(ConversionError) as info:
        path_to_numpy(Path())
    assert info.value.reason == "empty"


def test_msg_to_input_applies_the_fusion_checks():
    """The node's and the bag evaluator's one input check: 32FC1 range, >= 2 poses, label range."""
    from std_msgs.msg import Int32

    from crossmodal_ros.ros.conversions import ConversionError, msg_to_input, numpy_to_image, numpy_to_path

    good = numpy_to_image(np.full((28, 28), 0.5, np.float32), "32FC1")
    assert msg_to_input("image", good).shape == (28, 28)
    for bad in (np.full((28, 28), 1.5, np.float32), np.full((28, 28), np.nan, np.float32)):
        with pytest.raises(ConversionError) as err:
            msg_to_input("image", numpy_to_image(bad, "32FC1"))
        assert err.value.reason == "range"
    assert msg_to_input("trajectory", numpy_to_path(np.array([[0.0, 0.0], [1.0, 1.0]]))).shape == (2, 2)
    with pytest.raises(ConversionError) as err:
        msg_to_input("trajectory", numpy_to_path(np.array([[0.0, 0.0]])))
    assert err.value.reason == "empty"
    assert msg_to_input("label", Int32(data=3)) == 3
    with pytest.raises(ConversionError, match="outside 0..9") as err:
        msg_to_input("label", Int32(data=10))
    assert err.value.reason == "range"
    with pytest.raises(ConversionError, match="no input conversion"):
        msg_to_input("smell", good)
