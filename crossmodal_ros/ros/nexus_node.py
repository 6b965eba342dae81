# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Deprecated alias of :mod:`crossmodal_ros.ros.inference_node` (the node runs every model kind,
not only Nexus): the executable ``nexus_node``, ``NexusNode``, ``make_node`` and the tables stay
importable from here for one release. Use ``crossmodal_inference`` /
``crossmodal_ros.ros.inference_node`` instead.
"""
from __future__ import annotations

from crossmodal_ros.ros.inference_node import (INPUT_TOPICS, OUTPUT_NAMES, PARAMETERS, InferenceNode,  # noqa: F401
                                               make_node)
from crossmodal_ros.ros.inference_params import flatten as _flatten  # noqa: F401
from crossmodal_ros.ros.inference_params import print_help  # noqa: F401

#: The old class name.
NexusNode = InferenceNode


def main(args=None) -> None:
    """Console entry ``nexus_node`` (deprecated alias of ``crossmodal_inference``)."""
    import sys

    from crossmodal_ros.ros.inference_node import main as _main

    print("nexus_node is deprecated and will be removed in the next release; run crossmodal_inference",
          file=sys.stderr)
    return _main(args, prog="nexus_node")


if __name__ == "__main__":
    main()
