# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Datasets in the one dict schema of docs/architecture.md (ROS-free).

``load_dataset(spec, split)`` picks the source from a spec string:

* ``"digits"`` - the embedded dataset (real pendigits pen data + FSDD speech), see
  :mod:`crossmodal_ros.data.digits`;
* ``"digits:<dir>"`` - the same format from another folder (e.g. a rebuilt copy);
* ``"mhd:<dir or file>"`` - the MHD files ``mhd_train.pt`` / ``mhd_test.pt``, see
  :mod:`crossmodal_ros.data.mhd`;
* ``"bag:<file>"`` - a dataset recorded from a ROS 2 bag (provided by the bag tools); a bag
  recorded under other topic names names them after a ``?``:
  ``"bag:<file>?camera=/cam/image_raw&audio=/utterances&pen=/arm/stroke&truth=/digit"`` (any
  subset; the others keep the package's names).
"""
from __future__ import annotations

from crossmodal_ros.data.digits import DatasetError, load_digits

__all__ = ["DatasetError", "load_dataset", "load_digits", "DATASET_KINDS"]

DATASET_KINDS = ("digits", "mhd", "bag")


def load_dataset(spec: str, split: str) -> dict:
    """Load ``split`` of the dataset named by ``spec`` (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise DatasetError(f"dataset spec must be a non-empty string like 'digits' or 'mhd:<dir>', got {spec!r}")
    kind, _, arg = spec.partition(":")
    if kind == "digits":
        return load_digits(split, root=arg or None)
    if kind == "mhd":
        if not arg:
            raise DatasetError("dataset spec 'mhd:' needs a folder or file, e.g. 'mhd:/data/mhd'")
        from crossmodal_ros.data.mhd import load_mhd

        return load_mhd(arg, split)
    if kind == "bag":
        if not arg:
            raise DatasetError("dataset spec 'bag:' needs a bag path, e.g. 'bag:recording.mcap'")
        # imported here: only bag specs need it (rosbags, no ROS)
        from crossmodal_ros.bags.dataset import load_bag_dataset
        from crossmodal_ros.bags.format import BagError

        path, _, query = arg.partition("?")
        try:
            topics, truth = _bag_topic_options(query)
            return load_bag_dataset(path, split, topics=topics, truth_topic=truth)
        except BagError as exc:
            raise DatasetError(str(exc)) from exc
        except ImportError as exc:
            raise DatasetError(f"bag datasets ('bag:<file>') need rosbags, which failed to import: {exc}") from exc
    raise DatasetError(f"unknown dataset kind {kind!r} in spec {spec!r}; expected one of {DATASET_KINDS}")


#: the keys of a ``bag:`` spec's topic options and the modality each names
_BAG_TOPIC_KEYS = {"camera": "image", "audio": "audio", "pen": "trajectory"}


def _bag_topic_options(query: str) -> tuple[dict, str | None]:
    """``camera=/x&audio=/y&pen=/z&truth=/t`` -> (``{modality: topic}``, truth topic or None)."""
    topics, truth = {}, None
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise DatasetError(f"bag spec option {item!r}: write key=topic, e.g. camera=/robot/image_raw")
        if key == "truth":
            truth = value
        elif key in _BAG_TOPIC_KEYS:
            topics[_BAG_TOPIC_KEYS[key]] = value
        else:
            raise DatasetError(f"bag spec option {key!r}: expected one of {sorted(_BAG_TOPIC_KEYS) + ['truth']}")
    return topics, truth
