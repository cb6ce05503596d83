"""Readings → telemetry and events: one event per change, none while nothing changes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from edge.contract import EventKind, SignalState, UnitMode
from edge.traffic import IntersectionWatch, ReadingError, Stamp, telemetry

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
