"""Discovery on sumo-rl's single-intersection: the phases, lanes and movements SUMO has."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.traffic.detectors import CAMERA_ZONE_M, plan_layout, write_additional
from simulators.traffic.discovery import discover
from simulators.traffic.errors import ScenarioError
from simulators.traffic.runner import sumo_api
from simulators.traffic.scenario import Scenario


@pytest.fixture()
def lights(single_intersection: Path, tmp_path: Path):
    api = sumo_api()
    api.start(Scenario.from_sumocfg(single_intersection).command(seed=1, end_s=10,
                                                                 run_dir=tmp_path))
    try:
        yield discover(api)
    finally:
        api.close()


def test_discovers_the_two_greens_with_their_yellow(lights) -> None:
    (tl,) = lights
    assert tl.tls_id == "t"
    assert [g.state for g in tl.greens] == ["GGrr", "rrGG"]
    assert [g.program_index for g in tl.greens] == [0, 2]
    assert [(g.yellow_s, g.all_red_s) for g in tl.greens] == [(2.0, 0.0), (2.0, 0.0)]
    assert tl.program_states == ("GGrr", "yyrr", "rrGG", "rryy")


def test_discovers_lanes_and_movements(lights) -> None:
    (tl,) = lights
    assert tl.incoming_lanes == ("n_t_0", "n_t_1", "w_t_0", "w_t_1")
    assert tl.outgoing_lanes == ("t_e_0", "t_e_1", "t_s_0", "t_s_1")
    assert tl.movements(0) == {("n_t_0", "t_s_0"), ("n_t_1", "t_s_1")}
    assert tl.movements(1) == {("w_t_0", "t_e_0"), ("w_t_1", "t_e_1")}
    assert all(140.0 < tl.lane_length_m[lane] < 150.0 for lane in tl.incoming_lanes)


def test_detector_layout_is_one_loop_and_one_camera_zone_per_incoming_lane(
        lights, tmp_path: Path) -> None:
    layout = plan_layout(lights, pressure_zones=False)
    assert layout.shape == (1, 4)
    assert layout.zone_length_m == ((CAMERA_ZONE_M,) * 4,)
    text = write_additional(layout, tmp_path / "d.add.xml").read_text()
    # Per incoming lane a loop and a zone; per outgoing lane an exit zone.
    assert text.count("<inductionLoop") == 4 and text.count("<laneAreaDetector") == 8
    with_pressure = plan_layout(lights, pressure_zones=True)
    assert set(with_pressure.pressure_zone_ids) == {*lights[0].incoming_lanes,
                                                    *lights[0].outgoing_lanes}


def test_a_scenario_without_network_is_a_typed_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.sumocfg"
    cfg.write_text("<configuration><input><route-files value='r.rou.xml'/></input>"
                   "</configuration>")
    with pytest.raises(ScenarioError, match="net-file"):
        Scenario.from_sumocfg(cfg)
    with pytest.raises(ScenarioError, match="no such"):
        Scenario.from_sumocfg(tmp_path / "missing.sumocfg")
