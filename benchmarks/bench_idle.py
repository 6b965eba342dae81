# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Benchmark: what a pause between fusions costs on this machine, and the latent-only CPU ratio
with and without pauses (issue 11).

In the running node (``bench_ros_latency.py``) a fusion starts about every 29 ms (a 30 Hz camera,
2 Hz audio, 2 Hz strokes) and the node's thread sleeps in between. This script separates what
that rhythm costs from what the node's code costs, in one process, without other processes:

1. **The machine.** A chain of float32 matrix-vector products (torch, one thread; 512-wide
   ``tanh(x @ W)``) over 1, 4 and 16 MiB of weights. Each repeat times the chain (thread CPU
   time and wall time) in four ways, interleaved: back to back; after a ``--gap-ms`` sleep;
   after the same time in a busy loop (the thread keeps its core, so an idle state of the CPU
   cannot explain what it pays); after a sleep and one untimed run of the same chain (which
   restores what that run leaves behind: caches, TLBs, branch predictors).
2. **The node.** The real ``InferenceNode`` (the shipped ``config/nexus.yaml``, with the rate
   limit lifted to ``max_rate_hz`` 1000 and ``max_burst`` 1000 so that every input is fused in its
   own callback in both conditions; ``num_threads`` from ``--threads``; startup objects frozen
   for the garbage collector, as ``crossmodal_inference`` does), fed real messages through its
   subscription callback: the ROS latency benchmark's publisher inputs (real test-split digits:
   28x28 mono8 frames with per-frame sensor noise, 1 s audio windows, 100-point strokes; cycles of
   15 frames, one audio window, one stroke). A second
   node in this process subscribes either to ``~/latent_stamped`` only or to every output; with
   lazy outputs the node then decodes nothing or everything. Per input: the main thread's CPU
   time (``time.thread_time``) in the callback (conversion, codec, model, publishing). Each
   message is built before the pause, so no untimed work warms the callback's path (the running
   node deserializes each message just before its callback; that is not in this measure, nor
   are the executor, the DDS transport and the other processes of the running node).

   Conditions: inputs back to back, and inputs ``--gap-ms`` apart (sleeping; in the running
   node the pause is the period minus the fusion, so a little shorter with every output).
   ``--rounds`` rounds, each running every (condition, subscription) block of ``--inputs`` inputs
   (a multiple of 17, so that every block holds the same mix) after one untimed cycle, the order
   of the subscriptions alternating between rounds; per round the ratio of the mean CPU per
   input with every output to that with the latent only; the median over the rounds.

Writes ``benchmarks/results/idle.json`` and draws it in ``idle.png`` beside it. ROS runs on
loopback (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, ``ROS_DOMAIN_ID`` from the environment,
default 76). Licence: Apache-2.0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # network rule: loopback only
os.environ.setdefault("ROS_DOMAIN_ID", "76")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, load_average, set_threads, table, write_result  # noqa: E402

#: inputs per cycle: 15 camera frames, one audio window, one stroke (30 : 2 : 2 Hz)
CYCLE = 17
#: the pause kinds of the chain, in their order within a repeat
PAUSES = ("none", "sleep", "busy", "sleep_rerun")


def _pause(kind: str, seconds: float) -> None:
    """Let ``seconds`` pass: asleep (``sleep``, ``sleep_rerun``), in a busy loop, or not (``none``)."""
    if kind in ("sleep", "sleep_rerun"):
        time.sleep(seconds)
    elif kind == "busy":
        t = time.perf_counter()
        while time.perf_counter() - t < seconds:
            pass
    elif kind != "none":
        raise ValueError(f"unknown pause {kind!r}")


def cpu_facts() -> dict:
    """What the pause cost depends on: a hypervisor, and the cache sizes (Linux sysfs)."""
    facts = {"hypervisor": None, "caches": {}}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                facts["hypervisor"] = " hypervisor" in line
                break
        for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            facts["caches"][f"L{level} {kind}"] = (index / "size").read_text().strip()
    except OSError:
        pass
    return facts


def machine_part(gap_s: float, repeats: int) -> list[dict]:
    """Median thread CPU time and wall time of the product chain over each weight size, after
    each kind of pause (the kinds interleaved within each repeat).
    """
    import torch

    rows = []
    for mib in (1, 4, 16):
        weights = [torch.randn(512, 512) for _ in range(mib)]  # 1 MiB each
        x = torch.randn(1, 512)

        def chain():
            y = x
            for w in weights:
                y = torch.tanh(y @ w)
            return y

        cpu = {kind: [] for kind in PAUSES}
        wall = {kind: [] for kind in PAUSES}
        chain()
        for _ in range(repeats):
            for kind in PAUSES:
                _pause(kind, gap_s)
                if kind == "sleep_rerun":
                    chain()  # untimed: the timed call finds what this one left behind
                c0, w0 = time.thread_time(), time.perf_counter()
                chain()
                c1, w1 = time.thread_time(), time.perf_counter()
                cpu[kind].append(c1 - c0)
                wall[kind].append(w1 - w0)
        row = {"weights_mib": mib}
        for kind in PAUSES:
            row[f"{kind}_us"] = round(1e6 * statistics.median(cpu[kind]), 1)
            row[f"{kind}_wall_us"] = round(1e6 * statistics.median(wall[kind]), 1)
        for kind in PAUSES[1:]:
            row[f"{kind}_over_none"] = round(row[f"{kind}_us"] / row["none_us"], 2)
        rows.append(row)
    return rows


class NodeHarness:
    """The inference node in this process, a subscriber node beside it, and the inputs."""

    def __init__(self, threads: int, backend: str = ""):
        import rclpy
        import yaml

        from crossmodal_ros.ros import conversions as conv
        from crossmodal_ros.ros import node_io
        from crossmodal_ros.ros.inference_node import make_node
        from crossmodal_ros.ros.inference_params import freeze_startup_objects
        from crossmodal_ros.ros.qos import output_qos

        from bench_ros_latency import OUTPUT_TYPES, bench_inputs

        params = yaml.safe_load((ROOT / "config" / "nexus.yaml").read_text())["/**"]["ros__parameters"]
        params.update(max_rate_hz=1000.0, max_burst=1000, num_threads=int(threads))
        if backend:
            params["backend"] = backend
        rclpy.init()
        self.rclpy, self.conv, self.node_io, self.output_qos = rclpy, conv, node_io, output_qos
        self.node = make_node(**params)
        if self.node.core.last_error:
            raise RuntimeError(f"the node did not configure: {self.node.core.last_error}")
        freeze_startup_objects()
        self.sub_node = rclpy.create_node("bench_idle_subscriber")
        self.subs: list = []
        # every output the ROS latency benchmark reads ("audio" needs griffin_lim, off when shipped)
        self.topics = {"latent": ("latent_stamped",), "all": tuple(OUTPUT_TYPES)}
        self.frames, self.encoding, self.windows, self.strokes = bench_inputs("28")
        self.count = 0
        self.sent = {"image": 0, "audio": 0, "trajectory": 0}

    def subscribe(self, mode: str) -> None:
        """Subscribe to ``mode``'s outputs and wait until the node sees exactly those."""
        for sub in self.subs:
            self.sub_node.destroy_subscription(sub)
        self.subs = [self.sub_node.create_subscription(self.node_io.OUTPUTS[name].msg_type, f"/nexus/{name}",
                                                       lambda _msg: None, self.output_qos())
                     for name in self.topics[mode]]
        want = frozenset(self.topics[mode]) & frozenset(self.node.outputs.pubs)
        deadline = time.monotonic() + 10.0
        while self.node.outputs.subscribed() != want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node sees subscribers on {sorted(self.node.outputs.subscribed())}, "
                                   f"expected {sorted(want)}")
            time.sleep(0.02)

    def _next_message(self):
        """The next input ``(modality, message)``: 15 frames, then an audio window and a stroke,
        each stream in the publisher's order.
        """
        pos = self.count % CYCLE
        self.count += 1
        modality = "audio" if pos == 15 else "trajectory" if pos == 16 else "image"
        k = self.sent[modality]
        self.sent[modality] += 1
        stamp = self.node.get_clock().now().to_msg()
        if modality == "audio":
            return modality, self.conv.numpy_to_audio(self.windows[k % len(self.windows)])
        if modality == "trajectory":
            return modality, self.conv.numpy_to_path(self.strokes[k % len(self.strokes)], stamp=stamp, frame_id="pen")
        return modality, self.conv.numpy_to_image(self.frames[k % len(self.frames)], self.encoding, stamp=stamp,
                                                  frame_id="cam")

    def block(self, n: int, gap_s: float, warmup: int = CYCLE) -> list[float]:
        """CPU seconds per input of ``n`` inputs (after ``warmup``), ``gap_s`` of sleep before each
        (the message is built before the sleep).
        """
        on_message = self.node.inputs.on_message
        out = []
        for i in range(n + warmup):
            modality, msg = self._next_message()
            if gap_s:
                time.sleep(gap_s)
            c0 = time.thread_time()
            on_message(modality, msg)
            c1 = time.thread_time()
            if i >= warmup:
                out.append(c1 - c0)
        return out

    def close(self) -> None:
        self.node.destroy_node()
        self.sub_node.destroy_node()
        self.rclpy.try_shutdown()


def node_part(args) -> tuple[list[dict], list[dict]]:
    """Per round, condition and subscription: the mean and median CPU per input; per condition
    the rounds' ratios (every output / latent only) and their median.
    """
    h = NodeHarness(args.threads, args.backend)
    args.path = h.node.engine.path
    conditions = {"back_to_back": 0.0, "paused": args.gap_ms / 1e3}
    blocks = []
    try:
        fused0 = h.node.core.fused_count
        h.block(0, 0.0)  # one untimed cycle: every input is in the store before round 0
        for k in range(args.rounds):
            order = ("latent", "all") if k % 2 == 0 else ("all", "latent")
            for mode in order:
                h.subscribe(mode)
                for cond, gap in conditions.items():
                    cpu = h.block(args.inputs, gap)
                    blocks.append({"round": k, "condition": cond, "subscribe": mode, "inputs": len(cpu),
                                   "cpu_mean_ms": round(1e3 * statistics.fmean(cpu), 4),
                                   "cpu_median_ms": round(1e3 * statistics.median(cpu), 4)})
                    print(f"round {k} {mode:6s} {cond:12s} mean {blocks[-1]['cpu_mean_ms']:.3f} ms "
                          f"median {blocks[-1]['cpu_median_ms']:.3f} ms", flush=True)
        fusions = h.node.core.fused_count - fused0
        inputs = h.count
    finally:
        h.close()
    if fusions != inputs:
        raise RuntimeError(f"{inputs} inputs but {fusions} fusions: an input was not fused in its callback")
    summary = []
    for cond in conditions:
        ratios, lat, full = [], [], []
        for k in range(args.rounds):
            by = {b["subscribe"]: b["cpu_mean_ms"] for b in blocks if b["round"] == k and b["condition"] == cond}
            lat.append(by["latent"])
            full.append(by["all"])
            ratios.append(round(by["all"] / by["latent"], 3))
        summary.append({"condition": cond, "gap_ms": round(1e3 * conditions[cond], 1),
                        "latent_cpu_ms": statistics.median(lat), "all_cpu_ms": statistics.median(full),
                        "ratios": ratios, "ratio_median": statistics.median(ratios)})
    return blocks, summary


def plot(result: dict, out: Path) -> Path:
    """``idle.png``: the chain's median per weight size and pause (left) and the node's CPU per
    input, latent only and every output, back to back and paused, with each condition's ratio
    (right).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chain, node = result.get("matrix_chain") or [], result.get("node") or []
    if not chain or not node:
        raise ValueError("the result has no matrix_chain or node rows to plot")
    kinds = (("none", "back to back"), ("sleep", "after a sleep"), ("busy", "after a busy loop"),
             ("sleep_rerun", "after a sleep and an untimed rerun"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(kinds)
    for j, (key, label) in enumerate(kinds):
        ax1.bar([i + j * width for i in range(len(chain))], [r[f"{key}_us"] for r in chain], width, label=label)
    ax1.set_xticks([i + 0.4 - width / 2 for i in range(len(chain))])
    ax1.set_xticklabels([f"{r['weights_mib']} MiB" for r in chain])
    ax1.set_ylabel("median us per chain")
    ax1.set_title(f"the machine: a chain of float32 matrix-vector products, pause {result.get('gap_ms')} ms",
                  fontsize=9)
    ax1.legend(fontsize=8, frameon=False)
    for j, (key, label) in enumerate((("latent_cpu_ms", "latent only"), ("all_cpu_ms", "every output"))):
        ax2.bar([i + j * 0.4 for i in range(len(node))], [r[key] for r in node], 0.4, label=label)
    for i, r in enumerate(node):
        ax2.annotate(f"{r['ratio_median']:.2f}x", (i + 0.4, r["all_cpu_ms"]), ha="center", va="bottom", fontsize=9)
    ax2.set_xticks([i + 0.2 for i in range(len(node))])
    ax2.set_xticklabels([f"{r['condition'].replace('_', ' ')} ({r['gap_ms']} ms)" for r in node])
    ax2.set_ylabel("callback CPU per input, ms")
    ax2.set_title("the inference node in one process (label: every output / latent only)", fontsize=9)
    ax2.legend(fontsize=8, frameon=False, loc="upper left")
    machine = result.get("machine", {})
    fig.suptitle(f"{result.get('created', '')}  {machine.get('cpu', '')}  torch {machine.get('torch', '')}, "
                 f"load {(result.get('load_before') or ['?'])[0]}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gap-ms", type=float, default=29.4, help="pause before each input (default: 1 / 34 s, the "
                    "running benchmark's 30 + 2 + 2 inputs a second)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds of latent-only and every-output blocks")
    ap.add_argument("--inputs", type=int, default=10 * CYCLE,
                    help=f"timed inputs per block, a multiple of {CYCLE} (cycles of 15 frames, audio, stroke)")
    ap.add_argument("--repeats", type=int, default=100, help="timed chains per weight size and pause")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the chain and the node")
    ap.add_argument("--backend", default="", help="the node's backend parameter (default: the parameter file's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.gap_ms <= 0 or args.rounds < 1 or args.inputs < 1 or args.repeats < 1:
        ap.error("--gap-ms, --rounds, --inputs and --repeats must be positive")
    if args.inputs % CYCLE:
        ap.error(f"--inputs must be a multiple of {CYCLE}, so that every block holds the same inputs")
    set_threads(args.threads)
    load0 = load_average()
    chain = machine_part(args.gap_ms / 1e3, args.repeats)
    print(table(chain, ["weights_mib", *(f"{k}_us" for k in PAUSES), *(f"{k}_over_none" for k in PAUSES[1:])],
                f"matrix-vector chain, median thread CPU us: back to back, after {args.gap_ms} ms asleep, after a "
                "busy loop, asleep and run once untimed"))
    blocks, summary = node_part(args)
    print(table(summary, ["condition", "gap_ms", "latent_cpu_ms", "all_cpu_ms", "ratio_median"],
                f"node callback CPU per input, path {args.path} (median over rounds of the block means); ratio: "
                "median of the rounds' every output / latent only"))
    for row in summary:
        print(f"{row['condition']}: ratios {row['ratios']}")
    path = write_result("idle", {"gap_ms": args.gap_ms, "rounds": args.rounds, "inputs_per_block": args.inputs,
                                 "warmup_inputs_per_block": CYCLE, "repeats": args.repeats, "threads": args.threads,
                                 "backend": args.backend or "parameter file", "inference_path": args.path,
                                 "ros_domain_id": os.environ.get("ROS_DOMAIN_ID"), "cpu_facts": cpu_facts(),
                                 "load_before": load0, "load_after": load_average(), "matrix_chain": chain,
                                 "node": summary, "node_blocks": blocks}, args.out)
    print(f"wrote {path}")
    print(f"wrote {plot(json.loads(path.read_text()), path.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
