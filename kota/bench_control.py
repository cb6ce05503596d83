"""`kota bench control`: signal controllers compared in SUMO on the same scenario and seeds.

Runs a .sumocfg under each controller (fixed, actuated, maxpressure, kota) and seed, writes
each run's tripinfo to DIR/<controller>-seed<k>.tripinfo.xml and prints average delay per
vehicle as RESCO defines it (Ault & Sharon, NeurIPS 2021) with trip time, waiting time, stops
and throughput. A script, not a test; it must not write anything next to the scenario.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

FIGURES = ("avg_delay_s", "avg_trip_time_s", "avg_waiting_time_s", "avg_stops", "arrived")


def _progress_printer(label: str):
    def progress(t_s: float, end_s: float) -> None:
        print(f"  {label}: {t_s:,.0f}/{end_s:,.0f} s simulated", file=sys.stderr, flush=True)
    return progress


def _run_job(sumocfg: str, controller: str, seed: int, end_s: float | None, out_dir: str,
             verbose: bool) -> dict[str, Any]:
    """One run; executed in a worker process (libsumo holds one simulation per process)."""
    from simulators.traffic.registry import make_controller
    from simulators.traffic.runner import run_scenario
    from simulators.traffic.scenario import Scenario

    scenario = Scenario.from_sumocfg(sumocfg)
    horizon_s = scenario.horizon_s(end_s)
    label = f"{controller} seed {seed}"
    result = run_scenario(scenario, make_controller(controller), seed=seed, end_s=horizon_s,
                          tripinfo=Path(out_dir) / f"{controller}-seed{seed}.tripinfo.xml",
                          progress=_progress_printer(label) if verbose else None)
    return {"controller": controller, "seed": seed, "end_s": horizon_s,
            "sim_end_s": result.sim_end_s, "wall_s": round(result.wall_s, 3),
            "traffic_lights": result.lights, "tripinfo": str(result.tripinfo),
            **result.metrics.as_dict()}


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def summarise(runs: list[dict[str, Any]], controllers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in controllers:
        mine = sorted((r for r in runs if r["controller"] == name), key=lambda r: r["seed"])
        if not mine:
            continue
        stats = {}
        for fig in FIGURES:
            mean, std = _mean_std([float(r[fig]) for r in mine])
            stats[fig] = {"mean": round(mean, 3), "std": round(std, 3)}
        out[name] = {"figures": stats, "vehicles": [r["vehicles"] for r in mine],
                     "never_inserted": [r["never_inserted"] for r in mine],
                     "runs": mine}
    return out


def _cell(figures: dict[str, Any], fig: str, width: int, prec: int = 1) -> str:
    return f"{figures[fig]['mean']:.{prec}f} ± {figures[fig]['std']:.{prec}f}".rjust(width)


def format_table(summary: dict[str, Any]) -> str:
    head = (f"{'controller':<12} {'delay s':>16} {'trip time s':>14} {'waiting s':>13} "
            f"{'stops':>11} {'arrived':>15} {'not inserted':>12}")
    rows = [head, "-" * len(head)]
    for name, s in summary.items():
        f = s["figures"]
        rows.append(f"{name:<12} {_cell(f, 'avg_delay_s', 16)} {_cell(f, 'avg_trip_time_s', 14)} "
                    f"{_cell(f, 'avg_waiting_time_s', 13)} {_cell(f, 'avg_stops', 11, 2)} "
                    f"{_cell(f, 'arrived', 15, 0)} {max(s['never_inserted']):>12}")
    return "\n".join(rows)


def bench_control(args: argparse.Namespace) -> int:
    from simulators.traffic.errors import TrafficSimError
    from simulators.traffic.registry import CONTROLLER_NAMES
    from simulators.traffic.scenario import Scenario, sumo_binary

    wanted = args.controller or ["all"]
    controllers: list[str] = []
    for name in wanted:
        for c in (CONTROLLER_NAMES if name == "all" else (name,)):
            if c not in controllers:
                controllers.append(c)
    if args.seeds < 1:
        print("kota bench control: --seeds must be at least 1", file=sys.stderr)
        return 2
    if bool(args.sumocfg) == bool(args.net):
        print("kota bench control: give either --sumocfg, or --net with --routes", file=sys.stderr)
        return 2
    if args.net and not args.routes:
        print("kota bench control: --net needs --routes", file=sys.stderr)
        return 2
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sumocfg = args.sumocfg or str(_write_sumocfg(out_dir, args.net, args.routes))
    try:
        sumo_binary()
        scenario = Scenario.from_sumocfg(sumocfg)
        horizon_s = scenario.horizon_s(args.end)
    except TrafficSimError as e:
        print(f"kota bench control: {e}", file=sys.stderr)
        return 2
    jobs = [(c, k) for k in range(1, args.seeds + 1) for c in controllers]
    workers = max(1, min(args.jobs or min(2, os.cpu_count() or 1), len(jobs)))
    print(f"kota bench control: {scenario.sumocfg.name}, {len(controllers)} controller(s) × "
          f"{args.seeds} seed(s) to {horizon_s:g} s, {workers} process(es); tripinfo in {out_dir}",
          file=sys.stderr, flush=True)
    wall0 = time.monotonic()
    runs: list[dict[str, Any]] = []
    failed: list[str] = []
    # One fresh spawned process per run: libsumo holds one simulation per process, must not be
    # forked, and keeps some state across close()/start() in the same process (measured:
    # RESCO cologne1 under max-pressure gives 18.6 s/veh in a fresh process and 1084 s/veh
    # after a fixed-time run in the same one), so runs are never reused.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futures = {pool.submit(_run_job, str(scenario.sumocfg), c, k, horizon_s, str(out_dir),
                               args.verbose): (c, k) for c, k in jobs}
        for fut in as_completed(futures):
            c, k = futures[fut]
            try:
                run = fut.result()
            except TrafficSimError as e:
                failed.append(f"{c} seed {k}: {e}")
                print(f"kota bench control: {c} seed {k} FAILED: {e}", file=sys.stderr, flush=True)
                continue
            runs.append(run)
            print(f"kota bench control: [{len(runs) + len(failed)}/{len(jobs)}] {c} seed {k}: "
                  f"delay {run['avg_delay_s']:.1f} s/veh over {run['vehicles']} vehicles "
                  f"({run['wall_s']:.1f} s wall)", file=sys.stderr, flush=True)
    summary = summarise(runs, controllers)
    print(f"{scenario.sumocfg}  end {horizon_s:g} s  seeds 1..{args.seeds}  "
          f"(mean ± std over seeds; delay = RESCO average delay per vehicle)")
    print(format_table(summary))
    if args.json:
        print(json.dumps({"benchmark": "control", "sumocfg": str(scenario.sumocfg),
                          "end_s": horizon_s, "seeds": list(range(1, args.seeds + 1)),
                          "wall_s": round(time.monotonic() - wall0, 2),
                          "controllers": summary, "failed": failed}))
    return 1 if failed else 0


def _write_sumocfg(out_dir: Path, net: str, routes: str) -> Path:
    """A minimal .sumocfg for a network shipped with routes but no configuration."""
    route_files = ",".join(str(Path(r).resolve()) for r in routes.split(",") if r)
    cfg = out_dir / "scenario.sumocfg"
    cfg.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n  <input>\n'
        f'    <net-file value="{Path(net).resolve()}"/>\n'
        f'    <route-files value="{route_files}"/>\n'
        '  </input>\n</configuration>\n', encoding="utf-8")
    return cfg


def add_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Register `control` under `kota bench`."""
    p = bench_subparsers.add_parser(
        "control", help="signal controllers compared in SUMO (RESCO average delay)",
        description="Run one SUMO scenario under each signal controller and seed, with SUMO's "
        "--time-to-teleport -1 (gridlock shows instead of being hidden), and compare average "
        "delay per vehicle as the RESCO benchmark defines it (Ault & Sharon, NeurIPS 2021): "
        "per vehicle SUMO timeLoss + departDelay, a vehicle never inserted counts end − depart, "
        "divided over all vehicles of the route files due before the end. Also reports trip "
        "time, waiting time and stops (averaged over inserted vehicles) and throughput "
        "(vehicles arrived). Controllers: fixed = the network's own program; actuated = SUMO's "
        "actuated logic on the same phases; maxpressure = Varaiya's max-pressure (10 s "
        "decisions, 3 s yellow, queues within 200 m); kota = the control room's timing core "
        "fed only stop-line loop and camera-zone counts, occupancy and queues. Needs the "
        "eclipse-sumo and libsumo wheels.",
        epilog="Example: kota bench control --sumocfg nets/single-intersection.sumocfg "
        "--controller all --seeds 3 --end 3600 --out /tmp/control --json")
    p.add_argument("--sumocfg", metavar="PATH",
                   help="the SUMO scenario (.sumocfg); any network with traffic lights")
    p.add_argument("--net", metavar="PATH", help="instead of --sumocfg: a network (.net.xml) "
                   "for networks shipped without a .sumocfg (e.g. sumo-rl's 2x2grid); a "
                   "scenario.sumocfg naming it and --routes is written to --out")
    p.add_argument("--routes", metavar="PATH[,PATH…]", help="route files for --net")
    p.add_argument("--controller", action="append", metavar="NAME",
                   choices=["fixed", "actuated", "maxpressure", "kota", "all"],
                   help="fixed, actuated, maxpressure, kota or all; repeat for several "
                   "(default all)")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="run seeds 1..N for every controller (default 3)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="directory for <controller>-seed<k>.tripinfo.xml (created)")
    p.add_argument("--end", type=float, metavar="S",
                   help="end time on the scenario's clock, as SUMO's --end (default: the "
                   "scenario's end, at most its begin + 3600 s)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="runs in parallel, one process each (default min(2, CPUs))")
    p.add_argument("--verbose", action="store_true",
                   help="print each run's simulated time on stderr as it goes")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures (means, stds, every run) as the last line")
    p.set_defaults(func=bench_control)
    return p
