"""The generated demo city: deterministic files that SUMO loads, six lights, Indonesian traffic.

The city is written once per session (netconvert + duarouter from the eclipse-sumo wheel) and
loaded in SUMO through libsumo; the vehicle mix is read from the route file.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from simulators.city.network import DemoCity, expected_vehicles, write_demo_city
from simulators.traffic.discovery import discover
from simulators.traffic.runner import sumo_api
from simulators.traffic.scenario import Scenario

SHORT = DemoCity(duration_s=1800.0)


@pytest.fixture(scope="module")
def city(sumo_ready: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    directory = tmp_path_factory.mktemp("city")
    t0 = time.monotonic()
    files = write_demo_city(directory, seed=7, city=SHORT)
    return files.sumocfg, time.monotonic() - t0


def test_written_fast_and_the_same_for_a_seed(city: tuple[Path, float], tmp_path: Path) -> None:
    sumocfg, took_s = city
    assert took_s < 10.0
    again = write_demo_city(tmp_path, seed=7, city=SHORT)
    for name in ("city.net.xml", "city.rou.xml", "city.sumocfg"):
        assert (tmp_path / name).read_bytes() == (sumocfg.parent / name).read_bytes(), name
    other = write_demo_city(tmp_path / "other", seed=8, city=SHORT)
    assert other.routes.read_bytes() != again.routes.read_bytes()


def test_vehicle_mix_is_mostly_motorcycles_over_a_morning_peak(city: tuple[Path, float]) -> None:
    sumocfg, _ = city
    root = ET.parse(sumocfg.parent / "city.rou.xml").getroot()
    vclass = {t.get("id"): t.get("vClass") for t in root.iter("vType")}
    assert set(vclass.values()) == {"motorcycle", "passenger", "bus", "truck"}
    vehicles = list(root.iter("vehicle"))
    expected = expected_vehicles(SHORT)
    assert abs(len(vehicles) - expected) < 4 * expected**0.5  # Poisson: within 4 sigma
    mix = Counter(vclass[v.get("type")] for v in vehicles)
    share = {k: n / len(vehicles) for k, n in mix.items()}
    assert 0.65 <= share["motorcycle"] <= 0.75
    assert 0.17 <= share["passenger"] <= 0.27
    assert 0 < share["bus"] < 0.06 and 0 < share["truck"] < 0.08
    departs = [float(v.get("depart", "0")) for v in vehicles]
    assert min(departs) >= 6 * 3600 and max(departs) < 6 * 3600 + 1800  # from 06:00 WIB


def test_sumo_loads_it_with_six_signalised_intersections(city: tuple[Path, float],
                                                         tmp_path: Path) -> None:
    sumocfg, _ = city
    scenario = Scenario.from_sumocfg(sumocfg)
    assert scenario.begin_s == 6 * 3600
    api = sumo_api()
    api.start(scenario.command(seed=7, end_s=scenario.begin_s + 60, run_dir=tmp_path))
    try:
        lights = discover(api)
        assert sorted(tl.tls_id for tl in lights) == [f"J{k}" for k in range(1, 7)]
        assert all(len(tl.greens) == 2 for tl in lights)
        for tl in lights:
            for g in tl.greens:
                assert (g.yellow_s, g.all_red_s) == (3.0, 1.0)
            widths = {api.lane.getWidth(ln) for ln in tl.incoming_lanes}
            assert all(3.0 <= w <= 3.5 for w in widths)
        for _ in range(60):
            api.simulationStep()
        assert api.simulation.getDepartedNumber() > 0
    finally:
        api.close()
