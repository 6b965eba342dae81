# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Camera node: publishes ``camera/image_raw`` (sensor_msgs/Image).

Sources (parameter ``source``):

* a device index (``"0"``), a stream URL (``rtsp://...``, ``http://...``) or a video file path:
  frames captured with OpenCV at ``rate_hz`` and published in ``encoding`` (rgb8, bgr8 or
  mono8); a video file loops when ``loop`` is true;
* ``dataset``: playback of the embedded digit images, one sample per ``period_s``, following
  ``outage_schedule`` (see :mod:`sensor_base`): with ``render`` true each digit is drawn into a
  ``frame_width`` x ``frame_height`` rgb8 camera frame by :func:`crossmodal_ros.sim.render_frame`
  (position, scale, lighting, polarity, blur and noise vary, seeded by ``seed`` and the tick), as
  a camera would see it; with ``render`` false (default) the bare 28x28 image is published as a
  mono8 frame of ``frame_size`` pixels square.

Run: ``ros2 run crossmodal_ros camera_node --ros-args -p source:=0``.
"""
from __future__ import annotations

import math

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from crossmodal_ros import units
from crossmodal_ros.modalities import IMAGE
from crossmodal_ros.ros.conversions import numpy_to_image
from crossmodal_ros.sensors.playback import SensorError, frame_from_image
from crossmodal_ros.ros.sensor_base import QOS_OVERRIDES, PlaybackSource, declare, publisher_qos, run_node

__all__ = ["CameraNode", "open_capture", "main"]

ENCODINGS = ("rgb8", "bgr8", "mono8")


def open_capture(source: str):
    """An opened ``cv2.VideoCapture`` for a device index, URL or video file; SensorError if not."""
    import cv2

    target = int(source) if source.strip().isdigit() else source
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise SensorError(
            f"camera source {source!r} could not be opened by OpenCV: check the device index "
            "(ls /dev/video*), the URL, or the video file path"
        )
    return cap


def convert_frame(bgr: np.ndarray, encoding: str) -> np.ndarray:
    """An OpenCV frame (BGR or grey) in the requested encoding's channel layout."""
    import cv2

    if bgr.ndim == 2:
        grey = bgr
        if encoding == "mono8":
            return grey
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR if encoding == "bgr8" else cv2.COLOR_GRAY2RGB)
    if encoding == "bgr8":
        return bgr
    if encoding == "rgb8":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


class CameraNode(Node):
    """Publishes camera frames from an OpenCV capture or from dataset playback."""

    EXECUTABLE = "camera_node"
    # Class defaults: destroy_node() may run on a node whose __init__ failed half-way (the
    # context destroys the nodes it tracks at shutdown), before these were assigned.
    capture = None
    playback: PlaybackSource | None = None

    def __init__(self, node_name: str = "camera_node", *, dataset: dict | None = None, **kwargs):
        super().__init__(node_name, **kwargs)
        self.source = declare(self, "source", "dataset",
                              "'dataset' for playback, or a device index, stream URL or video file.")
        self.frame_id = declare(self, "frame_id", "camera", "frame_id of the published images.")
        qos = publisher_qos(self)
        self.publisher = self.create_publisher(Image, units.unit(IMAGE).input_topic, qos,
                                               qos_overriding_options=QOS_OVERRIDES)
        self.frames_published = 0
        self.last_frame_shape: tuple | None = None
        self.capture = None
        self.playback: PlaybackSource | None = None
        if self.source == "dataset":
            self.frame_size = declare(self, "frame_size", 28,
                                      "Side of the published playback frames (28 = dataset size).")
            if not 8 <= self.frame_size <= 4096:
                raise SensorError(f"frame_size must be in [8, 4096], got {self.frame_size}")
            self.render = declare(self, "render", False,
                                  "Draw each digit into a full camera frame (sim.render_frame).")
            self.frame_width = declare(self, "frame_width", 640, "Width of rendered playback frames.")
            self.frame_height = declare(self, "frame_height", 480, "Height of rendered playback frames.")
            if self.render and not (32 <= self.frame_width <= 4096 and 32 <= self.frame_height <= 4096):
                raise SensorError(f"frame_width/frame_height must be in [32, 4096], got "
                                  f"{self.frame_width}x{self.frame_height}")
            self.playback = PlaybackSource(self, IMAGE, self._publish_sample, dataset)
        else:
            rate = declare(self, "rate_hz", 10.0, "Capture and publish rate (frames per second).")
            self.encoding = declare(self, "encoding", "rgb8", "Published encoding: rgb8, bgr8 or mono8.")
            self.loop = declare(self, "loop", True, "Restart a video file at its end.")
            if self.encoding not in ENCODINGS:
                raise SensorError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
            if not (rate > 0 and math.isfinite(rate)):
                raise SensorError(f"rate_hz must be positive, got {rate}")
            self.capture = open_capture(self.source)
            self.timer = self.create_timer(1.0 / rate, self._grab)
        self.get_logger().info(f"camera source: {self.source}")

    def _publish_sample(self, tick) -> None:
        image = self.playback.dataset[IMAGE][tick.index]
        if not self.render:
            self._publish(frame_from_image(image, self.frame_size), "mono8")
            return
        from crossmodal_ros.sim import FrameSpec, render_frame

        seed = int(self.get_parameter("seed").value)
        rng = np.random.default_rng([abs(seed), tick.tick % (2**32), 0xCA])
        try:
            frame = render_frame(image, rng, FrameSpec(width=self.frame_width, height=self.frame_height))
        except ValueError as exc:  # a blank dataset image: a camera would see empty paper
            self.get_logger().warning(f"cannot render row {tick.index}: {exc}", throttle_duration_sec=5.0)
            return
        self._publish(frame, "rgb8")

    def _publish(self, frame: np.ndarray, encoding: str) -> None:
        msg = numpy_to_image(frame, encoding, stamp=self.get_clock().now().to_msg(),
                             frame_id=self.frame_id)
        self.publisher.publish(msg)
        self.frames_published += 1
        self.last_frame_shape = tuple(frame.shape)

    def _grab(self) -> None:
        ok, frame = self.capture.read()
        if not ok and self.loop:
            import cv2

            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        if not ok:
            self.get_logger().warning(f"no frame from {self.source}", throttle_duration_sec=5.0)
            return
        self._publish(convert_frame(frame, self.encoding), self.encoding)

    def destroy_node(self):
        capture, self.capture = self.capture, None
        if capture is not None:
            capture.release()
        return super().destroy_node()


def main(args=None) -> int:
    """Console entry ``camera_node``."""
    return run_node(CameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
