# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The fast inference path (models/fast.py, FusionEngine fast=True) equals the reference path.

Every input subset, masked batches, seeded sampling, Nexus-0, half precision, models with fewer
modalities, raw sensor input through the engine, and the errors. BatchNorm statistics are
randomised so that the BN folding is actually exercised (fresh BN layers are identities).
"""
import numpy as np
import pytest
import torch

from crossmodal_ros.codecs import default_codecs
from crossmodal_ros.engine import EngineInputError, FusionEngine
from crossmodal_ros.modalities import MODEL_SHAPES, all_subsets
from crossmodal_ros.models import build_model
from crossmodal_ros.models.base import ModelInputError
from crossmodal_ros.models.fast import FastNexus

ATOL = 2e-5


def _randomise(model):
    """Non-trivial BatchNorm statistics and affine parameters, eval mode."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                n = mod.running_mean.numel()
                mod.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
                mod.weight.copy_(0.5 + torch.rand(n, generator=g))
                mod.bias.copy_(0.2 * torch.rand(n, generator=g) - 0.1)
        if "audio" in model.modalities:
            model.bottom.vaes["audio"].decoder.out_bias.fill_(0.3)
    return model.eval()


@pytest.fixture(scope="module", params=["nexus", "nexus0", "nexus:mixture", "nexus0:mixture"])
def pair(request):
    torch.manual_seed(0)
    kind, _, combine = request.param.partition(":")
    model = _randomise(build_model(kind, {"infer_combine": combine} if combine else {}))
    return model, FastNexus(model)


def _inputs(batch, modalities=("image", "audio", "trajectory", "label"), seed=1):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.rand(batch, *MODEL_SHAPES[m], generator=g) for m in modalities}


def _assert_same(a: dict, b: dict, atol=ATOL):
    assert set(a) == set(b)
    for k in a:
        assert a[k].shape == b[k].shape, k
        err = (a[k].float() - b[k].float()).abs().max().item()
        assert err <= atol, f"{k}: max abs difference {err:.3g} > {atol}"


@pytest.mark.parametrize("subset", all_subsets(), ids=lambda s: "+".join(s))
def test_every_subset_matches_reference(pair, subset):
    model, fast = pair
    x = _inputs(2)
    with torch.inference_mode():
        _assert_same(model.infer({m: x[m] for m in subset}), fast.infer({m: x[m] for m in subset}))


def test_batch_one_all_outputs(pair):
    model, fast = pair
    x = _inputs(1, seed=3)
    with torch.inference_mode():
        out = fast.infer(x)
        _assert_same(model.infer(x), out)
    assert out["image"].shape == (1, 1, 28, 28) and out["audio"].shape == (1, 1, 128, 32)
    assert out["trajectory"].shape == (1, 200) and out["label"].shape == (1, 10)


def test_large_batch_native_convolutions_match_reference(pair):
    from crossmodal_ros.models.fast import NATIVE_CONV_BATCH

    model, fast = pair
    x = _inputs(NATIVE_CONV_BATCH + 3, seed=9)
    mask = torch.rand(NATIVE_CONV_BATCH + 3, 4, generator=torch.Generator().manual_seed(2)) < 0.6
    mask[:, 2] = True
    with torch.inference_mode():
        _assert_same(model.infer(x), fast.infer(x))
        _assert_same(model.infer(x, mask), fast.infer(x, mask))


def test_masked_batch_matches_reference(pair):
    model, fast = pair
    x = _inputs(6, seed=4)
    mask = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]],
                        dtype=torch.bool)
    x["image"][1] = float("nan")  # an absent row must not leak
    with torch.inference_mode():
        a, b = model.infer(x, mask), fast.infer(x, mask)
    _assert_same(a, b)
    assert all(torch.isfinite(v).all() for v in b.values())


def test_seeded_sampling_matches_reference(pair):
    model, fast = pair
    x = _inputs(3, ("image", "trajectory"), seed=5)
    with torch.inference_mode():
        torch.manual_seed(11)
        a = model.infer(x, sample=True)
        torch.manual_seed(11)
        b = fast.infer(x, sample=True)
        torch.manual_seed(12)
        c = fast.infer(x, sample=True)
    _assert_same(a, b)
    assert not torch.allclose(b["latent_mu"], c["latent_mu"]) or not torch.allclose(b["image"], c["image"])


def test_errors_match_reference(pair):
    model, fast = pair
    with pytest.raises(ModelInputError, match="no modality"):
        fast.infer({})
    with pytest.raises(ModelInputError, match="shape"):
        fast.infer({"image": torch.zeros(1, 28, 28)})
    with pytest.raises(ModelInputError, match="batch sizes differ"):
        fast.infer({"image": torch.zeros(1, 1, 28, 28), "label": torch.zeros(2, 10)})
    with pytest.raises(ModelInputError, match="empty subset"):
        fast.infer(_inputs(1), torch.zeros(1, 4, dtype=torch.bool))


def test_snapshot_leaves_model_untouched():
    model = _randomise(build_model("nexus", {}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    FastNexus(model)
    after = model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


def test_fewer_modalities_and_training_mode():
    model = _randomise(build_model("nexus", {"modalities": ["image", "label"]}))
    fast = FastNexus(model)
    x = _inputs(2, ("image", "label"))
    for subset in (("image",), ("label",), ("image", "label")):
        with torch.inference_mode():
            _assert_same(model.infer({m: x[m] for m in subset}), fast.infer({m: x[m] for m in subset}))
    with pytest.raises(ModelInputError, match="modalities"):
        fast.infer({"audio": torch.zeros(1, 1, 128, 32)})
    model.train()
    assert not FastNexus.supports(model)  # BN folding needs eval statistics
    assert not FastNexus.supports(build_model("mvae", {}).eval())


def test_half_precision_close_to_float(pair):
    model, _ = pair
    half = FastNexus(model, dtype=torch.float16)
    x = _inputs(1, seed=8)
    with torch.inference_mode():
        a = model.infer(x)
        b = half.infer({m: v.half() for m, v in x.items()})
    assert b["image"].dtype == torch.float16
    for k in ("image", "audio", "trajectory", "latent_mu"):
        assert (a[k] - b[k].float()).abs().max().item() < 3e-2, k


def _raw(subset):
    rng = np.random.default_rng(0)
    img = np.zeros((48, 64), np.uint8)
    img[10:38, 30:34] = 255
    t = np.linspace(0, 1, 40)
    raw = {"image": img, "audio": (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
                                   + 0.01 * rng.standard_normal(8000)).astype(np.float32),
           "trajectory": np.stack([t, np.sin(3 * t)], 1).astype(np.float32), "label": 3}
    return {m: raw[m] for m in subset}


@pytest.mark.slow
def test_engine_fast_equals_reference_on_raw_input():
    torch.manual_seed(0)
    model = _randomise(build_model("nexus", {}))
    codecs = default_codecs()
    fast = FusionEngine(model, codecs, device="cpu")
    ref = FusionEngine(model, codecs, device="cpu", fast=False)
    assert fast.path == "fast" and ref.path == "reference"
    for subset in all_subsets():
        a = ref.infer(_raw(subset), sample_rate=8000)
        b = fast.infer(_raw(subset), sample_rate=8000)
        assert a.fused == b.fused == subset
        for field in ("image", "audio_mel", "trajectory", "label_probs", "latent_mu", "latent_logvar"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=ATOL, err_msg=field)
        assert a.label == b.label
    x = _inputs(5)
    mask = np.array([[1, 0, 1, 0]] * 5, bool)
    ra, rb = ref.infer_tensors(x, mask), fast.infer_tensors(x, mask)
    for k in ra:
        np.testing.assert_allclose(ra[k], rb[k], atol=ATOL, err_msg=k)
    with pytest.raises(EngineInputError, match="empty subset"):
        fast.infer_tensors({"image": x["image"]}, np.zeros((5, 4), bool))


def test_engine_refresh_after_weight_change():
    model = _randomise(build_model("nexus", {}))
    eng = FusionEngine(model, default_codecs(), device="cpu")
    before = eng.infer({"label": 1}).latent_mu
    with torch.no_grad():
        eng.model.shared_encoder.heads.mu.bias.add_(1.0)
    assert np.allclose(eng.infer({"label": 1}).latent_mu, before)  # snapshot until refreshed
    eng.refresh_fast_path()
    np.testing.assert_allclose(eng.infer({"label": 1}).latent_mu, before + 1.0, atol=1e-4)


def test_engine_uses_reference_for_other_kinds():
    eng = FusionEngine(build_model("mvae", {}), default_codecs(), device="cpu")
    assert eng.path == "reference"
    assert eng.infer({"label": 2}).image.shape == (28, 28)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graphs_match_fast_path():
    model = _randomise(build_model("nexus", {}))
    codecs = default_codecs()
    plain = FusionEngine(model, codecs, device="cuda", fast=True)
    graphs = FusionEngine(model, codecs, device="cuda", cuda_graphs=True)
    assert graphs.path == "cuda-graphs"
    for subset in all_subsets():
        for _ in range(2):  # capture, then replay
            a = plain.infer(_raw(subset), sample_rate=8000)
            b = graphs.infer(_raw(subset), sample_rate=8000)
            np.testing.assert_allclose(a.image, b.image, atol=1e-4)
            np.testing.assert_allclose(a.latent_mu, b.latent_mu, atol=1e-4)


@pytest.mark.slow
def test_preprocessing_cache_reuses_equal_input_and_sees_changes(monkeypatch):
    eng = FusionEngine(_randomise(build_model("nexus", {})), default_codecs(), device="cpu")
    calls = []
    cls = type(eng.codecs["audio"])
    real = cls.encode
    monkeypatch.setattr(cls, "encode", lambda self, x, sr: calls.append(1) or real(self, x, sr))  # frozen class
    audio = _raw(("audio",))["audio"]
    a = eng.infer({"audio": audio, "label": 1}, sample_rate=8000)
    b = eng.infer({"audio": audio.copy(), "label": 2}, sample_rate=8000)  # equal content: reused
    assert len(calls) == 1
    np.testing.assert_array_equal(a.audio_mel, eng.infer({"audio": audio, "label": 1}, sample_rate=8000).audio_mel)
    audio[:100] = 0.5  # changed in place: recomputed
    eng.infer({"audio": audio}, sample_rate=8000)
    eng.infer({"audio": audio}, sample_rate=16000)  # other sample rate: recomputed
    assert len(calls) == 3
    assert b.fused == ("audio", "label")
    off = FusionEngine(eng.model, default_codecs(), device="cpu", cache_preprocessing=False)
    off.infer({"audio": audio}, sample_rate=8000)
    off.infer({"audio": audio}, sample_rate=8000)
    assert len(calls) == 5


@pytest.mark.slow
def test_preprocessing_cache_takes_the_same_read_only_array_as_unchanged(monkeypatch):
    """The very read-only array of the last call, owning its memory, is reused without comparing
    it (the node passes its stored audio and strokes so); a read-only copy is compared and
    reused; a read-only view of writeable memory and a writeable array are compared every time
    (changes are seen); another sample rate is recomputed.
    """
    import crossmodal_ros.engine as engine_module

    eng = FusionEngine(_randomise(build_model("nexus", {})), default_codecs(), device="cpu")
    calls, compared = [], []
    cls = type(eng.codecs["audio"])
    real = cls.encode
    monkeypatch.setattr(cls, "encode", lambda self, x, sr: calls.append(1) or real(self, x, sr))  # frozen class
    real_order = engine_module._memory_order  # the content comparison's first step (and storing's)
    monkeypatch.setattr(engine_module, "_memory_order", lambda x: compared.append(1) or real_order(x))

    def counts():
        out = (len(calls), len(compared))
        calls.clear()
        compared.clear()
        return out

    def fresh_latent(x, sr=8000):
        plain = FusionEngine(eng.model, default_codecs(), device="cpu", cache_preprocessing=False)
        out = plain.infer({"audio": np.array(x)}, sample_rate=sr).latent_mu
        counts()  # its own encoding is not counted
        return out

    audio = _raw(("audio",))["audio"].copy()
    audio.flags.writeable = False
    a = eng.infer({"audio": audio}, sample_rate=8000)
    assert counts() == (1, 1)  # encoded and stored (nothing to compare with yet)
    b = eng.infer({"audio": audio}, sample_rate=8000)
    assert counts() == (0, 0)  # the same read-only object that owns its memory: not compared
    np.testing.assert_array_equal(a.latent_mu, b.latent_mu)
    twin = audio.copy()
    twin.flags.writeable = False
    eng.infer({"audio": twin}, sample_rate=8000)
    assert counts() == (0, 1)  # another object: compared, equal, reused
    eng.infer({"audio": twin}, sample_rate=8000)
    assert counts() == (0, 0)  # now that object is the remembered one
    eng.infer({"audio": twin}, sample_rate=16000)
    assert counts()[0] == 1  # another sample rate: recomputed
    buf = audio.copy()
    view = buf[:]
    view.flags.writeable = False  # read-only, but buf can still change it
    eng.infer({"audio": view}, sample_rate=8000)  # stored at 16 kHz before: encoded, stored
    eng.infer({"audio": view}, sample_rate=8000)
    assert counts() == (1, 2)  # the second call compared it
    buf[:300] = 0.5
    c = eng.infer({"audio": view}, sample_rate=8000)
    assert counts() == (1, 2)  # the change is seen
    np.testing.assert_allclose(c.latent_mu, fresh_latent(buf), atol=1e-6)
    live = buf.copy()  # writeable: compared at every call (here equal), in-place changes seen
    eng.infer({"audio": live}, sample_rate=8000)
    live[:300] = -0.5
    d = eng.infer({"audio": live}, sample_rate=8000)
    assert counts() == (1, 3)
    np.testing.assert_allclose(d.latent_mu, fresh_latent(live), atol=1e-6)


@pytest.mark.slow
def test_preprocessing_cache_with_channel_reversed_frames(monkeypatch):
    """bgr8 frames reach the engine as channel-reversed views; the cache compares them in memory
    order (flips remembered), so equal frames hit, changed or differently flipped ones do not.
    """
    import cv2

    eng = FusionEngine(_randomise(build_model("nexus", {})), default_codecs(), device="cpu")
    calls = []
    cls = type(eng.codecs["image"])
    real = cls.encode
    monkeypatch.setattr(cls, "encode", lambda self, x: calls.append(1) or real(self, x))  # frozen class
    bgr = np.full((120, 160, 3), 210, np.uint8)
    cv2.putText(bgr, "4", (60, 90), cv2.FONT_HERSHEY_SIMPLEX, 2, (30, 20, 10), 6)
    rgb_view = bgr[:, :, ::-1]
    a = eng.infer({"image": rgb_view})
    b = eng.infer({"image": bgr.copy()[:, :, ::-1]})  # same content, same flips: reused
    assert len(calls) == 1
    np.testing.assert_array_equal(a.latent_mu, b.latent_mu)
    same_rgb = np.ascontiguousarray(rgb_view)  # same content, no flips: recomputed, same result
    c = eng.infer({"image": same_rgb})
    assert len(calls) == 2
    np.testing.assert_allclose(a.latent_mu, c.latent_mu, atol=1e-6)
    eng.infer({"image": rgb_view})  # flipped again: recomputed (the cache held the unflipped frame)
    eng.infer({"image": rgb_view})  # the same view again: reused
    assert len(calls) == 3
    bgr[60:, :, 0] = 0  # changed in place under the cached view: recomputed
    d = eng.infer({"image": rgb_view})
    assert len(calls) == 4
    fresh = FusionEngine(eng.model, default_codecs(), device="cpu", cache_preprocessing=False)
    np.testing.assert_allclose(d.latent_mu, fresh.infer({"image": np.ascontiguousarray(rgb_view)}).latent_mu,
                               atol=1e-6)


@pytest.mark.slow
def test_shipped_checkpoint_fast_equals_reference():
    from crossmodal_ros.paths import default_checkpoint

    path = default_checkpoint()
    if not path or not __import__("os").path.exists(path):
        pytest.skip("no shipped checkpoint")
    fast = FusionEngine.from_checkpoint(path, device="cpu")
    ref = FusionEngine(fast.model, fast.codecs, device="cpu", fast=False)
    assert fast.path == ("fast" if FastNexus.supports(fast.model) else "reference")
    x = _inputs(2, fast.modalities, seed=21)
    for subset in all_subsets(fast.modalities):
        a = ref.infer_tensors({m: x[m] for m in subset})
        b = fast.infer_tensors({m: x[m] for m in subset})
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=1e-4, err_msg=f"{subset} {k}")


@pytest.mark.parametrize("combine", ["mixture", "aggregate"])
def test_encoding_cache_reuses_unchanged_modalities_and_sees_changes(combine):
    """A camera stream under a slower microphone and pen: the unchanged modalities' encodings are
    reused (counted), every result equals an engine without the cache, and an input changed in
    place, sampling, masked and batched calls do not use stale encodings.
    """
    torch.manual_seed(0)
    model = _randomise(build_model("nexus", {"infer_combine": combine}))
    on = FusionEngine(model, default_codecs(), device="cpu")
    off = FusionEngine(model, default_codecs(), device="cpu", cache_encodings=False)
    assert on.cache_encodings and not off.cache_encodings
    raw = _raw(("image", "audio", "trajectory"))
    rng = np.random.default_rng(0)
    hits = []
    for k in range(6):
        raw["image"] = rng.random((28, 28)).astype(np.float32)  # a new frame every call
        if k == 3:
            raw["audio"][:200] = 0.25  # the microphone window changes in place
        decode = None if k % 2 else ("image",)
        a, b = on.infer(raw, sample_rate=8000, decode=decode), off.infer(raw, sample_rate=8000, decode=decode)
        for field in ("latent_mu", "latent_logvar", "image", "label_probs"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-6, err_msg=f"{field}, call {k}")
        hits.append(on._fast.memo_hits)
    # audio and trajectory reused from the second call on, except audio at the change (k=3)
    assert np.diff([0] + hits).tolist() == [0, 2, 2, 1, 2, 2]
    assert off._fast.memo_hits == 0
    before = on._fast.memo_hits
    on.infer_tensors({m: torch.from_numpy(v)[None] for m, v in on.encode_raw(raw, 8000).items()})
    on.sample = True
    on.infer(raw, sample_rate=8000)
    assert on._fast.memo_hits == before  # batched tensors and sampling never use the cache
    on.refresh_fast_path()  # new weights: a new fast path, no old encodings
    assert on._fast.memo_hits == 0 and not on._fast._memo


def test_encoding_cache_is_not_fooled_by_calls_that_skip_it():
    """The engine names each stored codec result to the encoding memo; a result stored by a call
    that did not use the memo (sampling) must not match the memo's older entry: after audio A
    (deterministic), B (sampled) and B (deterministic), the last call encodes B, not A.
    """
    torch.manual_seed(1)
    model = _randomise(build_model("nexus", {}))
    on = FusionEngine(model, default_codecs(), device="cpu")
    off = FusionEngine(model, default_codecs(), device="cpu", cache_encodings=False, cache_preprocessing=False)
    rng = np.random.default_rng(4)
    a_audio = _raw(("audio",))["audio"]
    b_audio = (0.5 * a_audio[::-1]).copy()
    for audio in (a_audio, b_audio):
        audio.flags.writeable = False
    frame = lambda: rng.random((28, 28)).astype(np.float32)  # noqa: E731
    on.infer({"image": frame(), "audio": a_audio}, sample_rate=8000)
    on.sample = True
    on.infer({"image": frame(), "audio": b_audio}, sample_rate=8000)
    on.sample = False
    img = frame()
    got = on.infer({"image": img, "audio": b_audio}, sample_rate=8000)
    want = off.infer({"image": img, "audio": b_audio}, sample_rate=8000)
    np.testing.assert_allclose(got.latent_mu, want.latent_mu, atol=1e-6)
    hits = on._fast.memo_hits
    tensor_compares = []
    real_equal = torch.equal
    try:
        torch.equal = lambda a, b: tensor_compares.append(1) or real_equal(a, b)
        again = on.infer({"image": img, "audio": b_audio}, sample_rate=8000)  # now B is the memo's: reused
    finally:
        torch.equal = real_equal
    assert on._fast.memo_hits == hits + 2
    assert tensor_compares == []  # both found by the stored results' keys, not by comparing tensors
    assert on._fast._memo["audio"].key is on._preproc_cache["audio"]
    np.testing.assert_allclose(again.latent_mu, want.latent_mu, atol=1e-6)


def test_fast_infer_memo_equals_plain_call_on_every_subset(pair):
    model, fast = pair
    x = _inputs(1, seed=3)
    fast.clear_memo()
    for subset in all_subsets():
        given = {m: x[m] for m in subset}
        _assert_same(fast.infer(given, memo=True), model.infer(given))
    assert fast.memo_hits > 0
