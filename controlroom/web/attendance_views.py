"""What the BKPSDM clerk's attendance page reads beyond the recap: today's presence per SKPD
and punches per machine, the rules in force (TL/PSW/TK brackets, leave types), leave records
to revoke, and the SIMPEG sync (its last pulls and uploads, and a round run now).

Reads through `Payroll`, `AttendanceStore` and the payroll round (`PayrollJob`); it never
writes SQL nor judges a day itself (presence.py runs the engine). Everything here is personal
data, so every endpoint needs a log-in or an `X-API-Key`; running a sync needs the bkpsdm or
admin role, is audited under the user's name with the round's outcome, and a refusal is
audited too (as payroll.py does).
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from controlroom.attendance.payroll import Payroll, PayrollInputError, month_bounds
from controlroom.attendance.payroll_job import PayrollJob, RoundBusy
from controlroom.attendance.presence import as_json, presence_on
from controlroom.attendance.store import AttendanceStore
from controlroom.traffic.access import Operator
from controlroom.web.keys import Gate
from controlroom.web.payroll import clerk_dependency

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
SYNC_ACTIONS = ("simpeg_pulled", "recap_uploaded", "simpeg_sync_requested")


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=300, description="Why now, for the audit log.")


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def attendance_views_router(payroll: Payroll, attendance: AttendanceStore | None,
                            job: PayrollJob | None, gate: Gate, *,
                            jsonable: Callable[[dict[str, Any]], dict[str, Any]]) -> APIRouter:
    router = APIRouter(prefix="/api/attendance", tags=["attendance for BKPSDM"])
    reader = gate.reader("attendance records are personal data")
    zone = ZoneInfo(payroll.rules.file.timezone)

    clerk = clerk_dependency(payroll, gate, "run the SIMPEG sync")

    def today() -> date:
        return payroll.judged_until() + timedelta(days=1)

    def skpd_of_office() -> dict[str, str]:
        """A machine's office as the edge names it (an SKPD code or a unit's name) → SKPD."""
        out: dict[str, str] = {}
        for unit in payroll.store.units():
            out.setdefault(unit["name"], unit["skpd"])
        for unit in payroll.store.units():
            out[unit["code"]] = unit["skpd"]
        return out

    @router.get("/today", summary="Today's presence so far per SKPD (present, on time, late by "
                "TL bracket, no punch yet, on leave by type, off), judged by the daily engine "
                "from the punches as they stand, and each machine's punches today; with skpd: "
                "that SKPD's employees one by one")
    def get_today(operator: Annotated[Operator, Depends(reader)],
                  skpd: str | None = None) -> dict[str, Any]:
        day = today()
        try:
            skpds, people = presence_on(payroll, day, skpd=skpd)
        except (PayrollInputError, ValueError) as exc:
            raise HTTPException(409, f"today cannot be judged: {exc}") from exc
        machines: dict[str, dict[str, Any]] = {}
        if attendance is not None:
            offices = skpd_of_office()
            for m in attendance.machines():
                machines[m["device_sn"]] = {"device_sn": m["device_sn"], "office": m["office"],
                                            "skpd": offices.get(m["office"]), "punches_today": 0,
                                            "last_punch": None}
            lo = datetime.combine(day, time(), zone)
            for p in attendance.punches(since=lo, until=lo + timedelta(days=1)):
                row = machines.setdefault(p["device_sn"], {
                    "device_sn": p["device_sn"], "office": "", "skpd": None, "punches_today": 0,
                    "last_punch": None})
                row["punches_today"] += 1
                row["last_punch"] = p["ts"].isoformat()  # oldest first: the last is the latest
        return {"day": day.isoformat(), "timezone": payroll.rules.file.timezone,
                "computed_at": datetime.now(UTC).isoformat(),
                "rules_version": payroll.rules.label(payroll.rules.version_on(day)),
                "skpds": [as_json(s) for s in skpds],
                "employees": [as_json(p) for p in people] if skpd is not None else None,
                "machines": sorted(machines.values(), key=lambda m: m["device_sn"])}

    @router.get("/rules", summary="The rules in force on a month's last day: TL and PSW "
                "brackets with their cuts, the TK cut, the monthly cap, leave types")
    def get_rules(operator: Annotated[Operator, Depends(reader)],
                  month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None
                  ) -> dict[str, Any]:
        day = month_bounds(month)[1] if month else today()
        try:
            v = payroll.rules.version_on(day)
        except ValueError as exc:
            raise HTTPException(404, str(exc)) from exc

        def brackets(table: Any) -> dict[str, Any]:
            return {"missing_punch": table.missing_punch,
                    "brackets": [b.model_dump() for b in table.brackets]}

        return {"region": payroll.rules.file.name, "source": payroll.rules.source,
                "checksum": payroll.rules.checksum, "version": payroll.rules.label(v),
                "valid_from": v.valid_from.isoformat(), "basis": v.basis,
                "grace_min": v.grace_min, "absent_cut_pct": v.absent_cut_pct,
                "monthly_cap_pct": v.monthly_cap_pct, "late": brackets(v.late),
                "early": brackets(v.early),
                "leave_types": [{"code": c, **t.model_dump()} for c, t in v.leave_types.items()]}

    @router.get("/leave", summary="Leave and duty records overlapping a month (from SIMPEG or "
                "entered by BKPSDM), with who entered or revoked them")
    def get_leave(operator: Annotated[Operator, Depends(reader)],
                  month: Annotated[str, Query(pattern=MONTH_PATTERN)],
                  nip: Annotated[str | None, Query(pattern=r"^\d{18}$")] = None,
                  revoked: bool = False) -> list[dict[str, Any]]:
        first, last = month_bounds(month)
        rows = payroll.store.leave(first, last, nips=[nip] if nip else None,
                                   include_revoked=revoked)
        names = {e["nip"]: e["name"] for e in payroll.store.employees(
            nips=sorted({r["nip"] for r in rows}), include_inactive=True)}
        return [{**{k: _iso(v) for k, v in r.items()}, "name": names.get(r["nip"], "")}
                for r in rows]

    def uploads(period: str) -> dict[str, Any]:
        rows = payroll.store.uploads(period)
        names = {e["nip"]: e["name"] for e in payroll.store.employees(
            nips=[r["nip"] for r in rows if r["status"] == "rejected"], include_inactive=True)}
        count = {s: sum(1 for r in rows if r["status"] == s)
                 for s in ("accepted", "duplicate", "rejected")}
        return {"period": period, "records": len(rows), **count,
                "last_at": _iso(max((r["uploaded_at"] for r in rows), default=None)),
                "rejections": [{"nip": r["nip"], "name": names.get(r["nip"], ""),
                                "reason": r["reason"], "at": _iso(r["uploaded_at"])}
                               for r in rows if r["status"] == "rejected"]}

    @router.get("/simpeg", summary="SIMPEG sync: configured or not, the payroll round's state "
                "and last outcome, the last pull (with the records skipped and why), what "
                "SIMPEG answered for each month's recaps, and the recent sync history")
    def get_simpeg(operator: Annotated[Operator, Depends(reader)],
                   month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None
                   ) -> dict[str, Any]:
        day = today()
        previous = day.replace(day=1) - timedelta(days=1)
        months = [month] if month else [f"{previous:%Y-%m}", f"{day:%Y-%m}"]
        pulls = payroll.store.audit_log(action="simpeg_pulled", limit=1)
        history = sorted((a for action in SYNC_ACTIONS
                          for a in payroll.store.audit_log(action=action, limit=10)),
                         key=lambda a: a["id"], reverse=True)[:10]
        last = dict(job.last) if job is not None else {}
        if "at" in last:
            last["at"] = datetime.fromtimestamp(last["at"], UTC).isoformat()
        return {
            "configured": job is not None and job.sync is not None,
            "round": None if job is None else {
                "interval_s": job.interval_s,
                "simpeg": None if job.sync is None else job.health()["simpeg"],
                "running": job.busy, "last": last},
            "last_pull": jsonable(pulls[0]) if pulls else None,
            "uploads": [uploads(m) for m in months],
            "history": [jsonable(a) for a in history]}

    @router.post("/simpeg/sync", summary="Run the payroll round now (bkpsdm or admin): pull "
                 "units, employees and leave from SIMPEG, recompute this month (and the last "
                 "one in its first days), push the recaps of months that are over; audited")
    def post_sync(body: SyncRequest,
                  operator: Annotated[Operator, Depends(clerk)]) -> dict[str, Any]:
        if job is None or job.sync is None:
            raise HTTPException(409, "no SIMPEG is configured: set [controlroom.attendance."
                                "simpeg] and payroll_interval_s")
        before = job.last.get("at")
        try:
            out = job.run_once(wait=False)
        except RoundBusy as exc:
            raise HTTPException(409, f"{exc}; then run it again if still needed") from exc
        except psycopg.Error as exc:
            raise HTTPException(503, f"the round failed in the database: {exc}") from exc
        except PayrollInputError as exc:
            raise HTTPException(409, f"the round was refused: {exc}") from exc
        result = {k: v for k, v in out.items() if k != "at"}
        result["at"] = datetime.fromtimestamp(out["at"], UTC).isoformat()
        payroll.store.audit(operator.user, "simpeg_sync_requested", ",".join(out["months"]), {
            "reason": body.reason.strip(), "role": operator.role,
            "before": {"last_round_at": datetime.fromtimestamp(before, UTC).isoformat()
                       if before else None},
            "after": result})
        return result

    return router
