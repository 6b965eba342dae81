# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Where shipped files live, for a source checkout, a pip install, and a colcon install."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "crossmodal_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The directory holding ``models/``, ``config/`` and ``launch/``.

    Order: ``$CROSSMODAL_ROS_SHARE``; the source checkout (editable installs, tests); the ament
    index (colcon install on a robot); ``<prefix>/share/crossmodal_ros`` (pip install).
    """
    env = os.environ.get("CROSSMODAL_ROS_SHARE")
    if env:
        return Path(env)
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "models").is_dir():
        return _SOURCE_ROOT
    try:  # available wherever ROS 2 is sourced; optional elsewhere
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: BLE001 - not found or ament_index missing: fall through
        pass
    return Path(sys.prefix) / "share" / PACKAGE


def models_dir() -> Path:
    """The folder of the shipped models."""
    return share_dir() / "models"


def config_dir() -> Path:
    """The folder of the shipped parameter and training files."""
    return share_dir() / "config"


def default_checkpoint() -> Path:
    """The shipped default model."""
    return models_dir() / "nexus_digits.pt"


def cache_dir() -> Path:
    """Writable cache for derived features (``$CROSSMODAL_ROS_CACHE`` or ``~/.cache``)."""
    env = os.environ.get("CROSSMODAL_ROS_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / PACKAGE
    path.mkdir(parents=True, exist_ok=True)
    return path
