# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Shared plumbing of the sensor nodes: parameter declaration, QoS, dataset playback timing.

The sensor nodes (camera, microphone, pen) each have a device source and a ``dataset``
playback source. The playback part is the same for all three and lives here:
:class:`PlaybackSource` declares the playback parameters, builds the ROS-free
:class:`~crossmodal_ros.sensors.playback.PlaybackClock` and calls back once per live tick.
"""
from __future__ import annotations

import ast
import inspect
import math
import sys
from typing import Any, Callable, Iterable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions

from crossmodal_ros.sensors.outages import OutageSchedule, ScheduleError
from crossmodal_ros.sensors.playback import PlaybackClock, PlaybackTick, SensorError

#: Publishers and subscriptions of the sensor nodes accept per-topic QoS overrides
#: (``qos_overrides./camera/image_raw.publisher.reliability`` etc.), over qos_reliability/depth.
QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()

__all__ = ["QOS_OVERRIDES", "run_node", "declare", "publisher_qos", "PlaybackSource", "now_s", "load_playback_dataset",
           "declared_parameters", "wants_help", "print_parameter_help"]


def declare(node: Node, name: str, default: Any, description: str, *, array_type=None):
    """Declare a parameter with a description and return its value."""
    if array_type is not None:
        desc = ParameterDescriptor(description=description, type=array_type)
    else:
        desc = ParameterDescriptor(description=description)
    return node.declare_parameter(name, default, desc).value


def publisher_qos(node: Node) -> QoSProfile:
    """The publisher QoS from the node's ``qos_reliability`` / ``qos_depth`` parameters.

    Reliable is the default: a reliable publisher serves both reliable and best-effort
    subscribers, a best-effort one never connects to a reliable subscriber.
    """
    rel = declare(node, "qos_reliability", "reliable",
                  "Publisher reliability: 'reliable' (serves every subscriber) or 'best_effort'.")
    depth = declare(node, "qos_depth", 5, "Publisher history depth (keep-last).")
    if rel not in ("reliable", "best_effort"):
        raise SensorError(f"qos_reliability must be 'reliable' or 'best_effort', got {rel!r}")
    if depth < 1:
        raise SensorError(f"qos_depth must be >= 1, got {depth}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(depth),
        reliability=ReliabilityPolicy.RELIABLE if rel == "reliable" else ReliabilityPolicy.BEST_EFFORT,
    )


def now_s(node: Node) -> float:
    """The node clock (ROS time; sim time under ``use_sim_time``) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


_DATASETS: dict = {}


def load_playback_dataset(spec: str, split: str) -> dict:
    """The dataset dict for playback (loaded once per process and shared by the nodes)."""
    key = (spec, split)
    if key not in _DATASETS:
        from crossmodal_ros.data import load_dataset

        try:
            _DATASETS[key] = load_dataset(spec, split)
        except Exception as exc:  # noqa: BLE001 - report any loader failure as a sensor error
            raise SensorError(f"cannot load playback dataset {spec!r} split {split!r}: {exc}") from exc
    return _DATASETS[key]


class PlaybackSource:
    """Dataset playback for one modality: one sample per ``period_s``, following the schedule.

    Declares on ``node``: ``dataset``, ``split``, ``period_s``, ``seed``, ``outage_schedule``,
    ``schedule_repeat``, ``schedule_start``. ``on_tick(tick)`` runs (in a timer callback) once
    for every tick at which ``modality`` is live; ``tick.index`` is the dataset row.
    """

    def __init__(
        self,
        node: Node,
        modality: str,
        on_tick: Callable[[PlaybackTick], None],
        dataset: dict | None = None,
    ):
        self.node = node
        self.modality = modality
        spec = declare(node, "dataset", "digits",
                       "Playback dataset: 'digits' (embedded), 'mhd:<dir>' or 'bag:<file>'.")
        split = declare(node, "split", "test", "Dataset split to play back (train|val|test).")
        period = declare(node, "period_s", 1.0,
                         "Seconds between playback samples (one dataset sample per period).")
        seed = declare(node, "seed", 0,
                       "Seed of the playback order; sensors sharing it play the same sample.")
        phases = declare(
            node, "outage_schedule", [""],
            "Outage phases '[name @] start-end: modalities' over playback time; empty: all live.",
            array_type=ParameterType.PARAMETER_STRING_ARRAY,
        )
        repeat = declare(node, "schedule_repeat", False, "Loop the outage schedule.")
        start = declare(node, "schedule_start", 0.0,
                        "Clock time (s) at which playback time 0 starts; 0: when the node starts.")
        try:
            schedule = OutageSchedule.parse([p for p in phases if p.strip()], repeat=repeat)
        except ScheduleError as exc:
            raise SensorError(f"parameter outage_schedule: {exc}") from exc
        self.dataset = dataset if dataset is not None else load_playback_dataset(spec, split)
        if modality not in self.dataset:
            raise SensorError(f"dataset {self.dataset.get('name', spec)!r} has no {modality} data")
        if not (period > 0 and math.isfinite(period)):
            raise SensorError(f"period_s must be positive, got {period}")
        self.clock = PlaybackClock(
            len(self.dataset[modality]), period, seed=seed, schedule=schedule,
            schedule_start=start if start > 0 else now_s(node),
        )
        self._on_tick = on_tick
        self.published = 0
        self.skipped = 0
        # poll several times per period so a tick is published promptly after it starts
        self.timer = node.create_timer(min(period / 5.0, 0.05), self._poll)

    def _poll(self) -> None:
        tick = self.clock.poll(now_s(self.node))
        if tick is None:
            return
        if self.modality not in tick.live:
            self.skipped += 1
            return
        self._on_tick(tick)
        self.published += 1


def declared_parameters(*objects) -> list[tuple[str, str, str]]:
    """``(name, default, description)`` of every ``declare(...)`` call in the source of
    ``objects`` (modules or classes), in source order, duplicates removed.

    The sensor nodes declare parameters where they use them (which ones depend on ``source``);
    reading the calls from the source lists all of them for ``--help`` without a second table
    that could drift from the code.
    """
    seen: dict[str, tuple[str, str, str]] = {}
    for obj in objects:
        tree = ast.parse(inspect.getsource(obj))
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "declare"):
                continue
            args = call.args
            if len(args) < 4 or not (isinstance(args[1], ast.Constant) and isinstance(args[1].value, str)):
                continue
            name = args[1].value
            default = ast.unparse(args[2])
            if isinstance(args[3], ast.JoinedStr):  # f-string: keep its literal parts
                desc = "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
                               for v in args[3].values)
            else:
                desc = args[3].value if isinstance(args[3], ast.Constant) else ast.unparse(args[3])
            seen.setdefault(name, (name, default, " ".join(str(desc).split())))
    return sorted(seen.values(), key=lambda r: r[0])


def wants_help(args=None) -> bool:
    """True when ``-h``/``--help`` comes before any ``--ros-args`` on the command line."""
    argv = list(sys.argv[1:] if args is None else args[1:])
    if "--ros-args" in argv:
        argv = argv[: argv.index("--ros-args")]
    return "-h" in argv or "--help" in argv


def print_parameter_help(prog: str, summary: str, rows: Iterable[tuple[str, str, str]],
                         file=None) -> None:
    """Print ``prog``'s usage and its ROS parameters (name, default, description)."""
    out = file or sys.stdout
    print(f"usage: {prog} [-h] [--ros-args -p NAME:=VALUE ... --params-file FILE ...]\n", file=out)
    print(summary.strip() + "\n", file=out)
    print("ROS parameters (name, default: description):", file=out)
    for name, default, desc in rows:
        print(f"  {name} ({default})\n      {desc}", file=out)
    print("\nROS arguments (remapping, parameters, logging) follow --ros-args; see the README.",
          file=out)


def spin_until_shutdown(spin) -> None:
    """Run ``spin()`` (an executor's or ``rclpy.spin``) until the context shuts down.

    SIGINT shuts the context down; a wait set created in that instant fails with "context is not
    valid" (seen in CI). Only then is that error the normal way out; otherwise it is raised.
    """
    try:
        spin()
    except RCLError:
        if rclpy.ok():
            raise


def run_node(factory, args=None) -> int:
    """``main`` of a sensor node: init, spin until Ctrl-C or shutdown, clear errors.

    ``-h``/``--help`` prints the node's parameters (module docstring and every ``declare``
    call) and returns 0 without starting ROS. A failure while the node starts (a
    :class:`SensorError`, an invalid parameter value or type, anything else) is logged in one
    line and returns 1.
    """
    if wants_help(args):
        module = sys.modules[factory.__module__]
        doc = (module.__doc__ or "").strip()
        print_parameter_help(
            getattr(factory, "EXECUTABLE", factory.__module__.rsplit(".", 1)[-1]), doc,
            declared_parameters(module, sys.modules[__name__]))
        return 0
    try:
        with rclpy.init(args=args):
            try:
                node = factory()
            except SensorError as exc:
                rclpy.logging.get_logger("crossmodal_ros").error(str(exc))
                return 1
            except (KeyboardInterrupt, ExternalShutdownException):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a parameter of the wrong type
                rclpy.logging.get_logger("crossmodal_ros").error(
                    f"{getattr(factory, '__name__', 'node')} failed to start: "
                    f"{type(exc).__name__}: {exc}")
                return 1
            try:
                spin_until_shutdown(lambda: rclpy.spin(node))
            finally:
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0
