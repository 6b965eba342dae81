# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
r"""Do camera-sized frames arrive? Two processes, one best-effort image topic, frames counted.

A publisher process sends ``--frames`` bgr8 frames of ``--size`` at ``--rate`` Hz with the QoS
that camera drivers and the inference node use (``best_effort``, depth 5) once it sees the
subscriber; this process counts what arrives and the publish -> receive latency. Run it with
and without a Fast DDS profile to see what the transport does with frames of your camera's size:

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=18 \
        python tools/frame_check.py --size 640x480 --rate 30 --frames 150 \
        --profile config/fastdds_large_frames.xml      # or --profile none

``--profile`` sets ``FASTDDS_DEFAULT_PROFILES_FILE`` for both processes (``none``: unset,
Fast DDS's defaults; default: the package's ``config/fastdds_large_frames.xml``). Prints one JSON
line (``delivered``, ``sent``, latency median / p99 in ms) and exits 0 when at least
``--min-fraction`` of the frames arrived, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROFILE = ROOT / "config" / "fastdds_large_frames.xml"
TOPIC = "frame_check/image"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants WIDTHxHEIGHT, e.g. 640x480, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"--size must be positive, got {text!r}")
    return w, h


def _stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def publish(args) -> int:
    """Publisher role: wait for the subscriber, send the frames at the rate, report the count."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    sys.path.insert(0, str(ROOT))
    from crossmodal_ros.ros import conversions as conv
    from crossmodal_ros.ros.qos import input_qos

    rclpy.init()
    node = rclpy.create_node("frame_check_publisher")
    pub = node.create_publisher(Image, TOPIC, input_qos("best_effort", 5))
    w, h = args.size
    frame = np.zeros((h, w, 3), np.uint8)
    deadline = time.monotonic() + args.discovery_timeout
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print(json.dumps({"error": "no subscriber matched"}), flush=True)
            return 2
        time.sleep(0.05)
    time.sleep(0.5)  # let the match settle on both sides
    period, sent, t0 = 1.0 / args.rate, 0, time.monotonic()
    for k in range(args.frames):
        time.sleep(max(0.0, t0 + k * period - time.monotonic()))
        frame[:, :, 0] = k % 256  # a different frame every time
        pub.publish(conv.numpy_to_image(frame, "bgr8", stamp=conv.seconds_to_stamp(time.time())))
        sent += 1
    time.sleep(0.5)
    print(json.dumps({"sent": sent}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def check(args) -> dict:
    """Subscriber role: start the publisher process, count the frames that arrive."""
    import numpy as np
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    sys.path.insert(0, str(ROOT))
    from crossmodal_ros.ros.qos import input_qos

    rclpy.init()
    node = rclpy.create_node("frame_check_subscriber")
    latency_ms: list[float] = []
    node.create_subscription(Image, TOPIC, lambda m: latency_ms.append(1e3 * (time.time() - _stamp_s(m.header.stamp))),
                             input_qos("best_effort", 5))
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", "publish",
           "--size", f"{args.size[0]}x{args.size[1]}",
           "--rate", str(args.rate), "--frames", str(args.frames), "--discovery-timeout", str(args.discovery_timeout)]
    pub = subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while pub.poll() is None:
            ex.spin_once(timeout_sec=0.02)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
    finally:
        if pub.poll() is None:
            pub.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    out = pub.stdout.read() if pub.stdout else ""
    sent = None
    for line in out.splitlines():
        if line.startswith("{"):
            sent = json.loads(line).get("sent")
    if sent is None:
        raise RuntimeError(f"the publisher process reported no count (exit {pub.returncode}):\n{out}")
    lat = np.array(latency_ms) if latency_ms else np.zeros(0)
    return {"size": f"{args.size[0]}x{args.size[1]}", "rate_hz": args.rate, "sent": sent,
            "delivered": len(latency_ms), "fraction": round(len(latency_ms) / sent, 4) if sent else 0.0,
            "latency_median_ms": round(float(np.median(lat)), 3) if lat.size else None,
            "latency_p99_ms": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
            "profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or "none"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", choices=["check", "publish"], default="check", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT of the bgr8 frames")
    ap.add_argument("--rate", type=float, default=30.0, help="frames per second")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--profile", default=str(DEFAULT_PROFILE),
                    help="Fast DDS profile XML for both processes; 'none': Fast DDS's defaults")
    ap.add_argument("--min-fraction", type=float, default=0.98, help="exit 1 below this delivered fraction")
    ap.add_argument("--discovery-timeout", type=float, default=20.0)
    args = ap.parse_args(argv)
    if args.rate <= 0 or args.frames < 1:
        ap.error("--rate must be > 0 and --frames >= 1")
    if args.role == "publish":
        return publish(args)
    # network rule (docs/ROS_NOTES.md): loopback discovery; set before rclpy starts DDS
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", "18")
    if args.profile == "none":
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    else:
        profile = Path(args.profile)
        if not profile.is_file():
            ap.error(f"--profile {profile}: no such file")
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile.resolve())
    report = check(args)
    print(json.dumps(report), flush=True)
    return 0 if report["fraction"] >= args.min_fraction else 1


if __name__ == "__main__":
    sys.exit(main())
