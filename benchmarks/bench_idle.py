# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Benchmark: what a pause between fusions costs on this machine, and the latent-only CPU ratio
with and without pauses (issue 11).

In the running node (``bench_ros_latency.py``) a fusion starts about every 29 ms (a 30 Hz camera,
2 Hz audio, 2 Hz strokes) and the node's thread sleeps in between. This script separates what
that rhythm costs from what the node's code costs, in one process, without other processes:

1. **The machine.** A chain of float32 matrix-vector products (torch, one thread; 512-wide
   ``tanh(x @ W)``) over 1, 4 and 16 MiB of weights, timed back to back, after a ``--gap-ms``
   sleep, after the same time spent in a busy loop (the thread keeps its core, so CPU idle
   states cannot explain a difference), and after a sleep and one untimed run of the same chain
   (which leaves its weights and code in the caches for the timed run).
2. **The node.** The real ``InferenceNode`` (the shipped ``config/nexus.yaml``, with the rate
   limit lifted to ``max_rate_hz`` 1000 and ``max_burst`` 1000 so that every input is fused in its
   own callback in both conditions), fed real messages through its subscription callback: the
   ROS latency benchmark's publisher inputs (28x28 mono8 frames, 1 s audio windows, 60-point
   strokes, one audio window and one stroke per 15 frames). A second node in this process
   subscribes either to ``~/latent_stamped`` only or to every output; with lazy outputs the node
   then decodes nothing or everything. Per input: the main thread's CPU time
   (``time.thread_time``) in the callback (conversion, codec, model, publishing), messages built
   outside the timed part. The executor, the DDS transport and the other processes of the
   running node are not in it.

   Conditions: inputs back to back, and inputs ``--gap-ms`` apart (sleeping). ``--pairs`` rounds,
   each running every (condition, subscription) block of ``--inputs`` inputs, the order of the
   subscriptions alternating between rounds; per round the ratio of the mean CPU per input with
   every output to that with the latent only; the median over the rounds.

Writes ``benchmarks/results/idle.json`` and draws it in ``idle.png`` beside it. ROS runs on
loopback (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, ``ROS_DOMAIN_ID`` from the environment,
default 74). Licence: Apache-2.0.
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
os.environ.setdefault("ROS_DOMAIN_ID", "74")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, load_average, set_threads, table, write_result  # noqa: E402

#: the node's outputs (what a subscriber to "every output" reads; ``audio`` needs griffin_lim)
EVERY_OUTPUT = ("image", "audio_mel", "trajectory", "label", "label_probs", "latent", "modalities", "latent_stamped")
SUBSCRIBE = {"latent": ("latent_stamped",), "all": EVERY_OUTPUT}


def _pause(kind: str, seconds: float) -> None:
    if kind == "sleep":
        time.sleep(seconds)
    elif kind == "busy":
        t = time.perf_counter()
        while time.perf_counter() - t < seconds:
            pass


def machine_part(gap_s: float, repeats: int) -> list[dict]:
    """Median wall time of the product chain over each weight size, after each kind of pause."""
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

        row = {"weights_mib": mib}
        for kind in ("none", "sleep", "busy", "sleep_rerun"):
            chain()
            times = []
            for _ in range(repeats):
                _pause("sleep" if kind == "sleep_rerun" else kind, gap_s)
                if kind == "sleep_rerun":
                    chain()  # untimed: the timed call finds what this one left in the caches
                t0 = time.perf_counter()
                chain()
                times.append(time.perf_counter() - t0)
            row[f"{kind}_us"] = round(1e6 * statistics.median(times), 1)
        row["sleep_over_none"] = round(row["sleep_us"] / row["none_us"], 2)
        row["busy_over_none"] = round(row["busy_us"] / row["none_us"], 2)
        row["sleep_rerun_over_none"] = round(row["sleep_rerun_us"] / row["none_us"], 2)
        rows.append(row)
    return rows


class NodeHarness:
    """The inference node in this process, a subscriber node beside it, and the inputs."""

    def __init__(self):
        import rclpy
        import yaml

        from crossmodal_ros.ros import conversions as conv
        from crossmodal_ros.ros import node_io
        from crossmodal_ros.ros.nexus_node import make_node
        from crossmodal_ros.ros.qos import output_qos

        from bench_ros_latency import bench_inputs

        params = yaml.safe_load((ROOT / "config" / "nexus.yaml").read_text())["/**"]["ros__parameters"]
        params.pop("executor", None)  # a spin parameter of the node's process, not of the node
        params.update(max_rate_hz=1000.0, max_burst=1000)
        rclpy.init()
        self.rclpy, self.conv, self.node_io, self.output_qos = rclpy, conv, node_io, output_qos
        self.node = make_node(**params)
        if self.node.core.last_error:
            raise RuntimeError(f"the node did not configure: {self.node.core.last_error}")
        self.sub_node = rclpy.create_node("bench_idle_subscriber")
        self.subs: list = []
        self.frames, encoding, self.windows, self.strokes = bench_inputs("28")
        self.encoding = encoding
        self.count = 0

    def subscribe(self, mode: str) -> None:
        """Subscribe to ``mode``'s outputs and wait until the node sees exactly those."""
        for sub in self.subs:
            self.sub_node.destroy_subscription(sub)
        self.subs = [self.sub_node.create_subscription(self.node_io.OUTPUTS[name].msg_type, f"/nexus/{name}",
                                                       lambda _msg: None, self.output_qos())
                     for name in SUBSCRIBE[mode]]
        want = frozenset(SUBSCRIBE[mode]) & frozenset(self.node.outputs.pubs)
        deadline = time.monotonic() + 10.0
        while self.node.outputs.subscribed() != want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node sees subscribers on {sorted(self.node.outputs.subscribed())}, "
                                   f"expected {sorted(want)}")
            time.sleep(0.02)

    def _next_message(self):
        """The next input ``(modality, message)``: 15 frames, then an audio window and a stroke."""
        k, self.count = self.count, self.count + 1
        cycle, pos = divmod(k, 17)
        stamp = self.node.get_clock().now().to_msg()
        if pos == 15:
            return "audio", self.conv.numpy_to_audio(self.windows[cycle % 4])
        if pos == 16:
            return "trajectory", self.conv.numpy_to_path(self.strokes[cycle % 4], stamp=stamp, frame_id="pen")
        return "image", self.conv.numpy_to_image(self.frames[k % 10], self.encoding, stamp=stamp, frame_id="cam")

    def block(self, n: int, gap_s: float, warmup: int = 5) -> list[float]:
        """CPU seconds per input of ``n`` inputs (after ``warmup``), ``gap_s`` of sleep before each."""
        on_message = self.node.inputs.on_message
        out = []
        for i in range(n + warmup):
            if gap_s:
                time.sleep(gap_s)
            modality, msg = self._next_message()
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
    h = NodeHarness()
    conditions = {"back_to_back": 0.0, "paused": args.gap_ms / 1e3}
    blocks = []
    try:
        fused0 = h.node.core.fused_count
        for k in range(args.pairs):
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
        for k in range(args.pairs):
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
    ap.add_argument("--gap-ms", type=float, default=29.4, help="pause before each input (default: 34 inputs/s, "
                    "the running benchmark's 30 + 2 + 2 Hz)")
    ap.add_argument("--pairs", type=int, default=4, help="rounds of latent-only and every-output blocks")
    ap.add_argument("--inputs", type=int, default=170, help="inputs per block (10 cycles of 15 frames, audio, stroke)")
    ap.add_argument("--repeats", type=int, default=100, help="product chains per weight size and pause")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.gap_ms <= 0 or args.pairs < 1 or args.inputs < 1 or args.repeats < 1:
        ap.error("--gap-ms, --pairs, --inputs and --repeats must be positive")
    set_threads(args.threads)
    load0 = load_average()
    chain = machine_part(args.gap_ms / 1e3, args.repeats)
    print(table(chain, ["weights_mib", "none_us", "sleep_us", "busy_us", "sleep_rerun_us", "sleep_over_none",
                        "busy_over_none", "sleep_rerun_over_none"],
                f"matrix-vector chain, median us: back to back, after {args.gap_ms} ms asleep, after a busy loop, "
                "asleep and run once untimed"))
    blocks, summary = node_part(args)
    print(table(summary, ["condition", "gap_ms", "latent_cpu_ms", "all_cpu_ms", "ratio_median"],
                "node callback CPU per input (median over rounds of the block means), every output / latent only"))
    for row in summary:
        print(f"{row['condition']}: ratios {row['ratios']}")
    path = write_result("idle", {"gap_ms": args.gap_ms, "pairs": args.pairs, "inputs_per_block": args.inputs,
                                 "load_before": load0, "load_after": load_average(), "matrix_chain": chain,
                                 "node": summary, "node_blocks": blocks}, args.out)
    print(f"wrote {path}")
    print(f"wrote {plot(json.loads(path.read_text()), path.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
