# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""PNG grids of generated samples next to the real ones (matplotlib, Agg backend, no display).

One figure per input subset: for every modality a row of real samples and, below it, the row
generated from the subset's given modalities; columns are test examples. Images are shown
grey, trajectories as pen paths (x right, y up), mels as spectrogram images (low frequencies
at the bottom), labels as the digit (generated: argmax and its softmax probability).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, TRAJECTORY, subset_name  # noqa: E402


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def draw_sample(ax, modality: str, value, generated: bool = False) -> None:
    """Draw one sample of ``modality`` (a model tensor without batch axis) into ``ax``."""
    v = _np(value)
    ax.set_xticks([])
    ax.set_yticks([])
    if modality == IMAGE:
        ax.imshow(v.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
    elif modality == AUDIO:
        ax.imshow(v.reshape(v.shape[-2], v.shape[-1]), origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
    elif modality == TRAJECTORY:
        xs, ys = v[:100], v[100:200]
        ax.plot(xs, ys, "-", lw=1.2, color="tab:blue")
        ax.plot(xs[:1], ys[:1], "o", ms=2.5, color="tab:red")  # pen-down point
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_aspect("equal")
    elif modality == LABEL:
        if generated:
            p = np.exp(v - v.max())
            p /= p.sum()
            k = int(p.argmax())
            ax.text(0.5, 0.5, f"{k}\n{100 * p[k]:.0f}%", ha="center", va="center", fontsize=10)
        else:
            ax.text(0.5, 0.5, str(int(v.argmax())), ha="center", va="center", fontsize=14)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    else:
        ax.text(0.5, 0.5, "?", ha="center", va="center")


def plot_subset_grid(real: dict, generated: dict, given, path, modalities=None, n: int = 6,
                     title: str | None = None) -> Path:
    """Write a PNG grid: per modality a real row and a generated row, ``n`` example columns.

    ``real`` and ``generated`` map modality -> batch tensor (first ``n`` rows are drawn);
    ``given`` are the modalities the generation was conditioned on (their real rows are
    marked "given"). Returns the written path.
    """
    modalities = [m for m in (modalities or list(generated)) if m in generated and m in real]
    n = int(min(n, *(real[m].shape[0] for m in modalities), *(generated[m].shape[0] for m in modalities)))
    rows = 2 * len(modalities)
    fig, axes = plt.subplots(rows, n, figsize=(1.0 * n + 1.2, 0.95 * rows + 0.6), squeeze=False)
    for r, m in enumerate(modalities):
        for c in range(n):
            draw_sample(axes[2 * r, c], m, real[m][c], generated=False)
            draw_sample(axes[2 * r + 1, c], m, generated[m][c], generated=True)
        tag = "real (given)" if m in given else "real"
        axes[2 * r, 0].set_ylabel(f"{m}\n{tag}", fontsize=7)
        axes[2 * r + 1, 0].set_ylabel(f"{m}\ngenerated", fontsize=7, color="tab:green" if m not in given else "black")
    fig.suptitle(title or f"given: {subset_name(given)}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
