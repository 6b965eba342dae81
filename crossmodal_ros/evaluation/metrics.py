# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Evaluation metrics of the paper's protocol (Section 6), ROS-free and model-free.

- :func:`accuracy`: fraction of predictions equal to the true class indices.
- :func:`frechet_distance`: Frechet distance between two Gaussians fitted to two feature sets,
  ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` (Heusel et al. 2017).
- :func:`per_class_frechet`: the paper's Modality Frechet Distance (Eq. 20): the Frechet
  distance computed separately for every class and averaged over the classes.

All functions accept numpy arrays or torch tensors and raise :class:`EvaluationError` (a
``ValueError``) for bad input.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import linalg


class EvaluationError(ValueError):
    """Bad input to the evaluation: wrong shapes, too few samples, unknown modality, ..."""


def _as_numpy(x, name: str) -> np.ndarray:
    """A float64/int numpy view of a numpy array or torch tensor (detached, on the CPU)."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - anything unconvertible is bad input
        raise EvaluationError(f"{name}: cannot convert {type(x).__name__} to an array") from exc


def accuracy(pred, y) -> float:
    """Fraction of samples whose prediction equals the true class index.

    ``pred`` is either class scores/logits of shape (N, C) (argmax is taken) or class indices
    of shape (N,); ``y`` holds the true class indices, shape (N,). Returns a float in [0, 1].
    """
    p = _as_numpy(pred, "pred")
    t = _as_numpy(y, "y")
    if p.ndim == 2:
        p = p.argmax(axis=1)
    if p.ndim != 1 or t.ndim != 1:
        raise EvaluationError(f"accuracy: pred must be (N,) or (N,C) and y (N,); got {p.shape} and {t.shape}")
    if p.shape[0] != t.shape[0]:
        raise EvaluationError(f"accuracy: {p.shape[0]} predictions for {t.shape[0]} labels")
    if p.shape[0] == 0:
        raise EvaluationError("accuracy: no samples")
    return float(np.mean(p.astype(np.int64) == t.astype(np.int64)))


def gaussian_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of a feature set of shape (N, D), N >= 2."""
    f = _as_numpy(feats, "feats").astype(np.float64)
    if f.ndim != 2:
        raise EvaluationError(f"features must be 2-D (N, D); got shape {f.shape}")
    if f.shape[0] < 2:
        raise EvaluationError(f"need at least 2 samples to fit a Gaussian; got {f.shape[0]}")
    if not np.all(np.isfinite(f)):
        raise EvaluationError("features contain NaN or infinite values")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b).

    The matrix square root of ``cov_a @ cov_b`` comes from ``scipy.linalg.sqrtm``; when that
    product is singular (too few samples for the dimension) the square root is recomputed with
    ``eps`` added to both diagonals. Only the real part is kept (tiny imaginary parts are
    numerical noise). The result is clipped at 0.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (mu_a.size, mu_a.size):
        raise EvaluationError(
            f"Gaussian statistics do not match: mu {mu_a.shape} vs {mu_b.shape}, cov {cov_a.shape} vs {cov_b.shape}"
        )
    diff = mu_a - mu_b
    with warnings.catch_warnings():  # singular products are handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(cov_a.shape[0]) * eps
            covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def frechet_distance(feats_a, feats_b, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D)."""
    mu_a, cov_a = gaussian_stats(feats_a)
    mu_b, cov_b = gaussian_stats(feats_b)
    if mu_a.shape != mu_b.shape:
        raise EvaluationError(f"feature dimensions differ: {mu_a.shape[0]} vs {mu_b.shape[0]}")
    return frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b, eps=eps)


def per_class_frechet(real, gen, labels, gen_labels=None, min_per_class: int = 2,
                      return_per_class: bool = False):
    """The paper's Modality Frechet Distance: per-class Frechet distance averaged over classes.

    ``real`` (N_r, D) are features of real samples with class indices ``labels`` (N_r,);
    ``gen`` (N_g, D) are features of generated samples whose intended classes are
    ``gen_labels`` (defaults to ``labels``: generated row i was produced from real row i).
    Classes with fewer than ``min_per_class`` samples on either side are skipped. Returns the
    mean over the scored classes, or ``(mean, {class: distance})`` with ``return_per_class``.
    Raises :class:`EvaluationError` when no class can be scored.
    """
    r = _as_numpy(real, "real")
    g = _as_numpy(gen, "gen")
    lr = _as_numpy(labels, "labels").astype(np.int64).reshape(-1)
    lg = lr if gen_labels is None else _as_numpy(gen_labels, "gen_labels").astype(np.int64).reshape(-1)
    if r.ndim != 2 or g.ndim != 2 or r.shape[1] != g.shape[1]:
        raise EvaluationError(f"features must be (N, D) with equal D; got {r.shape} and {g.shape}")
    if lr.shape[0] != r.shape[0] or lg.shape[0] != g.shape[0]:
        raise EvaluationError("one label per feature row is needed")
    min_per_class = max(int(min_per_class), 2)
    per_class: dict[int, float] = {}
    for k in np.union1d(np.unique(lr), np.unique(lg)):
        rk, gk = r[lr == k], g[lg == k]
        if rk.shape[0] < min_per_class or gk.shape[0] < min_per_class:
            continue
        per_class[int(k)] = frechet_distance(rk, gk)
    if not per_class:
        raise EvaluationError(f"no class has at least {min_per_class} real and generated samples")
    mean = float(np.mean(list(per_class.values())))
    return (mean, per_class) if return_per_class else mean


def mean_std(values) -> tuple[float, float]:
    """Mean and population standard deviation of the finite values (NaN, NaN if none)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())
