"""``OnvifCamera``: the ONVIF Profile S driver the edge camera agent and the technician CLI use,
a thin async layer over onvif-zeep-async (SOAP, WSDLs, WS-Security) and httpx (snapshots).

It owns what the library leaves to its callers: the clock handshake before signing, a timeout
on every request, arguments checked before they are sent, frozen results (``model``) instead
of zeep objects, and one typed error tree (``errors``) instead of zeep, aiohttp and ONVIFError
exceptions. It keeps no state beyond the open sessions, the facts read at connect and the
snapshot URIs (ONVIF Media §5.15: valid until reboot unless the camera says otherwise).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import httpx
import zeep.exceptions

from devices.onvif import clock
from devices.onvif.errors import (
    AuthError,
    BadReplyError,
    NotSupportedError,
    OnvifError,
    RefusedError,
    UnreachableError,
)
from devices.onvif.model import (
    PAN_RANGE,
    TILT_RANGE,
    ZOOM_RANGE,
    CameraFacts,
    Preset,
    Profile,
    PtzStatus,
)

if TYPE_CHECKING:
    from onvif import ONVIFCamera, ONVIFService

TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TEV = "http://www.onvif.org/ver10/events/wsdl"

# Argument ranges per move, in ONVIF's generic spaces (PTZ spec §5.7). A relative pan or tilt
# may cross the whole -1..1 range, hence ±2; a relative zoom the whole 0..1 range, hence ±1.
MOVE_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "absolute": (PAN_RANGE, TILT_RANGE, ZOOM_RANGE),
    "relative": ((-2.0, 2.0), (-2.0, 2.0), (-1.0, 1.0)),
    "continuous": ((-1.0, 1.0), (-1.0, 1.0), (-1.0, 1.0)),  # velocities; zoom < 0 zooms out
}
MAX_PRESET_NAME = 64  # tt:Name is at most 64 characters
JPEG_SOI = b"\xff\xd8"

# ONVIF Core §5.11.2.2 subcodes for a missing feature; any other fault (NoProfile, NoToken,
# InvalidArgVal, TooManyPresets …) is the camera refusing a request it understood.
_UNSUPPORTED_SUBCODES = {"ActionNotSupported", "NotSupported", "PTZNotSupported"}

_T = TypeVar("_T")

# What talking to a camera can raise below us; each becomes one of our errors in _translate.
_WIRE_ERRORS = (zeep.exceptions.Error, aiohttp.ClientError, httpx.HTTPError, OSError,
                TimeoutError)
# A reply without the fields we read surfaces as one of these while reading it.
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


def _check_range(what: str, value: float, bounds: tuple[float, float]) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{what} {value:g} is outside {bounds[0]:g}..{bounds[1]:g}")
    return float(value)


def _check_token(what: str, token: str) -> str:
    if not isinstance(token, str) or not token.strip():
        raise ValueError(f"{what} must be a non-empty token string, got {token!r}")
    return token


def _subcodes(fault: zeep.exceptions.Fault) -> set[str]:
    names = set()
    for code in fault.subcodes or ():
        text = getattr(code, "localname", None) or str(code)
        names.add(text.rpartition("}")[2].rpartition(":")[2])
    return names


def _utc_of(date_time: Any) -> datetime:
    """A tt:DateTime (Date, Time) as an aware UTC datetime."""
    d, t = date_time.Date, date_time.Time
    return datetime(d.Year, d.Month, d.Day, t.Hour, t.Minute, t.Second, tzinfo=UTC)


def clock_offset_from(camera_utc: datetime, sent: datetime, received: datetime) -> float:
    """Camera UTC minus local UTC, taking the local time halfway through the exchange. The
    camera reports whole seconds, so the result is good to about half a second."""
    local = sent + (received - sent) / 2
    return (camera_utc - local).total_seconds()


class OnvifCamera:
    """One ONVIF camera at ``host:port`` (the device service on ``/onvif/device_service``).

    ``await connect()`` first; it reads the camera clock without authentication and signs
    every later request with the camera's time, so a camera whose clock is off (common after
    a power cut without NTP) still accepts the password. Every request is bounded by
    ``timeout_s``. Errors are ``OnvifError`` subclasses; bad arguments are ``ValueError``
    before anything is sent.
    """

    def __init__(self, host: str, port: int, user: str, password: str, *,
                 timeout_s: float = 5.0) -> None:
        if not host:
            raise ValueError("host must not be empty")
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is outside 1..65535")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.timeout_s = timeout_s
        self.facts: CameraFacts | None = None
        self._cam: ONVIFCamera | None = None
        self._http: httpx.AsyncClient | None = None
        # One digest state for every snapshot: httpx reuses the camera's nonce (nc counts up),
        # so a poll costs one request, not a challenge and a retry. Basic once digest failed.
        self._snapshot_auth: httpx.Auth = httpx.DigestAuth(user, password)
        self._snapshot_uris: dict[str, str] = {}

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ errors

    def _translate(self, exc: BaseException, what: str) -> OnvifError:
        """One of our errors for what the library, zeep, aiohttp or httpx raised."""
        from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError

        where = f"camera {self.where}"
        if isinstance(exc, OnvifError):
            return exc
        if isinstance(exc, ONVIFAuthError):
            return AuthError(f"{where} refused user {self.user!r} ({what}); check the user name "
                             "and password")
        if isinstance(exc, ONVIFTimeoutError):
            return self._translate(TimeoutError(str(exc)), what)
        if isinstance(exc, ONVIFError):  # the library's wrapper: judge by its cause
            if "support service" in str(exc):
                return NotSupportedError(f"{where} does not offer {what}")
            cause = exc.__cause__
            return self._translate(cause if cause is not None else BadReplyError(str(exc)), what)
        if isinstance(exc, zeep.exceptions.Fault):
            codes = _subcodes(exc)
            text = f"{exc.message or ''} {' '.join(codes)}"
            if "NotAuthorized" in codes or "not authorized" in text.lower():
                return AuthError(
                    f"{where} refused user {self.user!r} ({what}: {exc.message}); check the "
                    "user name and password (the camera's web page, Users) and that the "
                    "account has the operator or administrator role")
            if codes & _UNSUPPORTED_SUBCODES:
                return NotSupportedError(f"{where} does not support {what}: {exc.message}")
            return RefusedError(f"{where} refused {what}: {exc.message} "
                                f"({', '.join(sorted(codes)) or 'no subcode'})")
        if isinstance(exc, zeep.exceptions.TransportError):
            return self._http_status_error(exc.status_code, what)
        if isinstance(exc, (zeep.exceptions.Error, *_SHAPE_ERRORS)):
            return BadReplyError(f"{where} sent an answer to {what} that is not the ONVIF reply "
                                 f"expected ({type(exc).__name__}: {exc}); check that this is "
                                 "the camera's ONVIF port and its firmware supports Profile S")
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            return UnreachableError(f"{where} did not answer {what} within "
                                    f"{self.timeout_s:g} s; check the address, the network "
                                    "and that the camera is powered")
        return UnreachableError(f"cannot reach {where} for {what} ({exc}); check the address, "
                                "the port (ONVIF is often on 80, 8000 or 8080), the cable and "
                                "that the camera is powered")

    def _http_status_error(self, status: int, what: str) -> OnvifError:
        where = f"camera {self.where}"
        if status == 401:
            return AuthError(f"{where} asked for HTTP authentication on {what} and refused "
                             f"user {self.user!r}; check the user name and password")
        if status in (502, 503, 504):
            return UnreachableError(
                f"{where} answered HTTP {status} to {what} (busy, starting up or its "
                "services are down); wait a minute, then check its power and web page")
        if status == 404:
            return NotSupportedError(f"{where} has no ONVIF service at the address used for "
                                     f"{what} (HTTP 404); check that ONVIF is enabled in its "
                                     "settings and that the port is its ONVIF/HTTP port")
        return BadReplyError(f"{where} answered {what} with HTTP {status}, not a SOAP reply; "
                             "check that this port is the camera's ONVIF port")

    async def _call(self, what: str, awaitable: Awaitable[_T], *,
                    timeout_s: float | None = None) -> _T:
        """Await a library call within the timeout, with its errors translated."""
        from onvif.exceptions import ONVIFError

        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                return await awaitable
        except (ONVIFError, *_WIRE_ERRORS, *_SHAPE_ERRORS) as exc:
            error = self._translate(exc, what)
            cause = exc
        # zeep reads a non-SOAP answer (an HTTP 503 page, say) as a broken reply; ask the
        # camera's clock directly to tell "down" from "garbled".
        if isinstance(error, BadReplyError):
            down = await self._down()
            if down is not None:
                raise down from cause
        raise error from cause

    async def _down(self) -> UnreachableError | None:
        try:
            await self._read_clock()
        except UnreachableError as exc:
            return exc
        except OnvifError:
            return None
        return None

    # ------------------------------------------------------------------ the clock, by hand

    @property
    def _device_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/onvif/device_service"

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True)
        return self._http

    async def _read_clock(self) -> float | None:
        """Camera UTC minus local UTC from an unauthenticated GetSystemDateAndTime; None when
        the camera wants a password even for that (ONVIF allows it; the library then signs)."""
        what = "GetSystemDateAndTime"
        sent = datetime.now(UTC)
        try:
            reply = await self._client().post(self._device_url, content=clock.REQUEST,
                                              headers={"Content-Type": clock.CONTENT_TYPE})
        except httpx.HTTPError as exc:
            raise self._translate(exc, what) from exc
        received = datetime.now(UTC)
        if reply.status_code in (401, 400, 500):  # a fault: NotAuthorized or not offered
            return None
        if reply.status_code != 200:
            raise self._http_status_error(reply.status_code, what)
        try:
            camera_utc = clock.parse_reply(reply.content)
        except BadReplyError as exc:
            raise BadReplyError(f"camera {self.where} answered {what} with something that is "
                                f"not its clock ({exc}); check that this is the camera's ONVIF "
                                "port") from exc
        return clock_offset_from(camera_utc, sent, received)

    def _connected(self) -> ONVIFCamera:
        if self._cam is None or self.facts is None:
            raise RuntimeError(f"camera {self.where}: call connect() first")
        return self._cam

    # ------------------------------------------------------------------ connection

    async def connect(self) -> CameraFacts:
        """Read the clock (unauthenticated), services, device information and profiles."""
        # Imported here, not at module level: importing onvif calls logging.basicConfig(INFO),
        # which would take over the root logger of a process that has not configured it yet.
        from onvif import ONVIFCamera

        await self.close()
        # adjust_time: GetSystemDateAndTime without authentication first, then every
        # WS-Security Created is shifted by the camera's offset (the camera refuses tokens
        # more than a few minutes from its own clock).
        cam = ONVIFCamera(self.host, self.port, self.user, self.password, adjust_time=True)
        self._cam = cam
        try:
            measured_s = await self._read_clock()
            await self._call("reading its services", cam.update_xaddrs(),
                             timeout_s=3 * self.timeout_s)
            offset_s = (measured_s if measured_s is not None
                        else cam.dt_diff.total_seconds() if cam.dt_diff is not None else 0.0)
            dev = await self._call("the device service", cam.create_devicemgmt_service())
            info = await self._call("GetDeviceInformation", dev.GetDeviceInformation())
            has_ptz, has_events = TPTZ in cam.xaddrs, TEV in cam.xaddrs
            if TRT not in cam.xaddrs:
                raise NotSupportedError(f"camera {self.where} has no ONVIF media service "
                                        "(not a Profile S video device)")
            media = await self._call("the media service", cam.create_media_service())
            if has_ptz:  # created now so concurrent PTZ calls later share one service
                await self._call("the PTZ service", cam.create_ptz_service())
            profiles = self._profiles_of(await self._call("GetProfiles", media.GetProfiles()))
            try:
                facts = CameraFacts(
                    manufacturer=str(info.Manufacturer or ""), model=str(info.Model or ""),
                    firmware=str(info.FirmwareVersion or ""),
                    serial=str(info.SerialNumber or ""),
                    hardware_id=str(info.HardwareId or ""), clock_offset_s=offset_s,
                    profiles=profiles, has_ptz=has_ptz, has_events=has_events)
            except _SHAPE_ERRORS as exc:
                raise self._translate(exc, "GetDeviceInformation") from exc
        except BaseException:
            await self.close()
            raise
        self.facts = facts
        return facts

    async def close(self) -> None:
        """Close the sessions; ``connect`` may be called again afterwards."""
        cam, http = self._cam, self._http
        self._cam, self._http, self.facts = None, None, None
        self._snapshot_uris.clear()
        if http is not None:
            await http.aclose()
        if cam is not None:
            await cam.close()

    async def __aenter__(self) -> OnvifCamera:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def clock_offset_s(self) -> float:
        """Camera UTC minus local UTC, read now."""
        cam = self._connected()
        measured_s = await self._read_clock()
        if measured_s is not None:
            return measured_s
        dev = await self._call("the device service", cam.create_devicemgmt_service())
        sent = datetime.now(UTC)  # this camera signs even its clock: ask with the password
        reply = await self._call("GetSystemDateAndTime", dev.GetSystemDateAndTime())
        received = datetime.now(UTC)
        try:
            camera_utc = _utc_of(reply.UTCDateTime)
        except _SHAPE_ERRORS as exc:
            raise self._translate(exc, "GetSystemDateAndTime (UTCDateTime)") from exc
        return clock_offset_from(camera_utc, sent, received)

    # ------------------------------------------------------------------ media

    def _profiles_of(self, reply: Any) -> tuple[Profile, ...]:
        out = []
        try:
            for p in reply or ():
                enc = p.VideoEncoderConfiguration
                res = enc.Resolution if enc is not None else None
                out.append(Profile(
                    token=str(p.token), name=str(p.Name or p.token),
                    encoding=str(enc.Encoding) if enc is not None else "",
                    width=int(res.Width) if res is not None else 0,
                    height=int(res.Height) if res is not None else 0,
                    ptz=p.PTZConfiguration is not None))
        except _SHAPE_ERRORS as exc:
            raise self._translate(exc, "GetProfiles") from exc
        return tuple(out)

    async def _media(self) -> ONVIFService:
        return await self._call("the media service", self._connected().create_media_service())

    async def profiles(self) -> list[Profile]:
        """The media profiles, read now."""
        media = await self._media()
        return list(self._profiles_of(await self._call("GetProfiles", media.GetProfiles())))

    async def stream_uri(self, profile_token: str) -> str:
        """The RTSP URI of a profile (RTP unicast over RTSP)."""
        _check_token("profile_token", profile_token)
        media = await self._media()
        reply = await self._call(f"GetStreamUri of profile {profile_token!r}", media.GetStreamUri({
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": profile_token}))
        return self._uri_of(reply, "GetStreamUri")

    async def snapshot_uri(self, profile_token: str) -> str:
        """The HTTP URI of a profile's JPEG snapshot."""
        _check_token("profile_token", profile_token)
        if profile_token not in self._snapshot_uris:
            media = await self._media()
            reply = await self._call(f"GetSnapshotUri of profile {profile_token!r}",
                                     media.GetSnapshotUri({"ProfileToken": profile_token}))
            self._snapshot_uris[profile_token] = self._uri_of(reply, "GetSnapshotUri")
        return self._snapshot_uris[profile_token]

    def _uri_of(self, reply: Any, what: str) -> str:
        uri = getattr(reply, "Uri", None)
        if not isinstance(uri, str) or not uri:
            raise BadReplyError(f"camera {self.where} answered {what} without a URI")
        return uri

    def _snapshot_candidates(self) -> list[str]:
        """JPEG profiles first (their snapshot needs no transcoding), then the others."""
        self._connected()
        assert self.facts is not None
        profiles = self.facts.profiles
        return ([p.token for p in profiles if p.encoding.upper() == "JPEG"]
                + [p.token for p in profiles if p.encoding.upper() != "JPEG"])

    async def snapshot(self, profile_token: str | None = None) -> bytes:
        """A JPEG picture now, from the snapshot URI with HTTP digest (basic if digest is
        refused). Without a profile: the first JPEG profile, else the first that offers one."""
        if profile_token is not None:
            return await self._fetch_snapshot(await self.snapshot_uri(profile_token))
        candidates = self._snapshot_candidates()
        if not candidates:
            raise NotSupportedError(f"camera {self.where} has no media profile to take a "
                                    "snapshot from")
        last: OnvifError | None = None
        for token in candidates:
            try:
                uri = await self.snapshot_uri(token)
            except (NotSupportedError, RefusedError, BadReplyError) as exc:
                last = exc
                continue
            return await self._fetch_snapshot(uri)
        raise NotSupportedError(f"no profile of camera {self.where} offers a snapshot "
                                f"({last})")

    async def _fetch_snapshot(self, uri: str) -> bytes:
        self._connected()
        http, what = self._client(), "the snapshot"
        try:
            reply = await http.get(uri, auth=self._snapshot_auth)
            if reply.status_code == 401 and isinstance(self._snapshot_auth, httpx.DigestAuth):
                basic = httpx.BasicAuth(self.user, self.password)  # some cameras take only basic
                reply = await http.get(uri, auth=basic)
                if reply.status_code != 401:
                    self._snapshot_auth = basic
        except httpx.HTTPError as exc:
            raise self._translate(exc, what) from exc
        if reply.status_code == 401:
            raise AuthError(f"camera {self.where} refused user {self.user!r} for the snapshot "
                            f"({uri}); check the password and that the user may view video")
        if reply.status_code in (502, 503, 504):
            raise UnreachableError(f"camera {self.where} answered HTTP {reply.status_code} for "
                                   "the snapshot (busy or offline); try again shortly")
        if reply.status_code != 200:
            raise BadReplyError(f"camera {self.where} answered HTTP {reply.status_code} for "
                                f"the snapshot {uri}")
        if not reply.content.startswith(JPEG_SOI):
            raise BadReplyError(f"camera {self.where} sent {len(reply.content)} bytes of "
                                f"{reply.headers.get('content-type', 'unknown type')} for the "
                                "snapshot, not a JPEG picture")
        return reply.content

    # ------------------------------------------------------------------ PTZ

    async def _ptz(self, profile_token: str) -> ONVIFService:
        cam = self._connected()
        _check_token("profile_token", profile_token)
        facts = self.facts
        assert facts is not None
        if not facts.has_ptz:
            raise NotSupportedError(f"camera {self.where} ({facts.model}) has no PTZ service: "
                                    "it is a fixed camera, or PTZ is disabled in its settings")
        profile = next((p for p in facts.profiles if p.token == profile_token), None)
        if profile is not None and not profile.ptz:
            raise NotSupportedError(f"profile {profile_token!r} of camera {self.where} has no "
                                    "PTZ configuration; use a profile with one ("
                                    + ", ".join(p.token for p in facts.profiles if p.ptz) + ")")
        return await self._call("the PTZ service", cam.create_ptz_service())

    @staticmethod
    def _vector(kind: str, pan: float, tilt: float, zoom: float) -> dict[str, Any]:
        (pr, tr, zr) = MOVE_RANGES[kind]
        return {"PanTilt": {"x": _check_range(f"{kind} pan", pan, pr),
                            "y": _check_range(f"{kind} tilt", tilt, tr)},
                "Zoom": {"x": _check_range(f"{kind} zoom", zoom, zr)}}

    async def ptz_status(self, profile_token: str) -> PtzStatus:
        ptz = await self._ptz(profile_token)
        reply = await self._call("PTZ GetStatus", ptz.GetStatus({"ProfileToken": profile_token}))
        try:
            pos, moves = reply.Position, reply.MoveStatus
            moving = moves is not None and "MOVING" in (str(moves.PanTilt), str(moves.Zoom))
            utc = reply.UtcTime if isinstance(reply.UtcTime, datetime) else None
            return PtzStatus(pan=float(pos.PanTilt.x), tilt=float(pos.PanTilt.y),
                             zoom=float(pos.Zoom.x), moving=moving, utc=utc)
        except _SHAPE_ERRORS as exc:
            raise self._translate(exc, "PTZ GetStatus (position)") from exc

    async def ptz_continuous(self, profile_token: str, pan: float, tilt: float, zoom: float,
                             timeout_s: float | None = None) -> None:
        """Move at these velocities (-1..1 each) until ``ptz_stop`` or ``timeout_s``."""
        request: dict[str, Any] = {"ProfileToken": profile_token,
                                   "Velocity": self._vector("continuous", pan, tilt, zoom)}
        if timeout_s is not None:
            if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s)
                    and timeout_s > 0):
                raise ValueError(f"timeout_s must be a positive number of seconds, "
                                 f"got {timeout_s!r}")
            request["Timeout"] = f"PT{timeout_s:.3f}".rstrip("0").rstrip(".") + "S"
        ptz = await self._ptz(profile_token)
        await self._call("PTZ ContinuousMove", ptz.ContinuousMove(request))

    async def ptz_relative(self, profile_token: str, pan: float, tilt: float,
                           zoom: float) -> None:
        """Move by this much (pan, tilt -2..2; zoom -1..1)."""
        request = {"ProfileToken": profile_token,
                   "Translation": self._vector("relative", pan, tilt, zoom)}
        ptz = await self._ptz(profile_token)
        await self._call("PTZ RelativeMove", ptz.RelativeMove(request))

    async def ptz_absolute(self, profile_token: str, pan: float, tilt: float,
                           zoom: float) -> None:
        """Move to this position (pan, tilt -1..1; zoom 0..1)."""
        request = {"ProfileToken": profile_token,
                   "Position": self._vector("absolute", pan, tilt, zoom)}
        ptz = await self._ptz(profile_token)
        await self._call("PTZ AbsoluteMove", ptz.AbsoluteMove(request))

    async def ptz_stop(self, profile_token: str) -> None:
        ptz = await self._ptz(profile_token)
        await self._call("PTZ Stop", ptz.Stop({"ProfileToken": profile_token,
                                               "PanTilt": True, "Zoom": True}))

    async def presets(self, profile_token: str) -> list[Preset]:
        ptz = await self._ptz(profile_token)
        reply = await self._call("PTZ GetPresets",
                                 ptz.GetPresets({"ProfileToken": profile_token}))
        out = []
        try:
            for p in reply or ():
                pos = p.PTZPosition
                pt = pos.PanTilt if pos is not None else None
                z = pos.Zoom if pos is not None else None
                out.append(Preset(token=str(p.token), name=str(p.Name or ""),
                                  pan=float(pt.x) if pt is not None else None,
                                  tilt=float(pt.y) if pt is not None else None,
                                  zoom=float(z.x) if z is not None else None))
        except _SHAPE_ERRORS as exc:
            raise self._translate(exc, "PTZ GetPresets") from exc
        return out

    async def set_preset(self, profile_token: str, name: str) -> str:
        """Store the current position as a new preset called ``name``; returns its token."""
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_PRESET_NAME:
            raise ValueError(f"preset name must be 1..{MAX_PRESET_NAME} characters, "
                             f"got {name!r}")
        ptz = await self._ptz(profile_token)
        reply = await self._call("PTZ SetPreset", ptz.SetPreset(
            {"ProfileToken": profile_token, "PresetName": name}))
        token = reply if isinstance(reply, str) else getattr(reply, "PresetToken", None)
        if not token:
            raise BadReplyError(f"camera {self.where} answered SetPreset without a token")
        return str(token)

    async def goto_preset(self, profile_token: str, preset_token: str) -> None:
        _check_token("preset_token", preset_token)
        ptz = await self._ptz(profile_token)
        await self._call(f"PTZ GotoPreset {preset_token!r}", ptz.GotoPreset(
            {"ProfileToken": profile_token, "PresetToken": preset_token}))

    async def remove_preset(self, profile_token: str, preset_token: str) -> None:
        _check_token("preset_token", preset_token)
        ptz = await self._ptz(profile_token)
        await self._call(f"PTZ RemovePreset {preset_token!r}", ptz.RemovePreset(
            {"ProfileToken": profile_token, "PresetToken": preset_token}))
