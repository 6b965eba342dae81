# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Small, self-contained policy files: the actor of a trained PPO agent as plain tensors.

A trained Stable-Baselines3 PPO agent is exported to a ``.pt`` file holding only its actor MLP
(weights and biases), the observation mode, the latent size, the task constants and the SHA-256
of the Nexus checkpoint whose latent space it was trained on. It loads with
``torch.load(weights_only=True)`` (no pickled code) and runs without Stable-Baselines3, so the
robot side needs only torch and numpy; :class:`LatentPolicy` acts greedily (argmax).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

FORMAT = "crossmodal_ros.rl.policy/1"


class PolicyError(RuntimeError):
    """A policy file that cannot be used (format, shape, or a latent space it was not trained on)."""


class LatentPolicy:
    """Greedy actor: ``act(obs (B, n) or (n,)) -> actions``; attributes from the file's meta."""

    def __init__(self, layers: list, activation: str, meta: dict):
        self.layers = [(torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32))
                       for w, b in layers]
        if activation not in ("tanh", "relu"):
            raise PolicyError(f"unknown activation {activation!r}")
        self.activation = activation
        self.meta = dict(meta)
        self.obs_mode = str(meta.get("obs_mode", "mu"))
        self.obs_dim = int(self.layers[0][0].shape[1])
        self.n_actions = int(self.layers[-1][0].shape[0])
        self.checkpoint_sha256 = str(meta.get("checkpoint_sha256", ""))

    def logits(self, obs) -> np.ndarray:
        x = torch.as_tensor(np.atleast_2d(np.asarray(obs, np.float32)))
        if x.shape[1] != self.obs_dim:
            raise PolicyError(f"observation has {x.shape[1]} values, the policy expects {self.obs_dim}")
        with torch.inference_mode():
            for i, (w, b) in enumerate(self.layers):
                x = x @ w.T + b
                if i < len(self.layers) - 1:
                    x = torch.tanh(x) if self.activation == "tanh" else torch.relu(x)
        return x.numpy()

    def act(self, obs) -> np.ndarray:
        return self.logits(obs).argmax(axis=1)

    __call__ = act

    def check_checkpoint(self, checkpoint_sha256: str) -> None:
        """Raise :class:`PolicyError` unless the policy was trained on this checkpoint's latents."""
        if self.checkpoint_sha256 and checkpoint_sha256 and self.checkpoint_sha256 != checkpoint_sha256:
            raise PolicyError(
                f"the policy was trained on the latent space of checkpoint {self.checkpoint_sha256[:12]}, "
                f"not {checkpoint_sha256[:12]}: retrain it (examples/rl_pointer.py train, then run "
                "--policy runs/rl_pointer_image.pt; or python -m crossmodal_ros.rl.experiment --policy-out FILE)")


def export_sb3(model, path, **meta) -> Path:
    """Write the actor of an SB3 PPO ``model`` (MlpPolicy) to ``path``; ``meta`` is stored as is
    (strings, numbers, lists).
    """
    pol = model.policy
    linears = [m for m in pol.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)] + [pol.action_net]
    act = pol.activation_fn.__name__.lower()
    layers = [(m.weight.detach().cpu().float().clone(), m.bias.detach().cpu().float().clone()) for m in linears]
    for k, v in list(meta.items()):
        if hasattr(v, "__dataclass_fields__"):
            meta[k] = asdict(v)
    payload = {"format": FORMAT, "layers": [[w, b] for w, b in layers], "activation": act, "meta": meta}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_policy(path) -> LatentPolicy:
    """Load a :class:`LatentPolicy` saved at ``path``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PolicyError(f"{path} is not a {FORMAT} policy file")
    return LatentPolicy(payload["layers"], payload["activation"], payload.get("meta", {}))
