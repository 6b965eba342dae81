# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Modality units: one module per modality, registered (see :mod:`.registry`).

Importing this package registers the built-in units in canonical order: image, audio,
trajectory, label. A new modality is one module that builds a :class:`ModalityUnit` and calls
:func:`register`; the models, the engine and the node's tables then know it.
"""
from __future__ import annotations

from .registry import (ModalityUnit, canonical, input_topics, is_registered, msg_to_input, names, register,
                       shapes, unit, unregister)
from . import image, audio, trajectory, label  # noqa: E402,F401,I001 - the built-in units register in this order

__all__ = ["ModalityUnit", "canonical", "input_topics", "is_registered", "msg_to_input", "names", "register",
           "shapes", "unit", "unregister"]
