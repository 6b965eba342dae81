# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The digit-pointer task on the fused latent (ROS-free, Gymnasium).

**Task.** A pointer sits on one of 10 cells of a line (cells 0..9). The agent perceives a digit
through whichever sensors are live (camera image, spoken digit, pen trajectory) and must move
the pointer to the cell of that digit and press *submit* there. Actions: 0 = left, 1 = right,
2 = submit. Rewards (from the ground-truth label): ``-step_cost`` per step, ``+1`` for a submit
on the digit's cell (success, the episode ends), ``-wrong_penalty`` for a submit elsewhere (the
episode ends); ``max_steps`` steps at most (truncation). The pointer starts on a random cell, so
the agent has to keep the perceived target across several moves, while sensors may drop in and
out between steps (``switch_prob``): a one-shot classifier does not solve it.

**Observation.** ``obs_mode="mu"``: the latent mean (D) then the pointer cell one-hot (10);
``"mu_std"``: mean, standard deviation exp(logvar/2), one-hot; ``"raw_image"``: the model's
28x28 image input flattened (784, zeros while the camera is off) then the one-hot - the
comparison policy that sees pixels instead of the latent.

**Live sensors.** ``subsets``: the sensor subsets an episode may see (names like ``image`` or
``audio+trajectory``); each episode starts with one drawn uniformly; with ``switch_prob`` > 0 a
new one is drawn before each step with that probability (sensors dropping in and out).

Everything is an array lookup into a :class:`~crossmodal_ros.rl.latents.LatentTable`:
:class:`PointerBatch` steps many episodes at once (numpy), :class:`LatentPointerEnv` is the
single Gymnasium environment, :func:`make_vec_env` the Stable-Baselines3 ``VecEnv``.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from crossmodal_ros.rl.latents import LatentTable, canonical_subset

N_CELLS = 10
ACTIONS = ("left", "right", "submit")
LEFT, RIGHT, SUBMIT = 0, 1, 2
OBS_MODES = ("mu", "mu_std", "raw_image")


@dataclass(frozen=True)
class TaskConfig:
    """Settings of the latent pointing task."""

    max_steps: int = 20
    step_cost: float = 0.02
    success_reward: float = 1.0
    wrong_penalty: float = 0.5


def obs_size(obs_mode: str, latent_dim: int) -> int:
    """Length of an observation vector for ``obs_mode`` and a latent of ``latent_dim``."""
    if obs_mode == "mu":
        return latent_dim + N_CELLS
    if obs_mode == "mu_std":
        return 2 * latent_dim + N_CELLS
    if obs_mode == "raw_image":
        return 28 * 28 + N_CELLS
    raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")


def latent_observation(mu: np.ndarray, logvar: np.ndarray, pointer: np.ndarray, obs_mode: str = "mu") -> np.ndarray:
    """Observation rows from latents ``(B, D)`` and pointer cells ``(B,)`` (the ROS adapter uses
    this same function, so a policy sees identical vectors in simulation and on the robot).
    """
    mu = np.atleast_2d(np.asarray(mu, np.float32))
    onehot = np.eye(N_CELLS, dtype=np.float32)[np.asarray(pointer, np.int64).reshape(-1)]
    if obs_mode == "mu":
        return np.concatenate([mu, onehot], axis=1)
    if obs_mode == "mu_std":
        std = np.exp(0.5 * np.atleast_2d(np.asarray(logvar, np.float32)))
        return np.concatenate([mu, std, onehot], axis=1)
    raise ValueError(f"latent observations are 'mu' or 'mu_std', got {obs_mode!r}")


def observation_space(obs_mode: str, latent_dim: int) -> gym.spaces.Box:
    """The Gymnasium observation space for ``obs_mode`` and a latent of ``latent_dim``."""
    n = obs_size(obs_mode, latent_dim)
    low = 0.0 if obs_mode == "raw_image" else -np.inf
    high = 1.0 if obs_mode == "raw_image" else np.inf
    return gym.spaces.Box(low=low, high=high, shape=(n,), dtype=np.float32)


def task_step(pointer, steps, actions, target, cfg: TaskConfig = TaskConfig()):
    """The task's dynamics for arrays of episodes (shared by the simulated and the ROS
    environment): ``-> (pointer, steps, reward, terminated, truncated, hit)``.
    """
    pointer = np.asarray(pointer, np.int64)
    a = np.asarray(actions, np.int64).reshape(pointer.shape)
    if np.any((a < 0) | (a >= len(ACTIONS))):
        raise ValueError(f"actions must be in 0..{len(ACTIONS) - 1}, got {a}")
    pointer = np.clip(pointer + (a == RIGHT) - (a == LEFT), 0, N_CELLS - 1)
    steps = np.asarray(steps, np.int64) + 1
    submit = a == SUBMIT
    hit = submit & (pointer == np.asarray(target, np.int64))
    reward = (-cfg.step_cost + hit * cfg.success_reward - (submit & ~hit) * cfg.wrong_penalty).astype(np.float32)
    terminated = submit
    truncated = ~terminated & (steps >= cfg.max_steps)
    return pointer, steps, reward, terminated, truncated, hit


class PointerBatch:
    """``n`` episodes of the task stepped together (numpy arrays, no Python loop per episode)."""

    def __init__(self, table: LatentTable, n: int = 1, subsets=("image",), obs_mode: str = "mu",
                 switch_prob: float = 0.0, config: TaskConfig = TaskConfig(), seed: int | None = None,
                 sample_latent: bool = False):
        self.table = table
        self.sample_latent = bool(sample_latent)
        self.n = int(n)
        self.subsets = [canonical_subset(s) for s in subsets]
        missing = [s for s in self.subsets if s not in table.mu]
        if missing:
            raise ValueError(f"the latent table has no subsets {missing}")
        obs_size(obs_mode, table.latent_dim)
        self.obs_mode = obs_mode
        self.switch_prob = float(switch_prob)
        self.cfg = config
        self.rng = np.random.default_rng(seed)
        self._mu = np.stack([table.mu[s] for s in self.subsets])        # (S, N, D)
        self._lv = np.stack([table.logvar[s] for s in self.subsets])
        self._camera = np.array(["image" in s.split("+") for s in self.subsets])
        self._img = table.image.astype(np.float32) / 255.0 if obs_mode == "raw_image" else None
        self.sample = np.zeros(self.n, np.int64)
        self.pointer = np.zeros(self.n, np.int64)
        self.steps = np.zeros(self.n, np.int64)
        self.live = np.zeros(self.n, np.int64)
        self.reset()

    @property
    def target(self) -> np.ndarray:
        return self.table.label[self.sample]

    def reset(self, which: np.ndarray | None = None) -> np.ndarray:
        idx = np.arange(self.n) if which is None else np.flatnonzero(which)
        k = idx.size
        if k:
            self.sample[idx] = self.rng.integers(0, self.table.n, k)
            self.pointer[idx] = self.rng.integers(0, N_CELLS, k)
            self.steps[idx] = 0
            self.live[idx] = self.rng.integers(0, len(self.subsets), k)
        return self.obs()

    def obs(self) -> np.ndarray:
        if self.obs_mode == "raw_image":
            img = self._img[self.sample] * self._camera[self.live][:, None]
            return np.concatenate([img, np.eye(N_CELLS, dtype=np.float32)[self.pointer]], axis=1)
        mu, lv = self._mu[self.live, self.sample], self._lv[self.live, self.sample]
        if self.sample_latent:  # a draw from the fused posterior instead of its mean
            mu = mu + np.exp(0.5 * lv) * self.rng.standard_normal(mu.shape).astype(np.float32)
        return latent_observation(mu, lv, self.pointer, self.obs_mode)

    def step(self, actions):
        self.pointer, self.steps, reward, terminated, truncated, hit = task_step(
            self.pointer, self.steps, actions, self.target, self.cfg)
        if self.switch_prob > 0 and len(self.subsets) > 1:
            flip = self.rng.random(self.n) < self.switch_prob
            self.live[flip] = self.rng.integers(0, len(self.subsets), int(flip.sum()))
        return reward, terminated, truncated, hit

    def live_names(self) -> list[str]:
        return [self.subsets[i] for i in self.live]


class LatentPointerEnv(gym.Env):
    """One episode of the task as a Gymnasium environment (see the module docstring)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, table: LatentTable, subsets=("image",), obs_mode: str = "mu", switch_prob: float = 0.0,
                 config: TaskConfig = TaskConfig(), render_mode: str | None = None):
        self._batch = PointerBatch(table, 1, subsets, obs_mode, switch_prob, config, seed=0)
        self.observation_space = observation_space(obs_mode, table.latent_dim)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._batch.rng = self.np_random
        obs = self._batch.reset()[0]
        return obs, self._info()

    def step(self, action):
        reward, term, trunc, hit = self._batch.step([int(action)])
        info = self._info()
        info["success"] = bool(hit[0])
        return self._batch.obs()[0], float(reward[0]), bool(term[0]), bool(trunc[0]), info

    def _info(self) -> dict:
        b = self._batch
        return {"target": int(b.target[0]), "pointer": int(b.pointer[0]), "live": b.live_names()[0]}

    def render(self):
        b = self._batch
        line = "".join("^" if i == b.pointer[0] else "." for i in range(N_CELLS))
        return f"{line}  target {int(b.target[0])}  live {b.live_names()[0]}"


def make_vec_env(table: LatentTable, n_envs: int = 16, subsets=("image",), obs_mode: str = "mu",
                 switch_prob: float = 0.0, config: TaskConfig = TaskConfig(), seed: int = 0,
                 sample_latent: bool = False):
    """A Stable-Baselines3 ``VecEnv`` of ``n_envs`` episodes stepped as one numpy batch
    (auto-reset, ``terminal_observation`` in the infos, as SB3 expects). ``sample_latent``: the
    observation holds a sample of the fused Gaussian (mu + std * noise, fresh every step)
    instead of its mean, a training-time augmentation.
    """
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    class _Vec(VecEnv):
        def __init__(self):
            self.batch = PointerBatch(table, n_envs, subsets, obs_mode, switch_prob, config, seed, sample_latent)
            self.render_mode = None
            super().__init__(n_envs, observation_space(obs_mode, table.latent_dim),
                             gym.spaces.Discrete(len(ACTIONS)))
            self._actions = None
            self._ep_ret = np.zeros(n_envs, np.float64)
            self._ep_len = np.zeros(n_envs, np.int64)

        def reset(self):
            self._ep_ret[:] = 0
            self._ep_len[:] = 0
            return self.batch.reset()

        def step_async(self, actions):
            self._actions = actions

        def step_wait(self):
            rew, term, trunc, hit = self.batch.step(self._actions)
            self._ep_ret += rew
            self._ep_len += 1
            done = term | trunc
            obs = self.batch.obs()
            infos = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(done):
                infos[i] = {"terminal_observation": obs[i].copy(), "TimeLimit.truncated": bool(trunc[i]),
                            "is_success": bool(hit[i]),
                            "episode": {"r": float(self._ep_ret[i]), "l": int(self._ep_len[i]), "t": 0.0}}
            if done.any():
                obs = self.batch.reset(done)
                self._ep_ret[done] = 0
                self._ep_len[done] = 0
            return obs, rew, done, infos

        def close(self):
            pass

        def get_attr(self, attr_name, indices=None):
            return [getattr(self, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name, value, indices=None):
            setattr(self, attr_name, value)

        def env_method(self, method_name, *args, indices=None, **kwargs):
            return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(self._get_indices(indices))

        def seed(self, seed=None):
            self.batch.rng = np.random.default_rng(seed)
            return [seed] * self.num_envs

    return _Vec()


def evaluate(act, table: LatentTable, subsets=("image",), obs_mode: str = "mu", episodes: int = 1000,
             switch_prob: float = 0.0, config: TaskConfig = TaskConfig(), seed: int = 12345) -> dict:
    """Run ``episodes`` episodes at once with ``act(obs (B, n)) -> actions (B,)``; returns
    ``{"return": mean, "success": rate, "return_std": ..., "length": mean}``.
    """
    b = PointerBatch(table, episodes, subsets, obs_mode, switch_prob, config, seed)
    ret = np.zeros(episodes, np.float64)
    length = np.zeros(episodes, np.int64)
    done = np.zeros(episodes, bool)
    success = np.zeros(episodes, bool)
    obs = b.obs()
    while not done.all():
        a = np.asarray(act(obs), np.int64).reshape(episodes)
        a = np.where(done, LEFT, a)  # finished episodes idle; their results are frozen below
        rew, term, trunc, hit = b.step(a)
        live = ~done
        ret[live] += rew[live]
        length[live] += 1
        success[live] |= hit[live]
        done |= term | trunc
        obs = b.obs()
    return {"return": float(ret.mean()), "return_std": float(ret.std()), "success": float(success.mean()),
            "length": float(length.mean())}
