"""Explicit state carried from one core step to the next (never hidden in the core).

Owns the state layout and its initial value; it must not compute plans.
"""

from dataclasses import dataclass

import numpy as np

from controlroom.timing.structure import Structure

# "Last good reading" of a detector never seen: long before any history limit, still finite.
NEVER_S = -1.0e9


@dataclass(frozen=True, eq=False)
class State:
    # Seconds of measurements seen so far (sum of intervals); 0 = nothing seen yet.
    clock_s: float
    # Detector history (robustness fallback), [I,D]: the last good reading (or the fallback
    # that stood in since) and the clock at the last good reading (NEVER_S if none).
    hist_rate_veh_h: np.ndarray
    hist_queue_veh: np.ndarray
    rate_good_s: np.ndarray
    queue_good_s: np.ndarray
    # plan_step: smoothed movement flow [I,M] and the last plan; cycle_ds 0 = no plan yet.
    flow_pcu_h: np.ndarray
    cycle_ds: np.ndarray  # [I] int
    green_ds: np.ndarray  # [I,P] int
    # pressure_step: the phase now green, its green time so far (negative while the
    # yellow/all-red before it runs) and each phase's time since its last green, [I,P].
    phase: np.ndarray  # [I] int
    phase_green_s: np.ndarray  # [I]
    phase_wait_s: np.ndarray  # [I,P]
    # The current phase's own minimum green (s): its structure minimum or, if longer, the
    # time to clear the queue it found when it was chosen (a variable initial green).
    phase_min_s: np.ndarray  # [I]


def initial_state(structure: Structure) -> State:
    n, p, m, d = structure.shape
    return State(
        clock_s=0.0, hist_rate_veh_h=np.zeros((n, d)), hist_queue_veh=np.zeros((n, d)),
        rate_good_s=np.full((n, d), NEVER_S), queue_good_s=np.full((n, d), NEVER_S),
        flow_pcu_h=np.zeros((n, m)), cycle_ds=np.zeros(n, np.int64),
        green_ds=np.zeros((n, p), np.int64), phase=np.zeros(n, np.int64),
        phase_green_s=np.zeros(n), phase_wait_s=np.zeros((n, p)),
        phase_min_s=np.zeros(n))
