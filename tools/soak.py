# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
r"""Soak test: the demo graph for N minutes with random sensor outages, then a reliability report.

The graph is the demo's (:func:`crossmodal_ros.ros.demo.build_graph`: camera, microphone and pen
playback, the inference node, the output monitor); the node runs with the shipped parameter file
(``config/nexus.yaml``), staleness set so that each output fuses one playback sample. By default
the inference node runs in its own process (``python -m crossmodal_ros.ros.inference_node``, as
``ros2 run`` and the launch files start it; its counters are read from its ``/diagnostics``, its
RSS from ``/proc/<pid>``), and the sensors and the monitor in this one; ``--in-process`` puts the
node here too, on the demo's single-threaded executor (what ``make demo`` runs). A random outage
schedule switches the sensors on and off (every subset of camera/microphone/pen, including
none, for a few seconds each). Every ``--sample-s`` seconds the script records the node's RSS
(``VmRSS`` in ``/proc/<pid>/status``), the end-to-end latency (sensor header stamp -> output at
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
  enabled output (the soak subscribes to each, since the node publishes only on topics with
  subscribers; per-topic counts at a subscriber == fusions; node ``published_count`` ==
  fusions x outputs).

With the node in its own process, ``pending`` is not reported by ``/diagnostics``: the drain
waits until the node reports no live input, when nothing can be pending, and counts it 0; a
crash is the node process exiting or its diagnostics reporting another state than ``active``.

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


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process (default: this one) in MiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS line in /proc/{pid}/status")


class InProcessNode:
    """The soak's view of an inference node in this process (attributes read directly)."""

    def __init__(self, nexus):
        self.node = nexus
        self.outputs = sorted(nexus.outputs.pubs)
        self.device = str(nexus.engine.device) if nexus.engine is not None else "none"
        self.path = nexus.engine.path if nexus.engine is not None else "none"

    def received(self) -> dict:
        return dict(self.node.received)

    def fused(self) -> int:
        return self.node.fused_count

    def published(self) -> int:
        return self.node.published_count

    def state(self) -> str:
        return self.node.lifecycle_state

    def live(self) -> bool:
        return bool(self.node.live_inputs())

    def inference_ms(self, q: float) -> float | None:
        v = self.node.latency.percentile(q)
        return None if v is None else 1e3 * v

    def accounting(self) -> dict:
        return self.node.accounting()

    def dropped(self) -> dict:
        return {m: dict(c) for m, c in self.node.dropped.items()}

    def rss(self) -> float:
        return rss_mb()


class NodeProcess:
    """The inference node in its own process; counters from its ``/diagnostics`` (1 Hz).

    ``params``: node parameters (nested dicts flatten to dotted names), passed as ``-p``.
    ``probe``: an rclpy node of this process that subscribes to the diagnostics.
    """

    def __init__(self, params: dict, probe, log_path: Path, name: str = "nexus"):
        import subprocess

        from diagnostic_msgs.msg import DiagnosticArray

        from crossmodal_ros.ros.inference_params import flatten

        self.name, self.status_name = name, f"/{name}: fusion"
        cmd = [sys.executable, "-m", "crossmodal_ros.ros.inference_node", "--ros-args", "-r", f"__node:={name}"]
        for key, value in flatten(params).items():
            cmd += ["-p", f"{key}:={json.dumps(value)}"]  # JSON is YAML: "true" stays a string
        self.log_path = log_path
        self._log = open(log_path, "w")
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.values: dict[str, str] = {}
        self.updates = 0
        probe.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.outputs: list[str] = []
        self.device = "?"
        self.path = "?"

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name == self.status_name:
                self.values = {kv.key: kv.value for kv in status.values}
                self.updates += 1
                self.device = self.values.get("device", self.device)
                self.path = self.values.get("inference path", self.path)

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def _int(self, key: str) -> int:
        return int(self.values.get(key, 0))

    def _counters(self) -> dict:
        from crossmodal_ros.ros.diagnostics import input_counters

        return input_counters(self.values)

    def received(self) -> dict:
        from crossmodal_ros.modalities import MODALITIES

        counters = self._counters()
        return {m: counters.get(m, {}).get("received", 0) for m in MODALITIES}

    def fused(self) -> int:
        return self._int("fused")

    def published(self) -> int:
        return self._int("published")

    def state(self) -> str:
        return "exited" if self.exited() else self.values.get("state", "unknown")

    def live(self) -> bool:
        return self.values.get("live inputs", "none") != "none"

    def inference_ms(self, q: float) -> float:
        if q != 50:  # /diagnostics reports the last and the median inference time
            return None
        try:
            return float(self.values["inference latency median (ms)"])
        except (KeyError, ValueError):
            return None

    def dropped(self) -> dict:
        from crossmodal_ros.modalities import MODALITIES

        counters = self._counters()
        return {m: dict(counters.get(m, {}).get("dropped", {})) for m in MODALITIES}

    def accounting(self) -> dict:
        """As ``FusionCore.accounting`` from the diagnostics; ``pending`` 0 (see the module doc)."""
        out = {}
        for m, c in self._counters().items():
            row = {"received": c["received"], "dropped": sum(c["dropped"].values()), "superseded": c["superseded"],
                   "fused": c["fused"], "expired": c["expired"], "pending": 0}
            row["unaccounted"] = row["received"] - sum(v for k, v in row.items() if k != "received")
            out[m] = row
        return out

    def rss(self) -> float:
        return rss_mb(self.pid)

    def discover_outputs(self, probe) -> dict[str, type]:
        """The node's output topics (under /<name>) and their message classes."""
        import importlib

        found = {}
        prefix = f"/{self.name}/"
        for name, types in probe.get_publisher_names_and_types_by_node(self.name, "/"):
            if name.startswith(prefix) and types and not name.endswith("/transition_event"):  # lifecycle
                pkg, _, cls = types[0].split("/")
                found[name[len(prefix):]] = getattr(importlib.import_module(f"{pkg}.msg"), cls)
        self.outputs = sorted(found)
        return found

    def stop(self) -> int:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


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


def _round(v, nd: int = 2):
    return None if v is None else round(v, nd)


def _pct(values, q):
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


class _OutputCounter:
    """Counts every message on the node's outputs the demo monitor does not pair up
    (``names``: output name -> message class).
    """

    def __init__(self, node, prefix: str, names: dict):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.counts = {n: 0 for n in names}
        self._subs = [node.create_subscription(t, f"{prefix}/{n}", lambda m, n=n: self._on(n), qos)
                      for n, t in names.items()]

    def _on(self, name):
        self.counts[name] += 1


def run_soak(duration_s: float, checkpoint: str | None = None, period: float = 0.25,
             sample_s: float = 60.0, seed: int = 0, outage_min_s: float = 2.0,
             outage_max_s: float = 8.0, device: str = "cpu", log=print, node_process: bool = True,
             node_log: str | Path | None = None) -> dict:
    """Run the soak for ``duration_s`` seconds and return the report dict (see module doc).

    ``node_process``: the inference node in its own process (its output goes to ``node_log``,
    default a temporary file); False: in this process, on the same executor as the sensors.
    """
    import rclpy
    import torch
    from rclpy.executors import SingleThreadedExecutor

    import yaml

    from crossmodal_ros.ros.demo import _load_config, build_graph
    from crossmodal_ros.modalities import MODALITIES
    from crossmodal_ros.paths import config_dir, default_checkpoint
    from crossmodal_ros.ros.sensor_base import load_playback_dataset

    torch.set_num_threads(1)
    tmp = tempfile.TemporaryDirectory(prefix="soak_")
    if checkpoint is None:
        checkpoint = default_checkpoint()
        if not Path(checkpoint).is_file():
            checkpoint = untrained_checkpoint(Path(tmp.name))
            log(f"soak: no trained model at {default_checkpoint()}; using an untrained Nexus")
    checkpoint = str(checkpoint)
    cfg = _load_config(None)
    # the node's parameters: the shipped file as a robot uses it, plus the soak's staleness (each
    # output fuses one playback sample) and device
    params_file = config_dir() / "nexus.yaml"
    ncfg = dict(yaml.safe_load(params_file.read_text())["/**"]["ros__parameters"])
    ncfg.update(device=device, staleness={"image": 0.9 * period, "audio": 0.9 * period,
                                          "trajectory": 0.9 * period, "label": 0.0})
    dataset = load_playback_dataset(str(cfg["demo"].get("dataset", "digits")),
                                    str(cfg["demo"].get("split", "test")))
    sample_rate = int(cfg["demo"].get("sample_rate", 16000))
    rng = random.Random(seed)
    schedule = random_schedule(duration_s + 5.0, rng, outage_min_s, outage_max_s)

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)  # as the demo and crossmodal_inference
    graph = proc = probe = None
    crashes: list[str] = []
    samples: list[dict] = []
    # a name of its own: another node called nexus in this domain cannot pass for the soak's
    node_name = f"soak_nexus_{os.getpid()}" if node_process else "nexus"
    prefix = f"/{node_name}"
    try:
        if node_process:
            probe = rclpy.create_node("soak_probe", context=ctx)
            executor.add_node(probe)
            node_log = Path(node_log) if node_log else Path(tmp.name) / "node.log"
            proc = NodeProcess({**ncfg, "checkpoint": checkpoint, "sample_rate": sample_rate, "autostart": True},
                               probe, node_log, name=node_name)
            t_up = time.time()
            while proc.state() != "active" and time.time() < t_up + 180:
                executor.spin_once(timeout_sec=0.1)
                if proc.exited():
                    break
            if proc.state() != "active":
                raise RuntimeError(f"the inference node process did not activate (state {proc.state()}); "
                                   f"its log {node_log}:\n{node_log.read_text()[-3000:]}")
        graph = build_graph(ctx, checkpoint, ncfg, dataset, schedule, period, seed, sample_rate,
                            prefix=prefix, external_node=node_process)
        monitor = graph.monitor
        if node_process:
            view = proc
            # the node's publishers may reach the graph a moment after it activates: wait for all
            # of its configured outputs (``audio`` exists only with griffin_lim)
            expected = {n for n in ncfg.get("outputs", []) if n and (n != "audio" or ncfg.get("griffin_lim"))}
            t_disc = time.time()
            while not expected <= set(proc.discover_outputs(probe)) and time.time() < t_disc + 15:
                executor.spin_once(timeout_sec=0.1)
            types = proc.discover_outputs(probe)
            if not expected <= set(types):
                raise RuntimeError(f"the node's outputs {sorted(expected - set(types))} were not discovered "
                                   f"within 15 s (found {sorted(types)})")
            extra = {n: t for n, t in types.items() if n not in monitor.queues}
        else:
            view = InProcessNode(graph.nexus)
            from crossmodal_ros.ros.node_io import OUTPUTS

            # every output the monitor does not pair is counted (the node publishes only to subscribers)
            extra = {n: OUTPUTS[n].msg_type for n in view.outputs if n not in monitor.queues}
        outputs = view.outputs
        counter = _OutputCounter(graph.monitor_node, prefix, extra)
        for n in graph.nodes:
            executor.add_node(n)
        log(f"soak: {duration_s:.0f} s, model {checkpoint} on {view.device} "
            f"({'own process, pid ' + str(proc.pid) if proc else 'this process'}), one sample "
            f"every {period:g} s, {len(schedule.phases)} outage phases of {outage_min_s:g}-"
            f"{outage_max_s:g} s, outputs {outputs}")
        start = graph.start
        end = start + duration_s
        seen: "OrderedDict[float, None]" = OrderedDict()
        window_lat: list[float] = []
        window_lat_all: list[float] = []  # outputs that fused all three sensors (same work)
        records_total = 0
        next_sample = start + sample_s
        prev = {"received": view.received(), "fused": 0, "records": 0,
                "sent": {type(s).__name__: 0 for s in graph.sensors}}

        def node_down() -> bool:
            return bool(crashes) and crashes[-1].startswith("node ")

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
                if view.state() != "active":
                    crashes.append(f"node left the active state: {view.state()}")
                    log(f"soak: {crashes[-1]}")
                    return

        spin(start)  # until playback begins
        while time.time() < end and not node_down():
            spin(min(next_sample, end))
            if time.time() < next_sample - 1e-3 and time.time() < end:
                continue
            sent = {type(s).__name__: s.playback.published for s in graph.sensors}
            received = view.received()
            sample = {
                "t_s": round(time.time() - start, 1),
                "rss_mb": round(view.rss(), 1),
                "loadavg_1min": round(os.getloadavg()[0], 2),  # the machine may be shared
                "latency_ms_p50": round(_pct(window_lat, 50), 2),
                "latency_ms_p99": round(_pct(window_lat, 99), 2),
                "latency_ms_p99_all_sensors": round(_pct(window_lat_all, 99), 2),
                "inference_ms_p50": _round(view.inference_ms(50)),
                "inference_ms_p99": _round(view.inference_ms(99)),  # None: not reported
                "new_input_outputs": len(window_lat),
                "in_sent": {k: v - prev["sent"][k] for k, v in sent.items()},
                "in_received": {m: received[m] - prev["received"][m] for m in MODALITIES},
                "fusions": view.fused() - prev["fused"],
                "out_records": records_total - prev["records"],
            }
            samples.append(sample)
            log(f"soak: t={sample['t_s']:6.0f} s RSS {sample['rss_mb']:7.1f} MiB, latency p50 "
                f"{sample['latency_ms_p50']:6.1f} ms p99 {sample['latency_ms_p99']:6.1f} ms, load "
                f"{sample['loadavg_1min']:.1f}, "
                f"fusions {sample['fusions']}, in {sample['in_received']}")
            prev = {"received": received, "fused": view.fused(), "records": records_total, "sent": sent}
            window_lat, window_lat_all = [], []
            next_sample += sample_s
        # drain: stop the sensors, let everything live go stale and every output arrive
        for s in graph.sensors:
            executor.remove_node(s)
        t_drain = time.time()
        spin(t_drain + 0.3)
        updates0 = proc.updates if proc else 0
        while (view.live() or (proc is not None and proc.updates < updates0 + 2)) and time.time() < t_drain + 10:
            spin(time.time() + 0.1)  # the node's diagnostics (1 Hz) must report after the inputs went stale
        spin(time.time() + 1.0)

        def outputs_settled() -> bool:  # every published output has reached its subscriber
            got = [records_total + len(q) for name, q in monitor.queues.items() if name in outputs]
            got += list(counter.counts.values())
            return all(n == view.fused() for n in got)

        while not outputs_settled() and time.time() < t_drain + 20:  # a stalled executor catches up
            spin(time.time() + 0.1)
        if proc is not None:  # one more report after the last output arrived
            updates0 = proc.updates
            while proc.updates < updates0 + 1 and time.time() < t_drain + 25:
                spin(time.time() + 0.1)
        report = _report(view, graph, monitor, counter, outputs, samples, crashes, records_total,
                         duration_s, checkpoint, period, schedule)
    finally:
        # first: no callback may be running on a node being destroyed; a MultiThreadedExecutor's
        # pool runs what is queued before the executor's guard goes (demo.close_graph)
        pool = getattr(executor, "_executor", None)
        if pool is not None:
            pool.shutdown(wait=True)
        executor.shutdown()
        if graph is not None:
            graph.destroy(executor)
        if probe is not None:
            probe.destroy_node()
        rclpy.shutdown(context=ctx)
        if proc is not None:
            code = proc.stop()
            if graph is not None and code not in (0, None):
                log(f"soak: the node process exited with {code}; log {proc.log_path}")
        tmp.cleanup()
    report["node"] = "own process" if node_process else "in process"
    return report


def _report(view, graph, monitor, counter, outputs, samples, crashes, records_total, duration_s,
            checkpoint, period, schedule) -> dict:
    from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY

    sent = {IMAGE: graph.sensors[0].playback.published, AUDIO: graph.sensors[1].playback.published,
            TRAJECTORY: graph.sensors[2].playback.published}
    accounting = view.accounting()
    for m, n in sent.items():
        accounting[m]["sent"] = n
        accounting[m]["lost_in_transport"] = n - accounting[m]["received"]
    fused = view.fused()
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
              and view.published() == fused * len(outputs))
    return {
        "duration_s": duration_s,
        "checkpoint": checkpoint,
        "device": view.device,
        "inference_path": view.path,
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
        "published_messages": view.published(),
        "outputs": outputs,
        "out_per_topic": per_topic,
        "accounting": accounting,
        "dropped": view.dropped(),
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
    p(f"\n== soak report ({report['duration_s']:.0f} s, {report['device']}, path {report.get('inference_path', '?')}, "
      f"node {report.get('node', '?')}, "
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
    ap.add_argument("--in-process", action="store_true",
                    help="run the inference node in this process (default: its own process)")
    ap.add_argument("--node-log", default=None, help="where the node process's output goes")
    ap.add_argument("--no-targets", action="store_true",
                    help="judge only crashes and reconciliation (short runs)")
    ap.add_argument("--out", default="out/soak/soak.json", help="JSON report path")
    a = ap.parse_args(argv)
    duration = a.seconds if a.seconds is not None else 60.0 * a.minutes
    if not duration > 0 or not a.sample_s > 0 or not a.period > 0:
        ap.error("--minutes/--seconds, --sample-s and --period must be positive")
    report = run_soak(duration, a.checkpoint, a.period, a.sample_s, a.seed, a.outage_min,
                      a.outage_max, a.device,
                      log=lambda s: print(s, file=sys.stderr, flush=True), node_process=not a.in_process,
                      node_log=a.node_log)
    print_report(report)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    failed = verdict(report, targets=not a.no_targets)
    print(f"\n{'PASS' if not failed else 'FAIL: ' + '; '.join(failed)} (report: {out})")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
