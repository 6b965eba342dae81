"""The inference node: a lifecycle node fusing whatever sensors are live, for any model kind.

Executable ``crossmodal_inference`` (``nexus_node`` is an alias for one release). Topics
(relative names, remappable; :mod:`crossmodal_ros.ros.node_io`): inputs ``camera/image_raw``,
``audio/chunk`` (mono PCM at ``sample_rate``), ``pen/stroke``, ``label`` (optional teacher);
outputs in the node's private namespace (``~/image`` ...: ``image``, ``audio_mel``, ``audio``
(Griffin-Lim, only with ``griffin_lim``), ``trajectory``, ``label``, ``label_probs``,
``latent``, ``modalities``, ``latent_stamped``) and ``/diagnostics`` at about 1 Hz. Parameters:
:mod:`crossmodal_ros.ros.inference_params`.

Inputs are converted and validated by :func:`conversions.msg_to_input` (the offline bag
evaluator uses the same checks); an invalid message is dropped, counted per modality and reason
and logged throttled. The newest sample per modality is stored; the fusion follows
:class:`crossmodal_ros.fusion_policy.FusionScheduler` (fresh input at once unless a fusion runs
or ``max_rate_hz`` defers it, a ``heartbeat_hz`` heartbeat only in silence). A modality is live
while the arrival time of its newest message on the node clock is younger than its
``staleness.<modality>`` window. Outputs are lazy: a modality is decoded only while one of its
outputs has subscribers (or ``always_decode`` names it); publishing walks the output table.

Threads: two mutually exclusive callback groups, one for the input subscriptions and one for
the fusion (wake-up guard condition, fusion timer, diagnostics), served by a
``MultiThreadedExecutor`` in :func:`main`, so a message arriving during an inference is stored
at once instead of waiting behind it. The lifecycle and parameter services run on the node's
default group; ``_fusion_lock`` keeps them from tearing down publishers, or changing the
scheduler, under a running fusion. The store is thread-safe; the input thread touches the
scheduler only through ``note_input`` (one assignment).
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import Counter
from typing import Any, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy._rclpy_pybind11 import RCLError
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos_overriding_options import QoSOverridingOptions
from rcl_interfaces.msg import SetParametersResult

from crossmodal_ros.fusion_policy import FRESH, ClockWatch, FusionScheduler, fuse_rejecting_bad
from crossmodal_ros.modalities import MODALITIES
from crossmodal_ros.ros import conversions as conv
from crossmodal_ros.ros.diagnostics import FrequencyWindow, LatencyStats, RateMeter, fusion_status, input_status
from crossmodal_ros.ros.fusion import LatestSamples, Sample, newest
from crossmodal_ros.ros.griffin_lim import GriffinLimWorker
from crossmodal_ros.ros.inference_params import (DEVICE_CHOICES, LIVE_PARAMETERS, PARAMETERS,  # noqa: F401
                                                 STALENESS, flatten, parameter_overrides, print_help,
                                                 validate_parameters)
from crossmodal_ros.ros.node_io import (INPUT_TOPICS, INPUT_TYPES, OUTPUT_NAMES, OUTPUT_NEEDS, OUTPUTS,  # noqa: F401
                                        PublishContext, decoded)
from crossmodal_ros.ros.qos import input_qos, output_qos

#: Every publisher and subscription declares read-only ``qos_overrides.<topic>.<kind>.<policy>``
#: parameters (rclpy's QoSOverridingOptions), read at creation (first configure).
_QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()


class InferenceNode(LifecycleNode):
    """Lifecycle node running any checkpoint's model on the live subset of its sensor inputs.

    Counters (plain attributes, for the demo and tests): ``received[m]``,
    ``qos_incompatible[m]``, ``dropped[m][reason]`` (reasons: :class:`conversions.ConversionError`
    categories, ``codec``, ``range``, ``inactive``), ``superseded``/``expired`` (see
    :meth:`accounting`), ``fused_count``, ``fused_inputs[m]``, ``published_count``,
    ``decoded[m]``, ``fusions_by_kind``, ``last_latency_s``, ``latency``, ``last_result``,
    ``last_fused``, ``last_error``.
    """

    def __init__(self, node_name: str = "nexus", **kwargs):
        super().__init__(node_name, **kwargs)
        for name, (default, desc) in PARAMETERS.items():
            self.declare_parameter(name, default, desc)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        per = lambda v: {m: v() for m in MODALITIES}  # noqa: E731
        self.received, self.qos_incompatible, self.dropped = per(int), per(int), per(Counter)
        self.fused_inputs, self.decoded, self._fused_seq = per(int), per(int), {m: -1 for m in MODALITIES}
        self.fused_count = self.published_count = 0
        self.last_latency_s: Optional[float] = None
        self.latency = LatencyStats()
        self.last_result, self.last_fused, self.last_error = None, (), ""
        self.fusions_by_kind: Counter = Counter()
        self.last_fusion_kind = ""
        self.clock_stalled = False
        self._store = LatestSamples(MODALITIES)
        self._rates, self._freq = {m: RateMeter() for m in MODALITIES}, {m: FrequencyWindow(5) for m in MODALITIES}
        self._last_arrival: dict[str, Optional[float]] = {m: None for m in MODALITIES}
        self._subscribed: set[str] = set()
        self._engine, self._checkpoint_path, self._checkpoint_kind, self._checkpoint_sha256 = None, "", "", ""
        self._fused_modalities: tuple[str, ...] = ()
        self._always_decode: frozenset = frozenset()
        self._active = False
        self._cfg: dict[str, Any] = {}
        self._sched, self._clock_watch = FusionScheduler(), ClockWatch()
        self._log_times: dict[tuple, float] = {}
        self._pubs: dict[str, Any] = {}
        self._subs: list = []
        self._diag_pub = self._diag_timer = self._fusion_timer = self._wake = None
        self._gl = GriffinLimWorker(self._publish_waveform,
                                    lambda s: self.get_logger().error(s, throttle_duration_sec=5.0))
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._fusion_group = MutuallyExclusiveCallbackGroup()
        self._fusion_lock = threading.RLock()  # see the module docstring
        if self.get_parameter("autostart").value:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ------------------------------------------------------------------ state
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
        """Where every received input message went, per modality: ``{m: {received, dropped,
        superseded, fused, expired, pending, unaccounted}}``; ``unaccounted`` (received minus
        the others) is 0 for a running node."""
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

    # ------------------------------------------------------------------ parameters
    def _current_values(self) -> dict[str, Any]:
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        values = self._current_values()
        values.update({p.name: p.value for p in params if p.name in values})
        reason = validate_parameters(values)
        return SetParametersResult(successful=not reason, reason=reason)

    def _after_set_parameters(self, params: list[Parameter]) -> None:
        """Apply live-tunable values at once; the others take effect at the next configure."""
        if not self._cfg:
            return
        changed = {p.name for p in params if p.name in LIVE_PARAMETERS}
        with self._fusion_lock:
            self._cfg.update({p.name: p.value for p in params if p.name in changed})
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
        FAILURE (logged, node stays unconfigured): invalid parameters or an unusable checkpoint."""
        from crossmodal_ros.checkpoint import CheckpointError
        from crossmodal_ros.engine import FusionEngine
        from crossmodal_ros.paths import default_checkpoint

        values = self._current_values()
        reason = validate_parameters(values)
        if reason:
            return self._configure_failed(reason)
        path = values["checkpoint"] or str(default_checkpoint())
        try:
            engine = FusionEngine.from_checkpoint(path, device=values["device"], sample=bool(values["sample_latent"]))
        except (CheckpointError, FileNotFoundError, RuntimeError, ValueError) as exc:
            return self._configure_failed(f"cannot load checkpoint {path!r}: {exc}")
        has = tuple(getattr(engine, "modalities", MODALITIES))
        wanted = [m for m in MODALITIES if m in values["modalities"]]
        lacking = [m for m in wanted if m not in has]
        if lacking:
            return self._configure_failed(
                f"checkpoint {path!r} was trained for modalities {'+'.join(has)}; the node was configured for "
                f"{'+'.join(wanted)} (parameter 'modalities'), and the model cannot fuse {'+'.join(lacking)}. "
                "Use a checkpoint trained with them or change 'modalities'.")
        self._warm_up(engine, int(values["sample_rate"]))
        self._engine, self._checkpoint_path, self._fused_modalities = engine, path, has
        self._checkpoint_kind = str(getattr(engine, "kind", "") or getattr(getattr(engine, "model", None), "kind", "unknown"))
        self._checkpoint_sha256 = _file_sha256(path)
        self._freq = {m: FrequencyWindow(int(values["diagnostics.window"])) for m in MODALITIES}
        self._cfg = values
        self._sched.configure(values["max_rate_hz"], values["heartbeat_hz"])
        forced = set(values["always_decode"]) - {""}
        self._always_decode = frozenset(MODALITIES if "all" in forced else forced)
        self.last_error = ""
        outputs = set(values["outputs"]) - (set() if values["griffin_lim"] else {"audio"})
        cannot = sorted(o for o in outputs if o in OUTPUT_NEEDS and OUTPUT_NEEDS[o] not in has)
        if cannot:
            self.get_logger().warning(f"the {self._checkpoint_kind} model does not decode {cannot}; not publishing them")
        # one profile object per entity: a qos_overrides parameter edits the profile it is given
        self._pubs = {name: self.create_lifecycle_publisher(OUTPUTS[name].msg_type, f"~/{name}", output_qos(),
                                                            qos_overriding_options=_QOS_OVERRIDES)
                      for name in OUTPUT_NAMES if name in outputs and name not in cannot}
        skipped = [m for m in MODALITIES if m not in has]
        if skipped:
            self.get_logger().info(f"the {self._checkpoint_kind} model has no {skipped} input; "
                                   f"not subscribing to {[INPUT_TOPICS[m] for m in skipped]}")
        qos = lambda: input_qos(values["qos_reliability"], values["qos_depth"])  # noqa: E731
        self._subs = [self.create_subscription(
            INPUT_TYPES[m], INPUT_TOPICS[m], lambda msg, m=m: self._on_input(m, msg), qos(),
            callback_group=self._input_group, qos_overriding_options=_QOS_OVERRIDES,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._make_qos_warning(m)))
            for m in MODALITIES if m in has]
        self._subscribed = set(has) & set(MODALITIES)
        self._wake = self.create_guard_condition(self._on_wake, callback_group=self._fusion_group)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10, qos_overriding_options=_QOS_OVERRIDES)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics, callback_group=self._fusion_group,
                                             clock=self._steady)
        self.get_logger().info(
            f"configured: {self._checkpoint_kind} checkpoint {path} on {engine.device}; outputs {sorted(self._pubs)}; "
            f"inputs {values['qos_reliability']} depth {values['qos_depth']}")
        return super().on_configure(state)

    def _configure_failed(self, reason: str) -> TransitionCallbackReturn:
        self.last_error = f"configure failed: {reason}"
        self.get_logger().error(self.last_error)
        return TransitionCallbackReturn.FAILURE

    def _warm_up(self, engine, sample_rate: int) -> None:
        """One inference per modality on its warm-up sample, so first-call costs (the audio
        features compile on first use) are paid at configure. Failures are logged, not fatal."""
        from crossmodal_ros.modalities import warm_up_sample

        for m in getattr(engine, "modalities", MODALITIES):
            try:
                engine.infer({m: warm_up_sample(m, sample_rate)}, sample_rate=sample_rate)
            except Exception as exc:  # noqa: BLE001 - warm-up is best effort
                self.get_logger().warning(f"warm-up inference on {m} failed: {exc}")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start fusing and publishing (and the Griffin-Lim worker when ``audio`` is published)."""
        self._start_fusion_timer()
        if "audio" in self._pubs:
            self._gl.start()
        self._active = True
        self._sched.reset()
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop fusing (the model stays loaded)."""
        with self._fusion_lock:
            self._active = False
            self._stop_fusion()
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy publishers/subscriptions and release the model."""
        with self._fusion_lock:
            self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and release everything from any state."""
        with self._fusion_lock:
            self._active = False
            self._stop_fusion()
            self._release()
        return super().on_shutdown(state)

    def _start_fusion_timer(self) -> None:
        self._fusion_timer = self.create_timer(self._sched.tick_period, self._on_fusion_timer,
                                               callback_group=self._fusion_group, clock=self._steady)

    def _stop_fusion(self) -> None:
        if self._fusion_timer is not None:
            self.destroy_timer(self._fusion_timer)
            self._fusion_timer = None
        self._gl.stop()

    def _release(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._subs, self._pubs = [], {}
        for entity, destroy in ((self._diag_timer, self.destroy_timer), (self._diag_pub, self.destroy_publisher),
                                (self._wake, self.destroy_guard_condition)):
            if entity is not None:
                destroy(entity)
        self._diag_timer = self._diag_pub = self._wake = None
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
        now = time.monotonic()
        if now - self._log_times.get((modality, reason), -math.inf) >= 5.0:
            self._log_times[(modality, reason)] = now
            self.get_logger().warning(f"dropped {modality} input ({reason}, {self.dropped[modality][reason]} so far): "
                                      f"{message}")

    def _accept(self, modality: str) -> bool:
        self.received[modality] += 1
        self._rates[modality].tick()
        self._last_arrival[modality] = self._now_s()
        if not self._active:
            self.dropped[modality]["inactive"] += 1
            return False
        return True

    def _on_input(self, modality: str, msg) -> None:
        """Subscription callback: count, convert and validate, store the newest sample."""
        if not self._accept(modality):
            return
        try:
            value = conv.msg_to_input(modality, msg, max_pixels=int(self._cfg["max_image_pixels"]))
        except conv.ConversionError as exc:
            self._drop(modality, exc.reason, str(exc))
            return
        self._store_sample(modality, value, getattr(msg, "header", None))

    def _store_sample(self, modality: str, value: Any, header=None) -> None:
        now = self.get_clock().now()
        if header is not None and (header.stamp.sec or header.stamp.nanosec):
            stamp, frame = header.stamp, header.frame_id
        else:  # header-less input (audio, label) or an unset stamp: arrival time
            stamp, frame = now.to_msg(), (header.frame_id if header is not None else "")
        self._store.put(modality, Sample(value=value, stamp=stamp, stamp_s=conv.stamp_to_seconds(stamp),
                                         arrival_s=now.nanoseconds * 1e-9, frame_id=frame, seq=self.received[modality]))
        self._sched.note_input(self._mono())
        wake = self._wake
        if wake is not None and self._active:
            wake.trigger()

    def _make_qos_warning(self, modality: str):
        def on_incompatible(info) -> None:
            self.qos_incompatible[modality] += 1
            self.get_logger().warning(
                f"a publisher on {INPUT_TOPICS[modality]!r} has QoS incompatible with this node's "
                f"{self._cfg.get('qos_reliability')} subscription (policy id {info.last_policy_kind}); it delivers "
                "nothing. A best-effort publisher needs qos_reliability:=best_effort here.")

        return on_incompatible

    # ------------------------------------------------------------------ fusion
    def _mono(self) -> float:
        """The scheduler's clock (steady; tests replace it with a fake clock)."""
        return time.monotonic()

    def _on_wake(self) -> None:
        """New input arrived: fuse it now unless a fusion runs or max_rate_hz defers it."""
        if self._active and self._store.pending and self._sched.decide(self._mono(), True, False) == FRESH:
            self._fuse(FRESH)

    def _on_fusion_timer(self) -> None:
        """Timer tick (period 1/max_rate_hz): deferred fresh input, or a heartbeat in silence."""
        if not self._active:
            return
        pending = self._store.pending
        kind = self._sched.decide(self._mono(), pending, (not pending) and bool(self.live_inputs()))
        if kind is not None:
            self._fuse(kind)

    def live_inputs(self) -> tuple[str, ...]:
        """The modalities live right now (none while the sim clock is stalled)."""
        if self._clock_is_stalled():
            return ()
        return tuple(self._store.live(self._now_s(), self._staleness()))

    def _clock_is_stalled(self) -> bool:
        """Under ``use_sim_time``: /clock has not moved for ``clock_timeout_s`` wall seconds (the
        bag ended or is paused), so no input is live and nothing is published."""
        timeout = float(self._cfg.get("clock_timeout_s", 0.0) or 0.0)
        if timeout <= 0.0 or not self.get_parameter("use_sim_time").value:
            self.clock_stalled = False
            return False
        stalled = self._clock_watch.stalled(self.get_clock().now().nanoseconds, time.monotonic(), timeout)
        if stalled and not self.clock_stalled:
            self.get_logger().info(f"/clock has not advanced for {timeout:g} s (bag ended or paused): outputs stop "
                                   "until it moves again")
        self.clock_stalled = stalled
        return stalled

    def _staleness(self) -> dict[str, float]:
        return {m: float(self._cfg.get(p, 0.0)) for m, p in STALENESS.items()}

    def fuse_once(self) -> bool:
        """Fuse the live inputs now and publish; False when nothing is live."""
        return self._fuse("manual")

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
        wanted |= {OUTPUT_NEEDS[n] for n, pub in self._pubs.items()
                   if n in OUTPUT_NEEDS and OUTPUT_NEEDS[n] not in wanted and pub.get_subscription_count() > 0}
        return wanted

    def _reject(self, modality: str, message: str) -> None:
        self._drop(modality, "codec", message)
        self._store.discard([modality])

    def _fuse_locked(self) -> bool:
        engine = self._engine
        if engine is None or not self._active or self._clock_is_stalled():
            return False
        live = self._store.live(self._now_s(), self._staleness(), take=True)
        if not live:
            return False
        decode, rate = self._wanted_decodes(), int(self._cfg["sample_rate"])
        t0 = time.perf_counter()
        try:
            result, used = fuse_rejecting_bad(lambda v: engine.infer(v, sample_rate=rate, decode=decode),
                                              {m: s.value for m, s in live.items()},
                                              lambda e: isinstance(e, _input_errors()), self._reject)
        except Exception as exc:  # noqa: BLE001 - never let one bad input kill the node
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"inference failed: {self.last_error}", throttle_duration_sec=5.0)
            return False
        if result is None:
            return False
        self.last_latency_s = dt = time.perf_counter() - t0
        self.latency.add(dt)
        self.fused_count += 1
        for m in decode:
            self.decoded[m] += 1
        live = {m: s for m, s in live.items() if m in used}
        for m, s in live.items():  # count each input message once, at its first fusion
            if s.seq != self._fused_seq[m]:
                self._fused_seq[m] = s.seq
                self.fused_inputs[m] += 1
        self.last_result, self.last_fused, self.last_error = result, tuple(result.fused), ""
        try:
            self._publish(result, newest(live).stamp)
        except Exception as exc:  # noqa: BLE001 - a bad result must not stop the executor
            self.last_error = f"publishing failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(self.last_error, throttle_duration_sec=5.0)
        return True

    def _publish(self, result, stamp) -> None:
        """Publish ``result`` on every output in the table whose modality was decoded."""
        ctx = PublishContext(conv.make_header(stamp, str(self._cfg["frame_id"])), self._checkpoint_kind,
                             self._checkpoint_sha256, self._fused_modalities)
        for name, pub in list(self._pubs.items()):
            spec = OUTPUTS[name]
            if spec.needs is not None and not decoded(result, spec.needs):
                continue  # lazy outputs: the modality had no subscriber
            if spec.build is None:  # the Griffin-Lim worker publishes it
                self._gl.submit(np.array(result.audio_mel, dtype=np.float32))
                continue
            pub.publish(spec.build(result, ctx))
            self.published_count += 1

    def _publish_waveform(self, mel) -> None:
        engine, pub = self._engine, self._pubs.get("audio")
        if engine is not None and pub is not None:
            pub.publish(conv.numpy_to_audio(np.clip(np.asarray(engine.mel_to_waveform(mel), np.float32), -1.0, 1.0)))
            self.published_count += 1

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        if self._diag_pub is None:
            return
        device = str(getattr(self._engine, "device", "none"))
        status = fusion_status(
            name=f"{self.get_fully_qualified_name()}: fusion", hardware_id=device,
            state="active" if self._active else "inactive", live=self.live_inputs(),
            rates={m: r.rate() for m, r in self._rates.items()}, latency=self.latency, fused=self.fused_count,
            published=self.published_count, received=self.received, dropped=self.dropped,
            superseded=self.superseded, fused_inputs=self.fused_inputs, expired=self.expired, device=device,
            checkpoint=self._checkpoint_path, checkpoint_kind=self._checkpoint_kind, last_error=self.last_error,
            qos_incompatible=self.qos_incompatible)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status] + self._input_statuses()
        self._diag_pub.publish(msg)

    def _input_statuses(self) -> list:
        """One diagnostic_updater-style status per input: ``<node>: input <modality>``."""
        now, staleness = self._now_s(), self._staleness()
        out = []
        for m in MODALITIES:
            events, span, freq = self._freq[m].snapshot(self.received[m])
            last, topic = self._last_arrival[m], self.resolve_topic_name(INPUT_TOPICS[m])
            out.append(input_status(
                name=f"{self.get_fully_qualified_name()}: input {m}", hardware_id=topic, topic=topic,
                events_in_window=events, window_s=span, frequency=freq, received=self.received[m],
                expected_hz=float(self._cfg.get(f"diagnostics.expected_hz.{m}", 0.0)),
                tolerance=float(self._cfg.get("diagnostics.tolerance", 0.1)),
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


def _input_errors() -> tuple[type, ...]:
    """Exceptions meaning 'the engine rejected this input': CodecError and EngineInputError."""
    from crossmodal_ros import engine
    from crossmodal_ros.codecs import CodecError

    return (CodecError, getattr(engine, "EngineInputError", CodecError))


def make_node(name: str = "nexus", namespace: Optional[str] = None, context=None, **params) -> InferenceNode:
    """An :class:`InferenceNode` in-process with parameter overrides (nested dicts flatten to
    dotted names, e.g. ``make_node(staleness={"image": 0.5}, autostart=False)``)."""
    kwargs: dict[str, Any] = {"parameter_overrides": parameter_overrides(params)}
    if namespace is not None:
        kwargs["namespace"] = namespace
    if context is not None:
        kwargs["context"] = context
    return InferenceNode(name, **kwargs)


def main(args=None, prog: str = "crossmodal_inference") -> None:
    """Console entry ``crossmodal_inference``: spin one node on a MultiThreadedExecutor (one
    thread per callback group: inputs, fusion, services) until Ctrl-C or shutdown."""
    from crossmodal_ros.ros.sensor_base import wants_help

    if wants_help(args):
        print_help(prog=prog, summary=__doc__.split("\n\n")[0])
        return 0
    try:
        with rclpy.init(args=args):
            # the executor first: a Ctrl-C during the node's (autostart) configure must not
            # interrupt the executor's constructor
            executor = MultiThreadedExecutor(num_threads=3)
            node = InferenceNode()
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
