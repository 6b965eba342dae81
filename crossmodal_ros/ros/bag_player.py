"""Replay a rosbag2 (MCAP or sqlite3) into the live graph, with ``/clock``.

``ros2 bag play`` is not available everywhere (no ``rosbag2_py`` wheel); this player needs only
rclpy and rosbags. Messages are published as the raw CDR bytes stored in the bag (rclpy
publishers accept serialized messages), in bag-time order, paced by ``--rate``; ``/clock``
(rosgraph_msgs/Clock) carries bag time at ``--clock-hz`` and before every message, so nodes with
``use_sim_time`` see bag time. Topics keep their recorded names; remap them with the usual
``--ros-args -r /camera/image_raw:=/my/camera``.

Usage::

    bag_player out/digits_test --rate 2.0
    bag_player recording.mcap --topics /camera/image_raw /pen/stroke --loop
"""
from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Iterable

from crossmodal_ros.ros.bag_export import BagError

__all__ = ["BagPlayer", "open_bag", "bag_custom_data", "message_class", "main"]


def open_bag(path: str | Path):
    """An opened :class:`rosbags.rosbag2.Reader` for a bag directory or its .mcap/.db3 file."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises several error types
        raise BagError(f"cannot open bag {path}: {exc}") from exc
    return reader


def bag_custom_data(path: str | Path) -> dict[str, str]:
    """The ``custom_data`` of a bag's metadata.yaml (empty when absent)."""
    import yaml

    path = Path(path)
    meta = (path if path.is_dir() else path.parent) / "metadata.yaml"
    if not meta.is_file():
        return {}
    info = yaml.safe_load(meta.read_text()).get("rosbag2_bagfile_information", {})
    return {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}


def message_class(msgtype: str):
    """The rclpy message class for a type name like ``sensor_msgs/msg/Image``."""
    try:
        pkg, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise BagError(f"message type {msgtype} is not available in this Python environment "
                       f"({exc})") from exc


class BagPlayer:
    """Publishes a bag's messages in time order on ``node`` with ``/clock``.

    Attributes ``published`` (messages per topic) and ``clock_published`` count what went out;
    :meth:`play` blocks until the bag is done (or :meth:`stop`); run it in a thread to spin the
    same process's executor meanwhile.
    """

    def __init__(self, node, bag: str | Path, rate: float = 1.0, topics: Iterable[str] | None = None,
                 clock_hz: float = 100.0, loop: bool = False, qos_depth: int = 100):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock

        if not rate > 0:
            raise BagError(f"rate must be positive, got {rate}")
        if not clock_hz > 0:
            raise BagError(f"clock_hz must be positive, got {clock_hz}")
        self.node = node
        self.path = Path(bag)
        self.rate = float(rate)
        self.clock_period = 1.0 / float(clock_hz)
        self.loop = loop
        self._stop = threading.Event()
        reader = open_bag(self.path)
        try:
            available = {c.topic: c.msgtype for c in reader.connections}
            self.start_ns, self.end_ns = reader.start_time, reader.end_time
            self.message_count = reader.message_count
        finally:
            reader.close()
        wanted = set(available) if topics is None else set(topics)
        missing = wanted - set(available)
        if missing:
            raise BagError(f"topics {sorted(missing)} are not in {self.path}; it has {sorted(available)}")
        qos = QoSProfile(depth=qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.topics = {t: available[t] for t in sorted(wanted)}
        self.publishers = {
            t: node.create_publisher(message_class(mt), t, qos) for t, mt in self.topics.items()
        }
        self.clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
        self._clock_msg = Clock
        self.published = {t: 0 for t in self.topics}
        self.clock_published = 0

    def stop(self) -> None:
        self._stop.set()

    def _publish_clock(self, ns: int) -> None:
        msg = self._clock_msg()
        msg.clock.sec, msg.clock.nanosec = divmod(int(ns), 1_000_000_000)
        self.clock_pub.publish(msg)
        self.clock_published += 1

    def _wait_until(self, wall_target: float, bag_at, bag_target: int) -> None:
        """Sleep until ``wall_target`` (monotonic), publishing /clock at the clock rate; the
        clock never passes ``bag_target`` (the next message's time), so it stays monotonic."""
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= wall_target:
                return
            time.sleep(min(self.clock_period, wall_target - now))
            self._publish_clock(min(bag_at(time.monotonic()), bag_target))

    def play(self) -> int:
        """Replay the bag (repeatedly with ``loop``); returns the number of messages published."""
        total = 0
        while True:
            reader = open_bag(self.path)
            try:
                conns = [c for c in reader.connections if c.topic in self.publishers]
                wall0 = time.monotonic()
                bag0 = self.start_ns

                def bag_at(wall):
                    return bag0 + int((wall - wall0) * self.rate * 1e9)

                self._publish_clock(bag0)
                for conn, ts, raw in reader.messages(connections=conns):
                    if self._stop.is_set():
                        return total
                    self._wait_until(wall0 + (ts - bag0) * 1e-9 / self.rate, bag_at, ts)
                    self._publish_clock(ts)
                    self.publishers[conn.topic].publish(bytes(raw))
                    self.published[conn.topic] += 1
                    total += 1
            finally:
                reader.close()
            if not self.loop or self._stop.is_set():
                return total


def main(argv=None) -> int:
    """Console entry ``bag_player``."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.utilities import remove_ros_args

    raw = sys.argv if argv is None else ["bag_player", *argv]
    p = argparse.ArgumentParser(prog="bag_player", description=__doc__.split("\n\n")[0])
    p.add_argument("bag", help="bag directory, .mcap or .db3 file")
    p.add_argument("--rate", type=float, default=1.0, help="replay speed factor (default 1.0)")
    p.add_argument("--topics", nargs="*", default=None, help="only these topics (default: all)")
    p.add_argument("--clock-hz", type=float, default=100.0, help="/clock rate (default 100)")
    p.add_argument("--loop", action="store_true", help="replay forever")
    args = p.parse_args(remove_ros_args(args=raw)[1:])
    try:
        with rclpy.init(args=raw):  # --ros-args (remapping, domain settings) apply to the node
            node = rclpy.create_node("bag_player")
            try:
                player = BagPlayer(node, args.bag, rate=args.rate, topics=args.topics,
                                   clock_hz=args.clock_hz, loop=args.loop)
            except BagError as exc:
                node.get_logger().error(str(exc))
                return 1
            node.get_logger().info(
                f"playing {args.bag}: {player.message_count} messages, "
                f"{(player.end_ns - player.start_ns) * 1e-9:.1f} s at rate {args.rate}")
            n = player.play()
            node.get_logger().info(f"done: {n} messages published")
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
