"""SUMO in the loop: the demo city's lights run by emulated controllers, probed over Modbus.

Each test starts a ``CityWorld`` on the demo city (written once per module), steps SUMO at full
speed on the ManualClock the world advances, and talks to the controllers with the real driver
(``ControllerClient``, pymodbus) on loopback, as an edge agent would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.controller.driver import ControllerClient
from devices.controller.registers import CommandResult, DetectorStatus, Interval, UnitMode
from firmware_sim.controller.program import DetectorFault
from simulators.city import (
    CityFiles,
    CityOptions,
    CityWorld,
    CityWorldError,
    DemoCity,
    write_demo_city,
)
from simulators.traffic.discovery import GREEN_CHARS

BEGIN_S = 6 * 3600.0


@pytest.fixture(scope="module")
def city(sumo_ready: None, tmp_path_factory: pytest.TempPathFactory) -> CityFiles:
    return write_demo_city(tmp_path_factory.mktemp("city"), seed=3,
                           city=DemoCity(duration_s=1200.0))


@pytest.fixture
def world(city: CityFiles) -> Iterator[CityWorld]:
    with CityWorld.of_city(city, CityOptions(end_s=BEGIN_S + 900)) as w:
        yield w


def client(world: CityWorld, k: int = 0) -> ControllerClient:
    e = world.endpoints[k]
    return ControllerClient(e.host, e.port, e.unit, timeout_s=2.0)


def test_detector_counts_rise_with_sumo_vehicles(world: CityWorld) -> None:
    async def main() -> None:
        async with client(world) as c:
            before = await c.snapshot()
            world.advance(180)
            after = await c.snapshot()
        assert sum(d.volume for d in before.detectors) == 0
        volumes = [d.volume for d in after.detectors]
        assert sum(volumes) > 10
        assert sum(1 for v in volumes if v) >= 3  # several approaches, not one stuck loop
        assert after.status.mode is UnitMode.LOCAL_FIXED
        assert after.status.uptime_s >= 170  # the controller's time is SUMO's

    asyncio.run(main())


def _green_phase_shown(world: CityWorld, tls: str) -> int | None:
    state = world.sumo_states()[tls]
    sm = next(m for m in world.maps if m.tls_id == tls)
    for p, g in enumerate(sm.greens):
        if state == "".join(c if c in GREEN_CHARS else "r" for c in g.state):
            return p + 1
    return None


def test_force_and_hold_over_modbus_change_the_lamps_in_sumo(world: CityWorld) -> None:
    tls = world.endpoints[0].tls_id

    async def main() -> None:
        async with client(world) as c:
            world.advance(20)  # past the start-up flash and all-red: stage 1 green
            status = await c.status()
            assert status.interval is Interval.GREEN and status.green_mask == 0b01
            assert _green_phase_shown(world, tls) == 1
            outcome = await c.force(2)
            assert outcome.result in (CommandResult.APPLIED, CommandResult.PENDING)
            world.advance(12)  # min green 7 s, yellow 3 s, all-red 1 s
            assert (await c.status()).green_mask == 0b10
            assert _green_phase_shown(world, tls) == 2
            await c.hold(2)
            for _ in range(90):  # held well beyond its 30 s green
                world.advance(1)
                assert _green_phase_shown(world, tls) == 2
            await c.release()
            world.advance(12)
            assert _green_phase_shown(world, tls) == 1

    asyncio.run(main())


def test_sumo_never_shows_conflicting_greens(world: CityWorld) -> None:
    greens = {sm.tls_id: [g.green_links for g in sm.greens] for sm in world.maps}
    seen: list[tuple[float, str, str]] = []
    shown: dict[str, set[str]] = {tls: set() for tls in greens}

    def check(api: Any, t_s: float) -> None:
        for tls, phases in greens.items():
            state = api.trafficlight.getRedYellowGreenState(tls)
            shown[tls].add(state)
            lit = frozenset(i for i, c in enumerate(state) if c in GREEN_CHARS)
            if not any(lit <= ok for ok in phases):
                seen.append((t_s, tls, state))

    world.step_hook = check

    async def main() -> None:
        # Operators' and the core's commands in between, on every controller.
        async with client(world, 1) as c1, client(world, 2) as c2:
            world.advance(30)
            await c1.force(2)
            world.advance(40)
            await c2.flash(200)
            world.advance(40)
            await c1.hold(1, 300)
            world.advance(300)

    asyncio.run(main())
    assert world.steps >= 400
    assert seen == []
    # The check saw the real thing: every green of every light, yellows, and J3's flash.
    for tls, states in shown.items():
        lit = {frozenset(i for i, c in enumerate(st) if c in GREEN_CHARS) for st in states}
        assert set(greens[tls]) <= lit, tls
        assert any("y" in st for st in states), tls
    assert any(set(st) == {"o"} for st in shown["J3"])


def test_layout_and_edge_config_are_consistent(world: CityWorld, tmp_path: Path) -> None:
    layout = json.loads(world.write_layout(tmp_path / "layout.json").read_text("utf-8"))
    edge = json.loads(world.write_edge_config(tmp_path / "edge.json").read_text("utf-8"))
    assert layout["city"] == "Demo"
    by_id = {x["id"]: x for x in layout["intersections"]}
    assert sorted(by_id) == [f"J{k}" for k in range(1, 7)]
    assert [c["intersection_id"] for c in edge["controllers"]] == list(by_id)
    keys = {"id", "name", "x", "y", "phases", "movements", "detectors", "cycle_min_s",
            "cycle_max_s", "upstream", "travel_time_s"}
    for x in layout["intersections"]:
        assert set(x) == keys
        n_mov = len(x["movements"])
        served = set()
        for ph in x["phases"]:
            assert ph["movements"] and all(0 <= m < n_mov for m in ph["movements"])
            assert ph["yellow_s"] >= 3 and ph["all_red_s"] >= 1
            assert ph["min_green_s"] <= ph["max_green_s"]
            served |= set(ph["movements"])
        assert served == set(range(n_mov))
        assert [d["movement"] for d in x["detectors"]] == list(range(n_mov))
        for mv in x["movements"]:
            assert 3.0 <= mv["width_m"] <= 3.5
            for j, d in mv["downstream"]:
                assert j != x["id"] and 0 <= d < len(by_id[j]["detectors"])
    # The corridor J1 → J2 → J3 is coordinated; the others run free.
    assert [by_id[j]["upstream"] for j in ("J1", "J2", "J3", "J4")] == [None, "J1", "J2", None]
    assert 15 < by_id["J2"]["travel_time_s"] < 40
    assert "Sudirman" in by_id["J1"]["name"]

    async def identities() -> list[tuple[int, int]]:
        out = []
        for k in range(len(world.endpoints)):
            async with client(world, k) as c:
                ident = await c.identity()
                out.append((ident.phase_count, ident.detector_count))
        return out

    assert asyncio.run(identities()) == [
        (len(x["phases"]), len(x["detectors"])) for x in layout["intersections"]]
    for c in edge["controllers"]:
        assert c["host"] == "127.0.0.1" and c["unit"] == 1 and c["port"] > 0


def test_runs_on_its_own_thread_at_a_time_scale_and_reports_delay(city: CityFiles) -> None:
    world = CityWorld.of_city(city, CityOptions(end_s=BEGIN_S + 120, time_scale=100.0))
    world.start()
    world.run()
    assert world.wait(10.0)
    result = world.stop()
    assert result.end_s == BEGIN_S + 120 and result.steps == 120
    assert 1.0 <= result.wall_s < 5.0  # 120 s at ×100 is 1.2 s, not as fast as it goes
    assert result.metrics.vehicles > 0 and result.metrics.avg_delay_s > 0


def test_faults_on_demand_through_the_world(world: CityWorld) -> None:
    world.advance(10)
    world.on_controller("J2", lambda e: e.set_detector_fault(1, DetectorFault.STUCK_ON))
    world.advance(130)  # stuck on: continuous presence beyond 120 s

    async def main() -> None:
        async with client(world, 1) as c:
            snap = await c.snapshot()
        assert snap.detectors[0].status is DetectorStatus.STUCK_ON
        assert snap.detectors[1].status is DetectorStatus.OK

    asyncio.run(main())
    lamps = world.lamps("J1")
    assert lamps is not None and lamps.green_mask in (0, 0b01, 0b10)
    with pytest.raises(CityWorldError):
        world.lamps("J99")


def _green_runs(states: list[int | None]) -> list[tuple[int, int]]:
    """(phase, seconds) of each complete green shown, in order (first and last run dropped)."""
    runs: list[tuple[int | None, int]] = []
    for p in states:
        if runs and runs[-1][0] == p:
            runs[-1] = (p, runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return [(p, n) for p, n in runs[1:-1] if p is not None]


def test_central_plan_over_modbus_retimes_sumo_and_lapses_to_the_local_plan(
        world: CityWorld) -> None:
    from devices.controller.codec import Plan

    tls = world.endpoints[0].tls_id
    shown: list[int | None] = []

    async def main() -> None:
        async with client(world) as c:
            world.advance(20)
            plan = Plan(2, 740, 0, (0b01, 0b10), (540, 200))  # greens 50 s and 16 s
            outcome = await c.write_plan(plan)
            assert outcome.result in (CommandResult.APPLIED, CommandResult.PENDING)
            for _ in range(50):  # the central system alive: a kick every 5 s
                await c.kick_watchdog()
                for _ in range(5):
                    world.advance(1)
                    shown.append(_green_phase_shown(world, tls))
            status = await c.status()
            assert status.plan == 2 and status.mode is UnitMode.CENTRAL
            central = _green_runs(shown)
            shown.clear()
            world.advance(40)  # no kicks: the watchdog (30 s) expires, local plan at a safe point
            for _ in range(200):
                world.advance(1)
                shown.append(_green_phase_shown(world, tls))
            status = await c.status()
            assert status.plan == 1 and status.mode is UnitMode.LOCAL_FIXED
            local = _green_runs(shown)
        # Once in step with its offset, the central plan shows its 50 s / 16 s greens.
        assert set(central[-2:]) == {(1, 50), (2, 16)}, central
        # Back on the local 30 s / 30 s program (offset correction: at most 20 % a cycle).
        assert local and all(24 <= n <= 36 for _, n in local[1:]), local

    asyncio.run(main())


def test_the_control_rooms_loader_accepts_the_layout(world: CityWorld) -> None:
    """The contract between this world and the control room: its own loader and core."""
    from controlroom.traffic.layout import parse_layout

    layout, structure = parse_layout(world.layout, "city world")
    assert [x.id for x in layout.intersections] == [e.intersection_id for e in world.endpoints]
    n, p, m, d = structure.shape
    assert (n, p) == (6, 2) and m == d == max(e.detectors for e in world.endpoints)
