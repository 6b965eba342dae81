# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The Gaussian and reconstruction losses of the modality units and the models (``models.base``
re-exports them).
"""
from __future__ import annotations

import math

import torch
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A sample of N(mu, exp(logvar)) that gradients flow through."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions -> (B,)."""
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Log N(z; mu, exp(logvar)) summed over the last axis (broadcasts over leading axes)."""
    return -0.5 * torch.sum(LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar), dim=-1)


def sum_squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors per sample -> (B,)."""
    return (x_hat - x).pow(2).flatten(1).sum(1)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` against a one-hot (or soft) ``target`` per sample -> (B,)."""
    return -(target * torch.log_softmax(logits, dim=-1)).sum(-1)


def softclip(x: torch.Tensor, minimum: float) -> torch.Tensor:
    """Soft lower bound: ``minimum + softplus(x - minimum)`` (SigmaVAE's log-sigma clip)."""
    return minimum + nn.functional.softplus(x - minimum)


def shared_sigma_gaussian_nll(x_hat: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None = None,
                              min_log_sigma: float = -6.0) -> torch.Tensor:
    """Gaussian NLL per sample with one sigma shared by the batch (SigmaVAE, optimal sigma).

    sigma^2 is the mean squared error over the (present) batch elements, its log soft-clipped
    at ``min_log_sigma``; the NLL is summed over each sample's elements -> (B,).
    ``weight`` (B,) in {0, 1} excludes absent samples from the sigma estimate.
    """
    se = (x_hat - x).pow(2).flatten(1)
    if weight is None:
        mse = se.mean()
    else:
        mse = (se.mean(1) * weight).sum() / weight.sum().clamp_min(1.0)
    log_sigma = softclip(0.5 * torch.log(mse + 1e-12), min_log_sigma)
    return (0.5 * se * torch.exp(-2.0 * log_sigma) + log_sigma + 0.5 * LOG_2PI).sum(1)


# the units' loss signature: (x_hat, x, present (B,) bool, min_log_sigma) -> per-sample loss (B,)
def squared_error_loss(x_hat: torch.Tensor, x: torch.Tensor, present=None, min_log_sigma: float = -6.0):
    """:func:`sum_squared_error` with the units' loss signature."""
    return sum_squared_error(x_hat, x)


def cross_entropy_loss(x_hat: torch.Tensor, x: torch.Tensor, present=None, min_log_sigma: float = -6.0):
    """:func:`soft_cross_entropy` (``x_hat`` logits) with the units' loss signature."""
    return soft_cross_entropy(x_hat, x)


def sigma_nll_loss(x_hat: torch.Tensor, x: torch.Tensor, present=None, min_log_sigma: float = -6.0):
    """:func:`shared_sigma_gaussian_nll` over the present samples with the units' loss signature."""
    return shared_sigma_gaussian_nll(x_hat, x, None if present is None else present.float(), min_log_sigma)
