"""The ONVIF camera emulator against the real onvif-zeep-async client over loopback, plus the
SOAP codec on its own and malformed requests on the wire."""

from __future__ import annotations

import asyncio
import base64
import datetime
import socket
import time
from collections.abc import Iterator
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import zeep.exceptions
from hypothesis import given, settings
from hypothesis import strategies as st
from onvif import ONVIFCamera
from onvif.exceptions import ONVIFError

from firmware_sim.onvif.camera import Position, PtzHead
from firmware_sim.onvif.scene import TestPattern
from firmware_sim.onvif.server import CameraEmulator
from firmware_sim.onvif.soap import (
    MAX_BODY_BYTES,
    SOAP_ENV,
    TDS,
    SoapFault,
    UsernameToken,
    check_token,
    parse_created,
    parse_duration_s,
    parse_fault,
    parse_request,
    password_digest,
)
from firmware_sim.onvif.view import CameraView, ViewFaults

USER, PASSWORD = "admin", "kamera123"
MAIN = "Profile_Main"


@pytest.fixture(scope="module")
def emulator() -> Iterator[CameraEmulator]:
    with CameraEmulator(user=USER, password=PASSWORD) as emu:
        yield emu


@pytest.fixture
def camera(emulator: CameraEmulator) -> Iterator[CameraEmulator]:
    """The shared emulator, reset to no faults and the original password around each test."""
    emulator.set_faults(offline=False, skew_s=0.0, covered=False, blurred=False, moved=False,
                        frozen=False)
    emulator.change_password(PASSWORD)
    with emulator.camera.lock:
        emulator.camera.ptz = PtzHead(updated_s=emulator.camera.now_s())
    yield emulator
    emulator.set_faults(offline=False, skew_s=0.0)
    emulator.change_password(PASSWORD)


async def _with_client(port: int, body: Any, *, password: str = PASSWORD,
                       adjust_time: bool = False) -> Any:
    cam = ONVIFCamera("127.0.0.1", port, USER, password, adjust_time=adjust_time)
    try:
        await cam.update_xaddrs()
        return await body(cam)
    finally:
        await cam.close()


def run(port: int, body: Any, **kw: Any) -> Any:
    return asyncio.run(_with_client(port, body, **kw))


# ------------------------------------------------------------------ the real client

def test_device_services_and_information(camera: CameraEmulator) -> None:
    async def body(cam: ONVIFCamera) -> dict[str, Any]:
        dev = await cam.create_devicemgmt_service()
        return {"info": await dev.GetDeviceInformation(),
                "nics": await dev.GetNetworkInterfaces(), "scopes": await dev.GetScopes(),
                "host": await dev.GetHostname(), "caps": await cam.get_capabilities(),
                "xaddrs": dict(cam.xaddrs)}

    out = run(camera.port, body)
    base = f"http://127.0.0.1:{camera.port}"
    assert out["xaddrs"]["http://www.onvif.org/ver20/ptz/wsdl"] == f"{base}/onvif/ptz_service"
    assert out["xaddrs"]["http://www.onvif.org/ver10/media/wsdl"] == f"{base}/onvif/media_service"
    info = out["info"]
    assert (info.Manufacturer, info.Model, info.SerialNumber) == (
        "Kota Pintar", "KP-PTZ-2MP", "KPCAM0001")
    assert info.FirmwareVersion and info.HardwareId
    assert out["nics"][0].Info.HwAddress == "00:17:61:20:00:01"
    assert any("Profile/Streaming" in s.ScopeItem for s in out["scopes"])
    assert out["host"].Name == "kamera-simpang-1"
    assert out["caps"]["PTZ"]["XAddr"] == f"{base}/onvif/ptz_service"


def test_profiles_stream_and_snapshot_uris(camera: CameraEmulator) -> None:
    async def body(cam: ONVIFCamera) -> tuple[Any, ...]:
        media = await cam.create_media_service()
        profiles = await media.GetProfiles()
        stream = await media.GetStreamUri({
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": profiles[1].token})
        snap_uri = await cam.get_snapshot_uri(MAIN)
        snap = await cam.get_snapshot(MAIN)
        sources = await media.GetVideoSources()
        return profiles, stream, snap_uri, snap, sources

    profiles, stream, snap_uri, snap, sources = run(camera.port, body)
    sizes = {p.token: (p.VideoEncoderConfiguration.Encoding,
                       p.VideoEncoderConfiguration.Resolution.Width,
                       p.VideoEncoderConfiguration.Resolution.Height) for p in profiles}
    assert sizes[MAIN] == ("H264", 1920, 1080)
    assert sizes["Profile_Sub"] == ("H264", 640, 360)
    assert "JPEG" in {s[0] for s in sizes.values()}
    assert all(p.PTZConfiguration.token == "PTZConfig_1" for p in profiles)
    assert profiles[0].PTZConfiguration.DefaultAbsolutePantTiltPositionSpace.endswith(
        "PositionGenericSpace")
    assert stream.Uri.startswith(f"rtsp://127.0.0.1:{camera.port}/")
    assert snap_uri == f"http://127.0.0.1:{camera.port}/snapshot.jpg?profile={MAIN}"
    image = cv2.imdecode(np.frombuffer(snap, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (1080, 1920, 3)
    assert sources[0].Resolution.Width == 1920


def test_snapshot_digest_basic_and_refusal(camera: CameraEmulator) -> None:
    url = f"http://127.0.0.1:{camera.port}/snapshot.jpg?profile=Profile_Sub"
    with httpx.Client(timeout=5) as http:
        assert http.get(url).status_code == 401
        assert http.get(url, auth=httpx.DigestAuth(USER, "salah")).status_code == 401
        ok = http.get(url, auth=httpx.DigestAuth(USER, PASSWORD))
        basic = http.get(url, auth=(USER, PASSWORD))
        with http.stream("GET", f"http://127.0.0.1:{camera.port}/mjpeg?frames=2",
                         auth=httpx.DigestAuth(USER, PASSWORD)) as mjpeg:
            assert mjpeg.headers["content-type"].startswith("multipart/x-mixed-replace")
            stream = mjpeg.read()
    assert ok.status_code == 200 and basic.status_code == 200
    image = cv2.imdecode(np.frombuffer(ok.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)
    assert stream.count(b"--frame") == 2 and stream.count(b"\xff\xd8") == 2


def _wait_idle(ptz: Any) -> Any:
    async def poll() -> Any:
        for _ in range(100):
            status = await ptz.GetStatus({"ProfileToken": MAIN})
            if status.MoveStatus.PanTilt == "IDLE" and status.MoveStatus.Zoom == "IDLE":
                return status
            await asyncio.sleep(0.02)
        raise AssertionError("PTZ still moving")
    return poll()


def _pos(status: Any) -> tuple[float, float, float]:
    p = status.Position
    return p.PanTilt.x, p.PanTilt.y, p.Zoom.x


def test_ptz_moves_presets_and_status(camera: CameraEmulator) -> None:
    async def body(cam: ONVIFCamera) -> dict[str, Any]:
        ptz = await cam.create_ptz_service()
        out: dict[str, Any] = {"nodes": await ptz.GetNodes(),
                               "configs": await ptz.GetConfigurations(),
                               "options": await ptz.GetConfigurationOptions(
                                   {"ConfigurationToken": "PTZConfig_1"})}
        await ptz.AbsoluteMove({"ProfileToken": MAIN, "Position": {
            "PanTilt": {"x": 0.0, "y": 0.0}, "Zoom": {"x": 0.0}}})
        await _wait_idle(ptz)
        await ptz.ContinuousMove({"ProfileToken": MAIN, "Velocity": {
            "PanTilt": {"x": 1.0, "y": -0.5}, "Zoom": {"x": 0.0}}, "Timeout": "PT0.2S"})
        out["moving"] = await ptz.GetStatus({"ProfileToken": MAIN})
        await asyncio.sleep(0.3)
        out["after_timeout"] = await ptz.GetStatus({"ProfileToken": MAIN})
        await ptz.ContinuousMove({"ProfileToken": MAIN, "Velocity": {
            "PanTilt": {"x": -1.0, "y": 0.0}}})
        await asyncio.sleep(0.1)
        await ptz.Stop({"ProfileToken": MAIN, "PanTilt": True, "Zoom": True})
        out["stopped"] = await ptz.GetStatus({"ProfileToken": MAIN})
        await asyncio.sleep(0.1)
        out["still"] = await ptz.GetStatus({"ProfileToken": MAIN})
        await ptz.AbsoluteMove({"ProfileToken": MAIN, "Position": {
            "PanTilt": {"x": 0.5, "y": -0.25}, "Zoom": {"x": 0.5}}})
        out["absolute"] = await _wait_idle(ptz)
        await ptz.RelativeMove({"ProfileToken": MAIN, "Translation": {
            "PanTilt": {"x": 0.25, "y": 0.25}, "Zoom": {"x": 0.25}}})
        out["relative"] = await _wait_idle(ptz)
        await ptz.AbsoluteMove({"ProfileToken": MAIN, "Position": {
            "PanTilt": {"x": 5.0, "y": -5.0}, "Zoom": {"x": 2.0}}})
        out["clamped"] = await _wait_idle(ptz)
        token = await ptz.SetPreset({"ProfileToken": MAIN, "PresetName": "Simpang utara"})
        await ptz.AbsoluteMove({"ProfileToken": MAIN, "Position": {
            "PanTilt": {"x": 0.0, "y": 0.0}, "Zoom": {"x": 0.0}}})
        await _wait_idle(ptz)
        await ptz.GotoPreset({"ProfileToken": MAIN, "PresetToken": token})
        out["preset"] = await _wait_idle(ptz)
        out["presets"] = await ptz.GetPresets({"ProfileToken": MAIN})
        await ptz.RemovePreset({"ProfileToken": MAIN, "PresetToken": token})
        out["presets_after"] = await ptz.GetPresets({"ProfileToken": MAIN})
        try:
            await ptz.GotoPreset({"ProfileToken": MAIN, "PresetToken": token})
        except zeep.exceptions.Fault as exc:
            out["goto_removed"] = exc
        return out

    out = run(camera.port, body)
    assert out["nodes"][0].SupportedPTZSpaces.AbsolutePanTiltPositionSpace[0].XRange.Max == 1.0
    assert out["configs"][0].DefaultAbsolutePantTiltPositionSpace
    assert out["options"].Spaces.ContinuousPanTiltVelocitySpace[0].URI.endswith(
        "VelocityGenericSpace")
    assert out["moving"].MoveStatus.PanTilt == "MOVING"
    pan, tilt, _ = _pos(out["after_timeout"])
    assert out["after_timeout"].MoveStatus.PanTilt == "IDLE"
    assert pan == pytest.approx(0.1, abs=0.01) and tilt == pytest.approx(-0.05, abs=0.005)
    assert out["stopped"].MoveStatus.PanTilt == "IDLE"
    assert _pos(out["stopped"]) == _pos(out["still"])
    assert _pos(out["stopped"])[0] < pan
    assert _pos(out["absolute"]) == pytest.approx((0.5, -0.25, 0.5))
    assert _pos(out["relative"]) == pytest.approx((0.75, 0.0, 0.75))
    assert _pos(out["clamped"]) == pytest.approx((1.0, -1.0, 1.0))
    assert _pos(out["preset"]) == pytest.approx((1.0, -1.0, 1.0))
    assert [(p.Name, p.token) for p in out["presets"]] == [("Simpang utara", out["presets"][0].token)]
    assert out["presets_after"] == []
    assert "NoToken" in str(out["goto_removed"].subcodes[0])
    assert out["presets"][0].PTZPosition.Zoom.x == pytest.approx(1.0)
    assert out["absolute"].UtcTime.tzinfo is not None


def test_wrong_password_refused(camera: CameraEmulator) -> None:
    async def body(cam: ONVIFCamera) -> Any:
        return await (await cam.create_devicemgmt_service()).GetDeviceInformation()

    with pytest.raises((zeep.exceptions.Fault, ONVIFError)):
        run(camera.port, body, password="salah")
    camera.change_password("baru-diganti")  # the camera's password changed under the client
    with pytest.raises((zeep.exceptions.Fault, ONVIFError)):
        run(camera.port, body)
    assert camera.soap_faults[-1].subcode == "NotAuthorized"
    assert run(camera.port, body, password="baru-diganti").Model == "KP-PTZ-2MP"


def test_clock_skew_is_handled_by_the_clients_offset(camera: CameraEmulator) -> None:
    camera.set_faults(skew_s=3600.0)

    async def body(cam: ONVIFCamera) -> Any:
        dev = await cam.create_devicemgmt_service()
        return await dev.GetSystemDateAndTime(), await dev.GetDeviceInformation(), cam.dt_diff

    clock, info, dt_diff = run(camera.port, body, adjust_time=True)
    assert info.Model == "KP-PTZ-2MP"
    assert dt_diff.total_seconds() == pytest.approx(3600, abs=3)
    d, t = clock.UTCDateTime.Date, clock.UTCDateTime.Time
    camera_clock = datetime.datetime(d.Year, d.Month, d.Day, t.Hour, t.Minute, t.Second,
                                     tzinfo=datetime.UTC)
    expected = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3600)
    assert abs((camera_clock - expected).total_seconds()) < 5
    with pytest.raises((zeep.exceptions.Fault, ONVIFError)):  # without the offset: stale
        run(camera.port, body, adjust_time=False)


def test_offline_answers_503(camera: CameraEmulator) -> None:
    camera.set_faults(offline=True)
    with httpx.Client(timeout=5) as http:
        assert http.post(camera.device_url, content=b"x").status_code == 503
    camera.set_faults(offline=False)


def test_image_faults_change_the_picture(camera: CameraEmulator) -> None:
    def grab() -> np.ndarray:
        jpeg = camera.frame_jpeg("Profile_Sub")
        return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)

    clear = grab()
    camera.set_faults(covered=True)
    assert grab().max() < 10
    camera.set_faults(covered=False, blurred=True)
    sharpness = cv2.Laplacian(clear, cv2.CV_64F).var()
    assert cv2.Laplacian(grab(), cv2.CV_64F).var() < sharpness / 5
    camera.set_faults(blurred=False, frozen=True)
    first = camera.frame_jpeg("Profile_Sub")
    time.sleep(0.05)
    assert camera.frame_jpeg("Profile_Sub") == first


def test_pull_point_events_carry_the_tamper_faults(camera: CameraEmulator) -> None:
    def topics(reply: Any) -> list[tuple[str, str, str]]:
        return [(m.Topic._value_1.split("/")[1], m.Message._value_1.Data.SimpleItem[0].Value,
                 m.Message._value_1.PropertyOperation) for m in reply.NotificationMessage]

    async def body(cam: ONVIFCamera) -> dict[str, Any]:
        events = await cam.create_events_service()
        out: dict[str, Any] = {"props": await events.GetEventProperties()}
        manager = await cam.create_pullpoint_manager(datetime.timedelta(seconds=60),
                                                     lambda: None)
        pull = manager.get_service()
        out["initial"] = topics(await pull.PullMessages({"Timeout": "PT1S",
                                                         "MessageLimit": 10}))
        started = time.monotonic()
        out["empty"] = topics(await pull.PullMessages({"Timeout": "PT0.2S",
                                                       "MessageLimit": 10}))
        out["waited_s"] = time.monotonic() - started
        camera.set_faults(blurred=True, covered=True)
        out["raised"] = topics(await pull.PullMessages({"Timeout": "PT5S", "MessageLimit": 1}))
        out["rest"] = topics(await pull.PullMessages({"Timeout": "PT5S", "MessageLimit": 10}))
        camera.set_faults(blurred=False, covered=False, moved=True)
        out["changed"] = topics(await pull.PullMessages({"Timeout": "PT5S",
                                                         "MessageLimit": 10}))
        subscription = await cam.create_subscription_service("PullPointSubscription")
        out["renewed"] = await subscription.Renew({"TerminationTime": "PT120S"})
        await manager.shutdown()  # Unsubscribe
        try:
            await pull.PullMessages({"Timeout": "PT1S", "MessageLimit": 10})
        except zeep.exceptions.Fault as exc:
            out["after_unsubscribe"] = exc
        return out

    out = run(camera.port, body)
    assert out["props"].FixedTopicSet is True
    assert sorted(out["initial"]) == [("GlobalSceneChange", "false", "Initialized"),
                                      ("ImageTooBlurry", "false", "Initialized"),
                                      ("ImageTooDark", "false", "Initialized")]
    assert out["empty"] == [] and 0.15 < out["waited_s"] < 1.0
    assert len(out["raised"]) == 1 and len(out["rest"]) == 1
    assert sorted(out["raised"] + out["rest"]) == [("ImageTooBlurry", "true", "Changed"),
                                                   ("ImageTooDark", "true", "Changed")]
    assert sorted(out["changed"]) == [("GlobalSceneChange", "true", "Changed"),
                                      ("ImageTooBlurry", "false", "Changed"),
                                      ("ImageTooDark", "false", "Changed")]
    renewed = out["renewed"]
    assert 110 < (renewed.TerminationTime - renewed.CurrentTime).total_seconds() <= 120
    assert "after_unsubscribe" in out


# ------------------------------------------------------------------ malformed SOAP on the wire

def _post(camera: CameraEmulator, data: bytes) -> httpx.Response:
    return httpx.post(camera.device_url, content=data, timeout=5,
                      headers={"Content-Type": "application/soap+xml; charset=utf-8"})


GET_INFO = (f'<env:Envelope xmlns:env="{SOAP_ENV}"><env:Body>'
            f'<GetSystemDateAndTime xmlns="{TDS}"/></env:Body></env:Envelope>').encode()


@pytest.mark.parametrize(("data", "status", "subcode"), [
    (b"<env:Envelope><unclosed", 400, "WellFormed"),
    (GET_INFO.replace(SOAP_ENV.encode(), b"http://schemas.xmlsoap.org/soap/envelope/"), 500,
     "VersionMismatch"),
    (GET_INFO.replace(b"GetSystemDateAndTime", b"FormatDisk"), 500, "ActionNotSupported"),
    (GET_INFO.replace(TDS.encode(), b"urn:nowhere"), 500, "ActionNotSupported"),
    (GET_INFO.replace(b"<env:Body>", "<env:Body><!-- \xe9 -->".encode("latin-1")), 400,
     "WellFormed"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', 400, "WellFormed"),
    (GET_INFO.replace(b"<env:Body>", b"<env:Body><!--" + b"x" * MAX_BODY_BYTES + b"-->"), 400,
     "InvalidArgs"),
])
def test_malformed_soap_gets_a_fault_and_the_camera_still_answers(
        camera: CameraEmulator, data: bytes, status: int, subcode: str) -> None:
    reply = _post(camera, data)
    assert reply.status_code == status
    fault = parse_fault(reply.content)
    assert fault is not None and subcode in (fault.code, fault.subcode)
    ok = _post(camera, GET_INFO)
    assert ok.status_code == 200 and b"UTCDateTime" in ok.content


def test_unauthenticated_operation_refused_on_the_wire(camera: CameraEmulator) -> None:
    reply = _post(camera, GET_INFO.replace(b"GetSystemDateAndTime", b"GetDeviceInformation"))
    assert reply.status_code == 400
    assert parse_fault(reply.content) == SoapFault("Sender", "NotAuthorized", parse_fault(
        reply.content).reason)  # type: ignore[union-attr]


def test_raw_socket_garbage_does_not_hang_the_camera(camera: CameraEmulator) -> None:
    with socket.create_connection(("127.0.0.1", camera.port), timeout=5) as sock:
        sock.sendall(b"\x00\xff garbage \r\n\r\n")
        sock.recv(1024)  # uvicorn answers 400 or closes: either way it does not hang
    assert _post(camera, GET_INFO).status_code == 200


# ------------------------------------------------------------------ codec and model alone

def _token(created: str, password: str = PASSWORD) -> UsernameToken:
    nonce = b"0123456789abcdef"
    return UsernameToken(USER, password_digest(nonce, created, password), True,
                         base64.b64encode(nonce).decode(), created)


@pytest.mark.parametrize("created", ["2026-12-03T08:00:00Z", "2026-12-03T08:00:00+00:00",
                                     "2026-12-03T08:00:00.123456Z"])
def test_digest_accepts_both_created_forms(created: str) -> None:
    check_token(_token(created), USER, PASSWORD, parse_created("2026-12-03T08:01:00Z"))
    with pytest.raises(SoapFault, match="NotAuthorized"):
        check_token(_token(created, "salah"), USER, PASSWORD,
                    parse_created("2026-12-03T08:01:00Z"))
    with pytest.raises(SoapFault, match="Created"):
        check_token(_token(created), USER, PASSWORD, parse_created("2026-12-03T09:00:00Z"))


def test_zeeps_own_usernametoken_passes_the_check() -> None:
    # The header exactly as zeep (the client's WS-Security code) builds it, in both forms.
    from datetime import datetime

    from lxml import etree
    from zeep.wsse.username import UsernameToken as ZeepToken

    created = datetime(2026, 12, 3, 8, 0, 0)
    for zulu in (True, False):
        env = etree.fromstring(GET_INFO.replace(b"GetSystemDateAndTime", b"GetHostname"))
        ZeepToken(USER, PASSWORD, use_digest=True, created=created,
                  zulu_timestamp=zulu).apply(env, {})
        req = parse_request(etree.tostring(env))
        assert req.token is not None and req.token.created.endswith("Z" if zulu else "+00:00")
        check_token(req.token, USER, PASSWORD, parse_created("2026-12-03T08:00:30Z"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.builds(
    lambda head, junk, tail: GET_INFO[:head] + junk + GET_INFO[tail:],
    st.integers(0, len(GET_INFO)), st.binary(max_size=20), st.integers(0, len(GET_INFO)))))
def test_parse_request_never_crashes(data: bytes) -> None:
    # Any bytes: a SoapRequest or a SoapFault, never another exception.
    try:
        parse_request(data)
    except SoapFault as fault:
        assert fault.http_status in (400, 500)


def test_parse_request_and_durations() -> None:
    req = parse_request(GET_INFO)
    assert (req.namespace, req.operation, req.token) == (TDS, "GetSystemDateAndTime", None)
    assert parse_duration_s("PT5S") == 5 and parse_duration_s("PT1M30.5S") == 90.5
    assert parse_duration_s("P1DT1H") == 90000
    for bad in ("5S", "PT", "PTxS", "PT5"):
        with pytest.raises(ValueError):
            parse_duration_s(bad)


def test_ptz_head_integrates_velocity_until_the_deadline() -> None:
    head = PtzHead(updated_s=0.0)
    head.continuous(0.0, (1.0, 0.0, 0.5), timeout_s=1.0)
    head.advance(0.5)
    assert head.position.pan == pytest.approx(0.25) and head.moving == (True, True)
    head.advance(10.0)
    assert head.position.pan == pytest.approx(0.5) and head.position.zoom == pytest.approx(0.25)
    assert head.moving == (False, False)


def test_test_pattern_view_follows_ptz_and_time_of_day() -> None:
    view = CameraView(TestPattern())
    t = 1_764_000_000.0
    a = view.render(t, Position())
    assert a.shape == (360, 640, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, view.render(t, Position(pan=0.5)))
    assert not np.array_equal(a, view.render(t, Position(zoom=1.0)))
    assert not np.array_equal(a, view.render(t, Position(), ViewFaults(moved=True)))
    midnight_wib = 1_764_003_600.0  # 2025-11-24 17:00 UTC
    night = view.render(midnight_wib, Position(), width=64, height=36).mean()
    noon = view.render(midnight_wib + 12 * 3600, Position(), width=64, height=36).mean()
    assert night < noon


# ------------------------------------------------------------------ `kota sim camera`

def test_kota_sim_camera_serves_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from kota.cli import main

    assert main(["sim", "camera", "--port", "0", "--duration", "0.2", "--json", "--skew",
                 "60", "--fault", "blurred", "--fault", "frozen"]) == 0
    ready, stopped = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert ready["event"] == "ready" and stopped["event"] == "stopped"
    assert ready["camera"]["device_url"].startswith("http://127.0.0.1:")
    assert ready["camera"]["device_url"].endswith("/onvif/device_service")
    assert ready["camera"]["faults"] == ["blurred", "frozen"] and ready["camera"]["skew_s"] == 60
    assert main(["sim", "camera", "--duration", "-1"]) == 2
    assert main(["sim", "camera", "--port", "0", "--password", ""]) == 2
