"""The pure parts of the controller path: plan conversion and safety, counts, alarm events,
control-room liveness, settings, the status file and its table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from devices.controller.codec import Identity, PhaseTiming
from devices.controller.registers import CommandCode
from edge.contract import EventKind, OverrideBody, PlanBody
from edge.controllers import (
    CommandRefused,
    ControllerReading,
    CountTracker,
    TakenCounts,
    plan_from_body,
    prepare,
)
from edge.liveness import ControlRoomLiveness
from edge.settings import EdgeSettings
from edge.status import StatusError, read_status, render, write_status
from edge.traffic import IntersectionWatch

IDENT = Identity("Kota Pintar", "SIM-ATCS", "1.0.0", "KP-1", 4, 8,
                 conflicts=Identity.all_conflicting(4))
TIMING = (PhaseTiming(min_green_ds=50, max_green_ds=600, yellow_ds=30, all_red_ds=10),) * 4


def body(splits: tuple[float, ...], cycle: float | None = None, offset: float = 0) -> PlanBody:
    return PlanBody(plan=5, cycle_s=sum(splits) if cycle is None else cycle, offset_s=offset,
                    splits_s=splits)


def test_a_plan_body_is_one_stage_per_phase_in_deciseconds() -> None:
    plan = plan_from_body(body((12, 10, 9, 9), offset=3.5), IDENT)
    assert plan.stages == (1, 2, 4, 8) and plan.splits_ds == (120, 100, 90, 90)
    assert (plan.number, plan.cycle_ds, plan.offset_ds) == (5, 400, 35)


def test_splits_are_rounded_to_add_up_to_the_cycle() -> None:
    plan = plan_from_body(body((33.33, 33.33, 16.67, 16.67), cycle=100), IDENT)
    assert sum(plan.splits_ds) == plan.cycle_ds == 1000
    with pytest.raises(CommandRefused, match="SPLITS_NOT_CYCLE"):
        plan_from_body(body((10, 10, 10, 10), cycle=50), IDENT)
    with pytest.raises(CommandRefused, match="3 splits for a 4-phase controller"):
        plan_from_body(body((10, 10, 20)), IDENT)


def test_unsafe_commands_are_refused_with_the_controllers_reason() -> None:
    with pytest.raises(CommandRefused, match="MIN_GREEN"):
        prepare(body((8, 12, 10, 10)), IDENT, TIMING)  # 8 s split: 4 s green < 5 s
    with pytest.raises(CommandRefused, match="CYCLE_OUT_OF_RANGE"):
        prepare(body((6, 6, 6, 6)), IDENT, TIMING)
    with pytest.raises(CommandRefused, match="needs a phase"):
        prepare(OverrideBody(action="hold"), IDENT, TIMING)
    with pytest.raises(CommandRefused, match="UNKNOWN_PHASE"):
        prepare(OverrideBody(action="force", phase=6), IDENT, TIMING)
    assert prepare(OverrideBody(action="hold", phase=2), IDENT, TIMING).code is CommandCode.HOLD
    assert prepare(body((12, 10, 9, 9)), IDENT, TIMING).plan is not None


def test_counts_are_deltas_of_the_wrapping_counters_without_bursts() -> None:
    counts = CountTracker()
    assert counts.counts((100, 65535), 10) == (0, 0)  # no baseline yet
    assert counts.counts((103, 2), 11) == (3, 3)  # the second counter wrapped
    assert counts.counts((1, 0), 1) == (0, 0)  # the controller restarted
    counts.reset()
    assert counts.counts((9, 9), 5) == (0, 0)
    assert counts.counts((12, 10), 6) == (3, 1)
    assert counts.totals == (6, 4)  # 3 + 0 + 3 and 3 + 0 + 1: resets add nothing
    assert counts.counts((1, 2, 3), 7) == (0, 0, 0) and counts.totals == (0, 0, 0)


def controller_reading(counts: tuple[int, ...], totals: tuple[int, ...]) -> ControllerReading:
    return ControllerReading("central", 5, 0.0, ("G", "R"), counts, (0.0,) * len(counts),
                             (False,) * len(counts), "normal", frozenset(), 1, None, 30.0, 100,
                             det_total=totals)


def test_a_poll_the_publisher_skipped_loses_no_vehicle_and_none_is_counted_twice() -> None:
    taken = TakenCounts()
    assert taken.take(controller_reading((2, 0), (2, 0))).det_count == (2, 0)
    # Two polls counted (1, 1) and (0, 3); the publisher lagged and took only the second.
    assert taken.take(controller_reading((0, 3), (3, 4))).det_count == (1, 4)
    # The same reading taken twice (a listener call that ran late): nothing the second time.
    assert taken.take(controller_reading((0, 3), (3, 4))).det_count == (0, 0)
    # Another detector set: its totals count from zero.
    assert taken.take(controller_reading((1, 1, 1), (1, 1, 1))).det_count == (1, 1, 1)


def test_alarm_edges_become_fallback_conflict_and_alarm_events() -> None:
    watch = IntersectionWatch("s1")
    first = watch.alarms({"power_up", "detector_fault"})
    assert [(d.kind, d.data) for d in first] == [
        (EventKind.CONTROLLER_ALARM, {"alarm": "power_up", "active": True})]
    assert watch.alarms({"power_up"}) == []
    [fallback] = watch.alarms({"power_up", "watchdog_expired"})
    assert fallback.kind is EventKind.FALLBACK and fallback.severity == "warning"
    [back] = watch.alarms({"power_up"})
    assert back.kind is EventKind.FALLBACK and back.data == {"alarm": "watchdog_expired", "active": False}
    [conflict] = watch.alarms({"power_up", "conflict"})
    assert conflict.kind is EventKind.CONFLICT and conflict.severity == "critical"


def test_the_control_room_is_alive_only_online_recent_and_on_this_connection() -> None:
    now = [100.0]
    live = ControlRoomLiveness(10, clock=lambda: now[0])
    assert not live.verdict(True, 1).alive  # nothing heard yet
    live.state(True, 1)
    assert live.verdict(True, 1).alive
    assert live.verdict(False, 1).reason == "broker link down"
    assert not live.verdict(True, 2).alive  # a new connection waits for the retained state
    now[0] += 11
    assert "silent" in live.verdict(True, 1).reason
    live.heard()  # a command counts
    assert live.verdict(True, 1).alive
    live.state(False, 1)
    assert live.verdict(True, 1).reason == "control room offline"


def test_controller_settings_are_checked() -> None:
    ok = EdgeSettings(controllers=[{"intersection_id": "a", "host": "10.0.0.5"}])
    assert ok.simulated == [] and ok.controllers[0].port == 502
    with pytest.raises(ValidationError, match="unique"):
        EdgeSettings(controllers=[{"intersection_id": "a", "host": "h"}],
                     simulated=[{"intersection_id": "a"}])
    with pytest.raises(ValidationError, match="two controllers at one address"):
        EdgeSettings(controllers=[{"intersection_id": "a", "host": "h"},
                                  {"intersection_id": "b", "host": "h"}])
    with pytest.raises(ValidationError, match="twice poll_interval_s"):
        EdgeSettings(controllers=[{"intersection_id": "a", "host": "h", "watchdog_timeout_s": 1,
                                   "poll_interval_s": 1}])
    with pytest.raises(ValidationError, match="extra"):
        EdgeSettings(controllers=[{"intersection_id": "a", "host": "h", "slave": 1}])
    # Read four times a second by default, or every poll if polls are faster; never slower.
    assert ok.controllers[0].scan_s == 0.25 and ok.controllers[0].early_report_gap_s == 5.0
    fast = EdgeSettings(controllers=[{"intersection_id": "a", "host": "h", "poll_interval_s": 0.1}])
    assert fast.controllers[0].scan_s == 0.1
    with pytest.raises(ValidationError, match="must not exceed poll_interval_s"):
        EdgeSettings(controllers=[{"intersection_id": "a", "host": "h", "scan_interval_s": 2}])


def test_the_status_file_is_fresh_or_refused(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with pytest.raises(StatusError, match="not running"):
        read_status(tmp_path, now)
    device = {"kind": "controller", "available": False, "address": "10.0.0.5:502 unit 1",
              "model": "Kota Pintar SIM-ATCS", "firmware": "1.0.0", "mode": "central",
              "mode_reason": "normal", "plan": 7, "last_ok_at": (now - timedelta(seconds=4)).isoformat(),
              "consecutive_errors": 3, "failing_since": (now - timedelta(seconds=3)).isoformat(),
              "first_error": "ControllerConnectionError: cannot connect to controller 10.0.0.5:502",
              "last_error": "ControllerTimeout: no answer",
              "watchdog": {"feeding": False, "left_s": 12.5, "expired": False},
              "reads_every_s": 0.25, "reports_every_s": 1.0, "early_reports": 4}
    write_status(tmp_path, {"edge_id": "e1", "pid": 1, "host": "elsewhere",
                            "written_at": now.isoformat(), "stale_after_s": 5,
                            "devices": {"simpang-1": device}})
    data = read_status(tmp_path, now + timedelta(seconds=1))
    table = render(data, now)
    assert "simpang-1" in table and "OFFLINE central" in table and "NOT feeding" in table
    assert "ControllerTimeout: no answer" in table and " 3 " in table
    assert "failing since 3.0 s ago: ControllerConnectionError: cannot connect" in table
    assert "READ / REPORT" in table and "0.25 s / 1 s (4 early)" in table
    with pytest.raises(StatusError, match="stale"):
        read_status(tmp_path, now + timedelta(seconds=6))


def test_kota_edge_status_finds_the_state_dir_through_the_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import platform

    from kota.cli import main

    state_dir = tmp_path / "state"
    config = tmp_path / "kota.toml"
    config.write_text(f'[edge]\nedge_id = "e9"\nstate_dir = "{state_dir}"\n')
    assert main(["edge", "status", "--config", str(config)]) == 1
    assert "not running" in capsys.readouterr().err
    now = datetime.now(UTC)
    write_status(state_dir, {"edge_id": "e9", "pid": os.getpid(), "host": platform.node(),
                             "written_at": now.isoformat(), "stale_after_s": 5, "devices": {}})
    assert main(["edge", "status", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("edge e9")
    assert main(["--config", str(config), "edge", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is True
