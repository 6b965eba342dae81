# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The sensor-bag format shared by the writer, the player, the reader and the evaluator.

=================  ===============================  =========================================
topic              type                             content
=================  ===============================  =========================================
/camera/image_raw  sensor_msgs/msg/Image            camera frame
/audio/chunk       std_msgs/msg/Float32MultiArray   one utterance (mono PCM)
/pen/stroke        nav_msgs/msg/Path                one pen trajectory
/label/truth       std_msgs/msg/Int32               ground-truth digit (never an input)
=================  ===============================  =========================================

Export settings go into the bag's custom metadata under ``crossmodal_ros.*`` keys
(``crossmodal_ros.sample_rate`` is the audio rate). Needs ``rosbags`` and PyYAML, not ROS.
"""
from __future__ import annotations

from pathlib import Path

from crossmodal_ros import units
from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY

__all__ = ["BagError", "TOPICS", "TRUTH_TOPIC", "TRUTH_TYPE", "STAGGER", "META_PREFIX", "typestore",
           "open_bag", "bag_custom_data"]


class BagError(ValueError):
    """A bag that cannot be written, read, replayed or evaluated (the message says why)."""


#: Sensor topics in bags (absolute names) with their modality and message type.
#: The names and types are the modality units' (``crossmodal_ros.units``), under the root namespace.
TOPICS: dict[str, tuple[str, str]] = {
    f"/{units.unit(m).input_topic}": (m, units.unit(m).input_msg) for m in (IMAGE, AUDIO, TRAJECTORY)}
TRUTH_TOPIC = "/label/truth"
TRUTH_TYPE = "std_msgs/msg/Int32"
#: Offsets (s) of each sensor after the sample's tick: sensors are not perfectly simultaneous.
STAGGER = {IMAGE: 0.0, AUDIO: 0.004, TRAJECTORY: 0.008}
META_PREFIX = "crossmodal_ros."


def typestore():
    """The ``rosbags`` type store of the ROS 2 distribution the package targets (Kilted)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


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
