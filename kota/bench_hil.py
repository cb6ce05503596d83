"""HIL fidelity: the timing core through the whole loop against the same core in-process.

One demo city, one seed, one window. The hardware-in-the-loop run is `kota.city`'s stack at real
speed (SUMO → emulated controllers → edge agents → broker → control room → plans → controllers);
the in-process runs use `simulators.traffic` on the very same files and seed: the network's
fixed program, the `kota` controller in plan mode as tuned (stop-line loops plus camera zones),
and a loop-only variant (no queue from camera zones, no exit zones: what the real controllers
can report). A script, not a test: `python -m kota.bench_hil --out DIR [--duration S]`; the HIL
part takes S real seconds. The last line of output is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

LOOP_ONLY = "kota-plan-loops"
PLAN = "kota-plan"


def _world_alone(sumocfg: str, seed: int, end_s: float) -> dict[str, Any]:
    """The HIL world without edges or control room, as fast as it goes: the controllers run
    their local plan (the network's program), so this against in-process "fixed" measures the
    world's own fidelity (lamps, loops, clearances) apart from the control loop."""
    from simulators.city import CityOptions, CityWorld

    world = CityWorld(sumocfg, CityOptions(time_scale=None, seed=seed, end_s=end_s))
    world.start()
    world.run()
    world.wait()
    result = world.stop()
    return {"run": "hil-world-local-plan", "seed": seed, "wall_s": round(result.wall_s, 1),
            **result.metrics.as_dict()}


def _in_process(sumocfg: str, name: str, seed: int, end_s: float, out_dir: str) -> dict[str, Any]:
    """One in-process run, in a worker process of its own (libsumo: one simulation each)."""
    import numpy as np

    from simulators.traffic.kota_controller import KotaController, KotaTuning
    from simulators.traffic.registry import make_controller
    from simulators.traffic.runner import run_scenario
    from simulators.traffic.scenario import Scenario

    class LoopOnlyKota(KotaController):
        """Plan mode fed only what a stop-line loop reports: the queue term stays 0, as in the
        control room (``controlroom.traffic.live``: "loops give no queue")."""

        name = LOOP_ONLY

        def _measurements(self, rep: Any) -> Any:
            m = super()._measurements(rep)
            return replace(m, queue_veh=np.zeros_like(m.queue_veh))

    # The controllers' own timing (simulators.city.mapping): min green 7 s, max 60 s, the
    # network's 3 s yellow and 1 s all-red.
    tuning = KotaTuning(mode="plan", min_green_s=7.0, max_green_s=60.0)
    if name == LOOP_ONLY:
        controller = LoopOnlyKota(replace(tuning, downstream_from="none"))
    elif name == PLAN:
        controller = KotaController(tuning)
    else:
        controller = make_controller(name)
    result = run_scenario(Scenario.from_sumocfg(sumocfg), controller, seed=seed, end_s=end_s,
                          tripinfo=Path(out_dir) / f"{name}-seed{seed}.tripinfo.xml")
    return {"run": name, "seed": seed, "wall_s": round(result.wall_s, 1),
            **result.metrics.as_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kota.bench_hil", description=__doc__)
    parser.add_argument("--out", required=True, help="directory for the city, logs and results")
    parser.add_argument("--duration", type=float, default=1200.0, help="simulated = real "
                        "seconds of the window (default 1200)")
    parser.add_argument("--begin-hour", type=int, default=7, help="window start, hour of the "
                        "day (default 7: the morning peak)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-hil", action="store_true", help="in-process runs only")
    args = parser.parse_args(argv)

    from kota.city import StackOptions, free_port, run_closed_loop
    from kota.settings import Settings
    from simulators.city import CityOptions, CityWorld, DemoCity, write_demo_city

    out = Path(args.out).resolve()
    city = DemoCity(begin_hour=args.begin_hour, duration_s=args.duration)
    files = write_demo_city(out / "city", seed=args.seed, city=city)
    end_s = city.end_s
    figures: dict[str, Any] = {"seed": args.seed, "begin_s": city.begin_s, "end_s": end_s}
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        jobs = {name: pool.submit(_in_process, str(files.sumocfg), name, args.seed, end_s,
                                  str(out))
                for name in ("fixed", PLAN, LOOP_ONLY)}
        jobs["hil-world-local-plan"] = pool.submit(_world_alone, str(files.sumocfg), args.seed,
                                                   end_s)
        runs = {name: job.result() for name, job in jobs.items()}
    figures["in_process"] = runs
    if not args.skip_hil:
        settings = Settings.model_validate({
            "site": {"data_dir": str(out / "data")},
            "database": {"embedded": {"port": free_port()}}})
        world = CityWorld.of_city(files, CityOptions(time_scale=1.0, seed=args.seed,
                                                     end_s=end_s))
        options = StackOptions(run_dir=out / "hil", edges=2)
        metrics = out / "hil-metrics.json"
        rc = run_closed_loop(world, options, settings, metrics_path=metrics,
                             title="HIL fidelity run")
        if rc != 0:
            print(json.dumps({**figures, "hil_error": rc}), flush=True)
            return rc
        hil = json.loads(metrics.read_text("utf-8"))
        figures["hil"] = hil
        for name in (PLAN, LOOP_ONLY):
            ref = runs[name]["avg_delay_s"]
            figures[f"gap_vs_{name}_pct"] = round(100 * (hil["avg_delay_s"] - ref) / ref, 1)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
