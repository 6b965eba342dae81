# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Reinforcement learning on the fused latent (ROS-free core).

* :mod:`crossmodal_ros.rl.latents` - latents precomputed per (sample, sensor subset) with the
  FusionEngine, cached by checkpoint hash;
* :mod:`crossmodal_ros.rl.env` - the digit-pointer task as a Gymnasium environment and a
  batched Stable-Baselines3 VecEnv;
* :mod:`crossmodal_ros.rl.train` - PPO training with learning curves;
* :mod:`crossmodal_ros.rl.policy` - small policy files (actor weights only) and a greedy runner;
* :mod:`crossmodal_ros.rl.experiment` - the cross-modal transfer experiment and its results page.

The ROS side (observations from the live latent topic) is :mod:`crossmodal_ros.ros.rl_adapter`.
Needs ``gymnasium`` (and ``stable-baselines3`` for training), pinned in requirements.txt.
"""
