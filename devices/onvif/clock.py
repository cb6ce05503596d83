"""GetSystemDateAndTime as bytes: the one ONVIF request a camera answers without a password
(ONVIF Core §5.9.1: clients read the clock before they sign), built and read without zeep.

Pure: no sockets, no clock of its own. The driver sends it first on connect, so the plainest
failures (wrong port, HTTP 503, no ONVIF at all) are told apart from a wrong password, and
the clock offset is measured to about half a second (the camera answers in whole seconds).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from devices.onvif.errors import BadReplyError

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TT = "http://www.onvif.org/ver10/schema"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"
MAX_REPLY_BYTES = 64 * 1024

REQUEST = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP_ENV}"><s:Body>'
           f'<GetSystemDateAndTime xmlns="{TDS}"/></s:Body></s:Envelope>').encode()


def parse_reply(data: bytes) -> datetime:
    """The camera's UTC clock from a GetSystemDateAndTimeResponse; anything else (a fault,
    garbage, a reply without UTCDateTime) raises ``BadReplyError``."""
    if len(data) > MAX_REPLY_BYTES:
        raise BadReplyError(f"GetSystemDateAndTime reply of {len(data)} bytes is too large")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise BadReplyError("a DTD in a SOAP reply (SOAP 1.2 Part 1 §5 forbids it)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadReplyError(f"GetSystemDateAndTime reply is not XML: {exc}") from exc
    sdt = root.find(f"{{{SOAP_ENV}}}Body/{{{TDS}}}GetSystemDateAndTimeResponse/"
                    f"{{{TDS}}}SystemDateAndTime")
    utc = sdt.find(f"{{{TT}}}UTCDateTime") if sdt is not None else None
    if utc is None:
        raise BadReplyError("GetSystemDateAndTime reply without SystemDateAndTime/UTCDateTime")
    fields = {}
    for part, names in (("Date", ("Year", "Month", "Day")),
                        ("Time", ("Hour", "Minute", "Second"))):
        for name in names:
            text = utc.findtext(f"{{{TT}}}{part}/{{{TT}}}{name}")
            try:
                fields[name] = int((text or "").strip())
            except ValueError as exc:
                raise BadReplyError(f"UTCDateTime {part}/{name} {text!r} is not a number") from exc
    try:
        return datetime(fields["Year"], fields["Month"], fields["Day"], fields["Hour"],
                        fields["Minute"], min(fields["Second"], 59), tzinfo=UTC)
    except ValueError as exc:  # ONVIF allows a leap second 60; datetime does not
        raise BadReplyError(f"UTCDateTime is not a valid date and time: {exc}") from exc
