# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The shipped RL policy through the ROS adapter against a live inference node (real rclpy
in-process, the shipped model): observations of the right shape, finite, equal to the
simulated ones, and the policy solves an episode it solves in simulation.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from std_msgs.msg import Float32MultiArray  # noqa: E402

from crossmodal_ros.paths import default_checkpoint, models_dir  # noqa: E402
from crossmodal_ros.rl.env import N_CELLS, SUBMIT, latent_observation  # noqa: E402
from crossmodal_ros.rl.latents import file_sha256  # noqa: E402
from crossmodal_ros.rl.policy import load_policy  # noqa: E402
from crossmodal_ros.ros import conversions as conv  # noqa: E402
from crossmodal_ros.ros.nexus_node import OUTPUT_NAMES, make_node  # noqa: E402
from crossmodal_ros.ros.rl_adapter import LatentObserver, RosPointerEnv  # noqa: E402

from ros_helpers import ros_context, ros_module_context  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
POLICY = models_dir() / "rl_pointer_image.pt"


@pytest.fixture(scope="module")
def shipped():
    """(policy, engine, chosen sample: frame, label, simulated mu) for the shipped files."""
    import torch

    from crossmodal_ros.data.digits import load_digits
    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.sensors.playback import frame_from_image

    policy = load_policy(POLICY)
    engine = FusionEngine.from_checkpoint(default_checkpoint(), device="cpu")
    ds = load_digits("test")
    # the first test samples whose camera latent the policy solves from every start cell in simulation
    idx = np.arange(40)
    # the frame the test camera publishes, through the checkpoint's own image codec (the node
    # preprocesses exactly so): the simulated observation of that frame
    frames = [frame_from_image(ds["image"][i]) for i in idx]
    x = np.stack([engine.codecs["image"].encode(f) for f in frames]).astype(np.float32)
    mu = engine.infer_tensors({"image": torch.from_numpy(x)})["latent_mu"]
    for i, f, m in zip(idx, frames, mu):
        if all(_sim_episode(policy, m, int(ds["label"][i]), start) for start in range(N_CELLS)):
            return policy, f, int(ds["label"][i]), m
    pytest.fail("the shipped policy solves none of the first 40 test images from every start cell")


def _sim_episode(policy, mu, label, start, max_steps=20) -> bool:
    pointer = start
    for _ in range(max_steps):
        a = int(policy.act(latent_observation(mu[None], mu[None] * 0, [pointer]))[0])
        if a == SUBMIT:
            return pointer == label
        pointer = int(np.clip(pointer + (1 if a == 1 else -1), 0, N_CELLS - 1))
    return False


def test_shipped_policy_belongs_to_the_shipped_model():
    """A retrained models/nexus_digits.pt has a new latent space: the policy must be retrained too
    (python -m crossmodal_ros.rl.experiment), and this test says so.
    """
    policy = load_policy(POLICY)
    assert POLICY.stat().st_size < 1_000_000
    assert policy.checkpoint_sha256 == file_sha256(default_checkpoint()), (
        "models/rl_pointer_image.pt was trained on another checkpoint's latents; "
        "rerun python -m crossmodal_ros.rl.experiment --seeds 3 --out docs/results/rl.md "
        "--policy-out models/rl_pointer_image.pt")


def test_policy_runs_unchanged_against_live_node(ros_context, shipped):
    policy, frame, label, sim_mu = shipped
    rc = ros_context
    nexus = rc.add(make_node(context=rc.context, checkpoint=str(default_checkpoint()), device="cpu",
                             max_rate_hz=50.0, heartbeat_hz=10.0, autostart=True))
    assert nexus.lifecycle_state == "active"
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    cam = rc.add(Node("test_camera", context=rc.context))
    pub = cam.create_publisher(Image, "camera/image_raw", 10)
    cam.create_timer(0.05, lambda: pub.publish(conv.numpy_to_image(frame, "mono8", frame_id="camera")))
    agent = rc.add(Node("test_agent", context=rc.context))
    observer = LatentObserver(agent, "/nexus")
    env = RosPointerEnv(observer, rc.executor, latent_dim=policy.obs_dim - N_CELLS, target_fn=lambda: label,
                        obs_mode=policy.obs_mode, step_s=0.02, wait_s=15.0,
                        expected_checkpoint=policy.checkpoint_sha256)
    assert env.observation_space.shape == (policy.obs_dim,)
    stamped = "latent_stamped" in OUTPUT_NAMES
    for start in (0, 9):
        obs, info = env.reset(options={"start": start})
        assert obs.shape == (policy.obs_dim,) and obs.dtype == np.float32
        assert np.all(np.isfinite(obs))
        assert info["fused"] == ("image",) or not stamped
        assert info["source"] == ("stamped" if stamped else "plain")
        if stamped:  # the stamped latent names the checkpoint the policy was trained on
            assert env.reading.model.get("checkpoint_sha256") == policy.checkpoint_sha256
        # the node's latent of the same camera frame is the simulated observation (the policy was
        # trained on the float path's latents; the node's default int8_auto runs the int8 path on
        # CPUs with AVX512-BF16/AMX, whose latent means stay within test_fast_int8.BOUNDS, 0.1)
        np.testing.assert_allclose(obs[:-N_CELLS], sim_mu, atol=0.1 if nexus.engine.path == "fast-int8" else 0.05)
        ret, done, steps = 0.0, False, 0
        while not done:
            obs, r, term, trunc, info = env.step(int(policy.act(obs)[0]))
            assert obs.shape == (policy.obs_dim,) and np.all(np.isfinite(obs))
            ret, steps, done = ret + r, steps + 1, term or trunc
        assert info["success"] is True, f"episode from cell {start} to digit {label} failed ({steps} steps)"
        assert ret > 0.5
    if stamped:  # auto mode dropped the plain topics at the first stamped reading: one message per fusion
        assert observer.counts["plain"] == 0 and len(observer._subs) == 1
        assert rc.spin_until(lambda: nexus.outputs.pubs["latent"].get_subscription_count() == 0
                             and nexus.outputs.pubs["modalities"].get_subscription_count() == 0, timeout=5.0)
        assert nexus.outputs.pubs["latent_stamped"].get_subscription_count() == 1
    if stamped:  # a policy of another latent space is refused
        other = RosPointerEnv(observer, rc.executor, latent_dim=policy.obs_dim - N_CELLS,
                              expected_checkpoint="0" * 64)
        with pytest.raises(RuntimeError, match="retrain the policy"):
            other.reset()


def test_observer_reads_the_plain_latent(ros_context):
    """Today's std_msgs/Float32MultiArray latent alone (no stamped topic) is enough."""
    from rclpy.node import Node

    rc = ros_context
    node = rc.add(Node("test_plain_latent", context=rc.context))
    pub = node.create_publisher(Float32MultiArray, "/fake/latent", 10)
    observer = LatentObserver(node, "/fake", prefer="plain")
    mu, lv = np.linspace(-1, 1, 32, dtype=np.float32), np.full(32, -2.0, np.float32)
    assert rc.spin_until(lambda: pub.get_subscription_count() > 0, timeout=5.0)
    pub.publish(conv.latent_to_msg(mu, lv))
    bad = Float32MultiArray()
    bad.data = [1.0, 2.0]
    pub.publish(bad)
    assert rc.spin_until(lambda: observer.counts["plain"] >= 1 and observer.counts["invalid"] >= 1, timeout=5.0)
    r = observer.newest
    assert r.source == "plain" and r.seq == 1
    np.testing.assert_array_equal(r.mu, mu)
    np.testing.assert_array_equal(r.logvar, lv)
    obs = latent_observation(r.mu, r.logvar, [3], "mu_std")[0]
    assert obs.shape == (2 * 32 + N_CELLS,)
    np.testing.assert_allclose(obs[32:64], np.exp(-1.0), rtol=1e-6)
