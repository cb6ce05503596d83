"""The payroll part of the control room's API: the monthly recap as JSON for payroll and as the
files BKPSDM files, any employee's days with their reasons, the audit log, and the clerk's
changes (leave, recompute).

Reads and changes go through `Payroll` only; it never writes SQL. Everything here is personal
data of civil servants, so every endpoint needs a log-in or an `X-API-Key`; changes need the
bkpsdm or admin role, run under the user's name (audited), and a refusal is audited too.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
import dataclasses
import io
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from controlroom.attendance import export
from controlroom.attendance.payroll import Payroll, PayrollInputError, month_bounds
from controlroom.attendance.recap import EmployeeRecap
from controlroom.traffic.access import Operator
from controlroom.web.keys import Gate

CLERK_ROLES = frozenset({"bkpsdm", "admin"})
MONTH = Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="The month, e.g. 2026-11")


class LeaveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nip: str = Field(pattern=r"^\d{18}$")
    type: str = Field(min_length=1, max_length=8, description="A leave type of the rules: CT, "
                      "CS, CM, CAP, CB, CBS, CLTN, DL, TB, IT, IPC, …")
    first_day: date
    last_day: date
    doc_ref: str = Field(min_length=1, max_length=200, description="The letter or decree "
                         "number that grants it.")
    recompute: bool = Field(True, description="Recompute the months it touches now.")


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=300)
    recompute: bool = True


class RecomputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    reason: str = Field(min_length=1, max_length=300)


def _recap_json(r: EmployeeRecap) -> dict[str, Any]:
    out = dataclasses.asdict(r)
    out["lines"] = [{**line, "day": line["day"].isoformat()} for line in out["lines"]]
    return out


def _months(first: date, last: date) -> list[str]:
    months, (y, m) = [], (first.year, first.month)
    while (y, m) <= (last.year, last.month):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def clerk_dependency(payroll: Payroll, gate: Gate, what: str) -> Callable[[Request], Operator]:
    """A FastAPI dependency: the request's operator if a clerk (bkpsdm, admin) — else 401, or
    403 with the refusal audited (who, which path) in the attendance audit log."""
    reader = gate.reader("attendance records are personal data")

    def clerk(request: Request) -> Operator:
        operator = reader(request)
        if operator.role not in CLERK_ROLES:
            payroll.store.audit(operator.user, "refused", request.url.path,
                                {"role": operator.role, "method": request.method})
            raise HTTPException(403, f"role {operator.role} may not {what} "
                                "(bkpsdm or admin may)")
        return operator

    return clerk


def payroll_router(payroll: Payroll, gate: Gate, *,
                   jsonable: Callable[[dict[str, Any]], dict[str, Any]], city: str,
                   signer: tuple[str, str, str]) -> APIRouter:
    router = APIRouter(prefix="/api/attendance", tags=["attendance for payroll"])

    reader = gate.reader("attendance records are personal data")
    clerk = clerk_dependency(payroll, gate, "change attendance records")

    def recap_of(month: str, skpd: str | None) -> tuple[list[Any], list[Any]]:
        try:
            return payroll.recap(month, skpd=skpd)
        except PayrollInputError as exc:
            raise HTTPException(422, str(exc)) from exc

    @router.get("/recap", summary="The monthly recap for payroll: per employee (TL/PSW counts, "
                "absences, the cut after the monthly cap, and the line behind every cut) and "
                "per SKPD")
    def get_recap(operator: Annotated[Operator, Depends(reader)],
                  month: Annotated[str, MONTH], skpd: str | None = None) -> dict[str, Any]:
        recaps, skpds = recap_of(month, skpd)
        return {"period": month, "rules": payroll.rules.source,
                "rules_checksum": payroll.rules.checksum,
                "employees": [_recap_json(r) for r in recaps],
                "skpds": [dataclasses.asdict(s) for s in skpds]}

    @router.get("/recap/export", summary="The recap as the file BKPSDM files: xlsx (Rekap, "
                "Rincian, Per SKPD, signature block), csv (one row per employee) or lines (csv "
                "of every cut line)", response_class=Response)
    def get_export(operator: Annotated[Operator, Depends(reader)],
                   month: Annotated[str, MONTH],
                   format: Literal["xlsx", "csv", "lines"] = "xlsx",
                   skpd: str | None = None, lang: Literal["id", "en"] = "id") -> Response:
        recaps, skpds = recap_of(month, skpd)
        name = f"rekap-kehadiran-{month}{'-' + skpd if skpd else ''}"
        if format == "xlsx":
            with tempfile.TemporaryDirectory(prefix="kota-recap-") as tmp:
                path = Path(tmp) / "recap.xlsx"
                export.write_xlsx(path, recaps, skpds, region_name=payroll.rules.file.name or city,
                                  period=month, printed_at=datetime.now(UTC), lang=lang,
                                  signer_title=signer[0], signer_name=signer[1],
                                  signer_nip=signer[2])
                body = path.read_bytes()
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            filename = f"{name}.xlsx"
        else:
            buffer = io.StringIO()
            (export.write_csv if format == "csv" else export.write_csv_lines)(
                buffer, recaps, lang=lang)
            body, media = buffer.getvalue().encode("utf-8"), "text/csv; charset=utf-8"
            filename = f"{name}{'-rincian' if format == 'lines' else ''}.csv"
        return Response(body, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @router.get("/employees/{nip}/days", summary="One employee's month, day by day: status, "
                "schedule, in/out and where, minutes late or early, TL/PSW, the cut, the reason "
                "in Bahasa Indonesia and English, and the flags to check")
    def get_days(operator: Annotated[Operator, Depends(reader)], nip: str,
                 month: Annotated[str, MONTH]) -> list[dict[str, Any]]:
        if payroll.store.employee(nip) is None:
            raise HTTPException(404, f"no employee with NIP {nip}")
        return [jsonable(d) for d in payroll.explain(nip, month)]

    @router.get("/audit", summary="Who changed what in the attendance records, newest first")
    def get_audit(operator: Annotated[Operator, Depends(reader)], nip: str | None = None,
                  action: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 200) -> list[dict[str, Any]]:
        return [jsonable(a) for a in payroll.store.audit_log(subject=nip, action=action,
                                                             limit=limit)]

    def recompute(first: date, last: date, operator: Operator, reason: str) -> dict[str, int]:
        changed = new = 0
        for month in _months(first, last):
            lo, hi = month_bounds(month)
            report = payroll.recompute(lo, hi, actor=operator.user, reason=reason)
            changed, new = changed + report.changed, new + report.new
        return {"changed_days": changed, "new_days": new}

    @router.post("/leave", status_code=201, summary="Enter leave or duty with its document "
                 "reference (bkpsdm or admin); the months it touches are recomputed")
    def post_leave(body: LeaveRequest,
                   operator: Annotated[Operator, Depends(clerk)]) -> dict[str, Any]:
        try:
            leave_id = payroll.add_leave(body.nip, body.type, body.first_day, body.last_day,
                                         body.doc_ref, actor=operator.user)
        except PayrollInputError as exc:
            raise HTTPException(422, str(exc)) from exc
        out: dict[str, Any] = {"leave_id": leave_id}
        if body.recompute:
            out.update(recompute(body.first_day, body.last_day, operator,
                                 f"leave {leave_id} added"))
        return out

    @router.post("/leave/{leave_id}/revoke", summary="Revoke a leave record (bkpsdm or admin); "
                 "the months it touched are recomputed")
    def post_revoke(leave_id: int, body: RevokeRequest,
                    operator: Annotated[Operator, Depends(clerk)]) -> dict[str, Any]:
        row = payroll.store.revoke_leave(leave_id, actor=operator.user, reason=body.reason)
        if row is None:
            raise HTTPException(404, f"no leave {leave_id} in force")
        out: dict[str, Any] = {"leave_id": leave_id, "revoked": True}
        if body.recompute:
            out.update(recompute(row["first_day"], row["last_day"], operator,
                                 f"leave {leave_id} revoked"))
        return out

    @router.post("/recompute", summary="Judge a month again from raw punches, leave, rosters "
                 "and the rules (bkpsdm or admin); every changed day is audited")
    def post_recompute(body: RecomputeRequest,
                       operator: Annotated[Operator, Depends(clerk)]) -> dict[str, Any]:
        first, last = month_bounds(body.month)
        report = payroll.recompute(first, last, actor=operator.user, reason=body.reason)
        return {"month": body.month, "employees": report.employees, "punches": report.punches,
                "days": report.rows, "changed_days": report.changed, "new_days": report.new,
                "seconds": report.seconds}

    return router
