"""The emulated SIMPEG's HTTP side: OAuth2 client-credentials tokens, the paged reference
endpoints, the recap upload with idempotency keys, and faults on demand.

Owns the wire (paths, status codes, JSON shapes, the ``Idempotency-Key`` replay) and the
uvicorn thread; the data lives in ``world.SimpegWorld``, the upload rules in ``recap.py``. It
must not be a mock: the control room's httpx client talks to it over real TCP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulators.simpeg.recap import PERIOD_RE, store_record
from simulators.simpeg.world import SimpegWorld, StoredResponse

log = logging.getLogger(__name__)

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 100
MAX_RECORDS_PER_UPLOAD = 1000
IDEMPOTENCY_TTL_S = 24 * 3600.0  # as long as a key is remembered (Stripe's 24 h)
START_TIMEOUT_S = 10.0


class SimpegServerError(Exception):
    """The emulator could not start (address in use, uvicorn failed)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # in a corrupt_* fault: remove this field from the record


@dataclass
class Faults:
    """Faults on demand; change them on a running server with ``SimpegServer.set_faults``.
    Counters (``fail_next``, ``drop_next``, ``fail_after_store``) count down as they fire."""

    fail_next: int = 0  # the next N requests answer fail_status before doing anything
    error_rate: float = 0.0  # this fraction of requests answer fail_status (seeded)
    fail_status: int = 500
    delay_s: float = 0.0  # every request waits this long before it is handled
    drop_next: int = 0  # the next N requests: the connection drops mid-answer
    token_lifetime_s: float = 3600.0  # lifetime of tokens issued from now on
    token_max_uses: int | None = None  # a token is refused after this many requests
    reject_nips: dict[str, str] = field(default_factory=dict)  # NIP -> reason recaps are refused
    fail_after_store: int = 0  # the next N uploads store their records, then answer 500
    corrupt_employees: dict[str, dict[str, Any]] = field(default_factory=dict)  # NIP -> fields
    corrupt_leave: dict[str, dict[str, Any]] = field(default_factory=dict)  # leave id -> fields


FAULT_NAMES = tuple(f.name for f in fields(Faults))


@dataclass
class _Token:
    expires_at_s: float  # monotonic
    uses_left: int | None


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
          ) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid_token() -> JSONResponse:
    return _json(401, {"error": "invalid_token"},
                 {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _bad_request(detail: str) -> JSONResponse:
    return _json(400, {"error": "invalid_request", "detail": detail})


def _patched(record: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    if not patch:
        return record
    out = dict(record)
    for key, value in patch.items():
        if value is MISSING:
            out.pop(key, None)
        else:
            out[key] = value
    return out


class SimpegServer:
    """The emulator on ``host:port`` (port 0: a free one; ``url`` says which), served by uvicorn
    on a background thread. ``with SimpegServer(world) as server: ...`` starts and stops it."""

    def __init__(self, world: SimpegWorld | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, client_id: str = "kota-pintar",
                 client_secret: str = "rahasia-simpeg", faults: Faults | None = None,
                 seed: int = 0) -> None:
        self.world = world if world is not None else SimpegWorld()
        self.faults = faults if faults is not None else Faults()
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self.port = port
        self.lock = threading.Lock()  # guards world, faults, tokens: tests change them live
        self.served: list[tuple[str, str, int]] = []  # (method, path, status) of every answer
        self._tokens: dict[str, _Token] = {}
        self._rng = random.Random(seed)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise SimpegServerError("the SIMPEG emulator is not running")
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimpegServer:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SimpegServerError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._gate, log_level="warning", access_log=False,
                                lifespan="off", interface="asgi3",
                                timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"simpeg-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server = None
                sock.close()
                raise SimpegServerError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        log.info("SIMPEG emulator on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SimpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ controls

    def set_faults(self, **changes: Any) -> None:
        """Change faults on the running server, e.g. ``set_faults(fail_next=3, delay_s=0.1)``."""
        unknown = set(changes) - set(FAULT_NAMES)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULT_NAMES)}")
        with self.lock:
            for name, value in changes.items():
                setattr(self.faults, name, value)

    def reset(self, world: SimpegWorld | None = None) -> None:
        """Start over on the running server: this world (default: an empty one), no faults, no
        tokens, an empty request log. Lets one server serve many tests."""
        with self.lock:
            self.world = world if world is not None else SimpegWorld()
            self.faults = Faults()
            self._tokens.clear()
            self.served.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (as after a SIMPEG restart)."""
        with self.lock:
            self._tokens.clear()

    def statuses(self, path_prefix: str = "") -> list[int]:
        with self.lock:
            return [s for _, p, s in self.served if p.startswith(path_prefix)]

    # ------------------------------------------------------------------ faults gate (ASGI)

    def _draw_fault(self) -> tuple[float, str | None]:
        with self.lock:
            f = self.faults
            if f.drop_next > 0:
                f.drop_next -= 1
                return f.delay_s, "drop"
            if f.fail_next > 0:
                f.fail_next -= 1
                return f.delay_s, "fail"
            if f.error_rate > 0 and self._rng.random() < f.error_rate:
                return f.delay_s, "fail"
            return f.delay_s, None

    async def _gate(self, scope: dict[str, Any], receive: Callable[..., Any],
                    send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        delay_s, action = self._draw_fault()
        if delay_s > 0:
            await asyncio.sleep(delay_s)

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                with self.lock:
                    self.served.append((method, path, message["status"]))
            await send(message)

        if action == "drop":
            # Start an answer that promises a body and never send it: uvicorn closes the
            # connection and the client sees it drop mid-response.
            await recording_send({"type": "http.response.start", "status": 200,
                                  "headers": [(b"content-type", b"application/json"),
                                              (b"content-length", b"1024")]})
            return
        if action == "fail":
            status = self.faults.fail_status
            await _json(status, {"error": "server_error", "detail": "fault on demand"})(
                scope, receive, recording_send)
            return
        await self.app(scope, receive, recording_send)

    # ------------------------------------------------------------------ the API

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self.lock:
            t = self._tokens.get(token.strip())
            if t is None:
                return False
            if time.monotonic() >= t.expires_at_s or t.uses_left == 0:
                del self._tokens[token.strip()]
                return False
            if t.uses_left is not None:
                t.uses_left -= 1
        return True

    def _client_credentials(self, request: Request, form: dict[str, list[str]]
                            ) -> tuple[str, str]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):  # RFC 6749 2.3.1 allows either
            try:
                cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return "", ""
            return cid, secret
        return form.get("client_id", [""])[0], form.get("client_secret", [""])[0]

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="SIMPEG emulator (Kota Pintar)", docs_url=None, redoc_url=None,
                      openapi_url=None)

        @app.post("/oauth/token")
        async def token(request: Request) -> JSONResponse:
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            if form.get("grant_type", [""])[0] != "client_credentials":
                return _json(400, {"error": "unsupported_grant_type"})
            cid, secret = self._client_credentials(request, form)
            if not (secrets.compare_digest(cid, self.client_id)
                    and secrets.compare_digest(secret, self.client_secret)):
                return _json(401, {"error": "invalid_client"})
            value = secrets.token_urlsafe(24)
            with self.lock:
                lifetime = self.faults.token_lifetime_s
                self._tokens[value] = _Token(time.monotonic() + lifetime,
                                             self.faults.token_max_uses)
            return _json(200, {"access_token": value, "token_type": "Bearer",
                               "expires_in": max(0, int(lifetime))},
                         {"Cache-Control": "no-store"})

        def page_of(request: Request, rows: list[dict[str, Any]]) -> JSONResponse:
            try:
                page = int(request.query_params.get("page", "1"))
                per_page = int(request.query_params.get("per_page", str(DEFAULT_PER_PAGE)))
            except ValueError:
                return _bad_request("page and per_page are integers")
            if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
                return _bad_request(f"page >= 1 and 1 <= per_page <= {MAX_PER_PAGE}")
            start = (page - 1) * per_page
            return _json(200, {"data": rows[start:start + per_page], "page": page,
                               "per_page": per_page, "total": len(rows)})

        @app.get("/api/v1/unor")
        async def units(request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _invalid_token()
            with self.lock:
                rows = [u.wire() for _, u in sorted(self.world.units.items())]
            return page_of(request, rows)

        @app.get("/api/v1/pns")
        async def employees(request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _invalid_token()
            since_text = request.query_params.get("updated_since")
            since = None
            if since_text:
                try:
                    since = datetime.fromisoformat(since_text)
                except ValueError:
                    return _bad_request("updated_since is an ISO 8601 date-time")
                if since.tzinfo is None:
                    return _bad_request("updated_since needs a UTC offset")
            with self.lock:
                rows = [_patched(e.wire(), self.faults.corrupt_employees.get(nip))
                        for nip, e in sorted(self.world.employees.items())
                        if since is None or e.updated_at >= since]
            return page_of(request, rows)

        @app.get("/api/v1/pns/data-utama/{nip}")
        async def employee(nip: str, request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _invalid_token()
            with self.lock:
                e = self.world.employees.get(nip)
                row = _patched(e.wire(), self.faults.corrupt_employees.get(nip)) if e else None
            if row is None:
                return _json(404, {"error": "not_found", "detail": f"no employee with NIP {nip}"})
            return _json(200, {"data": row})

        @app.get("/api/v1/cuti")
        async def leave(request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _invalid_token()
            try:
                first = date.fromisoformat(request.query_params["dari"])
                last = date.fromisoformat(request.query_params["sampai"])
            except (KeyError, ValueError):
                return _bad_request("dari and sampai are dates YYYY-MM-DD")
            if last < first:
                return _bad_request("sampai is before dari")
            with self.lock:
                rows = [_patched(v.wire(), self.faults.corrupt_leave.get(v.id))
                        for _, v in sorted(self.world.leave.items())
                        if v.overlaps(first, last)]
            return page_of(request, rows)

        @app.post("/api/v1/rekap-kehadiran")
        async def upload(request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _invalid_token()
            key = request.headers.get("idempotency-key", "").strip()
            if not key or len(key) > 255:
                return _json(400, {"error": "invalid_request",
                                   "detail": "an Idempotency-Key header (1-255 chars) is required"})
            raw = await request.body()
            return self._upload(key, raw)

        return app

    def _upload(self, key: str, raw: bytes) -> JSONResponse:
        body_hash = hashlib.sha256(raw).hexdigest()
        with self.lock:
            now = time.monotonic()
            stored = self.world.idempotency.get(key)
            if stored is not None and now - stored.stored_at_s > IDEMPOTENCY_TTL_S:
                del self.world.idempotency[key]
                stored = None
            if stored is not None:
                if stored.body_hash != body_hash:
                    return _json(422, {"error": "idempotency_key_reused",
                                       "detail": "this Idempotency-Key came with another body"})
                return _json(stored.status, stored.body, {"Idempotent-Replayed": "true"})
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                return _bad_request("the body is not JSON")
            problem = _upload_problem(body)
            if problem:
                return _json(422, {"error": "invalid_request", "detail": problem})
            period = body["periode"]
            results = [store_record(self.world, r, period, self.faults.reject_nips)
                       for r in body["records"]]
            answer = {"periode": period, "results": results}
            if self.faults.fail_after_store > 0:
                # Stored, but the answer is lost: the key is not remembered, so the client's
                # retry is processed again and finds every record a duplicate.
                self.faults.fail_after_store -= 1
                return _json(500, {"error": "server_error", "detail": "fault after store"})
            self.world.idempotency[key] = StoredResponse(body_hash, 200, answer, now)
        return _json(200, answer)


def _upload_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body is a JSON object {periode, records}"
    period = body.get("periode")
    if not isinstance(period, str) or not PERIOD_RE.match(period):
        return "periode is YYYY-MM"
    records = body.get("records")
    if not isinstance(records, list):
        return "records is a list"
    if len(records) > MAX_RECORDS_PER_UPLOAD:
        return f"at most {MAX_RECORDS_PER_UPLOAD} records per upload, not {len(records)}"
    extra = set(body) - {"periode", "records"}
    if extra:
        return f"unknown fields {sorted(extra)}"
    return None
