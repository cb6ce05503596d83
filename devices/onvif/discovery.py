"""WS-Discovery for ONVIF cameras (SOAP-over-UDP on port 3702): a pure codec for Probe and
ProbeMatches, and ``probe`` that sends unicast probes to the hosts given.

The codec (``build_probe``, ``parse_probe``, ``build_probe_matches``, ``parse_probe_matches``)
takes bytes and values only: no sockets, no clock, no random ids (the caller passes message
ids). The emulator's responder (``firmware_sim.onvif.discovery``) uses the same codec.
Messages follow WS-Discovery 2005/04 (the version the ONVIF Core spec §7.3 names) with
WS-Addressing 2004/08 inside SOAP 1.2 envelopes; any malformed datagram raises
``BadReplyError``. ``probe`` never multicasts: a technician names the cameras to ask
(multicast would reach every interface and cannot be restricted, DESIGN "Known pitfalls").
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from devices.onvif.errors import BadReplyError, UnreachableError

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"
TDS = "http://www.onvif.org/ver10/device/wsdl"
ACTION_PROBE = f"{WSD}/Probe"
ACTION_PROBE_MATCHES = f"{WSD}/ProbeMatches"
TO_DISCOVERY = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"  # WS-Discovery §2.4
ANONYMOUS = f"{WSA}/role/anonymous"
PORT = 3702
MAX_DATAGRAM_BYTES = 65_507  # the largest UDP payload over IPv4

# Types as expanded names "{namespace}local": what an ONVIF camera says it is (Core §7.3.1).
NETWORK_VIDEO_TRANSMITTER = f"{{{DN}}}NetworkVideoTransmitter"
DEVICE = f"{{{TDS}}}Device"
_PREFIXES = {DN: "dn", TDS: "tds"}  # prefixes used when writing Types; others get t0, t1, …

for _prefix, _uri in (("s", SOAP_ENV), ("a", WSA), ("d", WSD)):
    ET.register_namespace(_prefix, _uri)


@dataclass(frozen=True)
class Probe:
    """A WS-Discovery Probe: who asks (``message_id``) for which types and scopes."""

    message_id: str
    types: tuple[str, ...] = ()  # expanded names; empty: any type
    scopes: tuple[str, ...] = ()  # empty: any scope


@dataclass(frozen=True)
class Discovered:
    """One ProbeMatch: a device's stable id, where its device service answers, its scopes."""

    endpoint_ref: str  # usually urn:uuid:…, stable across reboots and address changes
    xaddrs: tuple[str, ...]  # device service URLs, e.g. http://10.1.2.3/onvif/device_service
    scopes: tuple[str, ...]  # e.g. onvif://www.onvif.org/name/…, …/location/city/…
    types: tuple[str, ...]  # expanded names, e.g. NETWORK_VIDEO_TRANSMITTER
    metadata_version: int = 1


@dataclass(frozen=True)
class ProbeMatches:
    message_id: str
    relates_to: str  # the Probe's message id
    matches: tuple[Discovered, ...]


def local_name(expanded: str) -> str:
    """``{ns}NetworkVideoTransmitter`` → ``NetworkVideoTransmitter``."""
    return expanded.rpartition("}")[2]


def scope_value(scopes: Iterable[str], kind: str) -> str | None:
    """The value of an ONVIF scope, e.g. ``scope_value(s, "name")`` for ``…/name/Simpang%201``
    → ``Simpang 1`` (ONVIF Core §7.3.2.2: values are percent-encoded)."""
    prefix = f"onvif://www.onvif.org/{kind}/"
    for scope in scopes:
        if scope.startswith(prefix):
            return unquote(scope[len(prefix):])
    return None


# ------------------------------------------------------------------ writing

def _el(parent: ET.Element, ns: str, local: str, text: str | None = None,
        **attrib: str) -> ET.Element:
    node = ET.SubElement(parent, f"{{{ns}}}{local}", attrib)
    if text is not None:
        node.text = text
    return node


def _header(message_id: str, action: str, to: str, relates_to: str | None = None
            ) -> tuple[ET.Element, ET.Element]:
    env = ET.Element(f"{{{SOAP_ENV}}}Envelope")
    header = _el(env, SOAP_ENV, "Header")
    _el(header, WSA, "MessageID", message_id)
    if relates_to is not None:
        _el(header, WSA, "RelatesTo", relates_to)
    _el(header, WSA, "To", to)
    _el(header, WSA, "Action", action)
    return env, header


def _types_element(parent: ET.Element, types: Sequence[str]) -> None:
    """``<d:Types xmlns:dn="…">dn:NetworkVideoTransmitter</d:Types>``: QNames in text need
    their prefixes declared by hand (ElementTree only declares those of tags)."""
    declared: dict[str, str] = {}
    names = []
    for expanded in types:
        if not expanded.startswith("{"):
            raise ValueError(f"type {expanded!r} is not an expanded name {{namespace}}local")
        ns, local = expanded[1:].split("}", 1)
        prefix = declared.setdefault(ns, _PREFIXES.get(ns, f"t{len(declared)}"))
        names.append(f"{prefix}:{local}")
    node = _el(parent, WSD, "Types", " ".join(names))
    for ns, prefix in declared.items():
        node.set(f"xmlns:{prefix}", ns)


def build_probe(message_id: str, types: Sequence[str] = (NETWORK_VIDEO_TRANSMITTER,),
                scopes: Sequence[str] = ()) -> bytes:
    """A Probe datagram (WS-Discovery §5.2) for ``types``, by default ONVIF video devices."""
    env, _ = _header(message_id, ACTION_PROBE, TO_DISCOVERY)
    body = _el(env, SOAP_ENV, "Body")
    probe = _el(body, WSD, "Probe")
    if types:
        _types_element(probe, types)
    if scopes:
        _el(probe, WSD, "Scopes", " ".join(scopes))
    return ET.tostring(env, encoding="utf-8", xml_declaration=True)


def build_probe_matches(message_id: str, relates_to: str, matches: Sequence[Discovered],
                        instance_id: int = 1, message_number: int = 1) -> bytes:
    """A ProbeMatches datagram (WS-Discovery §5.3) answering the Probe ``relates_to``."""
    env, header = _header(message_id, ACTION_PROBE_MATCHES, ANONYMOUS, relates_to)
    _el(header, WSD, "AppSequence", InstanceId=str(instance_id),
        MessageNumber=str(message_number))
    body = _el(env, SOAP_ENV, "Body")
    node = _el(body, WSD, "ProbeMatches")
    for match in matches:
        m = _el(node, WSD, "ProbeMatch")
        _el(_el(m, WSA, "EndpointReference"), WSA, "Address", match.endpoint_ref)
        if match.types:
            _types_element(m, match.types)
        if match.scopes:
            _el(m, WSD, "Scopes", " ".join(match.scopes))
        if match.xaddrs:
            _el(m, WSD, "XAddrs", " ".join(match.xaddrs))
        _el(m, WSD, "MetadataVersion", str(match.metadata_version))
    return ET.tostring(env, encoding="utf-8", xml_declaration=True)


# ------------------------------------------------------------------ reading

def _parse(data: bytes) -> tuple[ET.Element, dict[int, dict[str, str]]]:
    """The root and, per element (by id), the prefixes in scope there (for QName text)."""
    if not isinstance(data, bytes | bytearray):
        raise BadReplyError(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_DATAGRAM_BYTES:
        raise BadReplyError(f"datagram of {len(data)} bytes is larger than UDP allows")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise BadReplyError("a DTD in a SOAP message (SOAP 1.2 Part 1 §5 forbids it)")
    parser = ET.XMLPullParser(events=("start-ns", "start", "end"))
    stack: list[dict[str, str]] = [{}]
    pending: dict[str, str] = {}
    in_scope: dict[int, dict[str, str]] = {}
    root: ET.Element | None = None
    try:
        parser.feed(bytes(data))
        parser.close()
        for event, item in parser.read_events():
            if event == "start-ns":
                prefix, uri = item  # type: ignore[misc]
                pending[prefix] = uri
            elif event == "start":
                scope = {**stack[-1], **pending} if pending else stack[-1]
                pending = {}
                stack.append(scope)
                in_scope[id(item)] = scope
                root = root if root is not None else item  # type: ignore[assignment]
            else:
                stack.pop()
    except (ET.ParseError, UnicodeError) as exc:
        raise BadReplyError(f"not well-formed XML: {exc}") from exc
    if root is None or root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise BadReplyError("not a SOAP 1.2 envelope")
    return root, in_scope


def _text(node: ET.Element, path: str) -> str:
    return (node.findtext(path) or "").strip()


def _header_values(root: ET.Element) -> tuple[str, str, str]:
    """(action, message id, relates to) from the WS-Addressing header."""
    header = root.find(f"{{{SOAP_ENV}}}Header")
    if header is None:
        raise BadReplyError("SOAP envelope without a Header (WS-Addressing is required)")
    return (_text(header, f"{{{WSA}}}Action"), _text(header, f"{{{WSA}}}MessageID"),
            _text(header, f"{{{WSA}}}RelatesTo"))


def _body_child(root: ET.Element, local: str) -> ET.Element:
    node = root.find(f"{{{SOAP_ENV}}}Body/{{{WSD}}}{local}")
    if node is None:
        raise BadReplyError(f"SOAP Body without a WS-Discovery {local}")
    return node


def _types(node: ET.Element | None, in_scope: dict[int, dict[str, str]]) -> tuple[str, ...]:
    if node is None or not (node.text or "").strip():
        return ()
    prefixes = in_scope.get(id(node), {})
    out = []
    for qname in (node.text or "").split():
        prefix, _, local = qname.rpartition(":")
        if prefix not in prefixes:
            raise BadReplyError(f"type {qname!r} uses an undeclared prefix {prefix!r}")
        out.append(f"{{{prefixes[prefix]}}}{local}")
    return tuple(out)


def parse_probe(data: bytes) -> Probe:
    """Read a Probe datagram; anything else (or garbage) raises ``BadReplyError``."""
    root, in_scope = _parse(data)
    action, message_id, _ = _header_values(root)
    if action != ACTION_PROBE:
        raise BadReplyError(f"action {action or '(none)'} is not a WS-Discovery Probe")
    if not message_id:
        raise BadReplyError("Probe without a MessageID (the answer could not relate to it)")
    probe = _body_child(root, "Probe")
    return Probe(message_id, _types(probe.find(f"{{{WSD}}}Types"), in_scope),
                 tuple(_text(probe, f"{{{WSD}}}Scopes").split()))


def parse_probe_matches(data: bytes) -> ProbeMatches:
    """Read a ProbeMatches datagram; anything else (or garbage) raises ``BadReplyError``."""
    root, in_scope = _parse(data)
    action, message_id, relates_to = _header_values(root)
    if action != ACTION_PROBE_MATCHES:
        raise BadReplyError(f"action {action or '(none)'} is not WS-Discovery ProbeMatches")
    matches = []
    for m in _body_child(root, "ProbeMatches").findall(f"{{{WSD}}}ProbeMatch"):
        address = _text(m, f"{{{WSA}}}EndpointReference/{{{WSA}}}Address")
        if not address:
            raise BadReplyError("ProbeMatch without an EndpointReference Address")
        version = _text(m, f"{{{WSD}}}MetadataVersion") or "1"
        try:
            metadata_version = int(version)
        except ValueError as exc:
            raise BadReplyError(f"MetadataVersion {version!r} is not a number") from exc
        matches.append(Discovered(
            endpoint_ref=address, xaddrs=tuple(_text(m, f"{{{WSD}}}XAddrs").split()),
            scopes=tuple(_text(m, f"{{{WSD}}}Scopes").split()),
            types=_types(m.find(f"{{{WSD}}}Types"), in_scope),
            metadata_version=metadata_version))
    return ProbeMatches(message_id, relates_to, tuple(matches))


def matches_probe(probe: Probe, types: Sequence[str], scopes: Sequence[str]) -> bool:
    """Does a device with ``types`` and ``scopes`` answer ``probe``? Every type asked must be
    the device's; every scope asked must equal one of its scopes or be a path prefix of it
    (the default rfc3986 rule of WS-Discovery §5.1, simplified: no case folding)."""
    if not set(probe.types) <= set(types):
        return False
    return all(any(s == want or s.startswith(want.rstrip("/") + "/") for s in scopes)
               for want in probe.scopes)


# ------------------------------------------------------------------ unicast probe (I/O)

UNICAST_REPEAT_AFTER_S = 0.1  # SOAP-over-UDP §3.2: repeat a unicast message once (UDP loses)


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.found: dict[str, Discovered] = {}
        self.answered: set[tuple[str, int]] = set()
        self.garbage = 0
        self.event = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = parse_probe_matches(data)
        except BadReplyError:
            self.garbage += 1  # a stray or broken datagram must not end the search
            return
        if reply.relates_to != self.message_id:
            return
        self.answered.add((addr[0], addr[1]))
        for match in reply.matches:
            self.found.setdefault(match.endpoint_ref, match)
        self.event.set()


async def probe(targets: Sequence[tuple[str, int]], timeout_s: float = 2.0,
                types: Sequence[str] = (NETWORK_VIDEO_TRANSMITTER,)) -> list[Discovered]:
    """Send a Probe to each ``(host, port)`` by unicast UDP and gather the ProbeMatches that
    answer it for up to ``timeout_s`` (less when every target has answered). Devices are
    returned once each (by endpoint reference), in the order they answered. Garbage datagrams
    are skipped. Raises ``UnreachableError`` only when a host name cannot be resolved."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    loop = asyncio.get_running_loop()
    addresses: list[tuple[str, int]] = []
    for host, port in targets:
        try:
            infos = await loop.getaddrinfo(host, port, family=socket.AF_INET,
                                           type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise UnreachableError(f"cannot resolve {host!r}: {exc}; check the name or give "
                                   "the camera's IP address") from exc
        addresses.append(infos[0][4][:2])
    message_id = f"urn:uuid:{uuid.uuid4()}"
    datagram = build_probe(message_id, types)
    transport, collector = await loop.create_datagram_endpoint(
        lambda: _Collector(message_id), local_addr=("0.0.0.0", 0), family=socket.AF_INET)
    try:
        for addr in addresses:
            transport.sendto(datagram, addr)
        deadline = time.monotonic() + timeout_s
        repeated = False
        while (left := deadline - time.monotonic()) > 0:
            if set(addresses) <= collector.answered:
                break
            wait_s = left if repeated else min(left, UNICAST_REPEAT_AFTER_S)
            collector.event.clear()
            try:
                await asyncio.wait_for(collector.event.wait(), wait_s)
            except TimeoutError:
                if not repeated:
                    repeated = True
                    for addr in addresses:
                        if addr not in collector.answered:
                            transport.sendto(datagram, addr)
    finally:
        transport.close()
    return list(collector.found.values())
