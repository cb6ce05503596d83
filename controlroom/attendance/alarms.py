"""Which attendance-machine alarms hold now, from the registry rows: a pure function.

Owns the alarm codes, their severities, thresholds and texts; it must not read or write
storage (the service passes rows in and hands the conditions to `AttendanceStore`).
Codes are stable identifiers for dashboards and translations. Texts are Bahasa Indonesia
first (BKPSDM and the technicians read them), then English.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlroom.attendance.store import AlarmCondition


class MachineAlarm(enum.StrEnum):
    OFFLINE = "machine_offline"
    CAPACITY = "machine_capacity"
    CLOCK_DRIFT = "machine_clock_drift"
    UNKNOWN_USERS = "machine_unknown_users"


SEVERITY: dict[MachineAlarm, str] = {
    MachineAlarm.OFFLINE: "critical",
    MachineAlarm.CAPACITY: "warning",
    MachineAlarm.CLOCK_DRIFT: "warning",
    MachineAlarm.UNKNOWN_USERS: "info",
}


@dataclass(frozen=True)
class AlarmThresholds:
    # A machine not reported for this long is offline even if its last report said online
    # (the edge itself may be gone).
    stale_after_s: float = 300.0
    # Share of the punch or user capacity in use above which the buffer must be emptied
    # soon: a full machine stops recording (or overwrites, by model) and punches are lost.
    capacity_share: float = 0.8
    # Clock error above which punches land on the wrong minute of lateness rules.
    clock_drift_s: float = 60.0


def machine_conditions(machines: Sequence[Mapping[str, Any]],
                       unknown: Mapping[str, Mapping[str, Any]], now: datetime,
                       thresholds: AlarmThresholds = AlarmThresholds()) -> list[AlarmCondition]:
    """Alarm conditions for registry rows (`AttendanceStore.machines()`) and the per-machine
    unknown-user counts (`AttendanceStore.unknown_users()`)."""
    out: list[AlarmCondition] = []

    def hold(code: MachineAlarm, sn: str, text: str, subject: str = "", **data: Any) -> None:
        out.append(AlarmCondition(code.value, sn, SEVERITY[code], text, subject, data))

    for m in machines:
        sn = m["device_sn"]
        age_s = (now - m["last_seen"]).total_seconds()
        if not m["online"] or age_s > thresholds.stale_after_s:
            why = m.get("last_error") or (f"tidak ada laporan {age_s:.0f} s / no report for "
                                          f"{age_s:.0f} s" if m["online"] else "")
            hold(MachineAlarm.OFFLINE, sn,
                 f"Mesin absensi {sn} offline sejak {m['status_since']:%Y-%m-%d %H:%M} / "
                 f"attendance machine {sn} offline" + (f": {why}" if why else ""),
                 since=m["status_since"].isoformat(), reason=why)
            continue  # what an offline machine last said is not news
        for kind, used, cap in (("punches", m.get("punches"), m.get("punches_capacity")),
                                ("users", m.get("users"), m.get("users_capacity"))):
            if used is not None and cap and used / cap > thresholds.capacity_share:
                pct = 100.0 * used / cap
                hold(MachineAlarm.CAPACITY, sn,
                     f"Memori {'log absensi' if kind == 'punches' else 'pengguna'} mesin {sn} "
                     f"terisi {pct:.0f} % ({used}/{cap}) / {kind} memory {pct:.0f} % full",
                     subject=kind, used=used, capacity=cap)
        drift = m.get("clock_drift_s")
        if drift is not None and abs(drift) > thresholds.clock_drift_s:
            hold(MachineAlarm.CLOCK_DRIFT, sn,
                 f"Jam mesin {sn} selisih {drift:+.0f} s / machine clock off by {drift:+.0f} s",
                 drift_s=drift)
    for sn, u in sorted(unknown.items()):
        ids = ", ".join(u["user_ids"])
        hold(MachineAlarm.UNKNOWN_USERS, sn,
             f"{u['punches']} absensi dari ID pengguna tak dikenal di mesin {sn} ({ids}) / "
             f"{u['punches']} punches by unknown user ids", punches=u["punches"],
             user_ids=list(u["user_ids"]))
    return out
