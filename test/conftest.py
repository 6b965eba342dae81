"""Test-session setup. Network rule: ROS traffic stays on loopback, in a domain of its own.

These variables are set before anything imports rclpy.
"""
import os

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
