# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Sensor bags (rosbag2, MCAP or sqlite3) without ROS: the format, a reader, a training dataset
and the offline evaluator. ``rosbags`` reads and deserialises them, so nothing here needs rclpy;
writing a bag from the live message classes and replaying one into a graph are ROS tools
(:mod:`crossmodal_ros.ros.bag_export`, :mod:`crossmodal_ros.ros.bag_player`).

- :mod:`.format`: topics, message types, metadata keys, :class:`~.format.BagError`, opening.
- :mod:`.reader`: decoded input events and ground truth of a bag (:func:`~.reader.read_bag_inputs`).
- :mod:`.dataset`: a training dataset from a bag (``load_dataset("bag:<bag>")``).
- :mod:`.evaluate`: the node's fusion logic over bag time, scored (``bag_eval``).
"""
