# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
r"""Soak test: the demo graph for N minutes with random sensor outages, then a reliability report.

The graph is the demo's (:func:`crossmodal_ros.ros.demo.build_graph`: camera, microphone and pen
playback, the inference node, the output monitor) on a two-thread executor in this process. A random
outage schedule switches the sensors on and off (every subset of camera/microphone/pen, including
none, for a few seconds each). Every ``--sample-s`` seconds the script records the process RSS
(``VmRSS`` in ``/proc/self/status``), the end-to-end latency (sensor header stamp -> output at
the monitor) p50/p99 of the outputs for new input in that window, and the messages in/out per
topic. At the end the sensors stop, the graph drains, and the report gives:

* ``crashes``: exceptions that escaped a callback (the executor re-raises them) plus any time
  the node left the ``active`` state - must be 0;
* ``rss_growth_pct``: RSS of the last sample vs the first (taken after one window, when imports
  and warm-up are done) - target under 5 %;
* ``latency_ms_p99_worst``: the highest per-window latency p99 (sensor stamp -> output, outputs for
  new input) - target <= 50 ms in every window (absolute; windows without new input, e.g. an
  outage of every sensor, are counted in ``windows_without_outputs`` and skipped). The ratio of
  the last window's p99 to the first's (``p99_ratio``) is reported, not a target;
* ``reconciliation``: per input modality, every message a sensor published was received; every
  received message was fused, superseded, dropped with a reason, expired unfused or is still
  pending (``InferenceNode.accounting()``, ``unaccounted`` must be 0); every fusion published every
  enabled output (per-topic counts at a subscriber == fusions; node ``published_count`` ==
  fusions x outputs).

Usage (network rule: loopback only, own domain)::

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=17 \
        nice -n 10 .venv/bin/python tools/soak.py --minutes 10 [--checkpoint models/nexus_digits.pt]

Exit status 0 when every target holds (``--no-targets``: only crashes and reconciliation
count, for short runs), 1 otherwise. The report is printed and written as JSON (``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import traceback
from collections import OrderedDict
from pathlib import Path

import numpy as np

try:
    import crossmodal_ros  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`: use the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Network rule (ROS_NOTES.md): loopback discovery, before anything imports rclpy.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "17")

TARGET_RSS_GROWTH_PCT = 5.0
TARGET_P99_MS = 50.0
SENSOR_SETS = ("all", "audio, trajectory", "image, trajectory", "image, audio", "image", "audio",
               "trajectory", "none")


def rss_mb() -> float:
    """Resident set size of this process in MiB (``VmRSS`` of ``/proc/self/status``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS line in /proc/self/status")


def random_schedule(duration: float, rng: random.Random, min_s: float, max_s: float):
    """An OutageSchedule over ``duration`` s: random sensor subsets for ``min_s..max_s`` each.
    Every third phase is 'all' so full fusion keeps recurring.
    """
    from crossmodal_ros.sensors.outages import OutageSchedule, Phase, parse_modalities

    phases, t, i = [], 0.0, 0
    while t < duration:
        length = rng.uniform(min_s, max_s)
        live = "all" if i % 3 == 0 else rng.choice(SENSOR_SETS)
        phases.append(Phase(round(t, 3), round(t + length, 3), parse_modalities(live)))
        t += length
        i += 1
    return OutageSchedule(tuple(phases))


def untrained_checkpoint(folder: Path) -> Path:
    """A freshly initialised Nexus checkpoint (when no trained model is available)."""
    import torch

    from crossmodal_ros.checkpoint import save_checkpoint
    from crossmodal_ros.codecs import codecs_to_dict, default_codecs
    from crossmodal_ros.models import build_model

    torch.manual_seed(0)
    return save_checkpoint(folder / "untrained_nexus.pt", build_model("nexus"),
                           codecs_to_dict(default_codecs()), half=True)


def _pct(values, q):
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


class _OutputCounter:
    """Counts every message on the node's outputs the demo monitor does not pair up."""

    def __init__(self, node, prefix: str, names):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_msgs.msg import Float32MultiArray

        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.counts = {n: 0 for n in names}
        self._subs = [node.create_subscription(Float32MultiArray, f"{prefix}/{n}",
                                               lambda m, n=n: self._on(n), qos) for n in names]

    def _on(self, name):
        self.counts[name] += 1


def run_soak(duration_s: float, checkpoint: str | None = None, period: float = 0.25,
             sample_s: float = 60.0, seed: int = 0, outage_min_s: float = 2.0,
             outage_max_s: float = 8.0, device: str = "cpu", log=print) -> dict:
    """Run the soak for ``duration_s`` seconds and return the report dict (see module doc)."""
    import rclpy
    import torch
    from rclpy.executors import MultiThreadedExecutor

    from crossmodal_ros.ros.demo import _load_config, build_graph
    from crossmodal_ros.modalities import MODALITIES
    from crossmodal_ros.paths import default_checkpoint
    from crossmodal_ros.ros.sensor_base import load_playback_dataset

    torch.set_num_threads(1)
    tmp = None
    if checkpoint is None:
        checkpoint = default_checkpoint()
        if not Path(checkpoint).is_file():
            tmp = tempfile.TemporaryDirectory(prefix="soak_")
            checkpoint = untrained_checkpoint(Path(tmp.name))
            log(f"soak: no trained model at {default_checkpoint()}; using an untrained Nexus")
    checkpoint = str(checkpoint)
    cfg = _load_config(None)
    ncfg = dict(cfg["nexus"])
    ncfg.update(device=device, staleness={"image": 0.9 * period, "audio": 0.9 * period,
                                          "trajectory": 0.9 * period, "label": 0.0})
    dataset = load_playback_dataset(str(cfg["demo"].get("dataset", "digits")),
                                    str(cfg["demo"].get("split", "test")))
    sample_rate = int(cfg["demo"].get("sample_rate", 16000))
    rng = random.Random(seed)
    schedule = random_schedule(duration_s + 5.0, rng, outage_min_s, outage_max_s)

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    graph = None
    crashes: list[str] = []
    samples: list[dict] = []
    try:
        graph = build_graph(ctx, checkpoint, ncfg, dataset, schedule, period, seed, sample_rate)
        nexus, monitor = graph.nexus, graph.monitor
        outputs = sorted(nexus.outputs.pubs)
        extra = [n for n in ("latent", "label_probs") if n in outputs]
        counter = _OutputCounter(graph.monitor_node, "/nexus", extra)
        for n in graph.nodes:
            executor.add_node(n)
        log(f"soak: {duration_s:.0f} s, model {checkpoint} on {nexus.engine.device}, one sample "
            f"every {period:g} s, {len(schedule.phases)} outage phases of {outage_min_s:g}-"
            f"{outage_max_s:g} s, outputs {outputs}")
        start = graph.start
        end = start + duration_s
        seen: "OrderedDict[float, None]" = OrderedDict()
        window_lat: list[float] = []
        window_lat_all: list[float] = []  # outputs that fused all three sensors (same work)
        records_total = 0
        next_sample = start + sample_s
        prev = {"received": dict(nexus.received), "fused": 0, "records": 0,
                "sent": {type(s).__name__: 0 for s in graph.sensors}}

        def spin(until: float) -> None:
            nonlocal records_total
            while time.time() < until:
                try:
                    executor.spin_once(timeout_sec=0.05)
                except Exception:  # noqa: BLE001 - a callback raised: that is a crash to report
                    crashes.append(traceback.format_exc())
                    log(f"soak: CRASH in a callback:\n{crashes[-1]}")
                recs = monitor.records
                while recs:  # drain: the soak keeps no per-output history (RSS stays honest)
                    rec = recs.pop(0)
                    records_total += 1
                    key = round(rec.stamp, 6)
                    if key not in seen:
                        seen[key] = None
                        if len(seen) > 2000:
                            seen.popitem(last=False)
                        window_lat.append(rec.latency_s * 1e3)
                        if len(rec.fused) == 3:
                            window_lat_all.append(rec.latency_s * 1e3)
                if nexus.lifecycle_state != "active":
                    crashes.append(f"node left the active state: {nexus.lifecycle_state}")
                    log(f"soak: {crashes[-1]}")
                    return

        spin(start)  # until playback begins
        while time.time() < end and not (crashes and "active state" in crashes[-1]):
            spin(min(next_sample, end))
            if time.time() < next_sample - 1e-3 and time.time() < end:
                continue
            sent = {type(s).__name__: s.playback.published for s in graph.sensors}
            sample = {
                "t_s": round(time.time() - start, 1),
                "rss_mb": round(rss_mb(), 1),
                "loadavg_1min": round(os.getloadavg()[0], 2),  # the machine may be shared
                "latency_ms_p50": round(_pct(window_lat, 50), 2),
                "latency_ms_p99": round(_pct(window_lat, 99), 2),
                "latency_ms_p99_all_sensors": round(_pct(window_lat_all, 99), 2),
                "inference_ms_p50": round(1e3 * (nexus.latency.percentile(50) or float("nan")), 2),
                "inference_ms_p99": round(1e3 * (nexus.latency.percentile(99) or float("nan")), 2),
                "new_input_outputs": len(window_lat),
                "in_sent": {k: v - prev["sent"][k] for k, v in sent.items()},
                "in_received": {m: nexus.received[m] - prev["received"][m] for m in MODALITIES},
                "fusions": nexus.fused_count - prev["fused"],
                "out_records": records_total - prev["records"],
            }
            samples.append(sample)
            log(f"soak: t={sample['t_s']:6.0f} s RSS {sample['rss_mb']:7.1f} MiB, latency p50 "
                f"{sample['latency_ms_p50']:6.1f} ms p99 {sample['latency_ms_p99']:6.1f} ms, load "
                f"{sample['loadavg_1min']:.1f}, "
                f"fusions {sample['fusions']}, in {sample['in_received']}")
            prev = {"received": dict(nexus.received), "fused": nexus.fused_count,
                    "records": records_total, "sent": sent}
            window_lat, window_lat_all = [], []
            next_sample += sample_s
        # drain: stop the sensors, let everything live go stale and every output arrive
        for s in graph.sensors:
            executor.remove_node(s)
        t_drain = time.time()
        spin(t_drain + 0.3)
        while nexus.live_inputs() and time.time() < t_drain + 10:
            spin(time.time() + 0.1)
        spin(time.time() + 1.0)

        def outputs_settled() -> bool:  # every published output has reached its subscriber
            got = [records_total + len(q) for name, q in monitor.queues.items() if name in outputs]
            got += list(counter.counts.values())
            return all(n == nexus.fused_count for n in got)

        while not outputs_settled() and time.time() < t_drain + 20:  # a stalled executor catches up
            spin(time.time() + 0.1)
        report = _report(nexus, graph, monitor, counter, outputs, samples, crashes, records_total,
                         duration_s, checkpoint, period, schedule)
    finally:
        executor.shutdown()  # first: no callback may be running on a node being destroyed
        if graph is not None:
            graph.destroy(executor)
        rclpy.shutdown(context=ctx)
        if tmp is not None:
            tmp.cleanup()
    return report


def _report(nexus, graph, monitor, counter, outputs, samples, crashes, records_total, duration_s,
            checkpoint, period, schedule) -> dict:
    from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY

    sent = {IMAGE: graph.sensors[0].playback.published, AUDIO: graph.sensors[1].playback.published,
            TRAJECTORY: graph.sensors[2].playback.published}
    accounting = nexus.accounting()
    for m, n in sent.items():
        accounting[m]["sent"] = n
        accounting[m]["lost_in_transport"] = n - accounting[m]["received"]
    fused = nexus.fused_count
    # The monitor pairs image/trajectory/audio_mel/label/modalities; what is still queued there
    # arrived but is not paired yet.
    per_topic = {name: records_total + len(q) for name, q in monitor.queues.items()
                 if name in outputs}
    per_topic.update(counter.counts)
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    rss_growth = (100.0 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"]
                  if len(samples) >= 2 else float("nan"))
    p99_ratio = (last["latency_ms_p99"] / first["latency_ms_p99"]
                 if len(samples) >= 2 and first["latency_ms_p99"] > 0 else float("nan"))
    window_p99 = [s["latency_ms_p99"] for s in samples if s["new_input_outputs"] > 0]
    rec_ok = (all(a["unaccounted"] == 0 for a in accounting.values())
              and all(a.get("lost_in_transport", 0) == 0 for a in accounting.values())
              and all(n == fused for n in per_topic.values())
              and nexus.published_count == fused * len(outputs))
    return {
        "duration_s": duration_s,
        "checkpoint": checkpoint,
        "device": str(nexus.engine.device) if nexus.engine is not None else "none",
        "period_s": period,
        "outage_phases": len(schedule.phases),
        "crashes": len(crashes),
        "crash_details": crashes[:5],
        "rss_mb_first": first.get("rss_mb"), "rss_mb_last": last.get("rss_mb"),
        "rss_growth_pct": round(rss_growth, 2),
        "latency_ms_p99_first": first.get("latency_ms_p99"),
        "latency_ms_p99_last": last.get("latency_ms_p99"),
        "p99_ratio": round(p99_ratio, 3),
        "latency_ms_p99_worst": max(window_p99) if window_p99 else float("nan"),
        "windows_over_target": sum(v > TARGET_P99_MS for v in window_p99),
        "windows_without_outputs": len(samples) - len(window_p99),
        "latency_ms_p99_all_sensors_first": first.get("latency_ms_p99_all_sensors"),
        "latency_ms_p99_all_sensors_last": last.get("latency_ms_p99_all_sensors"),
        "fusions": fused,
        "published_messages": nexus.published_count,
        "outputs": outputs,
        "out_per_topic": per_topic,
        "accounting": accounting,
        "dropped": {m: dict(c) for m, c in nexus.dropped.items()},
        "reconciled": bool(rec_ok),
        "samples": samples,
    }


def verdict(report: dict, targets: bool = True) -> list[str]:
    """The failed criteria of ``report`` (empty: all hold)."""
    failed = []
    if report["crashes"]:
        failed.append(f"{report['crashes']} crashes")
    if not report["reconciled"]:
        failed.append("message counts do not reconcile")
    if targets:
        if not report["rss_growth_pct"] < TARGET_RSS_GROWTH_PCT:
            failed.append(f"RSS grew {report['rss_growth_pct']} % (target < {TARGET_RSS_GROWTH_PCT} %)")
        if not report["latency_ms_p99_worst"] <= TARGET_P99_MS:
            failed.append(f"latency p99 {report['latency_ms_p99_worst']} ms in the worst window, "
                          f"{report['windows_over_target']} windows over {TARGET_P99_MS:.0f} ms "
                          f"(target <= {TARGET_P99_MS:.0f} ms in every window)")
    return failed


def print_report(report: dict, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"\n== soak report ({report['duration_s']:.0f} s, {report['device']}, "
      f"{report['outage_phases']} outage phases)")
    p(f"  crashes: {report['crashes']}")
    p(f"  RSS: {report['rss_mb_first']} -> {report['rss_mb_last']} MiB "
      f"({report['rss_growth_pct']:+.2f} %)")
    p(f"  latency p99 (sensor stamp -> output), worst window: {report['latency_ms_p99_worst']} ms "
      f"(target <= {TARGET_P99_MS:.0f} ms; {report['windows_over_target']} windows over, "
      f"{report['windows_without_outputs']} without outputs)")
    p(f"  latency p99 (sensor stamp -> output): {report['latency_ms_p99_first']} -> "
      f"{report['latency_ms_p99_last']} ms (end/start {report['p99_ratio']}); outputs fusing all "
      f"three sensors: {report['latency_ms_p99_all_sensors_first']} -> "
      f"{report['latency_ms_p99_all_sensors_last']} ms")
    p(f"  fusions {report['fusions']}, messages published {report['published_messages']} over "
      f"{len(report['outputs'])} outputs; at a subscriber: {report['out_per_topic']}")
    p(f"  {'input':11s} {'sent':>6s} {'recv':>6s} {'fused':>6s} {'supers':>6s} {'dropped':>7s} "
      f"{'expired':>7s} {'pending':>7s} {'unacc':>6s}")
    for m, a in report["accounting"].items():
        p(f"  {m:11s} {a.get('sent', '-'):>6} {a['received']:>6} {a['fused']:>6} "
          f"{a['superseded']:>6} {a['dropped']:>7} {a['expired']:>7} {a['pending']:>7} "
          f"{a['unaccounted']:>6}")
    p(f"  reconciled: {report['reconciled']}")
    p("  per sample: t [s], RSS [MiB], latency p50/p99 [ms], fusions, 1-min load average")
    for s in report["samples"]:
        p(f"    {s['t_s']:7.0f} {s['rss_mb']:8.1f} {s['latency_ms_p50']:7.1f} "
          f"{s['latency_ms_p99']:7.1f} {s['fusions']:6d} {s['loadavg_1min']:6.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    ap.add_argument("--seconds", type=float, default=None, help="soak length in seconds (overrides)")
    ap.add_argument("--sample-s", type=float, default=60.0, help="seconds per sample window")
    ap.add_argument("--period", type=float, default=0.25, help="seconds between playback samples")
    ap.add_argument("--checkpoint", default=None,
                    help="model (default models/nexus_digits.pt, else an untrained Nexus)")
    ap.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outage-min", type=float, default=2.0, help="shortest outage phase (s)")
    ap.add_argument("--outage-max", type=float, default=8.0, help="longest outage phase (s)")
    ap.add_argument("--no-targets", action="store_true",
                    help="judge only crashes and reconciliation (short runs)")
    ap.add_argument("--out", default="out/soak/soak.json", help="JSON report path")
    a = ap.parse_args(argv)
    duration = a.seconds if a.seconds is not None else 60.0 * a.minutes
    if not duration > 0 or not a.sample_s > 0 or not a.period > 0:
        ap.error("--minutes/--seconds, --sample-s and --period must be positive")
    report = run_soak(duration, a.checkpoint, a.period, a.sample_s, a.seed, a.outage_min,
                      a.outage_max, a.device,
                      log=lambda s: print(s, file=sys.stderr, flush=True))
    print_report(report)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    failed = verdict(report, targets=not a.no_targets)
    print(f"\n{'PASS' if not failed else 'FAIL: ' + '; '.join(failed)} (report: {out})")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
