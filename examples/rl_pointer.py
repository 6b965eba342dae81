#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""An RL agent on the fused latent: train it in simulation, run it unchanged against ROS.

The task (crossmodal_ros.rl.env): move a pointer on 10 cells to the digit the robot perceives
and press submit there. The agent observes only the Nexus latent (plus its pointer cell).

Train (simulation, no ROS; ~1 min to encode the dataset once, then ~1-2 min of PPO on 2 cores)::

    python examples/rl_pointer.py train                   # -> runs/rl_pointer_image.pt
    python examples/rl_pointer.py train --out models/rl_pointer_image.pt   # replace the shipped policy

Run against the demo graph, built in this process as ``make demo`` builds it (camera,
microphone and pen playback of the test split, the inference node with the shipped model), with
the sensors dropping in and out (camera only -> camera off -> pen only -> microphone only ->
all); one episode per playback sample, returns printed per episode and per phase::

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=73 python examples/rl_pointer.py run --duration 60

``run --attach`` instead attaches to an inference node that is already running (``make demo``
or the launch file, same ROS_DOMAIN_ID): there is no ground truth then, so it prints the digit
the agent submits for each episode instead of a return.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

DEFAULT_POLICY = "models/rl_pointer_image.pt"


def cmd_train(a) -> int:
    import torch

    torch.set_num_threads(1)
    from crossmodal_ros.rl.env import evaluate
    from crossmodal_ros.rl.experiment import EVAL_SETS
    from crossmodal_ros.rl.latents import file_sha256, load_latent_table
    from crossmodal_ros.rl.policy import export_sb3, load_policy
    from crossmodal_ros.paths import default_checkpoint
    from crossmodal_ros.rl.train import train_policy

    t0 = time.perf_counter()
    ckpt = Path(a.checkpoint) if a.checkpoint else default_checkpoint()
    train = load_latent_table("train", ckpt, verbose=True)
    test = load_latent_table("test", ckpt, verbose=True)
    print(f"latent tables ready in {time.perf_counter() - t0:.0f} s; training PPO for {a.timesteps} steps "
          f"on camera-only latent {'means' if a.mean else 'samples'} (seed {a.seed})", flush=True)
    res = train_policy(train, ("image",), "mu", a.timesteps, a.seed, test=test, curve_subsets=("image",),
                       log=lambda m: print(m, flush=True), sample_latent=not a.mean)
    export_sb3(res.model, a.out, obs_mode="mu", latent_dim=train.latent_dim, trained_on=["image"],
               sample_latent=not a.mean,
               checkpoint_sha256=file_sha256(ckpt), checkpoint_name=ckpt.name, seed=a.seed,
               timesteps=int(a.timesteps), data="digits", split="train")
    policy = load_policy(a.out)
    print(f"trained in {res.seconds:.0f} s (total {time.perf_counter() - t0:.0f} s); wrote {a.out} "
          f"({os.path.getsize(a.out) / 1024:.0f} KiB). Test split, 1000 episodes each:")
    for s in EVAL_SETS:
        r = evaluate(policy.act, test, (s,), "mu", 1000)
        print(f"  {s:24s} return {r['return']:+.2f}  success {100 * r['success']:.1f} %")
    return 0


def cmd_run(a) -> int:
    import rclpy
    import torch
    from rclpy.executors import SingleThreadedExecutor

    torch.set_num_threads(1)
    from crossmodal_ros.paths import default_checkpoint
    from crossmodal_ros.rl.env import ACTIONS
    from crossmodal_ros.rl.latents import file_sha256
    from crossmodal_ros.rl.policy import load_policy
    from crossmodal_ros.ros.rl_adapter import LatentObserver, RosPointerEnv

    policy = load_policy(a.policy)
    ckpt = Path(a.checkpoint) if a.checkpoint else default_checkpoint()
    if not a.attach:
        policy.check_checkpoint(file_sha256(ckpt))
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    graph, clock = None, None
    try:
        if not a.attach:
            from crossmodal_ros.ros.demo import build_graph
            from crossmodal_ros.sensors.playback import PlaybackClock
            from crossmodal_ros.ros.sensor_base import load_playback_dataset

            dataset = load_playback_dataset("digits", "test")
            schedule = transfer_schedule(a.duration / 5.0)
            nexus_params = dict(device="cpu", max_rate_hz=20.0, heartbeat_hz=5.0,
                                staleness={"image": a.period * 0.9, "audio": a.period * 0.9,
                                           "trajectory": a.period * 0.9, "label": 0.0})
            graph = build_graph(ctx, str(ckpt), _flat(nexus_params), dataset, schedule, a.period, a.seed, 16000)
            for n in graph.nodes:
                executor.add_node(n)
            clock = PlaybackClock(len(dataset["label"]), a.period, seed=a.seed, schedule=schedule,
                                  schedule_start=graph.start)
        agent = rclpy.create_node("rl_agent", context=ctx)
        executor.add_node(agent)
        observer = LatentObserver(agent, a.prefix)

        def tick_now():
            return clock.describe(clock.tick_at(time.time())) if clock else None

        def target():
            d = tick_now()
            return int(dataset["label"][d.index]) if d is not None and d.live else None

        env = RosPointerEnv(observer, executor, policy.obs_dim - 10, target if clock else None, policy.obs_mode,
                            step_s=a.step_s, wait_s=30.0, expected_checkpoint=policy.checkpoint_sha256)
        if clock is not None:  # wait for the first sample
            while time.time() < graph.start + 0.3:
                executor.spin_once(timeout_sec=0.05)
        end = time.time() + a.duration
        print(f"policy {a.policy} ({policy.meta.get('trained_on')}, checkpoint "
              f"{policy.checkpoint_sha256[:12]}); one episode per sample, agent at {1 / a.step_s:.0f} Hz")
        print(f"  {'t [s]':>6s} {'live sensors':26s} {'fused':26s} {'true':>4s} {'submit':>6s} {'steps':>5s} "
              f"{'return':>7s}")
        per_phase: dict = {}
        rng = np.random.default_rng(a.seed)
        while time.time() < end:
            d0 = tick_now()
            if d0 is not None:  # start each episode on a fresh sample, after the inputs settle
                while tick_now().tick == d0.tick:
                    executor.spin_once(timeout_sec=0.02)
                t_settle = time.time() + a.settle_s
                while time.time() < t_settle:
                    executor.spin_once(timeout_sec=0.02)
                d0 = tick_now()
            obs, info = env.reset(options={"start": int(rng.integers(0, 10))})
            ret, done, submitted, n = 0.0, False, None, 0
            while not done:
                act = int(policy.act(obs)[0])
                obs, r, term, trunc, info = env.step(act)
                ret, n, done = ret + r, n + 1, term or trunc
                if ACTIONS[act] == "submit":
                    submitted = info["pointer"]
            live = "+".join(sorted(d0.live)) if d0 is not None else "?"
            fused = "+".join(info["fused"]) or "?"
            true = "-" if info["target"] is None else str(info["target"])
            print(f"  {time.time() - (graph.start if graph else 0):6.1f} {live:26s} {fused:26s} {true:>4s} "
                  f"{'-' if submitted is None else submitted:>6} {n:5d} "
                  f"{(f'{ret:+.2f}' if clock else '-'):>7s}", flush=True)
            if d0 is not None:
                per_phase.setdefault(d0.phase or live, []).append((ret, bool(info.get("success"))))
        if per_phase:
            print("summary per phase (episodes, mean return, success):")
            for ph, v in per_phase.items():
                r = np.array([x for x, _ in v])
                print(f"  {ph:30s} {len(v):3d}  {r.mean():+.2f}  {100 * np.mean([s for _, s in v]):.0f} %")
    finally:
        executor.shutdown()
        if graph is not None:
            graph.destroy(None)
        rclpy.shutdown(context=ctx)
    return 0


def transfer_schedule(phase_s: float):
    """Camera only (the training condition) -> camera off -> pen only -> microphone only -> all,
    ``phase_s`` each, repeating (the demo's schedule starts with all sensors instead).
    """
    from crossmodal_ros.sensors.outages import OutageSchedule, Phase, parse_modalities

    plan = [("camera only", "image"), ("camera off", "audio, trajectory"), ("pen only", "trajectory"),
            ("microphone only", "audio"), ("all sensors", "all")]
    return OutageSchedule(tuple(Phase(i * phase_s, (i + 1) * phase_s, parse_modalities(m), name)
                                for i, (name, m) in enumerate(plan)), repeat=True)


def _flat(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the camera-only latent policy in simulation")
    t.add_argument("--timesteps", type=int, default=500_000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint", default="")
    t.add_argument("--out", default="runs/rl_pointer_image.pt",
                   help="policy file (default: runs/rl_pointer_image.pt; the shipped one: models/rl_pointer_image.pt)")
    t.add_argument("--mean", action="store_true",
                   help="train on the latent mean (default: on samples of the fused Gaussian, which transfers better)")
    r = sub.add_parser("run", help="run the policy against the live latent topic")
    r.add_argument("--policy", default=DEFAULT_POLICY,
                   help="policy file (default: the shipped models/rl_pointer_image.pt; "
                        "one you trained: runs/rl_pointer_image.pt)")
    r.add_argument("--checkpoint", default="")
    r.add_argument("--duration", type=float, default=60.0, help="seconds (5 outage phases)")
    r.add_argument("--period", type=float, default=3.0, help="seconds per playback sample (= per episode)")
    r.add_argument("--step-s", type=float, default=0.1, help="agent control period")
    r.add_argument("--settle-s", type=float, default=0.3, help="wait after a new sample before acting")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--prefix", default="/nexus")
    r.add_argument("--attach", action="store_true", help="use an already running node (no ground truth)")
    a = p.parse_args(argv)
    return cmd_train(a) if a.cmd == "train" else cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
