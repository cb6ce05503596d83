"""The control room's JSON API (OpenAPI at /docs) and its status page.

It reads only the Store and the ingest counters; it never talks to a device or the broker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from controlroom.storage.store import StorageError, Store


def create_api(store: Store, health: Callable[[], dict[str, Any]], *, city: str, timezone: str,
               stale_after_s: float) -> FastAPI:
    app = FastAPI(title="Kota Pintar control room", version="0.1.0",
                  description="Edges, intersections and the state of the control room.")

    @app.get("/api/health", summary="Service health: database, broker link and ingest counters")
    def get_health() -> JSONResponse:
        body = health()
        try:
            body["database"] = {"ok": True, "now": store.ping().isoformat()}
        except StorageError as exc:
            body["database"] = {"ok": False, "error": str(exc)}
        healthy = body["database"]["ok"] and body.get("mqtt", {}).get("connected", False)
        body["status"] = "ok" if healthy else "degraded"
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/api/edges", summary="Every edge agent, online or offline since when")
    def get_edges() -> list[dict[str, Any]]:
        return [_jsonable(row) for row in store.edges()]

    @app.get("/api/intersections",
             summary="Every intersection: edge, online state, mode and last telemetry")
    def get_intersections() -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        out = []
        for row in store.intersections():
            last = row["last_ts"]
            age_s = (now - last).total_seconds() if last is not None else None
            fresh = age_s is not None and age_s <= stale_after_s
            row["online"] = bool(row.pop("edge_online")) and fresh
            row["age_s"] = round(age_s, 1) if age_s is not None else None
            out.append(_jsonable(row))
        return out

    @app.get("/api/site", summary="City name and time zone the pages show")
    def get_site() -> dict[str, str]:
        return {"city": city, "timezone": timezone}

    page = resources.files("controlroom.web").joinpath("static/status.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> str:
        return page

    return app


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
