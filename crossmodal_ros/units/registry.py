# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The registry of modality units: what one modality is, declared once.

A :class:`ModalityUnit` holds everything the package knows about one modality: the shape of
its model tensor, its codec (raw reading <-> model tensor), its bottom networks and default
latent size, its reconstruction losses, how a decoded model tensor becomes a fusion output,
its input topic with the message type and the conversion that validates a message, and a
warm-up sample. The built-in units (image, audio, trajectory, label) are modules of this
package; another modality is one more module that calls :func:`register`.

The models, the engine and the node's tables read this registry; the order of registration is
the canonical modality order (the built-ins first, in :data:`crossmodal_ros.modalities.MODALITIES`
order).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..messages import DEFAULT_MAX_PIXELS, ConversionError
from .losses import squared_error_loss


@dataclass(frozen=True)
class ModalityUnit:
    """One modality, declared in one place.

    name: the modality key of every dict; shape: its model tensor without the batch
    axis. codec(**params): a new codec (raw reading <-> model tensor); needs_sample_rate:
    the codec's encode takes the sample rate as a second argument. encoder(latent_dim) /
    decoder(latent_dim): the bottom networks (x -> (mu, logvar), z -> x); latent_dim and
    rec_weight: the reference model's bottom latent size and reconstruction weight.
    reconstruction(x_hat, x, present, min_log_sigma) -> (B,): the bottom reconstruction loss;
    latent_reconstruction: the same for the top level's reconstruction of the bottom latent.
    to_output(tensor, codec): one decoded model tensor (no batch axis, numpy) -> the fusion
    output (:class:`~crossmodal_ros.engine.FusionResult`); empty_output(): the output of a
    modality that was not decoded (an empty array). input_topic (relative, remappable),
    input_msg (``pkg/msg/Type``) and msg_to_input(msg, max_pixels): the input message
    and its validated conversion to a raw reading (raises ConversionError). warm_up(sample_rate):
    a small valid raw reading.
    """

    name: str
    shape: tuple
    codec: Callable[..., Any]
    encoder: Callable[[int], Any]
    decoder: Callable[[int], Any]
    latent_dim: int
    rec_weight: float
    reconstruction: Callable
    to_output: Callable[[Any, Any], Any]
    empty_output: Callable[[], Any]
    input_topic: str
    input_msg: str
    msg_to_input: Callable[[Any, int], Any]
    warm_up: Callable[[int], Any]
    latent_reconstruction: Callable = squared_error_loss
    needs_sample_rate: bool = False


_UNITS: dict[str, ModalityUnit] = {}


def register(unit: ModalityUnit, replace: bool = False) -> ModalityUnit:
    """Add ``unit`` to the registry (after the units already there); returns it."""
    if unit.name in _UNITS and not replace:
        raise ValueError(f"modality {unit.name!r} is already registered")
    _UNITS[unit.name] = unit
    return unit


def unregister(name: str) -> None:
    """Remove a registered unit (tests that add a toy modality clean up with this)."""
    _UNITS.pop(name, None)


def unit(name: str) -> ModalityUnit:
    """The unit of modality ``name``; an unknown name raises KeyError naming the known ones."""
    try:
        return _UNITS[name]
    except KeyError:
        raise KeyError(f"no modality unit {name!r}; registered: {list(_UNITS)}") from None


def names() -> tuple[str, ...]:
    """Every registered modality, in canonical order."""
    return tuple(_UNITS)


def is_registered(name) -> bool:
    """Whether ``name`` is a registered modality."""
    return name in _UNITS


def canonical(modalities) -> tuple[str, ...]:
    """``modalities`` (registered names) in canonical order."""
    wanted = set(modalities)
    return tuple(m for m in _UNITS if m in wanted)


def shapes() -> dict[str, tuple]:
    """``{modality: model tensor shape}`` of every registered modality."""
    return {m: tuple(u.shape) for m, u in _UNITS.items()}


def input_topics() -> dict[str, str]:
    """``{modality: input topic}`` of every registered modality."""
    return {m: u.input_topic for m, u in _UNITS.items()}


def msg_to_input(modality: str, msg, max_pixels: int = DEFAULT_MAX_PIXELS):
    """A sensor message as the fusion takes it (the unit's ``msg_to_input``): every check of the
    live node and of the offline bag evaluator, so both drop the same messages. Raises
    :class:`~crossmodal_ros.messages.ConversionError`, also for an unknown modality.
    """
    if modality not in _UNITS:
        raise ConversionError(f"no input conversion for modality {modality!r}", reason="invalid")
    return _UNITS[modality].msg_to_input(msg, max_pixels)
