"""crossmodal_ros: cross-modal perception for ROS 2 with the Nexus hierarchical multimodal VAE.

The package is split into a ROS-free core (``codecs``, ``data``, ``models``, ``training``,
``evaluation``, ``engine``, ``checkpoint``) that imports without rclpy, and a thin ROS shell
(``crossmodal_ros.ros``, ``crossmodal_ros.demo``).
"""

__version__ = "0.1.0"
