# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""crossmodal_ros: cross-modal perception for ROS 2 with the Nexus hierarchical multimodal VAE.

Two layers: a ROS-free core (everything outside ``crossmodal_ros.ros``: modalities, codecs,
data, models, training, evaluation, engine, fusion policy and store, sensors, bags, rl) that
imports without rclpy, and the ROS shell ``crossmodal_ros.ros``, the only package that imports
rclpy or message packages. The layering is checked by import contracts (setup.cfg).
"""

__version__ = "0.1.0"
