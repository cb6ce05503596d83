"""Surge re-plans of the traffic service: a real broker, a real PostgreSQL, the control room as
it runs and the test acting as an edge (``test_traffic_service.Edge``). A surge on an
intersection's loops gets it a new plan at the next tick, not at the next plan step; at most
one per ``surge_gap_s``; a faulty loop's counts raise none; switched off, only plan steps plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edge import contract as c
from tests.controlroom.test_traffic_service import (  # noqa: F401  (make_setup is a fixture)
    EMBEDDED_ONLY,
    Setup,
    make_setup,
    wait_for,
)

PLAN_INTERVAL_S = 3.0
SURGE_VEH_S = 0.8  # per loop: 2,880 veh/h against 180 veh/h before
QUIET_VEH_S = 0.05


def traffic(s: Setup) -> dict[str, Any]:
    return s.api("health").json()["traffic"]


def settled(s: Setup) -> int:
    """Wait until every intersection runs an adaptive plan and a plan step has just run; returns
    that step's number (the test then has about a plan interval before the next)."""
    for iid in s.ids:
        wait_for(lambda iid=iid: s.edge.commands_for(iid, c.PlanBody), timeout_s=15,
                 what=f"a first plan for {iid}")
    steps = traffic(s)["plan_steps"]
    return int(wait_for(lambda: traffic(s)["plan_steps"] > steps and traffic(s)["plan_steps"],
                        timeout_s=10, what="the next plan step"))


def surge(s: Setup, iid: str, veh_s: float = SURGE_VEH_S) -> tuple[int, float]:
    before = len(s.edge.commands_for(iid, c.PlanBody))
    s.edge.rate_veh_s[iid] = veh_s
    return before, time.monotonic()


@EMBEDDED_ONLY
def test_a_surge_is_replanned_before_the_next_plan_step_at_most_once_per_gap(
        make_setup: Callable[..., Setup]) -> None:  # noqa: F811 (the fixture)
    s = make_setup(plan_interval_s=PLAN_INTERVAL_S, surge_gap_s=60.0)
    a, b = s.ids
    step = settled(s)
    assert traffic(s)["surge_replans"] == 0  # steady traffic is no surge

    before, t0 = surge(s, a)
    wait_for(lambda: len(s.edge.commands_for(a, c.PlanBody)) > before, timeout_s=PLAN_INTERVAL_S,
             what="a plan for the surging intersection")
    took_s = time.monotonic() - t0
    health = traffic(s)
    assert health["surge_replans"] == 1
    assert health["plan_steps"] == step, "it came from the surge, not from a plan step"
    assert took_s < 1.5
    new = s.edge.commands_for(a, c.PlanBody)[-1].body
    assert isinstance(new, c.PlanBody) and abs(sum(new.splits_s) - new.cycle_s) < 1e-6
    # Its record says adaptive, like any plan the core made.
    wait_for(lambda: s.rows("SELECT source FROM traffic_plan WHERE cmd_id = %s",
                            s.edge.commands_for(a, c.PlanBody)[-1].cmd_id) == [("adaptive",)],
             what="the surge plan stored")

    # A second, bigger surge within surge_gap_s on the same intersection: no surge re-plan
    # (plan steps still send what they compute)…
    step = settled(s)
    surge(s, a, 2 * SURGE_VEH_S)
    time.sleep(0.8 * PLAN_INTERVAL_S - 0.5)
    assert traffic(s)["surge_replans"] == 1
    # …while another intersection's surge still gets one.
    step = settled(s)
    before, _ = surge(s, b)
    wait_for(lambda: traffic(s)["surge_replans"] == 2, timeout_s=PLAN_INTERVAL_S,
             what="a surge re-plan of the other intersection")
    assert len(s.edge.commands_for(b, c.PlanBody)) > before


@EMBEDDED_ONLY
def test_no_surge_replan_from_a_faulty_loop_or_when_switched_off(
        make_setup: Callable[..., Setup]) -> None:  # noqa: F811 (the fixture)
    s = make_setup(plan_interval_s=PLAN_INTERVAL_S)
    # The control room with surge re-plans off, started now: it warms up while s is tested.
    off = make_setup(plan_interval_s=PLAN_INTERVAL_S, surge_replan=False)
    a, _ = s.ids
    settled(s)
    # The loops report a fault while they count a flood: bad input, nothing re-planned.
    s.edge.faults[a] = [True, True]
    surge(s, a, 2 * SURGE_VEH_S)
    time.sleep(0.8 * PLAN_INTERVAL_S)
    assert traffic(s)["surge_replans"] == 0

    x, _ = off.ids
    step = settled(off)
    before, _ = surge(off, x)
    # Only the next plan step answers the surge.
    wait_for(lambda: len(off.edge.commands_for(x, c.PlanBody)) > before,
             timeout_s=3 * PLAN_INTERVAL_S, what="a plan after the surge")
    health = traffic(off)
    assert health["surge_replans"] == 0 and health["plan_steps"] > step
