# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""What the inference node reads and writes: the input topics with their message types, and the
output table (topic, message type, the modality an output needs decoded, how a
:class:`~crossmodal_ros.engine.FusionResult` becomes the message); adding an output is one row.

:class:`InputSubscriptions` turns input messages into samples of the node's fusion core;
:class:`OutputPublishers` publishes a fusion result by walking the output table;
:class:`DeadlineTimer` is the fusion timer, set to the scheduler's next deadline.
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import numpy as np
from nav_msgs.msg import Path
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, Int32, String

from crossmodal_ros import units
from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, TRAJECTORY
from crossmodal_ros.ros import conversions as conv
from crossmodal_ros.fusion_store import Sample
from crossmodal_ros.griffin_lim import GriffinLimWorker

def message_type(name: str) -> type:
    """The message class of a ``pkg/msg/Type`` name (a unit's ``input_msg``)."""
    pkg, _, typ = name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), typ)


#: Input topic of each modality (relative names, remappable): the units' ``input_topic``.
INPUT_TOPICS: dict[str, str] = units.input_topics()
#: Message type of each input topic (the units' ``input_msg``, converted by their ``msg_to_input``).
INPUT_TYPES: dict[str, type] = {m: message_type(units.unit(m).input_msg) for m in INPUT_TOPICS}


def input_type(modality: str) -> type:
    """The input message class of ``modality`` (also of a unit registered after this import)."""
    return INPUT_TYPES.get(modality) or message_type(units.unit(modality).input_msg)


def decoded(result, modality: str) -> bool:
    """Whether ``result`` holds the decoded ``modality`` (lazy decoding leaves it empty)."""
    return result.decoded(modality)


@dataclass(frozen=True)
class PublishContext:
    """What some outputs carry besides the result: the output header and the model's identity."""

    header: Any
    kind: str = ""
    sha256: str = ""
    modalities: tuple = ()


@dataclass(frozen=True)
class Output:
    """One output topic ``~/<name>``: its message type, the modality it needs decoded (None:
    always available), and ``build(result, ctx) -> message`` (None: published by the
    Griffin-Lim worker, not at fusion time).
    """

    msg_type: type
    needs: Optional[str]
    build: Optional[Callable]


_local = threading.local()


def _trajectory(result, ctx):
    """The trajectory output through this thread's reused :class:`~conversions.PathBuilder`."""
    builder = getattr(_local, "path_builder", None)
    if builder is None:
        builder = _local.path_builder = conv.PathBuilder()
    return builder.build(np.asarray(result.trajectory), ctx.header)


def _image(result, ctx):
    img = np.clip(np.rint(np.asarray(result.image) * 255.0), 0, 255).astype(np.uint8)
    return conv.numpy_to_image(img, "mono8", ctx.header)


OUTPUTS: dict[str, Output] = {
    "image": Output(Image, IMAGE, _image),
    "audio_mel": Output(Image, AUDIO, lambda r, c: conv.numpy_to_image(
        np.asarray(r.audio_mel, dtype=np.float32), "32FC1", c.header)),
    "audio": Output(Float32MultiArray, AUDIO, None),
    "trajectory": Output(Path, TRAJECTORY, _trajectory),
    "label": Output(Int32, LABEL, lambda r, c: Int32(data=int(r.label))),
    "label_probs": Output(Float32MultiArray, LABEL, lambda r, c: conv.probs_to_msg(r.label_probs)),
    "latent": Output(Float32MultiArray, None, lambda r, c: conv.latent_to_msg(r.latent_mu, r.latent_logvar)),
    "modalities": Output(String, None, lambda r, c: String(data="+".join(r.fused))),
    "latent_stamped": Output(JointState, None, lambda r, c: conv.latent_to_stamped(
        r.latent_mu, r.latent_logvar, r.fused, c.kind, c.sha256, c.header, modalities=c.modalities)),
}
#: Every output the node can publish (the ``outputs`` parameter picks a subset).
OUTPUT_NAMES: tuple[str, ...] = tuple(OUTPUTS)
#: Outputs that exist only when the model decodes this modality.
OUTPUT_NEEDS: dict[str, str] = {name: o.needs for name, o in OUTPUTS.items() if o.needs is not None}


class DeadlineTimer:
    """A timer that fires once at a deadline and is then set again: the node's fusion timer,
    set after every tick to :meth:`~crossmodal_ros.fusion_policy.FusionCore.next_tick` instead of
    polling at ``max_rate_hz``. ``mono()`` is the clock of the deadlines (seconds); ``due`` the
    one set now (inf while stopped). Not thread-safe: the node calls it under its fusion lock.
    """

    #: Shortest period (a deadline already past fires at the next spin).
    MIN_PERIOD_NS = 100_000

    def __init__(self, mono: Callable[[], float]):
        self.mono, self.timer, self.due = mono, None, float("inf")

    def start(self, create: Callable[[float], Any], first_s: float) -> None:
        """``self.timer = create(period_s)``, first firing ``first_s`` from now."""
        self.due = self.mono() + first_s
        self.timer = create(first_s)

    def stop(self, destroy: Callable[[Any], None]) -> None:
        """``destroy`` the timer, if any."""
        if self.timer is not None:
            destroy(self.timer)
        self.timer, self.due = None, float("inf")

    def set(self, due: float, earlier_only: bool = False) -> None:
        """Fire at ``due`` (``mono`` seconds); with ``earlier_only`` only if sooner than ``self.due``."""
        if self.timer is None or (earlier_only and due >= self.due):
            return
        self.due = due
        self.timer.timer_period_ns = max(self.MIN_PERIOD_NS, int((due - self.mono()) * 1e9))
        self.timer.reset()


class InputSubscriptions:
    """The node's input subscriptions. Each message is counted (``monitor.tick``,
    ``core.accept``: dropped while inactive), converted and validated by its unit
    (:func:`crossmodal_ros.units.msg_to_input`; a failure is a counted, logged drop), stamped
    by its header (else by its arrival on ``clock()``, the node clock) and stored in ``core``; ``wake()`` then
    tells the fusion (the node fuses in that call). ``subs`` are the subscriptions, ``subscribed`` their modalities.
    """

    def __init__(self, core, monitor, clock: Callable[[], Any], wake: Callable[[], None]):
        self.core, self.monitor, self.clock, self.wake = core, monitor, clock, wake
        self.subs: list = []
        self.subscribed: frozenset = frozenset()
        self.max_pixels = 0

    def open(self, create: Callable[[str, type, str, Callable], Any], modalities: Iterable[str],
             max_pixels: int) -> None:
        """Subscribe with ``create(modality, msg_type, topic, callback)`` to each of ``modalities``."""
        self.subscribed, self.max_pixels = frozenset(modalities), int(max_pixels)
        self.subs = [create(m, input_type(m), units.unit(m).input_topic, lambda msg, m=m: self.on_message(m, msg))
                     for m in units.names() if m in self.subscribed]

    def close(self, destroy: Callable[[Any], None]) -> None:
        """``destroy`` every subscription."""
        for sub in self.subs:
            destroy(sub)
        self.subs = []

    def on_message(self, modality: str, msg) -> None:
        """Subscription callback: count, convert and validate, store the newest sample."""
        self.monitor.tick(modality)
        now = self.clock()  # arrival: one clock read for the counters and the stored sample
        if not self.core.accept(modality, now.nanoseconds * 1e-9):
            return
        try:
            value = units.msg_to_input(modality, msg, max_pixels=self.max_pixels)
        except conv.ConversionError as exc:
            self.core.drop(modality, exc.reason, str(exc))
            return
        if isinstance(value, np.ndarray):
            # nothing changes a stored input: read-only, the engine takes the same array object
            # as unchanged without comparing it again at every fusion (FusionEngine._lookup)
            value.flags.writeable = False
        self.store(modality, value, getattr(msg, "header", None), now=now)

    def store(self, modality: str, value: Any, header=None, wake: bool = True, now=None) -> None:
        """Store a validated ``value`` stamped by ``header`` (else by its arrival, ``now``: the
        clock's time, read here when None) and call ``wake()`` (the node fuses it there and
        then); ``wake=False`` only stores (tests stage inputs so).
        """
        now = self.clock() if now is None else now
        if header is not None and (header.stamp.sec or header.stamp.nanosec):
            stamp, frame = header.stamp, header.frame_id
        else:  # header-less input (audio, label) or an unset stamp: arrival time
            stamp, frame = now.to_msg(), (header.frame_id if header is not None else "")
        self.core.put(modality, Sample(value=value, stamp=stamp, stamp_s=conv.stamp_to_seconds(stamp),
                                       arrival_s=now.nanoseconds * 1e-9, frame_id=frame,
                                       seq=self.core.received[modality]))
        if wake and self.core.active:
            self.wake()


class OutputPublishers:
    """The node's output publishers, made from the table, and the publishing of one result.

    ``waveform(mel) -> message`` makes the ``audio`` message from a decoded mel (Griffin-Lim,
    slow: it runs on a :class:`GriffinLimWorker` thread, newest mel only, while ``audio`` is
    published); ``log_error(text)`` reports its failures. ``published`` counts the messages
    sent, across configure cycles; ``pubs`` maps output names to publishers.
    """

    def __init__(self, waveform: Callable[[Any], Any], log_error: Callable[[str], None]):
        self.pubs: dict[str, Any] = {}
        self.published = 0
        self._waveform = waveform
        self._gl = GriffinLimWorker(self._publish_waveform, log_error)

    def open(self, create: Callable[[type, str], Any], names: Iterable[str]) -> None:
        """Create ``~/<name>`` for each output of ``names`` with ``create(msg_type, topic)``."""
        names = set(names)
        self.pubs = {name: create(OUTPUTS[name].msg_type, f"~/{name}") for name in OUTPUT_NAMES if name in names}

    def start(self) -> None:
        """Start the Griffin-Lim worker when ``audio`` is published."""
        if "audio" in self.pubs:
            self._gl.start()

    def stop(self) -> None:
        """Stop the Griffin-Lim worker (queued mels are dropped)."""
        self._gl.stop()

    def close(self, destroy: Callable[[Any], None]) -> None:
        """Stop the worker and ``destroy`` every publisher."""
        self.stop()
        for pub in self.pubs.values():
            destroy(pub)
        self.pubs = {}

    def subscribed(self) -> frozenset:
        """The outputs that have subscribers now (a recorder and ``ros2 topic echo`` count)."""
        return frozenset(n for n, pub in self.pubs.items() if pub.get_subscription_count() > 0)

    def wanted_decodes(self, always: Iterable[str], subscribed: Optional[frozenset] = None) -> set:
        """Modalities to decode now: those with a subscribed output (``subscribed``, default:
        :meth:`subscribed` now), plus ``always``.
        """
        subscribed = self.subscribed() if subscribed is None else subscribed
        return set(always) | {OUTPUT_NEEDS[n] for n in subscribed if n in OUTPUT_NEEDS}

    def publish(self, result, ctx: PublishContext, subscribed: Optional[frozenset] = None) -> None:
        """Publish ``result`` on every output that has subscribers (``subscribed``, default:
        :meth:`subscribed` now) and whose modality was decoded (lazy outputs). The outputs are
        volatile, so a message nobody is subscribed to would reach no one: it is not built.
        """
        subscribed = self.subscribed() if subscribed is None else subscribed
        for name, pub in list(self.pubs.items()):
            spec = OUTPUTS[name]
            if name not in subscribed or (spec.needs is not None and not decoded(result, spec.needs)):
                continue  # no subscriber (a forced decode is not published), or its modality was not decoded
            if spec.build is None:  # the Griffin-Lim worker publishes it
                self._gl.submit(np.array(result.audio_mel, dtype=np.float32))
                continue
            pub.publish(spec.build(result, ctx))
            self.published += 1

    def _publish_waveform(self, mel) -> None:
        pub = self.pubs.get("audio")
        if pub is not None:
            pub.publish(self._waveform(mel))
            self.published += 1
