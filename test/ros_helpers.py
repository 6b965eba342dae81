# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Helpers for tests with real rclpy in-process: a private context, an executor, spin-until.

Usage in a test module::

    from ros_helpers import ros_context, spin_until, Collector  # noqa: F401 (fixture)

    def test_x(ros_context):
        node = SomeNode(context=ros_context.context)
        ros_context.add(node)
        assert spin_until(ros_context.executor, lambda: ..., timeout=5.0)

conftest.py has already set ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a ``ROS_DOMAIN_ID``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy


@dataclass
class RosContext:
    """An initialised rclpy context with one executor and its nodes."""

    context: Context
    executor: Any
    nodes: list = field(default_factory=list)

    def add(self, node: Node) -> Node:
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def remove(self, node: Node) -> None:
        self.executor.remove_node(node)
        self.nodes.remove(node)
        node.destroy_node()

    def spin_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        return spin_until(self.executor, predicate, timeout)

    def spin_for(self, seconds: float) -> None:
        spin_for(self.executor, seconds)


def spin_until(executor, predicate: Callable[[], bool], timeout: float = 5.0,
               step: float = 0.01) -> bool:
    """Spin ``executor`` until ``predicate()`` is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        executor.spin_once(timeout_sec=step)


def spin_for(executor, seconds: float, step: float = 0.01) -> None:
    """Spin ``executor`` for ``seconds`` (use sparingly; prefer :func:`spin_until`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=step)


@pytest.fixture(scope="module")
def ros_module_context():
    """One rclpy context per test module (init/shutdown are slowish); nodes per test."""
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        rclpy.shutdown(context=ctx)


@pytest.fixture
def ros_context(ros_module_context):
    """A fresh executor on the module's context; destroys the test's nodes afterwards."""
    yield from _ros_context(ros_module_context, SingleThreadedExecutor(context=ros_module_context))


@pytest.fixture
def ros_context_mt(ros_module_context):
    """Like ``ros_context`` with a 2-thread MultiThreadedExecutor (as the demo runs)."""
    executor = MultiThreadedExecutor(num_threads=2, context=ros_module_context)
    yield from _ros_context(ros_module_context, executor)


def _ros_context(ros_module_context, executor):
    rc = RosContext(context=ros_module_context, executor=executor)
    try:
        yield rc
    finally:
        for node in list(rc.nodes):
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()


class Collector:
    """Subscribes to topics on a helper node and keeps every message received per topic."""

    def __init__(self, node: Node, topics: dict, qos: QoSProfile | None = None):
        self.messages: dict[str, list] = {t: [] for t in topics}
        self.total: dict[str, int] = {t: 0 for t in topics}  # every message received, never cleared
        qos = qos or QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self._subs = [
            node.create_subscription(msg_type, topic, self._make_cb(topic), qos)
            for topic, msg_type in topics.items()
        ]

    def _make_cb(self, topic):
        def cb(msg):
            self.messages[topic].append(msg)
            self.total[topic] += 1

        return cb

    def clear(self) -> None:
        for v in self.messages.values():
            v.clear()

    def count(self, topic: str) -> int:
        return len(self.messages[topic])

    def last(self, topic: str):
        return self.messages[topic][-1] if self.messages[topic] else None
