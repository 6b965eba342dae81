# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The ROS 2 shell of crossmodal_ros: the only modules that need rclpy and the message packages.

- :mod:`.conversions`: numpy -> message encoders, the latent topic contract (the decoders are the
  ROS-free :mod:`crossmodal_ros.messages`).
- :mod:`.nexus_node`: the inference lifecycle node (``NexusNode``, ``make_node``, ``main``).
- :mod:`.qos`, :mod:`.diagnostics`: QoS profiles; rate/latency bookkeeping and ``/diagnostics``.
- :mod:`.sensor_base`, :mod:`.camera_node`, :mod:`.microphone_node`, :mod:`.pen_node`: sensor nodes.
- :mod:`.bag_export`, :mod:`.bag_player`: write a bag from the live message classes; replay one.
- :mod:`.rl_adapter`: the RL environment on the live latent topic.
- :mod:`.demo`: ``make demo`` (the whole graph in one process).

Everything ROS-free (fusion policy and store, playback, segmenters, outage schedules, bag reading
and evaluation) is in the core, which never imports this package (import contracts in setup.cfg,
checked by test/test_architecture.py). Nothing is imported here.
"""
