"""Readings → telemetry and events: one event per change, none while nothing changes."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.contract import EventKind, SignalState, UnitMode
from edge.traffic import (
    IntersectionWatch,
    ReadingError,
    ReportGate,
    Stamp,
    poisson_tail,
    telemetry,
)

STAMP = Stamp("edge-1", 4, 17, datetime(2026, 11, 23, 0, 0, tzinfo=UTC))


@dataclass(frozen=True)
class Reading:
    mode: str = "local_fixed"
    plan: int | None = None
    cycle_timer_s: float | None = 12.0
    signal: tuple[str, ...] = ("G", "R")
    det_count: tuple[int, ...] = (3, 0)
    det_occupancy_pct: tuple[float, ...] = (7.5, 0.0)
    det_fault: tuple[bool, ...] = (False, False)


def kinds(drafts: list) -> list[EventKind]:
    return [d.kind for d in drafts]


def test_a_reading_becomes_stamped_telemetry() -> None:
    payload = telemetry("simpang-1", Reading(), STAMP)
    assert (payload.edge_id, payload.epoch, payload.seq) == ("edge-1", 4, 17)
    assert payload.signal == (SignalState.GREEN, SignalState.RED)
    assert payload.mode is UnitMode.LOCAL_FIXED


def test_a_reading_out_of_contract_is_a_reading_error() -> None:
    with pytest.raises(ReadingError, match="simpang-1"):
        telemetry("simpang-1", Reading(signal=("Q", "R")), STAMP)
    with pytest.raises(ReadingError):
        telemetry("simpang-1", Reading(det_fault=(False,)), STAMP)


def test_mode_changes_and_detector_faults_yield_one_event_each() -> None:
    watch = IntersectionWatch("simpang-1")
    assert watch.reading(Reading()) == []
    assert watch.reading(Reading()) == []
    drafts = watch.reading(Reading(mode="flash", det_fault=(False, True)))
    assert kinds(drafts) == [EventKind.MODE_CHANGE, EventKind.DETECTOR_FAULT]
    assert drafts[0].severity == "warning" and drafts[0].data == {"from": "local_fixed", "to": "flash"}
    assert drafts[1].data == {"detector": 2}
    assert watch.reading(Reading(mode="flash", det_fault=(False, True))) == []
    assert kinds(watch.reading(Reading(mode="flash"))) == [EventKind.DETECTOR_RECOVERED]


def test_a_fault_present_at_start_is_reported() -> None:
    watch = IntersectionWatch("simpang-1")
    assert kinds(watch.reading(Reading(det_fault=(True, False)))) == [EventKind.DETECTOR_FAULT]


def test_availability_events_on_change_only() -> None:
    watch = IntersectionWatch("simpang-1")
    assert watch.availability(True, None) == []
    offline = watch.availability(False, "DeviceUnavailable: no answer")
    assert kinds(offline) == [EventKind.DEVICE_OFFLINE] and offline[0].detail == "DeviceUnavailable: no answer"
    assert watch.availability(False, "again") == []
    assert kinds(watch.availability(True, None)) == [EventKind.DEVICE_ONLINE]
    fresh = IntersectionWatch("simpang-2")
    assert kinds(fresh.availability(False, None)) == [EventKind.DEVICE_OFFLINE], "offline from the start"


def test_event_payload_carries_the_stamp() -> None:
    [draft] = IntersectionWatch("simpang-1").reading(replace(Reading(), det_fault=(True, False)))
    event = draft.payload("simpang-1", STAMP)
    assert (event.seq, event.kind, event.intersection_id) == (17, EventKind.DETECTOR_FAULT, "simpang-1")


# --------------------------------------------------------------------------- ReportGate


def scan(gate: ReportGate, at: float, counts: tuple[int, ...] = (0, 0), **fields: object):
    return gate.scan(Reading(det_count=counts, det_occupancy_pct=(0.0,) * len(counts),
                             det_fault=(False,) * len(counts), **fields), at)  # type: ignore[arg-type]


def test_scans_between_reports_are_summed_into_one_message_per_interval() -> None:
    gate = ReportGate(interval_s=1.0, scan_s=0.25, early_gap_s=None)
    first = gate.scan(Reading(), 0.0)
    assert first is not None and first.det_count == (3, 0)  # the first scan goes out at once
    assert gate.scan(Reading(det_count=(1, 0), det_occupancy_pct=(10.0, 0.0)), 0.25) is None
    assert gate.scan(Reading(det_count=(0, 2), det_occupancy_pct=(20.0, 4.0),
                             det_fault=(False, True)), 0.5) is None
    assert gate.scan(Reading(det_count=(1, 0), det_occupancy_pct=(0.0, 0.0)), 0.75) is None
    report = gate.scan(Reading(det_count=(0, 0), det_occupancy_pct=(30.0, 0.0),
                               signal=("R", "G"), mode="central", plan=7), 0.98)
    assert report is not None and not report.early
    assert report.det_count == (2, 2)  # every vehicle once
    assert report.det_occupancy_pct == (15.0, 1.0)  # the mean of the four scans
    assert report.det_fault == (False, True)  # a fault seen on any scan
    assert (report.signal, report.mode, report.plan) == (("R", "G"), "central", 7)  # the newest
    # A scan landing a little early (jitter) still counts as due: half a scan of slack.
    assert scan(gate, 1.25) is None and scan(gate, 1.5) is None and scan(gate, 1.75) is None
    assert scan(gate, 1.87) is not None


def test_a_vehicle_on_an_idle_loop_is_reported_early_once_per_gap() -> None:
    gate = ReportGate(interval_s=1.0, scan_s=0.25, early_gap_s=5.0)
    assert scan(gate, 0.0) is not None and scan(gate, 0.25) is None
    early = scan(gate, 0.5, (1, 0))  # 1 vehicle over a rate of 0: a jump
    assert early is not None and early.early and early.det_count == (1, 0)
    assert gate.early_reports == 1
    # The next regular report is due an interval after the early one.
    assert scan(gate, 0.75, (0, 1)) is None  # a jump too, but the budget is spent
    assert scan(gate, 1.0) is None and scan(gate, 1.25) is None
    regular = scan(gate, 1.5)
    assert regular is not None and not regular.early and regular.det_count == (0, 1)
    # Five seconds after the first early report the next may go, not before.
    assert all(scan(gate, t) is not None for t in (2.5, 3.5, 4.5))
    assert scan(gate, 4.75, (0, 1)) is None  # 4.25 s after the first
    assert scan(gate, 5.5) is not None
    again = scan(gate, 5.75, (0, 1))
    assert again is not None and again.early
    assert gate.early_reports == 2


def test_a_busy_loop_needs_more_than_its_own_rate_to_jump() -> None:
    gate = ReportGate(interval_s=1.0, scan_s=0.25, early_gap_s=1.0)
    t = 0.0
    for _ in range(60):  # a vehicle a second for a minute: the rate learns ~0.86 veh/s
        assert scan(gate, t, (1, 0)) is not None
        assert scan(gate, t + 0.25) is None and scan(gate, t + 0.5) is None
        assert scan(gate, t + 0.75) is None
        t += 1.0
    assert scan(gate, t) is not None
    # At that rate one vehicle in a quarter second is ordinary (P = 0.19); three in half a
    # second are not (P = 0.01).
    assert scan(gate, t + 0.25, (1, 0)) is None
    jump = scan(gate, t + 0.5, (2, 0))
    assert jump is not None and jump.early and jump.det_count == (3, 0)


def test_poisson_tail_by_hand() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 0.0) == 0.0
    assert poisson_tail(1, 0.216) == pytest.approx(1 - math.exp(-0.216))
    assert poisson_tail(2, 0.216) == pytest.approx(1 - math.exp(-0.216) * 1.216)
    assert poisson_tail(3, 2.0) == pytest.approx(1 - math.exp(-2.0) * (1 + 2 + 2))


def test_a_faulty_loop_never_reports_early() -> None:
    gate = ReportGate(interval_s=1.0, scan_s=0.25, early_gap_s=1.0)
    assert scan(gate, 0.0) is not None
    assert gate.scan(Reading(det_count=(5, 0), det_fault=(True, False)), 0.25) is None


def test_flush_sends_what_the_scans_counted_and_a_new_detector_set_starts_over() -> None:
    gate = ReportGate(interval_s=1.0, scan_s=0.25, early_gap_s=None)
    assert gate.flush(0.0) is None  # nothing scanned
    assert scan(gate, 0.0) is not None and gate.flush(0.1) is None
    assert scan(gate, 0.25, (1, 1)) is None
    flushed = gate.flush(0.4)
    assert flushed is not None and flushed.det_count == (1, 1)
    assert gate.flush(0.5) is None
    assert scan(gate, 0.5, (2, 2)) is None
    # A controller with three detectors now: the two-detector scans are not mixed in.
    assert scan(gate, 0.75, (0, 0, 4)) is None
    report = scan(gate, 1.5, (0, 0, 0))
    assert report is not None and report.det_count == (0, 0, 4)


@given(st.lists(st.tuples(st.floats(0.05, 0.6), st.integers(0, 3), st.integers(0, 3)),
                min_size=1, max_size=80),
       st.sampled_from([None, 0.5, 5.0]))
def test_every_scanned_vehicle_is_reported_exactly_once(
        steps: list[tuple[float, int, int]], early_gap_s: float | None) -> None:
    gate = ReportGate(interval_s=1.0, scan_s=0.25, early_gap_s=early_gap_s)
    t, scanned, reported, last = 0.0, [0, 0], [0, 0], -1.0
    for dt, a, b in steps:
        t += dt
        scanned[0] += a
        scanned[1] += b
        report = scan(gate, t, (a, b))
        if report is not None:
            reported = [reported[0] + report.det_count[0], reported[1] + report.det_count[1]]
            # Never two regular reports closer than the interval less half a scan.
            assert report.early or last < 0 or t - last >= 0.875 - 1e-9
            last = t
        else:
            assert t - last < 0.875 + 1e-9  # not due yet
    tail = gate.flush(t)
    if tail is not None:
        reported = [reported[0] + tail.det_count[0], reported[1] + tail.det_count[1]]
    assert reported == scanned
