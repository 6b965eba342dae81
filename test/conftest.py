# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Test-session setup. Network rule: ROS traffic stays on loopback, in a domain of its own.

These variables are set before anything imports rclpy.
"""
import importlib.util
import os
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# Own domain per test session, unless the caller (Makefile, .ci/run) chose one.
os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402

try:
    import torch  # noqa: E402

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def rng():
    import numpy as np

    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Inference on one thread: the test machine's 2 cores are shared (2 threads contended made
    one forward pass ~10x slower). Modules opt in with ``pytestmark = usefixtures(...)``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory):
    """Path of an untrained Nexus checkpoint (float16, default codecs): enough for contract tests."""
    import torch

    from crossmodal_ros.checkpoint import save_checkpoint
    from crossmodal_ros.codecs import codecs_to_dict, default_codecs
    from crossmodal_ros.models import build_model

    torch.manual_seed(0)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "untrained.pt", build_model("nexus"),
                               codecs_to_dict(default_codecs()), half=True))


_ROS_FIXTURES = ("ros", "ros_context", "ros_context_mt", "ros_module_context")


def _starts_ros(item) -> bool:
    """A test starts ROS when it uses a ROS context fixture or calls rclpy itself."""
    if any(name in _ROS_FIXTURES for name in getattr(item, "fixturenames", ())):
        return True
    import inspect

    try:
        return "rclpy" in inspect.getsource(item.function)
    except (OSError, TypeError, AttributeError):
        return False


def pytest_collection_modifyitems(config, items):
    """Mark every test that starts ROS ``ros`` (markers: setup.cfg; ``make test-fast`` skips them)."""
    for item in items:
        if item.get_closest_marker("ros") is None and _starts_ros(item):
            item.add_marker(pytest.mark.ros)


@pytest.fixture(scope="session")
def load_script():
    """Import a repository script that is not part of the package (``tools/*.py``,
    ``examples/*.py``) by its path relative to the repository root.
    """
    root = Path(__file__).resolve().parents[1]

    def load(relative: str):
        path = root / relative
        spec = importlib.util.spec_from_file_location(path.stem + "_script", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
