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
