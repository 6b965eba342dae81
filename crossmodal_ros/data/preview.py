# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Picture of the digits dataset: per class, the image, the pen trajectory and the log-mel.

python -m crossmodal_ros.data.preview --out docs/images/digits_dataset.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def render_preview(out: Path, split: str = "test", root=None) -> Path:
    """Draw one sample per class of ``split`` (the first of each class) into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossmodal_ros.codecs import AudioCodec
    from crossmodal_ros.data.digits import load_digits

    ds = load_digits(split, root=root)
    codec = AudioCodec()
    fig, axes = plt.subplots(3, 10, figsize=(15, 5.2), gridspec_kw={"height_ratios": [1, 1, 1.2]})
    for d in range(10):
        i = int(np.flatnonzero(ds["label"] == d)[0])
        ax = axes[0, d]
        ax.imshow(ds["image"][i, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{d}  (writer {ds['writer'][i]})", fontsize=9)
        ax = axes[1, d]
        t = ds["trajectory"][i]
        ax.plot(t[:100], t[100:], "-", lw=1.2, color="tab:blue")
        ax.plot(t[0], t[100], "o", ms=3, color="tab:green")
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_aspect("equal")
        ax = axes[2, d]
        mel = codec.encode(ds["audio"][i, : ds["audio_length"][i]], ds["sample_rate"])
        ax.imshow(mel[0], origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
        ax.set_xlabel(ds["audio_file"][i], fontsize=8)
        for a in axes[:, d]:
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("image 28x28")
    axes[1, 0].set_ylabel("trajectory")
    axes[2, 0].set_ylabel("log-mel 128x32")
    fig.suptitle(f"digits dataset ({split}): pendigits pen strokes -> image + trajectory, FSDD speech -> log-mel")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return out


def main(argv=None) -> int:
    """Command line: write a preview image of a dataset split."""
    ap = argparse.ArgumentParser(description="Picture of the digits dataset (one sample per class).")
    ap.add_argument("--out", type=Path, default=Path("docs/images/digits_dataset.png"))
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    args = ap.parse_args(argv)
    print(render_preview(args.out, args.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
