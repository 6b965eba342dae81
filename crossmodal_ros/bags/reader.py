# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Read a sensor bag without ROS: decoded input events and the ground truth.

Messages are deserialised by ``rosbags`` and decoded by :mod:`crossmodal_ros.messages`, the
decoders the inference node uses on its rclpy messages, so a message the node would drop is
dropped here too (and counted per modality in ``invalid``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crossmodal_ros import messages, units
from crossmodal_ros.bags.format import TOPICS, TRUTH_TOPIC, BagError, open_bag, typestore
from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY

__all__ = ["InputEvent", "bag_topics", "read_bag_inputs"]


@dataclass
class InputEvent:
    """One decoded input message: bag time, modality, raw value, header stamp (s)."""

    t: float
    modality: str
    value: object
    stamp_s: float


def _decode(modality: str, msg) -> object:
    """The node's own checks (the unit's conversion, :func:`crossmodal_ros.units.msg_to_input`): both drop alike."""
    return units.msg_to_input(modality, msg)


_TOPIC_NAME = re.compile(r"/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


def _absolute(name: str, what: str) -> str:
    """A bag topic name as recorded (absolute); a malformed one is a :class:`BagError`."""
    if not isinstance(name, str) or not _TOPIC_NAME.fullmatch(name):
        raise BagError(f"{what}: {name!r} is not a topic name as a bag records it (e.g. /camera/image_raw)")
    return name if name.startswith("/") else f"/{name}"


def bag_topics(topics: dict[str, str] | None = None, truth_topic: str | None = None):
    """The bag topics to read: ``({topic: (modality, type)}, truth topic)``. ``topics`` maps a
    modality (``image``, ``audio``, ``trajectory``) to the topic its messages are on in this bag,
    for bags recorded from a robot's own drivers (default: the package's names,
    :data:`crossmodal_ros.bags.format.TOPICS`); ``truth_topic`` likewise for the labels.
    """
    by_modality = {m: (t, msg_type) for t, (m, msg_type) in TOPICS.items()}
    unknown = sorted(set(topics or {}) - set(by_modality))
    if unknown:
        raise BagError(f"no bag topic for modality {unknown}; the sensor modalities are {sorted(by_modality)}")
    out = {}
    for m, (default, msg_type) in by_modality.items():
        topic = _absolute((topics or {}).get(m) or default, f"the {m} topic")
        if topic in out:
            raise BagError(f"the {m} topic {topic} is also the {out[topic][0]} topic")
        out[topic] = (m, msg_type)
    truth = _absolute(truth_topic or TRUTH_TOPIC, "the truth topic")
    if truth in out:
        raise BagError(f"the truth topic {truth} is also the {out[truth][0]} topic")
    return out, truth


def read_bag_inputs(path: str | Path, topics: dict[str, str] | None = None, truth_topic: str | None = None):
    """Decode a sensor bag: (input events in time order, truth times, truth labels, start, end, invalid).

    ``topics``, ``truth_topic``: where this bag has each sensor and the labels (:func:`bag_topics`).
    """
    sensors, truth_name = bag_topics(topics, truth_topic)
    ts = typestore()
    reader = open_bag(path)
    events: list[InputEvent] = []
    truth_t, truth = [], []
    invalid = {m: 0 for m in (IMAGE, AUDIO, TRAJECTORY)}
    try:
        conns = [c for c in reader.connections if c.topic in sensors or c.topic == truth_name]
        present = sorted({c.topic for c in reader.connections})
        if not any(c.topic in sensors for c in conns):
            raise BagError(f"{path} has none of the sensor topics {sorted(sensors)} (it has {present}); "
                           "name the bag's topics (bag_eval: --camera-topic, --audio-topic, --pen-topic)")
        named = [_absolute(t, m) for m, t in (topics or {}).items() if t]
        named += [_absolute(truth_topic, "truth")] if truth_topic else []
        missing = [t for t in named if t not in present]
        if missing:
            raise BagError(f"{path} has no topic {missing} (it has {present})")
        for c in conns:
            expected = sensors[c.topic][1] if c.topic in sensors else "std_msgs/msg/Int32"
            if c.msgtype != expected:
                raise BagError(f"{path}: topic {c.topic} has type {c.msgtype}, expected {expected}")
        start, end = reader.start_time * 1e-9, reader.end_time * 1e-9
        for c, stamp_ns, raw in reader.messages(connections=conns):
            t = stamp_ns * 1e-9
            msg = ts.deserialize_cdr(raw, c.msgtype)
            if c.topic == truth_name:
                truth_t.append(t)
                truth.append(int(msg.data))
                continue
            modality, _ = sensors[c.topic]
            try:
                value = _decode(modality, msg)
            except messages.ConversionError:
                invalid[modality] += 1
                continue
            header = getattr(msg, "header", None)
            stamp = messages.stamp_to_seconds(header.stamp) if header is not None else 0.0
            events.append(InputEvent(t, modality, value, stamp if stamp > 0 else t))
    finally:
        reader.close()
    return events, truth_t, truth, start, end, invalid
