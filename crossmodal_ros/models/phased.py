# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Multi-phase training for models whose parts are trained in separate stages.

The associator network (VAEs unpaired, then associators with the VAEs frozen), the variational
alignment (branches, mapper, fine-tune) and the latent-constraint mapping (embedding VAEs, then
the tied auto-encoders) train in phases. A :class:`PhasedModel` lists them with
:meth:`PhasedModel.training_phases`; the trainer (``training/train.py``) runs each phase in
order with its own optimizer over the phase's trainable parameters, and the model's ``loss``
computes the objective of the current phase (:meth:`PhasedModel.set_phase`).

Freezing is real: parameters outside the phase get ``requires_grad=False`` (they receive no
gradient) and the modules holding only frozen parameters stay in eval mode (BatchNorm running
statistics do not move).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from .base import ModelConfigError, MultimodalModel


@dataclass
class TrainingPhase:
    """One training phase of a :class:`PhasedModel`.

    ``name``: the phase the model's loss computes; ``epochs``: passes over the phase's data;
    ``modules``: names of the model's child modules (dotted paths) trained in this phase, all
    others frozen; ``data_fraction``: the fraction of the training samples the phase sees (a
    fixed, seeded subset, e.g. the few *paired* samples of the associators); ``description``
    for logs.
    """

    name: str
    epochs: int
    modules: list = field(default_factory=list)
    data_fraction: float = 1.0
    description: str = ""


@dataclass
class PretrainPhase:
    """A stage the trainer runs before a model's own training (declared by
    :meth:`MultimodalModel.pretraining_phases`), e.g. Nexus's sound SigmaVAE.

    ``module`` (a part of the model) is trained alone with ``loss(module, batch, epoch) ->
    (loss, logs)`` (``logs`` with a ``"loss"`` entry) on the batch keys ``keys`` (plus their
    ``clean:<key>`` originals where the data has them; validation batches carry ``keys`` only);
    the epoch with the lowest validation loss is kept, then ``finish()`` runs (e.g. freeze the
    part and record that the stage ran). Epochs, learning rate and batch size are the train
    config keys ``<config>_epochs``, ``<config>_lr`` and ``<config>_batch_size``; ``name`` and
    ``description`` are for logs.
    """

    name: str
    module: nn.Module
    loss: Callable
    keys: tuple
    config: str
    description: str
    finish: Callable[[], None]


class PhasedModel(MultimodalModel):
    """A :class:`MultimodalModel` trained in phases (see the module docstring).

    Subclasses define ``PHASES`` (ordered phase names), :meth:`phase_modules` and a ``loss`` that
    looks at ``self.phase``. The config key ``phase_epochs`` maps phase name -> epochs (0 = the
    trainer's ``train.epochs``). A freshly built model is in its last phase (the full objective
    used for validation after loading a checkpoint) with every parameter trainable.
    """

    PHASES: tuple[str, ...] = ()

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.phase: str = self.PHASES[-1] if self.PHASES else ""
        self._frozen_modules: list[nn.Module] = []

    @classmethod
    def check_phase_config(cls, cfg: dict) -> None:
        """``phase_epochs`` names only known phases, with epochs >= 0."""
        for name, epochs in cfg.get("phase_epochs", {}).items():
            if name not in cls.PHASES:
                raise ModelConfigError(f"config key 'model.phase_epochs.{name}' is not a phase; phases: "
                                       f"{list(cls.PHASES)}")
            if epochs < 0:
                raise ModelConfigError(f"config key 'model.phase_epochs.{name}' must be >= 0, got {epochs}")
        frac = cfg.get("paired_fraction", 1.0)
        if not 0.0 < frac <= 1.0:
            raise ModelConfigError(f"config key 'model.paired_fraction' must be in (0, 1], got {frac}")

    # ---- phases
    def phase_modules(self, phase: str) -> list[str]:
        """Names of the child modules trained in ``phase`` (subclasses)."""
        raise NotImplementedError

    def phase_data_fraction(self, phase: str) -> float:
        """Fraction of the training samples ``phase`` uses (default all)."""
        return 1.0

    def training_phases(self, default_epochs: int) -> list[TrainingPhase]:
        """The phases in order; a phase's epochs come from ``phase_epochs`` (0 = ``default_epochs``)."""
        epochs = self.config.get("phase_epochs", {})
        return [TrainingPhase(p, int(epochs.get(p, 0)) or int(default_epochs), self.phase_modules(p),
                              self.phase_data_fraction(p), f"{self.kind} phase {i + 1}/{len(self.PHASES)}: {p}")
                for i, p in enumerate(self.PHASES)]

    def set_phase(self, phase: str) -> list[nn.Parameter]:
        """Enter ``phase``: only its modules' parameters stay trainable (returned, for the
        optimizer); the others are frozen and their modules kept in eval mode.
        """
        if phase not in self.PHASES:
            raise ValueError(f"{self.kind} has no training phase {phase!r}; phases: {list(self.PHASES)}")
        self.phase = phase
        names = self.phase_modules(phase)
        self.requires_grad_(False)
        trainable = []
        for name in names:
            mod = self.get_submodule(name)
            mod.requires_grad_(True)
            trainable.extend(mod.parameters())
        ids = {id(p) for p in trainable}
        self._frozen_modules = [m for m in self.modules()
                                if m is not self and any(True for _ in m.parameters(recurse=False))
                                and all(id(p) not in ids for p in m.parameters(recurse=False))]
        self.train(self.training)
        return trainable

    def train(self, mode: bool = True):
        """``nn.Module.train`` that keeps frozen modules (of the current phase) in eval mode."""
        super().train(mode)
        for m in getattr(self, "_frozen_modules", ()):
            m.eval()
        return self

    def unfreeze(self) -> None:
        """Every parameter trainable again, no module pinned to eval (after training)."""
        self.requires_grad_(True)
        self._frozen_modules = []
        self.phase = self.PHASES[-1]


def phase_defaults(phases: tuple[str, ...]) -> dict:
    """``{"phase_epochs": {phase: 0, ...}}``: the config entry every phased model has."""
    return {"phase_epochs": {p: 0 for p in phases}}

