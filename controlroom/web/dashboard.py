"""The dashboard's files: `/` is the single-page app (static/app/index.html), `/ui/…` its
scripts and styles, `/status` the plain status page. Everything is served by the control room
itself (no CDN, no online tiles); the pages read the JSON API like any other client.

Every response of the app carries a Content-Security-Policy that allows only this origin, and
refuses framing, so a page cannot be embedded or fed foreign scripts.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def mount_dashboard(app: FastAPI) -> None:
    static = resources.files("controlroom.web").joinpath("static")
    index = static.joinpath("app/index.html").read_text(encoding="utf-8")
    status = static.joinpath("status.html").read_text(encoding="utf-8")
    app.mount("/ui", StaticFiles(directory=str(static.joinpath("app"))), name="ui")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(index, headers={"Cache-Control": "no-cache"})

    @app.get("/status", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> str:
        return status
