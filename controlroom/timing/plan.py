"""SCATS-like cycle/split/offset optimiser for all intersections at once (one call per cycle).

Owns `plan_step`: detector arrays + structure + state in, the next plan + state out. It must
not do I/O, log, or loop over intersections; loops run only over fixed small counts.

Per intersection, every cycle:
1. clean detectors (measure.py) and sum them per movement → flow (pcu/h), queue (veh);
2. smooth flow (EWMA) and add a queue-clearance term → demand (pcu/h);
3. flow ratio y = demand / saturation flow (PKJI S0 = 600 × We), shared between the phases
   that serve the movement; the critical ratio of a phase is its largest y;
4. cycle = max(Webster/PKJI (1.5·L + 5)/(1 − Y), the cycle giving the DS target L/(1 − Y/x)),
   within the cycle band, feasible for min/max greens, at most ±max_cycle_change_s from the
   last plan, common along a corridor;
5. greens = (cycle − L) shared in proportion to the critical ratios (Webster, PKJI
   g = (c − LTI)·FRcrit/ΣFRcrit), clipped to [max(min green, pedestrian), max green] by an
   exact water-filling solve, then rounded to deciseconds keeping the sum;
6. offsets = travel time from the corridor's root modulo the cycle.
"""

from dataclasses import dataclass

import numpy as np

from controlroom.timing.measure import Measurements, clean_detectors, movement_totals
from controlroom.timing.offsets import common_cycle_ds, offsets_ds, resolve_corridors
from controlroom.timing.params import Params
from controlroom.timing.state import State
from controlroom.timing.structure import Structure


@dataclass(frozen=True, eq=False)
class PlanOutput:
    cycle_ds: np.ndarray  # [I] int
    green_ds: np.ndarray  # [I,P] int, 0 for padding phases
    split_ds: np.ndarray  # [I,P] int: green + yellow + all-red; sums to cycle_ds
    offset_ds: np.ndarray  # [I] int, 0 <= offset < cycle
    ds: np.ndarray  # [I,M] estimated degree of saturation under this plan
    queue_veh: np.ndarray  # [I,M] measured (cleaned) queue
    flow_pcu_h: np.ndarray  # [I,M] smoothed flow the plan was made for
    critical_ratio: np.ndarray  # [I,P] critical flow ratio per phase (incl. queue term)
    rate_source: np.ndarray  # [I,D] measure.DetectorSource of each count used
    queue_source: np.ndarray  # [I,D]

    @property
    def cycle_s(self) -> np.ndarray:
        return self.cycle_ds / 10.0

    @property
    def green_s(self) -> np.ndarray:
        return self.green_ds / 10.0

    @property
    def split_s(self) -> np.ndarray:
        return self.split_ds / 10.0

    @property
    def offset_s(self) -> np.ndarray:
        return self.offset_ds / 10.0


def solve_greens(weight: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 total: np.ndarray) -> np.ndarray:
    """g = clip(λ·w, lo, hi) with Σg = total, λ found exactly; [I,P] float.

    Σ clip(λ·w, lo, hi) is piecewise linear and non-decreasing in λ with breakpoints lo/w and
    hi/w, so evaluating it at the 2P breakpoints and interpolating solves it without
    iterating. Callers guarantee Σlo ≤ total ≤ Σhi. Zero weights get lo.
    """
    pos = weight > 0
    w_safe = np.where(pos, weight, 1.0)
    bp = np.concatenate([np.where(pos, lo / w_safe, 0.0), np.where(pos, hi / w_safe, 0.0)], axis=1)
    bp.sort(axis=1)  # [I,2P]
    at_bp = np.clip(bp[:, :, None] * weight[:, None, :], lo[:, None, :], hi[:, None, :]).sum(axis=2)
    k = (at_bp <= total[:, None] + 1e-9).sum(axis=1)  # >= 1: S(smallest bp) = Σlo
    k1 = np.clip(k, 1, bp.shape[1] - 1)
    rows = np.arange(bp.shape[0])
    b0, b1 = bp[rows, k1 - 1], bp[rows, k1]
    s0, s1 = at_bp[rows, k1 - 1], at_bp[rows, k1]
    slope = s1 - s0
    lam = np.where(slope > 0, b0 + (total - s0) * (b1 - b0) / np.where(slope > 0, slope, 1.0), b0)
    lam = np.where(k >= bp.shape[1], bp[:, -1], lam)
    return np.clip(lam[:, None] * weight, lo, hi)


def round_keeping_sum(g: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      total: np.ndarray) -> np.ndarray:
    """Integer greens from float greens with Σ = total exactly and lo ≤ g ≤ hi.

    Largest remainder: floor everything, then give one unit to the phases with the largest
    fractions (ties: lower phase index); a last correction puts any float residue on the phase
    with the most room.
    """
    fl = np.clip(np.floor(g + 1e-9), lo, hi).astype(np.int64)
    rem = total - fl.sum(axis=1)
    frac = np.where(fl < hi, g - fl, -1.0)
    order = np.argsort(-frac, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(g.shape[1])[None, :].repeat(g.shape[0], 0), axis=1)
    out = fl + ((rank < rem[:, None]) & (fl < hi))
    diff = total - out.sum(axis=1)
    rows = np.arange(g.shape[0])
    up = np.argmax(hi - out, axis=1)
    down = np.argmax(out - lo, axis=1)
    fix_at = np.where(diff > 0, up, down)
    out[rows, fix_at] += diff
    return out


def plan_step(structure: Structure, measurements: Measurements, state: State,
              params: Params) -> tuple[PlanOutput, State]:
    """The next plan for every intersection from the last interval's detector readings."""
    clean = clean_detectors(structure, measurements, state, params)
    n_counting = structure.n_count_detectors
    flow_veh_h = movement_totals(structure, clean.rate_veh_h, structure.count_bin)
    # A movement without counting detectors is assumed to carry the default (one lane).
    flow_veh_h = np.where(n_counting > 0, flow_veh_h, params.default_rate_veh_h)
    flow_now = flow_veh_h * structure.pcu_per_veh
    queue_veh = movement_totals(structure, clean.queue_veh, structure.queue_bin)
    had_plan = state.cycle_ds > 0
    a = params.flow_smoothing
    flow = np.where(had_plan[:, None], a * flow_now + (1 - a) * state.flow_pcu_h, flow_now)
    flow = np.where(structure.movement_valid, flow, 0.0)

    sat = np.where(structure.movement_valid, structure.sat_flow_pcu_h, 1.0)
    lost_ds = structure.lost_ds
    prev_cycle_ds = np.where(had_plan, state.cycle_ds, structure.cycle_min_ds)
    # Clear `queue_weight` of the standing queue within the next cycle: 3600 s/h over cycle.
    queue_pcu_h = params.queue_weight * queue_veh * structure.pcu_per_veh * (
        36000.0 / prev_cycle_ds)[:, None]
    demand = flow + queue_pcu_h
    # A movement served by several phases shares its demand between them.
    y = demand / sat / np.maximum(structure.n_serving_phases, 1)
    y = np.where(structure.movement_valid, y, 0.0)
    critical = np.where(structure.serves, y[:, None, :], 0.0).max(axis=2)  # [I,P]
    y_total = np.minimum(critical.sum(axis=1), params.max_flow_ratio)

    lost_s = lost_ds / 10.0
    webster_s = (1.5 * lost_s + 5.0) / (1.0 - y_total)  # Webster (1958); PKJI 2023 eq. for c
    ds_room = 1.0 - y_total / params.ds_target
    ds_cycle_s = np.where(ds_room > 0, lost_s / np.where(ds_room > 0, ds_room, 1.0), np.inf)
    target_ds = np.minimum(np.maximum(webster_s, ds_cycle_s) * 10.0, 1.0e7)
    lo_green = np.where(structure.phase_valid, structure.min_green_ds, 0)
    hi_green = np.where(structure.phase_valid, structure.max_green_ds, 0)
    lo_c = np.maximum(structure.cycle_min_ds, lo_green.sum(axis=1) + lost_ds)
    hi_c = np.minimum(structure.cycle_max_ds, hi_green.sum(axis=1) + lost_ds)
    cycle = np.clip(np.rint(target_ds).astype(np.int64), lo_c, hi_c)
    step_ds = int(round(params.max_cycle_change_s * 10))
    cycle = np.where(had_plan, np.clip(cycle, state.cycle_ds - step_ds, state.cycle_ds + step_ds),
                     cycle)
    cycle = np.clip(cycle, lo_c, hi_c)
    root, travel_ds = resolve_corridors(structure)
    if structure.chain_steps:
        cycle = common_cycle_ds(root, cycle, lo_c, hi_c)

    green_total = cycle - lost_ds
    weight = np.where(structure.phase_valid, critical, 0.0)
    # No demand anywhere: share equally among the valid phases.
    none = weight.sum(axis=1) <= 0
    weight = np.where(none[:, None] & structure.phase_valid, 1.0, weight)
    green_f = solve_greens(weight, lo_green.astype(np.float64), hi_green.astype(np.float64),
                           green_total.astype(np.float64))
    green = round_keeping_sum(green_f, lo_green, hi_green, green_total)
    split = np.where(structure.phase_valid, green + structure.yellow_ds + structure.all_red_ds, 0)
    offset = offsets_ds(travel_ds, cycle)

    # Degree of saturation under this plan: flow / (S × effective green / cycle).
    green_of_movement = np.einsum("ipm,ip->im", structure.serves, green.astype(np.float64))
    capacity = sat * green_of_movement / cycle[:, None]
    ds = np.where(capacity > 0, flow / np.where(capacity > 0, capacity, 1.0),
                  np.where(flow > 0, params.ds_cap, 0.0))
    ds = np.where(structure.movement_valid, np.minimum(ds, params.ds_cap), 0.0)

    out = PlanOutput(cycle_ds=cycle, green_ds=green, split_ds=split, offset_ds=offset, ds=ds,
                     queue_veh=queue_veh, flow_pcu_h=flow, critical_ratio=critical,
                     rate_source=clean.rate_source, queue_source=clean.queue_source)
    new_state = State(
        hist_rate_veh_h=clean.hist_rate_veh_h, hist_queue_veh=clean.hist_queue_veh,
        rate_age_s=clean.rate_age_s, queue_age_s=clean.queue_age_s, flow_pcu_h=flow,
        cycle_ds=cycle, green_ds=green, phase=state.phase, phase_green_s=state.phase_green_s,
        phase_wait_s=state.phase_wait_s)
    return out, new_state
