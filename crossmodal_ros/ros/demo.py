# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""``make demo``: the whole ROS 2 graph in one process, from dataset playback, with sensor outages.

Nodes: camera, microphone and pen playback (:mod:`crossmodal_ros.ros.camera_node` etc.), the
Nexus inference node (:class:`crossmodal_ros.ros.nexus_node.NexusNode`, shipped model) and a
monitor that subscribes to the node's outputs exactly as any other consumer would. One
executor with two threads runs them all (the node's fusion has its own callback group, so
playback keeps its timing during a forward pass). Every ``period_s`` the live sensors publish the same
dataset sample; the outage schedule switches sensors off and on:
all -> camera off -> pen only -> audio only -> all.

The console shows one table per phase (live inputs, fused inputs, predicted vs true label,
latency from the sensor's header stamp to the output's arrival) and a summary at the end:
accuracy per fused input subset, latency median/p99, output rates. ``out/demo`` receives
``reconstructions.png`` (real inputs next to reconstructions, a few samples per phase) and
``summary.json``.

Usage: ``python -m crossmodal_ros.ros.demo [--duration 60] [--checkpoint PATH] [--device auto]``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY, subset_name
from crossmodal_ros.paths import config_dir, default_checkpoint

__all__ = ["main", "run_demo", "build_graph", "DemoGraph", "DemoRecord"]

TRAIN_HINT = (
    "Train it with:\n"
    "  .venv/bin/crossmodal-train --config config/train_nexus.yaml --out runs/nexus\n"
    "  cp runs/nexus/best.pt models/nexus_digits.pt\n"
    "or pass another checkpoint with --checkpoint PATH."
)


@dataclass
class DemoRecord:
    """One fused output as the monitor received it."""

    stamp: float  # header stamp: newest fused input's stamp
    received: float  # wall/ROS time of arrival at the monitor
    fused: tuple
    label: int
    image: np.ndarray | None = None
    trajectory: np.ndarray | None = None
    audio_mel: np.ndarray | None = None
    truth: int = -1
    index: int = -1
    phase: str = ""
    first: bool = True  # first output for this input stamp (not a heartbeat repeat)
    tick: int = -1  # playback tick the fused inputs belong to

    @property
    def latency_s(self) -> float:
        return self.received - self.stamp


def _load_config(path: str | None) -> dict:
    p = Path(path) if path else config_dir() / "demo.yaml"
    if not p.is_file():
        return {"demo": {}, "nexus": {}}
    data = yaml.safe_load(p.read_text()) or {}
    return {"demo": data.get("demo") or {}, "nexus": data.get("nexus") or {}}


class _Monitor:
    """Subscribes to the inference node's outputs and pairs them into :class:`DemoRecord`s.

    ``label`` and ``modalities`` carry no header; every fusion publishes one message on each
    subscribed output (this monitor subscribes to all it pairs) in a fixed order over reliable
    QoS, so the k-th message of each topic belongs to the k-th fusion.
    """

    def __init__(self, node, prefix: str):
        from nav_msgs.msg import Path as PathMsg
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import Int32, String

        from crossmodal_ros.ros import conversions as conv

        self.conv = conv
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.queues = {k: deque() for k in ("image", "trajectory", "audio_mel", "label", "modalities")}
        self.records: list[DemoRecord] = []
        types = {"image": Image, "trajectory": PathMsg, "audio_mel": Image, "label": Int32,
                 "modalities": String}
        self.node = node
        for name, mt in types.items():
            node.create_subscription(mt, f"{prefix}/{name}", lambda m, n=name: self._on(n, m), qos)

    def _on(self, name: str, msg) -> None:
        now = self.node.get_clock().now().nanoseconds * 1e-9
        self.queues[name].append((now, msg))
        while all(self.queues.values()):
            parts = {k: q.popleft() for k, q in self.queues.items()}
            c = self.conv
            img_msg = parts["image"][1]
            fused = tuple(m for m in parts["modalities"][1].data.split("+") if m)
            self.records.append(DemoRecord(
                stamp=c.stamp_to_seconds(img_msg.header.stamp),
                received=max(t for t, _ in parts.values()),
                fused=fused,
                label=int(parts["label"][1].data),
                image=c.image_to_numpy(img_msg).astype(np.float32) / 255.0,
                trajectory=c.path_to_numpy(parts["trajectory"][1]),
                audio_mel=np.array(c.image_to_numpy(parts["audio_mel"][1]), dtype=np.float32),
            ))


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


def settled(records: list[DemoRecord]) -> DemoRecord:
    """The output of one tick that fused the most inputs (the latest among equals).

    Sensors of one tick arrive a few milliseconds apart and the node fuses promptly, so a tick
    first yields partial fusions (e.g. image only) and then the complete one.
    """
    return max(reversed(records), key=lambda r: len(r.fused))


def _print_row(rec: DemoRecord, rel: float, live: str, n_outputs: int, out) -> None:
    ok = "ok" if rec.label == rec.truth else "--"
    print(f"  {rel:6.1f}  {live:24s} {subset_name(rec.fused):24s} {n_outputs:>3d} "
          f"{rec.truth:>5d} {rec.label:>5d}  {ok}  {1e3 * rec.latency_s:8.1f}", file=out, flush=True)


@dataclass
class DemoGraph:
    """The demo's nodes, built by :func:`build_graph` on one rclpy context (not yet added to an
    executor): the inference node, the monitor (and its node) and the three playback sensors
    (camera, microphone, pen). ``nodes`` lists them all, for adding to an executor and for
    destruction.
    """

    nexus: object
    monitor_node: object
    monitor: "_Monitor"
    sensors: list
    nodes: list
    load_s: float
    start: float
    pen_writer: "PenWriter | None" = None

    def destroy(self, executor=None) -> None:
        """Remove the nodes from ``executor`` (when given) and destroy them."""
        for n in self.nodes:
            if executor is not None:
                try:
                    executor.remove_node(n)
                except Exception:  # noqa: BLE001 - not added
                    pass
            n.destroy_node()


class PenWriter:
    """Writes each live tick's pen trajectory as geometry_msgs/PointStamped positions on
    ``pen/position`` in real time (a pen, touch screen or end effector), for the pen node to
    segment. The digit for tick ``k`` is written during ``draw_s`` and finished ``pause_s``
    before the tick starts, so the pen node's pause completes it early in the tick.
    """

    def __init__(self, ctx, dataset: dict, schedule, period: float, seed: int, start: float,
                 pause_s: float = 0.4, draw_s: float = 0.35, points: int = 50):
        import rclpy
        from geometry_msgs.msg import PointStamped

        from crossmodal_ros.sensors.playback import PlaybackClock

        if pause_s + draw_s >= period:
            raise ValueError(f"pen writing ({draw_s} s) plus pause ({pause_s} s) must fit in one period ({period} s)")
        self.node = rclpy.create_node("demo_pen_writer", context=ctx)
        self._msg = PointStamped
        self.pub = self.node.create_publisher(PointStamped, "pen/position", 200)
        self.dataset, self.pause_s, self.draw_s, self.points = dataset, pause_s, draw_s, points
        self.clock = PlaybackClock(len(dataset[TRAJECTORY]), period, seed=seed, schedule=schedule,
                                   schedule_start=start)
        self._k = int(math.ceil((start - self.clock.tick_origin) / period - 1e-9))
        self._i = 0
        self.published = 0  # digits written
        self.node.create_timer(0.01, self._on_timer)

    def _on_timer(self) -> None:
        from crossmodal_ros.ros.conversions import seconds_to_stamp
        from crossmodal_ros.sensors.playback import sample_for

        now = time.time()
        while True:
            desc = self.clock.describe(self._k)
            t_end = desc.t_tick - self.pause_s
            t0 = t_end - self.draw_s
            if now < t0:
                return
            if TRAJECTORY not in desc.live:
                self._k, self._i = self._k + 1, 0
                continue
            pts = sample_for(self.dataset, TRAJECTORY, desc.index)
            pts = pts[np.linspace(0, len(pts) - 1, self.points).round().astype(int)]
            times = np.linspace(t0, t_end, len(pts))
            while self._i < len(pts) and times[self._i] <= now:
                msg = self._msg()
                msg.header.stamp = seconds_to_stamp(float(times[self._i]))
                msg.header.frame_id = "pen"
                msg.point.x, msg.point.y = float(pts[self._i, 0]), float(pts[self._i, 1])
                self.pub.publish(msg)
                self._i += 1
            if self._i < len(pts):
                return
            self.published += 1
            self._k, self._i = self._k + 1, 0


def build_graph(ctx, checkpoint: str, nexus_params: dict, dataset: dict, schedule, period: float,
                seed: int, sample_rate: int, start: float | None = None, sensor_params: dict | None = None,
                prefix: str = "/nexus", real_sensors: dict | None = None,
                external_node: bool = False) -> DemoGraph:
    """Build the demo graph on rclpy context ``ctx``: NexusNode ``nexus`` (autostarted with
    ``nexus_params`` and ``checkpoint``; RuntimeError if it does not activate, warmed up on one
    dataset sample), the output monitor, and camera/microphone/pen playback of ``dataset``
    starting at wall time ``start`` (None: the second whole period after the model is loaded)
    with one sample per ``period`` following ``schedule`` (an OutageSchedule). ``sensor_params``:
    extra parameters for every sensor node.

    ``real_sensors`` (a dict, None: dataset tensors as messages) runs the real sensor paths:
    the camera renders each digit into a full frame (``frame_width`` x ``frame_height``), the
    microphone streams continuous audio (``snr_db``, ``noise``) through its VAD (``vad``, default
    the node's) and publishes what the VAD emits, and a pen writer publishes
    geometry_msgs/PointStamped positions that the pen node segments (``pen_pause_s``).

    ``external_node``: the inference node runs elsewhere (its own process, as on a robot); the
    graph then has no ``nexus`` (None) and ``checkpoint``/``nexus_params`` are not used.
    """
    from rclpy.parameter import Parameter

    from crossmodal_ros.ros.camera_node import CameraNode
    from crossmodal_ros.ros.microphone_node import MicrophoneNode
    from crossmodal_ros.ros.nexus_node import make_node
    from crossmodal_ros.ros.pen_node import PenNode
    from crossmodal_ros.sensors.playback import resample_audio, sample_for

    ncfg = dict(nexus_params)
    ncfg.update(checkpoint=str(checkpoint), sample_rate=sample_rate, autostart=True)
    nodes: list = []
    try:
        t_load = time.monotonic()
        nexus = None
        if not external_node:
            nexus = make_node("nexus", context=ctx, **ncfg)
            nodes.append(nexus)
            if nexus.engine is None or nexus.lifecycle_state != "active":
                raise RuntimeError(f"the inference node did not activate: {nexus.last_error or 'see log'}")
            # warm-up (first-call costs of torch and librosa) before playback starts; not measured
            warm = {IMAGE: sample_for(dataset, IMAGE, 0), TRAJECTORY: sample_for(dataset, TRAJECTORY, 0),
                    AUDIO: resample_audio(sample_for(dataset, AUDIO, 0), int(dataset["sample_rate"]), sample_rate)}
            for _ in range(2):
                nexus.engine.infer(warm, sample_rate=sample_rate)
        load_s = time.monotonic() - t_load
        import rclpy

        monitor_node = rclpy.create_node("demo_monitor", context=ctx)
        nodes.append(monitor_node)
        monitor = _Monitor(monitor_node, prefix)
        if start is None:  # a moment after everything is loaded and connected
            start = (math.floor(time.time() / period) + 2) * period
        params = [
            Parameter("period_s", value=period), Parameter("seed", value=seed),
            Parameter("schedule_start", value=start),
            Parameter("outage_schedule", value=schedule.to_strings()),
        ] + [Parameter(k, value=v) for k, v in (sensor_params or {}).items()]
        sensors = []
        if real_sensors is None:
            plan = ((CameraNode, []), (MicrophoneNode, [Parameter("sample_rate", value=sample_rate)]),
                    (PenNode, []))
        else:
            rs = real_sensors
            mic_extra = [Parameter("sample_rate", value=sample_rate), Parameter("stream", value=True),
                         Parameter("stream_snr_db", value=float(rs.get("snr_db", 20.0))),
                         Parameter("stream_noise", value=str(rs.get("noise", "pink")))]
            if rs.get("vad"):
                mic_extra.append(Parameter("vad", value=str(rs["vad"])))
            pause = float(rs.get("pen_pause_s", 0.4))
            plan = ((CameraNode, [Parameter("render", value=True),
                                  Parameter("frame_width", value=int(rs.get("frame_width", 640))),
                                  Parameter("frame_height", value=int(rs.get("frame_height", 480)))]),
                    (MicrophoneNode, mic_extra),
                    (PenNode, [Parameter("source", value="topic"), Parameter("pause_s", value=pause),
                               Parameter("gap_s", value=min(0.1, pause))]))
        for cls, extra in plan:
            sensors.append(cls(context=ctx, dataset=dataset, parameter_overrides=params + extra))
            nodes.append(sensors[-1])
        writer = None
        if real_sensors is not None:
            writer = PenWriter(ctx, dataset, schedule, period, seed, start, pause_s=pause)
            nodes.append(writer.node)
    except BaseException:
        for n in nodes:
            n.destroy_node()
        raise
    return DemoGraph(nexus=nexus, monitor_node=monitor_node, monitor=monitor, sensors=sensors,
                     nodes=nodes, load_s=load_s, start=start, pen_writer=writer)


def close_graph(graph, executor, ctx) -> None:
    """Tear the demo graph down without racing the executor's worker threads.

    ``MultiThreadedExecutor.spin_once`` hands a ready callback to its thread pool and returns, so
    when the demo loop ends a handler may still be queued. Destroying the nodes first made that
    handler fail later ("The following exception was never retrieved: cannot use Destroyable
    because destruction was requested"). ``executor.shutdown()`` alone does not help: rclpy
    destroys the executor's guard condition, which every handler triggers, before it joins the
    pool. So: first let the pool run what is queued while nodes and guard still exist, then shut
    the executor down, destroy the nodes, and shut the context down.
    """
    import rclpy

    try:
        pool = getattr(executor, "_executor", None)  # rclpy's ThreadPoolExecutor (no public API)
        if pool is not None:
            pool.shutdown(wait=True)
        executor.shutdown()
    finally:
        if graph is not None:
            graph.destroy(None)
        rclpy.shutdown(context=ctx)


def run_demo(checkpoint: str, duration: float = 60.0, period: float | None = None,
             device: str | None = None, out_dir: str | Path = "out/demo", config: str | None = None,
             seed: int | None = None, out=None) -> dict:
    """Run the graph for ``duration`` seconds; returns the summary dict (also in summary.json).

    ``out``: where the console table goes (default: sys.stdout at call time).
    """
    out = out if out is not None else sys.stdout
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from crossmodal_ros.sensors.outages import demo_schedule, describe_live
    from crossmodal_ros.ros.sensor_base import load_playback_dataset

    cfg = _load_config(config)
    dcfg, ncfg = cfg["demo"], dict(cfg["nexus"])
    period = float(period or dcfg.get("period_s", 1.0))
    seed = int(dcfg.get("seed", 0) if seed is None else seed)
    sample_rate = int(dcfg.get("sample_rate", 16000))
    phase_s = duration / 5.0
    schedule = demo_schedule(phase_s)
    dataset = load_playback_dataset(str(dcfg.get("dataset", "digits")), str(dcfg.get("split", "test")))
    if device:
        ncfg["device"] = device

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    # One thread, as crossmodal_inference spins its node: rclpy's MultiThreadedExecutor busy-loops
    # on queued tasks (inference_node module docstring); a forward pass (a few ms) delays
    # playback by at most that much.
    executor = SingleThreadedExecutor(context=ctx)
    graph = None
    try:
        real = dcfg.get("real_sensors", {}) if dcfg.get("real_sensors", {}) is not False else None
        graph = build_graph(ctx, checkpoint, ncfg, dataset, schedule, period, seed, sample_rate,
                            real_sensors=None if real is None else dict(real or {}))
        nexus, monitor, sensors, load_s = graph.nexus, graph.monitor, graph.sensors, graph.load_s
        start = graph.start
        for n in graph.nodes:
            executor.add_node(n)
        clock = sensors[0].playback.clock
        print(f"crossmodal_ros demo: model {checkpoint} on {nexus.engine.device} "
              f"(loaded in {load_s:.1f} s); one sample every {period:g} s; "
              f"{len(schedule.phases)} phases of {phase_s:g} s", file=out, flush=True)
        header = (f"  {'t [s]':>6s}  {'live sensors':24s} {'fused inputs (settled)':24s} {'out':>3s} "
                  f"{'true':>5s} {'pred':>5s}      {'lat ms':>8s}")
        end = start + duration
        shown, current_phase = 0, None
        seen_stamps: set = set()
        by_tick: dict[int, list] = {}
        printed_ticks: set = set()

        def show_settled(upto_tick: int) -> None:
            """Print one row per finished tick: its settled (most complete) output."""
            nonlocal current_phase
            for tick in sorted(t for t in by_tick if t < upto_tick and t not in printed_ticks):
                printed_ticks.add(tick)
                rec = settled(by_tick[tick])
                rel = rec.stamp - start
                if rec.phase != current_phase:
                    current_phase = rec.phase
                    live = describe_live(schedule.live_at(rel))
                    print(f"\n== phase '{current_phase}' (t={rel:4.1f} s): live sensors: {live}",
                          file=out, flush=True)
                    print(header, file=out, flush=True)
                _print_row(rec, rel, describe_live(schedule.live_at(rel)), len(by_tick[tick]), out)

        while time.time() < end + 0.5:
            executor.spin_once(timeout_sec=0.05)
            recs = monitor.records
            while shown < len(recs):
                rec = recs[shown]
                shown += 1
                rel = rec.stamp - start
                rec.tick = clock.tick_at(rec.stamp)
                rec.index = clock.index_for_tick(rec.tick)
                rec.truth = int(dataset["label"][rec.index])
                phase = schedule.phase_at(rel)
                rec.phase = phase.label if phase else "outside"
                key = round(rec.stamp, 6)
                rec.first = key not in seen_stamps
                seen_stamps.add(key)
                if rec.first and 0 <= rel < duration:
                    by_tick.setdefault(rec.tick, []).append(rec)
            show_settled(clock.tick_at(time.time()))
        show_settled(clock.tick_at(end) + 1)
        stats = {
            "received": dict(nexus.received), "fused": nexus.fused_count,
            "inference_ms_median": 1e3 * (nexus.latency.median() or float("nan")),
            "published": {type(s).__name__: (s.playback.published if s.playback is not None else 0)
                          for s in sensors},
            "inputs": _input_stats(graph),
        }
    finally:
        close_graph(graph, executor, ctx)

    records = [r for r in monitor.records if 0 <= r.stamp - start < duration]
    summary = _summarise(records, duration, stats)
    summary["checkpoint"] = str(checkpoint)
    _print_summary(summary, out)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = out_dir / "reconstructions.png"
    _plot(records, dataset, schedule, int(dcfg.get("picture_samples", 2)), picture, sample_rate)
    summary["picture"] = str(picture)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {picture} and {out_dir / 'summary.json'}", file=out, flush=True)
    return summary


def _input_stats(graph: DemoGraph) -> dict:
    """Per modality: what the sensor produced, what the sensor node published, and what the
    inference node received and dropped (by reason).
    """
    cam, mic, pen = graph.sensors
    nexus = graph.nexus
    produced = {
        IMAGE: cam.playback.published,
        AUDIO: mic.playback.published,  # utterances spoken (live ticks)
        TRAJECTORY: graph.pen_writer.published if graph.pen_writer is not None else pen.playback.published,
    }
    published = {IMAGE: cam.frames_published, AUDIO: mic.utterances_published, TRAJECTORY: pen.digits_published}
    out = {}
    for m in (IMAGE, AUDIO, TRAJECTORY):
        drops = dict(nexus.dropped[m])
        out[m] = {"produced": int(produced[m]), "published": int(published[m]),
                  "received": int(nexus.received[m]), "dropped": int(sum(drops.values())),
                  "dropped_by_reason": {str(k): int(v) for k, v in drops.items()}}
    out[IMAGE]["frame_shape"] = list(cam.last_frame_shape or ())
    out[AUDIO]["vad"] = getattr(getattr(mic, "vad", None), "kind", "none")
    out[TRAJECTORY]["segmented"] = graph.pen_writer is not None
    return out


def settled_records(records: list[DemoRecord]) -> list[DemoRecord]:
    """One record per playback tick: the settled output (see :func:`settled`), in tick order."""
    by_tick: dict[int, list] = {}
    for r in records:
        if r.first:
            by_tick.setdefault(r.tick, []).append(r)
    return [settled(by_tick[t]) for t in sorted(by_tick)]


def _summarise(records: list[DemoRecord], duration: float, stats: dict) -> dict:
    firsts = [r for r in records if r.first]
    final = settled_records(records)
    per_subset: dict = {}
    per_phase: dict = {}
    for r in final:
        for table, key in ((per_subset, subset_name(r.fused)), (per_phase, r.phase)):
            e = table.setdefault(key, {"samples": 0, "correct": 0})
            e["samples"] += 1
            e["correct"] += int(r.label == r.truth)
    for table in (per_subset, per_phase):
        for e in table.values():
            e["accuracy"] = e["correct"] / e["samples"]
    per_modality = {}
    for m in (IMAGE, AUDIO, TRAJECTORY):
        with_m = [r for r in final if m in r.fused]
        per_modality[m] = {"samples": len(with_m), "correct": sum(int(r.label == r.truth) for r in with_m)}
        per_modality[m]["accuracy"] = (per_modality[m]["correct"] / len(with_m)) if with_m else float("nan")
    lat = [r.latency_s * 1e3 for r in firsts]
    return {
        "per_modality": per_modality,
        "duration_s": duration,
        "outputs": len(records),
        "output_rate_hz": len(records) / duration,
        "input_sets": len(firsts),
        "samples": len(final),
        "accuracy": (sum(int(r.label == r.truth) for r in final) / len(final)) if final else float("nan"),
        "per_subset": per_subset,
        "per_phase": per_phase,
        "latency_ms": {"median": _percentile(lat, 50), "p99": _percentile(lat, 99),
                       "max": max(lat) if lat else float("nan"), "n": len(lat)},
        **stats,
    }


def _print_summary(s: dict, out) -> None:
    print("\n== summary", file=out)
    print(f"  {'fused inputs':30s} {'samples':>8s} {'accuracy':>9s}", file=out)
    for name, e in sorted(s["per_subset"].items()):
        print(f"  {name:30s} {e['samples']:8d} {e['accuracy']:9.2f}", file=out)
    print(f"  {'all':30s} {s['samples']:8d} {s['accuracy']:9.2f}", file=out)
    print("  (one settled output per sample: the fusion of every input that arrived for it)", file=out)
    if "inputs" in s:
        print(f"\n  {'sensor input':12s} {'produced':>9s} {'published':>9s} {'received':>9s} {'dropped':>8s} "
              f"{'fused acc.':>10s}  drop reasons", file=out)
        for m, e in s["inputs"].items():
            pm = s.get("per_modality", {}).get(m, {})
            acc = pm.get("accuracy", float("nan"))
            reasons = ", ".join(f"{k} {v}" for k, v in e["dropped_by_reason"].items()) or "-"
            print(f"  {m:12s} {e['produced']:9d} {e['published']:9d} {e['received']:9d} {e['dropped']:8d} "
                  f"{acc:10.2f}  {reasons}", file=out)
        print("  (produced: digits shown / spoken / written by the playback; published: what the sensor "
              "node sent after its own processing - the VAD, the stroke segmenter; fused acc.: settled "
              "outputs that fused this input, label vs the true digit)", file=out)
    lat = s["latency_ms"]
    print(f"  latency (sensor stamp -> output at a subscriber): median {lat['median']:.1f} ms, "
          f"p99 {lat['p99']:.1f} ms over {lat['n']} fusions of new input; inference alone "
          f"{s['inference_ms_median']:.1f} ms median", file=out)
    print(f"  outputs {s['outputs']} in {s['duration_s']:.0f} s ({s['output_rate_hz']:.2f} Hz incl. "
          f"heartbeats; {s['input_sets']} fusions of new input for {s['samples']} samples)",
          file=out, flush=True)


def _plot(records, dataset, schedule, per_phase: int, path: Path, sample_rate: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossmodal_ros.codecs import AudioCodec
    from crossmodal_ros.sensors.playback import resample_audio, sample_for

    final = settled_records(records)
    chosen = []
    for phase in schedule.phases:
        chosen += [r for r in final if r.phase == phase.label][:per_phase]
    rows = max(1, len(chosen))
    fig, axes = plt.subplots(rows, 6, figsize=(12, 2.0 * rows + 0.6), squeeze=False)
    titles = ["camera in", "image out", "pen in", "trajectory out", "audio in (mel)", "audio out (mel)"]
    codec = AudioCodec()
    for r, rec in enumerate(chosen):
        ax = axes[r]
        live = set(rec.fused)
        idx = rec.index
        if IMAGE in live:
            ax[0].imshow(dataset[IMAGE][idx, 0], cmap="gray", vmin=0, vmax=1)
        ax[1].imshow(rec.image, cmap="gray", vmin=0, vmax=1)
        if TRAJECTORY in live:
            p = sample_for(dataset, TRAJECTORY, idx)
            ax[2].plot(p[:, 0], p[:, 1], "k-")
        ax[3].plot(rec.trajectory[:, 0], rec.trajectory[:, 1], "b-")
        if AUDIO in live:
            wave = resample_audio(sample_for(dataset, AUDIO, idx), int(dataset["sample_rate"]), sample_rate)
            ax[4].imshow(codec.encode(wave, sample_rate)[0], origin="lower", aspect="auto", vmin=0, vmax=1)
        ax[5].imshow(rec.audio_mel, origin="lower", aspect="auto", vmin=0, vmax=1)
        for c, a in enumerate(ax):
            a.set_xticks([])
            a.set_yticks([])
            if c in (2, 3):
                a.set_xlim(-0.05, 1.05)
                a.set_ylim(-0.05, 1.05)
                a.set_aspect("equal")
            if r == 0:
                a.set_title(titles[c], fontsize=9)
        for c, m in ((0, IMAGE), (2, TRAJECTORY), (4, AUDIO)):
            if m not in live:
                ax[c].text(0.5, 0.5, "off", ha="center", va="center", transform=ax[c].transAxes, color="gray")
        ax[0].set_ylabel(f"{rec.phase}\ntrue {rec.truth} pred {rec.label}", fontsize=8)
    fig.suptitle("crossmodal_ros demo: real inputs (left of each pair) and Nexus reconstructions", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    """Console entry ``demo`` (``make demo``)."""
    p = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=None, help="seconds of playback (default 60 = 5 phases of 12 s)")
    p.add_argument("--period", type=float, default=None, help="seconds between samples (default: config, 1.0)")
    p.add_argument("--checkpoint", default=None, help="model checkpoint (default: models/nexus_digits.pt)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: config)")
    p.add_argument("--config", default=None, help="demo config (default: config/demo.yaml)")
    p.add_argument("--out", default="out/demo", help="output folder for the picture and summary")
    p.add_argument("--seed", type=int, default=None, help="playback order seed")
    a = p.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    ckpt = Path(a.checkpoint) if a.checkpoint else default_checkpoint()
    if not ckpt.is_file():
        print(f"demo: the model checkpoint {ckpt} does not exist.\n{TRAIN_HINT}", file=sys.stderr)
        return 1
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:  # pragma: no cover
        pass
    cfg = _load_config(a.config)["demo"]
    duration = a.duration if a.duration is not None else 5 * float(cfg.get("phase_s", 12.0))
    if not duration > 0:
        p.error("--duration must be positive")
    try:
        run_demo(str(ckpt), duration=duration, period=a.period, device=a.device, out_dir=a.out,
                 config=a.config, seed=a.seed)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
