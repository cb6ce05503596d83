"""User and attendance records in the machine's binary layouts. Pure; no I/O.

Every firmware family has its own record sizes; a table read through the buffer is a u32
byte count followed by back-to-back records, so the count and the table size give the
record size (how pyzk finds it). Layouts, little-endian, offsets in bytes:

User, 28 bytes (older black-and-white firmware, "ZK6")::

    0 uid u16 | 2 privilege u8 | 3 password 5s | 8 name 8s | 16 card u32 | 20 pad
    21 group u8 | 22 timezone i16 | 24 user_id u32

User, 72 bytes (colour-screen firmware, "ZK8")::

    0 uid u16 | 2 privilege u8 | 3 password 8s | 11 name 24s | 35 card u32 | 39 pad
    40 group 7s | 47 pad | 48 user_id 24s

Attendance, 8 bytes (oldest)::   0 uid u16 | 2 status u8 | 3 time u32 | 7 punch u8
Attendance, 16 bytes::           0 user_id u32 | 4 time u32 | 8 status u8 | 9 punch u8
                                 10 reserved 2 | 12 workcode u32
Attendance, 40 bytes::           0 uid u16 | 2 user_id 24s | 26 status u8 | 27 time u32
                                 31 punch u8 | 32 workcode u32 | 36 reserved 4
Attendance, 49 bytes (newer)::   the 40-byte layout (reserved included) then 9 reserved bytes

``status`` is how the user verified (1 fingerprint, 15 face, 0 password, 4 card), ``punch``
the state chosen (0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in, 5
overtime-out); ``time`` is the packed 31-day-month local time of ``zktime``. pyzk 0.9 reads no
work code; the 40-byte record's bytes after ``punch`` are undocumented and carry the work code
here (zero on machines without work codes). The 49-byte layout's last nine bytes are
undocumented; they are carried as zeros. pyzk 0.9 has no 49-byte branch and decodes such a
table as 40-byte records (garbage from the second record on).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from devices.zk.errors import ZkProtocolError
from devices.zk.zktime import decode_time, encode_time

TEXT_ENCODING = "utf-8"  # pyzk's default; machines sold in Indonesia store UTF-8 names
TABLE_SIZE_PREFIX = 4


class UserFormat(enum.IntEnum):
    """User record size by firmware family."""

    ZK6 = 28
    ZK8 = 72


class RecordFormat(enum.IntEnum):
    """Attendance record size by firmware family."""

    R8 = 8
    R16 = 16
    R40 = 40
    R49 = 49


@dataclass(frozen=True, slots=True)
class User:
    """A user as the machine stores it.

    ``uid`` is the machine's internal slot number (1..65535); ``user_id`` the employee's
    number (the NIP or a short staff number) that punches carry; on 28-byte firmware it must
    be a number that fits 32 bits.
    """

    uid: int
    user_id: str
    name: str = ""
    privilege: int = 0
    password: str = ""
    group_id: str = ""
    card: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.uid <= 0xFFFF:
            raise ZkProtocolError(f"user uid {self.uid} outside 1..65535")
        if not 0 <= self.privilege <= 0xFF:
            raise ZkProtocolError(f"user {self.uid}: privilege {self.privilege} not a byte")
        if not 0 <= self.card <= 0xFFFFFFFF:
            raise ZkProtocolError(f"user {self.uid}: card {self.card} does not fit 32 bits")


@dataclass(frozen=True, slots=True)
class AttendanceRecord:
    """One punch as stored by the machine (``timestamp``: naive machine-local time).

    ``uid`` is the machine's slot number where the layout carries it (0 otherwise);
    ``user_id`` the employee number ("" in an 8-byte record unless resolved through users).
    """

    user_id: str
    timestamp: datetime
    status: int = 1
    punch: int = 0
    uid: int = 0
    workcode: int = 0

    def __post_init__(self) -> None:
        for name in ("status", "punch"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ZkProtocolError(f"attendance {name} {getattr(self, name)} not a byte")
        if not 0 <= self.uid <= 0xFFFF:
            raise ZkProtocolError(f"attendance uid {self.uid} outside 0..65535")
        if not 0 <= self.workcode <= 0xFFFFFFFF:
            raise ZkProtocolError(f"attendance workcode {self.workcode} does not fit 32 bits")


# --------------------------------------------------------------------------- text fields


def _text(value: str, size: int, what: str, truncate: bool) -> bytes:
    raw = value.encode(TEXT_ENCODING)
    if len(raw) > size:
        if not truncate:
            raise ZkProtocolError(f"{what} {value!r} is {len(raw)} bytes, the field holds {size}")
        raw = raw[:size].decode(TEXT_ENCODING, errors="ignore").encode(TEXT_ENCODING)
    return raw.ljust(size, b"\0")


def _untext(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(TEXT_ENCODING, errors="replace")


def _numeric_id(user_id: str, what: str) -> int:
    if not user_id.isdigit() or not user_id.isascii() or int(user_id) > 0xFFFFFFFF:
        raise ZkProtocolError(f"{what} {user_id!r}: this layout holds a number up to "
                              f"4294967295")
    return int(user_id)


# --------------------------------------------------------------------------- users

_USER28 = struct.Struct("<HB5s8sIxBhI")
_USER72 = struct.Struct("<HB8s24sIx7sx24s")
assert _USER28.size == UserFormat.ZK6 and _USER72.size == UserFormat.ZK8


def user_fits(user: User, fmt: UserFormat) -> User:
    """A copy of ``user`` cut to what ``fmt`` holds (the machine's own truncation): text
    shortened, and on 28-byte firmware the group a number ("" becomes "0")."""
    if fmt is UserFormat.ZK6:
        group = int(user.group_id) if user.group_id.isdigit() and user.group_id.isascii() else 0
        return replace(user, name=_untext(_text(user.name, 8, "name", True)),
                       password=_untext(_text(user.password, 5, "password", True)),
                       group_id=str(group if group <= 0xFF else 0))
    return replace(user, name=_untext(_text(user.name, 24, "name", True)),
                   password=_untext(_text(user.password, 8, "password", True)),
                   group_id=_untext(_text(user.group_id, 7, "group", True)))


def encode_user(user: User, fmt: UserFormat) -> bytes:
    """``User`` → one record of ``fmt``; text that does not fit raises (see ``user_fits``)."""
    where = f"user {user.uid}"
    if fmt is UserFormat.ZK6:
        group = int(user.group_id) if user.group_id.isdigit() else 0
        if group > 0xFF:
            raise ZkProtocolError(f"{where}: group {user.group_id} does not fit a byte")
        return _USER28.pack(user.uid, user.privilege, _text(user.password, 5, "password", False),
                            _text(user.name, 8, f"{where} name", False), user.card, group, 0,
                            _numeric_id(user.user_id, f"{where} user_id"))
    return _USER72.pack(user.uid, user.privilege, _text(user.password, 8, "password", False),
                        _text(user.name, 24, f"{where} name", False), user.card,
                        _text(user.group_id, 7, f"{where} group", False),
                        _text(user.user_id, 24, f"{where} user_id", False))


def decode_user(raw: bytes, fmt: UserFormat) -> User:
    """One record of ``fmt`` → ``User``."""
    if len(raw) != fmt:
        raise ZkProtocolError(f"user record of {len(raw)} bytes, the {fmt.name} layout has {fmt}")
    if fmt is UserFormat.ZK6:
        uid, privilege, password, name, card, group, _tz, user_id = _USER28.unpack(raw)
        fields = (str(user_id), _untext(name), privilege, _untext(password), str(group), card)
    else:
        uid, privilege, password, name, card, group, user_id = _USER72.unpack(raw)
        fields = (_untext(user_id), _untext(name), privilege, _untext(password), _untext(group),
                  card)
    if uid == 0:
        raise ZkProtocolError(f"user record with uid 0: {bytes(raw[:8]).hex(' ')}…")
    user_id_s, name_s, privilege_i, password_s, group_s, card_i = fields
    return User(uid, user_id_s, name_s, privilege_i, password_s, group_s, card_i)


# --------------------------------------------------------------------------- attendance

_ATT8 = struct.Struct("<HBIB")
_ATT16 = struct.Struct("<IIBB2xI")
_ATT40 = struct.Struct("<H24sBIBI4x")
_ATT49 = struct.Struct("<H24sBIBI4x9x")
assert (_ATT8.size, _ATT16.size, _ATT40.size, _ATT49.size) == (8, 16, 40, 49)


def encode_attendance(record: AttendanceRecord, fmt: RecordFormat) -> bytes:
    """``AttendanceRecord`` → one record of ``fmt``."""
    t = encode_time(record.timestamp)
    if fmt is RecordFormat.R8:
        if record.uid == 0:
            raise ZkProtocolError(f"8-byte record for {record.user_id!r} needs the user's uid")
        return _ATT8.pack(record.uid, record.status, t, record.punch)
    if fmt is RecordFormat.R16:
        return _ATT16.pack(_numeric_id(record.user_id, "attendance user_id"), t,
                           record.status, record.punch, record.workcode)
    layout = _ATT40 if fmt is RecordFormat.R40 else _ATT49
    return layout.pack(record.uid, _text(record.user_id, 24, "attendance user_id", False),
                       record.status, t, record.punch, record.workcode)


def decode_attendance(raw: bytes, fmt: RecordFormat,
                      user_ids: Mapping[int, str] | None = None) -> AttendanceRecord:
    """One record of ``fmt`` → ``AttendanceRecord``.

    ``user_ids`` (uid → user_id) resolves the employee number of an 8-byte record, which
    carries only the machine's uid.
    """
    if len(raw) != fmt:
        raise ZkProtocolError(f"attendance record of {len(raw)} bytes, the {fmt.name} layout "
                              f"has {int(fmt)}")
    if fmt is RecordFormat.R8:
        uid, status, t, punch = _ATT8.unpack(raw)
        user_id = (user_ids or {}).get(uid, "")
        return AttendanceRecord(user_id, decode_time(t), status, punch, uid)
    if fmt is RecordFormat.R16:
        user_num, t, status, punch, workcode = _ATT16.unpack(raw)
        return AttendanceRecord(str(user_num), decode_time(t), status, punch, 0, workcode)
    layout = _ATT40 if fmt is RecordFormat.R40 else _ATT49
    uid, user_id_raw, status, t, punch, workcode = layout.unpack(raw)
    return AttendanceRecord(_untext(user_id_raw), decode_time(t), status, punch, uid, workcode)


# --------------------------------------------------------------------------- tables


def encode_table(records: Sequence[bytes]) -> bytes:
    """Encoded records → the buffer a table read returns (u32 byte count, then the records)."""
    body = b"".join(records)
    return struct.pack("<I", len(body)) + body


def table_body(data: bytes) -> bytes:
    """A table read's buffer → its records' bytes, after checking the u32 count."""
    if len(data) < TABLE_SIZE_PREFIX:
        raise ZkProtocolError(f"table of {len(data)} bytes has no size prefix")
    (size,) = struct.unpack_from("<I", data)
    if size != len(data) - TABLE_SIZE_PREFIX:
        raise ZkProtocolError(f"table announces {size} bytes of records, carries "
                              f"{len(data) - TABLE_SIZE_PREFIX}")
    return bytes(data[TABLE_SIZE_PREFIX:])


def record_size_of(table_bytes: int, count: int, known: Sequence[int]) -> int:
    """The record size a table of ``table_bytes`` holding ``count`` records must use."""
    if count <= 0:
        raise ZkProtocolError(f"cannot infer a record size from {count} records")
    size, rest = divmod(table_bytes, count)
    if rest or size not in known:
        raise ZkProtocolError(f"{table_bytes} bytes for {count} records is not a known record "
                              f"size ({', '.join(map(str, known))})")
    return size


def _split(body: bytes, size: int, what: str) -> list[bytes]:
    if len(body) % size:
        raise ZkProtocolError(f"{len(body)} bytes of {what} is not a whole number of "
                              f"{size}-byte records")
    return [body[i:i + size] for i in range(0, len(body), size)]


def encode_user_table(users: Sequence[User], fmt: UserFormat) -> bytes:
    """Users → the buffer CMD_USERTEMP_RRQ (table USER) returns."""
    return encode_table([encode_user(u, fmt) for u in users])


def decode_user_table(data: bytes, fmt: UserFormat) -> list[User]:
    """The buffer of a user table read → users."""
    return [decode_user(r, fmt) for r in _split(table_body(data), fmt, "users")]


def encode_attendance_table(records: Sequence[AttendanceRecord], fmt: RecordFormat) -> bytes:
    """Punches → the buffer CMD_ATTLOG_RRQ returns."""
    return encode_table([encode_attendance(r, fmt) for r in records])


def decode_attendance_table(data: bytes, fmt: RecordFormat,
                            user_ids: Mapping[int, str] | None = None) -> list[AttendanceRecord]:
    """The buffer of an attendance read → punches, oldest first as the machine stores them."""
    return [decode_attendance(r, fmt, user_ids)
            for r in _split(table_body(data), fmt, "attendance")]
