"""The alarm board of the control room's API: one list of the traffic, camera and attendance
machine alarms, and their acknowledgement by an operator with a comment.

Reads and acknowledges through the three stores (`Store`, `CctvStore`, `AttendanceStore`),
which own their alarm tables; it never decides when an alarm holds or clears (the services'
reconcile does). The list names the people who acknowledged, so it needs a log-in or an
`X-API-Key` (any role: technicians read it too). Acknowledging needs operator, supervisor or
admin: 401 without a log-in, 403 for other roles (the refusal is audited), 403 for a cookie
without its CSRF token, 404 for an unknown alarm, 409 for one already acknowledged, 422 for a
malformed request — each with nothing changed. An acknowledgement is stored with the audit
row (before and after) in one transaction.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from controlroom.attendance.store import AttendanceStorageError, AttendanceStore
from controlroom.cctv.store import CctvStorageError, CctvStore
from controlroom.storage.store import AlarmAck, AuditRecord, StorageError, Store
from controlroom.traffic.access import Operator
from controlroom.web.keys import Gate

ACK_ROLES = frozenset({"operator", "supervisor", "admin"})
AlarmKind = Literal["traffic", "camera", "machine"]
KINDS: tuple[str, ...] = ("traffic", "camera", "machine")
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
MAX_COMMENT = 500


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(max_length=MAX_COMMENT, description="What the operator saw or did "
                         "(required; kept with the alarm and in the audit log).")

    @field_validator("comment")
    @classmethod
    def not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a comment is required: say what you saw or did")
        return value


def split_text(text: str) -> tuple[str | None, str]:
    """(Bahasa Indonesia, English) of an alarm's text. Alarms are written "Indonesian /
    English" (controlroom/traffic/alarms.py, controlroom/cctv/alarms.py,
    controlroom/attendance/alarms.py); a traffic alarm stored before its texts were (English
    only, with no separator) has no Indonesian."""
    if " / " in text:
        text_id, text_en = text.split(" / ", 1)
        return text_id.strip(), text_en.strip()
    return None, text


def board_row(kind: str, row: dict[str, Any],
              jsonable: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """One store row as the board shows it, the same shape for every kind."""
    text_id, text_en = split_text(row["text"])
    source = {"traffic": row.get("intersection_id"), "camera": row.get("camera_id"),
              "machine": row.get("device_sn")}[kind]
    name = {"traffic": None, "camera": row.get("camera_name"),
            "machine": row.get("machine_name")}[kind]
    out = {
        "kind": kind, "id": row["id"], "key": f"{kind}/{row['id']}", "code": row["code"],
        "severity": row["severity"], "source": source, "source_name": name or None,
        "subject": row.get("subject") or "", "intersection_id": row.get("intersection_id"),
        "edge_id": row.get("edge_id"), "office": row.get("office") or None,
        "text": row["text"], "text_id": text_id, "text_en": text_en, "data": row["data"],
        "opened_at": row["opened_at"], "cleared_at": row["cleared_at"],
        "state": "open" if row["cleared_at"] is None else "cleared",
        "acked": row["acked_at"] is not None, "acked_at": row["acked_at"],
        "acked_by": row["acked_by"], "acked_role": row["acked_role"],
        "ack_comment": row["ack_comment"],
    }
    return jsonable(out)


def alarms_router(store: Store, gate: Gate, *, cctv_store: CctvStore | None = None,
                  attendance: AttendanceStore | None = None,
                  jsonable: Callable[[dict[str, Any]], dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["alarms"])
    reader = gate.reader("the alarm board names who acknowledged")

    def sources() -> dict[str, Any]:
        """The stores of the kinds this control room runs."""
        out: dict[str, Any] = {"traffic": store}
        if cctv_store is not None:
            out["camera"] = cctv_store
        if attendance is not None:
            out["machine"] = attendance
        return out

    def may_ack(request: Request) -> Operator:
        operator = gate.require(request, "acknowledgements are audited")
        if operator.role not in ACK_ROLES:
            params = request.path_params
            target = f"{params.get('kind', '?')}/{params.get('alarm_id', '?')}"
            try:
                store.audit(AuditRecord(operator.user, operator.role, "alarm_ack", target,
                                        "denied", detail=f"role {operator.role} may not "
                                        "acknowledge alarms"))
            except StorageError as exc:
                raise HTTPException(503, f"refusal could not be recorded: {exc}") from exc
            raise HTTPException(403, f"role {operator.role} may not acknowledge alarms "
                                "(operator, supervisor or admin may)")
        return operator

    @router.get("/api/alarms/board", summary="Traffic, camera and attendance machine alarms in "
                "one list with their acknowledgement (state=all: history too), newest first "
                "(any role)")
    def get_board(operator: Annotated[Operator, Depends(reader)],
                  state: Literal["open", "all"] = "open",
                  kind: AlarmKind | None = None,
                  severity: Literal["critical", "warning", "info"] | None = None,
                  acked: Annotated[bool | None, Query(description="true: acknowledged only; "
                                                      "false: not yet")] = None,
                  since: Annotated[datetime | None, Query(description="active at or after "
                                                          "(with a zone)")] = None,
                  until: Annotated[datetime | None, Query(description="opened before (with a "
                                                          "zone)")] = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> list[dict[str, Any]]:
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"{name} needs a zone, e.g. 2026-11-23T00:00:00+07:00")
        rows: list[dict[str, Any]] = []
        for k, source in sources().items():
            if kind is not None and k != kind:
                continue
            rows.extend(board_row(k, r, jsonable) for r in source.alarm_board(
                open_only=state == "open", since=since, until=until, limit=limit))
        if severity is not None:
            rows = [r for r in rows if r["severity"] == severity]
        if acked is not None:
            rows = [r for r in rows if r["acked"] is acked]
        rows.sort(key=lambda r: (r["opened_at"], r["kind"], r["id"]), reverse=True)
        return rows[:limit]

    @router.post("/api/alarms/{kind}/{alarm_id}/ack", summary="Acknowledge an alarm with a "
                 "comment (operator, supervisor, admin); audited with before and after")
    def post_ack(kind: AlarmKind, alarm_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                 body: AckRequest,
                 operator: Annotated[Operator, Depends(may_ack)]) -> dict[str, Any]:
        source = sources().get(kind)
        if source is None:
            raise HTTPException(404, f"no {kind} alarms in this control room")
        target = f"{kind}/{alarm_id}"
        try:
            done: AlarmAck = source.acknowledge_alarm(alarm_id, user=operator.user,
                                                      role=operator.role, comment=body.comment,
                                                      target=target)
        except (StorageError, CctvStorageError, AttendanceStorageError) as exc:
            raise HTTPException(503, f"database unavailable: {exc}") from exc
        if done.outcome == "missing":
            raise HTTPException(404, f"no {kind} alarm {alarm_id}")
        assert done.row is not None
        if done.outcome == "already":
            row = jsonable(done.row)
            raise HTTPException(409, f"{kind} alarm {alarm_id} was already acknowledged by "
                                f"{row['acked_by']} at {row['acked_at']}: {row['ack_comment']}")
        return {"kind": kind, "id": alarm_id, "key": target, **jsonable(done.row)}

    return router
