"""What a controller gets each interval: detector arrays of fixed shape, nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from simulators.traffic.controllers import Controller, Observation, SignalStatus
from simulators.traffic.detectors import DetectorReport
from simulators.traffic.runner import run_scenario
from simulators.traffic.scenario import Scenario
from simulators.traffic.signals import TransitionTimes


class _Recorder(Controller):
    name = "recorder"
    decision_interval_s = 5.0
    times = TransitionTimes()

    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def decide(self, obs: Observation) -> list[int]:
        self.seen.append(obs)
        return [int(obs.t_s // 30) % 2]  # alternate greens every 30 s


def test_reports_are_counts_occupancy_and_queues_only(single_intersection: Path,
                                                      tmp_path: Path) -> None:
    rec = _Recorder()
    run_scenario(Scenario.from_sumocfg(single_intersection), rec, seed=3, end_s=300,
                 tripinfo=tmp_path / "t.xml")
    assert len(rec.seen) >= 55
    assert {f.name for f in dataclasses.fields(DetectorReport)} == {
        "count_veh", "occupancy_pct", "queue_veh", "zone_veh", "zone_occupancy_pct", "valid",
        "exit_veh", "exit_queue_veh", "exit_valid", "interval_s"}
    assert {f.name for f in dataclasses.fields(Observation)} == {
        "t_s", "detectors", "signals", "pressure_zone_veh"}
    assert {f.name for f in dataclasses.fields(SignalStatus)} <= {
        "current_green", "target_green", "green_elapsed_s", "clearance_left_s", "in_green"}
    total = np.zeros((1, 4))
    for obs in rec.seen:
        rep = obs.detectors
        assert obs.pressure_zone_veh == {}  # only max-pressure gets its 200 m zones
        for name in ("count_veh", "occupancy_pct", "queue_veh", "zone_veh",
                     "zone_occupancy_pct", "valid"):
            arr = getattr(rep, name)
            assert isinstance(arr, np.ndarray) and arr.shape == (1, 4), name
            assert arr.dtype.kind in "bf", name
        assert rep.valid.all() and rep.exit_valid.all()
        assert rep.exit_veh.shape == rep.exit_queue_veh.shape == (1, 4)
        assert (rep.exit_queue_veh <= rep.exit_veh).all()
        assert np.isfinite(rep.count_veh).all() and (rep.count_veh >= 0).all()
        assert ((rep.occupancy_pct >= 0) & (rep.occupancy_pct <= 100)).all()
        # A 50 m zone holds at most ~7 cars of 5 m + 2.5 m gap.
        assert ((rep.queue_veh >= 0) & (rep.queue_veh <= rep.zone_veh) & (rep.zone_veh <= 8)).all()
        assert rep.interval_s == 5.0 or obs is rec.seen[0]
        total += rep.count_veh
    # sumo-rl's demand: 0.2 veh/s north→south and 0.5 veh/s west→east over two lanes each;
    # the loops count what crossed the stop line.
    ns, we = total[0, :2].sum(), total[0, 2:].sum()
    assert 20 < ns < 100 and 80 < we < 200
