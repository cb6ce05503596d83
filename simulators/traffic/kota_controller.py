"""The `kota` controller: the control room's timing core (controlroom.timing) driving SUMO.

Owns the translation from a discovered SUMO intersection to the core's static structure
(movements = incoming lanes; one detector station per lane: the stop-line loop's count and
occupancy with the camera zone's load as queue; one exit zone per outgoing lane, read as the
downstream queue of the movements feeding it) and from the core's outputs back to phase
requests. It must not give the core anything but those detector arrays and static structure
(lane widths, phases, which lanes feed which), and leaves clearances to the phase driver.

Two modes: `pressure` (default; pressure_step every 2 s, the core holds min green and ends
max green) and `plan` (plan_step once per cycle; the plan's greens run in phase order, each
movement's queue read when the next green starts, i.e. the residual queue a SCATS-like plan
must clear).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from controlroom.timing import (
    DetectorSpec,
    IntersectionSpec,
    Measurements,
    MovementSpec,
    Params,
    PhaseSpec,
    State,
    Structure,
    build_structure,
    initial_state,
    plan_step,
    pressure_step,
)
from controlroom.timing.structure import MAX_DOWNSTREAM
from simulators.traffic.controllers import Controller, Observation
from simulators.traffic.detectors import DetectorReport
from simulators.traffic.discovery import TrafficLight
from simulators.traffic.errors import ControllerError
from simulators.traffic.signals import KEEP, TransitionTimes

log = logging.getLogger(__name__)


# Tuned on sumo-rl's development networks (single-intersection, 2way-single-intersection,
# 2x2grid, 3x3grid, 4x4-Lucas, 4x4loop, double; 3600 s, seeds 1-3) by sweeping these knobs;
# see simulators/traffic/README.md. The anti-starvation term is all but off (max green
# already bounds any wait), a switch is weighed over a 10 s horizon, a phase holds green
# long enough to discharge the queue it was chosen for, stop-line arrivals keep a green only
# while the loop is busy (30 % occupancy ~ a discharging queue), and a green with nobody
# waiting elsewhere rests instead of switching to an empty phase.
TUNED_PARAMS = Params(wait_scale_s=1000.0, decision_horizon_s=10.0, initial_green_scale=1.0,
                      discharge_occupancy=0.3, rest_in_green=True)


@dataclass(frozen=True)
class KotaTuning:
    """How the benchmark sets up the core; every value is a street-level timing choice."""

    mode: str = "pressure"  # "pressure" or "plan"
    yellow_s: float = 3.0  # PKJI amber
    # None: keep the network's own intergreen (the clearance the city set), with the PKJI
    # amber taking the first yellow_s of it (network_all_red_s); the baselines run the
    # network's own or, max-pressure, 3 s amber and none.
    all_red_s: float | None = None
    # The controllers' own floor (devices.controller identity) and PKJI's practice; longer
    # greens come from the variable initial green when a queue is waiting.
    min_green_s: float = 5.0
    max_green_s: float = 60.0
    decision_interval_s: float = 2.0  # pressure mode: one decision every 2 s
    cycle_min_s: float | None = None  # plan mode; None = PKJI band by phase count
    cycle_max_s: float | None = None
    # What the core gets as a lane's queue: "jam" = vehicles standing in the camera zone;
    # "zone" = every vehicle in the zone, so a platoon still discharging keeps its weight
    # (with "jam" a phase loses its pressure the moment its queue starts moving).
    queue_from: str = "zone"
    # Where a movement's downstream queue is read: "exit" = vehicles standing in the exit
    # camera zone at the start of its outgoing lane (blocking back); "stop_line" = the next
    # intersection's camera zone on that lane, if signalised; "none".
    downstream_from: str = "exit"
    params: Params = TUNED_PARAMS


def merge_rows(old: State, new: State, rows: np.ndarray) -> State:
    """``new`` for the intersections in ``rows`` (bool [I]), ``old`` for the others."""
    merged = {}
    for name in State.__dataclass_fields__:
        a, b = getattr(old, name), getattr(new, name)
        if isinstance(a, np.ndarray) and a.ndim >= 1 and a.shape[0] == rows.shape[0]:
            mask = rows.reshape((-1,) + (1,) * (a.ndim - 1))
            merged[name] = np.where(mask, b, a)
        else:
            merged[name] = b
    return State(**merged)


def network_all_red_s(lights: tuple[TrafficLight, ...], yellow_s: float) -> float:
    """The all-red that keeps the network's own intergreen (yellow + all-red, the longest after
    any green of any of its signals) with a ``yellow_s`` amber: what is left of it after the
    amber, never negative. A network showing 2 s yellow + 1 s all-red runs 3 s PKJI amber
    and no all-red; one showing 3 s + 2 s keeps 2 s all-red."""
    intergreen = max((g.yellow_s + g.all_red_s for tl in lights for g in tl.greens), default=0.0)
    return max(intergreen - yellow_s, 0.0)


def build_kota_structure(lights: tuple[TrafficLight, ...], lane_width_m: dict[str, float],
                         tuning: KotaTuning, all_red_s: float
                         ) -> tuple[Structure, list[list[int]]]:
    """The core's structure for ``lights``, and per intersection the lanes kept as movements.

    A lane no green phase serves (its links are never green) is left out: the core requires
    every movement to be served.
    """
    kept: list[list[int]] = []
    exit_slot0 = []
    for tl in lights:
        served = set().union(*(tl.served_incoming(g) for g in range(len(tl.greens))))
        kept.append([d for d, lane in enumerate(tl.incoming_lanes) if lane in served])
        exit_slot0.append(len(kept[-1]))  # exit zones follow the stop-line stations
    detector_of: dict[str, tuple[int, int]] = {}
    for i, tl in enumerate(lights):
        for slot, d in enumerate(kept[i]):
            detector_of[tl.incoming_lanes[d]] = (i, slot)
    specs = []
    for i, tl in enumerate(lights):
        lanes = [tl.incoming_lanes[d] for d in kept[i]]
        index = {lane: m for m, lane in enumerate(lanes)}
        movements = []
        for lane in lanes:
            outs = sorted({lk.out_lane for lk in tl.links if lk is not None and lk.in_lane == lane})
            if tuning.downstream_from == "exit":
                down = [(i, exit_slot0[i] + tl.outgoing_lanes.index(o)) for o in outs]
            elif tuning.downstream_from == "stop_line":
                down = [detector_of[o] for o in outs if o in detector_of]
            else:
                down = []
            down = down[:MAX_DOWNSTREAM]
            movements.append(MovementSpec(width_m=max(lane_width_m.get(lane, 3.2), 1.0),
                                          downstream=tuple(down)))
        phases = [PhaseSpec(movements=sorted(index[a] for a in tl.served_incoming(g)
                                             if a in index),
                            min_green_s=tuning.min_green_s, max_green_s=tuning.max_green_s,
                            yellow_s=tuning.yellow_s, all_red_s=all_red_s)
                  for g in range(len(tl.greens))]
        detectors = [DetectorSpec(movement=m) for m in range(len(lanes))]
        if tuning.downstream_from == "exit":
            # Exit zones belong to no movement of their own: neither counted nor queued here,
            # read only as the downstream queue of the movements feeding them.
            detectors += [DetectorSpec(movement=0, counts=False, queues=False)
                          for _ in tl.outgoing_lanes]
        n_ph = len(phases)
        lo = tuning.cycle_min_s
        hi = tuning.cycle_max_s
        if lo is None and n_ph > 8:
            raise ControllerError(f"{tl.tls_id}: {n_ph} green phases; the core plans at most 8")
        specs.append(IntersectionSpec(phases=phases, movements=movements, detectors=detectors,
                                      cycle_min_s=lo, cycle_max_s=hi))
    return build_structure(specs), kept


class KotaController(Controller):
    """The timing core, fed only what loops and camera zones report."""

    name = "kota"

    def __init__(self, tuning: KotaTuning | None = None) -> None:
        self.tuning = tuning or KotaTuning()
        choices = {"mode": ("pressure", "plan"), "queue_from": ("jam", "zone"),
                   "downstream_from": ("exit", "stop_line", "none")}
        for field, allowed in choices.items():
            if getattr(self.tuning, field) not in allowed:
                raise ControllerError(f"kota {field} {getattr(self.tuning, field)!r}: use one "
                                      f"of {', '.join(allowed)}")
        t = self.tuning
        self.times = self._times(t.all_red_s or 0.0)
        self.decision_interval_s = t.decision_interval_s if t.mode == "pressure" else 1.0
        self._structure: Structure | None = None
        self._state: State | None = None
        self._kept: list[list[int]] = []
        self._shape = (0, 0)

    def _times(self, all_red_s: float) -> TransitionTimes:
        # The driver's own min green is a floor; the core holds its (equal or longer) one.
        return TransitionTimes(yellow_s=self.tuning.yellow_s, all_red_s=all_red_s,
                               min_green_s=min(self.tuning.min_green_s, 5.0))

    def begin(self, api: Any, lights: tuple[TrafficLight, ...]) -> None:
        if not lights:
            log.warning("kota: the network has no traffic light with two or more greens; "
                        "nothing to control")
            return
        widths = {lane: float(api.lane.getWidth(lane))
                  for tl in lights for lane in tl.incoming_lanes}
        all_red_s = (network_all_red_s(lights, self.tuning.yellow_s) if self.tuning.all_red_s is None
                     else self.tuning.all_red_s)
        self.times = self._times(all_red_s)  # read by the runner after begin()
        self._structure, self._kept = build_kota_structure(lights, widths, self.tuning,
                                                           all_red_s)
        self._state = initial_state(self._structure)
        n, p, _, d = self._structure.shape
        self._shape = (n, d)
        self._n_greens = np.array([len(tl.greens) for tl in lights])
        # Plan mode: the plan being run and where in it each intersection is.
        self._green_s = np.zeros((n, p))
        self._acc_count = np.zeros((n, d))
        self._acc_occ_s = np.zeros((n, d))
        self._acc_s = np.zeros(n)
        self._residual_q = np.zeros((n, d))
        self._last_green = np.zeros(n, np.int64)

    def _measurements(self, rep: DetectorReport) -> Measurements:
        n, d = self._shape
        count = np.zeros((n, d))
        occ = np.zeros((n, d))
        queue = np.zeros((n, d))
        valid = np.zeros((n, d), bool)
        for i, lanes in enumerate(self._kept):
            k = len(lanes)
            count[i, :k] = rep.count_veh[i, lanes]
            occ[i, :k] = rep.occupancy_pct[i, lanes] / 100.0
            queue[i, :k] = (rep.queue_veh if self.tuning.queue_from == "jam"
                            else rep.zone_veh)[i, lanes]
            valid[i, :k] = rep.valid[i, lanes]
            if self.tuning.downstream_from == "exit":
                e = int(rep.exit_valid[i].sum())
                queue[i, k:k + e] = rep.exit_queue_veh[i, :e]
                valid[i, k:k + e] = True
        return Measurements(count=count, occupancy=occ, queue_veh=queue, valid=valid,
                            interval_s=rep.interval_s)

    def decide(self, obs: Observation) -> list[int]:
        if self._structure is None or self._state is None:
            return []
        meas = self._measurements(obs.detectors)
        if self.tuning.mode == "pressure":
            # The lamps are the truth: the core's phase clock restarts from what the driver
            # shows (a requested change may wait for the driver's own minimum green).
            sig = obs.signals
            shown = replace(self._state, phase=sig.target_green.copy(),
                            phase_green_s=np.where(sig.in_green, sig.green_elapsed_s,
                                                   -sig.clearance_left_s) - meas.interval_s)
            decision, self._state = pressure_step(self._structure, meas, shown,
                                                  self.tuning.params)
            return [int(x) if s else KEEP for x, s in zip(decision.phase, decision.switch,
                                                         strict=True)]
        return self._decide_plan(obs, meas)

    def _decide_plan(self, obs: Observation, meas: Measurements) -> list[int]:
        assert self._structure is not None and self._state is not None
        st = self._structure
        sig = obs.signals
        self._acc_count += meas.count
        self._acc_occ_s += meas.occupancy * meas.interval_s
        self._acc_s += meas.interval_s
        cur = sig.current_green
        # A new green has started: what the previous green left standing on its lanes (after
        # its clearance) is the residual queue the next plan must also clear.
        started = sig.in_green & (cur != self._last_green)
        d = self._shape[1]
        m = st.serves.shape[2]  # movement m is detector slot m; exit slots come after
        for i in np.flatnonzero(started):
            left = np.zeros(d, bool)
            left[:m] = st.serves[i, self._last_green[i]]
            self._residual_q[i, left] = meas.queue_veh[i, left]
        self._last_green = np.where(sig.in_green, cur, self._last_green)
        out = [KEEP] * len(cur)
        # Cycle boundary: phase 0 has just started (or nothing planned yet) → new plan.
        need_plan = (self._green_s.sum(axis=1) == 0) | (started & (cur == 0))
        if need_plan.any():
            # Each intersection's own accumulation window: the core takes one interval for
            # all, so counts are scaled to a common one (rate = count / own window).
            window = np.maximum(self._acc_s, 1.0)
            common = float(window[need_plan].mean())
            cyc = Measurements(count=self._acc_count * (common / window)[:, None],
                               occupancy=self._acc_occ_s / window[:, None],
                               queue_veh=self._residual_q, valid=meas.valid, interval_s=common)
            plan, new_state = plan_step(st, cyc, self._state, self.tuning.params)
            # Only the intersections at a cycle boundary take the new plan and its state (a
            # smoothed flow updated mid-cycle from a partial window would be wrong).
            self._green_s = np.where(need_plan[:, None], plan.green_s, self._green_s)
            self._state = merge_rows(self._state, new_state, need_plan)
            self._acc_count[need_plan] = 0.0
            self._acc_occ_s[need_plan] = 0.0
            self._acc_s[need_plan] = 0.0
        for i in range(len(cur)):
            if sig.in_green[i] and sig.green_elapsed_s[i] >= self._green_s[i, cur[i]]:
                out[i] = int((cur[i] + 1) % self._n_greens[i])
        return out
