# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Benchmark 3: end-to-end ROS latency across processes, and the inference node's CPU and RSS.

Three processes on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, own ROS_DOMAIN_ID):

1. ``--role publisher`` (this script): real test-split digits (:func:`bench_inputs`): camera
   frames at ``--camera-hz`` (``--frame 28``: mono8, 28 pixels square, the camera node's playback
   format; ``--frame vga``: the digit drawn into a 640x480 bgr8 frame, what a robot's camera
   driver publishes), each with its own sensor noise, so every frame is preprocessed and encoded
   anew; the spoken digits as 1 s audio windows (16 kHz) at ``--audio-hz`` and the pen strokes
   (nav_msgs/Path, 100 poses) at ``--stroke-hz``; every header is stamped with the wall clock at
   publish time;
2. the inference node, ``python -m crossmodal_ros.ros.inference_node --ros-args --params-file
   config/nexus.yaml`` (shipped checkpoint): what a user runs. Variant ``shipped`` adds nothing
   else; variant ``tuned`` adds ``-p`` overrides (``--max-rate-hz``, ``--heartbeat-hz``,
   staleness image 0.5 s, audio/trajectory 3 s), labelled as such in the table and JSON; variant
   ``onnx`` adds ``-p backend:=onnx`` (ONNX Runtime; graphs exported when the node configures);
   ``int8`` adds ``-p backend:=int8`` (the fast path with weight-only int8 products), ``fast``
   ``-p backend:=fast`` (the exact float path; the shipped ``int8_auto`` runs int8 on a CPU with
   AVX512-BF16 or AMX, else fast: the configure line in the node's log says which); ``single``
   adds ``-p executor:=single`` (rclpy's SingleThreadedExecutor instead of the EventsExecutor);
3. this script, subscribed to what the run's ``subscribe`` mode says: ``image`` (``/nexus/image``
   + ``/nexus/latent``, the default), ``all`` (every output topic of the node) or ``latent``
   (``/nexus/latent_stamped`` only: with lazy outputs the node then decodes nothing). Mode
   ``alternate`` measures the node's CPU only: one node, one publisher, and this script's
   subscriptions switched between ``latent`` and ``all`` ``--cpu-pairs`` times (in the order
   latent, all, all, latent, latent, all, ...; each phase ``--cpu-phase-seconds`` after 1.5 s to
   settle), so that each latent-only phase has an every-output phase beside it on the same warm
   node under the same machine load; it reports each pair's CPU ratio and their median.

``--runs`` lists ``variant:subscribe`` pairs (default ``shipped:image,fast:image,tuned:image,
shipped:all,shipped:latent,shipped:alternate``). Latency = receive time of the measured topic (``/nexus/image``;
``/nexus/latent_stamped`` in ``latent`` mode) - its header stamp (the newest fused input's
stamp), for each camera frame and stroke the publisher stamped in the window: the first output
that carries its stamp (the publisher reports every stamp it sent). Outputs carrying another
stamp are counted (``outputs``) but not timed: heartbeats repeat an older stamp, and audio
windows carry no header, so the node stamps them on arrival and a fusion they start carries the
node's arrival time, which would leave the transport out. Also: sustained output rate, camera frames
whose stamp never came back (dropped fusion ticks), the node's CPU use (utime+stime from
/proc/<pid>/stat over the window) in % of a core and per output of the measured topic (one per
fusion), its RSS (VmRSS / VmHWM), and the node's own median inference time per fusion
(``FusionEngine.infer``, preprocessing included; from its /diagnostics), which splits the
end-to-end latency into inference and everything else (transport, conversions, executor,
publishing).

``--dds-profile`` (default: the package's ``config/fastdds_large_frames.xml``, which the launch
files set for the nodes they start) is exported as ``FASTDDS_DEFAULT_PROFILES_FILE`` to all three
processes; ``none`` runs Fast DDS's defaults, whose 512 KiB shared-memory segment loses most
best-effort VGA frames (tools/frame_check.py). The node's camera counters over the window
(``node_camera_received``, ``node_camera_superseded``) tell frames lost in transport from frames
coalesced by the node. Licence: Apache-2.0.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # network rule: loopback only
os.environ.setdefault("ROS_DOMAIN_ID", "73")

HERE = Path(__file__).resolve().parent
DEFAULT_DDS_PROFILE = HERE.parent / "config" / "fastdds_large_frames.xml"


def _stamp_now():
    from builtin_interfaces.msg import Time

    t = time.time()
    return Time(sec=int(t), nanosec=int((t - int(t)) * 1e9))


#: test-split rows of the publisher's four scenes (digits 8, 9, 1, 4; the embedded dataset)
SCENE_ROWS = (0, 3, 5, 6)
#: camera frames per scene: 0.5 s at 30 Hz, while one audio window and one stroke arrive
FRAMES_PER_SCENE = 15
#: the camera's per-frame sensor noise (std, fraction of full scale)
FRAME_NOISE = 0.02


def bench_inputs(frame: str):
    """The publisher's inputs: ``(frames, encoding, windows, strokes)``, real test-split digits.

    Four scenes (:data:`SCENE_ROWS`). Per scene :data:`FRAMES_PER_SCENE` camera frames of its
    digit (``frame`` as ``--frame``: the 28x28 image itself, or drawn into a 640x480 bgr8 frame by
    :func:`crossmodal_ros.sim.render_frame`), each with its own Gaussian sensor noise
    (:data:`FRAME_NOISE`), so that consecutive frames differ as a camera's do and every frame is
    preprocessed and encoded anew; the spoken digit as a one-second 16 kHz window (the recording
    resampled and centred); the pen stroke (100 points).
    """
    import numpy as np

    from crossmodal_ros.codecs import centred_window
    from crossmodal_ros.data import load_dataset
    from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY
    from crossmodal_ros.sensors.playback import resample_audio, sample_for
    from crossmodal_ros.sim import FrameSpec, render_frame

    rng = np.random.default_rng(0)
    h, w, encoding = frame_format(frame)
    data = load_dataset("digits", "test")
    frames, windows, strokes = [], [], []
    for row in SCENE_ROWS:
        digit = sample_for(data, IMAGE, row)
        if encoding == "bgr8":
            scene = render_frame(digit, rng, FrameSpec(height=h, width=w, noise_std=0.0))[:, :, ::-1]
        else:
            scene = digit if digit.shape == (h, w) else sample_for(data, IMAGE, row, frame_size=h)
        for _ in range(FRAMES_PER_SCENE):
            noisy = scene.astype(np.float32) + rng.normal(0.0, 255.0 * FRAME_NOISE, size=scene.shape)
            frames.append(np.ascontiguousarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)))
        wave = resample_audio(sample_for(data, AUDIO, row), int(data["sample_rate"]), 16000)
        windows.append(centred_window(wave, 16000).astype(np.float32))
        strokes.append(sample_for(data, TRAJECTORY, row))
    return frames, encoding, windows, strokes


def run_publisher(args) -> int:
    """Role 1: publish camera, audio and strokes until killed or ``--seconds`` + margin."""
    import rclpy
    from nav_msgs.msg import Path as PathMsg
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray

    sys.path.insert(0, str(HERE.parent))
    from crossmodal_ros.ros import conversions as conv
    from crossmodal_ros.ros.qos import input_qos

    rclpy.init()
    node = rclpy.create_node("bench_publisher")
    qos = input_qos("best_effort", 5)
    cam = node.create_publisher(Image, "camera/image_raw", qos)
    mic = node.create_publisher(Float32MultiArray, "audio/chunk", qos)
    pen = node.create_publisher(PathMsg, "pen/stroke", qos)
    frames, encoding, windows, strokes = bench_inputs(args.frame)
    count = {"camera": 0, "audio": 0, "stroke": 0}
    sent_stamps: list[tuple[int, int]] = []

    def stamp():
        t = _stamp_now()
        sent_stamps.append((t.sec, t.nanosec))
        return t

    def on_cam():
        cam.publish(conv.numpy_to_image(frames[count["camera"] % len(frames)], encoding, stamp=stamp(), frame_id="cam"))
        count["camera"] += 1

    def on_mic():
        mic.publish(conv.numpy_to_audio(windows[count["audio"] % len(windows)]))
        count["audio"] += 1

    def on_pen():
        pen.publish(conv.numpy_to_path(strokes[count["stroke"] % len(strokes)], stamp=stamp(), frame_id="pen"))
        count["stroke"] += 1

    # start once the node's camera subscription has matched, so that every frame counts
    deadline = time.monotonic() + 30.0
    while cam.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    node.create_timer(1.0 / args.camera_hz, on_cam)
    if args.audio_hz > 0:
        node.create_timer(1.0 / args.audio_hz, on_mic)
    if args.stroke_hz > 0:
        node.create_timer(1.0 / args.stroke_hz, on_pen)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    end = time.monotonic() + args.seconds + args.warmup + 60
    try:
        while rclpy.ok() and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    print(f"publisher: {count}", flush=True)
    print(f"stamps: {sent_stamps}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_mem_mb(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, val = line.split(":")
            out[key.lower() + "_mb"] = round(int(val.split()[0]) / 1024, 1)
    return out


def _children(pid: int) -> list[int]:
    """The node may re-exec itself once (the ROS wheels set library paths): follow its children."""
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


SHIPPED_PARAMS = HERE.parent / "config" / "nexus.yaml"
#: every output topic of the node (``audio`` needs griffin_lim, off in the shipped file)
OUTPUT_TYPES = {"image": "Image", "audio_mel": "Image", "trajectory": "Path", "label": "Int32",
                "label_probs": "Float32MultiArray", "latent": "Float32MultiArray",
                "modalities": "String", "latent_stamped": "JointState"}


def _publisher_counts(pub) -> tuple[dict, list]:
    """The publisher role's final lines, once it exited: messages sent per stream, and the header
    stamps it sent (seconds).
    """
    import ast

    try:
        out, _ = pub.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        pub.kill()
        return {}, []
    counts, stamps = {}, []
    for line in (out or "").splitlines():
        if line.startswith("publisher: {"):
            counts = ast.literal_eval(line.split(":", 1)[1].strip())
        elif line.startswith("stamps: ["):
            stamps = [sec + nsec * 1e-9 for sec, nsec in ast.literal_eval(line.split(":", 1)[1].strip())]
    return counts, stamps


def _camera_delta(before: dict, after: dict, counter: str):
    """Growth of the node's cumulative ``image`` input counter between two /diagnostics
    snapshots (their key/value pairs; None if the node never reported it).
    """
    from crossmodal_ros.ros.diagnostics import input_counters

    now = input_counters(after).get("image")
    if now is None:
        return None
    return now[counter] - input_counters(before).get("image", {}).get(counter, 0)


def node_command(args, variant: str) -> list[str]:
    """The node's command line: the shipped parameter file, plus the tuned overrides."""
    cmd = [sys.executable, "-m", "crossmodal_ros.ros.inference_node", "--ros-args", "-r", "__node:=nexus",
           "--params-file", str(SHIPPED_PARAMS)]
    if variant == "tuned":
        cmd += ["-p", f"max_rate_hz:={float(args.max_rate_hz)}",
                "-p", f"heartbeat_hz:={float(args.heartbeat_hz)}", "-p", "staleness.image:=0.5",
                "-p", "staleness.audio:=3.0", "-p", "staleness.trajectory:=3.0"]
    elif variant in ("onnx", "onnx_int8"):
        cmd += ["-p", f"backend:={variant}"]
    elif variant in ("int8", "fast"):
        cmd += ["-p", f"backend:={variant}"]
    elif variant == "single":
        cmd += ["-p", "executor:=single"]
    elif variant != "shipped":
        raise ValueError(f"unknown variant {variant!r} (shipped | tuned | onnx | onnx_int8 | int8 | fast | single)")
    if args.checkpoint:
        cmd += ["-p", f"checkpoint:={args.checkpoint}"]
    return cmd


def frame_format(spec: str) -> tuple[int, int, str]:
    """``--frame``: ``vga`` -> (480, 640, "bgr8"); ``N`` -> (N, N, "mono8")."""
    if str(spec).lower() == "vga":
        return 480, 640, "bgr8"
    try:
        n = int(spec)
    except ValueError:
        raise SystemExit(f"--frame must be a side length in pixels or 'vga', got {spec!r}") from None
    if not 8 <= n <= 4096:
        raise SystemExit(f"--frame {n}: the side must be in 8..4096")
    return n, n, "mono8"


def run_bench(args) -> int:
    """Role 3 (default): one measurement per ``--runs`` entry, one table, one JSON."""
    from common import load_average, table, write_result

    frame_format(args.frame)  # a bad --frame fails here, not in the piped-away publisher
    # one profile for all three processes, set before this process starts DDS
    if args.dds_profile == "none":
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    else:
        if not Path(args.dds_profile).is_file():
            raise SystemExit(f"--dds-profile {args.dds_profile}: no such file")
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(Path(args.dds_profile).resolve())

    load_before = load_average()
    rows, alt_rows, runs = [], [], []
    for spec in args.runs.split(","):
        variant, _, subscribe = spec.strip().partition(":")
        row, stats = run_one(args, variant, subscribe or "image")
        (alt_rows if row["subscribe"] == "alternate" else rows).append(row)
        runs.append({"variant": variant, "subscribe": subscribe or "image",
                     "overrides": node_command(args, variant)[8:], "result": row, "latency": stats})
    load_after = load_average()
    fh, fw, enc = frame_format(args.frame)
    for row in alt_rows:
        print(f"node CPU per fusion, {row['variant']} (path {row['path']}), latent-only vs every output, "
              f"{row['pairs']} pairs of "
              f"{args.cpu_phase_seconds:g} s phases (load {row['load']}): latent {row['latent_cpu_ms_per_output']} ms, "
              f"all {row['all_cpu_ms_per_output']} ms, ratios {row['ratios']}, median {row['ratio_median']}")
    if rows:
        print(table(rows, list(rows[0]), f"End-to-end ROS latency, publisher -> crossmodal_inference -> subscriber "
                                     f"({args.seconds} s per run; camera {args.camera_hz} Hz {fw}x{fh} "
                                     f"{enc}, audio 1 s windows at {args.audio_hz} Hz, strokes "
                                     f"at {args.stroke_hz} Hz; node --params-file config/nexus.yaml; DDS "
                                     f"profile {Path(args.dds_profile).name}; load avg "
                                     f"before {load_before} after {load_after})"))
    name = "ros_latency" if str(args.frame) == "28" else f"ros_latency_{str(args.frame).lower()}"
    path = write_result(name, {"seconds": args.seconds, "camera_hz": args.camera_hz, "frame": args.frame,
                                        "frame_format": f"{fw}x{fh} {enc}", "audio_hz": args.audio_hz,
                                        "stroke_hz": args.stroke_hz,
                                        "params_file": "config/nexus.yaml",
                                        "dds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "none"),
                                        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
                                        "tuned_overrides": node_command(args, "tuned")[8:],
                                        "load_avg_before": load_before, "load_avg_after": load_after,
                                        "runs": runs, "ros_domain_id": os.environ.get("ROS_DOMAIN_ID")}, args.out)
    print("wrote", path)
    return 0


def run_one(args, variant: str, subscribe: str):
    """Start publisher + node (``variant``), subscribe as ``subscribe`` says, measure one window."""
    import rclpy
    from nav_msgs.msg import Path as PathMsg
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float32MultiArray, Int32, String

    from common import load_average, summarize_ms

    from crossmodal_ros.ros.diagnostics import input_counters

    if subscribe not in ("image", "all", "latent", "alternate"):
        raise ValueError(f"unknown subscribe mode {subscribe!r} (image | all | latent | alternate)")
    load_run = load_average()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", str(args.threads))
    node_cmd = node_command(args, variant)
    # the publisher's own length (it stops by itself a minute after it, or when it is stopped)
    pub_seconds = args.seconds if subscribe != "alternate" else 2 * args.cpu_pairs * (args.cpu_phase_seconds + SETTLE_S)
    pub_cmd = [sys.executable, str(Path(__file__).resolve()), "--role", "publisher", "--frame", str(args.frame),
               "--camera-hz", str(args.camera_hz), "--audio-hz", str(args.audio_hz),
               "--stroke-hz", str(args.stroke_hz), "--warmup", str(args.warmup), "--seconds", str(pub_seconds)]

    rclpy.init()
    node = rclpy.create_node("bench_subscriber")
    recv: list[tuple[float, float]] = []   # (receive wall time, header stamp)
    latents = [0]

    def on_stamped(msg):
        now = time.time()
        recv.append((now, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def on_other(_msg):
        latents[0] += 1

    from crossmodal_ros.ros.qos import output_qos

    diag = {}

    def on_diag(msg):
        for status in msg.status:
            if status.name.endswith(": fusion"):
                diag.update((kv.key, kv.value) for kv in status.values)

    from diagnostic_msgs.msg import DiagnosticArray

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    types = {"Image": Image, "Path": PathMsg, "Int32": Int32, "Float32MultiArray": Float32MultiArray,
             "String": String, "JointState": JointState}
    measured = "latent_stamped" if subscribe in ("latent", "alternate") else "image"
    subs = []

    def subscribe_to(mode: str) -> None:
        for sub in subs:
            node.destroy_subscription(sub)
        subs.clear()
        names = {"image": ["image", "latent"], "all": list(OUTPUT_TYPES), "latent": ["latent_stamped"]}[mode]
        subs.extend(node.create_subscription(types[OUTPUT_TYPES[name]], f"/nexus/{name}",
                                             on_stamped if name == measured else on_other, output_qos())
                    for name in names)

    subscribe_to("latent" if subscribe == "alternate" else subscribe)
    ex = SingleThreadedExecutor()
    ex.add_node(node)

    nexus = subprocess.Popen(node_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pub = None
    try:
        # wait for the node to come up (configure loads the model and warms up)
        t_start = time.monotonic()
        while time.monotonic() - t_start < 120 and node.count_publishers(f"/nexus/{measured}") == 0:
            ex.spin_once(timeout_sec=0.1)
            if nexus.poll() is not None:
                raise RuntimeError("the inference node exited:\n" + (nexus.stdout.read() if nexus.stdout else ""))
        pub = subprocess.Popen(pub_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.warmup:
            ex.spin_once(timeout_sec=0.05)
        pids = [nexus.pid] + _children(nexus.pid)
        node_pid = pids[-1]
        if subscribe == "alternate":
            phases = _alternate_phases(args, ex, subscribe_to, recv, node_pid)
        cpu0, wall0 = _proc_cpu_s(node_pid), time.monotonic()
        recv.clear()
        latents[0] = 0
        w0 = time.time()
        diag0 = dict(diag)
        window_s = 0.0 if subscribe == "alternate" else args.seconds  # alternate measured its phases above
        while time.monotonic() - wall0 < window_s:
            ex.spin_once(timeout_sec=0.05)
        w1 = time.time()
        diag1 = dict(diag)
        cpu1, wall1 = _proc_cpu_s(node_pid), time.monotonic()
        mem = _proc_mem_mb(node_pid)
        # frame accounting over the whole run: stop the publisher, read how many frames it sent,
        # let the node drain and report its counters once more (/diagnostics at 1 Hz)
        pub.send_signal(2)
        sent, sent_stamps = _publisher_counts(pub)
        t_end = time.monotonic()
        while time.monotonic() - t_end < 2.5:
            ex.spin_once(timeout_sec=0.05)
        totals = input_counters(diag).get("image", {})
    finally:
        for p in (pub, nexus):
            if p is not None and p.poll() is None:
                p.send_signal(2)  # SIGINT: clean rclpy shutdown
        for p in (pub, nexus):
            if p is not None:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        node.destroy_node()
        rclpy.try_shutdown()

    if subscribe == "alternate":
        return {**_alternate_row(variant, load_run, phases), "path": diag.get("inference path", "?")}, {}
    window = w1 - w0
    # only outputs received inside the window: after it the publisher stops and the node's
    # heartbeat fusions (which fill silence) keep carrying the last stamp, whose age then grows
    # by 1/heartbeat_hz per output (a run measured them as 0.4-1.8 s "latencies")
    recv = [(r, s) for r, s in recv if r <= w1]
    # each stamped input published in the window (until 0.1 s before its end): its first output
    published = {round(s, 6) for s in sent_stamps if w0 <= s <= w1 - 0.1}
    first: dict = {}
    for r, s in recv:
        key = round(s, 6)
        if key in published and key not in first:
            first[key] = r - s
    lat = list(first.values())
    stats = summarize_ms(lat) if lat else {}
    expected = len(published)
    cam_stamps = len(first)
    cpu_s = cpu1 - cpu0
    row = {"variant": variant, "subscribe": subscribe, "path": diag1.get("inference path", "?"), "load": load_run[0],
           "outputs": len(recv),
           "rate_hz": round(len(recv) / window, 2),
           "median_ms": stats.get("median_ms"), "p99_ms": stats.get("p99_ms"), "mean_ms": stats.get("mean_ms"),
           # stamps (camera frames and strokes) published in the window that no output carried: a
           # stroke fused together with a newer camera frame carries that frame's stamp; the
           # latency statistics are over the returned ones
           "stamped_inputs": expected, "stamps_returned": cam_stamps,
           "stamps_not_returned": max(0, expected - cam_stamps),
           # the node's own median as of the window's end (not after the drain's heartbeat fusions)
           "node_infer_med_ms": diag1.get("inference latency median (ms)"),
           # frame accounting over the whole run (exact): camera frames the publisher sent, frames
           # the node received (its /diagnostics after the publisher stopped), and frames the node
           # replaced by a newer one before fusing them (coalescing, not loss)
           "camera_sent": sent.get("camera"),
           "node_camera_received": totals.get("received"),
           "camera_frames_lost": (sent["camera"] - totals["received"]
                                  if "camera" in sent and "received" in totals else None),
           "node_camera_superseded": totals.get("superseded"),
           # the same node counters over the measurement window (two snapshots, each about one
           # diagnostics period late)
           "node_camera_received_window": _camera_delta(diag0, diag1, "received"),
           "node_cpu_pct": round(100.0 * cpu_s / (wall1 - wall0), 1),
           "node_cpu_ms_per_output": round(1e3 * cpu_s / len(recv), 2) if recv else None, **mem}
    return row, stats


SETTLE_S = 1.5  # after switching subscriptions: the node has seen them (discovery takes ~0.1 s here)


def _alternate_phases(args, ex, subscribe_to, recv: list, node_pid: int) -> list[dict]:
    """``--cpu-pairs`` pairs of a latent-only and an every-output phase (alternating which comes
    first); per phase the node's CPU per latent message received (one per fusion).
    """
    phases = []
    for k in range(args.cpu_pairs):
        for mode in (("latent", "all") if k % 2 == 0 else ("all", "latent")):
            subscribe_to(mode)
            t = time.monotonic()
            while time.monotonic() - t < SETTLE_S:
                ex.spin_once(timeout_sec=0.05)
            n0, cpu0, t0 = len(recv), _proc_cpu_s(node_pid), time.monotonic()
            while time.monotonic() - t0 < args.cpu_phase_seconds:
                ex.spin_once(timeout_sec=0.05)
            n, cpu = len(recv) - n0, _proc_cpu_s(node_pid) - cpu0
            phases.append({"pair": k, "subscribe": mode, "outputs": n, "node_cpu_s": round(cpu, 3),
                           "node_cpu_ms_per_output": round(1e3 * cpu / n, 3) if n else None})
    return phases


def _alternate_row(variant: str, load_run, phases: list[dict]) -> dict:
    """The ``alternate`` run's summary: each pair's every-output / latent-only CPU ratio."""
    import statistics

    ratios, lat, full = [], [], []
    for k in sorted({p["pair"] for p in phases}):
        by = {p["subscribe"]: p["node_cpu_ms_per_output"] for p in phases if p["pair"] == k}
        if by.get("latent") and by.get("all"):
            lat.append(by["latent"])
            full.append(by["all"])
            ratios.append(round(by["all"] / by["latent"], 3))
    return {"variant": variant, "subscribe": "alternate", "load": load_run[0], "pairs": len(ratios),
            "latent_cpu_ms_per_output": lat, "all_cpu_ms_per_output": full, "ratios": ratios,
            "ratio_median": statistics.median(ratios) if ratios else None,
            "ratio_min": min(ratios) if ratios else None, "ratio_max": max(ratios) if ratios else None,
            "phases": phases}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", choices=["bench", "publisher"], default="bench")
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--camera-hz", type=float, default=30.0)
    ap.add_argument("--audio-hz", type=float, default=2.0)
    ap.add_argument("--stroke-hz", type=float, default=2.0)
    ap.add_argument("--frame", default="28", help="camera frames: a side length for square mono8 frames (28 = the "
                    "camera node's playback) or 'vga' (640x480 bgr8)")
    ap.add_argument("--runs", default="shipped:image,fast:image,tuned:image,shipped:all,shipped:latent,"
                    "shipped:alternate",
                    help="comma-separated variant:subscribe runs; variant shipped | tuned | onnx | onnx_int8 | int8 "
                         "| fast "
                         "| single, subscribe image | all | latent | alternate")
    ap.add_argument("--cpu-pairs", type=int, default=6, help="subscribe mode alternate: latent-only / "
                    "every-output phase pairs")
    ap.add_argument("--cpu-phase-seconds", type=float, default=8.0, help="subscribe mode alternate: "
                    "length of each measured phase")
    ap.add_argument("--max-rate-hz", type=float, default=200.0, help="tuned variant only")
    ap.add_argument("--heartbeat-hz", type=float, default=5.0, help="tuned variant only")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the node if unset")
    ap.add_argument("--checkpoint", default="", help="node checkpoint (default: the shipped one)")
    ap.add_argument("--dds-profile", default=str(DEFAULT_DDS_PROFILE),
                    help="Fast DDS profile XML for all three processes (default: the shipped one, as the "
                         "launch files set it); 'none': Fast DDS's defaults")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    return run_publisher(args) if args.role == "publisher" else run_bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
