# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Codec round trips, shapes at any input size/rate, and CodecError on every bad input class."""
import json

import numpy as np
import pytest

from crossmodal_ros.codecs import (
    AudioCodec,
    CodecError,
    ImageCodec,
    LabelCodec,
    TrajectoryCodec,
    codecs_from_dict,
    codecs_to_dict,
    default_codecs,
    resample_arc_length,
)


# ----------------------------------------------------------------- trajectory
def _circle(n=500, r=3.0, cx=10.0, cy=-4.0):
    t = np.linspace(0, 1.5 * np.pi, n)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def test_trajectory_round_trip_small_error():
    codec = TrajectoryCodec()
    pts = _circle()
    v = codec.encode(pts)
    assert v.shape == (200,) and v.dtype == np.float32
    assert v.min() >= 0 and v.max() <= 1
    back = codec.decode(v)
    assert back.shape == (100, 2)
    # undo the per-sample normalisation and compare with the arc-length resampled original
    lo, ext = pts.min(0), np.ptp(pts, 0)
    scale = ext.max()
    restored = (back - (1 - ext / scale) / 2) * scale + lo
    ref = resample_arc_length(pts, 100)
    assert np.abs(restored - ref).max() < 1e-3 * scale
    # every resampled point lies on the original curve (radius 3 around the centre)
    radius = np.hypot(restored[:, 0] - 10, restored[:, 1] + 4)
    assert np.abs(radius - 3).max() < 1e-2


def test_trajectory_equal_arc_spacing_and_aspect():
    codec = TrajectoryCodec()
    # a wide, flat L: the long axis spans [0,1], the short one is centred
    pts = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 20.0]])
    q = codec.decode(codec.encode(pts))
    assert q[:, 0].min() == pytest.approx(0) and q[:, 0].max() == pytest.approx(1)
    assert q[:, 1].min() == pytest.approx(0.4, abs=1e-6) and q[:, 1].max() == pytest.approx(0.6, abs=1e-6)
    steps = np.hypot(*np.diff(q, axis=0).T)
    # equal arc-length steps (the one step across the corner is a shorter chord)
    assert np.sum(~np.isclose(steps, 1.2 / 99, rtol=1e-3)) <= 1


def test_trajectory_strokes_concatenate_in_order():
    codec = TrajectoryCodec()
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[1.0, 1.0], [0.0, 1.0]])
    v1 = codec.encode([a, b])
    v2 = codec.encode(np.concatenate([a, b]))
    assert np.array_equal(v1, v2)
    # plain list of points works too
    assert np.array_equal(codec.encode([[0, 0], [1, 0], [1, 1], [0, 1]]), codec.encode([a[0], a[1], b[0], b[1]]))
    assert not np.array_equal(codec.encode([b, a]), v1)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 2)),
        np.ones((5, 2)),  # a single repeated point: zero length
        np.array([[1.0, 2.0]]),
        np.array([[0.0, 0.0], [np.nan, 1.0]]),
        np.array([[0.0, 0.0], [np.inf, 1.0]]),
        np.zeros((4, 3)),
        np.zeros(10),
        np.zeros((200_001, 2)),
        np.array([["a", "b"], ["c", "d"]]),
        [np.zeros((3, 2)), np.zeros((3, 3))],
    ],
)
def test_trajectory_bad_input(bad):
    with pytest.raises(CodecError):
        TrajectoryCodec().encode(bad)


def test_trajectory_decode_bad():
    with pytest.raises(CodecError):
        TrajectoryCodec().decode(np.zeros(199))
    with pytest.raises(CodecError):
        TrajectoryCodec().decode(np.full(200, np.nan))


# ----------------------------------------------------------------- image
def _digit_frame(h, w, dark_on_light=True, colour=True):
    """A synthetic camera frame: a thick ring ('0') in the middle of a larger frame."""
    import cv2

    bg, fg = (230, 40) if dark_on_light else (20, 250)
    img = np.full((h, w, 3) if colour else (h, w), bg, np.uint8)
    s = min(h, w)
    cv2.circle(img, (w // 2, h // 2), int(s * 0.3), (fg, fg, fg) if colour else fg, thickness=max(2, s // 15))
    return img


def test_image_large_colour_frame_crop_resize_polarity():
    codec = ImageCodec()
    frame = _digit_frame(1080, 1920)  # dark ring on bright paper, wide colour frame
    out = codec.encode(frame)
    assert out.shape == (1, 28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    img = out[0]
    # bright stroke on dark: corners dark, the ring bright, its centre dark
    assert img[0, 0] < 0.1 and img[-1, -1] < 0.1
    assert img[14, 14] < 0.1
    ring = img[14, 5:9].max()
    assert ring > 0.8
    # the same digit already bright on dark gives (nearly) the same tensor
    out2 = codec.encode(_digit_frame(1080, 1920, dark_on_light=False))
    assert np.abs(out - out2).mean() < 0.05


def test_image_polarity_option_and_dtypes():
    frame = _digit_frame(64, 48, dark_on_light=True, colour=False)
    auto = ImageCodec().encode(frame)
    # the centre-crop path shows the polarity option directly: "never" keeps bright paper
    never = ImageCodec(invert="never", localize=False).encode(frame)
    crop_auto = ImageCodec(localize=False).encode(frame)
    assert crop_auto[0, 0, 0] < 0.1 and never[0, 0, 0] > 0.9
    always = ImageCodec(invert="always").encode(frame)
    assert np.allclose(always, auto)
    # uint16, float and 1- or 4-channel frames
    f16 = frame.astype(np.uint16) * 257
    assert np.allclose(ImageCodec().encode(f16), auto, atol=1e-3)
    assert np.allclose(ImageCodec().encode(frame / 255.0), auto, atol=1e-3)
    assert np.allclose(ImageCodec().encode(frame[:, :, None]), auto)
    rgba = np.dstack([frame, frame, frame, np.full_like(frame, 255)])
    assert np.allclose(ImageCodec().encode(rgba), auto, atol=1e-2)
    # tiny frames are upsampled
    assert ImageCodec().encode(np.eye(5, dtype=np.uint8) * 255).shape == (1, 28, 28)


def _frame_with_digit(seed, polarity, frac):
    """A test-split-like digit rendered into a VGA frame; returns (frame, box, digit)."""
    import cv2

    from crossmodal_ros.sim import FrameSpec, render_frame

    digit = np.zeros((28, 28), np.uint8)
    cv2.putText(digit, str(seed % 10), (6, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2, cv2.LINE_AA)
    rng = np.random.default_rng(seed)
    frame, box = render_frame(digit, rng, FrameSpec(polarity=polarity, digit_frac=(frac, frac)), return_box=True)
    return frame, box, digit


@pytest.mark.parametrize("polarity", ["dark_on_light", "light_on_dark"])
@pytest.mark.parametrize("frac", [0.25, 0.5, 0.9])
def test_image_localize_finds_known_box(polarity, frac):
    """The codec finds a digit drawn at a known place and size in a VGA frame (either polarity,
    lighting gradient, noise, blur, perspective).
    """
    codec = ImageCodec()
    for seed in range(4):
        frame, (x0, y0, x1, y1), _ = _frame_with_digit(seed, polarity, frac)
        _, (bx0, by0, bx1, by1) = codec.locate(frame)
        # intersection over union of the found box and the true ink box
        ix = max(0, min(x1, bx1) - max(x0, bx0))
        iy = max(0, min(y1, by1) - max(y0, by0))
        inter = ix * iy
        union = (x1 - x0) * (y1 - y0) + (bx1 - bx0) * (by1 - by0) - inter
        assert inter / union > 0.6, (seed, (x0, y0, x1, y1), (bx0, by0, bx1, by1))


def test_image_localize_normalises_like_mnist():
    """Output: ink box fitted to 20 px on its longer side, centre of mass at the centre, and the
    same digit at two scales and places gives (nearly) the same tensor.
    """
    codec = ImageCodec()
    a = codec.encode(_frame_with_digit(3, "dark_on_light", 0.3)[0])[0]
    b = codec.encode(_frame_with_digit(3, "light_on_dark", 0.85)[0])[0]
    for img in (a, b):
        ys, xs = np.nonzero(img > 0.2)
        assert 17 <= max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) <= 22
        yy, xx = np.mgrid[0:28, 0:28]
        cy, cx = (yy * img).sum() / img.sum(), (xx * img).sum() / img.sum()
        assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8


@pytest.mark.parametrize("frame", [
    np.full((480, 640), 128, np.uint8),                                             # blank wall
    np.clip(np.random.default_rng(0).normal(128, 6, (480, 640)), 0, 255).astype(np.uint8),  # sensor noise only
    np.tile(np.linspace(40, 220, 640, dtype=np.float32), (480, 1)).astype(np.uint8),  # lighting ramp only
])
def test_image_frame_without_digit_is_an_error(frame):
    with pytest.raises(CodecError, match="no digit"):
        ImageCodec().encode(frame)


def test_image_decode():
    codec = ImageCodec()
    t = np.linspace(0, 1, 784, dtype=np.float32).reshape(1, 28, 28)
    u = codec.decode(t)
    assert u.dtype == np.uint8 and u.shape == (28, 28) and u[0, 0] == 0 and u[-1, -1] == 255
    with pytest.raises(CodecError):
        codec.decode(np.zeros((3, 28, 28)))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 10), np.uint8),
        np.zeros((10, 10, 2), np.uint8),
        np.zeros((2, 10, 10, 3), np.uint8),
        np.zeros(10, np.uint8),
        np.full((8, 8), np.nan, np.float32),
        np.full((8, 8), np.inf),
        np.full((8, 8), 3.0),  # float frames must be in [0,1]
        np.zeros((8, 8), bool),
        np.zeros((4097, 4097), np.uint8),
        np.zeros((8, 8), np.complex64),
    ],
)
def test_image_bad_input(bad):
    with pytest.raises(CodecError):
        ImageCodec().encode(bad)


def test_image_bad_option():
    with pytest.raises(CodecError):
        ImageCodec(invert="sometimes")
    with pytest.raises(CodecError):
        ImageCodec(box=40)


# ----------------------------------------------------------------- audio
def _chirp(sr, seconds=0.6):
    t = np.arange(int(sr * seconds)) / sr
    f = 300 + 1500 * t
    env = np.sin(np.pi * t / seconds) ** 2
    return (0.5 * env * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_audio_same_shape_and_features_at_any_rate():
    codec = AudioCodec()
    feats = {}
    for sr in (8000, 16000, 44100):
        m = codec.encode(_chirp(sr), sr)
        assert m.shape == (1, 128, 32) and m.dtype == np.float32
        assert m.min() >= 0 and m.max() <= 1
        feats[sr] = m
    # the chirp stays below 4 kHz, so every rate carries the same signal
    low = slice(0, 100)  # mel bins well below the 8 kHz rate's Nyquist
    for sr in (8000, 44100):
        assert np.abs(feats[sr][0, low] - feats[16000][0, low]).mean() < 0.03
    # a different signal gives clearly different features
    other = codec.encode(np.random.default_rng(0).normal(0, 0.3, 8000).astype(np.float32), 16000)
    assert np.abs(other - feats[16000]).mean() > 0.1


def test_audio_int_pcm_and_windows():
    codec = AudioCodec()
    x = _chirp(16000)
    pcm = np.round(x * 32767).astype(np.int16)
    assert np.abs(codec.encode(pcm, 16000) - codec.encode(x, 16000)).mean() < 0.01
    # a long clip: the loud part is found wherever it is
    long = np.zeros(16000 * 5, np.float32)
    long[40000 : 40000 + len(x)] = x
    m_long = codec.encode(long, 16000)
    m_short = codec.encode(x, 16000)  # padded centred; the long clip's window is centred too
    assert np.abs(m_long - m_short).mean() < 0.01


def test_audio_encode_batch_matches_encode():
    codec = AudioCodec()
    clips = [_chirp(8000, s) for s in (0.3, 0.6, 1.4)]
    L = max(len(c) for c in clips)
    w = np.zeros((3, L), np.float32)
    for i, c in enumerate(clips):
        w[i, : len(c)] = c
    batch = codec.encode_batch(w, np.array([len(c) for c in clips]), 8000)
    assert batch.shape == (3, 1, 128, 32)
    for i, c in enumerate(clips):
        assert np.abs(batch[i] - codec.encode(c, 8000)).mean() < 0.01
    with pytest.raises(CodecError):
        codec.encode_batch(w, np.array([0, 1, 2]), 8000)
    with pytest.raises(CodecError):
        codec.encode_batch(w[0], np.array([5]), 8000)


def test_audio_griffin_lim():
    codec = AudioCodec()
    m = codec.encode(_chirp(16000), 16000)
    y = codec.decode(m, n_iter=8)
    assert y.dtype == np.float32 and y.shape == (16000,)
    assert np.all(np.isfinite(y)) and np.abs(y).max() > 1e-3
    # the re-synthesised sound has (roughly) the same mel features
    assert np.abs(codec.encode(y, 16000) - m).mean() < 0.1


@pytest.mark.parametrize(
    "bad,sr",
    [
        (np.zeros(0, np.float32), 16000),
        (np.array([0.0, np.nan]), 16000),
        (np.array([0.0, np.inf]), 16000),
        (np.zeros((100, 2), np.float32), 16000),  # stereo
        (np.zeros((2, 2, 2)), 16000),
        (np.zeros(16000 * 61, np.float32), 16000),  # > 60 s
        (np.zeros(100, np.uint8), 16000),
        (np.zeros(100, bool), 16000),
        (np.zeros(100, np.float32), 0),
        (np.zeros(100, np.float32), -8000),
        (np.zeros(100, np.float32), 44100.5),
        (np.zeros(100, np.float32), "16000"),
        (np.zeros(100, np.float32), float("nan")),
    ],
)
def test_audio_bad_input(bad, sr):
    with pytest.raises(CodecError):
        AudioCodec().encode(bad, sr)


def test_audio_decode_bad_shape():
    with pytest.raises(CodecError):
        AudioCodec().decode(np.zeros((1, 128, 33)))


# ----------------------------------------------------------------- label
def test_label_codec():
    codec = LabelCodec()
    v = codec.encode(3)
    assert v.dtype == np.float32 and v.shape == (10,) and v[3] == 1 and v.sum() == 1
    assert codec.encode(np.int64(9))[9] == 1
    k, p = codec.decode(np.arange(10.0))
    assert k == 9 and p.shape == (10,) and p.sum() == pytest.approx(1, abs=1e-6)
    for bad in (-1, 10, 2.0, True, "3", None):
        with pytest.raises(CodecError):
            codec.encode(bad)
    for bad in (np.zeros(9), np.full(10, np.nan), np.zeros((2, 10))):
        with pytest.raises(CodecError):
            codec.decode(bad)


# ----------------------------------------------------------------- constants as plain data
def test_codecs_dict_round_trip_json():
    codecs = default_codecs()
    assert list(codecs) == ["image", "audio", "trajectory", "label"]
    d = codecs_to_dict(codecs)
    d2 = json.loads(json.dumps(d))
    back = codecs_from_dict(d2)
    assert back == codecs
    custom = {"audio": AudioCodec(db_min=-60.0), "image": ImageCodec(invert="never")}
    assert codecs_from_dict(json.loads(json.dumps(codecs_to_dict(custom)))) == custom


def test_codecs_from_bad_dict():
    with pytest.raises(CodecError):
        codecs_from_dict({"image": {"type": "NoSuchCodec"}})
    with pytest.raises(CodecError):
        codecs_from_dict({"image": {"type": "ImageCodec", "bogus": 1}})
    with pytest.raises(CodecError):
        codecs_from_dict([1, 2])
    with pytest.raises(CodecError):
        AudioCodec(hop_length=400)  # 32 frames would no longer span the window


def test_audio_features_equal_librosa_melspectrogram():
    """The codec builds its mel filterbank once; the features must equal librosa's own path."""
    import librosa

    c = AudioCodec()
    w = (np.random.default_rng(3).standard_normal((2, c.sample_rate)) * 0.1).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=w, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
                                         n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, power=2.0,
                                         center=True)[..., : c.n_frames]
    ref = np.clip((10 * np.log10(np.maximum(mel, 1e-12)) - c.db_min) / (c.db_max - c.db_min), 0, 1)
    np.testing.assert_allclose(c._features(w)[:, 0], ref, atol=1e-6)
    np.testing.assert_allclose(c._features(w)[:, 0], ref, atol=1e-6)  # second call: cached basis


def test_audio_window_centred_on_the_utterance():
    """An utterance anywhere in a longer buffer (a segmenter's output, a shifted clip) gives the
    same features as the clip alone: the window is centred on its energy.
    """
    from crossmodal_ros.codecs import energy_centre
    from crossmodal_ros.sim import time_shift

    sr = 16000
    clip = _chirp(sr, 0.5).astype(np.float32)
    codec = AudioCodec()
    base = codec.encode(clip, sr)
    for shift in (-0.15, -0.1, 0.05, 0.15):
        shifted = time_shift(clip, shift, sr, length=int(1.5 * sr))
        assert np.abs(codec.encode(shifted, sr) - base).mean() < 0.01, shift
        # and the centre found is where the clip was put
        assert abs(energy_centre(shifted, sr // 100) / sr - (0.75 + shift)) < 0.03
    # the old loudest-window rule is still selectable and differs for a shifted short clip
    old = AudioCodec(centre_on_energy=False)
    assert np.abs(old.encode(time_shift(clip, 0.15, sr, length=int(1.5 * sr)), sr) - old.encode(clip, sr)).mean() > 0.01


def test_audio_mel_range_is_the_training_bandwidth():
    """Content above 4 kHz (absent from the 8 kHz training audio) does not change the features."""
    sr = 16000
    t = np.arange(sr) / sr
    speech_like = (np.sin(2 * np.pi * 440 * t) * np.hanning(sr)).astype(np.float32)
    hiss = (0.3 * np.sin(2 * np.pi * 6000 * t) * np.hanning(sr)).astype(np.float32)
    codec = AudioCodec(peak_normalize=False)  # the hiss would raise the peak
    assert AudioCodec().fmax <= 4000.0
    assert np.abs(codec.encode(speech_like + hiss, sr) - codec.encode(speech_like, sr)).max() < 0.02
    wide = AudioCodec(peak_normalize=False, fmax=8000.0)  # the old range sees the hiss
    assert np.abs(wide.encode(speech_like + hiss, sr) - wide.encode(speech_like, sr)).max() > 0.1


def test_older_checkpoint_codecs_keep_their_preprocessing():
    """A stored codec dict written before localisation / energy centring existed rebuilds the
    codec that the model was trained with; a current dict keeps the new front ends.
    """
    old_image = {k: v for k, v in ImageCodec().to_dict().items()
                 if k not in ("localize", "box", "work_size", "min_contrast", "min_ink_frac")}
    old_audio = {k: v for k, v in AudioCodec().to_dict().items() if k != "centre_on_energy"}
    restored = codecs_from_dict({"image": old_image, "audio": old_audio})
    assert restored["image"].localize is False and restored["audio"].centre_on_energy is False
    current = codecs_from_dict(codecs_to_dict(default_codecs()))
    assert current["image"].localize is True and current["audio"].centre_on_energy is True


def test_median_above_and_quantile_match_numpy():
    """The image codec's order statistics (counting / partition instead of np.median /
    np.percentile) agree with numpy on odd and even sizes, ties and thresholds at data values.
    """
    from crossmodal_ros.codecs import _median_above, _quantile

    rng = np.random.default_rng(11)
    for trial in range(2000):
        n = int(rng.integers(1, 400))
        x = (rng.integers(0, 5, n) / 4).astype(np.float32) if trial % 2 else rng.random(n).astype(np.float32)
        t = float(rng.choice([0.5, 0.25, 0.4999, float(x[rng.integers(0, n)])]))
        assert _median_above(x.reshape(1, -1), t) == (float(np.median(x)) > t), (n, t)
        assert _quantile(x, 0.999) == pytest.approx(float(np.percentile(x, 99.9)), abs=1e-6)
    # frames of 1024 values and more take the candidate path for high quantiles: ties at the top,
    # a constant frame, a sparse bright digit (also at 56x56, the working size of a 28x28 camera
    # frame), and a threshold that leaves too few candidates (every 8th value is one of the
    # largest, so at q 0.99 the fallback to the full partition runs)
    frames = [rng.random(49152).astype(np.float32), np.full(4096, 0.25, np.float32),
              rng.random(1024).astype(np.float32), np.full(1024, 0.75, np.float32),
              np.where(rng.random(3136) < 0.05, rng.random(3136), 0.0).astype(np.float32),
              (rng.integers(0, 3, 20480) / 2).astype(np.float32),
              np.where(rng.random(69632) < 0.01, rng.random(69632), 0.0).astype(np.float32)]
    skewed = (rng.random(8192) * 0.5).astype(np.float32)
    skewed[::8] = 1.0 + rng.random(1024).astype(np.float32)
    frames.append(skewed)
    for x in frames:
        for q in (0.999, 0.99, 0.9999, 1.0, 0.5):
            got = _quantile(x.reshape(-1, 64), q)
            assert type(got) is float and got == pytest.approx(float(np.percentile(x, 100 * q)), abs=1e-6), (x.size, q)
    # the two middle values straddle t and their float32 mean rounds onto t (float64 would not)
    pair = np.array([0.5 - 2.0 ** -25, 0.5 + 2.0 ** -24], np.float32)
    assert float(np.median(pair)) == 0.5 and not _median_above(pair, 0.5)
