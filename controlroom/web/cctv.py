"""The camera part of the control room's API: the registry, alarms, latest snapshots, and PTZ
and snapshot commands.

Reads `CctvStore`; commands go through `CctvService`, which audits and stores them before
they are published to the camera's edge. Reading is open like the rest of the status API;
a command needs a log-in or an `X-API-Key` of a role that may move cameras (operator,
supervisor, admin): 401 without either, 403 for other roles (the refusal is audited).
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controlroom.cctv.service import CctvActionError, CctvService, CommandBody
from controlroom.cctv.store import CctvStorageError, CctvStore
from controlroom.storage.store import AuditRecord
from controlroom.traffic.access import Operator
from controlroom.web.keys import Gate
from edge.contract import (
    PresetGotoBody,
    PresetSetBody,
    PtzGotoBody,
    PtzMoveBody,
    PtzPosition,
    PtzStopBody,
    SnapshotBody,
)

MAX_WAIT_S = 5.0

PtzAction = Literal["move", "stop", "goto", "preset_goto", "preset_set"]

# Which request fields each action takes (the rest must be absent).
_FIELDS: dict[str, frozenset[str]] = {
    "move": frozenset({"pan", "tilt", "zoom", "timeout_s"}),
    "stop": frozenset(),
    "goto": frozenset({"pan", "tilt", "zoom"}),
    "preset_goto": frozenset({"preset_token"}),
    "preset_set": frozenset({"name"}),
}


class PtzRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: PtzAction = Field(description="move: continuous at pan/tilt/zoom speeds (−1..1) for "
                              "at most timeout_s; stop; goto: absolute pan, tilt (−1..1) and "
                              "zoom (0..1); preset_goto: preset_token; preset_set: name")
    pan: float | None = None
    tilt: float | None = None
    zoom: float | None = None
    timeout_s: float | None = Field(None, description="move only; default 1 s, at most 10 s")
    preset_token: str | None = None
    name: str | None = None
    reason: str = Field("", max_length=300, description="Why, for the audit log.")


class SnapshotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=300, description="Why, for the audit log.")


def command_body(request: PtzRequest) -> CommandBody:
    """The contract's body for a request, or HTTPException 422 naming what is wrong."""
    given = {k for k in ("pan", "tilt", "zoom", "timeout_s", "preset_token", "name")
             if getattr(request, k) is not None}
    extra = sorted(given - _FIELDS[request.action])
    if extra:
        raise HTTPException(422, f"{request.action} takes no {', '.join(extra)}")
    try:
        if request.action == "move":
            return PtzMoveBody(pan=request.pan or 0.0, tilt=request.tilt or 0.0,
                               zoom=request.zoom or 0.0,
                               timeout_s=request.timeout_s if request.timeout_s is not None else 1.0)
        if request.action == "stop":
            return PtzStopBody()
        if request.action == "goto":
            missing = [k for k in ("pan", "tilt", "zoom") if getattr(request, k) is None]
            if missing:
                raise HTTPException(422, f"goto needs pan, tilt and zoom (missing: {', '.join(missing)})")
            return PtzGotoBody(position=PtzPosition(pan=request.pan, tilt=request.tilt,
                                                    zoom=request.zoom))
        if request.action == "preset_goto":
            if request.preset_token is None:
                raise HTTPException(422, "preset_goto needs preset_token")
            return PresetGotoBody(preset_token=request.preset_token)
        if request.name is None:
            raise HTTPException(422, "preset_set needs name")
        return PresetSetBody(name=request.name)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HTTPException(422, f"{request.action}: {where + ': ' if where else ''}"
                            f"{first['msg']}") from exc


def cctv_router(store: CctvStore, service: CctvService | None, gate: Gate, *,
                jsonable: Callable[[dict[str, Any]], dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["cctv"])
    viewer = gate.reader("snapshots may show faces and number plates")
    stale_after_s = service.thresholds.stale_after_s if service is not None else 120.0

    def state(row: dict[str, Any], now: datetime) -> str:
        """online | offline (unreachable, or its edge offline) | stale (no recent status) |
        unknown (listed by its edge, never reported)."""
        if row["edge_online"] is False or row["reachable"] is False:
            return "offline"
        if row["reachable"] is None:
            return "unknown"
        age_s = (now - row["last_status_at"]).total_seconds()
        return "online" if age_s <= stale_after_s else "stale"

    def view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
        last = row["last_status_at"]
        body = jsonable(row)
        body["state"] = state(row, now)
        body["online"] = body["state"] == "online"
        body["age_s"] = round((now - last).total_seconds(), 1) if last is not None else None
        return body

    def may_move(request: Request, camera_id: str) -> Operator:
        operator = gate.require(request, "camera commands are audited")
        if not operator.may_override:
            action = ("snapshot_request" if request.url.path.endswith("/snapshot") else "ptz")
            try:
                store.audit(AuditRecord(operator.user, operator.role, action, camera_id,
                                        "denied", detail=f"role {operator.role} may not move "
                                        "cameras"))
            except CctvStorageError as exc:
                raise HTTPException(503, f"refusal could not be recorded: {exc}") from exc
            raise HTTPException(403, f"role {operator.role} may not move cameras "
                                "(operator, supervisor or admin may)")
        return operator

    def commands() -> CctvService:
        if service is None:
            raise HTTPException(503, "camera commands are not running in this control room")
        return service

    def send(camera_id: str, operator: Operator, body: CommandBody, reason: str,
             wait_s: float) -> dict[str, Any]:
        svc = commands()
        try:
            sent = svc.command(camera_id, operator, body, reason)
        except CctvActionError as exc:
            raise HTTPException(exc.status, exc.message) from exc
        if wait_s > 0:
            row = svc.command_status(sent["cmd_id"], wait_s)
            if row is not None:
                sent.update(status=row["status"], reason=row["reason"])
        return sent

    @router.get("/api/cameras", summary="Every camera: edge, intersection, state (online, "
                "offline, stale, unknown), PTZ, tamper, open alarms, latest snapshot's time")
    def get_cameras() -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        counts = store.open_alarm_counts()
        snapshots = store.snapshot_times()
        out = []
        for row in store.cameras():
            body = view(row, now)
            body.pop("presets", None)
            body["open_alarms"] = counts.get(row["camera_id"], 0)
            taken = snapshots.get(row["camera_id"])
            body["snapshot_at"] = taken.isoformat() if taken is not None else None
            out.append(body)
        return out

    @router.get("/api/cameras/{camera_id}", summary="One camera: status, position and presets, "
                "open alarms, last commands, latest snapshot's time")
    def get_camera(camera_id: str) -> dict[str, Any]:
        row = store.camera(camera_id)
        if row is None:
            raise HTTPException(404, f"no camera {camera_id!r}")
        body = view(row, datetime.now(UTC))
        body["alarms"] = [jsonable(a) for a in store.alarms(camera_id=camera_id)]
        body["commands"] = [jsonable(c) for c in store.commands(camera_id)]
        snap = store.snapshot(camera_id)
        body["snapshot"] = None if snap is None else {
            "taken_at": snap["taken_at"].isoformat(), "cmd_id": snap["cmd_id"],
            "bytes": len(snap["jpeg"]), "url": f"/api/cameras/{camera_id}/snapshot.jpg"}
        return body

    @router.get("/api/cameras/{camera_id}/snapshot.jpg", response_class=Response,
                responses={200: {"content": {"image/jpeg": {}}}},
                summary="The camera's latest snapshot (JPEG; any role: it may show faces and "
                "number plates); its time in X-Snapshot-Taken-At")
    def get_snapshot(camera_id: str, operator: Annotated[Operator, Depends(viewer)]) -> Response:
        snap = store.snapshot(camera_id)
        if snap is None:
            raise HTTPException(404, f"no snapshot of camera {camera_id!r}")
        taken: datetime = snap["taken_at"]
        headers = {"X-Snapshot-Taken-At": taken.isoformat(),
                   "Last-Modified": format_datetime(taken.astimezone(UTC), usegmt=True),
                   "Cache-Control": "no-store"}
        if snap["cmd_id"]:
            headers["X-Snapshot-Cmd-Id"] = snap["cmd_id"]
        return Response(bytes(snap["jpeg"]), media_type="image/jpeg", headers=headers)

    @router.get("/api/cctv/alarms", summary="Camera alarms (state=all: history too), newest first")
    def get_alarms(state: Literal["open", "all"] = "open", camera: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[dict[str, Any]]:
        return [jsonable(a) for a in store.alarms(open_only=state == "open", camera_id=camera,
                                                  limit=limit)]

    @router.post("/api/cameras/{camera_id}/ptz", summary="Move the camera, stop it, go to a "
                 "position or preset, or store a preset (operator, supervisor, admin)")
    def post_ptz(camera_id: str, request: PtzRequest,
                 operator: Annotated[Operator, Depends(may_move)],
                 wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0) -> dict[str, Any]:
        return send(camera_id, operator, command_body(request), request.reason, wait_s)

    @router.post("/api/cameras/{camera_id}/snapshot", summary="Ask the camera's edge for a fresh "
                 "snapshot (operator, supervisor, admin)")
    def post_snapshot(camera_id: str, operator: Annotated[Operator, Depends(may_move)],
                      request: SnapshotRequest | None = None,
                      wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0) -> dict[str, Any]:
        reason = request.reason if request is not None else ""
        return send(camera_id, operator, SnapshotBody(), reason, wait_s)

    @router.get("/api/cameras/{camera_id}/commands/{cmd_id}", summary="A command's status: sent, "
                "accepted, applied, rejected (with the edge's reason) or unanswered")
    def get_command(camera_id: str, cmd_id: str,
                    wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0) -> dict[str, Any]:
        if service is not None:
            row = service.command_status(cmd_id, wait_s)
        else:
            row = store.command(cmd_id)
        if row is None or row["camera_id"] != camera_id:
            raise HTTPException(404, f"no command {cmd_id!r} to camera {camera_id!r}")
        return jsonable(row)

    return router
