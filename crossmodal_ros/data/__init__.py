# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Datasets in the one dict schema of docs/architecture.md (ROS-free).

``load_dataset(spec, split)`` picks the source from a spec string:

* ``"digits"`` - the embedded dataset (real pendigits pen data + FSDD speech), see
  :mod:`crossmodal_ros.data.digits`;
* ``"digits:<dir>"`` - the same format from another folder (e.g. a rebuilt copy);
* ``"mhd:<dir or file>"`` - the MHD files ``mhd_train.pt`` / ``mhd_test.pt``, see
  :mod:`crossmodal_ros.data.mhd`;
* ``"bag:<file>"`` - a dataset recorded from a ROS 2 bag (provided by the bag tools).
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

        try:
            return load_bag_dataset(arg, split)
        except BagError as exc:
            raise DatasetError(str(exc)) from exc
        except ImportError as exc:
            raise DatasetError(f"bag datasets ('bag:<file>') need rosbags, which failed to import: {exc}") from exc
    raise DatasetError(f"unknown dataset kind {kind!r} in spec {spec!r}; expected one of {DATASET_KINDS}")
