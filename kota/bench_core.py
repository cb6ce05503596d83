"""`kota bench core`: one `plan_step` of the timing core for N intersections, timed.

Owns the benchmark, its random city generator and the straightforward per-intersection
Python implementation of the same algorithm (`plan_step_loop`) that the vectorised core is
compared with — and checked against: both must give identical plans. A script, not a test;
it must not be imported by the core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from controlroom.timing import (
    DetectorSource,
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
)
from controlroom.timing.plan import PlanOutput

INTERVAL_S = 90.0


# --- a random city ---------------------------------------------------------------------------

def random_structure(n: int, phases: int = 8, detectors: int = 32, seed: int = 0,
                     ragged: bool = False, corridor_every: int = 10) -> Structure:
    """N intersections of ``phases`` phases, ``detectors`` detectors on detectors/2 movements.

    Each phase serves two movements and, one time in three, also the next phase's first
    (an overlap). Every ``corridor_every`` consecutive intersections form a corridor. With
    ``ragged`` the sizes vary per intersection (so padding is exercised) and some detectors
    only count or only queue.
    """
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        n_ph = int(rng.integers(1, phases + 1)) if ragged else phases
        n_mv = max(detectors // 2, 2 * n_ph) if not ragged else 2 * n_ph
        n_det = int(rng.integers(0, detectors + 1)) if ragged else detectors
        phase_specs = []
        for p in range(n_ph):
            movs = [(2 * p) % n_mv, (2 * p + 1) % n_mv]
            if rng.random() < 1 / 3 and n_ph > 1:
                movs.append((2 * p + 2) % n_mv)
            phase_specs.append(PhaseSpec(
                movs, min_green_s=5.0, max_green_s=40.0, all_red_s=1.0,
                ped_min_s=float(rng.choice([0.0, 0.0, 12.0]))))
        mov_specs = [MovementSpec(float(np.round(rng.uniform(2.5, 7.0), 2)),
                                  protected=bool(rng.random() < 0.7),
                                  vehicle_mix={"MC": 0.6, "LV": 0.35, "HV": 0.05})
                     for _ in range(n_mv)]
        # Two detectors per movement (two lanes); ragged: random movements and roles.
        det_specs = [DetectorSpec(int(rng.integers(0, n_mv)) if ragged else (d // 2) % n_mv,
                                  counts=bool(rng.random() < 0.8) if ragged else True,
                                  queues=bool(rng.random() < 0.8) if ragged else True)
                     for d in range(n_det)]
        chained = i % corridor_every != 0
        specs.append(IntersectionSpec(
            phase_specs, mov_specs, det_specs, upstream=i - 1 if chained else -1,
            travel_time_s=float(np.round(rng.uniform(10.0, 60.0), 1)) if chained else 0.0))
    return build_structure(specs, max_phases=phases, max_detectors=detectors)


def random_measurements(structure: Structure, seed: int, faults: bool = True) -> Measurements:
    """A plausible interval of detector data; with ``faults`` also NaN, inf, negative,
    absurd and flagged-invalid readings (a few percent each)."""
    rng = np.random.default_rng(seed)
    n, _, _, d = structure.shape
    lam = rng.uniform(0.0, 25.0, (n, d))
    count = rng.poisson(lam).astype(np.float64)
    queue = rng.uniform(0.0, 20.0, (n, d))
    occupancy = rng.uniform(0.0, 1.0, (n, d))
    valid = np.ones((n, d), bool)
    if faults:
        u = rng.random((n, d))
        count[u < 0.01] = np.nan
        count[(u >= 0.01) & (u < 0.015)] = -3.0
        count[(u >= 0.015) & (u < 0.02)] = np.inf
        count[(u >= 0.02) & (u < 0.025)] = 1.0e6
        valid[(u >= 0.025) & (u < 0.05)] = False
        queue[rng.random((n, d)) < 0.01] = np.nan
        queue[rng.random((n, d)) < 0.005] = 1.0e9
    return Measurements(count, occupancy, queue, valid, INTERVAL_S)


# --- the same algorithm, one intersection at a time ------------------------------------------

@dataclass(frozen=True)
class LoopStructure:
    """The structure as per-intersection Python lists (built once, like the arrays)."""

    n: int
    a: dict[str, list]  # field name → per-intersection lists
    chain_steps: int
    upstream: list[int]
    travel_time_ds: list[int]


def loop_structure(structure: Structure) -> LoopStructure:
    names = ["detector_valid", "detector_movement", "detector_counts", "detector_queues",
             "phase_valid", "serves", "pcu_per_veh", "sat_flow_pcu_h", "min_green_ds",
             "max_green_ds", "yellow_ds", "all_red_ds", "lost_ds", "cycle_min_ds",
             "cycle_max_ds"]
    a = {k: getattr(structure, k).tolist() for k in names}
    a["inv_sat_share"] = structure.hot.inv_sat_share.tolist()
    return LoopStructure(structure.shape[0], a, structure.chain_steps,
                         structure.upstream.tolist(), structure.travel_time_ds.tolist())


def _floor_half(x: float) -> int:
    return math.floor(x + 0.5)


def plan_step_loop(ls: LoopStructure, measurements: Measurements, state: State,
                   params: Params) -> tuple[PlanOutput, State]:
    """`plan_step` written as a plain loop over intersections, detectors and phases."""
    a = ls.a
    count_l = np.asarray(measurements.count, np.float64).tolist()
    queue_l = np.asarray(measurements.queue_veh, np.float64).tolist()
    valid_l = np.asarray(measurements.valid, bool).tolist()
    iv = float(measurements.interval_s)
    interval_ok = math.isfinite(iv) and iv > 0
    clock = state.clock_s + (iv if interval_ok else 0.0)
    hist_r, hist_q = state.hist_rate_veh_h.tolist(), state.hist_queue_veh.tolist()
    good_r, good_q = state.rate_good_s.tolist(), state.queue_good_s.tolist()
    prev_flow, prev_cycle = state.flow_pcu_h.tolist(), state.cycle_ds.tolist()
    n_p = len(a["phase_valid"][0])
    n_m = len(a["pcu_per_veh"][0])
    step_ds = int(round(params.max_cycle_change_s * 10))
    res: dict[str, list] = {k: [] for k in (
        "rate", "queue", "rsrc", "qsrc", "rgood", "qgood", "flow", "queue_m", "critical",
        "cycle", "lo_c", "hi_c")}

    def clean(i: int, values: list[float], oks: list[bool], hist: list[float],
              good: list[float], default: float) -> tuple[list, list, list]:
        dvalid, dmov = a["detector_valid"][i], a["detector_movement"][i]
        out, src, new_good = [], [], []
        for d, v in enumerate(values):
            if oks[d]:
                out.append(v)
                src.append(DetectorSource.MEASURED)
                new_good.append(clock)
                continue
            new_good.append(good[d])
            if not dvalid[d]:
                out.append(hist[d])
                src.append(DetectorSource.ABSENT)
            elif clock - good[d] > params.history_max_age_s:
                total, n_ok = 0.0, 0
                for e in range(len(values)):
                    if dvalid[e] and dmov[e] == dmov[d] and oks[e]:
                        total += values[e]
                        n_ok += 1
                out.append(total / n_ok if n_ok else default)
                src.append(DetectorSource.NEIGHBOURS if n_ok else DetectorSource.DEFAULT)
            else:
                out.append(hist[d])
                src.append(DetectorSource.HISTORY)
        return out, src, new_good

    for i in range(ls.n):
        dvalid = a["detector_valid"][i]
        rates, ok_r, queues, ok_q = [], [], [], []
        for d in range(len(dvalid)):
            valid = valid_l[i][d] and dvalid[d]
            r = count_l[i][d] * (3600.0 / iv) if interval_ok else math.nan
            rates.append(r)
            ok_r.append(valid and r >= 0.0 and r <= params.max_rate_veh_h)
            q = queue_l[i][d]
            ok_q.append(valid and q >= 0.0 and q < math.inf)
            queues.append(q if not params.max_queue_veh < q else params.max_queue_veh)
        rate, rsrc, rgood = clean(i, rates, ok_r, hist_r[i], good_r[i], params.default_rate_veh_h)
        queue, qsrc, qgood = clean(i, queues, ok_q, hist_q[i], good_q[i],
                                   params.default_queue_veh)
        for k, v in (("rate", rate), ("queue", queue), ("rsrc", rsrc), ("qsrc", qsrc),
                     ("rgood", rgood), ("qgood", qgood)):
            res[k].append(v)

        flow_veh = [0.0] * n_m
        queue_m = [0.0] * n_m
        has_counts = [False] * n_m
        for d in range(len(dvalid)):
            if not dvalid[d]:
                continue
            m = a["detector_movement"][i][d]
            if a["detector_counts"][i][d]:
                flow_veh[m] += rate[d]
                has_counts[m] = True
            if a["detector_queues"][i][d]:
                queue_m[m] += queue[d]
        had = prev_cycle[i] > 0
        pc = prev_cycle[i] if had else a["cycle_min_ds"][i]
        flow, y = [], []
        for m in range(n_m):
            pcu = a["pcu_per_veh"][i][m]
            f_now = (flow_veh[m] if has_counts[m] else params.default_rate_veh_h) * pcu
            f = prev_flow[i][m] * (1 - params.flow_smoothing) + f_now * params.flow_smoothing \
                if had else f_now
            flow.append(f)
            demand = f + queue_m[m] * pcu * (params.queue_weight * 36000.0 / pc)
            y.append(demand * a["inv_sat_share"][i][m])
        critical = []
        for p in range(n_p):
            served = [y[m] for m in range(n_m) if a["serves"][i][p][m]]
            critical.append(max(served) if served else 0.0)
        y_total = min(sum(critical), params.max_flow_ratio)
        lost_ds = a["lost_ds"][i]
        lost_s = lost_ds / 10.0
        webster_s = (1.5 * lost_s + 5.0) / (1.0 - y_total)
        room = 1.0 - y_total / params.ds_target
        ds_cycle_s = lost_s / room if room > 0 else math.inf
        target = math.floor(min(max(webster_s, ds_cycle_s) * 10.0, 1.0e7) + 0.5)
        lo_c = max(a["cycle_min_ds"][i], sum(a["min_green_ds"][i]) + lost_ds)
        hi_c = min(a["cycle_max_ds"][i], sum(a["max_green_ds"][i]) + lost_ds)
        cycle = min(max(target, lo_c), hi_c)
        if had:
            cycle = min(max(cycle, prev_cycle[i] - step_ds), prev_cycle[i] + step_ds)
        cycle = min(max(cycle, lo_c), hi_c)
        for k, v in (("flow", flow), ("queue_m", queue_m), ("critical", critical),
                     ("cycle", cycle), ("lo_c", lo_c), ("hi_c", hi_c)):
            res[k].append(v)

    # Corridors: walk each chain to its root; one cycle per corridor.
    cycles = list(res["cycle"])
    roots, travel = [], []
    for i in range(ls.n):
        j, acc = i, 0
        while ls.upstream[j] != -1:
            acc += ls.travel_time_ds[j]
            j = ls.upstream[j]
        roots.append(j)
        travel.append(acc)
    if ls.chain_steps:
        want: dict[int, int] = {}
        cap: dict[int, int] = {}
        for i in range(ls.n):
            want[roots[i]] = max(want.get(roots[i], 0), cycles[i])
            cap[roots[i]] = min(cap.get(roots[i], 2**62), res["hi_c"][i])
        cycles = [min(max(min(want[roots[i]], cap[roots[i]]), res["lo_c"][i]), res["hi_c"][i])
                  for i in range(ls.n)]

    greens, splits, offsets, ds_all = [], [], [], []
    for i in range(ls.n):
        cycle = cycles[i]
        valid_p = a["phase_valid"][i]
        lo = [float(v) for v in a["min_green_ds"][i]]
        hi = [float(v) for v in a["max_green_ds"][i]]
        crit = res["critical"][i]
        none = sum(crit) <= 0
        w = [1.0 if (none and valid_p[p]) else crit[p] for p in range(n_p)]
        total = float(cycle - a["lost_ds"][i])
        # Water-filling, as in plan.water_fill.
        fixed = [wp <= 0 for wp in w]
        fixed_value = list(lo)
        g = list(lo)
        for _ in range(n_p + 1):
            w_free = [0.0 if fixed[p] else w[p] for p in range(n_p)]
            base = [fixed_value[p] if fixed[p] else 0.0 for p in range(n_p)]
            s_base = 0.0
            s_w = 0.0
            for p in range(n_p):
                s_base += base[p]
                s_w += w_free[p]
            lam = (total - s_base) / max(s_w, 1e-300)
            g = [lam * w_free[p] + base[p] for p in range(n_p)]
            net = 0.0  # Σ excess above hi − shortfall below lo
            for p in range(n_p):
                net += max(g[p] - hi[p], 0.0) - max(lo[p] - g[p], 0.0)
            changed = False
            for p in range(n_p):
                if g[p] > hi[p] and net >= 0.0:
                    fixed[p], fixed_value[p], changed = True, hi[p], True
                elif g[p] < lo[p] and net < 0.0:
                    fixed[p], changed = True, True
            if not changed:
                break
        # Cumulative rounding, as in plan.round_keeping_sum.
        green, run, prev_edge = [], 0.0, 0
        for p in range(n_p):
            run += g[p]
            edge = _floor_half(run)
            green.append(min(max(edge - prev_edge, int(lo[p])), int(hi[p])))
            prev_edge = edge
        diff = int(total) - sum(green)
        if diff:
            room = [int(hi[p]) - green[p] if diff > 0 else green[p] - int(lo[p])
                    for p in range(n_p)]
            green[room.index(max(room))] += diff
        greens.append(green)
        splits.append([green[p] + a["yellow_ds"][i][p] + a["all_red_ds"][i][p]
                       for p in range(n_p)])
        offsets.append(travel[i] % max(cycle, 1))
        ds_row = []
        for m in range(n_m):
            gm = 0.0
            for p in range(n_p):
                if a["serves"][i][p][m]:
                    gm += float(green[p])
            capacity = a["sat_flow_pcu_h"][i][m] * gm / cycle
            ds_row.append(min(res["flow"][i][m] / max(capacity, 1e-9), params.ds_cap))
        ds_all.append(ds_row)

    i64 = np.int64
    out = PlanOutput(
        cycle_ds=np.array(cycles, i64), green_ds=np.array(greens, i64),
        split_ds=np.array(splits, i64), offset_ds=np.array(offsets, i64),
        ds=np.array(ds_all), queue_veh=np.array(res["queue_m"]), flow_pcu_h=np.array(res["flow"]),
        critical_ratio=np.array(res["critical"]), rate_source=np.array(res["rsrc"], np.int8),
        queue_source=np.array(res["qsrc"], np.int8))
    new_state = State(
        clock_s=clock, hist_rate_veh_h=np.array(res["rate"]), hist_queue_veh=np.array(res["queue"]),
        rate_good_s=np.array(res["rgood"]), queue_good_s=np.array(res["qgood"]),
        flow_pcu_h=out.flow_pcu_h, cycle_ds=out.cycle_ds, green_ds=out.green_ds,
        phase=state.phase, phase_green_s=state.phase_green_s, phase_wait_s=state.phase_wait_s,
        phase_min_s=state.phase_min_s)
    return out, new_state


def plans_equal(x: PlanOutput, y: PlanOutput) -> bool:
    """Identical integer timings and sources; float estimates equal to 1e-9 relative."""
    ints = ("cycle_ds", "green_ds", "split_ds", "offset_ds", "rate_source", "queue_source")
    floats = ("ds", "queue_veh", "flow_pcu_h", "critical_ratio")
    return (all(np.array_equal(getattr(x, k), getattr(y, k)) for k in ints)
            and all(np.allclose(getattr(x, k), getattr(y, k), rtol=1e-9, atol=1e-9)
                    for k in floats))


# --- the benchmark ---------------------------------------------------------------------------

def _median_ms(fn: Any, repeat: int) -> tuple[float, float, float]:
    """Median and minimum wall time, and median CPU time of this thread (ms): on a busy
    machine the CPU time shows the work, the wall time what a caller waits."""
    times, cpu = [], []
    for _ in range(repeat):
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    return statistics.median(times), min(times), statistics.median(cpu)


def measure_size(n: int, phases: int, detectors: int, repeat: int, loop_repeat: int,
                 seed: int = 0) -> dict[str, Any]:
    structure = random_structure(n, phases, detectors, seed=seed)
    params = Params()
    state = initial_state(structure)
    for k in range(3):  # a warmed-up state: history and a previous plan exist
        _, state = plan_step(structure, random_measurements(structure, seed + 100 + k), state,
                             params)
    meas = random_measurements(structure, seed + 7)
    vec_ms, vec_min_ms, vec_cpu_ms = _median_ms(lambda: plan_step(structure, meas, state, params),
                                                repeat)
    ls = loop_structure(structure)
    loop_ms, _, loop_cpu_ms = _median_ms(lambda: plan_step_loop(ls, meas, state, params),
                                         loop_repeat)
    same = plans_equal(plan_step(structure, meas, state, params)[0],
                       plan_step_loop(ls, meas, state, params)[0])
    _, p, m, d = structure.shape
    return {"intersections": n, "phases": p, "movements": m, "detectors": d,
            "vector_ms_median": round(vec_ms, 3), "vector_ms_min": round(vec_min_ms, 3),
            "vector_cpu_ms_median": round(vec_cpu_ms, 3),
            "loop_ms_median": round(loop_ms, 1), "loop_cpu_ms_median": round(loop_cpu_ms, 1),
            "speedup": round(loop_ms / vec_ms, 1),
            "plans_equal": same, "repeat": repeat, "loop_repeat": loop_repeat}


def bench_core(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    rows = []
    for n in sizes:
        loop_repeat = args.loop_repeat if args.loop_repeat else (5 if n <= 1000 else 3)
        row = measure_size(n, args.phases, args.detectors, args.repeat, loop_repeat, args.seed)
        rows.append(row)
        if not args.json:
            print(f"N={n:>6}  vectorised {row['vector_ms_median']:8.3f} ms (min "
                  f"{row['vector_ms_min']:.3f}, CPU {row['vector_cpu_ms_median']:.3f})  loop {row['loop_ms_median']:9.1f} ms  "
                  f"speedup {row['speedup']:7.1f}×  plans equal: {row['plans_equal']}",
                  flush=True)
    largest = max(rows, key=lambda r: r["intersections"])
    figures = {
        "benchmark": "core", "step": "plan_step", "sizes": rows,
        "goal": {"intersections": 10000, "max_ms": 10.0, "min_speedup": 50.0},
        "goal_met": bool(largest["intersections"] >= 10000
                         and largest["vector_ms_median"] <= 10.0
                         and all(r["speedup"] >= 50.0 for r in rows if r["intersections"] >= 1000)),
        "all_plans_equal": all(r["plans_equal"] for r in rows),
        "numpy": np.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(figures))
    return 0 if figures["all_plans_equal"] else 1


def add_parser(bench_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `core` on the `kota bench` subparsers; returns its parser."""
    p = bench_subparsers.add_parser(
        "core", help="one adaptive-timing plan step for N intersections, vectorised vs a loop",
        description="Time one `plan_step` of the adaptive signal-timing core "
        "(controlroom.timing) for N random intersections — the same step the control room "
        "runs every cycle — and the same algorithm written as a per-intersection Python loop, "
        "in the same run, on the same inputs (with a few percent faulty detector readings). "
        "Reports median milliseconds per step, the speedup, and whether both gave identical "
        "plans. Goal: 10,000 intersections in ≤ 10 ms on one core, ≥ 50× the loop.",
        epilog="Example: `kota bench core --sizes 100,1000,10000 --json`. Runs on one core "
        "(NumPy elementwise code does not thread). Exit codes: 0 done, 1 the loop and the "
        "vectorised core disagreed.")
    p.set_defaults(func=bench_core)
    p.add_argument("--sizes", default="100,1000,10000", metavar="N,N,...",
                   help="comma-separated numbers of intersections (default 100,1000,10000)")
    p.add_argument("--phases", type=int, default=8, metavar="P",
                   help="phases per intersection (default 8)")
    p.add_argument("--detectors", type=int, default=32, metavar="D",
                   help="detectors per intersection, two per movement (default 32)")
    p.add_argument("--repeat", type=int, default=50, metavar="R",
                   help="timed runs of the vectorised step per size; the median is reported "
                   "(default 50)")
    p.add_argument("--loop-repeat", type=int, default=0, metavar="R",
                   help="timed runs of the loop per size (default 5, 3 from 10,000 up)")
    p.add_argument("--seed", type=int, default=0, help="random city and data seed (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    return p
