"""One SUMO run of a scenario under one controller, start to tripinfo.

Owns the simulation loop: start SUMO (libsumo, or TraCI when libsumo is missing), discover
the traffic lights, reload with the generated detectors and programs, step, hand the
controller its detector report on its interval, drive the lamps safely, close, and compute
the trip metrics. It must not interpret decisions beyond the phase driver's safety rules, and
writes nothing outside the run directory and the tripinfo path it is given.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from simulators.traffic.controllers import Controller, Observation, SignalStatus
from simulators.traffic.detectors import (
    DetectorLayout,
    DetectorReader,
    DetectorReport,
    plan_layout,
    write_additional,
)
from simulators.traffic.discovery import discover
from simulators.traffic.errors import ScenarioError, SumoNotInstalledError
from simulators.traffic.metrics import TripMetrics, trip_metrics
from simulators.traffic.scenario import Scenario
from simulators.traffic.signals import PhaseDriver

log = logging.getLogger(__name__)

Progress = Callable[[float, float], None]  # (sim time s, end s)
StepHook = Callable[[Any, float], None]  # (api, sim time s), after every step; for tests


class ReportSource(Protocol):
    """Another sensor in place of some of SUMO's detectors (e.g. cameras on rendered frames):
    told the layout once, stepped with the world, and handed each report to amend before the
    controller sees it. It may read the world; what it returns must stay counts, occupancy
    and queues."""

    def begin(self, api: Any, layout: DetectorLayout, t_s: float) -> None: ...

    def step(self, api: Any, t_s: float) -> None: ...

    def report(self, report: DetectorReport, t_s: float) -> DetectorReport: ...


def sumo_api() -> Any:
    """libsumo when installed (in-process, fast), else TraCI (SUMO as a subprocess)."""
    try:
        import libsumo

        return libsumo
    except ImportError:
        try:
            import traci

            return traci
        except ImportError as e:
            raise SumoNotInstalledError(
                "neither libsumo nor traci is importable: pip install 'libsumo==1.28.*' "
                "'traci==1.28.*' 'eclipse-sumo==1.28.*'") from e


@dataclass(frozen=True)
class RunResult:
    controller: str
    seed: int
    end_s: float
    sim_end_s: float  # where the simulation stopped (earlier when every vehicle arrived)
    wall_s: float
    tripinfo: Path
    metrics: TripMetrics
    lights: int


def _status(driver: PhaseDriver, n: int, t_s: float) -> SignalStatus:
    return SignalStatus(
        current_green=np.array(driver.current, dtype=np.int64),
        target_green=np.array(driver.target, dtype=np.int64),
        green_elapsed_s=np.array([driver.green_elapsed_s(i, t_s) for i in range(n)]),
        clearance_left_s=np.array([driver.clearance_left_s(i, t_s) for i in range(n)]),
        in_green=np.array([driver.in_green(i) for i in range(n)], dtype=bool))


def run_scenario(scenario: Scenario, controller: Controller, *, seed: int, end_s: float,
                 tripinfo: Path, progress: Progress | None = None,
                 step_hook: StepHook | None = None,
                 report_source: ReportSource | None = None) -> RunResult:
    """Run ``scenario`` to ``end_s`` under ``controller``; tripinfo goes to ``tripinfo``.

    For results to compare, give each run a fresh process: libsumo carries some state from one
    simulation to the next in the same process (seen on RESCO's cologne1, trips routed at
    insertion), which `kota bench control` avoids by spawning a process per run.
    ``report_source`` (optional) amends each detector report before the controller sees it.
    """
    api = sumo_api()
    wall0 = time.monotonic()
    tripinfo = Path(tripinfo).resolve()
    tripinfo.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kota-sumo-") as tmp:
        run_dir = Path(tmp)
        probe = scenario.command(seed=seed, end_s=end_s, run_dir=run_dir)
        sumo_errors = (api.TraCIException, api.FatalTraCIError)
        try:
            api.start(probe)
        except sumo_errors as e:
            raise ScenarioError(f"SUMO could not load {scenario.sumocfg}: {e}; run the same "
                                f"command by hand to see SUMO's messages: {' '.join(probe)}"
                                ) from e
        t_s = scenario.begin_s
        try:
            lights = discover(api)
            if not lights:
                log.warning("%s: no traffic light with two or more green phases; every "
                            "controller will run the same uncontrolled network",
                            scenario.sumocfg)
            layout = plan_layout(lights, pressure_zones=controller.needs_pressure_zones)
            extra = [write_additional(layout, run_dir / "kota-detectors.add.xml")]
            program = controller.program_additional(lights)
            if program:
                extra.append(run_dir / "kota-programs.add.xml")
                extra[-1].write_text(f"<additional>\n{program}\n</additional>\n",
                                     encoding="utf-8")
            cmd = scenario.command(seed=seed, end_s=end_s, run_dir=run_dir, tripinfo=tripinfo,
                                   extra_additional=tuple(extra))
            api.load(cmd[1:])
            t_s = float(api.simulation.getTime())
            controller.begin(api, lights)
            reader = DetectorReader(api, layout, begin_s=t_s)
            if report_source is not None:
                report_source.begin(api, layout, t_s)
            interval_s = controller.decision_interval_s
            driver = PhaseDriver(api, lights, controller.times) if interval_s else None
            if driver is not None:
                driver.start(t_s)
            next_decision_s = t_s + (interval_s or 0.0)
            next_progress_s = t_s
            while t_s < end_s:
                if driver is not None and interval_s and t_s >= next_decision_s - 1e-9:
                    report = reader.read(t_s)
                    if report_source is not None:
                        report = report_source.report(report, t_s)
                    obs = Observation(t_s, report, _status(driver, len(lights), t_s),
                                      reader.pressure_zone_veh() if layout.pressure_zone_ids
                                      else {})
                    for i, green in enumerate(controller.decide(obs)):
                        driver.request(i, green)
                    next_decision_s += interval_s
                if driver is not None:
                    driver.step(t_s)
                api.simulationStep()
                t_s = float(api.simulation.getTime())
                if report_source is not None:
                    report_source.step(api, t_s)
                if step_hook is not None:
                    step_hook(api, t_s)
                if progress is not None and t_s >= next_progress_s:
                    progress(t_s, end_s)
                    next_progress_s = t_s + max(end_s / 20.0, 60.0)
                if api.simulation.getMinExpectedNumber() <= 0:
                    break  # every vehicle of the scenario has arrived
        except sumo_errors as e:
            raise ScenarioError(f"SUMO failed running {scenario.sumocfg} under "
                                f"{controller.name} at {t_s:g} s: {e}") from e
        finally:
            api.close()
    metrics = trip_metrics(tripinfo, scenario.route_files, end_s, scenario.begin_s)
    return RunResult(controller.name, seed, end_s, t_s, time.monotonic() - wall0, tripinfo,
                     metrics, len(lights))
