"""The ONVIF driver (``devices.onvif.OnvifCamera``) against the camera emulator on loopback:
facts, media URIs, snapshots, every PTZ move, presets, and each failure as its typed error."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from devices.onvif import (
    AuthError,
    BadReplyError,
    CameraFacts,
    NotSupportedError,
    OnvifCamera,
    Profile,
    PtzStatus,
    RefusedError,
    UnreachableError,
)
from firmware_sim.onvif import services
from firmware_sim.onvif.camera import PtzHead
from firmware_sim.onvif.server import CameraEmulator
from firmware_sim.onvif.soap import TDS, TPTZ

USER, PASSWORD = "admin", "kamera123"
MAIN = "Profile_Main"


@pytest.fixture(scope="module")
def emulator() -> Iterator[CameraEmulator]:
    with CameraEmulator(user=USER, password=PASSWORD) as emu:
        yield emu


@pytest.fixture
def camera(emulator: CameraEmulator) -> Iterator[CameraEmulator]:
    """The shared emulator with no faults, the original password, the head at home, no presets."""
    emulator.set_faults(offline=False, skew_s=0.0)
    emulator.change_password(PASSWORD)
    with emulator.camera.lock:
        emulator.camera.ptz = PtzHead(updated_s=emulator.camera.now_s())
        emulator.camera.presets.clear()
    yield emulator
    emulator.set_faults(offline=False, skew_s=0.0)
    emulator.change_password(PASSWORD)


def run(port: int, body: Callable[[OnvifCamera], Awaitable[Any]], *, password: str = PASSWORD,
        timeout_s: float = 5.0) -> Any:
    async def main() -> Any:
        async with OnvifCamera("127.0.0.1", port, USER, password, timeout_s=timeout_s) as cam:
            return await body(cam)
    return asyncio.run(main())


async def idle(cam: OnvifCamera, profile: str = MAIN) -> PtzStatus:
    for _ in range(100):
        status = await cam.ptz_status(profile)
        if not status.moving:
            return status
        await asyncio.sleep(0.02)
    raise AssertionError("the PTZ head is still moving")


def pos(status: PtzStatus) -> tuple[float, float, float]:
    return status.pan, status.tilt, status.zoom


# ------------------------------------------------------------------ facts and media

def test_connect_reads_the_facts(camera: CameraEmulator) -> None:
    async def body(cam: OnvifCamera) -> tuple[CameraFacts | None, list[Profile]]:
        return cam.facts, await cam.profiles()

    facts, profiles = run(camera.port, body)
    assert facts is not None
    assert (facts.manufacturer, facts.model, facts.firmware, facts.serial, facts.hardware_id) == (
        "Kota Pintar", "KP-PTZ-2MP", "1.4.2", "KPCAM0001", "KP-HW-21")
    assert facts.has_ptz and facts.has_events
    assert abs(facts.clock_offset_s) < 1.5
    assert facts.profiles == (
        Profile("Profile_Main", "mainStream", "H264", 1920, 1080, True),
        Profile("Profile_Sub", "subStream", "H264", 640, 360, True),
        Profile("Profile_JPEG", "jpegStream", "JPEG", 640, 360, True))
    assert profiles == list(facts.profiles)


def test_stream_and_snapshot_uris(camera: CameraEmulator) -> None:
    async def body(cam: OnvifCamera) -> tuple[str, ...]:
        return (await cam.stream_uri(MAIN), await cam.stream_uri("Profile_Sub"),
                await cam.snapshot_uri(MAIN))

    main, sub, snap = run(camera.port, body)
    assert main == f"rtsp://127.0.0.1:{camera.port}/Streaming/Channels/101"
    assert sub.endswith("/Streaming/Channels/102")
    assert snap == f"http://127.0.0.1:{camera.port}/snapshot.jpg?profile={MAIN}"
    with pytest.raises(RefusedError, match="NoProfile"):
        run(camera.port, lambda cam: cam.stream_uri("Profile_Nope"))


def _decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_snapshot_is_a_jpeg(camera: CameraEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str] = []
    original = camera._authorised

    def counted(request: Any) -> bool:
        checks.append(request.headers.get("authorization", "").partition(" ")[0])
        return original(request)

    monkeypatch.setattr(camera, "_authorised", counted)

    async def body(cam: OnvifCamera) -> tuple[bytes, bytes]:
        return await cam.snapshot(), await cam.snapshot(MAIN)

    default, main = run(camera.port, body)
    assert _decode(default).shape == (360, 640, 3)  # the JPEG profile comes first
    assert _decode(main).shape == (1080, 1920, 3)
    assert checks == ["", "Digest", "Digest"]  # challenged once, then the nonce is reused


def test_snapshot_falls_back_to_basic_auth(camera: CameraEmulator,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    original = camera._authorised

    def basic_only(request: Any) -> bool:
        scheme = request.headers.get("authorization", "").partition(" ")[0]
        seen.append(scheme)
        return scheme.lower() == "basic" and original(request)

    monkeypatch.setattr(camera, "_authorised", basic_only)

    async def body(cam: OnvifCamera) -> list[bytes]:
        return [await cam.snapshot("Profile_Sub") for _ in range(2)]

    assert [_decode(jpeg).shape[0] for jpeg in run(camera.port, body)] == [360, 360]
    assert seen == ["", "Digest", "Basic", "Basic"]  # basic remembered after the fallback


def test_snapshot_with_a_changed_password_is_an_auth_error(camera: CameraEmulator) -> None:
    async def body(cam: OnvifCamera) -> bytes:
        await cam.snapshot()  # the snapshot URI is known now; then the password changes
        camera.change_password("baru-diganti")
        return await cam.snapshot()

    with pytest.raises(AuthError, match="snapshot"):
        run(camera.port, body)


# ------------------------------------------------------------------ PTZ

def test_every_ptz_move_shows_in_the_status(camera: CameraEmulator) -> None:
    async def body(cam: OnvifCamera) -> dict[str, Any]:
        out: dict[str, Any] = {"home": await idle(cam)}
        await cam.ptz_absolute(MAIN, 0.5, -0.25, 0.5)
        out["absolute"] = await idle(cam)
        await cam.ptz_relative(MAIN, 0.25, 0.25, 0.25)
        out["relative"] = await idle(cam)
        await cam.ptz_relative(MAIN, -1.75, 0.0, -0.75)
        out["back"] = await idle(cam)
        await cam.ptz_continuous(MAIN, 1.0, -0.5, 0.0, timeout_s=0.2)
        out["moving"] = await cam.ptz_status(MAIN)
        await asyncio.sleep(0.3)
        out["timed_out"] = await cam.ptz_status(MAIN)
        await cam.ptz_continuous(MAIN, 0.0, 0.0, 1.0)
        await asyncio.sleep(0.1)
        await cam.ptz_stop(MAIN)
        out["stopped"] = await cam.ptz_status(MAIN)
        await asyncio.sleep(0.1)
        out["still"] = await cam.ptz_status(MAIN)
        return out

    out = run(camera.port, body)
    assert pos(out["home"]) == (0.0, 0.0, 0.0) and out["home"].utc is not None
    assert pos(out["absolute"]) == pytest.approx((0.5, -0.25, 0.5))
    assert pos(out["relative"]) == pytest.approx((0.75, 0.0, 0.75))
    assert pos(out["back"]) == pytest.approx((-1.0, 0.0, 0.0))  # clamped at the range
    assert out["moving"].moving and not out["timed_out"].moving
    pan, tilt, zoom = pos(out["timed_out"])  # 0.2 s at velocity (1, -0.5), 0.5 units/s
    assert pan == pytest.approx(-0.9, abs=0.01) and tilt == pytest.approx(-0.05, abs=0.005)
    assert not out["stopped"].moving and pos(out["stopped"]) == pos(out["still"])
    assert 0.0 < out["stopped"].zoom < 0.2  # zoomed in for ~0.1 s, then stopped


def test_presets_set_go_to_and_remove(camera: CameraEmulator) -> None:
    async def body(cam: OnvifCamera) -> dict[str, Any]:
        await cam.ptz_absolute(MAIN, -0.5, 0.25, 0.75)
        await idle(cam)
        token = await cam.set_preset(MAIN, "Simpang utara")
        out: dict[str, Any] = {"token": token, "listed": await cam.presets(MAIN)}
        await cam.ptz_absolute(MAIN, 0.0, 0.0, 0.0)
        await idle(cam)
        await cam.goto_preset(MAIN, token)
        out["at_preset"] = await idle(cam)
        await cam.remove_preset(MAIN, token)
        out["after"] = await cam.presets(MAIN)
        try:
            await cam.goto_preset(MAIN, token)
        except RefusedError as exc:
            out["goto_removed"] = exc
        return out

    out = run(camera.port, body)
    (preset,) = out["listed"]
    assert (preset.token, preset.name) == (out["token"], "Simpang utara")
    assert (preset.pan, preset.tilt, preset.zoom) == pytest.approx((-0.5, 0.25, 0.75))
    assert pos(out["at_preset"]) == pytest.approx((-0.5, 0.25, 0.75))
    assert out["after"] == []
    assert "NoToken" in str(out["goto_removed"])


def test_camera_without_ptz_says_so(camera: CameraEmulator,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    get_services = services.OPERATIONS[(TDS, "GetServices")]

    def without_ptz(ctx: Any, body: Any) -> Any:
        out = get_services(ctx, body)
        for svc in list(out):
            if svc.findtext(f"{{{TDS}}}Namespace") == TPTZ:
                out.remove(svc)
        return out

    monkeypatch.setitem(services.OPERATIONS, (TDS, "GetServices"), without_ptz)

    async def body(cam: OnvifCamera) -> CameraFacts | None:
        try:
            await cam.ptz_absolute(MAIN, 0.0, 0.0, 0.0)
        except NotSupportedError as exc:
            assert "no PTZ" in str(exc)
            return cam.facts
        raise AssertionError("a PTZ move on a camera without PTZ was sent")

    facts = run(camera.port, body)
    assert facts is not None and not facts.has_ptz


# ------------------------------------------------------------------ failures

def test_wrong_password_is_an_auth_error(camera: CameraEmulator) -> None:
    with pytest.raises(AuthError, match="refused user 'admin'"):
        run(camera.port, lambda cam: cam.profiles(), password="salah")

    async def changed_under_us(cam: OnvifCamera) -> Any:
        camera.change_password("baru-diganti")
        return await cam.ptz_status(MAIN)

    with pytest.raises(AuthError):
        run(camera.port, changed_under_us)


def test_offline_camera_is_unreachable(camera: CameraEmulator) -> None:
    camera.set_faults(offline=True)
    with pytest.raises(UnreachableError, match="503"):
        run(camera.port, lambda cam: cam.profiles())
    camera.set_faults(offline=False)

    async def goes_offline(cam: OnvifCamera) -> Any:
        camera.set_faults(offline=True)
        return await cam.ptz_status(MAIN)

    with pytest.raises(UnreachableError, match="503"):
        run(camera.port, goes_offline)


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: the connection is refused
        with pytest.raises(UnreachableError, match="cannot reach"):
            run(port, lambda cam: cam.profiles())


def test_silent_camera_times_out() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)  # accepts in the kernel, never answers
        started = time.monotonic()
        with pytest.raises(UnreachableError, match="within 0.3 s"):
            run(sock.getsockname()[1], lambda cam: cam.profiles(), timeout_s=0.3)
        assert time.monotonic() - started < 2.0


def test_a_web_server_that_is_not_onvif_is_a_bad_reply() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)

        def answer() -> None:
            for _ in range(4):
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                 b"Content-Length: 13\r\nConnection: close\r\n\r\n<html>hi</ht>")

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(BadReplyError, match="ONVIF port"):
            run(server.getsockname()[1], lambda cam: cam.profiles())


def test_skewed_clock_still_connects_and_reports_the_offset(camera: CameraEmulator) -> None:
    camera.set_faults(skew_s=3600.0)

    async def body(cam: OnvifCamera) -> tuple[CameraFacts | None, float, PtzStatus]:
        return cam.facts, await cam.clock_offset_s(), await cam.ptz_status(MAIN)

    facts, offset_s, status = run(camera.port, body)
    assert facts is not None and facts.clock_offset_s == pytest.approx(3600, abs=1.5)
    assert offset_s == pytest.approx(3600, abs=1.5)
    assert status.utc is not None  # a signed request: the token carried the camera's time


BAD_CALLS: list[tuple[Callable[[OnvifCamera], Awaitable[Any]], str]] = [
    (lambda c: c.ptz_absolute(MAIN, 1.5, 0.0, 0.0), "absolute pan 1.5 is outside -1..1"),
    (lambda c: c.ptz_absolute(MAIN, 0.0, -1.01, 0.0), "absolute tilt"),
    (lambda c: c.ptz_absolute(MAIN, 0.0, 0.0, -0.1), "absolute zoom -0.1 is outside 0..1"),
    (lambda c: c.ptz_absolute(MAIN, math.nan, 0.0, 0.0), "finite"),
    (lambda c: c.ptz_relative(MAIN, 2.5, 0.0, 0.0), "relative pan"),
    (lambda c: c.ptz_relative(MAIN, 0.0, 0.0, 1.5), "relative zoom"),
    (lambda c: c.ptz_continuous(MAIN, 0.0, 1.2, 0.0), "continuous tilt"),
    (lambda c: c.ptz_continuous(MAIN, 0.5, 0.0, 0.0, timeout_s=0), "timeout_s"),
    (lambda c: c.ptz_continuous(MAIN, 0.5, 0.0, 0.0, timeout_s=math.inf), "timeout_s"),
    (lambda c: c.ptz_status(""), "profile_token"),
    (lambda c: c.set_preset(MAIN, ""), "preset name"),
    (lambda c: c.set_preset(MAIN, "x" * 65), "preset name"),
    (lambda c: c.goto_preset(MAIN, " "), "preset_token"),
    (lambda c: c.remove_preset(MAIN, ""), "preset_token"),
    (lambda c: c.stream_uri(""), "profile_token"),
]


def test_arguments_are_checked_before_sending(camera: CameraEmulator) -> None:
    async def body(cam: OnvifCamera) -> int:
        before = camera.soap_requests
        for call, says in BAD_CALLS:
            with pytest.raises(ValueError, match=says):
                await call(cam)
        return camera.soap_requests - before

    assert run(camera.port, body) == 0


def test_constructor_and_use_before_connect() -> None:
    for kwargs in ({"port": 0}, {"port": 70000}, {"timeout_s": 0.0}, {"host": ""}):
        args = {"host": "127.0.0.1", "port": 80, "timeout_s": 1.0} | kwargs
        with pytest.raises(ValueError):
            OnvifCamera(args["host"], args["port"], USER, PASSWORD, timeout_s=args["timeout_s"])
    cam = OnvifCamera("127.0.0.1", 80, USER, PASSWORD)
    assert cam.facts is None
    with pytest.raises(RuntimeError, match="connect"):
        asyncio.run(cam.ptz_status(MAIN))
