# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""A modality is one unit: a toy fifth modality, written as one module, runs through a model
and the engine with no change anywhere else; the built-in units declare what the tables use.
"""
import importlib.util
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from crossmodal_ros import units
from crossmodal_ros.codecs import ImageCodec, LabelCodec
from crossmodal_ros.engine import FusionEngine
from crossmodal_ros.modalities import MODALITIES, MODEL_SHAPES
from crossmodal_ros.models import build_model

#: The whole toy modality: a pressure pad with 8 cells in [0, 1].
TOY_MODULE = textwrap.dedent('''
    import numpy as np
    import torch
    from torch import nn

    from crossmodal_ros.units import ModalityUnit, register
    from crossmodal_ros.units.blocks import GaussianHeads
    from crossmodal_ros.units.losses import squared_error_loss


    class PressureCodec:
        """8 pressures in [0, 1] <-> the model tensor (8,)."""

        def encode(self, raw):
            arr = np.asarray(raw, dtype=np.float32).reshape(8)
            return np.clip(arr, 0.0, 1.0)

        def decode(self, tensor):
            return np.asarray(tensor, dtype=np.float32)

        def to_dict(self):
            return {"type": "PressureCodec"}


    class PressureEncoder(nn.Module):
        def __init__(self, latent_dim):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU())
            self.heads = GaussianHeads(16, latent_dim)

        def forward(self, x):
            return self.heads(self.features(x))


    class PressureDecoder(nn.Module):
        def __init__(self, latent_dim):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(latent_dim, 16), nn.LeakyReLU(), nn.Linear(16, 8))

        def forward(self, z):
            return torch.sigmoid(self.net(z))


    UNIT = register(ModalityUnit(
        name="pressure", shape=(8,), codec=PressureCodec, encoder=PressureEncoder, decoder=PressureDecoder,
        latent_dim=3, rec_weight=10.0, reconstruction=squared_error_loss,
        to_output=lambda t, codec: codec.decode(t), empty_output=lambda: np.zeros(0, np.float32),
        input_topic="pad/pressure", input_msg="std_msgs/msg/Float32MultiArray",
        msg_to_input=lambda msg, max_pixels: np.asarray(msg.data, dtype=np.float32),
        warm_up=lambda sample_rate: np.full(8, 0.5, np.float32)))
''')


@pytest.fixture
def toy(tmp_path):
    """The toy modality's module, written and imported; unregistered afterwards."""
    path = tmp_path / "toy_pressure.py"
    path.write_text(TOY_MODULE)
    spec = importlib.util.spec_from_file_location("toy_pressure", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_pressure"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        units.unregister("pressure")
        sys.modules.pop("toy_pressure", None)


def test_the_builtin_units_are_registered_in_canonical_order():
    assert units.names()[:4] == MODALITIES
    for m in MODALITIES:
        assert tuple(units.unit(m).shape) == MODEL_SHAPES[m]
    assert units.input_topics() == {"image": "camera/image_raw", "audio": "audio/chunk",
                                    "trajectory": "pen/stroke", "label": "label"}
    with pytest.raises(KeyError, match="smell"):
        units.unit("smell")


def test_a_toy_modality_runs_through_a_model_and_the_engine(toy):
    assert units.names()[-1] == "pressure" and units.canonical(["pressure", "label"]) == ("label", "pressure")
    cfg = {"modalities": ["image", "label", "pressure"], "shared_dim": 4, "message_dim": 16, "hidden_dim": 16,
           "sound_pretrain": False}
    torch.manual_seed(0)
    model = build_model("nexus", cfg)
    assert model.modalities == ("image", "label", "pressure")
    assert model.config["latent_dims"]["pressure"] == 3  # the unit's default
    assert model.bottom.vaes["pressure"].latent_dim == 3

    # a training step: the unit's networks and reconstruction loss
    batch = {"image": torch.rand(6, 1, 28, 28), "label": torch.eye(10)[torch.arange(6)],
             "pressure": torch.rand(6, 8)}
    loss, logs = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and "bottom/pressure" in logs and "top/pressure" in logs
    assert model.bottom.vaes["pressure"].encoder.features[0].weight.grad is not None
    model.eval()

    engine = FusionEngine(model, {"image": ImageCodec(), "label": LabelCodec(), "pressure": toy.PressureCodec()},
                          device="cpu")
    assert engine.path == "reference"  # the fast path covers the built-in modalities only
    pad = np.linspace(0.0, 1.0, 8, dtype=np.float32)
    res = engine.infer({"pressure": pad})
    assert res.fused == ("pressure",)
    assert res.outputs["pressure"].shape == (8,) and res.decoded("pressure")
    assert res.image.shape == (28, 28) and 0 <= res.label < 10 and res.label_probs.shape == (10,)
    assert res.audio_mel.size == 0 and not res.decoded("audio")  # not a modality of this model
    both = engine.infer({"pressure": pad, "label": 3}, decode=("pressure",))
    assert set(both.outputs) == {"pressure"} and both.label == -1 and both.fused == ("label", "pressure")
    np.testing.assert_allclose(engine.infer({"pressure": pad, "label": 3}).outputs["pressure"],
                               both.outputs["pressure"], atol=1e-6)
    out = engine.infer_tensors({"pressure": torch.rand(2, 8)})
    assert out["pressure"].shape == (2, 8)
    assert engine.warm_up(16000) == {}

    # the unit's input conversion is the one the node and the bag reader use
    msg = SimpleNamespace(data=list(pad))
    np.testing.assert_array_equal(units.msg_to_input("pressure", msg), pad)


def test_a_model_without_the_toy_modality_rejects_it(toy):
    model = build_model("nexus", {"modalities": ["image", "label"], "shared_dim": 4, "message_dim": 16,
                                  "hidden_dim": 16, "sound_pretrain": False}).eval()
    from crossmodal_ros.models.base import ModelInputError

    with pytest.raises(ModelInputError, match="pressure"):
        model.infer({"image": torch.rand(1, 1, 28, 28), "pressure": torch.rand(1, 8)})
