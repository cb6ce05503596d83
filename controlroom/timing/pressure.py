"""Max-pressure phase policy for controllers that accept phase decisions, all at once.

Owns `pressure_step`: stay in the current phase or switch, per intersection. It must not do
I/O, log, or loop over intersections.

Pressure follows Varaiya (2013, "Max pressure control of a network of signalized
intersections"): a phase's pressure is Σ over its movements of the saturation flow times
(upstream load − downstream queue), with loads per lane and the downstream term only where the
structure knows the receiving detectors. Changes for lower delay, not in the textbook policy:
- a movement's weight is clipped at 0 (a blocked exit neither helps nor vetoes its phase);
- upstream load adds the stop-line arrivals of the next few seconds, so a phase still
  discharging a platoon keeps its pressure (a gap-out in effect);
- switching costs yellow + all-red: switch only when the best other phase, served for the
  decision horizon minus that lost time, beats staying for the whole horizon (hysteresis);
- a waiting phase's pressure grows with its waiting time (no starvation);
- min green always held, max green always ended (unless ``rest_in_green`` and no one waits).
"""

from dataclasses import dataclass, replace

import numpy as np

from controlroom.timing.measure import (
    Measurements,
    clean_detectors,
    movement_totals,
    with_zero_slot,
)
from controlroom.timing.params import Params
from controlroom.timing.state import State
from controlroom.timing.structure import Structure


@dataclass(frozen=True, eq=False)
class PhaseDecision:
    phase: np.ndarray  # [I] int: the phase to show green next (same phase = stay)
    switch: np.ndarray  # [I] bool: a change of phase (run yellow + all-red first)
    pressure: np.ndarray  # [I,P] pressure per phase (pcu/s-weighted vehicles), 0 padding


def phase_pressure(structure: Structure, queue_veh: np.ndarray, rate_veh_h: np.ndarray,
                   params: Params, occupancy: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """[I,P] pressure from cleaned per-detector queues and count rates, and [I,M] the
    standing queue per lane."""
    n, _, _, d = structure.shape
    lanes_q = np.maximum(structure.n_queue_detectors, 1)
    lanes_c = np.maximum(structure.n_count_detectors, 1)
    hot = structure.hot
    queue_flat = with_zero_slot(queue_veh)
    lane_queue = movement_totals(structure, queue_flat, hot.queue_gather) / lanes_q
    arrivals = movement_totals(structure, with_zero_slot(rate_veh_h), hot.count_gather) / lanes_c * (
        params.arrival_horizon_s / 3600.0)
    if occupancy is not None and params.discharge_occupancy > 0:
        # Arrivals count in full only while the stop-line loops are busy (a queue
        # discharging); a lone vehicle passing a loop holds no green against a queue.
        occ = movement_totals(structure, with_zero_slot(occupancy), hot.count_gather) / lanes_c
        arrivals = arrivals * np.clip(occ / params.discharge_occupancy, 0.0, 1.0)
    up = lane_queue + arrivals
    idx = np.where(structure.downstream_detector >= 0, structure.downstream_detector, n * d)
    n_down = (structure.downstream_detector >= 0).sum(axis=2)
    down = queue_flat[idx].sum(axis=2) / np.maximum(n_down, 1)
    weight = np.maximum(up - down, 0.0) * (structure.sat_flow_pcu_h / 3600.0)
    weight = np.where(structure.movement_valid, weight, 0.0)
    return np.einsum("ipm,im->ip", structure.serves, weight), lane_queue


def clearance_s(structure: Structure, lane_queue: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """[I] seconds for ``phase``'s longest per-lane queue to discharge at saturation flow."""
    rows = np.arange(phase.shape[0])
    per_lane_s = lane_queue * structure.pcu_per_veh * 3600.0 / np.maximum(
        structure.sat_flow_pcu_h, 1.0)
    served = structure.serves[rows, phase]  # [I,M]
    return np.where(served & structure.movement_valid, per_lane_s, 0.0).max(axis=1, initial=0.0)


def pressure_step(structure: Structure, measurements: Measurements, state: State,
                  params: Params) -> tuple[PhaseDecision, State]:
    """Decide, for every intersection, whether to keep the current phase or switch.

    ``state.phase_green_s`` is the green time of the current phase at the previous call; the
    measurement interval is added to it. After a switch it restarts at minus the yellow +
    all-red of the phase left, so it counts green only.
    """
    n, p, _, _ = structure.shape
    rows = np.arange(n)
    clean = clean_detectors(structure, measurements, state, params)
    occupancy = None  # read only when arrivals are gated by it
    if params.discharge_occupancy > 0:
        occupancy = np.where(measurements.valid & structure.detector_counts,
                             np.clip(np.nan_to_num(measurements.occupancy, nan=0.0, posinf=1.0,
                                                   neginf=0.0), 0.0, 1.0), 0.0)
    pressure, lane_queue = phase_pressure(structure, clean.queue_veh.value,
                                          clean.rate_veh_h.value, params, occupancy)
    pressure = np.where(structure.phase_valid, pressure, 0.0)

    step_s = float(measurements.interval_s)
    step_s = step_s if np.isfinite(step_s) and step_s > 0 else 0.0
    current = np.clip(state.phase, 0, np.maximum(structure.n_phases - 1, 0))
    green_s = state.phase_green_s + step_s
    wait_s = np.where(np.arange(p)[None, :] == current[:, None], 0.0, state.phase_wait_s + step_s)
    urgency = pressure * (1.0 + wait_s / params.wait_scale_s)

    others = np.where(structure.phase_valid & (np.arange(p)[None, :] != current[:, None]),
                      urgency, -np.inf)
    best = np.argmax(others, axis=1)
    can_switch = (structure.n_phases > 1) & np.isfinite(others[rows, best])
    best_urgency = np.where(can_switch, others[rows, best], 0.0)
    cur_urgency = urgency[rows, current]
    lost_s = (structure.yellow_ds + structure.all_red_ds)[rows, current] / 10.0
    # Serving the best other phase for the horizon minus the clearance, against staying.
    horizon_s = max(params.decision_horizon_s, 0.0)
    gain = best_urgency * np.maximum(horizon_s - lost_s, 0.0) - cur_urgency * horizon_s \
        - params.switch_cost
    min_done = green_s >= np.maximum(structure.min_green_ds[rows, current] / 10.0,
                                     state.phase_min_s)
    max_done = green_s >= structure.max_green_ds[rows, current] / 10.0
    someone_waits = best_urgency > 0
    force = max_done & (someone_waits | (not params.rest_in_green))
    switch = can_switch & min_done & (force | ((gain > 0) & someone_waits))
    phase = np.where(switch, best, current)
    new_green_s = np.where(switch, -lost_s, green_s)
    max_s = structure.max_green_ds[rows, phase] / 10.0
    initial_s = np.minimum(params.initial_green_scale * clearance_s(structure, lane_queue, phase),
                           max_s)
    new_min_s = np.where(switch, initial_s, state.phase_min_s)
    new_wait_s = np.where(np.arange(p)[None, :] == phase[:, None], 0.0, wait_s)
    new_state = replace(
        state, clock_s=clean.clock_s, hist_rate_veh_h=clean.rate_veh_h.hist,
        hist_queue_veh=clean.queue_veh.hist, rate_good_s=clean.rate_veh_h.good_s,
        queue_good_s=clean.queue_veh.good_s, phase=phase,
        phase_green_s=new_green_s, phase_wait_s=new_wait_s, phase_min_s=new_min_s)
    return PhaseDecision(phase=phase, switch=switch, pressure=pressure), new_state
