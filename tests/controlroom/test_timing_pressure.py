"""pressure_step: stay/switch decisions on hand-computed pressures."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from controlroom.timing import (
    DetectorSpec,
    IntersectionSpec,
    Measurements,
    MovementSpec,
    Params,
    PhaseSpec,
    build_structure,
    initial_state,
    pressure_step,
)
from controlroom.timing.state import State
from kota.bench_core import random_structure

# Intersection 0: phase 0 serves movement 0 (5 m → 3000 pcu/h), phase 1 movement 1 (4 m →
# 2400 pcu/h); one detector each; yellow 3 s + all-red 2 s; min green 7 s, max green 60 s.
# Intersection 1 is downstream: its detector 0 sees the link movement 0 discharges into.
# Waiting-time growth is switched off (huge scale) so pressures are the textbook ones.
PARAMS = Params(wait_scale_s=1e12)


def structure(downstream=()):
    return build_structure([IntersectionSpec(
        phases=[PhaseSpec([0]), PhaseSpec([1])],
        movements=[MovementSpec(5.0, downstream=downstream), MovementSpec(4.0)],
        detectors=[DetectorSpec(0), DetectorSpec(1)])] * 2)


def at(s, phase, green_s):
    st = initial_state(s)
    return State(**{**st.__dict__, "phase": np.array([phase, 0]),
                    "phase_green_s": np.array([green_s, 0.0])})


def queues(q0, q1, q_down=0.0, counts=(0.0, 0.0)):
    c = np.array([counts, (0.0, 0.0)], float)
    return Measurements(c, np.zeros_like(c), np.array([[q0, q1], [q_down, 0.0]], float),
                        np.ones((2, 2), bool), 1.0)


def test_pressure_is_saturation_flow_weighted_queue():
    s = structure()
    d, _ = pressure_step(s, queues(2, 10), at(s, 0, 9.0), PARAMS)
    # 2 veh × 3000/3600 = 1.667; 10 veh × 2400/3600 = 6.667.
    np.testing.assert_allclose(d.pressure[0], [2 * 3000 / 3600, 10 * 2400 / 3600])


def test_switches_when_the_other_phase_wins_clearly():
    s = structure()
    # Gain of switching over a 20 s horizon, losing 5 s of yellow + all-red:
    # 6.667 × 15 − 1.667 × 20 = 66.7 > 0 → switch.
    d, st = pressure_step(s, queues(2, 10), at(s, 0, 9.0), PARAMS)
    assert d.switch.tolist()[0] is True and d.phase[0] == 1
    assert st.phase[0] == 1
    assert st.phase_green_s[0] == -5.0  # green starts after yellow + all-red


def test_stays_when_the_other_phase_wins_only_a_little():
    s = structure()
    # 6 veh → 5.0; 7 veh → 5.833. Textbook max-pressure would switch; here
    # 5.833 × 15 − 5.0 × 20 = −12.5 < 0 → stay (switching would waste 5 s).
    d, st = pressure_step(s, queues(6, 7), at(s, 0, 20.0), PARAMS)
    assert d.switch.tolist()[0] is False and d.phase[0] == 0
    assert st.phase_green_s[0] == 21.0


def test_min_green_is_held():
    s = structure()
    d, _ = pressure_step(s, queues(0, 50), at(s, 0, 3.0), PARAMS)  # 3 + 1 s < 7 s
    assert d.switch.tolist()[0] is False
    d, _ = pressure_step(s, queues(0, 50), at(s, 0, 6.0), PARAMS)  # 7 s reached
    assert d.switch.tolist()[0] is True


def test_max_green_ends_the_phase():
    s = structure()
    d, _ = pressure_step(s, queues(40, 1), at(s, 0, 59.0), PARAMS)  # 60 s reached
    assert d.switch.tolist()[0] is True and d.phase[0] == 1
    d, _ = pressure_step(s, queues(40, 1), at(s, 0, 58.0), PARAMS)
    assert d.switch.tolist()[0] is False


def test_rest_in_green_when_nobody_waits():
    s = structure()
    d, _ = pressure_step(s, queues(3, 0), at(s, 0, 80.0), Params(rest_in_green=True))
    assert d.switch.tolist()[0] is False
    d, _ = pressure_step(s, queues(3, 0), at(s, 0, 80.0), Params(rest_in_green=False))
    assert d.switch.tolist()[0] is True


def test_empty_phase_gaps_out():
    s = structure()
    d, _ = pressure_step(s, queues(0, 1), at(s, 0, 8.0), PARAMS)
    assert d.switch.tolist()[0] is True
    d, _ = pressure_step(s, queues(0, 0), at(s, 0, 8.0), PARAMS)
    assert d.switch.tolist()[0] is False  # nobody anywhere: no pointless switch


def test_discharging_platoon_keeps_its_phase():
    s = structure()
    # Movement 0 has no standing queue but counts 1 veh/s at the stop line: over the 3 s
    # arrival horizon that is 3 veh/lane → 3 × 3000/3600 = 2.5 against 1 × 2400/3600.
    d, _ = pressure_step(s, queues(0, 1, counts=(1.0, 0.0)), at(s, 0, 8.0), PARAMS)
    assert d.pressure[0, 0] == pytest.approx(2.5)
    assert d.switch.tolist()[0] is False


def test_blocked_exit_removes_the_movement_pressure():
    # Movement 0 discharges into a link whose detector (intersection 1, detector 0) holds 10
    # vehicles: weight max(4 − 10, 0) = 0.
    s = structure(downstream=[(1, 0)])
    d, _ = pressure_step(s, queues(4, 1, q_down=10), at(s, 1, 10.0), PARAMS)
    assert d.pressure[0, 0] == 0.0
    # Partly filled exit: (4 − 1) × 3000/3600 = 2.5.
    d, _ = pressure_step(s, queues(4, 1, q_down=1), at(s, 1, 10.0), PARAMS)
    assert d.pressure[0, 0] == pytest.approx(2.5)


def test_waiting_phase_gains_urgency():
    s = structure()
    st = at(s, 0, 20.0)
    st = State(**{**st.__dict__, "phase_wait_s": np.array([[0.0, 119.0], [0.0, 0.0]])})
    # 5.0 vs 5.833 × (1 + 120/60) = 17.5 → switch although the raw pressures are close.
    d, _ = pressure_step(s, queues(6, 7), st, Params(wait_scale_s=60.0))
    assert d.switch.tolist()[0] is True


def test_variable_initial_green_clears_the_queue_found():
    s = structure()
    params = Params(wait_scale_s=1e12, initial_green_scale=1.0)
    # Switch to phase 1 with 10 veh on its 4 m lane: 10 × 3600 / 2400 = 15 s to discharge.
    d, st = pressure_step(s, queues(2, 10), at(s, 0, 9.0), params)
    assert d.phase[0] == 1 and st.phase_min_s[0] == pytest.approx(15.0)
    # 12 s into that green, phase 0 has a big queue but phase 1 keeps its 15 s…
    st = State(**{**st.__dict__, "phase_green_s": np.array([11.0, 0.0])})
    d, _ = pressure_step(s, queues(50, 0), st, params)
    assert d.switch.tolist()[0] is False
    # …and gives way once they are done.
    st = State(**{**st.__dict__, "phase_green_s": np.array([14.0, 0.0])})
    d, st2 = pressure_step(s, queues(50, 0), st, params)
    assert d.switch.tolist()[0] is True
    # Off (scale 0): only the structure's 7 s minimum holds.
    d, st = pressure_step(s, queues(2, 10), at(s, 0, 9.0), PARAMS)
    assert st.phase_min_s[0] == 0.0


def test_variable_initial_green_never_exceeds_max_green():
    s = structure()
    params = Params(wait_scale_s=1e12, initial_green_scale=1.0)
    _, st = pressure_step(s, queues(0, 500), at(s, 0, 9.0), params)
    assert st.phase_min_s[0] == 60.0


def test_arrivals_count_only_while_the_stop_line_is_busy():
    s = structure()
    params = Params(wait_scale_s=1e12, discharge_occupancy=0.4)

    def with_occupancy(occ):
        c = np.array([[1.0, 0.0], [0.0, 0.0]])
        return Measurements(c, np.array([[occ, 0.0], [0.0, 0.0]]),
                            np.array([[0.0, 1.0], [0.0, 0.0]]), np.ones((2, 2), bool), 1.0)

    # Saturated discharge (loop 40 % occupied): the full 3 s of arrivals, 2.5 as above.
    d, _ = pressure_step(s, with_occupancy(0.4), at(s, 0, 8.0), params)
    assert d.pressure[0, 0] == pytest.approx(2.5)
    # A lone vehicle (10 %): a quarter of it, 0.625 < 0.667 waiting → the queue wins.
    d, _ = pressure_step(s, with_occupancy(0.1), at(s, 0, 8.0), params)
    assert d.pressure[0, 0] == pytest.approx(0.625)
    # Garbage occupancy never reaches the pressure as NaN.
    d, _ = pressure_step(s, with_occupancy(float("nan")), at(s, 0, 8.0), params)
    assert np.isfinite(d.pressure).all()


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), data=st.data())
def test_decisions_are_valid_phases_and_hold_min_max_green_on_any_data(seed, data):
    s = random_structure(6, phases=5, detectors=8, seed=seed, ragged=True)
    n, _, _, d = s.shape
    state = initial_state(s)
    for _ in range(8):
        count = data.draw(arrays(np.float64, (n, d), elements=finite_or_not))
        queue = data.draw(arrays(np.float64, (n, d), elements=finite_or_not))
        valid = data.draw(arrays(np.bool_, (n, d)))
        step_s = data.draw(st.sampled_from([1.0, 5.0, 30.0]))
        before = state
        dec, state = pressure_step(s, Measurements(count, count, queue, valid, step_s), state,
                                   Params(initial_green_scale=1.0, discharge_occupancy=0.3))
        assert np.all(np.isfinite(dec.pressure)) and np.all(dec.pressure >= 0)
        assert np.all((dec.phase >= 0) & (dec.phase < s.n_phases))
        assert np.all(s.phase_valid[np.arange(n), dec.phase])
        green_s = before.phase_green_s + step_s
        cur = before.phase
        min_s = np.maximum(s.min_green_ds[np.arange(n), cur] / 10, before.phase_min_s)
        max_s = s.max_green_ds[np.arange(n), cur] / 10
        assert not np.any(dec.switch & (green_s < min_s))  # min green held
        assert not np.any(~dec.switch & (green_s >= max_s) & (s.n_phases > 1))  # max ended
        assert np.array_equal(dec.switch, dec.phase != cur)
        assert np.all(np.isfinite(state.phase_green_s)) and np.all(np.isfinite(state.phase_wait_s))
        assert np.all(np.isfinite(state.phase_min_s))
        assert np.all(state.phase_min_s <= s.max_green_ds[np.arange(n), state.phase] / 10)
