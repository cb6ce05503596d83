"""A SUMO light as a controller and the controller's lamps as SUMO's string, by hand-built cases."""

from __future__ import annotations

import pytest

from firmware_sim.controller.program import LampState
from simulators.city.mapping import intersection_ids, map_light, map_lights
from simulators.traffic.discovery import GreenPhase, Link, TrafficLight
from simulators.traffic.errors import ScenarioError

# Links: 0 north straight, 1 north right turn (permissive), 2 east straight, 3 a free left turn
# from the east (green in every phase), 4 a link no phase ever serves.
STATES = ("GgrGr", "rrGGr")


def light(durations: tuple[float, float] = (30.0, 20.0), yellow: float = 3.0,
          all_red: float = 0.0) -> TrafficLight:
    greens = tuple(GreenPhase(2 * k, st, d, d, d, yellow, all_red)
                   for k, (st, d) in enumerate(zip(STATES, durations, strict=True)))
    links = (Link(0, "n_0", "s_0"), Link(1, "n_0", "w_0"), Link(2, "e_0", "w_0"),
             Link(3, "e_1", "s_0"), Link(4, "x_0", "s_0"))
    return TrafficLight("J#1", "0", (), (), greens, links, ("e_0", "e_1", "n_0", "x_0"),
                        ("s_0", "w_0"), {})


def lamps(green: int = 0, yellow: int = 0, flash: int = 0) -> LampState:
    return LampState(0, 0b11 & ~green & ~yellow, yellow, green, flash, 0, 0)


def test_phases_lanes_detectors_and_local_plan() -> None:
    sm = map_light(light(), "J1")
    ident = sm.config.identity
    assert ident.phase_count == 2 and ident.conflicts == (0b10, 0b01)
    assert sm.lanes == ("e_0", "e_1", "n_0")  # x_0 is never green: no movement, no loop
    assert sm.call_phases == ident.detector_phase == (2, 1, 1)  # e_1's first priority green
    assert sm.phase_lanes == ((1, 2), (0, 1))
    assert sm.protected == (True, True, False)  # n_0 turns right on a permissive green
    t1 = sm.config.timing[0]
    assert (t1.min_green_ds, t1.max_green_ds, t1.yellow_ds, t1.all_red_ds) == (70, 600, 30, 10)
    plan = sm.config.local_plan
    assert plan.stages == (0b01, 0b10) and plan.splits_ds == (340, 240) and plan.cycle_ds == 580


def test_short_program_stretched_to_the_controllers_cycle_floor() -> None:
    sm = map_light(light(durations=(6.0, 5.0)), "J1")
    plan = sm.config.local_plan
    assert plan.cycle_ds == 300  # 30 s, the controller's shortest cycle
    assert [t.min_green_ds for t in sm.config.timing] == [60, 50]


def test_lamp_strings() -> None:
    sm = map_light(light(), "J1")
    assert sm.sumo_state(lamps(green=0b01)) == "GgrGr"
    assert sm.sumo_state(lamps(green=0b10)) == "rrGGr"
    assert sm.sumo_state(lamps(yellow=0b01)) == "yyrGr"  # the free turn keeps its green
    assert sm.sumo_state(lamps()) == "rrrrr"  # all-red
    assert sm.sumo_state(lamps(flash=0b11)) == "ooooo"
    assert sm.sumo_state(None) == "ooooo"


def test_intersection_ids_fit_the_contract() -> None:
    ids = intersection_ids(["J1", "cluster_1#2", "_x", "cluster_1_2"])
    assert ids == {"J1": "J1", "cluster_1#2": "cluster_1_2", "_x": "tl_x",
                   "cluster_1_2": "cluster_1_2-2"}


def test_unusable_lights_are_refused() -> None:
    one = light()
    with pytest.raises(ScenarioError):
        map_light(TrafficLight("J", "0", (), (), one.greens[:1], one.links, one.incoming_lanes,
                               one.outgoing_lanes, {}), "J")


def test_a_green_serving_no_lane_is_left_out_and_unmappable_lights_skipped() -> None:
    base = light()
    idle = GreenPhase(4, "rrrrG", 10.0, 10.0, 10.0, 3.0, 0.0)  # link 4 has no lane behind it
    links = (*base.links[:4], None)
    three = TrafficLight("J2", "0", (), (), (*base.greens, idle), links, base.incoming_lanes[:3],
                         base.outgoing_lanes, {})
    sm = map_light(three, "J2")
    assert sm.phase_count == 2 and sm.greens == base.greens
    assert sm.sumo_state(lamps(green=0b01)) == "GgrGr"
    lone = TrafficLight("J3", "0", (), (), (base.greens[0], idle), links,
                        base.incoming_lanes[:3], base.outgoing_lanes, {})
    assert [m.intersection_id for m in map_lights([three, lone])] == ["J2"]
