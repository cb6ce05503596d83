"""The kota controller in SUMO: the core gets detector arrays and static structure only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import simulators.traffic.kota_controller as kota_module
from controlroom.timing import Measurements, Params, State, Structure
from simulators.traffic.kota_controller import KotaController, KotaTuning
from simulators.traffic.runner import run_scenario
from simulators.traffic.scenario import Scenario


@pytest.mark.parametrize("mode", ["pressure", "plan"])
def test_core_sees_only_measurement_arrays(single_intersection: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    calls: list[tuple] = []
    name = f"{mode}_step"
    real = getattr(kota_module, name)

    def spy(structure, measurements, state, params):
        calls.append((structure, measurements, state, params))
        return real(structure, measurements, state, params)

    monkeypatch.setattr(kota_module, name, spy)
    result = run_scenario(Scenario.from_sumocfg(single_intersection),
                          KotaController(KotaTuning(mode=mode)), seed=1, end_s=300,
                          tripinfo=tmp_path / "t.xml")
    assert calls, f"{name} was never called"
    for structure, meas, state, params in calls:
        assert isinstance(structure, Structure) and isinstance(state, State)
        assert isinstance(params, Params) and type(meas) is Measurements
        assert {f.name for f in dataclasses.fields(meas)} == {
            "count", "occupancy", "queue_veh", "valid", "interval_s"}
        # One intersection: 4 stop-line stations + 4 exit zones, numbers only.
        for arr in (meas.count, meas.occupancy, meas.queue_veh, meas.valid):
            assert arr.shape == (1, 8) and arr.dtype.kind in "bf"
        assert np.isfinite(meas.count).all() and ((meas.occupancy >= 0) & (meas.occupancy <= 1)).all()
    assert 0 < result.metrics.avg_delay_s < 100


def test_merge_rows_takes_new_state_only_where_asked() -> None:
    from controlroom.timing import (
        DetectorSpec,
        IntersectionSpec,
        MovementSpec,
        PhaseSpec,
        build_structure,
        initial_state,
    )

    spec = IntersectionSpec(phases=[PhaseSpec([0]), PhaseSpec([1])],
                            movements=[MovementSpec(3.0), MovementSpec(3.0)],
                            detectors=[DetectorSpec(0), DetectorSpec(1)])
    old = initial_state(build_structure([spec] * 3))
    new = dataclasses.replace(old, clock_s=60.0, flow_pcu_h=np.full((3, 2), 500.0),
                              cycle_ds=np.full(3, 800), phase=np.array([1, 1, 1]))
    merged = kota_module.merge_rows(old, new, np.array([True, False, True]))
    assert merged.flow_pcu_h[:, 0].tolist() == [500.0, 0.0, 500.0]
    assert merged.cycle_ds.tolist() == [800, 0, 800]
    assert merged.phase.tolist() == [1, 0, 1]
    assert merged.clock_s == 60.0  # one clock for all
