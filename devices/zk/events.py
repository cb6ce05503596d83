"""Live events: registering for them (CMD_REG_EVENT) and the EF_ATTLOG punch event. Pure.

A client sends CMD_REG_EVENT with a u32 mask of ``EventFlag`` (0 stops events). From then on
the machine sends, unasked, a CMD_REG_EVENT packet per event — the event kind in the header's
session-id field, reply id 0 — and the client acknowledges each with a bare CMD_ACK_OK.
An EF_ATTLOG (punch) payload, by firmware family::

    12 bytes:  user_id u32 | status u8 | punch u8 | time 6 bytes        (older firmware)
    32 bytes:  user_id 24s | status u8 | punch u8 | time 6 bytes
    36 bytes:  the 32-byte form and 4 reserved bytes                    (colour screen)
    52 bytes:  the 32-byte form and 20 reserved bytes                   (newer firmware)

``time`` is ``year - 2000, month, day, hour, minute, second`` (``zktime.encode_timehex``).
One event per packet: pyzk 0.9 loops forever on a payload of any other length.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from datetime import datetime

from devices.zk.codes import Command, EventFlag
from devices.zk.errors import ZkProtocolError
from devices.zk.framing import Packet
from devices.zk.zktime import decode_timehex, encode_timehex

_NUMERIC = struct.Struct("<IBB6s")
_TEXT = struct.Struct("<24sBB6s")


class EventFormat(enum.IntEnum):
    """EF_ATTLOG payload size by firmware family."""

    E12 = 12
    E32 = 32
    E36 = 36
    E52 = 52


@dataclass(frozen=True, slots=True)
class PunchEvent:
    """A punch as a live event carries it (no uid; ``timestamp`` is machine-local)."""

    user_id: str
    timestamp: datetime
    status: int = 1
    punch: int = 0


def encode_reg_event(flags: EventFlag | int) -> bytes:
    """CMD_REG_EVENT payload."""
    if not 0 <= int(flags) <= 0xFFFFFFFF:
        raise ZkProtocolError(f"event mask {flags} does not fit 32 bits")
    return struct.pack("<I", int(flags))


def decode_reg_event(payload: bytes) -> EventFlag:
    """CMD_REG_EVENT payload from a client → the mask asked for (unknown bits kept)."""
    if len(payload) < 4:
        raise ZkProtocolError(f"event registration of {len(payload)} bytes, need 4")
    return EventFlag(struct.unpack_from("<I", payload)[0])


def encode_punch_event(event: PunchEvent, fmt: EventFormat) -> bytes:
    """``PunchEvent`` → EF_ATTLOG payload of ``fmt``."""
    when = encode_timehex(event.timestamp)
    if not (0 <= event.status <= 0xFF and 0 <= event.punch <= 0xFF):
        raise ZkProtocolError(f"event status {event.status} / punch {event.punch} not bytes")
    if fmt is EventFormat.E12:
        if not event.user_id.isdigit() or not event.user_id.isascii() \
                or int(event.user_id) > 0xFFFFFFFF:
            raise ZkProtocolError(f"12-byte event needs a numeric user_id, got {event.user_id!r}")
        return _NUMERIC.pack(int(event.user_id), event.status, event.punch, when)
    raw_id = event.user_id.encode("utf-8")
    if len(raw_id) > 24:
        raise ZkProtocolError(f"event user_id {event.user_id!r} longer than 24 bytes")
    return _TEXT.pack(raw_id, event.status, event.punch, when).ljust(int(fmt), b"\0")


def decode_punch_event(payload: bytes) -> PunchEvent:
    """EF_ATTLOG payload (any of the four sizes) → ``PunchEvent``."""
    try:
        fmt = EventFormat(len(payload))
    except ValueError as exc:
        raise ZkProtocolError(f"punch event of {len(payload)} bytes; known sizes are "
                              f"{', '.join(str(int(f)) for f in EventFormat)}") from exc
    if fmt is EventFormat.E12:
        user_num, status, punch, when = _NUMERIC.unpack(payload)
        return PunchEvent(str(user_num), decode_timehex(when), status, punch)
    raw_id, status, punch, when = _TEXT.unpack_from(payload)
    user_id = raw_id.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    return PunchEvent(user_id, decode_timehex(when), status, punch)


def event_packet(event: PunchEvent, fmt: EventFormat) -> Packet:
    """The unsolicited packet a machine sends for a punch."""
    return Packet(Command.REG_EVENT, int(EventFlag.ATTLOG), 0, encode_punch_event(event, fmt))


def decode_event_packet(packet: Packet) -> PunchEvent:
    """A CMD_REG_EVENT packet from the machine → ``PunchEvent`` (EF_ATTLOG only)."""
    if packet.command != Command.REG_EVENT:
        raise ZkProtocolError(f"{packet.name} is not an event")
    return decode_punch_event(packet.data)
