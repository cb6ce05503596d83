"""The control room's JSON API (OpenAPI at /docs) and its status page.

It reads the Store, the ingest counters and the traffic service's live state; it never talks
to a device or the broker. Operator actions (hold, force, flash, plan, release) go through the
traffic service, which records and audits them before anything is sent; they need a log-in
or an `X-API-Key` of a role that may override (401 without either, 403 for other roles, and
the refusal is audited). `controlroom.web.keys.Gate` authenticates every protected endpoint;
`/api/auth/…` logs users in and out.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at
# definition time, and the operator dependency is a closure it could not resolve from a string.
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controlroom.attendance.payroll import Payroll
from controlroom.attendance.payroll_job import PayrollJob
from controlroom.attendance.store import AttendanceStorageError, AttendanceStore
from controlroom.auth.service import Authenticator
from controlroom.auth.store import AuthStorageError
from controlroom.cctv.service import CctvService
from controlroom.cctv.store import CctvStorageError, CctvStore
from controlroom.storage.store import AuditRecord, StorageError, Store
from controlroom.traffic.access import KeyRing, Operator
from controlroom.traffic.layout import CityLayout
from controlroom.traffic.service import OperatorActionError, TrafficService
from controlroom.web.alarms import alarms_router, split_text
from controlroom.web.attendance import attendance_router
from controlroom.web.attendance_views import attendance_views_router
from controlroom.web.auth import auth_router
from controlroom.web.cctv import cctv_router
from controlroom.web.dashboard import mount_dashboard
from controlroom.web.history import history_router
from controlroom.web.keys import Gate
from controlroom.web.live import live_router
from controlroom.web.payroll import payroll_router
from edge.contract import MAX_PHASES, PlanBody


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: float | None = Field(None, gt=0, description="How long the override lasts; "
                                     "default [controlroom.traffic] override_default_s.")
    reason: str = Field("", max_length=300, description="Why, for the audit log.")


class SignalOverrideRequest(_Request):
    action: Literal["hold", "force", "flash"] = Field(description="hold the current green (or "
                                                      "`phase`), force: go to `phase` as soon as it is safe, then the plan goes on from there (hold it with a hold), flash")
    phase: int | None = Field(None, ge=1, le=MAX_PHASES, description="1-based phase number.")


class PlanOverrideRequest(_Request):
    plan: int = Field(ge=1, le=255)
    cycle_s: float = Field(gt=0, le=300)
    offset_s: float = Field(0.0, ge=0, le=300)
    splits_s: list[float] = Field(min_length=1, max_length=MAX_PHASES, description="One per "
                                  "phase in phase order: green + yellow + all-red.")


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=300)


def create_api(store: Store, health: Callable[[], dict[str, Any]], *, city: str, timezone: str,
               stale_after_s: float, traffic: TrafficService | None = None,
               keys: KeyRing | None = None, attendance: AttendanceStore | None = None,
               machine_stale_after_s: float = 300.0, payroll: Payroll | None = None,
               cctv: CctvService | None = None, cctv_store: CctvStore | None = None,
               signer: tuple[str, str, str] = ("Kepala BKPSDM", "", ""),
               payroll_job: PayrollJob | None = None,
               auth: Authenticator | None = None, layout: CityLayout | None = None) -> FastAPI:
    app = FastAPI(title="Kota Pintar control room", version="0.1.0",
                  description="Edges, intersections, alarms, operator overrides and the state "
                  "of the control room.")
    gate = Gate(keys if keys is not None else KeyRing(()), auth)

    @app.exception_handler(StorageError)
    @app.exception_handler(AttendanceStorageError)
    @app.exception_handler(CctvStorageError)
    @app.exception_handler(AuthStorageError)
    def storage_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    if attendance is not None:
        app.include_router(attendance_router(attendance, gate,
                                             stale_after_s=machine_stale_after_s,
                                             jsonable=_jsonable))
    if payroll is not None:
        app.include_router(payroll_router(payroll, gate, jsonable=_jsonable, city=city,
                                          signer=signer))
        app.include_router(attendance_views_router(payroll, attendance, payroll_job, gate,
                                                   jsonable=_jsonable))
    if cctv_store is not None:
        app.include_router(cctv_router(cctv_store, cctv, gate, jsonable=_jsonable))
    if auth is not None:
        app.include_router(auth_router(auth, gate))
    app.include_router(history_router(store, gate))
    app.include_router(live_router(app, gate, store, traffic, layout, cctv_store, cctv))
    app.include_router(alarms_router(store, gate, cctv_store=cctv_store, attendance=attendance,
                                     jsonable=_jsonable))

    def may_override(request: Request, intersection_id: str) -> Operator:
        operator = gate.require(request, "signal overrides are audited")
        if not operator.may_override:
            segment = request.url.path.rsplit("/", 1)[-1]
            action = {"plan": "override_plan", "release": "override_release"}.get(segment, "override")
            try:
                store.audit(AuditRecord(operator.user, operator.role, action,
                                        intersection_id, "denied",
                                        detail=f"role {operator.role} may not override signals"))
            except StorageError as exc:
                raise HTTPException(503, f"refusal could not be recorded: {exc}") from exc
            raise HTTPException(403, f"role {operator.role} may not override signals "
                                "(operator, supervisor or admin may)")
        return operator

    def service() -> TrafficService:
        if traffic is None:
            raise HTTPException(503, "traffic control is not running: set [controlroom.traffic] layout")
        return traffic

    def act(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return call()
        except OperatorActionError as exc:
            raise HTTPException(exc.status, exc.message) from exc

    @app.get("/api/health", summary="Service health: database, broker link and ingest counters")
    def get_health() -> JSONResponse:
        body = health()
        try:
            body["database"] = {"ok": True, "now": store.ping().isoformat()}
        except StorageError as exc:
            body["database"] = {"ok": False, "error": str(exc)}
        traffic_ok = body.get("traffic") is None or body["traffic"]["running"]
        healthy = body["database"]["ok"] and body.get("mqtt", {}).get("connected", False) and traffic_ok
        body["status"] = "ok" if healthy else "degraded"
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/api/edges", summary="Every edge agent, online or offline since when")
    def get_edges() -> list[dict[str, Any]]:
        return [_jsonable(row) for row in store.edges()]

    @app.get("/api/intersections",
             summary="Every intersection: edge, online state, mode and last telemetry")
    def get_intersections() -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        sources = traffic.sources() if traffic is not None else {}
        out = []
        for row in store.intersections():
            last = row["last_ts"]
            age_s = (now - last).total_seconds() if last is not None else None
            fresh = age_s is not None and age_s <= stale_after_s
            row["online"] = bool(row.pop("edge_online")) and fresh
            row["age_s"] = round(age_s, 1) if age_s is not None else None
            row["plan_source"] = sources.get(row["intersection_id"])
            out.append(_jsonable(row))
        return out

    @app.get("/api/intersections/{intersection_id}",
             summary="One intersection: live signal state, the plan in force and its source, "
             "the last command and its acks, open alarms")
    def get_intersection(intersection_id: str) -> dict[str, Any]:
        row = store.intersection(intersection_id)
        snap = traffic.snapshot(intersection_id) if traffic is not None else None
        if row is None and snap is None:
            raise HTTPException(404, f"no intersection {intersection_id!r}")
        body: dict[str, Any] = {"intersection_id": intersection_id, "in_layout": snap is not None}
        if row is not None:
            last = row["last_ts"]
            age_s = (datetime.now(UTC) - last).total_seconds() if last is not None else None
            row["online"] = bool(row.pop("edge_online")) and age_s is not None and age_s <= stale_after_s
            row["age_s"] = round(age_s, 1) if age_s is not None else None
            body["stored"] = _jsonable(row)
        if snap is not None:
            body.update(snap)
        else:
            mode = row["mode"] if row is not None and row["online"] else None
            body["plan"] = {"source": ("local_fallback" if mode in ("local_fixed", "local_actuated")
                                       else mode or "unknown")}
        command = store.last_command(intersection_id)
        if command is not None:
            command = _jsonable(command)
            command["acks"] = [_jsonable(a) for a in store.acks(command["cmd_id"])]
        body["last_command"] = command
        body["alarms"] = [_jsonable(a) for a in store.alarms(intersection_id=intersection_id)]
        for alarm in body["alarms"]:  # the reader's language, as on the alarm board
            alarm["text_id"], alarm["text_en"] = split_text(alarm["text"])
        return body

    @app.get("/api/alarms", summary="Open alarms (state=all: history too), newest first")
    def get_alarms(state: Literal["open", "all"] = "open", intersection: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[dict[str, Any]]:
        return [_jsonable(a) for a in store.alarms(open_only=state == "open",
                                                   intersection_id=intersection, limit=limit)]

    @app.post("/api/intersections/{intersection_id}/override",
              summary="Hold, force or flash the signals (operator, supervisor, admin)")
    def post_override(intersection_id: str, request: SignalOverrideRequest,
                      operator: Annotated[Operator, Depends(may_override)]) -> dict[str, Any]:
        svc = service()
        return act(lambda: svc.override(intersection_id, operator, request.action,
                                        phase=request.phase, duration_s=request.duration_s,
                                        reason=request.reason))

    @app.post("/api/intersections/{intersection_id}/plan",
              summary="Run an operator's plan instead of the adaptive one (operator, supervisor, admin)")
    def post_plan(intersection_id: str, request: PlanOverrideRequest,
                  operator: Annotated[Operator, Depends(may_override)]) -> dict[str, Any]:
        svc = service()
        try:
            plan = PlanBody(plan=request.plan, cycle_s=request.cycle_s, offset_s=request.offset_s,
                            splits_s=tuple(request.splits_s))
        except ValidationError as exc:
            raise HTTPException(422, str(exc.errors(include_url=False)[0]["msg"])) from exc
        return act(lambda: svc.override(intersection_id, operator, "plan", plan=plan,
                                        duration_s=request.duration_s, reason=request.reason))

    @app.post("/api/intersections/{intersection_id}/release",
              summary="End the active override; adaptive control resumes (operator, supervisor, admin)")
    def post_release(intersection_id: str, request: ReleaseRequest,
                     operator: Annotated[Operator, Depends(may_override)]) -> dict[str, Any]:
        svc = service()
        return act(lambda: svc.release(intersection_id, operator, request.reason))

    def may_audit(request: Request) -> Operator:
        operator = gate.require(request, "the audit log names people")
        if operator.role not in ("supervisor", "admin"):
            raise HTTPException(403, f"role {operator.role} may not read the audit log "
                                "(supervisor or admin may)")
        return operator

    @app.get("/api/audit", summary="The audit log of operator actions, newest first "
             "(supervisor, admin)")
    def get_audit(operator: Annotated[Operator, Depends(may_audit)],
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
        return [_jsonable(r) for r in store.audit_log(limit)]

    @app.get("/api/site", summary="City name and time zone the pages show")
    def get_site() -> dict[str, str]:
        return {"city": city, "timezone": timezone}

    mount_dashboard(app)
    return app


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Rows to JSON: timestamps as ISO 8601."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
