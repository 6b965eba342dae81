# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""crossmodal_ros.rl (ROS-free): the environment passes Gymnasium's checker, the task's dynamics
and rewards, the batched VecEnv, latent tables (engine agreement, cache keyed by checkpoint
hash), policy files, PPO learning, and the transfer experiment end to end on synthetic latents.
"""
from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from crossmodal_ros.rl.env import (LEFT, N_CELLS, RIGHT, SUBMIT, LatentPointerEnv, PointerBatch,  # noqa: E402
                                   TaskConfig, evaluate, latent_observation, make_vec_env, task_step)
from crossmodal_ros.rl.latents import (LatentTable, build_latent_table, cache_path, canonical_subset,  # noqa: E402
                                       read_table, save_table, sensor_subsets)

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]
D = 16


def synthetic_table(n=400, seed=0, informative=("image", "audio", "image+audio+trajectory")) -> LatentTable:
    """Latents that encode the label (one-hot + noise) for ``informative`` subsets and are pure
    noise for the others (audio is a copy of image); the image is a label-dependent pattern.
    """
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 10, n)
    onehot = np.eye(D, dtype=np.float32)[label] * 2.0
    mu, lv = {}, {}
    for s in sensor_subsets():
        noise = rng.normal(0, 0.3, (n, D)).astype(np.float32)
        mu[s] = (onehot + noise) if s in informative else rng.normal(0, 1, (n, D)).astype(np.float32)
        lv[s] = np.full((n, D), -1.0, np.float32)
    mu["audio"], lv["audio"] = mu["image"], lv["image"]  # the microphone "sees" exactly what the camera sees
    image = np.zeros((n, 784), np.uint8)
    image[np.arange(n), label * 50] = 255
    return LatentTable(mu, lv, label.astype(np.int64), image, "f" * 64, "synthetic")


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


@pytest.mark.parametrize("obs_mode", ["mu", "mu_std", "raw_image"])
def test_env_passes_gymnasium_check_env(table, obs_mode):
    from gymnasium.utils.env_checker import check_env

    env = LatentPointerEnv(table, subsets=("image", "audio+trajectory"), obs_mode=obs_mode, switch_prob=0.3)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert set(info) >= {"target", "pointer", "live"}


def test_env_on_real_latents_passes_check_env():
    """The shipped model's latents of a few real test samples (FusionEngine, every subset)."""
    from gymnasium.utils.env_checker import check_env

    from crossmodal_ros.data.digits import load_digits
    from crossmodal_ros.engine import FusionEngine

    engine = FusionEngine.from_checkpoint(device="cpu")
    ds = load_digits("test")
    small = {k: (v[:12] if isinstance(v, np.ndarray) and v.ndim and len(v) == len(ds["label"]) else v)
             for k, v in ds.items()}
    t = build_latent_table(engine, small, batch=5)
    assert t.subsets == sensor_subsets() and t.n == 12 and t.image.shape == (12, 784)
    for s in t.subsets:
        assert t.mu[s].shape == (12, t.latent_dim) and t.latent_dim > 0
        assert np.all(np.isfinite(t.mu[s])) and np.all(np.isfinite(t.logvar[s]))
    # batched table == the engine on one sample at a time
    from crossmodal_ros.data.features import model_tensors

    x = model_tensors(small, engine.codecs)
    one = engine.infer_tensors({"audio": x["audio"][7:8], "trajectory": x["trajectory"][7:8]})["latent_mu"][0]
    np.testing.assert_allclose(t.mu["audio+trajectory"][7], one, atol=1e-4)
    assert not np.allclose(t.mu["image"], t.mu["audio"])
    check_env(LatentPointerEnv(t, subsets=("audio", "trajectory")), skip_render_check=True)


def test_task_dynamics_and_rewards():
    cfg = TaskConfig()
    p, s, r, term, trunc, hit = task_step([0, 9, 4, 3], [0, 0, 0, 0], [LEFT, RIGHT, SUBMIT, SUBMIT], [5, 5, 4, 7], cfg)
    assert list(p) == [0, 9, 4, 3]  # clamped at the ends
    assert list(hit) == [False, False, True, False]
    np.testing.assert_allclose(r, [-0.02, -0.02, 0.98, -0.52])
    assert list(term) == [False, False, True, True] and not trunc.any()
    p, s, r, term, trunc, hit = task_step([2], [cfg.max_steps - 1], [RIGHT], [5], cfg)
    assert trunc[0] and not term[0] and p[0] == 3
    with pytest.raises(ValueError):
        task_step([0], [0], [3], [0], cfg)


def test_observation_layout(table):
    obs = latent_observation(table.mu["image"][:3], table.logvar["image"][:3], [0, 4, 9], "mu_std")
    assert obs.shape == (3, 2 * D + N_CELLS)
    np.testing.assert_array_equal(obs[:, :D], table.mu["image"][:3])
    np.testing.assert_allclose(obs[:, D:2 * D], np.exp(-0.5), rtol=1e-6)
    assert list(obs[:, 2 * D:].argmax(1)) == [0, 4, 9]
    b = PointerBatch(table, 50, ("audio", "image"), "raw_image", seed=0)
    o = b.obs()
    camera_off = np.array([s == "audio" for s in b.live_names()])
    assert camera_off.any() and (~camera_off).any()
    assert np.all(o[camera_off, :784] == 0) and np.all(o[~camera_off, :784].max(1) == 1.0)


def test_vec_env_autoresets_and_reports_episodes(table):
    venv = make_vec_env(table, n_envs=8, subsets=("image",), seed=1)
    obs = venv.reset()
    assert obs.shape == (8, D + N_CELLS)
    venv.step_async(np.full(8, SUBMIT))
    obs2, rew, done, infos = venv.step_wait()
    assert done.all() and all("terminal_observation" in i and "episode" in i for i in infos)
    assert np.isclose(rew, 0.98).sum() + np.isclose(rew, -0.52).sum() == 8
    assert [i["is_success"] for i in infos] == list(np.isclose(rew, 0.98))


def oracle(table_subset_mu_is_onehot=True):
    """Reads the label from the synthetic latent (argmax of the one-hot part) and walks there."""
    def act(obs):
        target = obs[:, :10].argmax(1)
        pointer = obs[:, -N_CELLS:].argmax(1)
        return np.where(pointer < target, RIGHT, np.where(pointer > target, LEFT, SUBMIT))
    return act


def test_evaluate_oracle_random_and_noise(table):
    best = evaluate(oracle(), table, ("image",), episodes=500)
    assert best["success"] > 0.97 and best["return"] > 0.85
    noise = evaluate(oracle(), table, ("trajectory",), episodes=500)  # uninformative latents
    assert noise["success"] < 0.3
    rng = np.random.default_rng(0)
    rand = evaluate(lambda o: rng.integers(0, 3, len(o)), table, ("image",), episodes=500)
    assert rand["success"] < 0.3 and rand["return"] < best["return"] - 0.5


def test_latent_cache_is_keyed_by_checkpoint_hash(tmp_path, table):
    a = cache_path("a" * 64, "train", cache_dir=tmp_path)
    b = cache_path("b" * 64, "train", cache_dir=tmp_path)
    c = cache_path("a" * 64, "test", cache_dir=tmp_path)
    assert len({a, b, c}) == 3
    save_table(table, a)
    back = read_table(a)
    assert back.checkpoint_sha256 == table.checkpoint_sha256 and back.subsets == table.subsets
    for s in table.subsets:
        np.testing.assert_array_equal(back.mu[s], table.mu[s])
    assert canonical_subset("trajectory+audio") == "audio+trajectory"
    with pytest.raises(ValueError):
        canonical_subset("label")


def test_ppo_learns_and_exported_policy_acts_like_sb3(tmp_path, table):
    pytest.importorskip("stable_baselines3")
    from crossmodal_ros.rl.policy import PolicyError, export_sb3, load_policy
    from crossmodal_ros.rl.train import greedy, train_policy

    res = train_policy(table, ("image",), "mu", 100_000, seed=0, test=table, curve_subsets=("image",),
                       eval_every=50_000, curve_episodes=200)
    assert res.curve_steps[0] == 0 and len(res.curves["image"]) == len(res.curve_steps) >= 3
    path = export_sb3(res.model, tmp_path / "p.pt", obs_mode="mu", checkpoint_sha256="f" * 64)
    pol = load_policy(path)
    obs = PointerBatch(table, 256, ("image", "audio", "trajectory"), seed=5).obs()
    np.testing.assert_array_equal(pol.act(obs), greedy(res.model)(obs))
    learned = evaluate(pol.act, table, ("image",), episodes=500)
    assert learned["success"] > 0.8, learned
    pol.check_checkpoint("f" * 64)
    with pytest.raises(PolicyError):
        pol.check_checkpoint("0" * 64)
    (tmp_path / "bad.pt").write_bytes(b"not a policy")
    with pytest.raises(PolicyError):
        load_policy(tmp_path / "bad.pt")


def test_experiment_writes_table_for_every_set(tmp_path, monkeypatch):
    """End to end on synthetic latents: audio carries the label like the camera (transfers),
    trajectory and audio+trajectory are noise (transfer fails); the page's verdicts follow.
    """
    pytest.importorskip("stable_baselines3")
    from crossmodal_ros.rl import experiment

    train, test = synthetic_table(600, 0), synthetic_table(300, 1)
    monkeypatch.setattr(experiment, "load_latent_table", lambda split, *a, **k: train if split == "train" else test)
    res = experiment.run(checkpoint=__file__, seeds=2, timesteps=12_000, episodes=200, out_md=tmp_path / "rl.md",
                         policy_out=tmp_path / "rl_pointer.pt", eval_every=6_000, log=lambda m: None,
                         curve_episodes=100)
    t = res["table"]
    assert set(t) == set(experiment.EVAL_SETS)
    for s in experiment.EVAL_SETS:
        for col in ("latent_camera", "latent_camera_sampled", "pixels_camera", "random"):
            assert t[s][col] is not None and len(t[s][col]["success"]) == 2
        assert (t[s]["latent_own"] is None) == (s == "image+audio+trajectory")
        assert t[s]["latent_camera"]["n"] == 2
    # audio latents are a copy of the camera's: the camera policy *is* the audio policy (same data, same seed)
    assert t["audio"]["latent_camera"] == t["audio"]["latent_own"] == t["image"]["latent_camera"]
    assert t["trajectory"]["verdict"].startswith("transfer fails")  # noise latents
    assert t["trajectory"]["pixels_camera"]["success"][0] < 0.2  # blank image with the camera off
    assert set(res["alignment"]) == set(experiment.EVAL_SETS)
    md = (tmp_path / "rl.md").read_text()
    for s in experiment.EVAL_SETS:
        assert f"(`{s}`)" in md
    assert (tmp_path / "rl_learning_curves.png").stat().st_size > 1000
    assert (tmp_path / "rl_transfer.png").stat().st_size > 1000
    assert (tmp_path / "rl.json").is_file() and (tmp_path / "rl_pointer.pt").is_file()


def test_rl_core_imports_without_ros():
    """Training needs no ROS: crossmodal_ros.rl imports where importing rclpy is impossible."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import importlib, sys

        class BlockRos:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("rclpy", "rosidl_runtime_py", "std_msgs", "sensor_msgs"):
                    raise ImportError(f"{name} is blocked")
                return None

        sys.meta_path.insert(0, BlockRos())
        for m in ("latents", "env", "policy", "train", "experiment"):
            importlib.import_module(f"crossmodal_ros.rl.{m}")
        import crossmodal_ros.rl.env as env
        env.make_vec_env  # noqa: B018
        assert not any(k.split(".")[0] == "rclpy" for k in sys.modules)
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_verdicts_follow_the_numbers():
    from crossmodal_ros.rl.experiment import verdict

    def row(cam, own, pix=0.0, rnd=0.1, sd=0.02):
        c = lambda m: {"success": (m, sd), "return": (0.0, 0.0), "n": 3}  # noqa: E731
        return {"latent_camera": c(cam), "latent_own": c(own), "pixels_camera": c(pix), "random": c(rnd)}

    assert verdict("audio", row(0.80, 0.85)).startswith("transfers (94 %")
    assert verdict("audio", row(0.40, 0.80)).startswith("partial transfer (50 %")
    assert verdict("audio", row(0.15, 0.80)).startswith("transfer fails (19 %")
    assert verdict("audio", row(0.11, 0.11)).startswith("transfer fails")  # nobody beats chance
    assert verdict("audio", row(0.40, 0.80, pix=0.45)).startswith("transfer fails")  # not above pixels
    assert verdict("image", row(0.9, 0.9)) == "training condition"


def test_sampled_latent_observations(table):
    """Training-time augmentation: a fresh draw mu + std * noise per step, the mean otherwise."""
    mean = PointerBatch(table, 2000, ("image",), seed=0)
    samp = PointerBatch(table, 2000, ("image",), seed=0, sample_latent=True)
    np.testing.assert_array_equal(mean.sample, samp.sample)
    a, b = samp.obs(), samp.obs()
    diff = a[:, :D] - mean.obs()[:, :D]
    assert abs(diff.std() - np.exp(-0.5)) < 0.02 and abs(diff.mean()) < 0.02  # logvar -1 -> std e^-0.5
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a[:, D:], mean.obs()[:, D:])  # the pointer part is exact
