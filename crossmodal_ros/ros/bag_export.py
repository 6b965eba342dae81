# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Export a dataset split as a timed rosbag2 (MCAP or sqlite3) of the sensor topics.

One dataset sample per ``period`` seconds of bag time, as the sensors would publish it:

==================  ==========================  =========================================
topic               type                        content
==================  ==========================  =========================================
/camera/image_raw   sensor_msgs/msg/Image       mono8 frame (``--frame-size`` square)
/audio/chunk        std_msgs/msg/Float32MultiArray  the utterance at ``--sample-rate``
/pen/stroke         nav_msgs/msg/Path           the pen trajectory (100 points)
/label/truth        std_msgs/msg/Int32          ground-truth digit (never an input)
==================  ==========================  =========================================

Header stamps equal the bag (receive) time. The sensors of one sample are staggered by a few
milliseconds (camera, then microphone, then pen) like real sensors. An outage schedule
(``--schedule "0-20: all; 20-40: pen"``) leaves out the modalities that are off. The sample
rate of the audio and the export settings go into the bag's custom metadata
(``crossmodal_ros.*`` keys) so :mod:`crossmodal_ros.bags.dataset` and
:mod:`crossmodal_ros.bags.evaluate` can read it back. The format is
:mod:`crossmodal_ros.bags.format`.

Messages are built with :mod:`crossmodal_ros.ros.conversions` and serialised by rclpy, so the
bag holds exactly what the live graph publishes. Usage::

    bag_export out/digits_test --split test --count 60 --period 1.0 --schedule "0-30: all; 30-60: audio"
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossmodal_ros.bags.format import META_PREFIX, STAGGER, TOPICS, TRUTH_TOPIC, TRUTH_TYPE, BagError, typestore
from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY
from crossmodal_ros.sensors.outages import OutageSchedule, ScheduleError
from crossmodal_ros.sensors.playback import SensorError, resample_audio, sample_for

__all__ = ["ExportSummary", "export_bag", "main"]


@dataclass(frozen=True)
class ExportSummary:
    """What was written: the bag path, message counts per topic and the bag time span."""

    path: Path
    counts: dict
    start_ns: int
    end_ns: int
    indices: list


def export_bag(
    dataset: dict,
    path: str | Path,
    *,
    count: int | None = None,
    period: float = 1.0,
    start_time: float | None = None,
    schedule: OutageSchedule | None = None,
    sample_rate: int = 16000,
    frame_size: int = 28,
    seed: int | None = 0,
    storage: str = "mcap",
) -> ExportSummary:
    """Write ``count`` samples of ``dataset`` as a rosbag2 at ``path`` (a new directory).

    ``seed`` None keeps dataset order, otherwise a seeded shuffle; ``start_time`` (s) is the bag
    time of the first sample (default: now).
    """
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from std_msgs.msg import Int32

    from crossmodal_ros.ros import conversions as conv

    path = Path(path)
    if path.exists():
        raise BagError(f"{path} exists already; the writer only creates new bags")
    if not period > 0:
        raise BagError(f"period must be positive, got {period}")
    if storage not in ("mcap", "sqlite3"):
        raise BagError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    n = len(dataset["label"])
    count = n if count is None else int(count)
    if not 0 < count:
        raise BagError(f"count must be positive, got {count}")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    indices = [int(order[k % n]) for k in range(count)]
    schedule = schedule or OutageSchedule()
    t0 = time.time() if start_time is None else float(start_time)
    if t0 < 0:
        raise BagError("start_time must be >= 0")
    rate_in = int(dataset.get("sample_rate", sample_rate))

    ts = typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    counts = {t: 0 for t in list(TOPICS) + [TRUTH_TOPIC]}
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.open()
    try:
        conns = {t: writer.add_connection(t, mt, typestore=ts) for t, (_, mt) in TOPICS.items()}
        conns[TRUTH_TOPIC] = writer.add_connection(TRUTH_TOPIC, TRUTH_TYPE, typestore=ts)
        last_ns = start_ns = int(round(t0 * 1e9))
        for k, idx in enumerate(indices):
            t_tick = t0 + k * period
            live = schedule.live_at(k * period)
            ns = int(round(t_tick * 1e9))
            writer.write(conns[TRUTH_TOPIC], ns, serialize_message(Int32(data=int(dataset["label"][idx]))))
            counts[TRUTH_TOPIC] += 1
            last_ns = max(last_ns, ns)
            for topic, (modality, _) in TOPICS.items():
                if modality not in live:
                    continue
                t = t_tick + STAGGER[modality]
                stamp = conv.seconds_to_stamp(t)
                if modality == IMAGE:
                    msg = conv.numpy_to_image(sample_for(dataset, IMAGE, idx, frame_size), "mono8",
                                              stamp=stamp, frame_id="camera")
                elif modality == AUDIO:
                    wave = resample_audio(sample_for(dataset, AUDIO, idx), rate_in, sample_rate)
                    msg = conv.numpy_to_audio(np.clip(wave, -1, 1))
                else:
                    msg = conv.numpy_to_path(sample_for(dataset, TRAJECTORY, idx).astype(np.float64),
                                             stamp=stamp, frame_id="pen")
                ns = int(round(t * 1e9))
                writer.write(conns[topic], ns, serialize_message(msg))
                counts[topic] += 1
                last_ns = max(last_ns, ns)
        meta = {
            "sample_rate": str(int(sample_rate)),
            "period": repr(float(period)),
            "dataset": str(dataset.get("name", "")),
            "schedule": json.dumps(schedule.to_strings()),
            "indices": json.dumps(indices),
        }
        for key, value in meta.items():
            writer.set_custom_data(META_PREFIX + key, value)
    except Exception:
        writer.close()
        raise
    writer.close()
    return ExportSummary(path, counts, start_ns, last_ns, indices)


def main(argv=None) -> int:
    """Console entry ``bag_export``."""
    p = argparse.ArgumentParser(prog="bag_export", description=__doc__.split("\n\n")[0])
    p.add_argument("output", help="bag directory to create (must not exist)")
    p.add_argument("--dataset", default="digits", help="dataset spec: digits | mhd:<dir> (default digits)")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--count", type=int, default=60, help="samples to export (default 60)")
    p.add_argument("--period", type=float, default=1.0, help="seconds between samples (default 1)")
    p.add_argument("--schedule", default="", help="outage phases, e.g. '0-20: all; 20-40: pen'")
    p.add_argument("--sample-rate", type=int, default=16000, help="audio sample rate (default 16000)")
    p.add_argument("--frame-size", type=int, default=28, help="camera frame side (default 28)")
    p.add_argument("--start-time", type=float, default=None, help="bag time of the first sample (s)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed; -1 keeps dataset order")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    a = p.parse_args(argv)
    from crossmodal_ros.data import load_dataset

    try:
        schedule = OutageSchedule.parse(a.schedule) if a.schedule else None
        summary = export_bag(
            load_dataset(a.dataset, a.split), a.output, count=a.count, period=a.period,
            start_time=a.start_time, schedule=schedule, sample_rate=a.sample_rate,
            frame_size=a.frame_size, seed=None if a.seed < 0 else a.seed, storage=a.storage,
        )
    except (BagError, ScheduleError, SensorError) as exc:
        p.error(str(exc))
    span = (summary.end_ns - summary.start_ns) * 1e-9
    print(f"wrote {summary.path} ({a.storage}, {span:.1f} s of bag time)")
    for topic, n in summary.counts.items():
        print(f"  {topic:20s} {n:6d} messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
