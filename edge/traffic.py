"""Intersection readings → contract payloads: one TrafficTelemetry per poll, events on change.

Pure: no I/O, no threads, no clock. It reads any snapshot with the fields of
``IntersectionReading`` (the simulated intersection, a Modbus controller's reading from
``edge.controllers``) and remembers, per intersection, what it last reported so each change
yields one event. A real controller also reports alarm bits; ``IntersectionWatch.alarms`` turns
their edges into fallback, conflict and controller-alarm events.
"""

from __future__ import annotations

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
