"""The ROS 2 shell of crossmodal_ros (needs rclpy and the message packages).

- :mod:`.conversions`: message <-> numpy functions (``ConversionError``) and the latent topic
  contract.
- :mod:`.fusion`: keep-latest store with staleness windows (ROS-free).
- :mod:`.nexus_node`: the Nexus inference lifecycle node (``NexusNode``, ``make_node``, ``main``).
- :mod:`.qos`, :mod:`.diagnostics`: QoS profiles; rate/latency bookkeeping and ``/diagnostics``.
- sensor nodes (camera, microphone, pen), playback sources and bag tools.

Nothing is imported here, so ``import crossmodal_ros.ros.fusion`` stays light.
"""
