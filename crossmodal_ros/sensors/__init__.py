# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The ROS-free logic of the sensor nodes, shared with the demo, the bag tools and the tests.

- :mod:`.playback`: dataset playback clock and per-modality samples (``SensorError``).
- :mod:`.outages`: outage schedules (which modalities are live when).
- :mod:`.segmenters`: voice-activity and pen-stroke segmenters.

The nodes that publish them are in :mod:`crossmodal_ros.ros`.
"""
