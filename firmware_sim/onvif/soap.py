"""The SOAP 1.2 codec of the emulated ONVIF camera: request bytes in, a typed request or a
typed ``SoapFault`` out; response and fault elements in, envelope bytes out.

Pure (stdlib ``xml.etree.ElementTree`` and ``hashlib`` only): no sockets, no clock of its own,
no logging. Fault codes follow ONVIF Core spec §5.11.2 (``env:Sender`` / ``env:Receiver``
with ``ter:`` subcodes); the password digest follows the WS-Security UsernameToken Profile 1.0
§3.1 (Base64(SHA-1(nonce + created + password))).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = ("http://docs.oasis-open.org/wss/2004/01/"
        "oasis-200401-wss-wssecurity-secext-1.0.xsd")
WSU = ("http://docs.oasis-open.org/wss/2004/01/"
       "oasis-200401-wss-wssecurity-utility-1.0.xsd")
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
TER = "http://www.onvif.org/ver10/error"
TT = "http://www.onvif.org/ver10/schema"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TEV = "http://www.onvif.org/ver10/events/wsdl"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
WSA = "http://www.w3.org/2005/08/addressing"
TNS1 = "http://www.onvif.org/ver10/topics"

PREFIXES = {"env": SOAP_ENV, "tt": TT, "tds": TDS, "trt": TRT, "tptz": TPTZ, "tev": TEV,
            "wsnt": WSNT, "wsa": WSA, "ter": TER, "tns1": TNS1}
for _prefix, _uri in PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

MAX_BODY_BYTES = 1024 * 1024  # larger requests are refused before parsing
MAX_CREATED_SKEW_S = 300.0  # a Created timestamp further than this from the camera clock is stale


@dataclass(frozen=True)
class SoapFault(Exception):
    """A SOAP 1.2 fault: ``code`` is Sender or Receiver, ``subcode`` an ONVIF ``ter:`` name."""

    code: str
    subcode: str
    reason: str

    @property
    def http_status(self) -> int:
        # SOAP 1.2 HTTP binding: a Sender fault is 400, a Receiver fault 500.
        return 400 if self.code == "Sender" else 500

    def __str__(self) -> str:
        return f"env:{self.code}/ter:{self.subcode}: {self.reason}"


def sender_fault(subcode: str, reason: str) -> SoapFault:
    return SoapFault("Sender", subcode, reason)


def not_authorized(reason: str = "Sender not authorized") -> SoapFault:
    return SoapFault("Sender", "NotAuthorized", reason)


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str  # the digest (Base64) or, for PasswordText, the password itself
    digest: bool
    nonce_b64: str
    created: str  # as sent: the digest covers these exact characters


@dataclass(frozen=True)
class SoapRequest:
    namespace: str  # of the operation element, e.g. TPTZ
    operation: str  # its local name, e.g. "ContinuousMove"
    body: ET.Element  # the operation element
    token: UsernameToken | None


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def parse_request(data: bytes) -> SoapRequest:
    """Parse a SOAP 1.2 request; any malformation raises ``SoapFault`` (never another error)."""
    if len(data) > MAX_BODY_BYTES:
        raise sender_fault("InvalidArgs", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise sender_fault("WellFormed", f"request is not UTF-8: {exc.reason}") from exc
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # SOAP 1.2 Part 1 §5: a SOAP message must not contain a DTD (and entities are a DoS).
        raise sender_fault("WellFormed", "DTDs are not allowed in SOAP messages")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise sender_fault("WellFormed", f"malformed XML: {exc}") from exc
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        ns, local = _split(root.tag)
        if local == "Envelope":
            # SOAP 1.2 §5.4.7: an envelope in another namespace is a VersionMismatch.
            raise SoapFault("VersionMismatch", "VersionMismatch",
                            f"envelope namespace {ns or '(none)'} is not SOAP 1.2")
        raise sender_fault("WellFormed", f"root element {local} is not a SOAP Envelope")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None:
        raise sender_fault("WellFormed", "SOAP Envelope without a Body")
    ops = list(body)
    if len(ops) != 1:
        raise sender_fault("InvalidArgs", f"SOAP Body holds {len(ops)} elements, expected 1")
    ns, op = _split(ops[0].tag)
    header = root.find(f"{{{SOAP_ENV}}}Header")
    token = _username_token(header) if header is not None else None
    return SoapRequest(ns, op, ops[0], token)


def _username_token(header: ET.Element) -> UsernameToken | None:
    ut = header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if ut is None:
        return None
    user = ut.findtext(f"{{{WSSE}}}Username")
    pw = ut.find(f"{{{WSSE}}}Password")
    if user is None or pw is None:
        raise not_authorized("UsernameToken without Username or Password")
    return UsernameToken(
        username=user.strip(), password=(pw.text or "").strip(),
        digest=pw.get("Type", "").endswith("#PasswordDigest"),
        nonce_b64=(ut.findtext(f"{{{WSSE}}}Nonce") or "").strip(),
        created=(ut.findtext(f"{{{WSU}}}Created") or "").strip())


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken Profile §3.1: Base64(SHA-1(nonce + created + password))."""
    raw = hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False)
    return base64.b64encode(raw.digest()).decode()


def parse_created(created: str) -> datetime:
    """``Created`` as an aware UTC datetime; accepts ``Z`` (onvif-zeep-async 4.3) and ``+00:00``
    (onvif-zeep 0.2.12); a time without an offset is read as UTC."""
    value = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_token(token: UsernameToken | None, username: str, password: str,
                camera_now: datetime) -> None:
    """Raise ``ter:NotAuthorized`` unless ``token`` proves ``username``/``password`` and its
    ``Created`` is within ``MAX_CREATED_SKEW_S`` of the camera's clock."""
    if token is None:
        raise not_authorized("this operation needs a WS-Security UsernameToken")
    if token.digest:
        try:
            nonce = base64.b64decode(token.nonce_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise not_authorized("UsernameToken Nonce is not Base64") from exc
        expected = password_digest(nonce, token.created, password)
    else:
        expected = password
    ok_user = hmac.compare_digest(token.username.encode(), username.encode())
    if not (ok_user and hmac.compare_digest(token.password.encode(), expected.encode())):
        raise not_authorized("wrong user name or password")
    if token.created:
        try:
            created = parse_created(token.created)
        except ValueError as exc:
            raise not_authorized(f"bad Created timestamp {token.created!r}") from exc
        skew_s = abs((created - camera_now).total_seconds())
        if skew_s > MAX_CREATED_SKEW_S:
            raise not_authorized(f"Created is {skew_s:.0f} s from the camera clock")


# ------------------------------------------------------------------ building responses

def el(parent: ET.Element | None, ns: str, local: str, text: object = None,
       **attrib: object) -> ET.Element:
    """An element ``{ns}local`` (under ``parent`` if given) with text and attributes."""
    tag = f"{{{ns}}}{local}"
    attrs = {k: _text(v) for k, v in attrib.items() if v is not None}
    node = ET.Element(tag, attrs) if parent is None else ET.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = _text(text)
    return node


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def envelope(body_child: ET.Element, headers: list[ET.Element] | None = None,
             qname_prefixes: tuple[str, ...] = ()) -> bytes:
    """``qname_prefixes``: prefixes used only inside text values (``ter:NotAuthorized``), which
    ElementTree would not declare by itself; clients resolve those QNames."""
    used = {_split(t)[0] for node in body_child.iter()
            for t in (node.tag, *node.attrib) if t.startswith("{")}
    env = ET.Element(f"{{{SOAP_ENV}}}Envelope", {
        f"xmlns:{p}": PREFIXES[p] for p in qname_prefixes if PREFIXES[p] not in used})
    if headers:
        header = ET.SubElement(env, f"{{{SOAP_ENV}}}Header")
        header.extend(headers)
    ET.SubElement(env, f"{{{SOAP_ENV}}}Body").append(body_child)
    return ET.tostring(env, encoding="utf-8", xml_declaration=True)


def fault_envelope(fault: SoapFault) -> bytes:
    node = el(None, SOAP_ENV, "Fault")
    code = el(node, SOAP_ENV, "Code")
    el(code, SOAP_ENV, "Value", f"env:{fault.code}")
    if fault.code != "VersionMismatch":
        el(el(code, SOAP_ENV, "Subcode"), SOAP_ENV, "Value", f"ter:{fault.subcode}")
    reason = el(el(node, SOAP_ENV, "Reason"), SOAP_ENV, "Text", fault.reason)
    reason.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    return envelope(node, qname_prefixes=("ter",))


def parse_fault(data: bytes) -> SoapFault | None:
    """The fault in a response envelope, or None (tests and clients read faults back)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    node = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    if node is None:
        return None
    code = node.findtext(f"{{{SOAP_ENV}}}Code/{{{SOAP_ENV}}}Value") or ""
    sub = node.findtext(f"{{{SOAP_ENV}}}Code/{{{SOAP_ENV}}}Subcode/{{{SOAP_ENV}}}Value") or ""
    reason = node.findtext(f"{{{SOAP_ENV}}}Reason/{{{SOAP_ENV}}}Text") or ""
    return SoapFault(code.partition(":")[2] or code, sub.partition(":")[2] or sub, reason)


# ------------------------------------------------------------------ reading requests

def child_text(node: ET.Element, ns: str, local: str) -> str | None:
    value = node.findtext(f"{{{ns}}}{local}")
    return value.strip() if value is not None else None


def parse_duration_s(value: str) -> float:
    """An xs:duration such as ``PT5S``, ``PT1M30.5S`` or ``P1DT2H`` in seconds (no years or
    months: ONVIF timeouts never use them). Raises ValueError."""
    text = value.strip()
    if not text.startswith("P") or len(text) < 3:
        raise ValueError(f"not an xs:duration: {value!r}")
    date_part, _, time_part = text[1:].partition("T")
    total = 0.0
    for part, units in ((date_part, {"D": 86400.0, "W": 604800.0}),
                        (time_part, {"H": 3600.0, "M": 60.0, "S": 1.0})):
        number = ""
        for ch in part:
            if ch.isdigit() or ch == ".":
                number += ch
            elif ch in units and number:
                total += float(number) * units[ch]
                number = ""
            else:
                raise ValueError(f"not an xs:duration: {value!r}")
        if number:
            raise ValueError(f"not an xs:duration: {value!r}")
    return total


def format_duration_s(seconds: float) -> str:
    return f"PT{seconds:g}S"
