# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The fusion status's per-input counters written by ``fusion_status`` read back by
``input_counters`` (what the soak and the ROS latency benchmark use): one key format, two ends.
"""
from __future__ import annotations

from crossmodal_ros.fusion_policy import LatencyStats
from crossmodal_ros.ros.diagnostics import fusion_status, input_counters


def _status(**kw):
    args = dict(name="/nexus: fusion", hardware_id="cpu", state="active", live=["image"], rates={"image": 30.0},
                latency=LatencyStats(), fused=41, published=82, received={"image": 50, "audio": 3, "trajectory": 0},
                dropped={"image": {"decode": 2, "stale": 1}, "audio": {}}, superseded={"image": 5},
                device="cpu", checkpoint="m.pt", checkpoint_kind="nexus")
    args.update(kw)
    return fusion_status(**args)


def test_counters_round_trip():
    st = _status(fused_inputs={"image": 42, "audio": 3}, expired={"audio": 0, "image": 1})
    got = input_counters({kv.key: kv.value for kv in st.values})
    assert got["image"] == {"received": 50, "superseded": 5, "fused": 42, "expired": 1,
                            "dropped": {"decode": 2, "stale": 1}}
    assert got["audio"] == {"received": 3, "superseded": 0, "fused": 3, "expired": 0, "dropped": {}}
    assert got["trajectory"]["received"] == 0
    # node-wide keys ("fused", "published", "inference latency ... (ms)", "image rate (Hz)") are not inputs
    assert set(got) == {"image", "audio", "trajectory"}


def test_counters_missing_keys_are_zero_and_bad_values_raise():
    got = input_counters({"label received": "7"})
    assert got == {"label": {"received": 7, "superseded": 0, "fused": 0, "expired": 0, "dropped": {}}}
    import pytest

    with pytest.raises(ValueError):
        input_counters({"image received": "many"})
