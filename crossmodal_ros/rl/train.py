# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Train one PPO agent (Stable-Baselines3) on the latent pointer task, with learning curves.

``train_policy`` is what the experiment and ``examples/rl_pointer.py train`` call. Curves are
measured on the *test* split every ``eval_every`` steps (batched greedy episodes, a second or
less each), for the evaluation subsets given.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from crossmodal_ros.rl.env import TaskConfig, evaluate, make_vec_env
from crossmodal_ros.rl.latents import LatentTable

#: PPO settings used for every policy of the experiment (one place, so all are comparable).
PPO_KWARGS = dict(n_steps=128, batch_size=256, n_epochs=4, gamma=0.97, gae_lambda=0.95,
                  ent_coef=0.01, learning_rate=1e-3, clip_range=0.2)
N_ENVS = 16


@dataclass
class TrainResult:
    """A trained policy with its learning curve and training metadata."""

    model: object
    seconds: float
    curve_steps: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)  # eval subset -> list of success rates


def train_policy(train: LatentTable, subsets=("image",), obs_mode: str = "mu", timesteps: int = 500_000,
                 seed: int = 0, test: LatentTable | None = None, curve_subsets=(), eval_every: int = 50_000,
                 curve_episodes: int = 500, switch_prob: float = 0.0, config: TaskConfig = TaskConfig(),
                 hidden: int = 64, log=None, sample_latent: bool = False) -> TrainResult:
    """PPO with an MLP actor-critic (``hidden`` x 2, tanh) on ``N_ENVS`` batched episodes."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    venv = make_vec_env(train, N_ENVS, subsets, obs_mode, switch_prob, config, seed=seed, sample_latent=sample_latent)
    model = PPO("MlpPolicy", venv, seed=seed, verbose=0, device="cpu",
                policy_kwargs=dict(net_arch=dict(pi=[hidden, hidden], vf=[hidden, hidden]),
                                   activation_fn=torch.nn.Tanh), **PPO_KWARGS)
    # an in-memory logger: SB3's default one creates an empty /tmp/SB3-<date> folder per run
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    result = TrainResult(model=model, seconds=0.0, curves={s: [] for s in curve_subsets})

    def measure(step: int) -> None:
        if test is None or not curve_subsets:
            return
        act = _greedy(model)
        result.curve_steps.append(int(step))
        for s in curve_subsets:
            result.curves[s].append(evaluate(act, test, (s,), obs_mode, curve_episodes, config=config,
                                             seed=1000 + seed)["success"])

    class Curve(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_at = eval_every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                self.next_at += eval_every
                measure(self.num_timesteps)
                if log is not None and result.curve_steps:
                    last = {s: f"{v[-1]:.2f}" for s, v in result.curves.items()}
                    log(f"    step {self.num_timesteps:>7d}  success {last}")
            return True

    measure(0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=int(timesteps), callback=Curve())
    result.seconds = time.perf_counter() - t0
    if not result.curve_steps or result.curve_steps[-1] < model.num_timesteps:
        measure(model.num_timesteps)
    return result


def _greedy(model):
    import torch

    policy = model.policy

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return policy._predict(torch.as_tensor(obs, dtype=torch.float32), deterministic=True).numpy()

    return act


greedy = _greedy
