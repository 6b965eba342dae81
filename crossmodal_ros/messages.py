# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Decoding of ROS-message-shaped objects into numpy arrays, with no ROS import.

The functions read message *fields* only (duck typing), so they accept the rclpy message classes
(the nodes) and the dataclasses that ``rosbags`` deserialises (the ROS-free bag reader of
:mod:`crossmodal_ros.bags.reader`) alike: both paths drop exactly the same messages. The encoders
(numpy -> message), which need the message classes, are in :mod:`crossmodal_ros.ros.conversions`,
which documents the formats.

Every function raises :class:`ConversionError` (a ``ValueError``) for a message it cannot
convert; nothing else is raised for bad input.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = [
    "ConversionError",
    "IMAGE_ENCODINGS",
    "DEFAULT_MAX_PIXELS",
    "image_to_numpy",
    "image_to_canonical",
    "audio_to_numpy",
    "path_to_numpy",
    "stamp_to_seconds",
    "image_input",
    "audio_input",
    "stroke_input",
    "label_input",
]

#: encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "32FC1": (np.dtype(np.float32), 1),
}

#: Default cap on width*height of an incoming image (4096 x 4096).
DEFAULT_MAX_PIXELS = 4096 * 4096

_NATIVE_BIG = sys.byteorder == "big"


class ConversionError(ValueError):
    """A message or array that cannot be converted (bad encoding, size, layout or values).

    ``reason`` is a short machine-readable category for counting drops: ``encoding``, ``size``,
    ``step``, ``layout``, ``empty``, ``nonfinite``, ``range``, ``dtype`` or ``shape``.
    """

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


def stamp_to_seconds(stamp: Any) -> float:
    """``builtin_interfaces/Time`` -> seconds as a float."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def image_to_numpy(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``sensor_msgs/Image`` -> ``(H, W)`` or ``(H, W, C)`` array of the encoding's dtype.

    Checks: known encoding, non-zero size, ``width*height <= max_pixels``,
    ``step >= width * channels * itemsize`` and ``len(data) == step * height``.
    Row padding is removed; big-endian 16-bit/float data is converted to native order.
    """
    enc = msg.encoding
    if enc not in IMAGE_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {enc!r}; supported: {', '.join(IMAGE_ENCODINGS)}",
            reason="encoding")
    dtype, channels = IMAGE_ENCODINGS[enc]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ConversionError(f"image has zero size ({width}x{height})", reason="size")
    if width * height > max_pixels:
        raise ConversionError(
            f"image {width}x{height} has {width * height} pixels, over the cap of {max_pixels}",
            reason="size")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ConversionError(
            f"step {step} is smaller than one row of {width} {enc} pixels ({row_bytes} bytes)",
            reason="step")
    nbytes = len(msg.data)
    if nbytes != step * height:
        raise ConversionError(
            f"image data has {nbytes} bytes, expected step*height = {step}*{height} = "
            f"{step * height}", reason="step")
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != _NATIVE_BIG:
        dtype = dtype.newbyteorder()
    if step == row_bytes:
        out = raw.view(dtype)
    else:  # strip the row padding (works for any step, aligned or not)
        out = raw.reshape(height, step)[:, :row_bytes].copy().view(dtype)
    out = out.reshape((height, width) if channels == 1 else (height, width, channels))
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out


def image_to_canonical(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Camera array -> ``(H, W)`` grey or ``(H, W, 3)`` RGB (BGR swapped, alpha dropped).

    The form the engine's image codec takes; dtypes are kept (uint8/uint16/float32).
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError(f"unsupported image encoding {encoding!r}", reason="encoding")
    if encoding in ("bgr8", "bgra8"):
        return arr[:, :, 2::-1]
    if encoding == "rgba8":
        return arr[:, :, :3]
    return arr


def audio_to_numpy(msg: Any) -> np.ndarray:
    """``Float32MultiArray`` mono PCM -> 1-D float32 array in [-1, 1].

    Accepts an empty layout or one whose dimensions have at most one size > 1 (mono);
    ``layout.data_offset`` is honoured. Rejects empty chunks, NaN/Inf and values outside
    [-1, 1].
    """
    offset = int(msg.layout.data_offset)
    data = np.frombuffer(msg.data, dtype=np.float32) if len(msg.data) else np.zeros(0, np.float32)
    dims = [int(d.size) for d in msg.layout.dim]
    if dims:
        if sum(1 for s in dims if s > 1) > 1:
            raise ConversionError(f"audio must be mono (one dimension), got layout sizes {dims}",
                                  reason="layout")
        n = int(np.prod(dims))
        if offset + n > data.size:
            raise ConversionError(
                f"audio layout needs {offset + n} values, message has {data.size}", reason="layout")
        pcm = data[offset:offset + n]
    else:
        pcm = data[offset:]
    if pcm.size == 0:
        raise ConversionError("audio chunk is empty", reason="empty")
    if not np.isfinite(pcm).all():
        raise ConversionError("audio chunk contains NaN or Inf", reason="nonfinite")
    peak = float(np.abs(pcm).max())
    if peak > 1.0:
        raise ConversionError(f"audio samples must lie in [-1, 1], peak is {peak:.4g}",
                              reason="range")
    return pcm


def path_to_numpy(msg: Any, with_stamps: bool = False):
    """``nav_msgs/Path`` -> ``(N, 2)`` float64 points (x, y); ``z`` is ignored.

    With ``with_stamps=True`` returns ``(points, stamps)`` where ``stamps`` is ``(N,)`` float64
    seconds of each pose's header stamp. Rejects empty paths and non-finite coordinates.
    """
    n = len(msg.poses)
    if n == 0:
        raise ConversionError("path has no poses", reason="empty")
    pts = np.empty((n, 2), dtype=np.float64)
    for i, pose in enumerate(msg.poses):
        p = pose.pose.position
        pts[i, 0] = p.x
        pts[i, 1] = p.y
    if not np.isfinite(pts).all():
        raise ConversionError("path has NaN or Inf coordinates", reason="nonfinite")
    if not with_stamps:
        return pts
    stamps = np.array([stamp_to_seconds(p.header.stamp) for p in msg.poses], dtype=np.float64)
    return pts, stamps


# --------------------------------------------------------------------------- fusion inputs
# every check of the live node and of the offline bag evaluator, so both drop the same messages;
# the modality units (crossmodal_ros.units) name them and dispatch (units.msg_to_input)
def image_input(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image unit's input: the canonical camera array (:func:`image_to_canonical`); a 32FC1
    frame must hold finite values in [0, 1] (reason ``range``).
    """
    arr = image_to_numpy(msg, max_pixels=max_pixels)
    if msg.encoding == "32FC1" and arr.size and not (
            np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ConversionError("32FC1 camera frames must hold finite values in [0, 1]", reason="range")
    return image_to_canonical(arr, msg.encoding)


def audio_input(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The audio unit's input: a float32 PCM copy (:func:`audio_to_numpy`)."""
    return audio_to_numpy(msg).copy()


def stroke_input(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The trajectory unit's input: ``(N, 2)`` points with ``N >= 2`` (reason ``empty``)."""
    pts = path_to_numpy(msg)
    if pts.shape[0] < 2:
        raise ConversionError("a stroke needs at least 2 poses", reason="empty")
    return pts


def label_input(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """The label unit's input (``std_msgs/Int32``): the class in ``0 .. NUM_CLASSES - 1`` (reason ``range``)."""
    from crossmodal_ros.modalities import NUM_CLASSES

    if not 0 <= msg.data < NUM_CLASSES:
        raise ConversionError(f"label {msg.data} outside 0..{NUM_CLASSES - 1}", reason="range")
    return int(msg.data)
