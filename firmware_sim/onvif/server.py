"""The emulated camera's HTTP side: ONVIF SOAP on ``/onvif/*``, a JPEG snapshot and an MJPEG
stream behind HTTP Digest (or Basic) auth, faults on demand, and the uvicorn thread.

Owns the wire (paths, status codes, auth challenges); the SOAP codec lives in ``soap``, the
answers in ``services``, the state in ``camera``, the picture in ``view`` (of a world handed
in, or ``scene``'s test pattern). Not a mock: real ONVIF clients talk to it over TCP on
loopback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import socket
import threading
import time
from collections import OrderedDict
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from firmware_sim.onvif.camera import FAULT_NAMES, CameraState, Faults, Identity
from firmware_sim.onvif.discovery import DiscoveryResponder
from firmware_sim.onvif.events import pull_timeout_s
from firmware_sim.onvif.scene import TestPattern, encode_jpeg
from firmware_sim.onvif.services import (
    NO_AUTH,
    OPERATIONS,
    PROFILE_BY_TOKEN,
    PROFILES,
    SERVICE_PATHS,
    Context,
)
from firmware_sim.onvif.soap import (
    MAX_BODY_BYTES,
    TEV,
    SoapFault,
    check_token,
    envelope,
    fault_envelope,
    parse_request,
)
from firmware_sim.onvif.view import CameraView, ViewFaults, WorldSource

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
SOAP_CONTENT_TYPE = "application/soap+xml; charset=utf-8"
REALM = "Kota Pintar Camera"
MJPEG_FPS = 4.0
EVENT_POLL_S = 0.05
MAX_NONCES = 256  # digest nonces remembered (oldest forgotten first)


class CameraEmulatorError(Exception):
    """The emulator could not start (address in use, uvicorn failed)."""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _digest_params(header: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in _split_commas(header):
        key, _, value = part.strip().partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return params


def _split_commas(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


class CameraEmulator:
    """An ONVIF Profile S PTZ camera on ``host:port`` (port 0: a free one), served by uvicorn
    on a background thread. ``with CameraEmulator() as cam: cam.device_url`` …

    ``world`` is what the camera looks at (e.g. ``simulators.camera.live.LiveScene``); without
    one it shows ``scene.TestPattern``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, user: str = "admin",
                 password: str = "kamera123", identity: Identity | None = None,
                 faults: Faults | None = None, world: WorldSource | None = None,
                 discovery_port: int | None = None) -> None:
        self.host = host
        self.discovery_port = discovery_port  # WS-Discovery over UDP; None: off, 0: a free port
        self._discovery: DiscoveryResponder | None = None
        self.port = port
        self.camera = CameraState(user=user, password=password, identity=identity,
                                  faults=faults)
        self.soap_requests = 0
        self.soap_faults: list[SoapFault] = []
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self.view = CameraView(world if world is not None else TestPattern())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[
            Route("/onvif/{service}", self._soap, methods=["POST"]),
            Route("/onvif/subscription/{sid}", self._soap, methods=["POST"]),
            Route("/snapshot.jpg", self._snapshot, methods=["GET"]),
            Route("/mjpeg", self._mjpeg, methods=["GET"]),
        ])

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise CameraEmulatorError("the camera emulator is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def device_url(self) -> str:
        return self.base_url + SERVICE_PATHS[next(iter(SERVICE_PATHS))]

    def start(self) -> CameraEmulator:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY on Linux: without it the answer's headers and
        # body (two writes) meet the client's delayed ACK and each reply waits ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise CameraEmulatorError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._gate, log_level="warning", access_log=False,
                                lifespan="off", interface="asgi3", timeout_graceful_shutdown=1,
                                h11_max_incomplete_event_size=64 * 1024)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"onvif-camera-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server = None
                sock.close()
                raise CameraEmulatorError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        if self.discovery_port is not None:
            responder = DiscoveryResponder(self.host, self.discovery_port, self.camera.identity,
                                           lambda: (self.device_url,))
            try:
                self._discovery = responder.start()
            except OSError as exc:
                self.stop()
                raise CameraEmulatorError(f"cannot answer WS-Discovery on {self.host}:"
                                          f"{self.discovery_port}: {exc}") from exc
            self.discovery_port = responder.port
        log.info("ONVIF camera emulator on %s", self.device_url)
        return self

    def stop(self) -> None:
        if self._discovery is not None:
            self._discovery.stop()
            self._discovery = None
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> CameraEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ controls

    def set_faults(self, **changes: Any) -> None:
        """Change faults on the running camera, e.g. ``set_faults(skew_s=3600, blurred=True)``."""
        unknown = set(changes) - set(FAULT_NAMES)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULT_NAMES)}")
        with self.camera.lock:
            for name, value in changes.items():
                setattr(self.camera.faults, name, value)
            self.camera.publish_tamper()

    def change_password(self, password: str) -> None:
        """Someone changed the camera's password: clients with the old one are refused."""
        with self.camera.lock:
            self.camera.password = password

    # ------------------------------------------------------------------ ASGI gate: offline

    async def _gate(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.camera.faults.offline:
            await Response("camera offline", status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    # ------------------------------------------------------------------ SOAP

    async def _read_limited(self, request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _fault(self, fault: SoapFault) -> Response:
        with self.camera.lock:
            self.soap_faults.append(fault)
        return Response(fault_envelope(fault), status_code=fault.http_status,
                        media_type=SOAP_CONTENT_TYPE)

    async def _soap(self, request: Request) -> Response:
        data = await self._read_limited(request)
        if data is None:
            return self._fault(SoapFault("Sender", "InvalidArgs",
                                         f"request body over {MAX_BODY_BYTES} bytes"))
        try:
            req = parse_request(data)
            handler = OPERATIONS.get((req.namespace, req.operation))
            if handler is None:
                raise SoapFault("Receiver", "ActionNotSupported",
                                f"operation {req.operation} of {req.namespace or '(no namespace)'}"
                                " is not supported")
            sid = request.path_params.get("sid")
            ctx = Context(self.camera, self.base_url, f"rtsp://{self.host}:{self.port}", sid)
            with self.camera.lock:
                self.soap_requests += 1
                if (req.namespace, req.operation) not in NO_AUTH:
                    check_token(req.token, self.camera.user, self.camera.password,
                                self.camera.camera_utc())
            if (req.namespace, req.operation) == (TEV, "PullMessages"):
                await self._wait_for_events(sid, pull_timeout_s(req.body))
            with self.camera.lock:
                answer = handler(ctx, req.body)
        except SoapFault as fault:
            return self._fault(fault)
        return Response(envelope(answer, qname_prefixes=("tns1",)),
                        media_type=SOAP_CONTENT_TYPE)

    async def _wait_for_events(self, sid: str | None, timeout_s: float) -> None:
        """PullMessages holds the answer until an event is queued or its Timeout passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._server is not None:
            with self.camera.lock:
                if self.camera.events.has_events(sid):
                    return
            await asyncio.sleep(EVENT_POLL_S)

    # ------------------------------------------------------------------ snapshot and MJPEG

    def _challenge(self) -> Response:
        nonce = secrets.token_hex(16)
        with self.camera.lock:
            self._nonces[nonce] = None
            while len(self._nonces) > MAX_NONCES:
                self._nonces.popitem(last=False)
        header = f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'
        return Response("authentication required", status_code=401,
                        headers={"WWW-Authenticate": header})

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, rest = header.partition(" ")
        user, password = self.camera.user, self.camera.password
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(rest.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(given.encode(), f"{user}:{password}".encode())
        if scheme.lower() != "digest":
            return False
        p = _digest_params(rest)
        with self.camera.lock:
            known = p.get("nonce", "") in self._nonces
        if not known or p.get("username") != user or p.get("realm") != REALM:
            return False
        # RFC 7616 §3.4.1 with qop=auth (RFC 2069 form without qop also accepted)
        ha1 = _md5(f"{user}:{REALM}:{password}")
        ha2 = _md5(f"{request.method}:{p.get('uri', '')}")
        if p.get("qop"):
            expected = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:"
                            f"{p['qop']}:{ha2}")
        else:
            expected = _md5(f"{ha1}:{p['nonce']}:{ha2}")
        return hmac.compare_digest(expected, p.get("response", ""))

    def frame_jpeg(self, profile_token: str = PROFILES[0].token) -> bytes:
        """The current picture of a profile as JPEG (the frozen fault repeats the last one)."""
        spec = PROFILE_BY_TOKEN.get(profile_token, PROFILES[0])
        with self.camera.lock:
            f = self.camera.faults
            pos = self.camera.position()
            faults = ViewFaults(covered=f.covered, blurred=f.blurred, moved=f.moved,
                                frozen=f.frozen)
            t_s = self.camera.camera_utc().timestamp()
        return encode_jpeg(self.view.render(t_s, pos, faults, spec.width, spec.height))

    async def _snapshot(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._challenge()
        token = request.query_params.get("profile", PROFILES[0].token)
        if token not in PROFILE_BY_TOKEN:
            return Response(f"no profile {token}", status_code=404)
        jpeg = await asyncio.to_thread(self.frame_jpeg, token)
        return Response(jpeg, media_type="image/jpeg")

    async def _mjpeg(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._challenge()
        token = request.query_params.get("profile", PROFILES[1].token)
        if token not in PROFILE_BY_TOKEN:
            return Response(f"no profile {token}", status_code=404)
        frames = request.query_params.get("frames")
        limit = int(frames) if frames and frames.isdigit() else None

        async def parts() -> Any:
            sent = 0
            while limit is None or sent < limit:
                if self.camera.faults.offline or self._server is None:
                    return
                jpeg = await asyncio.to_thread(self.frame_jpeg, token)
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                       + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                sent += 1
                await asyncio.sleep(1.0 / MJPEG_FPS)

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")
