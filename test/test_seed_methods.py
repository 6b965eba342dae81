# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The three seed-paper methods (associator network, variational alignment, latent-constraint
mapping): phase losses decrease, frozen parts get no gradient, checkpoints round-trip, the
trainer runs the phases, the node runs each kind, and the runner's metrics are right.
"""
from __future__ import annotations

import time

import pytest
import torch

from crossmodal_ros.checkpoint import load_checkpoint, save_checkpoint
from crossmodal_ros.codecs import codecs_to_dict, default_codecs
from crossmodal_ros.evaluation.seed_methods import endpoint_error, nearest_psnr, tiled_subset
from crossmodal_ros.modalities import MODEL_SHAPES
from crossmodal_ros.models import build_model
from crossmodal_ros.models.alignment import wasserstein2_diag
from crossmodal_ros.models.base import ModelConfigError, ModelInputError
from crossmodal_ros.training import train as T

from ros_helpers import ros_context, ros_module_context  # noqa: F401 (fixtures)

# small but real configurations (image + trajectory networks are the cheap ones)
KINDS = {
    "associator": {"modalities": ["image", "trajectory"], "latent_dims": {"image": 8, "trajectory": 4}},
    "alignment": {"source": "image", "target": "trajectory", "shared_dim": 8, "mapper_dim": 4},
    "latent_constraint": {"modalities": ["image", "trajectory"], "latent_dims": {"image": 8, "trajectory": 4},
                          "common_dim": 8, "anchor": "image", "hidden_dim": 16},
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n=16, seed=0, mods=("image", "trajectory", "audio")):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    out = {m: torch.rand(n, *MODEL_SHAPES[m], generator=g) for m in mods}
    # a class-dependent signal so pairs are related
    out["image"] = (out["image"] * 0.2 + (y.view(-1, 1, 1, 1) / 10.0)).clamp(0, 1)
    out["trajectory"] = (out["trajectory"] * 0.2 + (y.view(-1, 1) / 10.0)).clamp(0, 1)
    out["y"] = y
    return out


def _fixed_noise_loss(model, batch):
    torch.manual_seed(123)
    with torch.no_grad():
        return model.loss({m: batch[m] for m in model.modalities})[0].item()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_phase_loss_decreases(kind):
    torch.manual_seed(0)
    model = build_model(kind, KINDS[kind])
    batch = _data()
    for phase in model.PHASES:
        params = model.set_phase(phase)
        model.train()
        opt = torch.optim.Adam(params, lr=1e-3)
        before = _fixed_noise_loss(model, batch)
        for _ in range(25):
            loss, _ = model.loss({m: batch[m] for m in model.modalities})
            opt.zero_grad()
            loss.backward()
            opt.step()
        after = _fixed_noise_loss(model, batch)
        assert after < before, f"{kind}/{phase}: {before:.2f} -> {after:.2f}"


FROZEN = [("associator", "associators", ["vaes"]), ("associator", "vaes", ["associators"]),
          ("alignment", "mapper", ["branch_encoder", "branch_decoder", "target_vae", "reverse_decoder"]),
          ("alignment", "branches", ["mapper"]),
          ("latent_constraint", "mapping", ["vaes"]), ("latent_constraint", "embeddings", ["maps"])]


@pytest.mark.parametrize("kind,phase,frozen", FROZEN, ids=[f"{k}-{p}" for k, p, _ in FROZEN])
def test_frozen_parts_get_no_gradient_and_keep_batchnorm_statistics(kind, phase, frozen):
    torch.manual_seed(0)
    model = build_model(kind, KINDS[kind])
    trainable = model.set_phase(phase)
    model.train()
    assert trainable and all(p.requires_grad for p in trainable)
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k}
    loss, _ = model.loss({m: v for m, v in _data().items() if m in model.modalities})
    loss.backward()
    for name in frozen:
        sub = model.get_submodule(name)
        params = list(sub.parameters())
        if params:
            assert all(p.grad is None for p in params), f"{name} got a gradient in phase {phase}"
            for mod_name, mod in sub.named_modules():
                if isinstance(mod, torch.nn.BatchNorm1d):
                    assert not mod.training, f"{name}.{mod_name} BatchNorm left in training mode"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    for k, v in model.state_dict().items():
        if k in stats and k.split(".")[0] in frozen:
            assert torch.equal(v, stats[k]), f"running statistics of frozen {k} moved"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_checkpoint_round_trip(kind, tmp_path):
    torch.manual_seed(0)
    model = build_model(kind, KINDS[kind]).eval()
    data = _data(mods=model.modalities)
    src = model.modalities[0]
    want = model.infer({src: data[src]})
    path = save_checkpoint(tmp_path / "m.pt", model, codecs_to_dict(default_codecs()))
    loaded, _, meta = load_checkpoint(path)
    assert meta["kind"] == kind and loaded.config == model.config
    got = loaded.infer({src: data[src]})
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    half, _, _ = load_checkpoint(save_checkpoint(tmp_path / "h.pt", model, None, half=True))
    torch.testing.assert_close(half.infer({src: data[src]})["latent_mu"], want["latent_mu"], atol=2e-2, rtol=2e-2)


def test_associator_cascade_reaches_a_modality_without_a_direct_associator():
    torch.manual_seed(0)
    model = build_model("associator", {"modalities": ["image", "audio", "trajectory"],
                                       "latent_dims": {"image": 8, "audio": 6, "trajectory": 4},
                                       "pairs": [["image", "audio"], ["audio", "trajectory"]]}).eval()
    x = _data(4)["image"]
    with torch.no_grad():
        out = model.infer({"image": x})
        z_i = model.vaes["image"].encoder(x)[0]
        z_a = model.associators["image_to_audio"](z_i)[0]
        z_t = model.associators["audio_to_trajectory"](z_a)[0]
    assert model.latent_dim == 18
    torch.testing.assert_close(out["latent_mu"][:, 14:], z_t)
    torch.testing.assert_close(out["trajectory"], model.vaes["trajectory"].decoder(z_t))
    torch.testing.assert_close(model.translate(x, ["image", "audio", "trajectory"]), out["trajectory"])
    with pytest.raises(ModelInputError, match="image_to_trajectory"):
        model.translate(x, ["image", "trajectory"])


def test_per_sample_presence_mask_uses_each_rows_own_input():
    torch.manual_seed(0)
    model = build_model("alignment", KINDS["alignment"]).eval()
    d = _data(4)
    mask = torch.tensor([[True, False], [False, True], [True, True], [True, False]])
    with torch.no_grad():
        mu, _ = model.encode({"image": d["image"], "trajectory": d["trajectory"]}, mask)
        from_target = model.target_vae.encoder(d["trajectory"])[0]
        from_source = model.mapper(*model.branch_encoder(d["image"]), sample=False)[0]
    torch.testing.assert_close(mu[0], from_source[0])
    torch.testing.assert_close(mu[1], from_target[1])
    torch.testing.assert_close(mu[2], from_target[2])  # the target's own encoder wins when present


def test_wasserstein_distance_of_diagonal_gaussians():
    mu1, mu2 = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 0.0]])
    lv1, lv2 = torch.zeros(1, 2), torch.log(torch.tensor([[4.0, 1.0]]))  # sigma2 = (2, 1)
    assert wasserstein2_diag(mu1, lv1, mu2, lv2).item() == pytest.approx((9.0 + 1.0) ** 0.5, rel=1e-5)
    assert wasserstein2_diag(mu1, lv1, mu1, lv1).item() == pytest.approx(0.0, abs=1e-3)


def test_config_errors_name_the_key():
    with pytest.raises(ModelConfigError, match="pairs"):
        build_model("associator", {"modalities": ["image", "audio"], "pairs": [["image", "label"]]})
    with pytest.raises(ModelConfigError, match="common_dim"):
        build_model("latent_constraint", {"common_dim": 10})
    with pytest.raises(ModelConfigError, match="source"):
        build_model("alignment", {"source": "image", "target": "image"})
    with pytest.raises(ModelConfigError, match="phase_epochs.bogus"):
        build_model("associator", {"phase_epochs": {"bogus": 1}})
    with pytest.raises(ModelConfigError, match="paired_fraction"):
        build_model("associator", {"paired_fraction": 0.0})


def test_trainer_runs_the_phases_on_their_data_fraction(tmp_path):
    cfg = T.resolve_config({"kind": "associator", "data": "digits",
                            "model": {**KINDS["associator"], "paired_fraction": 0.25,
                                      "phase_epochs": {"vaes": 2, "associators": 1}},
                            "train": {"epochs": 3, "batch_size": 8, "num_threads": 1}})
    data = _data(40, mods=("image", "trajectory"))
    train = {k: v[:32] for k, v in data.items()}
    val = {k: v[32:] for k, v in data.items()}
    lines = []
    summary = T.run_training(cfg, train, val, tmp_path, codecs_to_dict(default_codecs()), device="cpu",
                             quiet=True, log=lines.append)
    assert [p["phase"] for p in summary["phases"]] == ["vaes", "associators"]
    assert [p["epochs"] for p in summary["phases"]] == [2, 1]
    assert any("associators: 1 epochs on 8 samples" in s for s in lines), lines
    model, _, meta = load_checkpoint(tmp_path / "best.pt")
    assert meta["kind"] == "associator" and all(p.requires_grad for p in model.parameters())
    with pytest.raises(T.TrainingError, match="resume"):
        T.run_training(cfg, train, val, tmp_path, None, resume=True, device="cpu", quiet=True, log=lambda s: None)


@pytest.mark.parametrize("name", ["associator", "alignment", "alignment_audio_image", "latent_constraint"])
def test_shipped_configs_are_valid(name):
    cfg = T.load_config(f"config/train_{name}.yaml")
    model = build_model(cfg["kind"], cfg["model"])
    assert len(model.modalities) == 2
    assert all(p.epochs > 0 for p in model.training_phases(cfg["train"]["epochs"]))


def test_runner_metrics():
    a = torch.rand(5, 1, 28, 28)
    assert nearest_psnr(a, torch.cat([torch.zeros(1, 1, 28, 28), a])) > 100  # exact match in the reference set
    half = torch.full((1, 1, 28, 28), 0.5)
    assert nearest_psnr(half, torch.zeros(1, 1, 28, 28)) == pytest.approx(10 * torch.log10(torch.tensor(4.0)).item())
    p = torch.zeros(2, 200)
    t = torch.zeros(2, 200)
    t[:, :100], t[:, 100:] = 0.3, 0.4  # every point moved by (0.3, 0.4): distance 0.5
    assert endpoint_error(p, t) == pytest.approx(0.5)
    sub = tiled_subset({"x": torch.arange(100)}, 0.05)
    assert set(sub["x"].tolist()) == set(range(5)) and sub["x"].numel() == 100


# --------------------------------------------------------------------------- the node runs each kind
NODE_KINDS = [("associator", {"modalities": ["image", "audio"], "latent_dims": {"image": 8, "audio": 8}}, "image",
               "audio_mel"),
              ("alignment", {"source": "audio", "target": "image", "shared_dim": 8}, "audio", "image"),
              ("latent_constraint", {"modalities": ["image", "trajectory"], "latent_dims": {"image": 8,
                                                                                            "trajectory": 4},
                                     "common_dim": 8}, "image", "trajectory")]


@pytest.mark.parametrize("kind,config,given,output", NODE_KINDS, ids=[k[0] for k in NODE_KINDS])
def test_nexus_node_runs_each_kind(ros_context, tmp_path, kind, config, given, output):
    from test_nexus_node import Sensors, _audio_msg, _image_msg, _nexus, _wait_modalities

    torch.manual_seed(0)
    model = build_model(kind, config)
    path = save_checkpoint(tmp_path / f"{kind}.pt", model, codecs_to_dict(default_codecs()), half=True)
    rc = ros_context
    node = _nexus(rc, str(path))
    sensors = Sensors(rc)
    assert rc.spin_until(lambda: sensors.pub[given].get_subscription_count() > 0, timeout=5.0)
    assert sensors.pub["label"].get_subscription_count() == 0
    sensors.publish(given, _image_msg(time.time()) if given == "image" else _audio_msg())
    assert _wait_modalities(rc, sensors, given), node.last_error
    assert rc.spin_until(lambda: sensors.msgs(output) and sensors.msgs("latent"), 3.0)
    assert node.lifecycle_state == "active" and node.last_error == ""
    latent = sensors.msgs("latent")[-1]
    assert latent.layout.dim[1].size == model.latent_dim


@pytest.mark.parametrize("kind", ["associator", "alignment", "latent_constraint"])
def test_shipped_checkpoint_generates_trajectories_from_images(kind):
    """The shipped float16 pair model of each kind loads in the engine and, from test images,
    generates trajectories the judge mostly classifies right (the run measured ~70-92 %).
    """
    from pathlib import Path

    from crossmodal_ros.engine import FusionEngine
    from crossmodal_ros.evaluation.instruments import Instruments
    from crossmodal_ros.evaluation.metrics import accuracy
    from crossmodal_ros.training.train import load_tensors

    path = Path(__file__).resolve().parents[1] / "models" / f"{kind}_image_trajectory.pt"
    if not path.is_file():
        pytest.skip(f"{path} not shipped")
    assert path.stat().st_size < 6_000_000
    engine = FusionEngine.from_checkpoint(str(path), device="cpu")
    assert engine.kind == kind and set(engine.modalities) == {"image", "trajectory"}
    test, _ = load_tensors("digits", "test")
    out = engine.infer_tensors({"image": test["image"][:200]})
    assert out["trajectory"].shape == (200, 200)
    pred = Instruments.load(None, "cpu").classify("trajectory", torch.from_numpy(out["trajectory"]))
    assert accuracy(pred, test["y"][:200]) > 0.5


def _report_results(beta: float, image_acc: dict) -> dict:
    runs = [{"vae_beta": b, "batch_size": 32, "lr": 1e-3, "time_s": 1.0,
             "self_accuracy": {"image": acc, "audio": 0.5, "trajectory": 0.5}} for b, acc in image_acc.items()]
    return {"config": {"out": "runs/x", "vae_beta": beta, "batch_size": 32, "lr": 1e-3,
                       "align_kl": [1.0, 1.0, 1.0]},
            "device": "cpu", "timings": {"total_s": 1.0},
            "vae_probe": {"epochs": 1, "train": 10, "test": 10, "runs": runs}}


def test_report_conclusions_come_from_the_results(tmp_path):
    """Every conclusion of the generated page is computed: other results, other sentences; no TODO."""
    from crossmodal_ros.evaluation.seed_methods import write_report

    a = write_report(_report_results(0.1, {1.0: 0.2, 0.1: 0.9}), tmp_path / "a.md")
    b = write_report(_report_results(1.0, {1.0: 0.8, 0.1: 0.3}), tmp_path / "b.md")
    assert "TODO" not in a + b
    assert "highest with KL weight 0.1" in a and "lowest with KL weight 1.0" in a
    assert "highest with KL weight 1.0" in b and "lowest with KL weight 0.1" in b
    assert "differs from the papers" in a and "as in the papers" in b and "differs" not in b
    assert "the setting of the row KL weight 0.1" in a and "the setting of the row KL weight 1.0" in b
    assert "Nexus columns are empty" in a
