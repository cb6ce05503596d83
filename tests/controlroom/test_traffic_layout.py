"""The city layout file: the schema another engineer generates from SUMO networks, its errors
(naming the intersection by id and the field), and its conversion into the core's structure."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from controlroom.traffic.layout import LayoutError, load_layout, parse_layout


def intersection(iid: str, **over: Any) -> dict[str, Any]:
    x: dict[str, Any] = {
        "id": iid, "name": f"Simpang {iid}", "x": 0.0, "y": 0.0,
        "phases": [{"movements": [0], "min_green_s": 7, "max_green_s": 60, "yellow_s": 3,
                    "all_red_s": 1, "ped_min_s": 0},
                   {"movements": [1], "min_green_s": 7, "max_green_s": 60, "yellow_s": 3,
                    "all_red_s": 1, "ped_min_s": 0}],
        "movements": [{"width_m": 3.2, "protected": True, "downstream": []},
                      {"width_m": 5.0, "protected": False, "downstream": []}],
        "detectors": [{"movement": 0, "counts": True, "queues": True},
                      {"movement": 1, "counts": True, "queues": False}],
        "cycle_min_s": None, "cycle_max_s": None, "upstream": None, "travel_time_s": 0,
    }
    x.update(over)
    return x


def city() -> dict[str, Any]:
    j1 = intersection("J1")
    j1["movements"][0]["downstream"] = [["J2", 1]]
    return {"city": "Demo", "intersections": [
        j1, intersection("J2", upstream="J1", travel_time_s=25, cycle_min_s=40, cycle_max_s=90)]}


def problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(LayoutError) as err:
        parse_layout(raw, "city.json")
    assert "city.json" in str(err.value)
    return err.value.problems


def test_the_documented_schema_becomes_the_core_structure() -> None:
    layout, structure = parse_layout(city())
    assert [x.id for x in layout.intersections] == ["J1", "J2"]
    assert structure.shape == (2, 2, 2, 2)
    # downstream [J2, 1] is detector 1 of intersection index 1: flat index i*D + d
    assert structure.downstream_detector[0, 0, 0] == 1 * 2 + 1
    assert list(structure.upstream) == [-1, 0]
    assert structure.travel_time_ds[1] == 250
    assert structure.cycle_min_ds[1] == 400 and structure.cycle_max_ds[1] == 900
    assert list(structure.detector_queues[0]) == [True, False]
    assert list(structure.yellow_ds[0]) == [30, 30] and list(structure.all_red_ds[0]) == [10, 10]


def test_json_and_toml_files_load(tmp_path: Path) -> None:
    (tmp_path / "city.json").write_text(json.dumps(city()), encoding="utf-8")
    assert load_layout(tmp_path / "city.json")[0].city == "Demo"
    toml = """city = "Demo"
[[intersections]]
id = "J1"
phases = [{movements = [0]}, {movements = [1]}]
movements = [{width_m = 3.5}, {width_m = 3.5}]
detectors = [{movement = 0}, {movement = 1}]
"""
    (tmp_path / "city.toml").write_text(toml, encoding="utf-8")
    layout, structure = load_layout(tmp_path / "city.toml")
    assert layout.intersections[0].phases[0].all_red_s == 1.0 and structure.shape[0] == 1


def test_unreadable_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="cannot read"):
        load_layout(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(LayoutError, match="not valid JSON"):
        load_layout(tmp_path / "bad.json")


@pytest.mark.parametrize(("mutate", "where", "what"), [
    (lambda r: r["intersections"][1]["phases"][0].update(colour="red"),
     "intersection J2 phases[0].colour", "unknown key"),
    (lambda r: r["intersections"][0]["movements"][1].update(width_m=0),
     "intersection J1 movements[1].width_m", "greater than 0"),
    (lambda r: r["intersections"][1]["phases"][1].update(movements=[0, 7]),
     "intersection J2 phases[1].movements", "movement 7 does not exist"),
    (lambda r: r["intersections"][1]["detectors"][0].update(movement=5),
     "intersection J2 detectors[0].movement", "movement 5 does not exist"),
    (lambda r: r["intersections"][0]["movements"][0].update(downstream=[["J9", 0]]),
     "intersection J1 movements[0].downstream", "no intersection 'J9'"),
    (lambda r: r["intersections"][0]["movements"][0].update(downstream=[["J2", 4]]),
     "intersection J1 movements[0].downstream", "J2 has no detector 4"),
    (lambda r: r["intersections"][1].update(upstream="J2"),
     "intersection J2 upstream", "itself"),
    (lambda r: r["intersections"][1].update(id="J1"),
     "intersection J1", "id used twice"),
    (lambda r: r["intersections"][0].update(id="J 1"),
     "intersection J 1 id", "pattern"),
    (lambda r: r.update(intersections=[]),
     "intersections", "at least 1"),
])
def test_schema_errors_name_the_intersection_and_field(mutate: Any, where: str, what: str) -> None:
    raw = copy.deepcopy(city())
    mutate(raw)
    found = problems(raw)
    assert any(w == where and what in m for w, m in found) or any(
        where in w and what in m for w, m in found), found


def test_core_errors_name_the_intersection_by_id() -> None:
    raw = city()
    # Two 60 s minimum greens cannot fit a 90 s maximum cycle.
    for phase in raw["intersections"][1]["phases"]:
        phase["min_green_s"] = 60
        phase["max_green_s"] = 80
    found = problems(raw)
    assert found[0][0] == "intersection J2", found
    assert "exceed the maximum cycle" in found[0][1]


def test_upstream_loops_are_refused() -> None:
    raw = city()
    raw["intersections"][0]["upstream"] = "J2"
    assert "loop" in problems(raw)[0][1]
