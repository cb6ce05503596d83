"""Which camera alarms hold now, from the registry rows: a pure function.

Owns the alarm codes, their severities, thresholds and texts; it must not read or write
storage (the service passes `CctvStore.cameras()` rows in and hands the conditions back to
the store, which opens the new ones and clears the ones that ended). Codes are stable
identifiers for dashboards and translations. Texts are Bahasa Indonesia first (the
control-room operators read them), then English, as the attendance alarms are.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlroom.cctv.store import AlarmCondition


class CameraAlarm(enum.StrEnum):
    OFFLINE = "camera_offline"
    TAMPER_BLUR = "tamper_blur"
    TAMPER_BLACKOUT = "tamper_blackout"
    TAMPER_MOVED = "tamper_moved"
    TAMPER_FROZEN = "tamper_frozen"
    CLOCK_DRIFT = "clock_drift"


SEVERITY: dict[CameraAlarm, str] = {
    CameraAlarm.OFFLINE: "critical",
    CameraAlarm.TAMPER_BLUR: "warning",
    CameraAlarm.TAMPER_BLACKOUT: "critical",
    CameraAlarm.TAMPER_MOVED: "warning",
    CameraAlarm.TAMPER_FROZEN: "critical",
    CameraAlarm.CLOCK_DRIFT: "warning",
}

# The contract's tamper names → (alarm, Bahasa Indonesia, English) for "camera {cam} …".
TAMPER: dict[str, tuple[CameraAlarm, str, str]] = {
    "blur": (CameraAlarm.TAMPER_BLUR, "gambar kabur (lensa kotor, berembun atau tidak fokus)",
             "picture blurred (dirty, misted or unfocused lens)"),
    "blackout": (CameraAlarm.TAMPER_BLACKOUT, "gambar gelap (kamera tertutup atau tanpa sinyal)",
                 "picture blacked out (camera covered or no signal)"),
    "moved": (CameraAlarm.TAMPER_MOVED, "arah pandang bergeser dari posisi acuan",
              "view moved off its reference"),
    "frozen": (CameraAlarm.TAMPER_FROZEN, "gambar membeku (video tidak berganti)",
               "picture frozen (video not changing)"),
}


@dataclass(frozen=True)
class AlarmThresholds:
    # A camera whose status has not been reported for this long is offline even if its last
    # report said reachable (the edge itself may be gone); also a listed camera that never
    # reported.
    stale_after_s: float = 120.0
    # Camera clock error above which recorded video and events carry the wrong time (evidence
    # for enforcement needs the right minute).
    clock_drift_s: float = 10.0


def _label(row: Mapping[str, Any]) -> str:
    name = row.get("name") or ""
    return f"{row['camera_id']} ({name})" if name else str(row["camera_id"])


def camera_conditions(cameras: Sequence[Mapping[str, Any]], now: datetime,
                      thresholds: AlarmThresholds = AlarmThresholds()) -> list[AlarmCondition]:
    """Alarm conditions for registry rows (`CctvStore.cameras()`): camera_id, name, edge_id,
    reachable (None: never reported), last_status_at, inventory_at, first_seen_at,
    status_since, tampers,
    clock_offset_s, error, edge_online (None: edge never announced)."""
    out: list[AlarmCondition] = []

    def hold(code: CameraAlarm, row: Mapping[str, Any], text: str, **data: Any) -> None:
        out.append(AlarmCondition(code.value, row["camera_id"], SEVERITY[code], text, data))

    for row in cameras:
        cam = _label(row)
        last = row.get("last_status_at")
        # A listed camera's silence counts from the birth that listed it (edge time, like
        # status times), else from when the control room first saw it.
        since = last or row.get("inventory_at") or row["first_seen_at"]
        age_s = (now - since).total_seconds()
        if row.get("edge_online") is False:
            hold(CameraAlarm.OFFLINE, row,
                 f"Kamera {cam} offline: edge {row['edge_id']} tidak terhubung / camera {cam} "
                 f"offline: edge {row['edge_id']} is offline",
                 reason="edge_offline", edge_id=row["edge_id"])
            continue  # what an offline camera last said is not news
        if row.get("reachable") is None:
            if age_s > thresholds.stale_after_s:
                hold(CameraAlarm.OFFLINE, row,
                     f"Kamera {cam} belum pernah melapor dalam {age_s:.0f} s / camera {cam} has "
                     f"not reported for {age_s:.0f} s since its edge listed it",
                     reason="never_reported", age_s=round(age_s, 1))
            continue
        if age_s > thresholds.stale_after_s:
            hold(CameraAlarm.OFFLINE, row,
                 f"Kamera {cam} tidak ada laporan {age_s:.0f} s / camera {cam}: no status for "
                 f"{age_s:.0f} s", reason="stale", age_s=round(age_s, 1))
            continue
        if not row["reachable"]:
            why = row.get("error") or ""
            started = row.get("status_since") or since
            hold(CameraAlarm.OFFLINE, row,
                 f"Kamera {cam} tidak dapat dihubungi sejak {started:%Y-%m-%d %H:%M} / camera "
                 f"{cam} unreachable" + (f": {why}" if why else ""),
                 reason="unreachable", error=why, since=started.isoformat())
            continue
        for tamper in dict.fromkeys(row.get("tampers") or ()):
            entry = TAMPER.get(tamper)
            if entry is None:
                continue  # the contract allows only the four; the registry holds what it sent
            code, text_id, text_en = entry
            hold(code, row, f"Kamera {cam}: {text_id} / camera {cam}: {text_en}", tamper=tamper)
        offset = row.get("clock_offset_s")
        if offset is not None and abs(offset) > thresholds.clock_drift_s:
            hold(CameraAlarm.CLOCK_DRIFT, row,
                 f"Jam kamera {cam} selisih {offset:+.0f} s / camera {cam} clock off by "
                 f"{offset:+.0f} s", offset_s=offset)
    return out
