# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The inference node: a lifecycle node fusing whatever sensors are live, for any model kind.

Executable ``crossmodal_inference`` (``nexus_node``: alias for one release). Topics: the modality
units and :mod:`crossmodal_ros.ros.node_io`; parameters: :mod:`crossmodal_ros.ros.inference_params`.

The node is parameters, lifecycle and wiring: :class:`node_io.InputSubscriptions` validates
input messages into ``self.core``, a ROS-free :class:`crossmodal_ros.fusion_policy.FusionCore`
(store, scheduling, fusion, accounting); :class:`node_io.OutputPublishers` publishes the result
by walking the output table, decoding a modality only while one of its outputs has subscribers.

Threads: :func:`main` spins one single-threaded executor (:mod:`crossmodal_ros.ros.executors`, parameter
``executor``); inputs arriving during an inference wait in their queues and the store coalesces them. A fresh
input is fused in the subscription callback that stored it. The node stays correct on a multi-threaded
executor (rclpy 9.1.2's busy-loops; not used): every scheduler decision and fusion holds ``_fusion_lock`` (which
also keeps the lifecycle and parameter services from changing the core or the publishers under it), an input
whose wake-up finds the lock held is fused by the holder when it lets go
(:class:`~crossmodal_ros.fusion_policy.WakeGate`), and the timers keep their own mutually exclusive group.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos_overriding_options import QoSOverridingOptions
from rcl_interfaces.msg import SetParametersResult

from crossmodal_ros.fusion_policy import FRESH, FusionCore, WakeGate
from crossmodal_ros.modalities import MODALITIES
from crossmodal_ros.ros import conversions as conv
from crossmodal_ros.ros.diagnostics import InputMonitor, node_statuses
from crossmodal_ros.fusion_store import LatestSamples, newest
from crossmodal_ros.ros.inference_params import (LIVE_PARAMETERS, PARAMETERS, STALENESS, configure_time_note,
                                                 declare_parameters, freeze_startup_objects, load_engine,
                                                 parameter_overrides, print_help, validate_parameters)
from crossmodal_ros.ros.node_io import INPUT_TOPICS, INPUT_TYPES, OUTPUT_NAMES, OUTPUT_NEEDS, OUTPUTS  # noqa: F401
from crossmodal_ros.ros.node_io import DeadlineTimer, InputSubscriptions, OutputPublishers, PublishContext
from crossmodal_ros.ros.qos import input_qos, output_qos
from crossmodal_ros.ros.executors import run_node_process

#: Every publisher and subscription declares read-only ``qos_overrides.<topic>.<kind>.<policy>``
#: parameters (rclpy's QoSOverridingOptions), read at creation (first configure).
_QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()


def _delegated(part: str, name: str) -> property:
    """A read-only node attribute that is attribute ``name`` of the node's ``part`` (core, ...)."""
    return property(lambda self: getattr(getattr(self, part), name), doc=f"``self.{part}.{name}``.")


class InferenceNode(LifecycleNode):
    """Lifecycle node running any checkpoint's model on the live subset of its sensor inputs.

    The fusion (store, scheduler, counters) is ``self.core``; its counters (``FusionCore.COUNTERS``:
    ``received``, ``dropped`` ...) are readable on the node by the same names (demo, tools, tests).
    Drop reasons: the :class:`conversions.ConversionError` categories, ``codec``, ``inactive``.
    """

    #: Output messages published since the node started.
    published_count = _delegated("outputs", "published")
    #: Per input: publishers seen with QoS incompatible with the subscription.
    qos_incompatible = _delegated("monitor", "qos_incompatible")

    def __init__(self, node_name: str = "nexus", **kwargs):
        super().__init__(node_name, **kwargs)
        declare_parameters(self)  # whole numbers accepted for the double parameters
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        self.core = FusionCore(LatestSamples(MODALITIES), self.get_logger(), _is_input_error)
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._fusion_group = MutuallyExclusiveCallbackGroup()
        self.monitor = InputMonitor(MODALITIES)
        self.inputs = InputSubscriptions(self.core, self.monitor, lambda: self.get_clock().now(), self._on_wake)
        self.outputs = OutputPublishers(self._waveform, lambda s: self.get_logger().error(s, throttle_duration_sec=5.0))
        self._engine, self._checkpoint_path, self._checkpoint_kind, self._checkpoint_sha256 = None, "", "", ""
        self._always_decode: frozenset = frozenset()
        self._cfg: dict[str, Any] = {}
        self.pending_reconfigure: set[str] = set()  # set since the last configure, read at the next one
        self._diag_pub = self._diag_timer = None
        self.fusion_timer = DeadlineTimer(lambda: self.core.mono())
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._fusion_lock = threading.RLock()  # see the module docstring
        self._gate = WakeGate(self._fusion_lock)  # wake-ups that found the lock held
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

    def accounting(self) -> dict[str, dict[str, int]]:
        """Where every received input message went (:meth:`FusionCore.accounting`)."""
        return self.core.accounting()

    # ------------------------------------------------------------------ parameters
    def _current_values(self) -> dict[str, Any]:
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        values = self._current_values()
        values.update({p.name: p.value for p in params if p.name in values})
        reason = validate_parameters(values)
        return SetParametersResult(successful=not reason, reason=reason)

    def _after_set_parameters(self, params: list[Parameter]) -> None:
        """Apply live-tunable values at once; the others take effect at the next configure (warned)."""
        if not self._cfg:
            return
        if self.lifecycle_state in ("inactive", "active") and (later := sorted(
                p.name for p in params if p.name in PARAMETERS and p.name not in LIVE_PARAMETERS
                and p.value != self._cfg.get(p.name))):
            self.pending_reconfigure.update(later)
            self.get_logger().warning(configure_time_note(later, self.lifecycle_state))
        changed = {p.name for p in params if p.name in LIVE_PARAMETERS}
        with self._fusion_lock:
            self._cfg.update({p.name: p.value for p in params if p.name in changed})
            if "sample_latent" in changed and self._engine is not None:
                self._engine.sample = bool(self._cfg["sample_latent"])
            self._configure_core()
            self.fusion_timer.set(self.core.next_tick(self._now_s()))  # new rates: the deadline moves
        self._gate.flush(self._fuse_fresh)

    def _configure_core(self) -> None:
        cfg = self._cfg
        self.core.configure(cfg["max_rate_hz"], cfg["heartbeat_hz"],
                            {m: cfg[p] for m, p in STALENESS.items()}, cfg["clock_timeout_s"], cfg["max_burst"])

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load the checkpoint, create publishers and subscriptions. FAILURE (logged;
        unconfigured; with autostart the process exits): bad parameters or an unusable checkpoint.
        """
        from crossmodal_ros.checkpoint import file_sha256

        values = self._current_values()
        engine = self._load_engine(values)
        if engine is None:
            return TransitionCallbackReturn.FAILURE
        for m, error in engine.warm_up(int(values["sample_rate"])).items():
            self.get_logger().warning(f"warm-up inference on {m} failed: {error}")
        has = tuple(engine.modalities)
        self._engine, self._cfg = engine, values
        self._checkpoint_kind = str(getattr(engine, "kind", "") or getattr(engine.model, "kind", "unknown"))
        self._checkpoint_sha256 = file_sha256(self._checkpoint_path)
        self._configure_core()
        self.core.last_error, self.pending_reconfigure = "", set()
        self.monitor.set_window(values["diagnostics.window"])
        forced = set(values["always_decode"]) - {""}
        self._always_decode = frozenset(MODALITIES if "all" in forced else forced) & set(has)
        self._create_publishers(values, has)
        self._create_subscriptions(values, has)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10,
                                               qos_overriding_options=_QOS_OVERRIDES)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics, callback_group=self._fusion_group,
                                             clock=self._steady)
        self.get_logger().info(f"configured: {self._checkpoint_kind} checkpoint {self._checkpoint_path} on "
                               f"{engine.device} ({self._threads} torch threads, path {engine.path}); outputs "
                               f"{sorted(self.outputs.pubs)}; inputs {values['qos_reliability']} "
                               f"depth {values['qos_depth']}")
        return super().on_configure(state)

    def _load_engine(self, values: dict[str, Any]):
        """The FusionEngine of ``values`` (``inference_params.load_engine``), or None (logged)."""
        try:
            engine, self._checkpoint_path, self._threads = load_engine(values)
        except ValueError as exc:
            return self._configure_failed(str(exc))
        return engine

    def _configure_failed(self, reason: str) -> None:
        self.core.last_error = f"configure failed: {reason}"
        self.get_logger().error(self.core.last_error)

    def _create_publishers(self, values: dict[str, Any], has: tuple[str, ...]) -> None:
        """One lifecycle publisher per selected output the model can feed (the output table)."""
        outputs = set(values["outputs"]) - (set() if values["griffin_lim"] else {"audio"})
        cannot = sorted(o for o in outputs if o in OUTPUT_NEEDS and OUTPUT_NEEDS[o] not in has)
        if cannot:
            self.get_logger().warning(f"the {self._checkpoint_kind} model does not decode {cannot}; not publishing")
        # one profile object per entity: a qos_overrides parameter edits the profile it is given
        self.outputs.open(lambda msg_type, topic: self.create_lifecycle_publisher(
            msg_type, topic, output_qos(), qos_overriding_options=_QOS_OVERRIDES), outputs - set(cannot))

    def _create_subscriptions(self, values: dict[str, Any], has: tuple[str, ...]) -> None:
        """One subscription per input the model has, on the input callback group."""
        skipped = [m for m in MODALITIES if m not in has]
        if skipped:
            self.get_logger().info(f"the {self._checkpoint_kind} model has no {skipped} input; "
                                   f"not subscribing to {[INPUT_TOPICS[m] for m in skipped]}")
        reliability = values["qos_reliability"]

        def create(m, msg_type, topic, callback):
            on_incompatible = self.monitor.qos_callback(m, topic, reliability, self.get_logger().warning)
            return self.create_subscription(
                msg_type, topic, callback, input_qos(reliability, values["qos_depth"]),
                callback_group=self._input_group, qos_overriding_options=_QOS_OVERRIDES,
                event_callbacks=SubscriptionEventCallbacks(incompatible_qos=on_incompatible))

        self.inputs.open(create, has, values["max_image_pixels"])

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start fusing and publishing (and the Griffin-Lim worker when ``audio`` is published)."""
        self._start_fusion_timer()
        self.outputs.start()
        self.core.activate()
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop fusing (the model stays loaded)."""
        with self._fusion_lock:
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
            self._stop_fusion()
            self._release()
        return super().on_shutdown(state)

    def _start_fusion_timer(self) -> None:
        self.fusion_timer.start(lambda s: self.create_timer(s, self._on_fusion_timer, callback_group=self._fusion_group,
                                                            clock=self._steady), self.core.scheduler.tick_period)

    def _stop_fusion(self) -> None:
        self.core.active = False
        self.fusion_timer.stop(self.destroy_timer)
        self.outputs.stop()

    def _release(self) -> None:
        self.inputs.close(self.destroy_subscription)
        self.outputs.close(self.destroy_lifecycle_publisher)
        if self._diag_timer is not None:  # created with the publisher at configure
            self.destroy_timer(self._diag_timer)
            self.destroy_publisher(self._diag_pub)
        self._diag_timer = self._diag_pub = None
        self.core.store.clear()
        engine, self._engine = self._engine, None
        if engine is not None and str(getattr(engine, "device", "cpu")).startswith("cuda"):
            del engine
            import torch

            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ inputs
    def _now_s(self) -> float:
        """The liveness clock: the node clock (sim time under ``use_sim_time``) in seconds."""
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ fusion
    def _on_wake(self) -> None:
        """New input was stored: fuse it in this callback unless ``max_rate_hz`` defers it to a tick or another
        thread fuses (which then fuses this input next: :class:`~crossmodal_ros.fusion_policy.WakeGate`).
        """
        self._gate.wake(self._fuse_fresh)

    def _fuse_fresh(self) -> None:
        if self.core.on_input() == FRESH:
            self._fuse(FRESH)
        else:  # deferred by the rate limit (or a fusion on another thread): tick when it may run
            self.fusion_timer.set(self.core.next_tick(self._now_s()), earlier_only=True)

    def _on_fusion_timer(self) -> None:
        """Timer tick: deferred fresh input, or a heartbeat in silence, then the next deadline
        (:meth:`FusionCore.next_tick`); under the fusion lock (an input callback may fuse on another thread).
        """
        with self._fusion_lock:
            self._check_clock()
            now_s = self._now_s()
            kind = self.core.on_tick(now_s)
            if kind is not None:
                self._fuse(kind)
                now_s = self._now_s()
            self.fusion_timer.set(self.core.next_tick(now_s))
        self._gate.flush(self._fuse_fresh)

    def _check_clock(self) -> bool:
        """Whether the sim clock is stalled (see ``clock_timeout_s``): then nothing is live."""
        sim = self.get_parameter("use_sim_time").value  # the clock is read only under sim time
        return self.core.check_clock(self.get_clock().now().nanoseconds if sim else 0, sim)

    def live_inputs(self) -> tuple[str, ...]:
        """The modalities live right now (none while the sim clock is stalled)."""
        with self._fusion_lock:
            self._check_clock()
            return self.core.live(self._now_s())

    def _fuse(self, kind: str = FRESH) -> bool:
        """Fuse the live inputs now and publish the result; False when nothing was fused.

        Input stored meanwhile by another thread: its wake-up is served by ``self._gate``.
        """
        with self._fusion_lock:
            if self._engine is None:
                return False
            self._check_clock()
            subscribed = self.outputs.subscribed()
            decode = self.outputs.wanted_decodes(self._always_decode, subscribed)
            fused = self.core.fuse(kind, self._now_s(), self._infer, decode)
            if fused is None:
                return False
            result, samples = fused
            try:
                header = conv.make_header(newest(samples).stamp, str(self._cfg["frame_id"]))
                self.outputs.publish(result, PublishContext(header, self._checkpoint_kind, self._checkpoint_sha256,
                                                            tuple(self._engine.modalities)), subscribed)
            except Exception as exc:  # noqa: BLE001 - a bad result must not stop the executor
                self.core.last_error = f"publishing failed: {type(exc).__name__}: {exc}"
                self.get_logger().error(self.core.last_error, throttle_duration_sec=5.0)
            return True

    def _infer(self, values: dict, decode: set):
        return self._engine.infer(values, sample_rate=int(self._cfg["sample_rate"]), decode=decode)

    def _waveform(self, mel):
        """The ``audio`` message of a decoded mel (Griffin-Lim; on the worker thread)."""
        waveform = np.asarray(self._engine.mel_to_waveform(mel), dtype=np.float32)
        return conv.numpy_to_audio(np.clip(waveform, -1.0, 1.0))

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> list:
        """The ``/diagnostics`` statuses now: ``<node>: fusion``, then ``<node>: input <m>`` per input."""
        return node_statuses(
            self.core, self.monitor, name=self.get_fully_qualified_name(),
            device=str(getattr(self._engine, "device", "none")), path=getattr(self._engine, "path", "none"),
            checkpoint=self._checkpoint_path,
            checkpoint_kind=self._checkpoint_kind, published=self.outputs.published, live=self.live_inputs(),
            now_s=self._now_s(), topics={m: self.resolve_topic_name(t) for m, t in INPUT_TOPICS.items()},
            subscribed=self.inputs.subscribed, cfg=self._cfg)

    def _publish_diagnostics(self) -> None:
        if self._diag_pub is not None:
            with self._fusion_lock:  # the counters, not halfway through a fusion on another thread
                statuses = self.diagnostics()
            self._gate.flush(self._fuse_fresh)
            msg = DiagnosticArray(status=statuses)
            msg.header.stamp = self.get_clock().now().to_msg()
            self._diag_pub.publish(msg)


def _is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` means 'the engine rejected this input' (CodecError, EngineInputError)."""
    from crossmodal_ros.codecs import CodecError
    from crossmodal_ros.engine import EngineInputError

    return isinstance(exc, (CodecError, EngineInputError))


for _name in FusionCore.COUNTERS:
    setattr(InferenceNode, _name, _delegated("core", _name))


def make_node(name: str = "nexus", namespace: Optional[str] = None, context=None, **params) -> InferenceNode:
    """An :class:`InferenceNode` in-process with parameter overrides (nested dicts flatten to
    dotted names, e.g. ``make_node(staleness={"image": 0.5}, autostart=False)``).
    """
    optional = {k: v for k, v in (("namespace", namespace), ("context", context)) if v is not None}
    return InferenceNode(name, parameter_overrides=parameter_overrides(params), **optional)


def main(args=None, prog: str = "crossmodal_inference") -> None:
    """Console entry ``crossmodal_inference``: spin one node on the executor its ``executor``
    parameter names (module docstring) until Ctrl-C or shutdown.
    """
    from crossmodal_ros.ros.sensor_base import wants_help

    if wants_help(args):
        print_help(prog=prog, summary=__doc__.split("\n\n")[0])
        return 0
    # no full-gc pauses over the loaded model (inference_params)
    run_node_process(InferenceNode, args, before_spin=freeze_startup_objects)


if __name__ == "__main__":
    main()
