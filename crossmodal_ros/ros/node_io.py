"""What the inference node reads and writes: the input topics with their message types, and the
output table (topic, message type, the modality an output needs decoded, how a
:class:`~crossmodal_ros.engine.FusionResult` becomes the message). The node publishes by walking
this table; adding an output is one row here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from nav_msgs.msg import Path
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, Int32, String

from crossmodal_ros.modalities import AUDIO, IMAGE, LABEL, TRAJECTORY
from crossmodal_ros.ros import conversions as conv

#: Input topic of each modality (relative names, remappable).
INPUT_TOPICS: dict[str, str] = {
    IMAGE: "camera/image_raw",
    AUDIO: "audio/chunk",
    TRAJECTORY: "pen/stroke",
    LABEL: "label",
}
#: Message type of each input topic (converted by :func:`conversions.msg_to_input`).
INPUT_TYPES: dict[str, type] = {IMAGE: Image, AUDIO: Float32MultiArray, TRAJECTORY: Path, LABEL: Int32}

#: The FusionResult field that is empty when a modality was not decoded.
_DECODED_FIELD = {IMAGE: "image", AUDIO: "audio_mel", TRAJECTORY: "trajectory", LABEL: "label_probs"}


def decoded(result, modality: str) -> bool:
    """Whether ``result`` holds the decoded ``modality`` (lazy decoding leaves it empty)."""
    return np.asarray(getattr(result, _DECODED_FIELD[modality])).size > 0


@dataclass(frozen=True)
class PublishContext:
    """What some outputs carry besides the result: the output header and the model's identity."""

    header: Any
    kind: str = ""
    sha256: str = ""
    modalities: tuple = ()


@dataclass(frozen=True)
class Output:
    """One output topic ``~/<name>``: its message type, the modality it needs decoded (None:
    always available), and ``build(result, ctx) -> message`` (None: published by the
    Griffin-Lim worker, not at fusion time)."""

    msg_type: type
    needs: Optional[str]
    build: Optional[Callable]


def _image(result, ctx):
    img = np.clip(np.rint(np.asarray(result.image) * 255.0), 0, 255).astype(np.uint8)
    return conv.numpy_to_image(img, "mono8", ctx.header)


OUTPUTS: dict[str, Output] = {
    "image": Output(Image, IMAGE, _image),
    "audio_mel": Output(Image, AUDIO, lambda r, c: conv.numpy_to_image(
        np.asarray(r.audio_mel, dtype=np.float32), "32FC1", c.header)),
    "audio": Output(Float32MultiArray, AUDIO, None),
    "trajectory": Output(Path, TRAJECTORY, lambda r, c: conv.numpy_to_path(np.asarray(r.trajectory), c.header)),
    "label": Output(Int32, LABEL, lambda r, c: Int32(data=int(r.label))),
    "label_probs": Output(Float32MultiArray, LABEL, lambda r, c: conv.probs_to_msg(r.label_probs)),
    "latent": Output(Float32MultiArray, None, lambda r, c: conv.latent_to_msg(r.latent_mu, r.latent_logvar)),
    "modalities": Output(String, None, lambda r, c: String(data="+".join(r.fused))),
    "latent_stamped": Output(JointState, None, lambda r, c: conv.latent_to_stamped(
        r.latent_mu, r.latent_logvar, r.fused, c.kind, c.sha256, c.header, modalities=c.modalities)),
}
#: Every output the node can publish (the ``outputs`` parameter picks a subset).
OUTPUT_NAMES: tuple[str, ...] = tuple(OUTPUTS)
#: Outputs that exist only when the model decodes this modality.
OUTPUT_NEEDS: dict[str, str] = {name: o.needs for name, o in OUTPUTS.items() if o.needs is not None}
