# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Bag replay into the inference node on sim time: ``ros2 launch crossmodal_ros replay.launch.py bag:=<file>``.

bag_player waits until the inference node (crossmodal_inference) subscribes, then publishes the
bag's topics and ``/clock``; the node runs with ``use_sim_time`` so staleness windows follow bag
time. Evaluate the same bag offline with ``ros2 run crossmodal_ros bag_eval <file>``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import UnlessCondition
from launch.substitutions import EnvironmentVariable, EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("crossmodal_ros")
    args = [
        DeclareLaunchArgument("bag", description="MCAP or sqlite3 bag (file or bag directory) to replay."),
        DeclareLaunchArgument("rate", default_value="1.0", description="Replay speed factor."),
        DeclareLaunchArgument("wait_timeout", default_value="60.0",
                              description="Seconds bag_player waits for the inference node's subscriptions "
                                          "(it loads the model first) before it gives up."),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="true: the inference node configures and activates itself; false: a "
                              "lifecycle manager drives it."),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="Model checkpoint (.pt); empty: the shipped models/nexus_digits.pt."),
        DeclareLaunchArgument("device", default_value="auto", description="Inference device: auto | cpu | cuda."),
        DeclareLaunchArgument("replay_params", default_value=os.path.join(share, "config", "replay.yaml"),
                              description="Parameter file of the inference node for replay (use_sim_time)."),
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
    player = Node(
        package="crossmodal_ros", executable="bag_player", name="bag_player",
        arguments=[LaunchConfiguration("bag"), "--rate", LaunchConfiguration("rate"),
                   "--wait-timeout", LaunchConfiguration("wait_timeout")],
        output="screen",
    )
    nexus = LifecycleNode(
        package="crossmodal_ros", executable="crossmodal_inference", name="nexus", namespace="",
        parameters=[LaunchConfiguration("replay_params"),
                    {"checkpoint": LaunchConfiguration("checkpoint"),
                     "device": LaunchConfiguration("device"), "use_sim_time": True,
                     "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool)}],
        output="screen",
    )
    # before any node: the nodes read the profile when their DDS participant starts
    dds = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE", LaunchConfiguration("dds_profile"),
        condition=UnlessCondition(EqualsSubstitution(LaunchConfiguration("dds_profile"), "")))
    return LaunchDescription(args + [dds, player, nexus])
