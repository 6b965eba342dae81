# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The paper's evaluation protocol (Nexus paper, Section 6), ROS-free.

- :mod:`.metrics`: accuracy, Frechet distance, per-class Modality Frechet Distance.
- :mod:`.instruments`: the fixed judges (classifiers + feature auto-encoders) and their
  shipped checkpoint ``models/instruments_<dataset>.pt``.
- :mod:`.train_instruments`: trains the judges once on real data.
- :mod:`.evaluate`: :func:`evaluate_model` and the ``crossmodal-eval`` tool.
- :mod:`.plots`: PNG grids of generated samples.
"""
from crossmodal_ros.evaluation.instruments import Instruments, default_instruments_path
from crossmodal_ros.evaluation.metrics import EvaluationError, accuracy, frechet_distance, per_class_frechet

__all__ = ["EvaluationError", "Instruments", "accuracy", "default_instruments_path", "evaluate_model",
           "frechet_distance", "per_class_frechet"]


def evaluate_model(*args, **kwargs):
    """See :func:`crossmodal_ros.evaluation.evaluate.evaluate_model` (imported lazily)."""
    from crossmodal_ros.evaluation.evaluate import evaluate_model as _evaluate_model

    return _evaluate_model(*args, **kwargs)
