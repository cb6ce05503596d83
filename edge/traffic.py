"""Intersection readings → contract payloads: telemetry per report, events on change.

Pure: no I/O, no threads, no clock. It reads any snapshot with the fields of
``IntersectionReading`` (the simulated intersection, a Modbus controller's reading from
``edge.controllers``) and remembers, per intersection, what it last reported so each change
yields one event. A real controller also reports alarm bits; ``IntersectionWatch.alarms`` turns
their edges into fallback, conflict and controller-alarm events. ``ReportGate`` decides which
scans of a controller become telemetry (one per report interval, early for a demand jump).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from pydantic import ValidationError

from edge.contract import EventKind, TrafficEvent, TrafficTelemetry, UnitMode

Severity = Literal["info", "warning", "critical"]


class IntersectionReading(Protocol):
    """What a controller snapshot must offer; values use the contract's spellings."""

    @property
    def mode(self) -> str: ...
    @property
    def plan(self) -> int | None: ...
    @property
    def cycle_timer_s(self) -> float | None: ...
    @property
    def signal(self) -> Sequence[str]: ...
    @property
    def det_count(self) -> Sequence[int]: ...
    @property
    def det_occupancy_pct(self) -> Sequence[float]: ...
    @property
    def det_fault(self) -> Sequence[bool]: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """An ``IntersectionReading`` as a value: what the agent builds from other readings (camera
    zones laid over a controller's, the scans of one report interval)."""

    mode: str
    plan: int | None
    cycle_timer_s: float | None
    signal: tuple[str, ...]
    det_count: tuple[int, ...]
    det_occupancy_pct: tuple[float, ...]
    det_fault: tuple[bool, ...]


class ReadingError(ValueError):
    """A device reading that the contract cannot express (a driver bug or a garbled device)."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """Who sends, in which run, which message of that run (``EdgeMessage``'s fields)."""

    edge_id: str
    epoch: int
    seq: int
    ts: datetime

    def fields(self) -> dict[str, object]:
        return {"edge_id": self.edge_id, "epoch": self.epoch, "seq": self.seq, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it is stamped and sent."""

    kind: EventKind
    severity: Severity
    detail: str
    data: dict[str, str | int | float | bool | None] = field(default_factory=dict)

    def payload(self, intersection_id: str, stamp: Stamp) -> TrafficEvent:
        return TrafficEvent(**stamp.fields(), intersection_id=intersection_id, kind=self.kind,
                            severity=self.severity, detail=self.detail, data=self.data)


def telemetry(intersection_id: str, reading: IntersectionReading, stamp: Stamp) -> TrafficTelemetry:
    """One telemetry payload from one reading; raises ReadingError if the reading is out of contract."""
    try:
        return TrafficTelemetry(
            **stamp.fields(),
            intersection_id=intersection_id,
            mode=reading.mode,
            plan=reading.plan,
            cycle_timer_s=reading.cycle_timer_s,
            signal=tuple(reading.signal),
            det_count=tuple(reading.det_count),
            det_occupancy_pct=tuple(reading.det_occupancy_pct),
            det_fault=tuple(reading.det_fault),
        )
    except ValidationError as exc:
        raise ReadingError(f"intersection {intersection_id}: reading does not fit the contract: "
                           f"{exc.errors(include_url=False)[0]['msg']}") from exc


# Severity of entering a mode: flash or off means the street has lost its signal plan.
_MODE_SEVERITY: dict[str, Severity] = {
    UnitMode.OFF: "critical",
    UnitMode.FLASH: "warning",
}


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """How one controller alarm bit is reported when it rises and when it clears."""

    kind: EventKind
    severity: Severity  # when it rises; clearing is "info"
    raised: str
    cleared: str


# Controller alarm bits (devices.controller.registers.ALARM_BITS) → events. "detector_fault" is
# left out: each detector's own fault and recovery are reported from det_fault.
ALARM_EVENTS: dict[str, AlarmEvent] = {
    "watchdog_expired": AlarmEvent(
        EventKind.FALLBACK, "warning",
        "central watchdog expired: the controller runs its local plan from the next safe point",
        "central watchdog fed again: central control resumes at the next safe point"),
    "conflict": AlarmEvent(
        EventKind.CONFLICT, "critical",
        "conflict monitor saw conflicting greens: controller in fail-safe flash",
        "conflict alarm cleared"),
    "internal_fault": AlarmEvent(
        EventKind.CONTROLLER_ALARM, "critical",
        "controller internal (lamp or processor) fault: fail-safe flash",
        "controller internal fault cleared"),
    "power_up": AlarmEvent(
        EventKind.CONTROLLER_ALARM, "info",
        "controller restarted (power-up alarm latched until a technician clears it)",
        "power-up alarm cleared"),
}


class IntersectionWatch:
    """What was last reported for one intersection; each method returns the events of a change."""

    def __init__(self, intersection_id: str) -> None:
        self.intersection_id = intersection_id
        self._reported_available: bool | None = None
        self._mode: str | None = None
        self._faults: tuple[bool, ...] = ()
        self._alarms: frozenset[str] = frozenset()

    def availability(self, available: bool, error: str | None) -> list[EventDraft]:
        previous, self._reported_available = self._reported_available, available
        if available and previous is False:
            return [EventDraft(EventKind.DEVICE_ONLINE, "info", "controller answers again")]
        if not available and previous is not False:
            return [EventDraft(EventKind.DEVICE_OFFLINE, "critical",
                               (error or "controller does not answer")[:500])]
        return []

    def reading(self, reading: IntersectionReading) -> list[EventDraft]:
        events: list[EventDraft] = []
        mode = str(reading.mode)
        if self._mode is not None and mode != self._mode:
            events.append(EventDraft(EventKind.MODE_CHANGE, _MODE_SEVERITY.get(mode, "info"),
                                     f"mode {self._mode} → {mode}", {"from": self._mode, "to": mode}))
        self._mode = mode
        # Before the first reading every detector counts as healthy, so a fault present at
        # start-up is reported too.
        faults = tuple(bool(f) for f in reading.det_fault)
        before = self._faults + (False,) * max(0, len(faults) - len(self._faults))
        for index, (was, now) in enumerate(zip(before, faults, strict=False)):
            if now and not was:
                events.append(EventDraft(EventKind.DETECTOR_FAULT, "warning",
                                         f"detector {index + 1} reports a fault", {"detector": index + 1}))
            elif was and not now:
                events.append(EventDraft(EventKind.DETECTOR_RECOVERED, "info",
                                         f"detector {index + 1} works again", {"detector": index + 1}))
        self._faults = faults
        return events

    def alarms(self, active: Iterable[str]) -> list[EventDraft]:
        """Events for controller alarm bits that rose or cleared since the last call.

        Before the first call no alarm counts as active, so one already raised at start-up
        (a fallback in force when the agent starts) is reported too. Each event carries
        ``{"alarm": name, "active": bool}``, so the control room can raise and clear on it.
        """
        now = frozenset(a for a in active if a in ALARM_EVENTS)
        events = []
        for name, spec in ALARM_EVENTS.items():
            if name in now and name not in self._alarms:
                events.append(EventDraft(spec.kind, spec.severity, spec.raised,
                                         {"alarm": name, "active": True}))
            elif name in self._alarms and name not in now:
                events.append(EventDraft(spec.kind, "info", spec.cleared,
                                         {"alarm": name, "active": False}))
        self._alarms = now
        return events


# --------------------------------------------------------------------------- when to report

# A demand jump worth an early report: a detector counted vehicles since the last report that
# its own recent rate makes unlikely (Poisson, at most JUMP_P), at least JUMP_VEH_H above that
# rate (the control room's `surge_veh_h`: what it would re-plan for). A vehicle on an idle loop
# is one; on a busy loop one more vehicle is not, a platoon is.
JUMP_P = 0.05
JUMP_VEH_H = 1200.0
# Time constant of each detector's recent rate (vehicles per second, exponentially smoothed
# over the reports: each vehicle adds about 1/RATE_TAU_S veh/s, however the reports fall).
RATE_TAU_S = 30.0


def poisson_tail(count: int, mean: float) -> float:
    """P(N ≥ count) for N ~ Poisson(mean)."""
    if count <= 0:
        return 1.0
    term = math.exp(-mean)  # P(N = 0)
    below = term
    for k in range(1, count):
        term *= mean / k
        below += term
    return max(0.0, 1.0 - below)


@dataclass(frozen=True, slots=True)
class Report(Reading):
    """One telemetry message's reading: the newest scan's signal state and mode, each
    detector's vehicles summed over the scans since the previous report, its occupancy averaged
    over them and its fault set if any scan saw one. ``early``: sent before the report interval
    for a demand jump."""

    early: bool = False


class ReportGate:
    """Scans of one intersection → telemetry reports: one per ``interval_s``, or one at once
    when a scan shows a demand jump (see ``JUMP_P``), at most one such early report per
    ``early_gap_s`` (None: never early).

    The edge reads a controller every ``scan_s`` (a fraction of the report interval) so that a
    queue building up on a side street reaches the control room within a scan, not a whole
    report interval later, while the telemetry stays at about one message per interval: an
    early report replaces the regular one (the next is due ``interval_s`` after it), and the
    budget bounds the extra messages to one per ``early_gap_s``. Pure: ``now`` is the caller's
    monotonic clock in seconds.
    """

    def __init__(self, interval_s: float, scan_s: float, early_gap_s: float | None) -> None:
        if interval_s <= 0 or scan_s <= 0:
            raise ValueError("interval_s and scan_s must be positive")
        # A scan that lands a little early still counts as due (scans are drift-free but jitter).
        self._due_after_s = interval_s - min(scan_s, interval_s) / 2
        self._early_gap_s = early_gap_s
        self._last_report_at: float | None = None
        self._last_early_at = -math.inf
        self._rate: list[float] | None = None  # veh/s per detector, known after the first report
        self._latest: IntersectionReading | None = None
        self._count: list[int] = []
        self._occupancy_sum: list[float] = []
        self._fault: list[bool] = []
        self._scans = 0
        self.early_reports = 0

    def scan(self, reading: IntersectionReading, now: float) -> Report | None:
        """Take one scan; the report to send now, or None."""
        n = len(reading.det_count)
        if self._scans and n != len(self._count):
            self._clear()  # the detector set changed (controller swapped): start over
        if self._rate is not None and len(self._rate) != n:
            self._rate = None
        if not self._scans:
            self._count = [0] * n
            self._occupancy_sum = [0.0] * n
            self._fault = [False] * n
        for d in range(n):
            self._count[d] += int(reading.det_count[d])
            self._occupancy_sum[d] += float(reading.det_occupancy_pct[d])
            self._fault[d] = self._fault[d] or bool(reading.det_fault[d])
        self._scans += 1
        self._latest = reading
        if self._last_report_at is None:
            return self._emit(now, early=False)  # the first scan: report at once
        elapsed = now - self._last_report_at
        if elapsed >= self._due_after_s:
            return self._emit(now, early=False)
        if (self._early_gap_s is not None and now - self._last_early_at >= self._early_gap_s
                and self._jumped(elapsed)):
            self._last_early_at = now
            self.early_reports += 1
            return self._emit(now, early=True)
        return None

    def flush(self, now: float) -> Report | None:
        """What the scans since the last report counted (the device stopped answering), or
        None if there were none."""
        if not self._scans or self._latest is None:
            return None
        return self._emit(now, early=False)

    def _jumped(self, elapsed: float) -> bool:
        if self._rate is None or elapsed <= 0:
            return False
        floor = JUMP_VEH_H * elapsed / 3600.0
        for count, rate, fault in zip(self._count, self._rate, self._fault, strict=True):
            expected = rate * elapsed
            if (not fault and count >= 1 and count - expected >= floor
                    and poisson_tail(count, expected) <= JUMP_P):
                return True
        return False

    def _emit(self, now: float, *, early: bool) -> Report:
        latest = self._latest
        assert latest is not None
        report = Report(
            mode=str(latest.mode), plan=latest.plan, cycle_timer_s=latest.cycle_timer_s,
            signal=tuple(latest.signal), det_count=tuple(self._count),
            det_occupancy_pct=tuple(round(s / self._scans, 1) for s in self._occupancy_sum),
            det_fault=tuple(self._fault), early=early)
        if self._last_report_at is not None and self._rate is not None:
            elapsed = now - self._last_report_at
            if elapsed > 0:
                weight = 1.0 - math.exp(-elapsed / RATE_TAU_S)
                self._rate = [rate + (count / elapsed - rate) * weight
                              for rate, count in zip(self._rate, self._count, strict=True)]
        elif self._rate is None:
            self._rate = [0.0] * len(self._count)
        self._last_report_at = now
        self._clear()
        return report

    def _clear(self) -> None:
        self._scans = 0
        self._count, self._occupancy_sum, self._fault = [], [], []
