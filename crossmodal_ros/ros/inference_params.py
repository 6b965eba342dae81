# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Parameters of the inference node: the table (defaults, descriptions, ranges), the
cross-parameter rules, ``--help`` and the overrides of an in-process node.
"""
from __future__ import annotations

import math
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.parameter import Parameter

from crossmodal_ros.engine import BACKENDS, set_cpu_threads  # noqa: F401 - set_cpu_threads: also bag_eval's
from crossmodal_ros.ros.executors import EXECUTOR_CHOICES
from crossmodal_ros.modalities import MODALITIES
from crossmodal_ros.ros.node_io import OUTPUT_NAMES
from crossmodal_ros.ros.qos import RELIABILITY_CHOICES

DEVICE_CHOICES = ("auto", "cpu", "cuda")
INFER_COMBINE_CHOICES = ("", "mixture", "aggregate")


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
#: rules by :func:`validate_parameters`.
PARAMETERS: dict[str, tuple[Any, ParameterDescriptor]] = {
    "checkpoint": ("", _desc(
        "Model checkpoint (.pt). Empty: the shipped default (crossmodal_ros.paths."
        "default_checkpoint()). Read at configure.", ParameterType.PARAMETER_STRING)),
    "device": ("auto", _desc(
        "Inference device: auto (cuda when available, else cpu), cpu or cuda. Read at configure.",
        ParameterType.PARAMETER_STRING)),
    "backend": ("int8_auto", _desc(
        "Batch-1 inference path: int8_auto (default: int8 on a CPU with a native bfloat16 path, "
        "AVX512-BF16 or AMX, where it measured faster in this node; else fast), fast (folded PyTorch "
        "graph, equal to the training model within float rounding), onnx (ONNX Runtime; needs device cpu; "
        "builds its graphs at configure; about 2x faster than fast in a loop of batch-1 calls, about "
        "equal in this node, where fast skips unchanged inputs), auto (onnx where it runs, else fast), "
        "int8 (the fast path with weight-only int8 products; needs device cpu; faster than fast "
        "with AVX512-BF16 or AMX, close to but not equal to fast), onnx_int8 (onnx with int8 "
        "products, needs device cpu: the fastest batch-1 path where measured, close to but not equal "
        "to fast) or reference (the training model). Read at configure.",
        ParameterType.PARAMETER_STRING)),
    "onnx_cache": (True, _desc(
        "Keep the onnx and onnx_int8 backends' exported graphs on disk ($CROSSMODAL_ROS_CACHE or "
        "~/.cache/crossmodal_ros, folder onnx; keyed by the weights, torch and opset), so a restart "
        "skips the export (about 2 s, 5-6 s for onnx_int8). Ignored by the other backends. Read at "
        "configure.", ParameterType.PARAMETER_BOOL)),
    "num_threads": (1, _int_desc(
        "CPU threads of the node's process: torch intra-op, BLAS (numpy/scipy) and OpenCV pools "
        "(0 = leave them as they are: in a fresh process each library's default, about one per "
        "core). Process-wide; the onnx and onnx_int8 backends always run one thread. 1 suits batch-1 fusion on a "
        "robot whose cores other nodes share: with 2 on a 2-core machine the end-to-end p99 was "
        "112 ms against 17 ms (busy-waiting pool threads). Read at configure.", 0, 256)),
    "executor": ("events", _desc(
        "The executor crossmodal_inference spins (ignored for a node made in-process): events "
        "(rclpy's EventsExecutor, C++, one callback per event: 30-50 % less CPU per fusion than "
        "single in benchmarks/README.md; falls back to single, with a warning, where rclpy has "
        "none) or single (rclpy's SingleThreadedExecutor). Read at startup.",
        ParameterType.PARAMETER_STRING, read_only=True)),
    "infer_combine": ("", _desc(
        "How a Nexus checkpoint combines several given modalities: empty = as stored (the "
        "shipped model: mixture), mixture (moment-matched mixture of the single-modality "
        "posteriors: higher cross-modal accuracy) or aggregate (one posterior of the aggregated "
        "messages, NEXUS_SPEC: outputs closer to what several sensors saw). Read at configure.",
        ParameterType.PARAMETER_STRING)),
    "max_rate_hz": (100.0, _float_desc(
        "Upper bound on fusions of fresh input per second (heartbeats do not count); fresh "
        "input is fused at once unless a fusion is running or the rate limit (a token bucket "
        "of max_burst tokens refilled at max_rate_hz) is spent; inputs arriving meanwhile are "
        "coalesced to the newest.", 0.1, 1000.0)),
    "max_burst": (4, _int_desc(
        "Fresh fusions allowed back to back before max_rate_hz spaces them (the token bucket's "
        "size): inputs of several sensors arriving together are each fused at once. 1 = a "
        "minimum gap of 1/max_rate_hz between fresh fusions (config/replay.yaml: a replayed "
        "sample's inputs give one fusion at once and one more for the rest, 1/max_rate_hz "
        "later).", 1, 1000)),
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
        "no subscriber listens to their outputs (for in-process readers; messages go only to "
        "subscribed topics). Others are decoded only while their output topics have "
        "subscribers. Read at configure.", ParameterType.PARAMETER_STRING_ARRAY)),
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

#: The staleness parameter of each modality.
STALENESS = {m: f"staleness.{m}" for m in MODALITIES}
#: Parameters that take effect while the node runs; all others at the next configure.
LIVE_PARAMETERS = frozenset({"max_rate_hz", "max_burst", "heartbeat_hz", "sample_latent", "clock_timeout_s",
                             "diagnostics.tolerance", *STALENESS.values(),
                             *(f"diagnostics.expected_hz.{m}" for m in MODALITIES)})


def _as_double(param):
    """``param`` as a double when it holds an integer for a parameter declared as a double (``20`` in a
    YAML file or ``-p max_rate_hz:=20``, which rclpy would reject as a wrong type), else itself.
    """
    default = PARAMETERS.get(param.name, (None,))[0]
    if isinstance(default, float) and param.type_ == Parameter.Type.INTEGER:
        return Parameter(param.name, Parameter.Type.DOUBLE, float(param.value))
    return param


def declare_parameters(node) -> None:
    """Declare every parameter of :data:`PARAMETERS` on ``node``, taking whole numbers for the double
    ones: in the overrides given at start-up and in later ``set_parameters`` calls.
    """
    # rclpy keeps the start-up overrides (command line, parameter files) in this dict and
    # type-checks them against the declared default; there is no public hook before that check
    overrides = getattr(node, "_parameter_overrides", {})  # absent in another rclpy: no conversion there
    for name, param in list(overrides.items()):
        overrides[name] = _as_double(param)
    node.add_pre_set_parameters_callback(lambda params: [_as_double(p) for p in params])
    for name, (default, desc) in PARAMETERS.items():
        node.declare_parameter(name, default, desc)


def configure_time_note(names, state: str) -> str:
    """The warning for parameters set on a configured node (``state`` inactive or active) that
    only its next configure reads.
    """
    steps = ("deactivate, " if state == "active" else "") + "cleanup, configure, activate"
    return (f"{', '.join(names)}: read at configure, so not applied yet; apply with the lifecycle transitions "
            f"{steps} (ros2 lifecycle set <node> <transition>)")


def validate_parameters(values: dict[str, Any]) -> str:
    """Check choices and cross-parameter rules; return '' when valid, else the reason."""
    if values["device"] not in DEVICE_CHOICES:
        return f"device must be one of {DEVICE_CHOICES}, got {values['device']!r}"
    if values["backend"] not in BACKENDS:
        return f"backend must be one of {BACKENDS}, got {values['backend']!r}"
    if values["executor"] not in EXECUTOR_CHOICES:
        return f"executor must be one of {EXECUTOR_CHOICES}, got {values['executor']!r}"
    if values["infer_combine"] not in INFER_COMBINE_CHOICES:
        return f"infer_combine must be one of {INFER_COMBINE_CHOICES}, got {values['infer_combine']!r}"
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
    for name in ("max_rate_hz", "heartbeat_hz", *(STALENESS.values())):
        v = values[name]
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"{name} must be a finite number, got {v!r}"
    return ""


def freeze_startup_objects() -> int:
    """Collect once, then exempt every object alive now from the garbage collector's scans
    (``gc.freeze``); returns how many objects were frozen.

    For the node's own process (``crossmodal_inference``), once the node has configured (with
    ``autostart``, the default; under a lifecycle manager the model loads later and only the
    imports are frozen): a full collection, which the interpreter runs now and then while the
    node fuses, otherwise walks the about 230,000 objects of torch, librosa and the model (53 ms
    on this machine, a latency spike of that size). Frozen objects are still freed by reference
    counting; only cyclic garbage among them would stay (a reconfigure drops the old engine, whose
    tensors and modules hold no cycles), so the call belongs to a process's start, not to a library.
    """
    import gc

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def missing_modalities_reason(checkpoint: str, has: tuple, requested) -> str:
    """'' when a model with inputs ``has`` can fuse every modality the ``modalities`` parameter
    requests, else why not.
    """
    wanted = [m for m in MODALITIES if m in requested]
    lacking = [m for m in wanted if m not in has]
    if not lacking:
        return ""
    return (f"checkpoint {checkpoint!r} was trained for modalities {'+'.join(has)}; the node was configured for "
            f"{'+'.join(wanted)} (parameter 'modalities'), and the model cannot fuse {'+'.join(lacking)}. "
            "Use a checkpoint trained with them or change 'modalities'.")


def print_help(file=None, prog: str = "crossmodal_inference", summary: str = "") -> None:
    """``crossmodal_inference --help``: every parameter with its default and description."""
    from crossmodal_ros.ros.sensor_base import print_parameter_help

    rows = [(name, repr(default), " ".join(desc.description.split()))
            for name, (default, desc) in PARAMETERS.items()]
    rows.append(("use_sim_time", "False", "Follow /clock (bag replay); see clock_timeout_s."))
    rows.append(("qos_overrides.<topic>.<publisher|subscription>.<policy>", "(from qos_*)",
                 "Per-topic QoS override (reliability, durability, history, depth, ...), read "
                 "when the topic is created at the first configure; e.g. "
                 "qos_overrides./camera/image_raw.subscription.reliability: reliable."))
    print_parameter_help(prog, summary, rows, file=file)


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter dict -> ``{"a.b": value}`` (the names ROS parameters use)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out



def parameter_overrides(params: dict[str, Any]) -> list[Parameter]:
    """``Parameter`` overrides from values (nested dicts flatten to dotted names; ints given for
    float parameters are converted); an unknown name raises ValueError.
    """
    overrides = []
    for key, value in flatten(params).items():
        if key not in PARAMETERS and key != "use_sim_time":
            raise ValueError(f"unknown inference node parameter {key!r}; known: {sorted(PARAMETERS)}")
        if key in PARAMETERS:
            default = PARAMETERS[key][0]
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if isinstance(value, tuple):
                value = list(value)
        overrides.append(Parameter(key, value=value))
    return overrides


def load_engine(values: dict[str, Any]):
    """The inference node's FusionEngine for parameter ``values``: ``(engine, checkpoint path,
    CPU threads)``; ValueError with the reason (invalid parameters, an unusable checkpoint, a
    modality the deployment needs and the checkpoint lacks). Sets the process's thread pools.
    """
    from crossmodal_ros.checkpoint import CheckpointError
    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.paths import default_checkpoint

    reason = validate_parameters(values)
    if reason:
        raise ValueError(reason)
    path = values["checkpoint"] or str(default_checkpoint())
    try:
        engine = FusionEngine.from_checkpoint(
            path, device=values["device"], backend=values["backend"], sample=bool(values["sample_latent"]),
            onnx_cache=bool(values["onnx_cache"]),
            model_options={"infer_combine": values["infer_combine"]} if values["infer_combine"] else None)
    except (CheckpointError, FileNotFoundError, ImportError, RuntimeError, ValueError) as exc:
        raise ValueError(f"cannot load checkpoint {path!r}: {exc}") from exc
    threads = set_cpu_threads(values["num_threads"])  # after the model's imports loaded BLAS
    reason = missing_modalities_reason(path, tuple(engine.modalities), values["modalities"])
    if reason:
        raise ValueError(reason)
    return engine, path, threads
