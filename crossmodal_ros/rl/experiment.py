# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Cross-modal transfer on the fused latent (after Silva, Vasco et al., AAMAS 2020).

One re-runnable command trains every policy, evaluates it and writes the results page::

    python -m crossmodal_ros.rl.experiment --seeds 3          # ~10 min on 2 CPU cores -> runs/rl/rl.md
    python -m crossmodal_ros.rl.experiment --seeds 3 --out docs/results/rl.md \
        --policy-out models/rl_pointer_image.pt               # regenerate the committed page and policy

Policies (PPO, same settings, ``--timesteps`` each, per seed), trained on the *train* split:

* **latent mean, camera only**: observation = fused latent mean with only the camera live;
* **latent samples, camera only**: the same, trained on draws from the fused Gaussian (mean + std
  x noise) instead of the mean (evaluated on the mean); exported as the shipped policy;
* **raw pixels, camera only** (comparison 1): observation = the 28x28 image itself; with the
  camera off it sees a blank image - it has nothing to transfer;
* **latent, per modality set** (comparison 2): one policy trained directly on each evaluated
  sensor set's latents (the upper reference for that set);
* **random** actions (chance reference).

Every policy is evaluated greedily on the *test* split for every evaluated sensor set, without
retraining; the page reports mean +- std over seeds of the episode return and success rate,
learning curves, and a verdict per set computed from the numbers. The latent tables are cached
by checkpoint hash (:mod:`crossmodal_ros.rl.latents`); the seed-0 *latent samples* policy is
exported to ``models/rl_pointer_image.pt``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from crossmodal_ros.rl.env import TaskConfig, evaluate
from crossmodal_ros.rl.latents import file_sha256, load_latent_table

TRAIN_SET = "image"
TRANSFER_SETS = ("audio", "trajectory", "audio+trajectory")
EVAL_SETS = (TRAIN_SET,) + TRANSFER_SETS + ("image+audio+trajectory",)
SET_LABEL = {"image": "camera (trained)", "audio": "microphone only", "trajectory": "pen only",
             "audio+trajectory": "pen + microphone", "image+audio+trajectory": "all three"}
DEFAULT_POLICY = Path("models/rl_pointer_image.pt")
SHIPPED = "latent_sampled"  # the policy exported to DEFAULT_POLICY (seed 0)


def _ms(values) -> tuple[float, float]:
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std())


def run(checkpoint=None, seeds: int = 3, timesteps: int = 500_000, episodes: int = 2000, obs_mode: str = "mu",
        out_md: str | Path = "runs/rl/rl.md", policy_out: str | Path | None = None,
        limit: int = 0, eval_every: int = 50_000, data: str = "digits", log=print,
        curve_episodes: int = 500) -> dict:
    """Train and evaluate the RL policies over ``seeds``; returns the results dict."""
    import torch

    from crossmodal_ros.paths import default_checkpoint
    from crossmodal_ros.rl.policy import export_sb3
    from crossmodal_ros.rl.train import PPO_KWARGS, N_ENVS, greedy, train_policy

    torch.set_num_threads(1)
    t_all = time.perf_counter()
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint()
    sha = file_sha256(checkpoint)
    t0 = time.perf_counter()
    train = load_latent_table("train", checkpoint, data, verbose=True)
    test = load_latent_table("test", checkpoint, data, verbose=True)
    if limit:
        train, test = train.subset(limit, 0), test.subset(max(limit // 2, 50), 1)
    t_cache = time.perf_counter() - t0
    log(f"latent tables: train {train.n}, test {test.n} samples x {len(train.subsets)} subsets, "
        f"D={train.latent_dim} ({t_cache:.1f} s, checkpoint {sha[:12]})")
    cfg = TaskConfig()
    alignment = latent_alignment(train, test)
    runs = []  # dicts: policy, trained_on, seed, seconds, eval {set: {...}}
    curves = {}  # (policy, trained_on) -> {"steps": [...], "curves": {set: [[per seed]...]}}

    plan = [("latent", TRAIN_SET, obs_mode, EVAL_SETS, False), ("latent_sampled", TRAIN_SET, obs_mode, EVAL_SETS, True),
            ("pixels", TRAIN_SET, "raw_image", EVAL_SETS, False)]
    plan += [("latent", s, obs_mode, (s,), False) for s in TRANSFER_SETS]
    for seed in range(seeds):
        for policy, trained_on, mode, sets, sampled in plan:
            log(f"seed {seed}: {policy} policy trained on {trained_on} ({timesteps} steps)")
            curve_sets = sets if policy.startswith("latent") and trained_on == TRAIN_SET else (trained_on,)
            res = train_policy(train, (trained_on,), mode, timesteps, seed, test=test, curve_subsets=curve_sets,
                               eval_every=eval_every, curve_episodes=curve_episodes, config=cfg,
                               sample_latent=sampled)
            act = greedy(res.model)
            ev = {s: evaluate(act, test, (s,), mode, episodes, config=cfg, seed=777 + seed) for s in sets}
            log(f"    {res.seconds:.0f} s; " + ", ".join(f"{s}: {v['success']:.2f}" for s, v in ev.items()))
            runs.append(dict(policy=policy, trained_on=trained_on, obs_mode=mode, seed=seed,
                             seconds=res.seconds, eval=ev))
            c = curves.setdefault(f"{policy}|{trained_on}", {"steps": res.curve_steps, "curves": {}})
            for s, v in res.curves.items():
                c["curves"].setdefault(s, []).append(v)
            if policy_out and seed == 0 and (policy, trained_on) == (SHIPPED, TRAIN_SET):
                export_sb3(res.model, policy_out, obs_mode=mode, latent_dim=train.latent_dim, trained_on=[TRAIN_SET],
                           sample_latent=sampled,
                           checkpoint_sha256=sha, checkpoint_name=checkpoint.name, seed=seed,
                           timesteps=int(timesteps), task=cfg, data=data, split="train")
                log(f"    exported the policy to {policy_out} ({os.path.getsize(policy_out) / 1024:.0f} KiB)")
    rng = np.random.default_rng(0)
    random_ev = {s: evaluate(lambda o: rng.integers(0, 3, len(o)), test, (s,), obs_mode, episodes, config=cfg,
                             seed=777) for s in EVAL_SETS}
    results = dict(checkpoint=str(checkpoint), checkpoint_sha256=sha, seeds=seeds, timesteps=timesteps,
                   episodes=episodes, obs_mode=obs_mode, limit=limit, task=cfg.__dict__, ppo=dict(PPO_KWARGS),
                   n_envs=N_ENVS, runs=runs, alignment=alignment, random=random_ev, curves=curves,
                   cache_seconds=t_cache,
                   total_seconds=time.perf_counter() - t_all, torch_threads=torch.get_num_threads(),
                   machine=f"{platform.machine()}, {os.cpu_count()} CPUs", n_train=train.n, n_test=test.n)
    results["table"] = summarise(results)
    if out_md:
        write_page(results, Path(out_md))
        log(f"wrote {out_md}")
    return results


def latent_alignment(train, test) -> dict:
    """How far apart the sensor sets' latents of the same digit are: accuracy of a
    nearest-class-centroid classifier on each set's *test* latents, with centroids fit on the
    camera's train latents (``camera_centroids``) or on that set's own train latents
    (``own_centroids``), and the mean distance of test latents to the camera centroid of their
    class relative to the camera's own (``distance_ratio``).
    """
    def centroids(mu, y):
        return np.stack([mu[y == k].mean(0) if np.any(y == k) else np.full(mu.shape[1], np.inf) for k in range(10)])

    cam = centroids(train.mu[TRAIN_SET], train.label)
    d_cam = np.linalg.norm(test.mu[TRAIN_SET] - cam[test.label], axis=1).mean()
    out = {}
    for s in EVAL_SETS:
        own = centroids(train.mu[s], train.label)
        x = test.mu[s]

        def acc(c):
            return float((np.linalg.norm(x[:, None] - c[None], axis=2).argmin(1) == test.label).mean())

        out[s] = {"camera_centroids": acc(cam), "own_centroids": acc(own),
                  "distance_ratio": float(np.linalg.norm(x - cam[test.label], axis=1).mean() / d_cam)}
    return out


def summarise(results: dict) -> dict:
    """``{set: {column: {"return": (mean, std), "success": (mean, std)}}}`` and a verdict per set."""
    runs = results["runs"]
    out = {}
    for s in EVAL_SETS:
        row = {}

        def cell(policy, trained_on):
            rs = [r["eval"][s] for r in runs if r["policy"] == policy and r["trained_on"] == trained_on
                  and s in r["eval"]]
            if not rs:
                return None
            return {"return": _ms([r["return"] for r in rs]), "success": _ms([r["success"] for r in rs]), "n": len(rs)}

        row["latent_camera"] = cell("latent", TRAIN_SET)
        row["latent_camera_sampled"] = cell("latent_sampled", TRAIN_SET)
        row["pixels_camera"] = cell("pixels", TRAIN_SET)
        row["latent_own"] = cell("latent", s) if s != TRAIN_SET else row["latent_camera"]
        rnd = results["random"][s]
        row["random"] = {"return": (rnd["return"], 0.0), "success": (rnd["success"], 0.0), "n": 1}
        row["verdict"] = verdict(s, row)
        row["verdict_sampled"] = verdict(s, row, "latent_camera_sampled")
        out[s] = row
    return out


def verdict(s: str, row: dict, key: str = "latent_camera") -> str:
    """A sentence computed from the numbers of one evaluation set for camera policy ``key``."""
    if s == TRAIN_SET:
        return "training condition"
    tr, own, pix, rnd = (row[k] for k in (key, "latent_own", "pixels_camera", "random"))
    if tr is None:
        return "-"
    t_m, t_s = tr["success"]
    p_m, p_s = pix["success"]
    r_m = rnd["success"][0]
    if own is None:
        ref = ""
        frac = None
    else:
        frac = t_m / own["success"][0] if own["success"][0] > 0 else 0.0
        ref = f"{100 * frac:.0f} % of the per-set policy's success"
    above = t_m - t_s > max(p_m + p_s, r_m)
    useful = t_m > r_m + 0.1
    if frac is not None and frac >= 0.9 and useful:
        return f"transfers ({ref})"
    if above and useful:
        return (f"partial transfer ({ref}; above the pixel policy and more than 10 points above chance)"
                if ref else "partial transfer")
    why = f"{100 * t_m:.0f} % success against {100 * r_m:.0f} % by chance and {100 * p_m:.0f} % for the pixel policy"
    return f"transfer fails ({ref + '; ' if ref else ''}{why})"


def _fmt(c, key, pct=False):
    if c is None:
        return "-"
    m, s = c[key]
    if pct:
        return f"{100 * m:.1f} ± {100 * s:.1f}" if c.get("n", 1) > 1 else f"{100 * m:.1f}"
    return f"{m:.2f} ± {s:.2f}" if c.get("n", 1) > 1 else f"{m:.2f}"


def write_page(results: dict, path: Path) -> None:
    """Write the Markdown results page of ``results`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    json_path = path.with_suffix(".json")
    json_path.write_text(json.dumps(results, indent=1, default=float))
    curves_png = path.parent / f"{stem}_learning_curves.png"
    transfer_png = path.parent / f"{stem}_transfer.png"
    plot_curves(results, curves_png)
    plot_transfer(results, transfer_png)
    t = results["table"]
    cols = [("latent_camera", "latent mean, camera only"),
            ("latent_camera_sampled", "latent samples, camera only"), ("pixels_camera", "raw pixels, camera only"),
            ("latent_own", "latent mean, trained on this set"), ("random", "random")]
    lines = []
    a = lines.append
    a("# Reinforcement learning on the latent: cross-modal transfer")
    a("")
    a("Generated by `python -m crossmodal_ros.rl.experiment` "
      f"(`--seeds {results['seeds']} --timesteps {results['timesteps']} --episodes {results['episodes']}`"
      + (f" `--limit {results['limit']}`" if results["limit"] else "") + "); do not edit by hand. "
      f"Checkpoint `{Path(results['checkpoint']).name}` (SHA-256 `{results['checkpoint_sha256'][:16]}…`); "
      f"train split {results['n_train']} samples, test split {results['n_test']} samples.")
    a("")
    a("**Task** (`crossmodal_ros.rl.env`): a pointer on 10 cells must be moved to the cell of the digit the "
      "agent perceives and *submit* pressed there (actions left / right / submit; "
      f"-{results['task']['step_cost']} per step, +{results['task']['success_reward']} for a submit on the "
      f"digit's cell, -{results['task']['wrong_penalty']} for a submit elsewhere, both end the episode; at most "
      f"{results['task']['max_steps']} steps; random start cell). Observation: the fused latent mean "
      f"(`{results['obs_mode']}`, from the Nexus model) plus the pointer cell one-hot. Success = the episode "
      "ended with a submit on the right cell. The best possible return is 1 - 0.02 x (distance + 1), about "
      "0.92 on average.")
    a("")
    a(f"**Protocol** (after Silva, Vasco et al., *Playing Games in the Dark*, AAMAS 2020): policies are "
      f"trained with PPO (Stable-Baselines3, {results['n_envs']} batched episodes, "
      f"{results['timesteps']} steps, MLP 64x64 tanh) on latents of the *train* split with only the camera "
      "live, then evaluated greedily on the *test* split with the camera off and other sensors live, without "
      f"retraining ({results['episodes']} episodes per set and seed, {results['seeds']} seeds, mean ± std "
      "over seeds). Comparisons: a policy on the raw 28x28 image (it sees a blank image when the camera is "
      "off), a latent policy trained on each evaluated sensor set itself, and random actions. Two camera-only "
      "latent policies: *latent mean* observes the fused mean, as every policy does at evaluation; "
      "*latent samples* was trained on draws from the fused Gaussian (mean + std x noise, fresh each "
      "step; still only the camera) and is evaluated on the mean like the others. The shipped "
      f"`{DEFAULT_POLICY.as_posix()}` is the seed-0 "
      f"*{'latent samples' if SHIPPED == 'latent_sampled' else 'latent mean'}* policy.")
    a("")
    a("## Transfer table (test split)")
    a("")
    a("Success rate, % (mean ± std over seeds):")
    a("")
    a("| live sensors at evaluation | " + " | ".join(c for _, c in cols) + " | verdict: latent mean | "
      "verdict: latent samples |")
    a("|---|" + "---|" * (len(cols) + 2))
    for s in EVAL_SETS:
        row = t[s]
        a(f"| {SET_LABEL[s]} (`{s}`) | " + " | ".join(_fmt(row[k], "success", True) for k, _ in cols)
          + f" | {row['verdict']} | {row['verdict_sampled']} |")
    a("")
    a("Episode return (mean ± std over seeds):")
    a("")
    a("| live sensors at evaluation | " + " | ".join(c for _, c in cols) + " |")
    a("|---|" + "---|" * len(cols))
    for s in EVAL_SETS:
        row = t[s]
        a(f"| {SET_LABEL[s]} (`{s}`) | " + " | ".join(_fmt(row[k], "return") for k, _ in cols) + " |")
    a("")
    a("No policy was trained on all three sensors ('-'); the camera policy itself is the reference in the "
      "camera row. The verdict, per camera-only latent policy: *transfers* when it reaches at least 90 % of the "
      "success of the policy trained on that set and is more than 10 points above chance; *partial transfer* "
      "when it is below that but clearly "
      "(more than one std) above the pixel policy and more than 10 points above chance; otherwise "
      "*transfer fails*.")
    a("")
    al = results.get("alignment")
    if al:
        a("**Why transfer succeeds or fails: are the latents of one digit the same across sensors?** "
          "Accuracy of a nearest-class-centroid classifier on each sensor set's test latents, with the "
          "centroids fit on the camera's train latents or on that set's own train latents, and the mean "
          "distance of a test latent to the camera centroid of its digit relative to the camera's own "
          "(1.0 = as close as camera latents are):")
        a("")
        a("| live sensors | camera centroids, % | own centroids, % | distance to camera centroid (x camera) |")
        a("|---|---|---|---|")
        for s in EVAL_SETS:
            v = al[s]
            a(f"| {SET_LABEL[s]} (`{s}`) | {100 * v['camera_centroids']:.1f} | {100 * v['own_centroids']:.1f} | "
              f"{v['distance_ratio']:.2f} |")
        a("")
    a(f"![learning curves]({curves_png.name})")
    a("")
    a("Learning curves: greedy success rate on the test split during training (mean ± std over seeds). "
      "Left and middle: the two camera-only latent policies evaluated on every sensor set as they train. "
      "Right: each per-set policy on its own set and the raw-pixel policy on the camera.")
    a("")
    a(f"![transfer]({transfer_png.name})")
    a("")
    a("## Timings")
    a("")
    secs = {}
    for r in results["runs"]:
        secs.setdefault(f"{r['policy']} / {r['trained_on']}", []).append(r["seconds"])
    a(f"Machine: {results['machine']}, torch threads {results['torch_threads']}. Latent tables (load from the "
      f"cache or encode both splits under 7 sensor subsets): {results['cache_seconds']:.0f} s. "
      f"Whole experiment: {results['total_seconds'] / 60:.1f} min.")
    a("")
    a("| policy / trained on | training time per seed, s |")
    a("|---|---|")
    for k, v in secs.items():
        a(f"| {k} | " + ", ".join(f"{x:.0f}" for x in v) + " |")
    a("")
    a(f"Raw numbers: [{json_path.name}]({json_path.name}).")
    path.write_text("\n".join(lines) + "\n")


def plot_curves(results: dict, path: Path) -> None:
    """Plot the learning curves of ``results`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
    panels = ((axes[0], f"latent|{TRAIN_SET}", "latent mean, camera only"),
              (axes[1], f"latent_sampled|{TRAIN_SET}", "latent samples, camera only"))
    for ax, key, title in panels:
        c = results["curves"].get(key)
        if c:
            steps = np.asarray(c["steps"])
            for s, per_seed in c["curves"].items():
                _band(ax, steps, per_seed, SET_LABEL[s])
        ax.set_title(f"{title}: evaluated on each sensor set", fontsize=10)
    for key in [f"latent|{s}" for s in TRANSFER_SETS] + [f"pixels|{TRAIN_SET}"]:
        c = results["curves"].get(key)
        if c:
            policy, s = key.split("|")
            _band(axes[2], np.asarray(c["steps"]), c["curves"][s],
                  f"{'latent mean' if policy == 'latent' else 'raw pixels'}, trained+evaluated on {SET_LABEL[s]}")
    axes[2].set_title("comparison policies", fontsize=10)
    for ax in axes:
        ax.set_xlabel("training steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("success rate (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _band(ax, steps, per_seed, label) -> None:
    n = min(len(x) for x in per_seed)
    arr = np.asarray([x[:n] for x in per_seed])
    m, sd = arr.mean(0), arr.std(0)
    ax.plot(steps[:n], m, label=label)
    ax.fill_between(steps[:n], m - sd, m + sd, alpha=0.2)


def plot_transfer(results: dict, path: Path) -> None:
    """Plot the cross-modal transfer results to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = results["table"]
    cols = [("latent_camera", "latent mean, camera only"), ("latent_camera_sampled", "latent samples, camera only"),
            ("pixels_camera", "raw pixels, camera only"), ("latent_own", "latent mean, trained on the set"),
            ("random", "random")]
    x = np.arange(len(EVAL_SETS))
    w = 0.16
    fig, ax = plt.subplots(figsize=(11, 3.8))
    for i, (k, lab) in enumerate(cols):
        m = [t[s][k]["success"][0] if t[s][k] else 0 for s in EVAL_SETS]
        e = [t[s][k]["success"][1] if t[s][k] else 0 for s in EVAL_SETS]
        ax.bar(x + (i - 2) * w, m, w, yerr=e, label=lab, capsize=2)
    ax.set_xticks(x, [SET_LABEL[s] for s in EVAL_SETS])
    ax.set_ylabel("success rate (test)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=5, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    """Command line of the RL experiment."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="", help="Nexus checkpoint (default: models/nexus_digits.pt)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--timesteps", type=int, default=500_000, help="PPO steps per policy")
    p.add_argument("--episodes", type=int, default=2000, help="test episodes per (policy, sensor set, seed)")
    p.add_argument("--eval-every", type=int, default=50_000, help="learning-curve interval (steps)")
    p.add_argument("--obs-mode", default="mu", choices=("mu", "mu_std"))
    p.add_argument("--out", default="runs/rl/rl.md",
                   help="results page (json and PNGs beside it; the committed one: docs/results/rl.md)")
    p.add_argument("--policy-out", default="",
                   help="where the seed-0 camera policy goes (default '': nowhere; the shipped one: "
                        f"{DEFAULT_POLICY.as_posix()})")
    p.add_argument("--limit", type=int, default=0, help="use only this many train samples (smoke runs)")
    p.add_argument("--data", default="digits")
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run(a.checkpoint or None, a.seeds, a.timesteps, a.episodes, a.obs_mode, a.out, a.policy_out or None,
        a.limit, a.eval_every, a.data, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
