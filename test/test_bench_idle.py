# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""``benchmarks/bench_idle.py``: it runs end to end on the real node (tiny sizes, no timing
asserted: speed lives in the benchmark's README), and its picture is drawn from its JSON; the
benchmarks' inputs (``bench_ros_latency.bench_inputs``) are encoded anew at every camera frame.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_idle.py"


@pytest.mark.ros
def test_bench_idle_measures_both_subscriptions_in_both_conditions(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "2", "--inputs", "17", "--repeats", "2",
                          "--gap-ms", "1", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    result = json.loads((tmp_path / "idle.json").read_text())
    blocks = result["node_blocks"]
    # every (round, condition, subscription) block once, 17 timed inputs each, orders alternating
    assert sorted((b["round"], b["condition"], b["subscribe"]) for b in blocks) == sorted(
        (k, c, s) for k in (0, 1) for c in ("back_to_back", "paused") for s in ("latent", "all"))
    assert all(b["inputs"] == 17 and b["cpu_mean_ms"] > 0 for b in blocks)
    assert [b["subscribe"] for b in blocks if b["condition"] == "paused"] == ["latent", "all", "all", "latent"]
    for row in result["node"]:
        mine = [b for b in blocks if b["condition"] == row["condition"]]
        by_round = {(b["round"], b["subscribe"]): b["cpu_mean_ms"] for b in mine}
        assert row["ratios"] == [round(by_round[(k, "all")] / by_round[(k, "latent")], 3) for k in (0, 1)]
    assert [r["weights_mib"] for r in result["matrix_chain"]] == [1, 4, 16]
    assert (tmp_path / "idle.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_idle_plot_needs_data(load_script, tmp_path):
    mod = load_script("benchmarks/bench_idle.py")
    chain = [{"weights_mib": m, "none_us": 1.0, "sleep_us": 3.0, "busy_us": 2.0, "sleep_rerun_us": 1.2} for m in (1, 4)]
    node = [{"condition": c, "gap_ms": g, "latent_cpu_ms": 1.0, "all_cpu_ms": 3.0, "ratio_median": 3.0}
            for c, g in (("back_to_back", 0.0), ("paused", 29.4))]
    out = mod.plot({"matrix_chain": chain, "node": node, "gap_ms": 29.4}, tmp_path / "idle.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="no matrix_chain or node rows"):
        mod.plot({"matrix_chain": chain, "node": []}, tmp_path / "empty.png")


@pytest.mark.parametrize("frame", ["28", "vga"])
def test_bench_inputs_give_a_new_encoding_at_every_frame(load_script, frame):
    """Real digits with per-frame sensor noise: every camera frame's codec output differs from
    the one before, so the encoding memo cannot skip the image encoder in a benchmark (the
    moving bar used before gave one encoding for all ten 28x28 frames).
    """
    import numpy as np

    from crossmodal_ros.codecs import default_codecs

    mod = load_script("benchmarks/bench_ros_latency.py")
    frames, encoding, windows, strokes = mod.bench_inputs(frame)
    h, w, enc = mod.frame_format(frame)
    assert encoding == enc and all(f.shape[:2] == (h, w) and f.dtype == np.uint8 for f in frames)
    assert len(frames) == len(mod.SCENE_ROWS) * mod.FRAMES_PER_SCENE
    codec = default_codecs()["image"]
    rgb = encoding == "bgr8"
    codes = [codec.encode(f[:, :, ::-1] if rgb else f).tobytes() for f in frames]
    assert len(set(codes)) == len(frames)
    assert all(x.shape == (16000,) and x.dtype == np.float32 for x in windows)
    assert all(s.shape == (100, 2) for s in strokes) and len(windows) == len(strokes) == len(mod.SCENE_ROWS)
