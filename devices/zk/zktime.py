"""The machine's two time encodings. Pure; local wall time, no zone.

A ZK machine keeps naive local time: it has no time zone, and the office's zone (WIB, WITA,
WIT) is the driver's business. Two encodings are on the wire:

* the packed u32 of zkemsdk.c EncodeTime, with every month counted as 31 days::

      ((year % 100) * 12 * 31 + (month - 1) * 31 + day - 1) * 86400
      + (hour * 60 + minute) * 60 + second

  used by CMD_GET_TIME / CMD_SET_TIME and in stored attendance records;
* six bytes ``year - 2000, month, day, hour, minute, second`` in live events.

Years 2000–2099 are encodable (the formula keeps ``year % 100``).
"""

from __future__ import annotations

import struct
from datetime import datetime

from devices.zk.errors import ZkProtocolError

MIN_YEAR, MAX_YEAR = 2000, 2099
_SECONDS_PER_DAY = 86400
_DAYS_PER_YEAR = 12 * 31


def _check_year(when: datetime) -> None:
    if when.tzinfo is not None:
        raise ZkProtocolError(f"{when.isoformat()} carries a time zone; the machine keeps "
                              f"naive local time — convert to the office's zone first")
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        raise ZkProtocolError(f"year {when.year} cannot be encoded ({MIN_YEAR}..{MAX_YEAR})")


def encode_time(when: datetime) -> int:
    """Naive local datetime → the machine's packed u32 (31-day months)."""
    _check_year(when)
    days = (when.year % 100) * _DAYS_PER_YEAR + (when.month - 1) * 31 + when.day - 1
    return days * _SECONDS_PER_DAY + (when.hour * 60 + when.minute) * 60 + when.second


def decode_time(value: int) -> datetime:
    """The machine's packed u32 → naive local datetime; an impossible date raises."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ZkProtocolError(f"packed time {value} is not a u32")
    t = value
    second, t = t % 60, t // 60
    minute, t = t % 60, t // 60
    hour, t = t % 24, t // 24
    day, t = t % 31 + 1, t // 31
    month, t = t % 12 + 1, t // 12
    year = t + MIN_YEAR
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ZkProtocolError(f"packed time {value} is {year}-{month:02}-{day:02}, "
                              f"not a date") from exc


def encode_time_bytes(when: datetime) -> bytes:
    """Naive local datetime → 4 bytes (u32 little-endian)."""
    return struct.pack("<I", encode_time(when))


def decode_time_bytes(raw: bytes) -> datetime:
    """4 bytes (u32 little-endian) → naive local datetime."""
    if len(raw) != 4:
        raise ZkProtocolError(f"packed time needs 4 bytes, got {len(raw)}")
    return decode_time(struct.unpack("<I", raw)[0])


def encode_timehex(when: datetime) -> bytes:
    """Naive local datetime → the 6 bytes of a live event."""
    _check_year(when)
    return bytes((when.year - MIN_YEAR, when.month, when.day, when.hour, when.minute,
                  when.second))


def decode_timehex(raw: bytes) -> datetime:
    """The 6 bytes of a live event → naive local datetime."""
    if len(raw) != 6:
        raise ZkProtocolError(f"event time needs 6 bytes, got {len(raw)}")
    year, month, day, hour, minute, second = raw
    try:
        return datetime(year + MIN_YEAR, month, day, hour, minute, second)
    except ValueError as exc:
        raise ZkProtocolError(f"event time {raw.hex(' ')} is not a date and time") from exc
