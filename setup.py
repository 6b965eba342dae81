# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""ament_python package setup for crossmodal_ros (also installs with pip into a venv)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "crossmodal_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["data/digits/*.npz", "data/digits/*.flac", "data/digits/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/models", glob("models/*.pt") + glob("models/*.md")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="crossmodal_ros developers",
    maintainer_email="crossmodal-ros@example.org",
    description="Cross-modal perception for ROS 2 with the Nexus hierarchical multimodal VAE.",
    license="Apache-2.0",
    # colcon test (colcon-ros / colcon-core) looks for pytest in extras_require["test"];
    # setuptools >= 72 dropped tests_require, and with it colcon silently fell back to unittest.
    extras_require={"test": ["pytest", "import-linter", "ruff"],
                    # FusionEngine backend="onnx" (versions pinned in requirements.txt)
                    "onnx": ["onnxruntime", "onnx"]},
    entry_points={
        "console_scripts": [
            # offline tools (ROS-free)
            "crossmodal-train = crossmodal_ros.training.train:main",
            "crossmodal-eval = crossmodal_ros.evaluation.evaluate:main",
            "crossmodal-build-digits = crossmodal_ros.data.build_digits:main",
            # ROS 2 nodes (ros2 run crossmodal_ros <name>)
            "crossmodal_inference = crossmodal_ros.ros.inference_node:main",
            "nexus_node = crossmodal_ros.ros.nexus_node:main",  # deprecated alias, one release
            "camera_node = crossmodal_ros.ros.camera_node:main",
            "microphone_node = crossmodal_ros.ros.microphone_node:main",
            "pen_node = crossmodal_ros.ros.pen_node:main",
            "bag_player = crossmodal_ros.ros.bag_player:main",
            "bag_export = crossmodal_ros.ros.bag_export:main",
            "bag_eval = crossmodal_ros.bags.evaluate:main",
            "demo = crossmodal_ros.ros.demo:main",
        ],
    },
)
