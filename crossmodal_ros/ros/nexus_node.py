# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The Nexus inference node: a lifecycle node fusing whatever sensors are live (docs/architecture.md).

Topics (relative names, remappable):

* inputs: ``camera/image_raw`` (sensor_msgs/Image), ``audio/chunk`` (std_msgs/Float32MultiArray,
  mono PCM at the ``sample_rate`` parameter), ``pen/stroke`` (nav_msgs/Path), ``label``
  (std_msgs/Int32, optional teacher input);
* outputs, in the node's private namespace (``~/image`` -> ``/nexus/image`` for a node named
  ``nexus``; private names keep the ``label`` output apart from the ``label`` input):
  ``image`` (mono8 28x28), ``audio_mel`` (32FC1 128x32), ``audio`` (Griffin-Lim waveform, only
  with ``griffin_lim``), ``trajectory`` (Path, 100 poses), ``label`` (Int32), ``label_probs``
  and ``latent`` (Float32MultiArray, see :mod:`crossmodal_ros.ros.conversions`), ``modalities``
  (String, fused inputs joined by ``+``); plus ``/diagnostics`` at about 1 Hz.

Fusion semantics: subscription callbacks only convert, validate and store the newest sample per
modality (invalid messages are dropped, counted per modality and reason, and logged
throttled). A separate callback group fuses the live modalities promptly when new input
arrives (at once unless a fusion is running; bursts coalesced to the newest; fresh fusions at
most ``max_rate_hz``) and on a ``heartbeat_hz`` heartbeat that only fills silence (see
:mod:`crossmodal_ros.fusion_policy`, the scheduler shared with the offline bag evaluator).
Outputs are lazy: only the modalities whose output topics have subscribers (or that the
``always_decode`` parameter names) are decoded and published; the latent, ``modalities`` and
``latent_stamped`` are always published. A latent-only subscriber costs the encoders and the
shared latent. A modality is live while the *arrival time of its newest message on the node
clock* is younger than its ``staleness.<modality>`` window (the node clock follows ``/clock``
under ``use_sim_time``; a clock jump backwards makes a stored sample fresh once instead of
failing). Arrival time, not the header stamp, decides liveness, so a sensor with a skewed clock
still works; output headers carry the newest header stamp among the fused inputs (arrival time
for the header-less audio and label inputs, and for a zero stamp) and the ``frame_id`` parameter.
"""
from __future__ import annotations

import hashlib
import math
import queue
import threading
import time
from collections import Counter
from typing import Any, Optional

import numpy as np
import rclpy
from rclpy._rclpy_pybind11 import RCLError
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, Int32, String

from crossmodal_ros.fusion_policy import FRESH, FusionScheduler
from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, MODALITIES, NUM_CLASSES, TRAJECTORY
from crossmodal_ros.ros import conversions as conv
from crossmodal_ros.ros.diagnostics import (
    FrequencyWindow, LatencyStats, RateMeter, fusion_status, input_status)
from crossmodal_ros.fusion_store import LatestSamples, Sample, newest
from crossmodal_ros.ros.qos import RELIABILITY_CHOICES, input_qos, output_qos

#: Input topic of each modality (relative names).
INPUT_TOPICS: dict[str, str] = {
    IMAGE: "camera/image_raw",
    AUDIO: "audio/chunk",
    TRAJECTORY: "pen/stroke",
    LABEL: "label",
}

#: Every output the node can publish (the ``outputs`` parameter picks a subset).
OUTPUT_NAMES: tuple[str, ...] = (
    "image", "audio_mel", "audio", "trajectory", "label", "label_probs", "latent", "modalities",
    "latent_stamped",
)

DEVICE_CHOICES = ("auto", "cpu", "cuda")

def _float_desc(text: str, lo: float, hi: float) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=text, type=ParameterType.PARAMETER_DOUBLE,
        floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi, step=0.0)])


def _int_desc(text: str, lo: int, hi: int) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=text, type=ParameterType.PARAMETER_INTEGER,
        integer_range=[IntegerRange(from_value=lo, to_value=hi, step=1)])


def _desc(text: str, ptype: int, read_only: bool = False) -> ParameterDescriptor:
    return ParameterDescriptor(description=text, type=ptype, read_only=read_only)


#: name -> (default, descriptor). Ranges are enforced by rclpy; choices and cross-parameter
#: rules by :meth:`NexusNode._validate`.
PARAMETERS: dict[str, tuple[Any, ParameterDescriptor]] = {
    "checkpoint": ("", _desc(
        "Model checkpoint (.pt). Empty: the shipped default (crossmodal_ros.paths."
        "default_checkpoint()). Read at configure.", ParameterType.PARAMETER_STRING)),
    "device": ("auto", _desc(
        "Inference device: auto (cuda when available, else cpu), cpu or cuda. Read at configure.",
        ParameterType.PARAMETER_STRING)),
    "max_rate_hz": (100.0, _float_desc(
        "Upper bound on fusions of fresh input per second (heartbeats do not count); fresh "
        "input is fused at once unless a fusion is running or the last fresh fusion was less "
        "than 1/max_rate_hz ago; bursts are coalesced to the newest.", 0.1, 1000.0)),
    "heartbeat_hz": (5.0, _float_desc(
        "Fusions per second while any input is live and nothing new arrived for 1/heartbeat_hz "
        "(fills silence only, never delays fresh input; 0 = no heartbeat). Must not exceed "
        "max_rate_hz.", 0.0, 1000.0)),
    "staleness.image": (1.0, _float_desc(
        "Seconds an image stays live after it arrived (node clock); 0 ignores the input.",
        0.0, 3600.0)),
    "staleness.audio": (2.0, _float_desc(
        "Seconds an audio chunk stays live after it arrived; 0 ignores the input.", 0.0, 3600.0)),
    "staleness.trajectory": (2.0, _float_desc(
        "Seconds a pen stroke stays live after it arrived; 0 ignores the input.", 0.0, 3600.0)),
    "staleness.label": (2.0, _float_desc(
        "Seconds a teacher label stays live after it arrived; 0 ignores the input.", 0.0, 3600.0)),
    "qos_reliability": ("best_effort", _desc(
        "Reliability of the input subscriptions: best_effort (sensor-data QoS, receives from "
        "every publisher) or reliable. Read at configure.", ParameterType.PARAMETER_STRING)),
    "qos_depth": (5, _int_desc("History depth of the input subscriptions. Read at configure.",
                               1, 1000)),
    "outputs": (list(OUTPUT_NAMES), _desc(
        "Outputs to publish, any of: " + ", ".join(OUTPUT_NAMES) + " ('audio' also needs "
        "griffin_lim). Read at configure.", ParameterType.PARAMETER_STRING_ARRAY)),
    "always_decode": ([""], _desc(
        "Modalities (image, audio, trajectory, label, or all) decoded at every fusion even when "
        "no subscriber listens to their outputs. Others are decoded only while their output "
        "topics have subscribers. Read at configure.", ParameterType.PARAMETER_STRING_ARRAY)),
    "sample_latent": (False, _desc(
        "Decode a sample of the latent Gaussian instead of its mean.",
        ParameterType.PARAMETER_BOOL)),
    "griffin_lim": (False, _desc(
        "Publish an audio waveform reconstructed from the mel by Griffin-Lim (worker thread, "
        "newest mel only; costs CPU).", ParameterType.PARAMETER_BOOL)),
    "sample_rate": (16000, _int_desc(
        "Sample rate (Hz) of the audio/chunk input, shared with the microphone node.",
        1000, 192000)),
    "autostart": (True, _desc(
        "Configure and activate at startup (deployments without a lifecycle manager).",
        ParameterType.PARAMETER_BOOL, read_only=True)),
    "max_image_pixels": (4096 * 4096, _int_desc(
        "Larger camera frames (width*height) are dropped (reason 'size'). Read at configure.",
        1, 1 << 30)),
    "modalities": ([""], _desc(
        "Inputs this deployment needs the model to fuse (any of image, audio, trajectory, "
        "label); configure fails when the checkpoint was trained without one of them. "
        "Empty: whatever the checkpoint has. Read at configure.",
        ParameterType.PARAMETER_STRING_ARRAY)),
    "frame_id": ("nexus", _desc("frame_id of every output header.",
                                ParameterType.PARAMETER_STRING)),
    "clock_timeout_s": (1.0, _float_desc(
        "With use_sim_time: when /clock has not advanced for this many wall-clock seconds (a bag "
        "that ended or is paused), no input is live and nothing is published until it advances "
        "again. 0 = off. Ignored on wall time.", 0.0, 3600.0)),
    "diagnostics.window": (5, _int_desc(
        "Per-input diagnostics: frequency window in diagnostics periods (1 s each), as "
        "diagnostic_updater's FrequencyStatus.", 1, 1000)),
    "diagnostics.tolerance": (0.1, _float_desc(
        "Per-input diagnostics: accepted relative deviation from the expected rate.", 0.0, 10.0)),
    "diagnostics.expected_hz.image": (0.0, _float_desc(
        "Expected camera/image_raw rate (Hz) for diagnostics; 0 = no rate check.", 0.0, 10000.0)),
    "diagnostics.expected_hz.audio": (0.0, _float_desc(
        "Expected audio/chunk rate (Hz) for diagnostics; 0 = no rate check.", 0.0, 10000.0)),
    "diagnostics.expected_hz.trajectory": (0.0, _float_desc(
        "Expected pen/stroke rate (Hz) for diagnostics; 0 = no rate check.", 0.0, 10000.0)),
    "diagnostics.expected_hz.label": (0.0, _float_desc(
        "Expected label rate (Hz) for diagnostics; 0 = no rate check.", 0.0, 10000.0)),
}

_STALENESS = {m: f"staleness.{m}" for m in MODALITIES}
#: Outputs that exist only when the model decodes this modality.
_OUTPUT_NEEDS = {"image": IMAGE, "audio_mel": AUDIO, "audio": AUDIO, "trajectory": TRAJECTORY,
                 "label": LABEL, "label_probs": LABEL}
#: Parameters that take effect while the node runs; all others at the next configure.
_LIVE_PARAMETERS = frozenset({"max_rate_hz", "heartbeat_hz", "sample_latent", "clock_timeout_s",
                              "diagnostics.tolerance", *_STALENESS.values(),
                              *(f"diagnostics.expected_hz.{m}" for m in MODALITIES)})
#: Every publisher and subscription declares read-only ``qos_overrides.<topic>.<kind>.<policy>``
#: parameters (rclpy's QoSOverridingOptions), read at creation (first configure).
_QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()


class NexusNode(LifecycleNode):
    """Lifecycle node running the Nexus model on the live subset of four sensor inputs.

    Counters for in-process users (the demo, tests), all plain attributes:
    ``received[m]``, ``qos_incompatible[m]`` (publishers that can never deliver because of
    their QoS), ``dropped[m][reason]`` (Counter; reasons are
    :class:`~crossmodal_ros.ros.conversions.ConversionError` categories, ``codec``,
    ``range`` or ``inactive``), ``superseded[m]`` (replaced before being fused),
    ``fused_count``, ``published_count``, ``last_latency_s`` (inference time of the last
    fusion), ``latency`` (:class:`LatencyStats`), ``last_result`` (the engine's last
    FusionResult) and ``last_fused`` (tuple of modality names).
    """

    def __init__(self, node_name: str = "nexus", **kwargs):
        super().__init__(node_name, **kwargs)
        for name, (default, desc) in PARAMETERS.items():
            self.declare_parameter(name, default, desc)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        self.received: dict[str, int] = {m: 0 for m in MODALITIES}
        self.qos_incompatible: dict[str, int] = {m: 0 for m in MODALITIES}
        self.dropped: dict[str, Counter] = {m: Counter() for m in MODALITIES}
        self.fused_count = 0
        self.fused_inputs: dict[str, int] = {m: 0 for m in MODALITIES}
        self._fused_seq: dict[str, int] = {m: -1 for m in MODALITIES}
        self.published_count = 0
        self.last_latency_s: Optional[float] = None
        self.latency = LatencyStats()
        self.last_result = None
        self.last_fused: tuple[str, ...] = ()
        self.last_error = ""

        self._store = LatestSamples(MODALITIES)
        self._rates = {m: RateMeter() for m in MODALITIES}
        self._freq = {m: FrequencyWindow(5) for m in MODALITIES}
        self._last_arrival: dict[str, Optional[float]] = {m: None for m in MODALITIES}
        self._subscribed: set[str] = set()
        self._checkpoint_sha256 = ""
        self._fused_modalities: tuple[str, ...] = ()
        self._clock_ns = -1
        self._clock_change_mono = time.monotonic()
        self.clock_stalled = False
        self._engine = None
        self._checkpoint_path = ""
        self._checkpoint_kind = ""
        self._active = False
        self._cfg: dict[str, Any] = {}
        self._sched = FusionScheduler()
        self.fusions_by_kind: Counter = Counter()
        self.last_fusion_kind = ""
        self.decoded: dict[str, int] = {m: 0 for m in MODALITIES}
        self._always_decode: frozenset = frozenset()
        self._log_times: dict[tuple, float] = {}
        self._pubs: dict[str, Any] = {}
        self._subs: list = []
        self._diag_pub = None
        self._diag_timer = None
        self._fusion_timer = None
        self._wake = None
        self._gl_thread: Optional[threading.Thread] = None
        self._gl_queue: "queue.Queue" = queue.Queue(maxsize=1)
        self._gl_stop = threading.Event()
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._input_group = MutuallyExclusiveCallbackGroup()
        # Held while fusing/publishing and while lifecycle transitions tear things down, so a
        # transition served on another executor thread never pulls a publisher from under a
        # running fusion.
        self._fusion_lock = threading.RLock()
        self._fusion_group = MutuallyExclusiveCallbackGroup()

        if self.get_parameter("autostart").value:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ------------------------------------------------------------------ parameters
    @property
    def lifecycle_state(self) -> str:
        """Label of the current lifecycle state: unconfigured, inactive, active, finalized..."""
        return str(self._state_machine.current_state[1])

    @property
    def engine(self):
        """The loaded FusionEngine (None unless configured)."""
        return self._engine

    @property
    def superseded(self) -> dict[str, int]:
        """Messages per modality replaced by a newer one before they were fused."""
        return dict(self._store.superseded)

    @property
    def expired(self) -> dict[str, int]:
        """Messages per modality that went stale before any fusion took them."""
        return dict(self._store.expired)

    def accounting(self) -> dict[str, dict[str, int]]:
        """Where every received input message went, per modality.

        ``{m: {received, dropped, superseded, fused, expired, pending, unaccounted}}`` where
        ``unaccounted = received - dropped - superseded - fused - expired - pending`` is 0 for a
        running node (every message is dropped with a reason, replaced before fusion, fused at
        least once, expired unfused, or still waiting); ``dropped`` sums all reasons.
        """
        pending = set(self._store.pending_modalities())
        sup, exp = self._store.superseded, self._store.expired
        out = {}
        for m in MODALITIES:
            row = {"received": self.received[m], "dropped": sum(self.dropped[m].values()),
                   "superseded": sup[m], "fused": self.fused_inputs[m], "expired": exp[m],
                   "pending": int(m in pending)}
            row["unaccounted"] = row["received"] - sum(v for k, v in row.items() if k != "received")
            out[m] = row
        return out

    def _validate(self, values: dict[str, Any]) -> str:
        """Check choices and cross-parameter rules; return '' when valid, else the reason."""
        if values["device"] not in DEVICE_CHOICES:
            return f"device must be one of {DEVICE_CHOICES}, got {values['device']!r}"
        if values["qos_reliability"] not in RELIABILITY_CHOICES:
            return (f"qos_reliability must be one of {RELIABILITY_CHOICES}, "
                    f"got {values['qos_reliability']!r}")
        unknown = [o for o in values["outputs"] if o not in OUTPUT_NAMES]
        if unknown:
            return f"unknown outputs {unknown}; known: {list(OUTPUT_NAMES)}"
        unknown = [m for m in values["modalities"] if m and m not in MODALITIES]
        if unknown:
            return f"unknown modalities {unknown}; known: {list(MODALITIES)}"
        unknown = [m for m in values["always_decode"] if m and m != "all" and m not in MODALITIES]
        if unknown:
            return f"always_decode: unknown modalities {unknown}; known: {list(MODALITIES)} or all"
        if values["heartbeat_hz"] > values["max_rate_hz"]:
            return (f"heartbeat_hz ({values['heartbeat_hz']}) must not exceed max_rate_hz "
                    f"({values['max_rate_hz']})")
        for name in ("max_rate_hz", "heartbeat_hz", *(_STALENESS.values())):
            v = values[name]
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                return f"{name} must be a finite number, got {v!r}"
        return ""

    def _current_values(self) -> dict[str, Any]:
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        values = self._current_values()
        for p in params:
            if p.name in values:
                values[p.name] = p.value
        reason = self._validate(values)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, params: list[Parameter]) -> None:
        """Apply live-tunable values at once (rates, staleness, sample_latent); the others take
        effect at the next configure.
        """
        if not self._cfg:
            return
        changed = {p.name for p in params if p.name in _LIVE_PARAMETERS}
        for p in params:
            if p.name in changed:
                self._cfg[p.name] = p.value
        if "sample_latent" in changed and self._engine is not None:
            self._engine.sample = bool(self._cfg["sample_latent"])
        if {"max_rate_hz", "heartbeat_hz"} & changed:
            self._sched.configure(self._cfg["max_rate_hz"], self._cfg["heartbeat_hz"])
        if "max_rate_hz" in changed and self._fusion_timer is not None:
            self.destroy_timer(self._fusion_timer)
            self._start_fusion_timer()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load the checkpoint, create publishers and subscriptions.

        SUCCESS: the model is loaded and the node is inactive (inputs are received but not
        fused). FAILURE: invalid parameters or an unloadable checkpoint (the reason is logged);
        the node stays unconfigured and can be configured again.
        """
        values = self._current_values()
        reason = self._validate(values)
        if reason:
            return self._configure_failed(reason)
        from crossmodal_ros.checkpoint import CheckpointError
        from crossmodal_ros.engine import FusionEngine
        from crossmodal_ros.paths import default_checkpoint

        path = values["checkpoint"] or str(default_checkpoint())
        try:
            engine = FusionEngine.from_checkpoint(
                path, device=values["device"], sample=bool(values["sample_latent"]))
        except (CheckpointError, FileNotFoundError, RuntimeError, ValueError) as exc:
            return self._configure_failed(f"cannot load checkpoint {path!r}: {exc}")
        fused_by_model = tuple(getattr(engine, "modalities", MODALITIES))
        wanted = [m for m in MODALITIES if m in values["modalities"]]
        lacking = [m for m in wanted if m not in fused_by_model]
        if lacking:
            del engine
            return self._configure_failed(
                f"checkpoint {path!r} was trained for modalities {'+'.join(fused_by_model)}; "
                f"the node was configured for {'+'.join(wanted)} (parameter 'modalities'), and "
                f"the model cannot fuse {'+'.join(lacking)}. Use a checkpoint trained with "
                f"them or change 'modalities'.")
        self._warm_up(engine, int(values["sample_rate"]))
        self._engine = engine
        self._checkpoint_path = path
        self._checkpoint_kind = str(getattr(engine, "kind", "") or
                                    getattr(getattr(engine, "model", None), "kind", "unknown"))
        self._checkpoint_sha256 = _file_sha256(path)
        self._fused_modalities = fused_by_model
        window = int(values["diagnostics.window"])
        self._freq = {m: FrequencyWindow(window) for m in MODALITIES}
        self._cfg = values
        self._sched.configure(values["max_rate_hz"], values["heartbeat_hz"])
        forced = set(values["always_decode"]) - {""}
        self._always_decode = frozenset(MODALITIES if "all" in forced else forced)
        self.last_error = ""

        # one profile object per entity: a qos_overrides parameter edits the profile it is given
        outputs = set(values["outputs"])
        if not values["griffin_lim"]:
            outputs.discard("audio")
        cannot = sorted(o for o in outputs
                        if o in _OUTPUT_NEEDS and _OUTPUT_NEEDS[o] not in fused_by_model)
        if cannot:
            self.get_logger().warning(
                f"the {self._checkpoint_kind} model does not decode {cannot}; not publishing them")
            outputs -= set(cannot)
        types = {"image": Image, "audio_mel": Image, "audio": Float32MultiArray,
                 "trajectory": Path, "label": Int32, "label_probs": Float32MultiArray,
                 "latent": Float32MultiArray, "modalities": String, "latent_stamped": JointState}
        self._pubs = {name: self.create_lifecycle_publisher(
                          types[name], f"~/{name}", output_qos(), qos_overriding_options=_QOS_OVERRIDES)
                      for name in OUTPUT_NAMES if name in outputs}
        handlers = {IMAGE: (Image, self._on_image), AUDIO: (Float32MultiArray, self._on_audio),
                    TRAJECTORY: (Path, self._on_stroke), LABEL: (Int32, self._on_label)}
        skipped = [m for m in MODALITIES if m not in fused_by_model]
        if skipped:
            self.get_logger().info(f"the {self._checkpoint_kind} model has no {skipped} input; "
                                   f"not subscribing to {[INPUT_TOPICS[m] for m in skipped]}")
        self._subs = [
            self.create_subscription(
                msg_type, INPUT_TOPICS[m], cb, input_qos(values["qos_reliability"], values["qos_depth"]),
                callback_group=self._input_group,
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=self._make_qos_warning(m)),
                qos_overriding_options=_QOS_OVERRIDES)
            for m, (msg_type, cb) in handlers.items() if m in fused_by_model]
        self._subscribed = {m for m in handlers if m in fused_by_model}
        self._wake = self.create_guard_condition(self._on_wake, callback_group=self._fusion_group)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10,
                                               qos_overriding_options=_QOS_OVERRIDES)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics,
                                             callback_group=self._fusion_group, clock=self._steady)
        self.get_logger().info(
            f"configured: {self._checkpoint_kind} checkpoint {path} on {engine.device}; "
            f"outputs {sorted(self._pubs)}; inputs {values['qos_reliability']} depth "
            f"{values['qos_depth']}")
        return super().on_configure(state)

    def _configure_failed(self, reason: str) -> TransitionCallbackReturn:
        """Log ``reason``, keep it in ``last_error`` and fail the transition (node stays up,
        unconfigured, and can be configured again).
        """
        self.last_error = f"configure failed: {reason}"
        self.get_logger().error(self.last_error)
        return TransitionCallbackReturn.FAILURE

    def _warm_up(self, engine, sample_rate: int) -> None:
        """One inference per modality on synthetic input, so first-call costs (the audio
        feature code compiles on first use, seconds) are paid at configure, not by the first
        real message. A failure here is logged, not fatal.
        """
        t = np.arange(sample_rate // 4) / sample_rate
        synthetic = {
            IMAGE: np.eye(28, dtype=np.float32),
            AUDIO: (0.3 * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32),
            TRAJECTORY: np.stack([np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2], axis=1),
            LABEL: 0,
        }
        t0 = time.perf_counter()
        for m in getattr(engine, "modalities", MODALITIES):
            try:
                engine.infer({m: synthetic[m]}, sample_rate=sample_rate)
            except Exception as exc:  # noqa: BLE001 - warm-up is best effort
                self.get_logger().warning(f"warm-up inference on {m} failed: {exc}")
        self.get_logger().debug(f"warm-up took {time.perf_counter() - t0:.2f} s")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start fusing and publishing. SUCCESS: the fusion timer runs."""
        self._start_fusion_timer()
        if "audio" in self._pubs:
            self._gl_stop.clear()
            self._gl_thread = threading.Thread(target=self._griffin_lim_worker,
                                               name="nexus-griffin-lim", daemon=True)
            self._gl_thread.start()
        self._active = True
        self._sched.reset()
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop fusing (the model stays loaded). SUCCESS: nothing is published any more."""
        with self._fusion_lock:
            self._active = False
            self._stop_fusion()
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy publishers/subscriptions and release the model. SUCCESS: unconfigured."""
        with self._fusion_lock:
            self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and release everything from any state. SUCCESS: finalized."""
        with self._fusion_lock:
            self._active = False
            self._stop_fusion()
            self._release()
        return super().on_shutdown(state)

    def _start_fusion_timer(self) -> None:
        period = self._sched.tick_period
        self._fusion_timer = self.create_timer(period, self._on_fusion_timer,
                                               callback_group=self._fusion_group,
                                               clock=self._steady)

    def _stop_fusion(self) -> None:
        if self._fusion_timer is not None:
            self.destroy_timer(self._fusion_timer)
            self._fusion_timer = None
        if self._gl_thread is not None:
            self._gl_stop.set()
            try:
                self._gl_queue.put_nowait(None)
            except queue.Full:
                pass
            self._gl_thread.join(timeout=5.0)
            self._gl_thread = None
            self._drain_gl_queue()

    def _drain_gl_queue(self) -> None:
        while True:
            try:
                self._gl_queue.get_nowait()
            except queue.Empty:
                return

    def _release(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
            self._diag_pub = None
        if self._wake is not None:
            self.destroy_guard_condition(self._wake)
            self._wake = None
        self._store.clear()
        engine, self._engine = self._engine, None
        if engine is not None and str(getattr(engine, "device", "cpu")).startswith("cuda"):
            del engine
            import torch

            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ inputs
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _drop(self, modality: str, reason: str, message: str) -> None:
        self.dropped[modality][reason] += 1
        key = (modality, reason)
        now = time.monotonic()
        if now - self._log_times.get(key, -math.inf) >= 5.0:
            self._log_times[key] = now
            self.get_logger().warning(
                f"dropped {modality} input ({reason}, {self.dropped[modality][reason]} so far): "
                f"{message}")

    def _store_sample(self, modality: str, value: Any, header=None) -> None:
        now = self.get_clock().now()
        if header is not None and (header.stamp.sec or header.stamp.nanosec):
            stamp, frame = header.stamp, header.frame_id
        else:  # header-less input (audio, label) or an unset stamp: arrival time
            stamp, frame = now.to_msg(), (header.frame_id if header is not None else "")
        self._store.put(modality, Sample(value=value, stamp=stamp,
                                         stamp_s=conv.stamp_to_seconds(stamp),
                                         arrival_s=now.nanoseconds * 1e-9, frame_id=frame,
                                         seq=self.received[modality]))
        self._sched.note_input(self._mono())
        wake = self._wake
        if wake is not None and self._active:
            wake.trigger()

    def _make_qos_warning(self, modality: str):
        def on_incompatible(info) -> None:
            self.qos_incompatible[modality] += 1
            self.get_logger().warning(
                f"a publisher on {INPUT_TOPICS[modality]!r} has QoS incompatible with this "
                f"node's {self._cfg.get('qos_reliability')} subscription (policy id "
                f"{info.last_policy_kind}); it delivers nothing. A best-effort publisher needs "
                f"qos_reliability:=best_effort here.")

        return on_incompatible

    def _accept(self, modality: str) -> bool:
        self.received[modality] += 1
        self._rates[modality].tick()
        self._last_arrival[modality] = self._now_s()
        if not self._active:
            self.dropped[modality]["inactive"] += 1
            return False
        return True

    def _on_image(self, msg: Image) -> None:
        if not self._accept(IMAGE):
            return
        try:
            arr = conv.image_to_numpy(msg, max_pixels=int(self._cfg["max_image_pixels"]))
            if msg.encoding == "32FC1" and arr.size and not (
                    np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
                raise conv.ConversionError("32FC1 camera frames must hold finite values in "
                                           "[0, 1]", reason="range")
            value = conv.image_to_canonical(arr, msg.encoding)
        except conv.ConversionError as exc:
            self._drop(IMAGE, exc.reason, str(exc))
            return
        self._store_sample(IMAGE, value, msg.header)

    def _on_audio(self, msg: Float32MultiArray) -> None:
        if not self._accept(AUDIO):
            return
        try:
            pcm = conv.audio_to_numpy(msg)
        except conv.ConversionError as exc:
            self._drop(AUDIO, exc.reason, str(exc))
            return
        self._store_sample(AUDIO, pcm.copy())

    def _on_stroke(self, msg: Path) -> None:
        if not self._accept(TRAJECTORY):
            return
        try:
            pts = conv.path_to_numpy(msg)
            if pts.shape[0] < 2:
                raise conv.ConversionError("a stroke needs at least 2 poses", reason="empty")
        except conv.ConversionError as exc:
            self._drop(TRAJECTORY, exc.reason, str(exc))
            return
        self._store_sample(TRAJECTORY, pts, msg.header)

    def _on_label(self, msg: Int32) -> None:
        if not self._accept(LABEL):
            return
        if not 0 <= msg.data < NUM_CLASSES:
            self._drop(LABEL, "range", f"label {msg.data} outside 0..{NUM_CLASSES - 1}")
            return
        self._store_sample(LABEL, int(msg.data))

    # ------------------------------------------------------------------ fusion
    def _mono(self) -> float:
        """The scheduler's clock (steady; tests replace it with a fake clock)."""
        return time.monotonic()

    def _on_wake(self) -> None:
        """New input arrived: fuse it now unless a fusion runs or max_rate_hz defers it (the
        fusion timer then picks it up).
        """
        if self._active and self._store.pending:
            if self._sched.decide(self._mono(), True, False) == FRESH:
                self._fuse(FRESH)

    def _on_fusion_timer(self) -> None:
        """Timer tick (period 1/max_rate_hz): deferred fresh input, or a heartbeat in silence."""
        if not self._active:
            return
        pending = self._store.pending
        kind = self._sched.decide(self._mono(), pending,
                                  (not pending) and bool(self.live_inputs()))
        if kind is not None:
            self._fuse(kind)

    def live_inputs(self) -> tuple[str, ...]:
        """The modalities live right now (node clock, staleness windows; none while the sim
        clock is stalled, see ``clock_timeout_s``).
        """
        if self._clock_is_stalled():
            return ()
        return tuple(self._store.live(self._now_s(), self._staleness()))

    def _clock_is_stalled(self) -> bool:
        """True under ``use_sim_time`` when the node clock has not moved for ``clock_timeout_s``
        wall-clock seconds (the bag ended or is paused): liveness is frozen with the clock, so
        without this the last inputs would stay live, and fused, for ever.
        """
        timeout = float(self._cfg.get("clock_timeout_s", 0.0) or 0.0)
        if timeout <= 0.0 or not self.get_parameter("use_sim_time").value:
            self.clock_stalled = False
            return False
        ns = self.get_clock().now().nanoseconds
        mono = time.monotonic()
        if ns != self._clock_ns:
            self._clock_ns, self._clock_change_mono = ns, mono
        stalled = mono - self._clock_change_mono > timeout
        if stalled and not self.clock_stalled:
            self.get_logger().info(
                f"/clock has not advanced for {timeout:g} s (bag ended or paused): outputs stop "
                "until it moves again")
        self.clock_stalled = stalled
        return stalled

    def _staleness(self) -> dict[str, float]:
        return {m: float(self._cfg.get(p, 0.0)) for m, p in _STALENESS.items()}

    def _fuse(self, kind: str = FRESH) -> bool:
        with self._fusion_lock:
            if self._engine is None or not self._active:
                return False
            self._sched.started(self._mono(), kind)
            try:
                done = self._fuse_locked()
            finally:
                self._sched.finished(self._mono())
            if done:
                self.fusions_by_kind[kind] += 1
                self.last_fusion_kind = kind
            return done

    def _wanted_decodes(self) -> set:
        """Modalities to decode now: those with a subscribed output, plus ``always_decode``."""
        wanted = set(self._always_decode) & set(self._fused_modalities)
        for name, pub in self._pubs.items():
            m = _OUTPUT_NEEDS.get(name)
            if m is not None and m not in wanted and pub.get_subscription_count() > 0:
                wanted.add(m)
        return wanted

    def _fuse_locked(self) -> bool:
        engine = self._engine
        if engine is None or not self._active:
            return False
        if self._clock_is_stalled():
            return False
        live = self._store.live(self._now_s(), self._staleness(), take=True)
        if not live:
            return False
        while live:
            raw = {m: s.value for m, s in live.items()}
            decode = self._wanted_decodes()
            t0 = time.perf_counter()
            try:
                result = engine.infer(raw, sample_rate=int(self._cfg["sample_rate"]),
                                      decode=decode)
            except Exception as exc:  # noqa: BLE001 - never let one bad input kill the node
                bad = self._handle_infer_error(engine, live, exc)
                live = {m: s for m, s in live.items() if m not in bad}
                continue  # fuse what is left
            dt = time.perf_counter() - t0
            self.last_latency_s = dt
            self.latency.add(dt)
            self.fused_count += 1
            for m in decode:
                self.decoded[m] += 1
            for m, s in live.items():  # count each input message once, at its first fusion
                if s.seq != self._fused_seq[m]:
                    self._fused_seq[m] = s.seq
                    self.fused_inputs[m] += 1
            self.last_result = result
            self.last_fused = tuple(result.fused)
            self.last_error = ""
            try:
                self._publish(result, newest(live).stamp)
            except Exception as exc:  # noqa: BLE001 - a bad result must not stop the executor
                self.last_error = f"publishing failed: {type(exc).__name__}: {exc}"
                self.get_logger().error(self.last_error, throttle_duration_sec=5.0)
            return True
        return False

    def _handle_infer_error(self, engine, live: dict, exc: Exception) -> list[str]:
        """Log/count a failed inference; return the modalities to leave out of a retry."""
        if not isinstance(exc, _input_errors()):
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"inference failed: {self.last_error}",
                                    throttle_duration_sec=5.0)
            return list(live)
        # A codec rejected an input: find which one(s), drop them, keep the rest.
        bad = []
        if len(live) > 1:
            for m, s in live.items():
                try:
                    engine.infer({m: s.value}, sample_rate=int(self._cfg["sample_rate"]))
                except _input_errors() as one:
                    bad.append(m)
                    self._drop(m, "codec", str(one))
        if not bad:  # a single input, or only the combination failed: blame all of them
            for m in live:
                self._drop(m, "codec", str(exc))
            bad = list(live)
        self._store.discard(bad)
        return bad

    def _publish(self, result, stamp) -> None:
        frame = str(self._cfg["frame_id"])
        header = conv.make_header(stamp, frame)
        # lazy outputs: a modality's outputs exist only when it was decoded (it had a subscriber
        # or always_decode names it); the latent, modalities and latent_stamped always do
        decoded = {IMAGE: result.image.size > 0, AUDIO: result.audio_mel.size > 0,
                   TRAJECTORY: result.trajectory.size > 0, LABEL: result.label_probs.size > 0}
        pubs = {name: pub for name, pub in self._pubs.items()
                if decoded.get(_OUTPUT_NEEDS.get(name), True)}
        sent = 0
        if "image" in pubs:
            img = np.clip(np.rint(np.asarray(result.image) * 255.0), 0, 255).astype(np.uint8)
            pubs["image"].publish(conv.numpy_to_image(img, "mono8", header))
            sent += 1
        if "audio_mel" in pubs:
            mel = np.asarray(result.audio_mel, dtype=np.float32)
            pubs["audio_mel"].publish(conv.numpy_to_image(mel, "32FC1", header))
            sent += 1
        if "trajectory" in pubs:
            pubs["trajectory"].publish(conv.numpy_to_path(np.asarray(result.trajectory), header))
            sent += 1
        if "label" in pubs:
            pubs["label"].publish(Int32(data=int(result.label)))
            sent += 1
        if "label_probs" in pubs:
            pubs["label_probs"].publish(conv.probs_to_msg(result.label_probs))
            sent += 1
        if "latent" in pubs:
            pubs["latent"].publish(conv.latent_to_msg(result.latent_mu, result.latent_logvar))
            sent += 1
        if "modalities" in pubs:
            pubs["modalities"].publish(String(data="+".join(result.fused)))
            sent += 1
        if "latent_stamped" in pubs:
            pubs["latent_stamped"].publish(conv.latent_to_stamped(
                result.latent_mu, result.latent_logvar, result.fused, self._checkpoint_kind,
                self._checkpoint_sha256, header, modalities=self._fused_modalities))
            sent += 1
        if "audio" in pubs:
            try:  # newest mel only: replace a mel the worker has not taken yet
                self._gl_queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._gl_queue.put_nowait(np.array(result.audio_mel, dtype=np.float32))
            except queue.Full:
                pass
        self.published_count += sent

    def _griffin_lim_worker(self) -> None:
        while not self._gl_stop.is_set():
            mel = self._gl_queue.get()
            if mel is None or self._gl_stop.is_set():
                return
            engine, pub = self._engine, self._pubs.get("audio")
            if engine is None or pub is None:
                continue
            try:
                wave = np.clip(np.asarray(engine.mel_to_waveform(mel), np.float32), -1.0, 1.0)
                pub.publish(conv.numpy_to_audio(wave))
                self.published_count += 1
            except Exception as exc:  # noqa: BLE001 - a worker must not die silently
                self.get_logger().error(f"Griffin-Lim failed: {exc}", throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        if self._diag_pub is None:
            return
        engine = self._engine
        status = fusion_status(
            name=f"{self.get_fully_qualified_name()}: fusion",
            hardware_id=str(getattr(engine, "device", "none")),
            state="active" if self._active else "inactive",
            live=self.live_inputs(),
            rates={m: r.rate() for m, r in self._rates.items()},
            latency=self.latency,
            fused=self.fused_count,
            published=self.published_count,
            received=self.received,
            dropped=self.dropped,
            superseded=self.superseded,
            fused_inputs=self.fused_inputs,
            expired=self.expired,
            device=str(getattr(engine, "device", "none")),
            checkpoint=self._checkpoint_path,
            checkpoint_kind=self._checkpoint_kind,
            last_error=self.last_error,
            qos_incompatible=self.qos_incompatible,
        )
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status] + self._input_statuses()
        self._diag_pub.publish(msg)

    def _input_statuses(self) -> list:
        """One diagnostic_updater-style status per input: ``<node>: input <modality>``."""
        now = self._now_s()
        staleness = self._staleness()
        tol = float(self._cfg.get("diagnostics.tolerance", 0.1))
        out = []
        for m in MODALITIES:
            events, span, freq = self._freq[m].snapshot(self.received[m])
            last = self._last_arrival[m]
            out.append(input_status(
                name=f"{self.get_fully_qualified_name()}: input {m}",
                hardware_id=self.resolve_topic_name(INPUT_TOPICS[m]),
                topic=self.resolve_topic_name(INPUT_TOPICS[m]),
                events_in_window=events, window_s=span, frequency=freq,
                received=self.received[m],
                expected_hz=float(self._cfg.get(f"diagnostics.expected_hz.{m}", 0.0)),
                tolerance=tol,
                since_last_s=None if last is None else max(0.0, now - last),
                staleness_s=staleness[m], subscribed=m in self._subscribed))
        return out


def _file_sha256(path: str) -> str:
    """Hex SHA-256 of a file ('' when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def print_help(file=None) -> None:
    """``nexus_node --help``: every parameter with its default and description."""
    from crossmodal_ros.ros.sensor_base import print_parameter_help

    rows = [(name, repr(default), " ".join(desc.description.split()))
            for name, (default, desc) in PARAMETERS.items()]
    rows.append(("use_sim_time", "False", "Follow /clock (bag replay); see clock_timeout_s."))
    rows.append(("qos_overrides.<topic>.<publisher|subscription>.<policy>", "(from qos_*)",
                 "Per-topic QoS override (reliability, durability, history, depth, ...), read "
                 "when the topic is created at the first configure; e.g. "
                 "qos_overrides./camera/image_raw.subscription.reliability: reliable."))
    print_parameter_help("nexus_node", __doc__.split("\n\n")[0], rows, file=file)


def _input_errors() -> tuple[type, ...]:
    """Exceptions meaning 'the engine rejected this input' (not a bug): the codecs'
    CodecError and the engine's EngineInputError, which wraps it.
    """
    from crossmodal_ros.codecs import CodecError
    from crossmodal_ros import engine

    return (CodecError, getattr(engine, "EngineInputError", CodecError))


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def make_node(name: str = "nexus", namespace: Optional[str] = None, context=None,
              **params) -> NexusNode:
    """Build a :class:`NexusNode` in-process with parameter overrides.

    ``params`` are parameter values; nested dicts flatten to dotted names, e.g.
    ``make_node(staleness={"image": 0.5}, autostart=False)``. Ints given for float
    parameters are converted.
    """
    overrides = []
    for key, value in _flatten(params).items():
        if key not in PARAMETERS and key != "use_sim_time":
            raise ValueError(f"unknown NexusNode parameter {key!r}; known: {sorted(PARAMETERS)}")
        if key in PARAMETERS:
            default = PARAMETERS[key][0]
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if isinstance(value, tuple):
                value = list(value)
        overrides.append(Parameter(key, value=value))
    kwargs: dict[str, Any] = {"parameter_overrides": overrides}
    if namespace is not None:
        kwargs["namespace"] = namespace
    if context is not None:
        kwargs["context"] = context
    return NexusNode(name, **kwargs)


def main(args=None) -> None:
    """Console entry ``nexus_node``: spin one NexusNode until Ctrl-C or shutdown."""
    from crossmodal_ros.ros.sensor_base import wants_help

    if wants_help(args):
        print_help()
        return 0
    try:
        with rclpy.init(args=args):
            # The executor first: a Ctrl-C during the node's (autostart) configure must not
            # interrupt the executor's constructor.
            executor = SingleThreadedExecutor()
            node = NexusNode()
            executor.add_node(node)
            try:
                executor.spin()
            except RCLError:
                # SIGINT shuts the context down; a wait set created in that instant fails with
                # "context is not valid". Only then is it the normal way out.
                if rclpy.ok():
                    raise
            finally:
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
