# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The fixed judges of the paper's evaluation protocol: per-modality classifiers and
per-modality feature auto-encoders, trained once on real data and shipped in ``models/``.

- Classifiers (accuracy metric): an image CNN, a trajectory MLP and a sound CNN built on the
  sound-encoder conv stack of NEXUS_SPEC (a (1,128)-kernel conv over the mel axis, then two
  stride-2 convs over time). The label modality needs no classifier: a generated label is
  judged by the argmax of its logits.
- Feature auto-encoders (Modality Frechet Distance): small deterministic AEs whose
  ``feature_dim``-wide bottleneck gives the features that Gaussians are fitted to. (The paper
  trains class-specific AEs; here one AE per modality serves all classes and the distance is
  still computed per class, which keeps the shipped file small and the features comparable
  across classes.)

All judges take model tensors (``crossmodal_ros.modalities.MODEL_SHAPES``): image (N,1,28,28),
audio log-mel (N,1,128,32) mel x frames, trajectory (N,200), label (N,10) scores.

:class:`Instruments` bundles them; ``save``/``load`` use one plain-tensor checkpoint (float16
weights, format version, dataset name and the judges' accuracy on the real test split), loadable
with ``torch.load(path, weights_only=True)``.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from crossmodal_ros.evaluation.metrics import EvaluationError
from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, MODEL_SHAPES, NUM_CLASSES, TRAJECTORY

FORMAT = "crossmodal_ros.instruments"
FORMAT_VERSION = 1
#: Modalities that have a classifier and a feature auto-encoder.
JUDGED_MODALITIES: tuple[str, ...] = (IMAGE, AUDIO, TRAJECTORY)
DEFAULT_FEATURE_DIM = 32


# --------------------------------------------------------------------------- classifiers
class ImageClassifier(nn.Module):
    """CNN on (N,1,28,28) images -> (N,10) logits: two conv blocks with max-pooling, an MLP head."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Dropout(0.3),
            nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TrajectoryClassifier(nn.Module):
    """MLP on (N,200) trajectories -> (N,10) logits."""

    def __init__(self, num_classes: int = NUM_CLASSES, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(200, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.1), nn.Dropout(0.2),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.1), nn.Dropout(0.2),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _SoundConvStack(nn.Module):
    """The NEXUS_SPEC sound-encoder conv stack on (N,1,128,32) mel x frames.

    The input is transposed to frames x mel (N,1,32,128); a (1,128) conv collapses the mel axis
    into ``c1`` channels, two (4,1) stride-2 convs halve the time axis twice: out (N, c2*8).
    """

    def __init__(self, c1: int, c2: int, batchnorm: bool):
        super().__init__()

        def block(cin, cout, k, s, p):
            layers = [nn.Conv2d(cin, cout, k, s, p, bias=not batchnorm)]
            if batchnorm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU())
            return layers

        self.net = nn.Sequential(
            *block(1, c1, (1, 128), 1, 0),
            *block(c1, c1, (4, 1), (2, 1), (1, 0)),
            *block(c1, c2, (4, 1), (2, 1), (1, 0)),
            nn.Flatten(),
        )
        self.out_dim = c2 * 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(2, 3))


class SoundClassifier(nn.Module):
    """Sound CNN on (N,1,128,32) mels -> (N,10) logits: the NEXUS_SPEC conv stack layout at half
    width (64/128 channels instead of 128/256; a judge, not a generator), then an MLP head.
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.stack = _SoundConvStack(64, 128, batchnorm=True)
        self.head = nn.Sequential(
            nn.Dropout(0.3), nn.Linear(self.stack.out_dim, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stack(x))


# --------------------------------------------------------------------------- auto-encoders
class FeatureAutoEncoder(nn.Module):
    """Deterministic auto-encoder; ``encode`` gives the Frechet features, ``forward`` the reconstruction."""

    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class _Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class _Transpose23(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(2, 3)


class ImageAutoEncoder(FeatureAutoEncoder):
    """Conv AE for (N,1,28,28) images with a ``dim``-wide linear bottleneck; sigmoid output."""

    def __init__(self, dim: int = DEFAULT_FEATURE_DIM):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(dim, 64 * 7 * 7), nn.ReLU(), _Reshape(64, 7, 7),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1),
            nn.Sigmoid(),
        )


class TrajectoryAutoEncoder(FeatureAutoEncoder):
    """MLP AE for (N,200) trajectories with a ``dim``-wide bottleneck; sigmoid output."""

    def __init__(self, dim: int = DEFAULT_FEATURE_DIM, hidden: int = 256):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(200, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 200),
            nn.Sigmoid(),
        )


class SoundAutoEncoder(FeatureAutoEncoder):
    """AE for (N,1,128,32) mels on the sound conv stack (64/128 channels), ``dim`` bottleneck."""

    def __init__(self, dim: int = DEFAULT_FEATURE_DIM):
        super().__init__()
        stack = _SoundConvStack(64, 128, batchnorm=False)
        self.encoder = nn.Sequential(stack, nn.Linear(stack.out_dim, dim))
        self.decoder = nn.Sequential(
            nn.Linear(dim, 128 * 8), nn.ReLU(), _Reshape(128, 8, 1),
            nn.ConvTranspose2d(128, 64, (4, 1), (2, 1), (1, 0)), nn.ReLU(),
            nn.ConvTranspose2d(64, 64, (4, 1), (2, 1), (1, 0)), nn.ReLU(),
            nn.ConvTranspose2d(64, 1, (1, 128)),  # (N,1,32,128) frames x mel
            _Transpose23(), nn.Sigmoid(),
        )


CLASSIFIERS = {IMAGE: ImageClassifier, AUDIO: SoundClassifier, TRAJECTORY: TrajectoryClassifier}
AUTOENCODERS = {IMAGE: ImageAutoEncoder, AUDIO: SoundAutoEncoder, TRAJECTORY: TrajectoryAutoEncoder}


# --------------------------------------------------------------------------- the bundle
def _plain(value):
    """Recursively check that a metadata value is plain (weights_only-loadable)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    raise EvaluationError(f"instrument metadata must be plain values; got {type(value).__name__}")


class Instruments(nn.Module):
    """The judges for one dataset: a classifier and a feature AE per judged modality.

    Attributes: ``modalities`` (judged modalities, canonical order), ``feature_dim``,
    ``dataset`` (name of the data they were trained on), ``test_accuracy``
    (``{modality: accuracy on the real test split}``; the judge's ceiling), ``meta`` (plain
    dict: training details, AE reconstruction errors, ...).
    """

    def __init__(self, modalities=JUDGED_MODALITIES, feature_dim: int = DEFAULT_FEATURE_DIM,
                 dataset: str = "", test_accuracy: dict | None = None, meta: dict | None = None):
        super().__init__()
        unknown = [m for m in modalities if m not in CLASSIFIERS]
        if unknown:
            raise EvaluationError(f"no judge exists for modalities {unknown}; judged are {list(CLASSIFIERS)}")
        self.modalities = tuple(m for m in JUDGED_MODALITIES if m in modalities)
        self.feature_dim = int(feature_dim)
        self.dataset = str(dataset)
        self.test_accuracy = dict(test_accuracy or {})
        self.meta = dict(meta or {})
        self.classifiers = nn.ModuleDict({m: CLASSIFIERS[m]() for m in self.modalities})
        self.autoencoders = nn.ModuleDict({m: AUTOENCODERS[m](self.feature_dim) for m in self.modalities})
        self.eval()

    # ----------------------------------------------------------------- judging
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        if modality not in MODEL_SHAPES:
            raise EvaluationError(f"unknown modality {modality!r}")
        if not isinstance(x, torch.Tensor):
            raise EvaluationError(f"{modality}: expected a torch tensor, got {type(x).__name__}")
        if tuple(x.shape[1:]) != MODEL_SHAPES[modality] or x.ndim != len(MODEL_SHAPES[modality]) + 1:
            raise EvaluationError(
                f"{modality}: expected shape (N, {', '.join(map(str, MODEL_SHAPES[modality]))}); got {tuple(x.shape)}"
            )
        return x.float()

    @torch.no_grad()
    def _batched(self, fn, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            outs = [fn(x[i:i + batch_size].to(self.device)).float().cpu() for i in range(0, x.shape[0], batch_size)]
        finally:
            self.train(was_training)
        if not outs:
            raise EvaluationError("no samples to judge")
        return torch.cat(outs)

    def classify(self, modality: str, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Class logits (N,10) on the CPU for a batch of model tensors of ``modality``.

        For ``label`` the tensor already holds class scores and is returned as float logits.
        """
        x = self._check(modality, x)
        if modality == LABEL:
            return x.detach().cpu()
        if modality not in self.classifiers:
            raise EvaluationError(f"these instruments have no {modality} classifier (have {list(self.modalities)})")
        return self._batched(self.classifiers[modality], x, batch_size)

    def predict(self, modality: str, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Predicted class indices (N,) int64."""
        return self.classify(modality, x, batch_size).argmax(dim=1)

    def has_features(self, modality: str) -> bool:
        """Whether a Frechet feature extractor exists for ``modality`` (not for the label)."""
        return modality in self.autoencoders

    def features(self, modality: str, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """AE bottleneck features (N, feature_dim) on the CPU for the Frechet distance."""
        x = self._check(modality, x)
        if not self.has_features(modality):
            raise EvaluationError(f"no feature auto-encoder for {modality!r} (the label modality has no MFD)")
        return self._batched(self.autoencoders[modality].encode, x, batch_size)

    def reconstruct(self, modality: str, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """The feature AE's reconstruction of ``x`` (a check of how much the features keep)."""
        x = self._check(modality, x)
        if not self.has_features(modality):
            raise EvaluationError(f"no feature auto-encoder for {modality!r}")
        return self._batched(self.autoencoders[modality], x, batch_size)

    # ----------------------------------------------------------------- persistence
    def to_checkpoint(self) -> dict:
        """The plain dict that :meth:`save` writes (float16 weights, plain metadata)."""
        state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
                 for k, v in self.state_dict().items()}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": self.dataset,
            "modalities": list(self.modalities),
            "feature_dim": self.feature_dim,
            "test_accuracy": _plain({k: float(v) for k, v in self.test_accuracy.items()}),
            "meta": _plain(self.meta),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "state_dict": state,
        }

    def save(self, path) -> Path:
        """Write the checkpoint atomically (temp file + rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            torch.save(self.to_checkpoint(), tmp)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; shipped files are world-readable
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path=None, device: str | torch.device = "cpu") -> "Instruments":
        """Load instruments saved by :meth:`save` (``weights_only=True``); weights upcast to float32.

        ``path`` defaults to the shipped ``models/instruments_digits.pt``. Raises
        :class:`EvaluationError` naming the problem (missing file, not an instruments file,
        unsupported version, mismatching weights).
        """
        path = Path(path) if path is not None else default_instruments_path()
        if not path.is_file():
            raise EvaluationError(
                f"instruments file {path} not found; train it with "
                "`python -m crossmodal_ros.evaluation.train_instruments --data digits --out {path}`"
            )
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - corrupt or pickled-code files
            raise EvaluationError(f"cannot read instruments file {path}: {exc}") from exc
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise EvaluationError(f"{path} is not a crossmodal_ros instruments file")
        if ckpt.get("format_version") != FORMAT_VERSION:
            raise EvaluationError(
                f"{path} has instruments format version {ckpt.get('format_version')}; this code reads {FORMAT_VERSION}"
            )
        inst = cls(modalities=tuple(ckpt["modalities"]), feature_dim=int(ckpt["feature_dim"]),
                   dataset=ckpt.get("dataset", ""), test_accuracy=ckpt.get("test_accuracy", {}),
                   meta=ckpt.get("meta", {}))
        own = inst.state_dict()
        state = {k: (v.to(own[k].dtype) if k in own else v) for k, v in ckpt["state_dict"].items()}
        try:
            inst.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise EvaluationError(f"{path}: weights do not match the judge networks: {exc}") from exc
        inst.meta["created"] = ckpt.get("created", "")
        return inst.to(device).eval()


def default_instruments_path(dataset: str = "digits") -> Path:
    """The shipped instruments for ``dataset``: ``<share>/models/instruments_<dataset>.pt``."""
    from crossmodal_ros.paths import models_dir

    return models_dir() / f"instruments_{dataset}.pt"
