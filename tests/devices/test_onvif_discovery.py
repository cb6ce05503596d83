"""WS-Discovery: the codec on byte vectors and garbage, then unicast probes against the camera
emulator's responder on loopback (never multicast)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.onvif.discovery import (
    ACTION_PROBE,
    DEVICE,
    NETWORK_VIDEO_TRANSMITTER,
    Discovered,
    Probe,
    build_probe,
    build_probe_matches,
    local_name,
    matches_probe,
    parse_probe,
    parse_probe_matches,
    probe,
    scope_value,
)
from devices.onvif.errors import BadReplyError
from firmware_sim.onvif.camera import Identity
from firmware_sim.onvif.server import CameraEmulator

PROBE_ID = "urn:uuid:0a6dc791-2be6-4991-9af1-454778a1917a"

# A ProbeMatches as a Hikvision-style camera sends it: other prefixes than ours, a default
# namespace, and the types' prefixes declared on the envelope.
CAMERA_MATCHES = b"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl"
 xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<env:Header>
<wsa:MessageID>uuid:a1b2c3d4-0000-1111-2222-333344445555</wsa:MessageID>
<wsa:RelatesTo>urn:uuid:0a6dc791-2be6-4991-9af1-454778a1917a</wsa:RelatesTo>
<wsa:To env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
<wsdd:AppSequence InstanceId="1700000000" MessageNumber="7"/>
</env:Header>
<env:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:4a4f5a4b-0000-1000-8000-bcbac2d4a1f0</wsa:Address></wsa:EndpointReference>
<wsdd:Types>dn:NetworkVideoTransmitter tds:Device</wsdd:Types>
<wsdd:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/Simpang%20Lima onvif://www.onvif.org/location/city/Semarang onvif://www.onvif.org/hardware/DS-2DE4425IW</wsdd:Scopes>
<wsdd:XAddrs>http://10.20.1.64/onvif/device_service http://[fe80::1]/onvif/device_service</wsdd:XAddrs>
<wsdd:MetadataVersion>10</wsdd:MetadataVersion>
</wsdd:ProbeMatch></wsdd:ProbeMatches></env:Body></env:Envelope>"""

# The Probe as ONVIF Device Manager sends it (types prefix declared on the Types element).
ODM_PROBE = b"""<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><wsa:MessageID xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing">uuid:8d5d1c5b-1b2a-4d3e-9f10-aabbccddeeff</wsa:MessageID><wsa:To xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing">urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action></Header><Body><Probe xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="http://schemas.xmlsoap.org/ws/2005/04/discovery"><Types>dn:NetworkVideoTransmitter</Types><Scopes /></Probe></Body></Envelope>"""


# ------------------------------------------------------------------ codec

def test_probe_bytes_and_round_trip() -> None:
    data = build_probe(PROBE_ID)
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert (b"<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>"
            in data)
    assert f"<a:MessageID>{PROBE_ID}</a:MessageID>".encode() in data
    assert (b'<d:Types xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
            b"dn:NetworkVideoTransmitter</d:Types>") in data
    assert b"<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>" in data
    assert parse_probe(data) == Probe(PROBE_ID, (NETWORK_VIDEO_TRANSMITTER,))
    scoped = build_probe(PROBE_ID, types=(), scopes=("onvif://www.onvif.org/location/city",))
    assert parse_probe(scoped) == Probe(PROBE_ID, (), ("onvif://www.onvif.org/location/city",))
    assert ACTION_PROBE.endswith("/Probe")


def test_probe_from_another_client() -> None:
    assert parse_probe(ODM_PROBE) == Probe("uuid:8d5d1c5b-1b2a-4d3e-9f10-aabbccddeeff",
                                           (NETWORK_VIDEO_TRANSMITTER,))


def test_probe_matches_from_a_camera() -> None:
    reply = parse_probe_matches(CAMERA_MATCHES)
    assert reply.relates_to == PROBE_ID
    assert reply.message_id == "uuid:a1b2c3d4-0000-1111-2222-333344445555"
    (match,) = reply.matches
    assert match == Discovered(
        endpoint_ref="urn:uuid:4a4f5a4b-0000-1000-8000-bcbac2d4a1f0",
        xaddrs=("http://10.20.1.64/onvif/device_service", "http://[fe80::1]/onvif/device_service"),
        scopes=("onvif://www.onvif.org/type/video_encoder",
                "onvif://www.onvif.org/name/Simpang%20Lima",
                "onvif://www.onvif.org/location/city/Semarang",
                "onvif://www.onvif.org/hardware/DS-2DE4425IW"),
        types=(NETWORK_VIDEO_TRANSMITTER, DEVICE), metadata_version=10)
    assert scope_value(match.scopes, "name") == "Simpang Lima"
    assert scope_value(match.scopes, "location/city") == "Semarang"
    assert scope_value(match.scopes, "location/country") is None
    assert [local_name(t) for t in match.types] == ["NetworkVideoTransmitter", "Device"]


def test_probe_matches_round_trip() -> None:
    matches = [Discovered("urn:uuid:1", ("http://127.0.0.1:8080/onvif/device_service",),
                          ("onvif://www.onvif.org/name/A",), (NETWORK_VIDEO_TRANSMITTER, DEVICE)),
               Discovered("urn:uuid:2", (), (), ("{urn:example}Other",), 3)]
    data = build_probe_matches("urn:uuid:reply", PROBE_ID, matches, instance_id=5,
                               message_number=2)
    assert b'InstanceId="5"' in data and b'MessageNumber="2"' in data
    reply = parse_probe_matches(data)
    assert (reply.message_id, reply.relates_to, reply.matches) == (
        "urn:uuid:reply", PROBE_ID, tuple(matches))
    assert parse_probe_matches(build_probe_matches("urn:uuid:r", PROBE_ID, [])).matches == ()


def _swap(old: bytes, new: bytes) -> bytes:
    assert old in CAMERA_MATCHES
    return CAMERA_MATCHES.replace(old, new)


@pytest.mark.parametrize(("data", "says"), [
    (b"", "XML"),
    (b"\x00\xff\xfe garbage", "XML"),
    (b"<env:Envelope><unclosed", "XML"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DTD"),
    (b"<Envelope/>", "SOAP 1.2"),
    (_swap(b"http://www.w3.org/2003/05/soap-envelope",
           b"http://schemas.xmlsoap.org/soap/envelope/"), "SOAP 1.2"),
    (_swap(b"/discovery/ProbeMatches</wsa:Action>", b"/discovery/Hello</wsa:Action>"),
     "not WS-Discovery ProbeMatches"),
    (_swap(b"<wsa:Address>urn:uuid:4a4f5a4b-0000-1000-8000-bcbac2d4a1f0</wsa:Address>", b""),
     "EndpointReference"),
    (_swap(b"dn:NetworkVideoTransmitter", b"xx:NetworkVideoTransmitter"), "undeclared"),
    (_swap(b"<wsdd:MetadataVersion>10", b"<wsdd:MetadataVersion>ten"), "MetadataVersion"),
    (_swap(b"<wsdd:ProbeMatches>", b"<wsdd:Nope>").replace(b"</wsdd:ProbeMatches>",
                                                          b"</wsdd:Nope>"), "ProbeMatches"),
    (CAMERA_MATCHES.split(b"<env:Body>")[0] + b"<env:Body/></env:Envelope>", "ProbeMatches"),
    (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"/>', "Header"),
    (b"x" * 70_000, "larger"),
])
def test_garbage_is_a_bad_reply(data: bytes, says: str) -> None:
    with pytest.raises(BadReplyError, match=says):
        parse_probe_matches(data)


def test_probe_parser_refuses_other_messages() -> None:
    with pytest.raises(BadReplyError, match="not a WS-Discovery Probe"):
        parse_probe(CAMERA_MATCHES)
    with pytest.raises(BadReplyError, match="MessageID"):
        parse_probe(build_probe(""))
    with pytest.raises(ValueError, match="expanded name"):
        build_probe(PROBE_ID, types=("dn:NetworkVideoTransmitter",))


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.builds(
    lambda head, junk, tail: CAMERA_MATCHES[:head] + junk + CAMERA_MATCHES[tail:],
    st.integers(0, len(CAMERA_MATCHES)), st.binary(max_size=20),
    st.integers(0, len(CAMERA_MATCHES)))))
def test_any_bytes_give_matches_or_a_bad_reply(data: bytes) -> None:
    for parse in (parse_probe_matches, parse_probe):
        try:
            parse(data)
        except BadReplyError:
            pass


def test_matching_types_and_scopes() -> None:
    types = (NETWORK_VIDEO_TRANSMITTER, DEVICE)
    scopes = ("onvif://www.onvif.org/location/city/Semarang", "onvif://www.onvif.org/type/ptz")
    assert matches_probe(Probe("u"), types, scopes)
    assert matches_probe(Probe("u", (NETWORK_VIDEO_TRANSMITTER,)), types, scopes)
    assert not matches_probe(Probe("u", ("{urn:x}Printer",)), types, scopes)
    assert matches_probe(Probe("u", (), ("onvif://www.onvif.org/location",)), types, scopes)
    assert matches_probe(Probe("u", (), ("onvif://www.onvif.org/location/city/Semarang",)),
                         types, scopes)
    assert not matches_probe(Probe("u", (), ("onvif://www.onvif.org/location/city/Sem",)),
                             types, scopes)


# ------------------------------------------------------------------ probes over loopback

@pytest.fixture(scope="module")
def camera() -> Iterator[CameraEmulator]:
    with CameraEmulator(discovery_port=0, identity=Identity(serial="KPDISC01")) as emu:
        yield emu


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port that receives and never answers (a host without a camera)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_probe_finds_the_emulated_camera(camera: CameraEmulator) -> None:
    assert camera.discovery_port
    started = time.monotonic()
    found = asyncio.run(probe([("127.0.0.1", camera.discovery_port)], timeout_s=3))
    assert time.monotonic() - started < 1.0  # every target answered: no waiting out the timeout
    (match,) = found
    assert match.xaddrs == (camera.device_url,)
    assert match.endpoint_ref.startswith("urn:uuid:")
    assert NETWORK_VIDEO_TRANSMITTER in match.types
    assert scope_value(match.scopes, "hardware") == "KP-PTZ-2MP"
    assert scope_value(match.scopes, "location/city") == "Kota Pintar"
    again = asyncio.run(probe([("localhost", camera.discovery_port)], timeout_s=3))
    assert [m.endpoint_ref for m in again] == [match.endpoint_ref]  # stable across probes


def test_responder_ignores_garbage_and_keeps_answering(camera: CameraEmulator) -> None:
    responder = camera._discovery
    assert responder is not None
    before = responder.garbage
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (b"\x00\xff", b"<x/>", CAMERA_MATCHES, b"<" * 5000):
            sock.sendto(junk, ("127.0.0.1", camera.discovery_port))
    assert len(asyncio.run(probe([("127.0.0.1", camera.discovery_port)], timeout_s=3))) == 1
    assert responder.garbage >= before + 3  # the ProbeMatches is not a Probe either
    other = build_probe(PROBE_ID, types=("{urn:example}Printer",))
    assert responder.answer(other) is None  # not a camera's type: no answer


def test_probe_waits_out_a_silent_target(camera: CameraEmulator, silent_port: int) -> None:
    started = time.monotonic()
    found = asyncio.run(probe([("127.0.0.1", silent_port),
                               ("127.0.0.1", camera.discovery_port)], timeout_s=0.4))
    assert 0.35 < time.monotonic() - started < 1.5
    assert [m.xaddrs for m in found] == [(camera.device_url,)]
    assert asyncio.run(probe([("127.0.0.1", silent_port)], timeout_s=0.2)) == []
    with pytest.raises(ValueError):
        asyncio.run(probe([("127.0.0.1", silent_port)], timeout_s=0))


def test_emulator_stops_its_responder() -> None:
    emu = CameraEmulator(discovery_port=0).start()
    port = emu.discovery_port
    emu.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))  # the port is free again
