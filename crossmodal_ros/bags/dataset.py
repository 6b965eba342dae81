# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""A training dataset (docs/architecture.md schema) from a bag of the sensor topics.

``crossmodal-train --data bag:<bag>`` uses it through ``crossmodal_ros.data.load_dataset``.

Pairing: every ``/label/truth`` message opens a time window ``[t - lead, t + window)``; the
first ``/camera/image_raw``, ``/audio/chunk`` and ``/pen/stroke`` message in it belong to that
sample (a message is used once). Samples that miss a sensor are left out (the schema has no
presence mask) and counted in ``dataset["skipped"]``. Images and trajectories are brought to the
schema with the default codecs (28x28 grey in [0,1]; 100 resampled points in [0,1]); audio keeps
its waveform at the bag's sample rate (``crossmodal_ros.sample_rate`` in the bag metadata, else
``sample_rate``).

Splits of one recording are deterministic by sample position k: ``test`` = k % 10 == 9,
``val`` = k % 10 == 8, ``train`` = the rest, ``all`` = everything.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crossmodal_ros.modalities import AUDIO, IMAGE, TRAJECTORY
from crossmodal_ros.bags.format import BagError, bag_custom_data
from crossmodal_ros.bags.reader import read_bag_inputs

__all__ = ["load_bag_dataset", "SPLITS"]

SPLITS = ("train", "val", "test", "all")


def _in_split(k: int, split: str) -> bool:
    r = k % 10
    return {"train": r < 8, "val": r == 8, "test": r == 9, "all": True}[split]


def load_bag_dataset(path: str | Path, split: str = "all", window: float = 0.5, lead: float = 0.05,
                     sample_rate: int | None = None, topics: dict[str, str] | None = None,
                     truth_topic: str | None = None) -> dict:
    """The dataset dict of ``split`` from a sensor bag (see the module docstring). ``topics``
    (``{modality: topic}``) and ``truth_topic``: where the bag has its sensors and labels, when not
    under the package's names (:func:`crossmodal_ros.bags.reader.bag_topics`).
    """
    from crossmodal_ros.codecs import CodecError, ImageCodec, TrajectoryCodec

    if split not in SPLITS:
        raise BagError(f"bag dataset split must be one of {SPLITS}, got {split!r}")
    if not (window > 0 and lead >= 0):
        raise BagError("window must be positive and lead >= 0")
    events, truth_t, truth, _, _, _ = read_bag_inputs(path, topics, truth_topic)
    if not truth:
        raise BagError(f"{path} has no {truth_topic or '/label/truth'} messages: a training set needs labels "
                       "(name their topic with truth=<topic> in the bag: spec)")
    rate = sample_rate or int(bag_custom_data(path).get("crossmodal_ros.sample_rate", 16000))
    by_mod = {m: [e for e in events if e.modality == m] for m in (IMAGE, AUDIO, TRAJECTORY)}
    cursor = {m: 0 for m in by_mod}
    image_codec, traj_codec = ImageCodec(), TrajectoryCodec()
    rows = {IMAGE: [], AUDIO: [], TRAJECTORY: [], "label": []}
    skipped = 0
    for k, (t, label) in enumerate(zip(truth_t, truth)):
        found = {}
        for m, evs in by_mod.items():
            i = cursor[m]
            while i < len(evs) and evs[i].t < t - lead:
                i += 1
            if i < len(evs) and evs[i].t < t + window:
                found[m] = evs[i]
                i += 1
            cursor[m] = i
        if len(found) < 3:
            skipped += 1
            continue
        if not _in_split(k, split):
            continue
        try:
            image = image_codec.encode(found[IMAGE].value)
            traj = traj_codec.encode(found[TRAJECTORY].value)
        except CodecError:
            skipped += 1
            continue
        rows[IMAGE].append(image)
        rows[TRAJECTORY].append(traj)
        rows[AUDIO].append(np.asarray(found[AUDIO].value, dtype=np.float32))
        rows["label"].append(int(label))
    n = len(rows["label"])
    if n == 0:
        raise BagError(f"no complete samples (image + audio + pen + truth) in split {split!r} of {path}")
    length = np.array([a.shape[0] for a in rows[AUDIO]], dtype=np.int64)
    audio = np.zeros((n, int(length.max())), dtype=np.float32)
    for i, a in enumerate(rows[AUDIO]):
        audio[i, : a.shape[0]] = a
    return {
        IMAGE: np.stack(rows[IMAGE]).astype(np.float32).reshape(n, 1, 28, 28),
        TRAJECTORY: np.stack(rows[TRAJECTORY]).astype(np.float32),
        AUDIO: audio,
        "audio_length": length,
        "sample_rate": rate,
        "label": np.array(rows["label"], dtype=np.int64),
        "writer": np.full(n, -1, dtype=np.int64),
        "speaker": np.array([""] * n),
        "name": f"bag:{Path(path).name}/{split}",
        "skipped": skipped,
    }
