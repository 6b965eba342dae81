# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Replay a rosbag2 (MCAP or sqlite3) into the live graph, with ``/clock``.

``ros2 bag play`` is not available everywhere (no ``rosbag2_py`` wheel); this player needs only
rclpy and rosbags. Messages are published as the raw CDR bytes stored in the bag (rclpy
publishers accept serialized messages), in bag-time order, paced by ``--rate``; ``/clock``
(rosgraph_msgs/Clock) carries bag time at ``--clock-hz`` and before every message, so nodes with
``use_sim_time`` see bag time. Topics keep their recorded names; remap them with the usual
``--ros-args -r /camera/image_raw:=/my/camera``.

No message is lost to discovery: before the first message the player waits until every
expected topic has a matched subscriber (default: the bag's sensor topics; ``--wait-for`` names
others, ``--wait-timeout`` bounds the wait and ends the player with an error naming the
topics nobody subscribed to, ``--no-wait`` starts at once). ``--start-paused`` publishes the
bag's start time on ``/clock`` and waits until the node's ``paused`` parameter is set false
(``ros2 param set /bag_player paused false``); setting it true pauses again. While paused,
``/clock`` stands still (a node on sim time stops its outputs, see ``clock_timeout_s``).

Usage::

    bag_player out/digits_test --rate 2.0
    bag_player recording.mcap --topics /camera/image_raw /pen/stroke --loop
    bag_player out/digits_test --start-paused --wait-timeout 30
"""
from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Iterable

from crossmodal_ros.bags.format import TOPICS, BagError, open_bag

__all__ = ["BagPlayer", "message_class", "main"]


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
        self._running = threading.Event()
        self._running.set()
        self._bag_now_ns = self.start_ns

    # ------------------------------------------------------------ before playing
    def default_wait_topics(self) -> list[str]:
        """The topics to wait for by default: the bag's sensor topics (bags.format.TOPICS) when it
        has any (nobody subscribes to ground truth), else every played topic.
        """
        sensors = [t for t in self.topics if t in TOPICS]
        return sensors or list(self.topics)

    def missing_subscribers(self, topics: Iterable[str]) -> list[str]:
        """Those of ``topics`` without a matched subscription (yet)."""
        return [t for t in topics if self.publishers[t].get_subscription_count() < 1]

    def wait_for_subscribers(self, topics: Iterable[str] | None = None, timeout: float = 10.0,
                             settle: float = 0.5) -> list[str]:
        """Block until every topic in ``topics`` (default :meth:`default_wait_topics`) has a
        matched subscriber, then ``settle`` seconds more while /clock carries the bag's start time
        (the subscriber side finishes its own matching). Returns the topics still unmatched at
        ``timeout`` ([] on success).
        """
        topics = list(self.default_wait_topics() if topics is None else topics)
        unknown = [t for t in topics if t not in self.publishers]
        if unknown:
            raise BagError(f"cannot wait for {unknown}: not played (playing {sorted(self.topics)})")
        deadline = time.monotonic() + float(timeout)
        while not self._stop.is_set():
            missing = self.missing_subscribers(topics)
            if not missing:
                # settle on the bag's start time: nodes on sim time get it before the first
                # message (else a message processed before the first /clock is stamped 0 and
                # is stale at once)
                end = time.monotonic() + settle
                while time.monotonic() < end and not self._stop.is_set():
                    self._publish_clock(self.start_ns)
                    time.sleep(self.clock_period)
                return []
            if time.monotonic() >= deadline:
                return missing
            time.sleep(0.02)
        return self.missing_subscribers(topics)

    # ------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        """Hold playback; /clock keeps publishing the current bag time (it stands still)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _hold_while_paused(self) -> float:
        """While paused, publish the frozen bag time at the clock rate; return the paused
        wall-clock seconds (the caller shifts its time base by them).
        """
        if self._running.is_set():
            return 0.0
        t0 = time.monotonic()
        while not self._running.wait(self.clock_period):
            if self._stop.is_set():
                break
            self._publish_clock(self._bag_now_ns)
        return time.monotonic() - t0

    def _publish_clock(self, ns: int) -> None:
        self._bag_now_ns = int(ns)
        msg = self._clock_msg()
        msg.clock.sec, msg.clock.nanosec = divmod(int(ns), 1_000_000_000)
        self.clock_pub.publish(msg)
        self.clock_published += 1

    def _wait_until(self, wall_target: float, bag_at, bag_target: int) -> float:
        """Sleep until ``wall_target`` (monotonic), publishing /clock at the clock rate; the
        clock never passes ``bag_target`` (the next message's time), so it stays monotonic.
        Returns the wall-clock seconds spent paused (``wall_target`` moves by them).
        """
        paused_s = 0.0
        while not self._stop.is_set():
            held = self._hold_while_paused()
            paused_s += held
            wall_target += held
            now = time.monotonic()
            if now >= wall_target:
                return paused_s
            time.sleep(min(self.clock_period, wall_target - now))
            self._publish_clock(min(bag_at(time.monotonic() - paused_s), bag_target))
        return paused_s

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
                    wall0 += self._wait_until(wall0 + (ts - bag0) * 1e-9 / self.rate, bag_at, ts)
                    if self._stop.is_set():
                        return total
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
    p.add_argument("--wait-for", nargs="*", default=None, metavar="TOPIC",
                   help="wait until these topics have a subscriber before playing (default: the "
                        "bag's sensor topics)")
    p.add_argument("--wait-timeout", type=float, default=10.0,
                   help="seconds to wait for subscribers; then fail naming the topics (default 10)")
    p.add_argument("--no-wait", action="store_true",
                   help="play at once, without waiting for subscribers (early messages may be lost)")
    p.add_argument("--start-paused", action="store_true",
                   help="start paused; resume with `ros2 param set /bag_player paused false`")
    args = p.parse_args(remove_ros_args(args=raw)[1:])
    try:
        with rclpy.init(args=raw):  # --ros-args (remapping, domain settings) apply to the node
            from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
            from rclpy.executors import SingleThreadedExecutor

            node = rclpy.create_node("bag_player")
            try:
                player = BagPlayer(node, args.bag, rate=args.rate, topics=args.topics,
                                   clock_hz=args.clock_hz, loop=args.loop)
            except BagError as exc:
                node.get_logger().error(str(exc))
                return 1
            node.declare_parameter("paused", bool(args.start_paused), ParameterDescriptor(
                description="true holds playback (/clock stands still); false plays"))

            def on_set(params):
                for prm in params:
                    if prm.name == "paused":
                        (player.pause if prm.value else player.resume)()
                return SetParametersResult(successful=True)

            node.add_on_set_parameters_callback(on_set)
            if args.start_paused:
                player.pause()
            # parameter services (pause/resume) spin beside the playing thread
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            spinner = threading.Thread(target=executor.spin, name="bag_player-spin", daemon=True)
            spinner.start()
            try:
                if not args.no_wait:
                    wait = args.wait_for if args.wait_for else None
                    try:
                        missing = player.wait_for_subscribers(wait, timeout=args.wait_timeout)
                    except BagError as exc:
                        node.get_logger().error(str(exc))
                        return 1
                    if missing:
                        node.get_logger().error(
                            f"no subscriber on {missing} after {args.wait_timeout:g} s; is the node "
                            "running (same ROS_DOMAIN_ID, topic names/remappings)? Use --no-wait to "
                            "play anyway or --wait-timeout to wait longer.")
                        return 2
                node.get_logger().info(
                    f"playing {args.bag}: {player.message_count} messages, "
                    f"{(player.end_ns - player.start_ns) * 1e-9:.1f} s at rate {args.rate}"
                    + (" (paused: set parameter paused:=false to start)" if args.start_paused else ""))
                if args.start_paused:
                    player._publish_clock(player.start_ns)
                n = player.play()
                node.get_logger().info(f"done: {n} messages published")
            finally:
                executor.shutdown()
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
