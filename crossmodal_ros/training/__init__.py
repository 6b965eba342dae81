# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Training: ``crossmodal-train`` (:mod:`.train`) and multi-process data parallelism (:mod:`.distributed`)."""
