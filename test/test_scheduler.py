# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The fusion scheduler (crossmodal_ros.fusion_policy) on a fake clock: fresh input is fused at
once and never waits for a heartbeat, bursts coalesce, heartbeats only fill silence, and the
node and the offline bag evaluator make the same decisions.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from crossmodal_ros.fusion_policy import FRESH, HEARTBEAT, FusionScheduler
from crossmodal_ros.modalities import AUDIO, IMAGE, MODALITIES, TRAJECTORY
from crossmodal_ros.bags.evaluate import drive_timeline
from crossmodal_ros.fusion_store import LatestSamples, Sample

from ros_helpers import ros_context, ros_module_context  # noqa: F401 (fixtures)


def _simulate(events, until, max_rate_hz, heartbeat_hz, fusion_s=0.0, staleness=10.0, max_burst=1):
    """Event-driven fake-clock run of the scheduler as the node uses it (wake-up on every input,
    a deadline timer set by ``next_tick``, a fusion that ends fusing what arrived meanwhile), with
    fusions taking ``fusion_s``. Returns [(start, kind, inputs taken)] and, per input number, the wait from its
    arrival to the start of the fusion that took it (None: superseded before any fusion).
    """
    sched = FusionScheduler(max_rate_hz, heartbeat_hz, max_burst)
    store = LatestSamples(MODALITIES)
    st = {m: staleness for m in MODALITIES}
    log, waits = [], {}
    state = {"busy_until": -math.inf}
    next_tick = sched.tick_period
    queue = sorted(events)
    i = 0

    def start(t, kind):
        sched.started(t, kind)
        live = store.live(t, st, take=True)
        for s in live.values():
            if s.seq in waits and waits[s.seq] is None:
                waits[s.seq] = t - s.arrival_s
        log.append((t, kind, tuple(live)))
        if fusion_s > 0.0:
            state["busy_until"] = t + fusion_s
        else:
            sched.finished(t)

    while True:
        cands = [next_tick] + ([queue[i][0]] if i < len(queue) else [])
        if sched.busy:
            cands.append(state["busy_until"])
        t = min(cands)
        if t >= until:
            break
        if sched.busy and t >= state["busy_until"]:
            sched.finished(t)
            if store.pending and sched.decide(t, True, False) == FRESH:  # the ending fusion's re-check
                start(t, FRESH)
        while i < len(queue) and queue[i][0] <= t:
            at, m = queue[i]
            store.put(m, Sample(value=at, stamp=at, stamp_s=at, arrival_s=at, seq=i))
            waits[i] = None
            sched.note_input(at)
            i += 1
            if sched.decide(t, True, False) == FRESH:  # the node's wake-up
                start(t, FRESH)
            else:  # deferred: the timer is brought forward
                next_tick = min(next_tick, sched.next_tick(t, True, False))
        if t >= next_tick:
            kind = sched.decide(t, store.pending, bool(store.live(t, st)))
            if kind is not None:
                start(t, kind)
            pending = store.pending
            next_tick = sched.next_tick(t, pending, (not pending) and bool(store.live(t, st)))
    return log, waits


def test_fresh_input_is_fused_at_once_and_heartbeats_fill_only_silence():
    # the shipped rates: max 100 Hz, heartbeat 5 Hz; a 30 Hz camera for 1 s, then silence
    cam = [(round(k / 30.0, 6), IMAGE) for k in range(30)]
    log, waits = _simulate(cam, 2.0, 100.0, 5.0)
    assert all(w == 0.0 for w in waits.values()), waits  # no input ever waited
    fresh = [e for e in log if e[1] == FRESH]
    beats = [e for e in log if e[1] == HEARTBEAT]
    assert len(fresh) == 30
    # no heartbeat while the camera streams; in the silence after it, one every 0.2 s
    last_frame = cam[-1][0]
    assert beats and all(t >= last_frame + 0.2 for t, _, _ in beats)
    gaps = np.diff([last_frame] + [t for t, _, _ in beats])
    assert np.allclose(gaps, 0.2, atol=0.011)


def test_fresh_input_never_waits_behind_a_heartbeat_even_at_a_low_max_rate():
    # max_rate 5 Hz, heartbeat 5 Hz: a heartbeat at t must not push a fresh input at t + 1 ms
    sched = FusionScheduler(max_rate_hz=5.0, heartbeat_hz=5.0)
    sched.note_input(0.0)
    assert sched.decide(0.0, True, True) == FRESH
    sched.started(0.0, FRESH)
    sched.finished(0.0)
    assert sched.decide(0.1, False, True) is None  # not silent long enough
    assert sched.decide(0.2, False, True) == HEARTBEAT
    sched.started(0.2, HEARTBEAT)
    sched.finished(0.2)
    sched.note_input(0.201)
    assert sched.decide(0.201, True, True) == FRESH  # heartbeats do not count against max_rate
    # a pending input always wins over a due heartbeat
    sched.started(0.201, FRESH)
    sched.finished(0.201)
    sched.note_input(0.45)
    assert sched.decide(0.45, True, True) == FRESH


def test_bursts_coalesce_to_the_newest_and_respect_max_rate():
    # 10 frames within 9 ms at max 20 Hz: the first at once, the rest coalesce into one fusion
    burst = [(0.001 * k, IMAGE) for k in range(10)]
    log, waits = _simulate(burst, 0.5, 20.0, 0.0)
    assert [k for _, k, _ in log] == [FRESH, FRESH]
    assert log[0][0] == 0.0 and log[1][0] == pytest.approx(0.05, abs=1e-4)  # when the rate limit refills
    fused = [i for i, w in waits.items() if w is not None]
    assert fused == [0, 9]  # first and newest; 1..8 superseded
    starts = [t for t, _, _ in log]
    assert all(b - a >= 1 / 20.0 - 1e-9 for a, b in zip(starts, starts[1:]))


def test_input_during_a_running_fusion_is_fused_when_it_ends():
    events = [(0.0, IMAGE), (0.002, TRAJECTORY), (0.003, IMAGE)]
    log, waits = _simulate(events, 0.1, 1000.0, 0.0, fusion_s=0.005)
    assert log[0] == (0.0, FRESH, (IMAGE,))
    assert log[1][0] == pytest.approx(0.005) and set(log[1][2]) == {IMAGE, TRAJECTORY}
    assert waits[0] == 0.0 and waits[1] == pytest.approx(0.003) and waits[2] == pytest.approx(0.002)
    assert waits == {0: 0.0, 1: pytest.approx(0.003), 2: pytest.approx(0.002)}


def test_next_tick_is_the_next_deadline_not_a_poll():
    from crossmodal_ros.fusion_policy import IDLE_POLL_S

    sched = FusionScheduler(max_rate_hz=20.0, heartbeat_hz=5.0)
    assert sched.next_tick(0.0, False, False) == pytest.approx(min(IDLE_POLL_S, 1 / 5.0))  # nothing live
    sched.note_input(0.0)
    sched.started(0.0, FRESH)
    sched.finished(0.0)
    # something live: the next heartbeat, 1 / heartbeat_hz after the last fusion or input
    due = sched.next_tick(0.01, False, True)
    assert due == pytest.approx(0.2, abs=1e-5) and sched.decide(due, False, True) == HEARTBEAT
    sched.note_input(0.05)
    assert sched.next_tick(0.06, False, True) == pytest.approx(0.25, abs=1e-5)
    # pending input the rate limit defers: when a token is back (1 / max_rate_hz after 0.0)
    assert sched.decide(0.02, True, True) is None
    due = sched.next_tick(0.02, True, True)
    assert due == pytest.approx(0.05, abs=1e-5) and sched.decide(due, True, True) == FRESH
    # heartbeats off and nothing pending: only the idle check
    off = FusionScheduler(max_rate_hz=20.0, heartbeat_hz=0.0)
    assert off.next_tick(1.0, False, True) == pytest.approx(1.0 + IDLE_POLL_S)
    # never more than IDLE_POLL_S ahead (a slow heartbeat or rate limit)
    slow = FusionScheduler(max_rate_hz=0.5, heartbeat_hz=0.1)
    slow.started(0.0, FRESH)
    slow.finished(0.0)
    assert slow.next_tick(0.0, True, False) == pytest.approx(IDLE_POLL_S)
    assert slow.next_tick(0.0, False, True) == pytest.approx(IDLE_POLL_S)


def test_configure_rejects_bad_rates():
    with pytest.raises(ValueError):
        FusionScheduler(0.0, 0.0)
    with pytest.raises(ValueError):
        FusionScheduler(10.0, 20.0)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_burst"):
            FusionScheduler(10.0, 5.0, bad)


def test_a_burst_of_sensors_is_fused_at_once_and_the_rate_still_holds():
    # a microphone window, a pen stroke and a frame within 2 ms at max 100 Hz: with max_burst 1
    # the second waits for the next tick; with 4 tokens each is fused as it arrives
    together = [(0.0, AUDIO), (0.001, TRAJECTORY), (0.002, IMAGE)]
    log1, waits1 = _simulate(together, 0.1, 100.0, 0.0)
    log4, waits4 = _simulate(together, 0.1, 100.0, 0.0, max_burst=4)
    assert max(waits1.values()) >= 0.008 and len(log1) == 2  # coalesced on the refill 10 ms later
    assert all(w == 0.0 for w in waits4.values()) and len(log4) == 3
    # a flood: never more than max_burst + T * max_rate_hz fresh fusions in any window of T s
    flood = [(0.0005 * k, IMAGE) for k in range(2000)]  # 2 kHz for 1 s
    log, _ = _simulate(flood, 1.0, 100.0, 0.0, max_burst=4)
    starts = np.array([t for t, k, _ in log if k == FRESH])
    for span in (0.01, 0.1, 0.5, 1.0):
        most = max(int(np.searchsorted(starts, t + span - 1e-9) - i) for i, t in enumerate(starts))
        assert most <= 4 + span * 100.0 + 1e-9, (span, most)
    assert len(starts) >= 100  # and the limit is not stricter than it says
    # tokens come back at max_rate_hz up to max_burst, also across a live change of the size
    sched = FusionScheduler(10.0, 0.0, 3)
    for t in (0.0, 0.0, 0.0):
        assert sched.decide(t, True, False) == FRESH
        sched.started(t, FRESH)
        sched.finished(t)
    assert sched.decide(0.05, True, False) is None and sched.wait_of_fresh(0.05) == pytest.approx(0.0499, abs=1e-3)
    assert sched.tokens(10.0) == 3.0
    sched.configure(10.0, 0.0, 1)
    assert sched.tokens(10.0) == 1.0


# --------------------------------------------------------------------------- node == bag_eval
EVENTS = ([(0.0, IMAGE), (0.004, TRAJECTORY), (0.010, IMAGE), (0.033, IMAGE)]
          + [(0.5 + k / 30.0, IMAGE) for k in range(6)] + [(1.5, TRAJECTORY)])
UNTIL = 2.2


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("rates", [(20.0, 5.0, 1), (100.0, 5.0, 1), (5.0, 5.0, 1), (20.0, 5.0, 4), (100.0, 5.0, 2)],
                         ids=["20-5", "100-5", "5-5", "20-5-burst4", "100-5-burst2"])
def test_node_and_bag_eval_decide_alike(ros_context, untrained_checkpoint, rates):
    from crossmodal_ros.ros.nexus_node import make_node

    max_rate, heartbeat, burst = rates
    value = {IMAGE: np.eye(28, dtype=np.float32),
             TRAJECTORY: np.stack([np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2], 1)}
    staleness = {m: 3000.0 for m in MODALITIES}

    # offline: the bag evaluator's timeline driver with a recording fuse
    store = LatestSamples(MODALITIES)
    offline = drive_timeline(
        [(t, m, Sample(value=value[m], stamp=t, stamp_s=t, arrival_s=t)) for t, m in EVENTS],
        0.0, UNTIL, FusionScheduler(max_rate, heartbeat, burst), store, staleness,
        lambda now, kind, live: True)

    # the node, in process, its scheduler on a fake clock; inputs stored as its callbacks do and
    # its subscription-callback path and timer handler called at the same moments (nothing spins the executor)
    node = make_node(context=ros_context.context, checkpoint=untrained_checkpoint,
                     max_rate_hz=max_rate, heartbeat_hz=heartbeat, max_burst=burst, staleness=staleness,
                     autostart=True)
    ros_context.add(node)
    clock = [0.0]
    node.core.mono = lambda: clock[0]
    node.core.scheduler.reset()
    online = []

    def call(handler, t):
        clock[0] = t
        before = node.fused_count
        handler()
        if node.fused_count > before:
            online.append((t, node.last_fusion_kind, node.last_fused))

    timer = node.fusion_timer  # its deadlines, on the fake clock from here (first tick one period in)
    timer.due = node.core.scheduler.tick_period
    ticks = 0
    for t, m in EVENTS:
        while timer.due < t:
            call(node._on_fusion_timer, timer.due)
            ticks += 1
        call(lambda: node.inputs.store(m, value[m]), t)  # the subscription callback: store, then fuse
    while timer.due < UNTIL:
        call(node._on_fusion_timer, timer.due)
        ticks += 1

    assert [(round(t, 9), k) for t, k, _ in online] == [(round(t, 9), k) for t, k, _ in offline]
    assert [tuple(f) for _, _, f in online] == [f for _, _, f in offline]
    kinds = [k for _, k, _ in offline]
    assert FRESH in kinds and HEARTBEAT in kinds
    # the timer is a deadline, not a poll at max_rate_hz: over 2.2 s at most one tick per
    # heartbeat or idle check plus one per deferred input, not 2.2 * max_rate_hz
    assert ticks <= UNTIL * heartbeat + len(EVENTS) + 2, ticks
    # every fresh input of the stream was fused at its arrival or on the rate limit, never
    # later because of a heartbeat
    assert offline[0] == (0.0, FRESH, (IMAGE,))


# --------------------------------------------------------------------------- the fusion core
class _Log:
    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(("info", text))

    def warning(self, text):
        self.lines.append(("warning", text))

    def error(self, text):
        self.lines.append(("error", text))


def _core(clock):
    from crossmodal_ros.fusion_policy import FusionCore

    core = FusionCore(LatestSamples(MODALITIES), _Log(), lambda exc: isinstance(exc, ValueError),
                      mono=lambda: clock[0])
    core.configure(100.0, 5.0, {m: 1.0 for m in MODALITIES})
    return core


def _put(core, m, value, t):
    assert core.accept(m, t)
    core.put(m, Sample(value=value, stamp=t, stamp_s=t, arrival_s=t, seq=core.received[m]))


def _infer(values, decode):
    from types import SimpleNamespace

    if any(isinstance(v, str) and v == "bad" for v in values.values()):
        raise ValueError("codec rejects 'bad'")
    if any(isinstance(v, str) and v == "bug" for v in values.values()):
        raise RuntimeError("a bug")
    return SimpleNamespace(fused=tuple(values))


def test_fusion_core_rejects_a_bad_input_fuses_the_rest_and_accounts_for_every_message():
    clock = [0.0]
    core = _core(clock)
    assert not core.accept(IMAGE, 0.0)  # inactive: a counted drop
    core.activate()
    _put(core, IMAGE, "bad", 0.1)
    _put(core, TRAJECTORY, np.zeros((20, 2)), 0.1)
    assert core.on_input() == FRESH
    result, samples = core.fuse(FRESH, 0.2, _infer, {TRAJECTORY})
    assert result.fused == (TRAJECTORY,) and set(samples) == {TRAJECTORY}
    assert core.dropped[IMAGE] == {"inactive": 1, "codec": 1}
    assert core.fused_count == 1 and core.decoded[TRAJECTORY] == 1 and core.fusions_by_kind[FRESH] == 1
    _put(core, TRAJECTORY, np.ones((20, 2)), 0.3)
    _put(core, TRAJECTORY, np.ones((20, 2)), 0.4)  # supersedes the one before
    assert core.fuse(HEARTBEAT, 0.5, _infer, set()) is not None
    assert core.fuse(HEARTBEAT, 0.6, _infer, set()) is not None  # the same message: counted once
    rows = core.accounting()
    assert rows[TRAJECTORY] == {"received": 3, "dropped": 0, "superseded": 1, "fused": 2, "expired": 0,
                                "pending": 0, "unaccounted": 0}
    assert rows[IMAGE]["dropped"] == 2 and all(r["unaccounted"] == 0 for r in rows.values())
    assert any(level == "warning" and "codec" in text for level, text in core.log.lines)


def test_fusion_core_survives_a_failing_inference_and_a_stalled_clock():
    clock = [0.0]
    core = _core(clock)
    core.configure(100.0, 5.0, {m: 1.0 for m in MODALITIES}, clock_timeout_s=0.5)
    core.activate()
    _put(core, IMAGE, "bug", 0.0)
    assert core.fuse(FRESH, 0.1, _infer, set()) is None
    assert core.last_error == "RuntimeError: a bug" and not core.scheduler.busy
    assert core.dropped[IMAGE] == {} and core.fused_count == 0
    _put(core, IMAGE, np.eye(28), 0.2)
    assert core.fuse(FRESH, 0.3, _infer, set()) is not None and core.last_error == ""
    # under sim time a clock that stops for clock_timeout_s makes nothing live
    assert not core.check_clock(5, sim_time=True) and core.live(0.4) == (IMAGE,)
    assert not core.check_clock(5, sim_time=False)
    clock[0] += 1.0  # the same clock reading, 1 s of steady time later
    assert core.check_clock(5, sim_time=True) and core.live(0.4) == ()
    assert core.fuse(HEARTBEAT, 0.4, _infer, set()) is None
    assert core.on_tick(0.4) is None


def test_wake_gate_serves_a_wake_up_that_found_the_lock_held_exactly_once():
    import threading

    from crossmodal_ros.fusion_policy import WakeGate

    lock = threading.RLock()
    gate, served = WakeGate(lock), []
    gate.wake(lambda: served.append("now"))  # lock free: served at once, on this thread
    assert served == ["now"] and not gate.requested
    with lock:  # this thread fuses; a wake-up arrives from another thread meanwhile
        t = threading.Thread(target=gate.wake, args=(lambda: served.append("late"),))
        t.start()
        t.join()
        assert served == ["now"] and gate.requested  # remembered, not served, not blocked
    gate.flush(lambda: served.append("late"))  # the holder serves it after letting go
    gate.flush(lambda: served.append("late"))  # and only once
    assert served == ["now", "late"] and not gate.requested


def test_executor_choice():
    from crossmodal_ros.ros.executors import EXECUTOR_CHOICES, make_executor

    assert EXECUTOR_CHOICES == ("events", "single")  # the entry-point test spins both
    with pytest.raises(ValueError, match="executor"):
        make_executor("multi")
