"""Corridor coordination: common cycle and offsets on a 3-intersection corridor."""

import numpy as np
import pytest

from controlroom.timing import (
    DetectorSpec,
    IntersectionSpec,
    Measurements,
    MovementSpec,
    Params,
    PhaseSpec,
    build_structure,
    initial_state,
    plan_step,
)
from controlroom.timing.offsets import resolve_corridors


def crossing(upstream=-1, travel_time_s=0.0):
    return IntersectionSpec(
        phases=[PhaseSpec([0]), PhaseSpec([1])],
        movements=[MovementSpec(5.0), MovementSpec(5.0)],
        detectors=[DetectorSpec(0), DetectorSpec(1)],
        upstream=upstream, travel_time_s=travel_time_s)


def run(specs, counts):
    s = build_structure(specs)
    c = np.array(counts, float)
    m = Measurements(c, np.zeros_like(c), np.zeros_like(c), np.ones(c.shape, bool), 360.0)
    return s, plan_step(s, m, initial_state(s), Params())[0]


def test_three_intersection_corridor():
    # A → B → C with 20 s and 35 s travel. Alone, A (y = 0.2) would run 40 s and C
    # (y = 0.3 + 0.3 = 0.6: Webster (15 + 5)/0.4 = 50 s) 50 s; the corridor runs the longest.
    # Offsets: A 0, B 0 + 20 = 20 s, C 20 + 35 = 55 s (mod 50 s) = 5 s.
    specs = [crossing(), crossing(0, 20.0), crossing(1, 35.0)]
    s, out = run(specs, [[30, 30], [30, 30], [90, 90]])
    assert out.cycle_s.tolist() == [50.0, 50.0, 50.0]
    assert out.offset_s.tolist() == [0.0, 20.0, 5.0]
    # Alone they differ.
    _, alone = run([crossing(), crossing(), crossing()], [[30, 30], [30, 30], [90, 90]])
    assert alone.cycle_s.tolist() == [40.0, 40.0, 50.0]
    assert np.array_equal(out.split_ds.sum(axis=1), out.cycle_ds)


def test_chains_resolve_in_any_order_and_branch():
    # 3 ← 0 → 1 → 2 (a branch at 0), and 4 alone.
    specs = [crossing(), crossing(0, 10.0), crossing(1, 12.5), crossing(0, 7.0), crossing()]
    s = build_structure(specs)
    root, travel_ds = resolve_corridors(s)
    assert root.tolist() == [0, 0, 0, 0, 4]
    assert travel_ds.tolist() == [0, 100, 225, 70, 0]
    # Reversed listing: upstream indices point forward.
    rev = [crossing(1, 12.5), crossing(2, 10.0), crossing()]
    root, travel_ds = resolve_corridors(build_structure(rev))
    assert root.tolist() == [2, 2, 2] and travel_ds.tolist() == [225, 100, 0]


def test_long_chain_uses_log_steps():
    specs = [crossing()] + [crossing(i, 10.0) for i in range(99)]
    s = build_structure(specs)
    assert s.chain_steps == 7  # ceil(log2(100))
    root, travel_ds = resolve_corridors(s)
    assert np.all(root == 0) and travel_ds.tolist() == [100 * i for i in range(100)]


def test_upstream_loops_are_rejected():
    with pytest.raises(ValueError, match="loop"):
        build_structure([crossing(2, 5.0), crossing(0, 5.0), crossing(1, 5.0)])
    with pytest.raises(ValueError, match="upstream"):
        build_structure([crossing(0, 5.0)])
