# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Linear probes of a Nexus checkpoint's image path: how well the digit class can be read from the
bottom image VAE's latent mean and from the shared latent z_sigma inferred from the image alone.

Usage::

    python tools/probe_image_latent.py models/nexus_digits.pt [MORE.pt ...] [--split val] [--out FILE.md]

For each checkpoint: a logistic regression (scikit-learn, standardised features) is fit on the
latent means of the dataset's training-split images and scored on ``--split`` (``val`` by
default; choose recipes on it, not on ``test``). If the bottom latent reads worse than z_sigma, the
bottom image VAE limits what the top level can recover from the camera (issue 15: the reason the
shipped recipe weighs the bottom image reconstruction 10 instead of 1). Prints a Markdown table
(``--out`` also writes it, with the split and sample counts).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crossmodal_ros.checkpoint import load_checkpoint  # noqa: E402
from crossmodal_ros.data.digits import load_digits  # noqa: E402


def image_latents(model, images: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(bottom image latent means, z_sigma means from the image alone), float64 arrays."""
    bottom, shared = [], []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.as_tensor(images[i:i + batch]).float()
            bottom.append(model.bottom.encode("image", x)[0])
            shared.append(model.encode({"image": x})[0])
    return torch.cat(bottom).double().numpy(), torch.cat(shared).double().numpy()


def probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Accuracy of a multinomial logistic regression fit on (train_x, train_y), scored on test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    clf.fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    train, held = load_digits("train"), load_digits(a.split)
    ytr, yte = np.asarray(train["label"]), np.asarray(held["label"])
    lines = [f"Linear probes of the digit class (logistic regression fit on the {len(ytr):,} training-split "
             f"images' latent means, scored on the {len(yte):,} `{a.split}` images), `tools/probe_image_latent.py`.",
             "",
             "| checkpoint | image bottom weight | bottom image latent (dim) | z_sigma from the image alone (dim) |",
             "|---|---|---|---|"]
    for path in a.checkpoints:
        model = load_checkpoint(path)[0].float().eval()
        if not hasattr(model, "bottom"):
            p.error(f"{path}: kind has no bottom level to probe")
        btr, str_ = image_latents(model, train["image"])
        bte, ste = image_latents(model, held["image"])
        acc_b, acc_s = probe(btr, ytr, bte, yte), probe(str_, ytr, ste, yte)
        weight = model.config.get("bottom_weights", {}).get("image", "?")
        lines.append(f"| `{path.name}` | {weight} | {100 * acc_b:.1f} % ({btr.shape[1]}) | "
                     f"{100 * acc_s:.1f} % ({str_.shape[1]}) |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
