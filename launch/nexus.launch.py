# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Nexus inference only (sensors come from elsewhere): ``ros2 launch crossmodal_ros nexus.launch.py``.

Remap the inputs to your robot's topics with ``camera_topic:=...`` etc.

Camera frames larger than 512 KiB (640x480 bgr8 and up) sent best-effort over Fast DDS's default
transports are mostly lost: start the camera driver with
``FASTDDS_DEFAULT_PROFILES_FILE=<share>/crossmodal_ros/config/fastdds_large_frames.xml`` (the
sender's shared-memory segment decides; README, "Camera-sized frames").
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("crossmodal_ros")
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node."),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="true: the inference node configures and activates itself; false: a "
                              "lifecycle manager drives it."),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="Model checkpoint (.pt); empty: the shipped models/nexus_digits.pt."),
        DeclareLaunchArgument("device", default_value="auto", description="Inference device: auto | cpu | cuda."),
        DeclareLaunchArgument("nexus_params", default_value=os.path.join(share, "config", "nexus.yaml"),
                              description="Parameter file of the inference node."),
        DeclareLaunchArgument("camera_topic", default_value="camera/image_raw",
                              description="sensor_msgs/Image input."),
        DeclareLaunchArgument("audio_topic", default_value="audio/chunk",
                              description="std_msgs/Float32MultiArray PCM input."),
        DeclareLaunchArgument("pen_topic", default_value="pen/stroke", description="nav_msgs/Path input."),
    ]
    nexus = LifecycleNode(
        package="crossmodal_ros", executable="crossmodal_inference", name="nexus",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("nexus_params"),
                    {"checkpoint": LaunchConfiguration("checkpoint"),
                     "device": LaunchConfiguration("device"),
                     "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool)}],
        remappings=[("camera/image_raw", LaunchConfiguration("camera_topic")),
                    ("audio/chunk", LaunchConfiguration("audio_topic")),
                    ("pen/stroke", LaunchConfiguration("pen_topic"))],
        output="screen",
    )
    return LaunchDescription(args + [nexus])
