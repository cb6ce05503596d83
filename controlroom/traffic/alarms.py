"""Alarms as conditions: each service tick says which conditions hold; the book opens the new
ones and clears those that stopped holding. It owns the alarm codes and their severities and
must not decide what holds (the service does) or write to storage (it returns the changes).

Codes are stable identifiers for dashboards and translations; the text is English for now.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controlroom.storage.store import AlarmKey, AlarmRecord, TrafficWrites


class AlarmCode(enum.StrEnum):
    EDGE_OFFLINE = "edge_offline"
    CONTROLLER_OFFLINE = "controller_offline"
    LOCAL_FALLBACK = "local_fallback"
    SIGNAL_FLASH = "signal_flash"
    DETECTOR_FAULT = "detector_fault"
    LAYOUT_MISMATCH = "layout_mismatch"
    COMMAND_REJECTED = "command_rejected"
    COMMAND_UNANSWERED = "command_unanswered"
    SATURATION = "saturation"


SEVERITY: dict[AlarmCode, str] = {
    AlarmCode.EDGE_OFFLINE: "critical",
    AlarmCode.CONTROLLER_OFFLINE: "critical",
    AlarmCode.LOCAL_FALLBACK: "warning",
    AlarmCode.SIGNAL_FLASH: "critical",
    AlarmCode.DETECTOR_FAULT: "warning",
    AlarmCode.LAYOUT_MISMATCH: "warning",
    AlarmCode.COMMAND_REJECTED: "warning",
    AlarmCode.COMMAND_UNANSWERED: "warning",
    AlarmCode.SATURATION: "warning",
}


@dataclass(frozen=True)
class Condition:
    code: AlarmCode
    intersection_id: str
    text: str
    subject: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> AlarmKey:
        return AlarmKey(self.code.value, self.intersection_id, self.subject)


class AlarmBook:
    """The open alarms, by key; `update` turns this tick's conditions into opens and clears."""

    def __init__(self, open_keys: set[AlarmKey] | None = None) -> None:
        self.open: set[AlarmKey] = set(open_keys or ())

    def update(self, conditions: list[Condition], at: datetime, writes: TrafficWrites) -> None:
        holding = {c.key: c for c in conditions}
        for key, c in holding.items():
            if key not in self.open:
                writes.alarms_opened.append(AlarmRecord(key, SEVERITY[c.code], c.text, at, c.data))
                self.open.add(key)
        for key in sorted(self.open - holding.keys(), key=lambda k: (k.code, k.intersection_id, k.subject)):
            writes.alarms_cleared.append((key, at))
            self.open.discard(key)
