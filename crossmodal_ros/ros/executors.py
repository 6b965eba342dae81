# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Executors for a node process: rclpy's C++ ``EventsExecutor`` or its ``SingleThreadedExecutor``,
spun until shutdown (used by ``crossmodal_inference``; parameter ``executor``).

Measured with rclpy 9.1.2 (docs/ROS_NOTES.md): the ``EventsExecutor`` rejects guard conditions,
and its ``spin()`` keeps a core busy with nothing to do and ignores SIGINT and SIGTERM; a loop of
``spin_once`` calls sleeps until an event and stops on Ctrl-C. The multi-threaded executor
busy-loops on queued tasks (benchmarks/README.md), so neither the node nor these helpers use it.
"""
from __future__ import annotations

from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

#: Values of a node's ``executor`` parameter.
EXECUTOR_CHOICES = ("events", "single")


def make_executor(kind: str, log=None):
    """The executor ``kind`` names: ``events`` (the C++ ``EventsExecutor`` of
    ``rclpy.experimental``: one callback per event, no wait set rebuilt per callback; where this
    rclpy has none, a ``SingleThreadedExecutor`` with a warning on ``log``) or ``single``.
    """
    if kind not in EXECUTOR_CHOICES:
        raise ValueError(f"executor must be one of {EXECUTOR_CHOICES}, got {kind!r}")
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor

            return EventsExecutor()
        except ImportError as exc:
            if log is not None:
                log.warning(f"executor 'events' is not available in this rclpy ({exc}); using 'single'")
    return SingleThreadedExecutor()


def spin_executor(executor, timeout_s: float = 0.5) -> None:
    """Spin ``executor`` by ``spin_once`` calls until its context shuts down (see the module
    docstring: the ``EventsExecutor``'s own ``spin()`` busy-loops).
    """
    while executor.context.ok():
        executor.spin_once(timeout_sec=timeout_s)


def autostart_failure(node) -> str:
    """The reason a lifecycle node with ``autostart: true`` is not active after it was built (its
    configure or activate failed), or "" (active, not a lifecycle node, or no autostart).
    """
    if not (node.has_parameter("autostart") and node.get_parameter("autostart").value):
        return ""
    state = getattr(node, "lifecycle_state", "active")
    if state == "active":
        return ""
    return getattr(getattr(node, "core", None), "last_error", "") or f"start-up left the node {state}"


def run_node_process(make_node: Callable, args=None, before_spin: Callable[[], object] = lambda: None) -> None:
    """``rclpy.init(args)``, ``node = make_node()``, then spin it on the executor its ``executor``
    parameter names until Ctrl-C or shutdown; ``before_spin()`` runs once the node is built.
    """
    from crossmodal_ros.ros.sensor_base import spin_until_shutdown

    try:
        with rclpy.init(args=args):
            # an executor first: a Ctrl-C in the node's (autostart) configure must not hit its constructor
            executor = SingleThreadedExecutor()
            try:
                node = make_node()
            except (KeyboardInterrupt, ExternalShutdownException):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a parameter value of the wrong type or out of range
                rclpy.logging.get_logger("crossmodal_ros").fatal(
                    f"{getattr(make_node, '__name__', 'node')} failed to start: {type(exc).__name__}: {exc}")
                raise SystemExit(1) from None
            try:
                if node.get_parameter("executor").value == "events":
                    executor.shutdown()
                    executor = make_executor("events", node.get_logger())
                failed = autostart_failure(node)
                if failed:  # nothing would configure it later: a silent process helps nobody
                    node.get_logger().fatal(f"{failed}; exiting with status 1 (autostart: true; with autostart:="
                                            "false a lifecycle manager configures the node instead)")
                    raise SystemExit(1)
                node.get_logger().info(f"spinning {type(executor).__name__}")
                executor.add_node(node)
                before_spin()
                spin_until_shutdown(lambda: spin_executor(executor))
            finally:
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
