"""SCATS-like cycle/split/offset optimiser for all intersections at once (one call per cycle).

Owns `plan_step`: detector arrays + structure + state in, the next plan + state out. It must
not do I/O, log, or loop over intersections; its only loops are the water-filling rounds
(at most P + 1) and the corridor pointer jumps (⌈log2 longest chain⌉, fixed per structure).

Per intersection, every cycle:
1. clean detectors (measure.py) and sum them per movement → flow (pcu/h), queue (veh);
2. smooth flow (EWMA) and add a queue-clearance term → demand (pcu/h);
3. flow ratio y = demand / saturation flow (PKJI 2023: S0 = 600 × We), shared equally
   between the phases that serve the movement; a phase's critical ratio is its largest y;
4. cycle = max(Webster / PKJI c = (1.5·LTI + 5)/(1 − ΣFRcrit), the cycle that brings the
   critical movements to the DS target x: LTI/(1 − ΣFRcrit/x)), within the cycle band,
   feasible for min/max greens, at most ±max_cycle_change_s from the last plan, and common
   along a corridor;
5. greens = (cycle − LTI) shared in proportion to the critical ratios (Webster; PKJI
   g = (c − LTI)·FRcrit/ΣFRcrit), clipped to [max(min green, pedestrian), max green] by exact
   water-filling, then rounded to whole deciseconds by cumulative rounding, which keeps the
   sum: green_k = ⌊S_k + ½⌋ − ⌊S_{k−1} + ½⌋ with S_k the running sum of the float greens;
6. offsets = travel time from the corridor's root, modulo the cycle.

Arrays over phases are handled phase-major ([P,I]) inside, so sums over phases add P rows.
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


def water_fill(weight: np.ndarray, lo: np.ndarray, hi: np.ndarray,
               total: np.ndarray) -> np.ndarray:
    """g = clip(λ·w, lo, hi) with Σg = total, phase-major [P,I]; callers ensure Σlo ≤ total ≤ Σhi.

    Each round shares what the fixed phases leave over the free ones in proportion to w. If
    the phases pushed above hi exceed those pushed below lo in total (Σ per phase of excess −
    shortfall ≥ 0), the final λ is at least this one, so the former stay above hi: fix them
    at hi; otherwise fix those below lo at lo. Every round fixes a phase or ends, so P + 1
    rounds suffice; an intersection with nothing left to fix drops out, and it stops when
    none is left. Zero weights sit at lo from the start.
    """
    fixed = weight <= 0
    fixed_value = lo  # lo, or hi once fixed there (whole deciseconds, so sums stay exact)
    g_all = None
    cols = None  # intersections still changing (None: all of them)
    w, low, high, tot = weight, lo, hi, total
    # Masks multiply instead of np.where: with unpredictable masks np.where is ~6x slower,
    # and weights and bounds are finite, so w·True = w and w·False = 0 exactly.
    for _ in range(weight.shape[0] + 1):  # bounded by the phase count, not by intersections
        scratch = w * ~fixed  # the free phases' weights
        g = fixed_value * fixed  # the fixed phases' greens
        lam = tot - g.sum(axis=0)
        lam /= np.maximum(scratch.sum(axis=0), 1e-300)
        scratch *= lam
        g += scratch  # g = λ·w (free) + fixed value (fixed); fixed ones sit within bounds
        if g_all is None:
            g_all = g
        else:
            g_all[:, cols] = g
        over = g > high
        under = g < low
        # Σ excess above hi − Σ shortfall below lo, phase by phase.
        np.subtract(g, high, out=scratch)
        np.maximum(scratch, 0.0, out=scratch)
        short = np.subtract(low, g)
        scratch -= np.maximum(short, 0.0, out=short)
        up = scratch.sum(axis=0) >= 0.0
        fix_hi = over & up
        fix_lo = under & ~up
        changed = np.flatnonzero((fix_hi | fix_lo).any(axis=0))
        if not changed.size:
            break
        # An intersection with nothing to fix has converged; carry on with the others only.
        fix_hi = fix_hi[:, changed]
        fixed_value = fixed_value[:, changed]
        w, low, high, tot = w[:, changed], low[:, changed], high[:, changed], tot[changed]
        fixed_value = fixed_value + (high - fixed_value) * fix_hi
        fixed = fixed[:, changed] | fix_hi | fix_lo[:, changed]
        cols = changed if cols is None else cols[changed]
    return g_all


def round_keeping_sum(g: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      total: np.ndarray) -> np.ndarray:
    """Whole deciseconds from float greens [P,I], Σ = total, lo ≤ g ≤ hi (integer lo, hi).

    Cumulative rounding: an integer green stays exactly itself and any other becomes its floor
    or ceiling, so the bounds hold. A last guard moves any float residue onto the phase with
    the most room, so the sum holds exactly whatever the float error.
    """
    edges = g.copy()  # running sums, row by row: np.cumsum over axis 0 is ~10x slower
    for k in range(1, g.shape[0]):
        edges[k] += edges[k - 1]
    edges += 0.5
    edges = np.floor(edges, out=edges).astype(np.int64)
    out = edges
    out[1:] -= edges[:-1].copy()
    np.clip(out, lo, hi, out=out)
    diff = total - out.sum(axis=0)
    if diff.any():
        cols = np.flatnonzero(diff)
        d = diff[cols]
        fix_at = np.where(d > 0, np.argmax(hi[:, cols] - out[:, cols], axis=0),
                          np.argmax(out[:, cols] - lo[:, cols], axis=0))
        out[fix_at, cols] += d
    return out


def plan_step(structure: Structure, measurements: Measurements, state: State,
              params: Params) -> tuple[PlanOutput, State]:
    """The next plan for every intersection from the last interval's detector readings."""
    hot = structure.hot
    clean = clean_detectors(structure, measurements, state, params)
    flow_veh_h = movement_totals(structure, clean.rate_veh_h.flat, hot.count_gather)
    # A movement without counting detectors is assumed to carry the default (one lane).
    np.put(flow_veh_h, hot.uncounted_movements, params.default_rate_veh_h)
    flow_now = np.multiply(flow_veh_h, structure.pcu_per_veh, out=flow_veh_h)  # 0 padding
    queue_veh = movement_totals(structure, clean.queue_veh.flat, hot.queue_gather)
    had_plan = state.cycle_ds > 0
    a = params.flow_smoothing
    flow = state.flow_pcu_h * (1 - a)
    flow += flow_now * a
    if not had_plan.all():  # a first plan takes the flow as measured
        flow = np.where(had_plan[:, None], flow, flow_now)

    lost_ds = structure.lost_ds
    prev_cycle_ds = np.where(had_plan, state.cycle_ds, structure.cycle_min_ds)
    # Clear `queue_weight` of the standing queue within the next cycle: 3600 s/h over cycle.
    demand = queue_veh * structure.pcu_per_veh
    demand *= (params.queue_weight * 36000.0 / prev_cycle_ds)[:, None]
    demand += flow
    # Flow ratio, shared between serving phases; 0 for padding, and one 0 slot at the end
    # for the gather table's "no movement".
    y_flat = np.zeros(demand.size + 1)
    np.multiply(demand, hot.inv_sat_share, out=y_flat[:-1].reshape(demand.shape))
    critical = np.take(y_flat, hot.phase_movement_index[0])  # [P,I]: max over K gathers
    for movements in hot.phase_movement_index[1:]:
        np.maximum(critical, np.take(y_flat, movements), out=critical)
    y_total = np.minimum(critical.sum(axis=0), params.max_flow_ratio)

    lost_s = lost_ds / 10.0
    webster_s = (1.5 * lost_s + 5.0) / (1.0 - y_total)  # Webster (1958); PKJI 2023 waktu siklus
    ds_room = 1.0 - y_total / params.ds_target
    ds_cycle_s = np.where(ds_room > 0, lost_s / np.where(ds_room > 0, ds_room, 1.0), np.inf)
    target_ds = np.floor(np.minimum(np.maximum(webster_s, ds_cycle_s) * 10.0, 1.0e7) + 0.5)
    lo_green, hi_green = hot.min_green_pi, hot.max_green_pi
    lo_c = np.maximum(structure.cycle_min_ds, lo_green.sum(axis=0) + lost_ds)
    hi_c = np.minimum(structure.cycle_max_ds, hi_green.sum(axis=0) + lost_ds)
    cycle = np.clip(target_ds.astype(np.int64), lo_c, hi_c)
    step_ds = int(round(params.max_cycle_change_s * 10))
    cycle = np.where(had_plan, np.clip(cycle, state.cycle_ds - step_ds, state.cycle_ds + step_ds),
                     cycle)
    cycle = np.clip(cycle, lo_c, hi_c)
    root, travel_ds = resolve_corridors(structure)
    if structure.chain_steps:
        cycle = common_cycle_ds(root, cycle, lo_c, hi_c)

    green_total = cycle - lost_ds
    # No demand anywhere: share equally among the valid phases.
    none = critical.sum(axis=0) <= 0
    weight = np.where(none & hot.phase_valid_pi, 1.0, critical)
    green_f = water_fill(weight, lo_green.astype(np.float64), hi_green.astype(np.float64),
                         green_total.astype(np.float64))
    green_pi = round_keeping_sum(green_f, lo_green, hi_green, green_total)
    green = np.ascontiguousarray(green_pi.T)
    split = green + structure.yellow_ds + structure.all_red_ds  # intergreens are 0 at padding
    offset = offsets_ds(travel_ds, cycle)

    # Degree of saturation under this plan: flow / (S × effective green / cycle).
    green_flat = np.append(green_pi.ravel().astype(np.float64), 0.0)
    green_of_movement = np.take(green_flat, hot.movement_first_phase)  # [I,M]
    np.add.at(green_of_movement.ravel(), hot.extra_movement, np.take(green_flat, hot.extra_phase))
    capacity = np.multiply(structure.sat_flow_pcu_h, green_of_movement, out=green_of_movement)
    capacity /= cycle[:, None]
    # No capacity: 0/tiny = 0 without flow, capped with flow.
    ds = np.maximum(capacity, 1e-9, out=capacity)
    np.divide(flow, ds, out=ds)
    np.minimum(ds, params.ds_cap, out=ds)

    out = PlanOutput(cycle_ds=cycle, green_ds=green, split_ds=split, offset_ds=offset, ds=ds,
                     queue_veh=queue_veh, flow_pcu_h=flow,
                     critical_ratio=np.ascontiguousarray(critical.T),
                     rate_source=clean.rate_veh_h.source, queue_source=clean.queue_veh.source)
    new_state = State(
        clock_s=clean.clock_s, hist_rate_veh_h=clean.rate_veh_h.hist,
        hist_queue_veh=clean.queue_veh.hist, rate_good_s=clean.rate_veh_h.good_s,
        queue_good_s=clean.queue_veh.good_s, flow_pcu_h=flow, cycle_ds=cycle, green_ds=green,
        phase=state.phase, phase_green_s=state.phase_green_s, phase_wait_s=state.phase_wait_s,
        phase_min_s=state.phase_min_s)
    return out, new_state
