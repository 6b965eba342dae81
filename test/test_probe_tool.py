# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""tools/probe_image_latent.py: the probe reads a class that is linearly present and not one that
is absent; latents come from the model's bottom image VAE and its image-only shared posterior.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmodal_ros.models import build_model


@pytest.fixture(scope="module")
def tool(load_script):
    return load_script("tools/probe_image_latent.py")


def test_probe_separates_a_linear_class_and_not_noise(tool):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 600)
    centres = rng.normal(0, 3, (10, 8))
    x = centres[y] + rng.normal(0, 1, (600, 8))
    assert tool.probe(x[:400], y[:400], x[400:], y[400:]) > 0.9
    noise = rng.normal(0, 1, (600, 8))
    assert tool.probe(noise[:400], y[:400], noise[400:], y[400:]) < 0.3


def test_image_latents_match_the_model(tool):
    torch.manual_seed(0)
    model = build_model("nexus", {}).eval()
    images = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
    bottom, shared = tool.image_latents(model, images, batch=2)
    x = torch.as_tensor(images)
    with torch.inference_mode():
        assert np.allclose(bottom, model.bottom.encode("image", x)[0].double().numpy(), atol=1e-5)
        assert np.allclose(shared, model.encode({"image": x})[0].double().numpy(), atol=1e-5)
    assert bottom.shape == (5, model.bottom.latent_dim("image")) and shared.shape[0] == 5
