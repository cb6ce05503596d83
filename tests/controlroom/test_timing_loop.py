"""The vectorised core and the per-intersection loop of kota.bench_core plan identically."""

import numpy as np
import pytest

from controlroom.timing import Measurements, Params, initial_state, plan_step
from kota.bench_core import (
    loop_structure,
    plan_step_loop,
    plans_equal,
    random_measurements,
    random_structure,
)


@pytest.mark.parametrize("seed", range(6))
def test_loop_and_vectorised_give_the_same_plans_over_several_cycles(seed):
    s = random_structure(80, phases=8, detectors=16, seed=seed, ragged=True, corridor_every=4)
    ls = loop_structure(s)
    params = Params(history_max_age_s=150.0)  # so histories go stale within the run
    vec_state = loop_state = initial_state(s)
    for step in range(5):
        m = random_measurements(s, seed=1000 * seed + step)
        if step == 3:  # a whole bad interval
            m = Measurements(m.count, m.occupancy, m.queue_veh, m.valid, float("nan"))
        a, vec_state = plan_step(s, m, vec_state, params)
        b, loop_state = plan_step_loop(ls, m, loop_state, params)
        assert plans_equal(a, b), f"step {step}"
        for k in ("hist_rate_veh_h", "hist_queue_veh", "rate_good_s", "queue_good_s",
                  "flow_pcu_h", "cycle_ds", "green_ds"):
            np.testing.assert_allclose(getattr(vec_state, k), getattr(loop_state, k),
                                       rtol=1e-12, err_msg=k)
        assert vec_state.clock_s == loop_state.clock_s


def test_loop_and_vectorised_agree_at_benchmark_shape():
    s = random_structure(200, phases=8, detectors=32, seed=42)
    ls = loop_structure(s)
    state = initial_state(s)
    for step in range(3):
        m = random_measurements(s, seed=step)
        a, state2 = plan_step(s, m, state, Params())
        b, _ = plan_step_loop(ls, m, state, Params())
        assert plans_equal(a, b)
        state = state2
