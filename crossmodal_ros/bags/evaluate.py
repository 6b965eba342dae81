# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Offline evaluation of a sensor bag: the inference node's fusion logic over bag time.

No graph runs and no ROS is needed: messages are decoded by :mod:`crossmodal_ros.bags.reader`
with the node's decoders, stored in the node's keep-latest store
(:class:`crossmodal_ros.fusion_store.LatestSamples`, per-modality staleness windows, on bag
time) and fused by the node's own scheduler
(:class:`crossmodal_ros.fusion_policy.FusionScheduler`, driven by :func:`drive_timeline` with
the node's timer deadlines), so the evaluator decides exactly as the node:

* new input fuses at once, unless the rate limit is spent (a token bucket of ``max_burst``
  tokens refilled at ``max_rate_hz``; with ``max_burst`` 1, as config/replay.yaml: the last
  *fresh* fusion was less than ``1 / max_rate_hz`` ago); then the timer tick set for the
  refill picks it up (bursts coalesce);
* heartbeats only fill silence: with nothing new for ``1 / heartbeat_hz`` while anything is
  live; they never count against ``max_rate_hz``.

Each fusion runs the :class:`~crossmodal_ros.engine.FusionEngine` on the live inputs. Outputs
are scored against ``/label/truth`` (the most recent truth at or before the newest fused input's
stamp). Sensors of one sample arrive a few milliseconds apart and fusion is prompt, so a sample
first yields partial fusions and then the complete one: accuracy counts each sample once, by
its settled output (the fusion with the most inputs). The report gives, per fused subset, the
number of outputs (partial fusions and heartbeats included), the samples settled on that subset
and their accuracy, and the output rates over bag time. Usage::

    bag_eval out/digits_test --checkpoint models/nexus_digits.pt --json out/eval.json
"""
from __future__ import annotations

import argparse
import bisect
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crossmodal_ros.bags.format import TRUTH_TOPIC, BagError, bag_custom_data
from crossmodal_ros.bags.reader import read_bag_inputs
from crossmodal_ros.fusion_policy import FRESH, FusionScheduler
from crossmodal_ros.fusion_store import LatestSamples, Sample, newest
from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, MODALITIES, TRAJECTORY, subset_name

__all__ = ["FusionSettings", "EvalReport", "drive_timeline", "evaluate_bag", "main"]


@dataclass(frozen=True)
class FusionSettings:
    """The inference node's fusion parameters (defaults as in config/replay.yaml)."""

    max_rate_hz: float = 20.0
    heartbeat_hz: float = 5.0
    staleness: dict = field(default_factory=lambda: {IMAGE: 0.9, AUDIO: 0.9, TRAJECTORY: 0.9, LABEL: 0.0})
    max_burst: int = 1

    def __post_init__(self):
        if not self.max_rate_hz > 0:
            raise BagError(f"max_rate_hz must be positive, got {self.max_rate_hz}")
        if not 0 <= self.heartbeat_hz <= self.max_rate_hz:
            raise BagError("heartbeat_hz must be in [0, max_rate_hz]")
        try:  # the rest as the node's scheduler checks it
            FusionScheduler(self.max_rate_hz, self.heartbeat_hz, self.max_burst)
        except ValueError as exc:
            raise BagError(str(exc)) from exc


@dataclass
class EvalReport:
    """Evaluation result; :meth:`as_dict` is JSON-able and :meth:`table` is for people."""

    bag: str
    duration_s: float
    outputs: int
    prompt_outputs: int
    heartbeat_outputs: int
    per_subset: dict  # subset name -> {"outputs", "samples", "correct", "accuracy"}
    inputs: dict  # modality -> messages
    invalid: dict  # modality -> undecodable messages
    mean_infer_ms: float
    inference_path: str = ""  # the engine's path (FusionEngine.path): fast, fast-int8, onnx, ...

    @property
    def output_rate_hz(self) -> float:
        return self.outputs / self.duration_s if self.duration_s > 0 else float("nan")

    @property
    def accuracy(self) -> float | None:
        """Accuracy over settled samples; None when no sample settled."""
        n = sum(v["samples"] for v in self.per_subset.values())
        c = sum(v["correct"] for v in self.per_subset.values())
        return c / n if n else None

    @property
    def samples(self) -> int:
        """Samples with a settled output (each scored once, by its most complete fusion)."""
        return sum(v["samples"] for v in self.per_subset.values())

    def as_dict(self) -> dict:
        return {
            "bag": self.bag, "duration_s": self.duration_s, "outputs": self.outputs,
            "prompt_outputs": self.prompt_outputs, "heartbeat_outputs": self.heartbeat_outputs,
            "output_rate_hz": self.output_rate_hz, "accuracy": self.accuracy,
            "samples": self.samples,
            "per_subset": self.per_subset, "inputs": self.inputs, "invalid": self.invalid,
            "mean_infer_ms": self.mean_infer_ms, "inference_path": self.inference_path,
        }

    def table(self) -> str:
        lines = [f"bag {self.bag}: {self.duration_s:.1f} s of bag time, inputs "
                 + ", ".join(f"{m} {n}" for m, n in self.inputs.items()),
                 f"{'fused subset':32s} {'outputs':>8s} {'samples':>8s} {'accuracy':>9s}"]
        for name, v in sorted(self.per_subset.items()):
            lines.append(f"{name:32s} {v['outputs']:8d} {v['samples']:8d} {_acc(v['accuracy']):>9s}")
        lines.append(f"{'all':32s} {self.outputs:8d} {self.samples:8d} {_acc(self.accuracy):>9s}")
        if any(v["samples"] == 0 for v in self.per_subset.values()):
            lines.append("accuracy '-': the subset had outputs (partial fusions or heartbeats) but "
                         "no sample settled on it")
        lines.append(f"output rate {self.output_rate_hz:.2f} Hz over bag time "
                     f"({self.prompt_outputs} prompt, {self.heartbeat_outputs} heartbeat); "
                     f"inference {self.mean_infer_ms:.1f} ms mean"
                     + (f" (path {self.inference_path})" if self.inference_path else ""))
        return "\n".join(lines)


def _acc(value) -> str:
    """An accuracy cell: '-' when there is none (no settled sample), never 'nan'."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def drive_timeline(events, start: float, until: float, scheduler, store, staleness: dict,
                   fuse) -> list:
    """Replay input ``events`` ``[(t, modality, Sample)]`` (time order) through ``scheduler``
    and ``store`` exactly as the node does: each input is stored and offered to the scheduler
    at once (the node's wake-up), and the fusion timer ticks at the deadlines
    ``scheduler.next_tick`` sets (first tick one ``tick_period`` after ``start``; reset after
    every tick, and brought forward when the rate limit defers an input) until ``until``.

    ``fuse(now, kind, live)`` runs one fusion on the live samples it is given (those taken from
    the store) and returns whether it produced an output. Returns ``[(t, kind, fused
    modalities)]`` of the fusions that produced one (the decisions, for tests and reports).
    """
    log: list = []
    next_tick = start + scheduler.tick_period

    def due(now: float) -> float:
        pending = store.pending
        return scheduler.next_tick(now, pending, (not pending) and bool(store.live(now, staleness)))

    def attempt(now: float) -> bool:
        kind = scheduler.decide(now, store.pending, bool(store.live(now, staleness)))
        if kind is None:
            return False
        scheduler.started(now, kind)
        try:
            live = store.live(now, staleness, take=True)
            if live and fuse(now, kind, live):
                log.append((now, kind, tuple(live)))
        finally:
            scheduler.finished(now)
        return True

    def run_ticks(limit: float) -> None:
        nonlocal next_tick
        while next_tick < limit:
            now = next_tick
            attempt(now)
            next_tick = due(now)

    for t, modality, sample in events:
        run_ticks(t)
        store.put(modality, sample)
        scheduler.note_input(t)
        if not attempt(t):  # deferred: the timer is brought forward to the rate limit's refill
            next_tick = min(next_tick, due(t))
    run_ticks(until)
    return log


def evaluate_bag(path: str | Path, engine, settings: FusionSettings = FusionSettings(),
                 sample_rate: int | None = None, topics: dict[str, str] | None = None,
                 truth_topic: str | None = None) -> EvalReport:
    """Run the fusion logic over a bag's time line and score the outputs against the truth.

    ``topics`` (``{modality: topic}``) and ``truth_topic``: where this bag has its sensors and
    labels, when not under the package's names (:func:`crossmodal_ros.bags.reader.bag_topics`).
    """
    events, truth_t, truth, start, end, invalid = read_bag_inputs(path, topics, truth_topic)
    if not truth:
        raise BagError(f"{path} has no {truth_topic or TRUTH_TOPIC} messages (std_msgs/Int32 labels) to score "
                       "against; name the labels' topic (bag_eval: --truth-topic)")
    if sample_rate is None:
        sample_rate = int(bag_custom_data(path).get("crossmodal_ros.sample_rate", 16000))
    engine.warm_up(sample_rate)  # first-call costs (ONNX graph exports, audio features) out of the timing
    store = LatestSamples(MODALITIES)
    staleness = {m: float(settings.staleness.get(m, 0.0)) for m in MODALITIES}
    per_subset: dict = defaultdict(lambda: {"outputs": 0, "samples": 0, "correct": 0})
    scored: list = []  # (truth index, number fused, subset name, correct)
    counts = {"prompt": 0, "heartbeat": 0}
    infer_s: list[float] = []

    def fuse(now: float, kind: str, live: dict) -> bool:
        import time as _time

        t0 = _time.perf_counter()
        try:
            result = engine.infer({m: s.value for m, s in live.items()}, sample_rate=sample_rate)
        except ValueError:  # a codec rejected the input: the node drops it too
            return False
        infer_s.append(_time.perf_counter() - t0)
        counts["prompt" if kind == FRESH else "heartbeat"] += 1
        name = subset_name(result.fused)
        per_subset[name]["outputs"] += 1
        i = bisect.bisect_right(truth_t, newest(live).stamp_s + 1e-6) - 1
        if i >= 0:
            scored.append((i, len(result.fused), name, int(int(result.label) == truth[i])))
        return True

    scheduler = FusionScheduler(settings.max_rate_hz, settings.heartbeat_hz, settings.max_burst)
    drive_timeline(
        [(ev.t, ev.modality, Sample(value=ev.value, stamp=ev.stamp_s, stamp_s=ev.stamp_s,
                                    arrival_s=ev.t)) for ev in events],
        start, end + max(staleness.values()), scheduler, store, staleness, fuse)
    # one settled output per sample: the fusion with the most inputs (latest among equals)
    settled: dict = {}
    for i, n, name, correct in scored:
        if i not in settled or n >= settled[i][0]:
            settled[i] = (n, name, correct)
    for _, name, correct in settled.values():
        per_subset[name]["samples"] += 1
        per_subset[name]["correct"] += correct
    report_subsets = {
        k: {**v, "accuracy": v["correct"] / v["samples"] if v["samples"] else None}
        for k, v in per_subset.items()
    }
    n_inputs = {m: sum(1 for e in events if e.modality == m) for m in (IMAGE, AUDIO, TRAJECTORY)}
    return EvalReport(
        bag=str(path), duration_s=max(end - start, 1e-9) + max(staleness.values()),
        outputs=counts["prompt"] + counts["heartbeat"], prompt_outputs=counts["prompt"],
        heartbeat_outputs=counts["heartbeat"], per_subset=report_subsets, inputs=n_inputs,
        invalid=invalid, mean_infer_ms=1e3 * float(np.mean(infer_s)) if infer_s else 0.0,
        inference_path=str(getattr(engine, "path", "")),
    )


def main(argv=None) -> int:
    """Console entry ``bag_eval``."""
    from crossmodal_ros.engine import BACKENDS

    p = argparse.ArgumentParser(prog="bag_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("bag", help="bag directory, .mcap or .db3 file (written by bag_export, or recorded; see the "
                                "--*-topic options)")
    p.add_argument("--checkpoint", default="", help="model checkpoint (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--backend", default="int8_auto", choices=BACKENDS,
                   help="inference path, as the node's backend parameter (default int8_auto, the node's default)")
    p.add_argument("--max-rate-hz", type=float, default=20.0)
    p.add_argument("--heartbeat-hz", type=float, default=5.0)
    p.add_argument("--max-burst", type=int, default=1, help="fresh fusions back to back (default 1, as replay)")
    p.add_argument("--staleness", type=float, nargs=3, metavar=("IMAGE", "AUDIO", "TRAJECTORY"),
                   default=(0.9, 0.9, 0.9), help="staleness windows in seconds (default 0.9 each)")
    p.add_argument("--sample-rate", type=int, default=None, help="audio rate (default: from the bag)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1, as the node's num_threads; 0: torch's default, every core, "
                        "which made batch-1 inference about 10x slower on a loaded 2-core machine)")
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.add_argument("--camera-topic", default=None, help="the bag's sensor_msgs/Image topic (default /camera/image_raw)")
    p.add_argument("--audio-topic", default=None,
                   help="the bag's std_msgs/Float32MultiArray utterance topic (default /audio/chunk)")
    p.add_argument("--pen-topic", default=None, help="the bag's nav_msgs/Path stroke topic (default /pen/stroke)")
    p.add_argument("--truth-topic", default=None, help="the bag's std_msgs/Int32 label topic (default /label/truth)")
    a = p.parse_args(argv)
    if a.threads < 0:
        p.error("--threads must be >= 0")
    if a.threads:
        from crossmodal_ros.engine import set_cpu_threads

        set_cpu_threads(a.threads)  # torch, the BLAS pools and OpenCV, as the node's num_threads
    topics = {m: t for m, t in ((IMAGE, a.camera_topic), (AUDIO, a.audio_topic), (TRAJECTORY, a.pen_topic)) if t}
    from crossmodal_ros.checkpoint import CheckpointError
    from crossmodal_ros.engine import FusionEngine

    try:
        settings = FusionSettings(a.max_rate_hz, a.heartbeat_hz,
                                  dict(zip((IMAGE, AUDIO, TRAJECTORY), a.staleness), label=0.0), a.max_burst)
        engine = FusionEngine.from_checkpoint(a.checkpoint or None, device=a.device, backend=a.backend)
        report = evaluate_bag(a.bag, engine, settings, a.sample_rate, topics, a.truth_topic)
    except (BagError, CheckpointError, ImportError, ValueError) as exc:  # ValueError: bad settings, or a
        p.error(str(exc))                                                # backend this device does not run
    print(report.table())
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report.as_dict(), indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
