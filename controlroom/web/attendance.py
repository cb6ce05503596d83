"""The attendance part of the control room's API: machines, their alarms, and the raw punches.

Reads `AttendanceStore` only; it never talks to a machine (commands to machines go through the
office edge). Machines and alarms are open like the rest of the status API; raw punches are
personal data of civil servants, so they need a log-in or an `X-API-Key` (any role).
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from controlroom.attendance.store import AttendanceStore
from controlroom.traffic.access import Operator
from controlroom.web.keys import Gate


def attendance_router(store: AttendanceStore, gate: Gate, *, stale_after_s: float,
                      jsonable: Callable[[dict[str, Any]], dict[str, Any]]) -> APIRouter:
    router = APIRouter(prefix="/api/attendance", tags=["attendance"])

    reader = gate.reader("punches are personal data")

    @router.get("/machines", summary="Every attendance machine: online (reported within "
                "stale_after_s), memory used, clock drift, open alarms")
    def get_machines() -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        open_alarms: dict[str, int] = {}
        for alarm in store.alarms():
            open_alarms[alarm["device_sn"]] = open_alarms.get(alarm["device_sn"], 0) + 1
        out = []
        for row in store.machines():
            fresh = now - row["last_seen"] <= timedelta(seconds=stale_after_s)
            used = (100.0 * row["punches"] / row["punches_capacity"]
                    if row["punches"] is not None and row["punches_capacity"] else None)
            out.append({**jsonable(row), "online": bool(row["online"] and fresh),
                        "reported_online": row["online"], "punches_used_pct": used,
                        "open_alarms": open_alarms.get(row["device_sn"], 0)})
        return out

    @router.get("/alarms", summary="Attendance machine alarms (state=all: history too), newest first")
    def get_alarms(state: Literal["open", "all"] = "open", machine: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[dict[str, Any]]:
        return [jsonable(a) for a in store.alarms(open_only=state == "open", device_sn=machine,
                                                  limit=limit)]

    @router.get("/punches", summary="Raw punches as the machines recorded them, oldest first "
                "(any role)")
    def get_punches(operator: Annotated[Operator, Depends(reader)], machine: str | None = None,
                    user: str | None = None, since: datetime | None = None,
                    until: datetime | None = None,
                    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000) -> list[dict[str, Any]]:
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"{name} needs a zone, e.g. 2026-11-23T00:00:00+07:00")
        rows = store.punches(device_sn=machine, user_id=user, since=since, until=until,
                             limit=limit)
        return [{**jsonable(r), "local_ts": r["local_ts"].isoformat()} for r in rows]

    return router
