"""Alarms as conditions: each service tick says which conditions hold; the book opens the new
ones and clears those that stopped holding. It owns the alarm codes and their severities and
must not decide what holds (the service does) or write to storage (it returns the changes).

Codes are stable identifiers for dashboards and translations. The text is written
"Bahasa Indonesia / English" (`alarm_text`), as camera and machine alarms are, so the alarm
board shows it in the reader's language; details that come from elsewhere (an edge's reason,
a controller's error) stay as they came, in both halves.
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


# Each alarm text in Bahasa Indonesia and English; `alarm_text` fills and joins them.
TEXTS: dict[str, tuple[str, str]] = {
    "edge_offline": ("Edge {edge} tidak terhubung{why}", "edge {edge} is offline{why}"),
    "controller_offline": ("Kontroler tidak menjawab edge: {detail}",
                           "controller does not answer the edge: {detail}"),
    "no_telemetry": ("Tidak ada telemetri selama lebih dari {seconds} detik",
                     "no telemetry for more than {seconds} s"),
    "no_telemetry_yet": ("Belum ada telemetri sejak ruang kendali berjalan",
                         "no telemetry since the control room started"),
    "local_fallback": ("Kontroler menjalankan rencana lokalnya ({mode}), bukan kendali adaptif",
                       "controller runs its local plan ({mode}) instead of adaptive control"),
    "signal_flash": ("Lampu lalu lintas {mode} tanpa perintah operator",
                     "signals are {mode} without an operator's order"),
    "detector_fault": ("Detektor {detector} melaporkan gangguan; pengatur waktu tidak lagi "
                       "memakai datanya",
                       "detector {detector} reports a fault; the core no longer trusts it"),
    "layout_mismatch": ("Telemetri tidak sesuai tata letak kota: {detail}",
                        "telemetry does not match the city layout: {detail}"),
    "command_rejected": ("Edge menolak {n} perintah: {reason}",
                         "edge rejected {n} command(s): {reason}"),
    "command_unanswered": ("Perintah {cmd_id} tidak dijawab setelah {attempts} kali kirim",
                           "command {cmd_id} got no answer after {attempts} attempts"),
    "command_unconfirmed": ("Perintah {cmd_id} diterima tetapi tidak pernah dipastikan berlaku",
                            "command {cmd_id} was accepted but never confirmed applied"),
    "saturation": ("Derajat kejenuhan {ds} di atas {limit} selama {steps} langkah rencana",
                   "degree of saturation {ds} above {limit} for {steps} plan steps"),
}


def alarm_text(kind: str, **fields: object) -> str:
    """``TEXTS[kind]`` filled with ``fields``, as "Indonesian / English". A " / " inside a
    field is closed up, so the text still splits at its one separator."""
    clean = {k: str(v).replace(" / ", "/") for k, v in fields.items()}
    text_id, text_en = TEXTS[kind]
    return f"{text_id.format(**clean)} / {text_en.format(**clean)}"


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
