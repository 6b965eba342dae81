# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Pen/arm node: publishes one written digit per message on ``pen/stroke`` (nav_msgs/Path).

Sources (parameter ``source``):

* ``topic``: subscribes to stamped positions on ``input_topic`` (``input_type``:
  ``point`` = geometry_msgs/PointStamped, ``pose`` = geometry_msgs/PoseStamped) of a pen, a
  touch screen or an end effector, and segments them with
  :class:`~crossmodal_ros.sensors.segmenters.StrokeSegmenter`: a time gap over ``gap_s`` or a height
  over ``pen_up_height`` lifts the pen; after ``pause_s`` without pen-down points the digit's
  strokes are published together as one Path (poses stamped with the sample times, the header
  with the publish time);
* ``dataset``: playback of the embedded pen trajectories, one per ``period_s`` following
  ``outage_schedule``.
"""
from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import PointStamped, PoseStamped
from nav_msgs.msg import Path
from rclpy.node import Node

from crossmodal_ros import units
from crossmodal_ros.modalities import TRAJECTORY
from crossmodal_ros.ros.conversions import numpy_to_path, stamp_to_seconds
from crossmodal_ros.sensors.playback import SensorError, sample_for
from crossmodal_ros.ros.qos import input_qos
from crossmodal_ros.sensors.segmenters import PenDigit, SegmenterError, StrokeSegmenter
from crossmodal_ros.ros.sensor_base import QOS_OVERRIDES, PlaybackSource, declare, now_s, publisher_qos, run_node

__all__ = ["PenNode", "main"]


class PenNode(Node):
    """Publishes pen trajectories segmented from a position stream, or from dataset playback."""

    EXECUTABLE = "pen_node"
    playback: PlaybackSource | None = None

    def __init__(self, node_name: str = "pen_node", *, dataset: dict | None = None, **kwargs):
        super().__init__(node_name, **kwargs)
        self.source = declare(self, "source", "dataset", "'topic' (segment a position stream) or 'dataset'.")
        self.frame_id = declare(self, "frame_id", "pen", "frame_id of the published paths.")
        qos = publisher_qos(self)
        self.publisher = self.create_publisher(Path, units.unit(TRAJECTORY).input_topic, qos,
                                               qos_overriding_options=QOS_OVERRIDES)
        self.digits_published = 0
        self.invalid_positions = 0
        self.playback: PlaybackSource | None = None
        if self.source == "dataset":
            self.playback = PlaybackSource(self, TRAJECTORY, self._publish_sample, dataset)
        elif self.source == "topic":
            topic = declare(self, "input_topic", "pen/position", "Topic of the stamped positions.")
            kind = declare(self, "input_type", "point", "'point' (PointStamped) or 'pose' (PoseStamped).")
            self.use_header_stamp = declare(
                self, "use_header_stamp", True,
                "Segment by the positions' header stamps (else by arrival time).")
            height = declare(self, "pen_up_height", math.inf,
                             "Positions with z above this are pen-up (.inf: z ignored).")
            try:
                self.segmenter = StrokeSegmenter(
                    gap_s=declare(self, "gap_s", 0.25, "A time gap (s) over this lifts the pen."),
                    pause_s=declare(self, "pause_s", 0.8, "Pen up this long (s) completes a digit."),
                    pen_up_height=None if math.isinf(height) else height,
                    min_points=declare(self, "min_points", 5, "Digits with fewer points are dropped."),
                    max_points=declare(self, "max_points", 5000, "A digit is cut at this many points."),
                )
            except SegmenterError as exc:
                raise SensorError(f"pen segmenter parameters: {exc}") from exc
            if kind not in ("point", "pose"):
                raise SensorError(f"input_type must be 'point' or 'pose', got {kind!r}")
            msg_type = PointStamped if kind == "point" else PoseStamped
            # a fresh sensor-data profile (best effort, keep last 5): a qos_overrides parameter edits
            # the profile it is given, which must not be rclpy's shared qos_profile_sensor_data
            self.create_subscription(msg_type, topic, self._on_position, input_qos("best_effort", 5),
                                     qos_overriding_options=QOS_OVERRIDES)
            self.create_timer(0.05, self._poll)
        else:
            raise SensorError(f"pen source must be 'topic' or 'dataset', got {self.source!r}")
        self.get_logger().info(f"pen source: {self.source}")

    def _on_position(self, msg) -> None:
        p = msg.point if isinstance(msg, PointStamped) else msg.pose.position
        t = stamp_to_seconds(msg.header.stamp) if self.use_header_stamp else now_s(self)
        try:
            digits = self.segmenter.add(t, p.x, p.y, p.z)
        except SegmenterError as exc:
            self.invalid_positions += 1
            self.get_logger().warning(f"position dropped: {exc}", throttle_duration_sec=5.0)
            return
        for d in digits:
            self._publish_digit(d)

    def _poll(self) -> None:
        # the pen-up pause is measured on the clock the positions are stamped with
        for d in self.segmenter.poll(now_s(self)):
            self._publish_digit(d)

    def _publish_digit(self, digit: PenDigit) -> None:
        msg = numpy_to_path(digit.points, stamp=self.get_clock().now().to_msg(),
                            frame_id=self.frame_id, stamps=digit.times)
        self.publisher.publish(msg)
        self.digits_published += 1

    def _publish_sample(self, tick) -> None:
        points = sample_for(self.playback.dataset, TRAJECTORY, tick.index)
        msg = numpy_to_path(np.asarray(points, dtype=np.float64),
                            stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        self.publisher.publish(msg)
        self.digits_published += 1


def main(args=None) -> int:
    """Console entry ``pen_node``."""
    return run_node(PenNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
