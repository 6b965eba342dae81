# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Sensors + Nexus inference: ``ros2 launch crossmodal_ros crossmodal.launch.py``.

Two sensor profiles, one parameter file each, one argument apart:

* ``profile:=playback`` (default): every sensor node plays back the embedded dataset
  (config/sensors_playback.yaml), so the graph starts on a machine with no camera, sound card
  or pen;
* ``profile:=devices``: real camera, microphone and pen/arm (config/sensors.yaml).

Other arguments (``ros2 launch ... --show-args``): which sensor nodes to start, the checkpoint
and the inference device, the parameter files (``sensors_params`` overrides the profile's
file), and the namespace everything runs in. Example with a real camera and microphone and no
pen::

    ros2 launch crossmodal_ros crossmodal.launch.py profile:=devices enable_pen:=false device:=cuda
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import (EnvironmentVariable, EqualsSubstitution, IfElseSubstitution,
                                  LaunchConfiguration)
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("crossmodal_ros")
    namespace = LaunchConfiguration("namespace")
    sensors_params = LaunchConfiguration("sensors_params")
    nexus_params = LaunchConfiguration("nexus_params")
    profile_file = IfElseSubstitution(
        EqualsSubstitution(LaunchConfiguration("profile"), "devices"),
        if_value=os.path.join(share, "config", "sensors.yaml"),
        else_value=os.path.join(share, "config", "sensors_playback.yaml"))
    args = [
        DeclareLaunchArgument("profile", default_value="playback", choices=["playback", "devices"],
                              description="Sensor profile: playback (embedded dataset, no devices; "
                                          "config/sensors_playback.yaml) or devices (real camera, "
                                          "microphone, pen; config/sensors.yaml)."),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of every node and relative topic."),
        DeclareLaunchArgument("enable_camera", default_value="true",
                              description="Start camera_node (publishes camera/image_raw)."),
        DeclareLaunchArgument("enable_microphone", default_value="true",
                              description="Start microphone_node (publishes audio/chunk)."),
        DeclareLaunchArgument("enable_pen", default_value="true",
                              description="Start pen_node (publishes pen/stroke)."),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="true: the inference node configures and activates itself; false: a "
                              "lifecycle manager drives it."),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="Model checkpoint (.pt); empty: the shipped models/nexus_digits.pt."),
        DeclareLaunchArgument("device", default_value="auto",
                              description="Inference device: auto | cpu | cuda."),
        DeclareLaunchArgument("sensors_params", default_value=profile_file,
                              description="Parameter file of the sensor nodes (default: the "
                                          "profile's file)."),
        DeclareLaunchArgument("nexus_params",
                              default_value=os.path.join(share, "config", "nexus.yaml"),
                              description="Parameter file of the inference node."),
        DeclareLaunchArgument(
            "dds_profile",
            default_value=EnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE",
                default_value=os.path.join(share, "config", "fastdds_large_frames.xml")),
            description="Fast DDS profile for the started nodes (FASTDDS_DEFAULT_PROFILES_FILE): by "
                        "default the package's 8 MiB shared-memory profile, without which Fast DDS "
                        "loses about half of best-effort VGA frames; a profile already in the "
                        "environment is kept; empty: Fast DDS's defaults."),
    ]
    sensors = [
        Node(package="crossmodal_ros", executable="camera_node", name="camera_node",
             namespace=namespace, parameters=[sensors_params], output="screen",
             condition=IfCondition(LaunchConfiguration("enable_camera"))),
        Node(package="crossmodal_ros", executable="microphone_node", name="microphone_node",
             namespace=namespace, parameters=[sensors_params], output="screen",
             condition=IfCondition(LaunchConfiguration("enable_microphone"))),
        Node(package="crossmodal_ros", executable="pen_node", name="pen_node",
             namespace=namespace, parameters=[sensors_params], output="screen",
             condition=IfCondition(LaunchConfiguration("enable_pen"))),
    ]
    # A lifecycle node that configures and activates itself (launch argument autostart:=true,
    # the default); autostart:=false when a lifecycle manager drives it.
    nexus = LifecycleNode(
        package="crossmodal_ros", executable="crossmodal_inference", name="nexus", namespace=namespace,
        parameters=[nexus_params, {"checkpoint": LaunchConfiguration("checkpoint"),
                                   "device": LaunchConfiguration("device"),
                                   "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool)}],
        output="screen",
    )
    # before any node: the nodes read the profile when their DDS participant starts
    dds = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE", LaunchConfiguration("dds_profile"),
        condition=UnlessCondition(EqualsSubstitution(LaunchConfiguration("dds_profile"), "")))
    return LaunchDescription(args + [dds] + sensors + [nexus])
