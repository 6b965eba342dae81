# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Models: loss decreases, masked modalities get no gradient, every subset generates every
modality, FPD drops the right modalities, config errors.
"""
import pytest
import torch

from crossmodal_ros.modalities import MODALITIES, MODEL_SHAPES, all_subsets
from crossmodal_ros.models import MODEL_KINDS, ModelConfigError, ModelInputError, build_model, count_parameters
from crossmodal_ros.models.nexus import fpd_keep_mask

KINDS = ("nexus", "nexus0", "mvae", "mmvae", "mopoe", "mvtcae", "mmvae_plus")


def make_batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    return {
        "image": torch.rand(n, 1, 28, 28, generator=g),
        "audio": torch.rand(n, 1, 128, 32, generator=g),
        "trajectory": torch.rand(n, 200, generator=g),
        "label": torch.nn.functional.one_hot(y, 10).float(),
        "y": y,
    }


def test_registry_and_reference_size():
    assert set(KINDS) <= set(MODEL_KINDS)
    model = build_model("nexus")
    # NEXUS_SPEC.md: about 6.47 M parameters, 1.22 M of them the frozen sound VAE
    assert abs(count_parameters(model) - 6.47e6) < 0.01e6
    assert abs(count_parameters(model.bottom.vaes["audio"]) - 1.22e6) < 0.01e6
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - count_parameters(
        model.bottom.vaes["audio"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_loss_decreases_on_tiny_batch(kind):
    torch.manual_seed(0)
    model = build_model(kind, {"warmup_epochs": 0})
    model.train()
    batch = make_batch(8)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # the same reparameterisation noise every step: a fixed objective
        loss, logs = model.loss(batch, None, epoch=0)
        assert torch.isfinite(loss) and logs["loss"] == pytest.approx(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5, losses


@pytest.mark.parametrize("kind", KINDS)
def test_masked_modality_gets_zero_gradient(kind):
    torch.manual_seed(0)
    model = build_model(kind, {"sound_pretrain": False})
    model.train()
    batch = make_batch(6)
    mask = torch.ones(6, 4, dtype=torch.bool)
    mask[:, MODALITIES.index("trajectory")] = False
    batch["trajectory"] = torch.full_like(batch["trajectory"], float("nan"))  # must not leak anywhere
    loss, _ = model.loss(batch, mask, epoch=3)
    assert torch.isfinite(loss)
    loss.backward()
    enc = model.bottom.vaes["trajectory"].encoder
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in enc.parameters())
    # a present modality does receive gradient
    assert any(p.grad is not None and torch.count_nonzero(p.grad) > 0
               for p in model.bottom.vaes["image"].encoder.parameters())
    # sound_pretrain=False trains the sound VAE jointly
    assert any(p.grad is not None and torch.count_nonzero(p.grad) > 0
               for p in model.bottom.vaes["audio"].encoder.parameters())


def test_partially_masked_rows_get_no_gradient():
    torch.manual_seed(0)
    model = build_model("nexus", {"fpd_rho": 0.0})
    model.train()
    batch = make_batch(6)
    batch["image"].requires_grad_(True)
    mask = torch.ones(6, 4, dtype=torch.bool)
    mask[:3, 0] = False
    loss, _ = model.loss(batch, mask, epoch=0)
    loss.backward()
    assert torch.count_nonzero(batch["image"].grad[:3]) == 0
    assert torch.count_nonzero(batch["image"].grad[3:]) > 0


def test_frozen_sound_vae_gets_no_gradient_and_stays_eval():
    model = build_model("nexus")
    model.train()
    assert not model.bottom.vaes["audio"].training
    loss, logs = model.loss(make_batch(4), None, 0)
    loss.backward()
    assert all(p.grad is None for p in model.bottom.vaes["audio"].parameters())
    assert "bottom/audio" not in logs and "top/audio" in logs


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sample", [False, True])
def test_every_subset_generates_every_modality(kind, sample):
    torch.manual_seed(0)
    model = build_model(kind).eval()
    batch = make_batch(3)
    with torch.inference_mode():
        for subset in all_subsets():
            out = model.infer({m: batch[m] for m in subset}, sample=sample)
            for m in MODALITIES:
                assert tuple(out[m].shape) == (3, *MODEL_SHAPES[m]), (subset, m)
                assert torch.isfinite(out[m]).all()
                if m != "label":
                    assert out[m].min() >= 0 and out[m].max() <= 1
            assert out["latent_mu"].shape == (3, model.latent_dim) == out["latent_logvar"].shape
            # a mask over all four inputs gives the same result as leaving the others out
            if not sample:
                mask = torch.tensor([[m in subset for m in MODALITIES]] * 3)
                out2 = model.infer(batch, mask)
                assert torch.allclose(out2["latent_mu"], out["latent_mu"], atol=1e-5)


def test_inference_is_deterministic_and_uses_the_inputs():
    model = build_model("nexus").eval()
    b = make_batch(4)
    with torch.inference_mode():
        a1 = model.infer({"image": b["image"]})["latent_mu"]
        a2 = model.infer({"image": b["image"]})["latent_mu"]
        a3 = model.infer({"image": b["image"].flip(0)})["latent_mu"]
    assert torch.equal(a1, a2)
    assert not torch.allclose(a1, a3)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_raise_model_input_error(kind):
    model = build_model(kind).eval()
    b = make_batch(2)
    with pytest.raises(ModelInputError, match="no modality"):
        model.encode({})
    with pytest.raises(ModelInputError, match="shape"):
        model.encode({"image": torch.rand(2, 28, 28)})
    with pytest.raises(ModelInputError, match="empty subset"):
        model.encode(b, torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ModelInputError, match="mask"):
        model.encode(b, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ModelInputError, match="batch sizes"):
        model.encode({"image": b["image"], "label": b["label"][:1]})
    with pytest.raises(ModelInputError, match="cannot generate"):
        model.decode(torch.zeros(1, model.latent_dim), ["smell"])


def test_model_with_fewer_modalities_rejects_the_others():
    model = build_model("nexus", {"modalities": ["image", "label"]}).eval()
    b = make_batch(2)
    out = model.infer({"image": b["image"]})
    assert set(out) == {"image", "label", "latent_mu", "latent_logvar"}
    with pytest.raises(ModelInputError, match="audio"):
        model.infer({"audio": b["audio"]})


@pytest.mark.parametrize("bad, key", [
    ({"aggregatorr": "mean"}, "aggregatorr"),
    ({"aggregator": "max"}, "aggregator"),
    ({"fpd_rho": 1.5}, "fpd_rho"),
    ({"fpd_rho": "high"}, "fpd_rho"),
    ({"latent_dims": {"image": 0}}, "latent_dims.image"),
    ({"latent_dims": {"smell": 3}}, "smell"),
    ({"sound_pretrain": "yes"}, "sound_pretrain"),
    ({"modalities": ["image", "smell"]}, "modalities"),
    ({"top_input": "mode"}, "top_input"),
])
def test_bad_config_names_the_key(bad, key):
    with pytest.raises(ModelConfigError, match=key):
        build_model("nexus", bad)


def test_unknown_kind_and_nexus0_aggregator():
    with pytest.raises(ModelConfigError, match="unknown model kind"):
        build_model("transformer")
    with pytest.raises(ModelConfigError, match="concat"):
        build_model("nexus0", {"aggregator": "mean"})
    assert build_model("nexus0").concat and not build_model("nexus").concat


@pytest.mark.parametrize("kind", KINDS)
def test_top_input_mean_feeds_the_top_level_the_bottom_means(kind):
    batch = make_batch()
    present = torch.ones(8, 4, dtype=torch.bool)
    sampled = build_model(kind, {"top_input": "sample"})
    means = build_model(kind, {"top_input": "mean"})
    means.load_state_dict(sampled.state_dict())
    for model in (sampled, means):
        model.eval()
    torch.manual_seed(0)
    z_s, loss_s, _ = sampled.train_bottom(batch, present, 1.0)
    z_m, loss_m, _ = means.train_bottom(batch, present, 1.0)
    for m in z_m:
        mu, _ = means.bottom.encode(m, batch[m])
        assert torch.allclose(z_m[m], mu)
        assert not z_m[m].requires_grad
        assert not torch.allclose(z_s[m], mu)  # samples differ from the means
    # the top level trains on the means: a loss exists and is finite for every kind
    means.train()
    loss, logs = means.loss(batch)
    assert torch.isfinite(loss)


# ---------------------------------------------------------------- forced perceptual dropout
def test_fpd_rho_zero_and_one():
    present = torch.ones(50, 4, dtype=torch.bool)
    assert torch.equal(fpd_keep_mask(present, 0.0), present)
    keep = fpd_keep_mask(present, 1.0, torch.Generator().manual_seed(0))
    dropped = (present & ~keep).sum(1)
    assert ((dropped >= 1) & (dropped <= 3)).all()


def test_fpd_single_keeps_exactly_one():
    g = torch.Generator().manual_seed(2)
    present = torch.ones(20_000, 4, dtype=torch.bool)
    present[:5000, 1] = False          # rows with three present modalities
    present[5000:6000, 1:] = False     # rows with one: never selected, kept whole
    keep = fpd_keep_mask(present, 0.8, g, single=True)
    assert not (keep & ~present).any()
    kept = keep.sum(1)
    selected = kept < present.sum(1)
    assert (kept[selected] == 1).all()
    assert torch.equal(keep[5000:6000], present[5000:6000])
    many = present.sum(1) >= 2
    assert selected[many].float().mean().item() == pytest.approx(0.8, abs=0.02)
    per_mod = keep[selected & (present.sum(1) == 4)].float().mean(0)   # the kept one is uniform
    assert torch.allclose(per_mod, torch.full((4,), 0.25), atol=0.02)
    with pytest.raises(ModelConfigError, match="fpd_sizes"):
        build_model("nexus", {"fpd_sizes": "pairs"})


def test_fpd_statistics_full_presence():
    g = torch.Generator().manual_seed(1)
    n, rho = 200_000, 0.2
    present = torch.ones(n, 4, dtype=torch.bool)
    keep = fpd_keep_mask(present, rho, g)
    dropped = (~keep).sum(1)
    assert not (keep.sum(1) == 0).any()
    assert (dropped > 0).float().mean().item() == pytest.approx(rho, abs=0.005)
    # k ~ Uniform{1, 2, 3} among the dropped samples
    for k in (1, 2, 3):
        frac = (dropped == k).float().sum().item() / (dropped > 0).sum().item()
        assert frac == pytest.approx(1 / 3, abs=0.01)
    # each modality equally likely to be dropped
    per_mod = (~keep).float().mean(0)
    assert torch.allclose(per_mod, per_mod.mean().expand(4), atol=0.005)


def test_fpd_respects_presence_and_never_drops_all():
    g = torch.Generator().manual_seed(2)
    present = torch.rand(100_000, 4, generator=g) < 0.6
    present[present.sum(1) == 0, 0] = True
    keep = fpd_keep_mask(present, 0.9, g)
    assert not (keep & ~present).any()                          # never adds a modality
    assert (keep.sum(1) >= 1).all()                             # never drops all
    single = present.sum(1) == 1
    assert torch.equal(keep[single], present[single])           # nothing to drop from one
    two = present.sum(1) == 2
    assert ((present[two] & ~keep[two]).sum(1) <= 1).all()
    assert (present[two] & ~keep[two]).any(1).float().mean().item() == pytest.approx(0.9, abs=0.01)


# ---------------------------------------------------------------- sound network = reference network
def test_sound_networks_equal_the_reference_2d_formulation():
    """Our 1-D sound convolutions compute exactly the reference 2-D network on 1x32x128
    (frames x mel) with kernels (1,128) and (4,1), with the weights reshaped.
    """
    import torch.nn.functional as F

    from crossmodal_ros.models.networks import SoundDecoder, SoundEncoder

    torch.manual_seed(0)
    enc, dec = SoundEncoder(8).eval(), SoundDecoder(8).eval()
    for bn in [m for m in list(enc.modules()) + list(dec.modules()) if isinstance(m, torch.nn.BatchNorm1d)]:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.rand(3, 1, 128, 32)

    def bn_relu(h, bn):  # BatchNorm2d with the same statistics, then ReLU
        return F.relu(F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))

    f = enc.features
    h = x.transpose(2, 3)                                                   # (B, 1, 32 frames, 128 mel)
    h = bn_relu(F.conv2d(h, f[0].weight.permute(0, 2, 1).unsqueeze(1)), f[1])       # k(1,128) -> (B,128,32,1)
    h = bn_relu(F.conv2d(h, f[3].weight.unsqueeze(-1), stride=(2, 1), padding=(1, 0)), f[4])
    h = bn_relu(F.conv2d(h, f[6].weight.unsqueeze(-1), stride=(2, 1), padding=(1, 0)), f[7])
    assert h.shape == (3, 256, 8, 1)
    with torch.no_grad():
        assert torch.allclose(enc.features(x.reshape(3, 128, 32)), h.flatten(1), atol=1e-5)

        z = torch.randn(3, 8)
        d = dec.deconv
        g = dec.fc(z).view(-1, 256, 8, 1)
        g = bn_relu(F.conv_transpose2d(g, d[0].weight.unsqueeze(-1), stride=(2, 1), padding=(1, 0)), d[1])
        g = bn_relu(F.conv_transpose2d(g, d[3].weight.unsqueeze(-1), stride=(2, 1), padding=(1, 0)), d[4])
        g = F.conv_transpose2d(g, d[6].weight.permute(0, 2, 1).unsqueeze(1), bias=dec.out_bias)  # k(1,128)
        assert g.shape == (3, 1, 32, 128)                                   # frames x mel
        assert torch.allclose(dec(z), torch.sigmoid(g).transpose(2, 3), atol=1e-5)


def test_pretraining_is_a_phase_the_model_declares():
    """The trainer runs model.pretraining_phases(): Nexus declares its sound SigmaVAE stage while
    the sound VAE is frozen and not pretrained; finish() freezes it and the stage is gone.
    """
    model = build_model("nexus", {"latent_dims": {"audio": 8}})
    (phase,) = model.pretraining_phases()
    assert phase.name == "sound" and phase.config == "sound_pretrain" and phase.module is model.bottom.vaes["audio"]
    phase.module.requires_grad_(True)
    loss, logs = phase.loss(phase.module, {"audio": torch.rand(4, *MODEL_SHAPES["audio"])}, 0)
    assert loss.requires_grad and {"rec", "kl", "loss"} <= set(logs)
    phase.finish()
    assert bool(model.bottom.audio_pretrained) and not any(p.requires_grad for p in phase.module.parameters())
    assert model.pretraining_phases() == []
    assert build_model("nexus", {"sound_pretrain": False}).pretraining_phases() == []
    assert build_model("associator").pretraining_phases() == []


@pytest.mark.parametrize("kind", ["nexus", "nexus0"])
def test_mixture_inference_combines_single_modality_posteriors(kind):
    """``infer_combine: mixture``: one given modality gives the spec's posterior; several give the
    moment-matched mixture of their single-modality posteriors (not the aggregate's posterior).
    """
    torch.manual_seed(0)
    spec = build_model(kind, {"sound_pretrain": False}).eval()
    mix = build_model(kind, {"sound_pretrain": False, "infer_combine": "mixture"}).eval()
    mix.load_state_dict(spec.state_dict())
    batch = make_batch(5)
    with torch.no_grad():
        for m in MODALITIES:
            a, b = spec.encode({m: batch[m]}), mix.encode({m: batch[m]})
            assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)
        pair = {m: batch[m] for m in ("image", "trajectory")}
        singles = [spec.encode({m: batch[m]}) for m in pair]
        mu, logvar = mix.encode(pair)
        expect_mu = (singles[0][0] + singles[1][0]) / 2
        expect_var = sum(lv.exp() + mu_.pow(2) for mu_, lv in singles) / 2 - expect_mu.pow(2)
        assert torch.allclose(mu, expect_mu, atol=1e-5)
        assert torch.allclose(logvar.exp(), expect_var, rtol=1e-4, atol=1e-6)
        assert not torch.allclose(mu, spec.encode(pair)[0], atol=1e-3)
        # a masked batch: each row mixes only its own present modalities
        mask = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0], [0, 1, 0, 1]], dtype=torch.bool)
        mu_m, _ = mix.encode(batch, mask)
        for r in range(5):
            row = {m: batch[m][r:r + 1] for i, m in enumerate(MODALITIES) if mask[r, i]}
            assert torch.allclose(mu_m[r:r + 1], mix.encode(row)[0], atol=1e-5)
    with pytest.raises(ModelConfigError, match="infer_combine"):
        build_model(kind, {"infer_combine": "vote"})


def test_top_audio_data_term_trains_the_top_audio_path_through_the_sound_decoder():
    batch = make_batch(6, seed=3)
    torch.manual_seed(0)
    plain = build_model("nexus", {"fpd_rho": 0.0}).train()
    torch.manual_seed(0)
    model = build_model("nexus", {"fpd_rho": 0.0, "top_audio_data_weight": 0.5}).train()
    torch.manual_seed(1)
    loss, logs = model.loss(batch)
    torch.manual_seed(1)
    loss0, logs0 = plain.loss(batch)
    assert "top/audio_data" in logs and "top/audio_data" not in logs0
    data = float(logs["top/audio_data"])  # the batch mean
    # the same draws, so the two losses differ by exactly the new term
    assert float(loss) == pytest.approx(float(loss0) + data, rel=1e-4, abs=1e-3)
    loss.backward()
    grads = [p.grad for p in model.top_decoders["audio"].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.bottom.vaes["audio"].parameters())  # frozen before its stage
    # a clean target, when given, is what the term reconstructs
    noisy = dict(batch, **{"clean:audio": batch["audio"], "audio": batch["audio"].flip(0)})
    torch.manual_seed(1)
    _, logs_noisy = model.loss(noisy)
    torch.manual_seed(1)
    _, logs_flipped = model.loss(dict(batch, audio=batch["audio"].flip(0)))  # no clean key: the input is the target
    assert logs_noisy["top/audio_data"] != pytest.approx(logs_flipped["top/audio_data"])
    for bad in (-1.0, "x", True, float("inf")):
        with pytest.raises(ModelConfigError, match="top_audio_data_weight"):
            build_model("nexus", {"top_audio_data_weight": bad})
