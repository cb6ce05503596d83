"""Device information on the wire: option strings, the firmware version, free sizes and counts.

Pure; no I/O. Options are read with CMD_OPTIONS_RRQ whose payload is the key and a NUL
(``~SerialNumber\\0``); the machine answers ``~SerialNumber=ABC123\\0``. Keys starting with
``~`` are read-only (serial number, device name, platform, OEM vendor, extended formats).
CMD_GET_VERSION answers the firmware version as NUL-terminated text (``Ver 6.60 Apr 28 2017``).

CMD_GET_FREE_SIZES answers 20 little-endian i32 (80 bytes), and colour-screen firmware with
face recognition adds three more (92 bytes). The used indices, as pyzk 0.9 reads them::

    4 users   6 fingers   8 records   10 (unknown, pyzk's "dummy")   12 cards
    14 fingers capacity   15 users capacity   16 records capacity
    17 fingers available  18 users available  19 records available
    face block: 0 faces   2 faces capacity
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from devices.zk.errors import ZkProtocolError

OPTION_TEXT = "ascii"
SERIAL_NUMBER = "~SerialNumber"
DEVICE_NAME = "~DeviceName"
PLATFORM = "~Platform"
OEM_VENDOR = "~OEMVendor"
FP_VERSION = "~ZKFPVersion"
FACE_VERSION = "ZKFaceVersion"
EXTEND_FMT = "~ExtendFmt"
USER_EXT_FMT = "~UserExtFmt"
MAC = "MAC"

_SIZES = struct.Struct("<20i")
_FACES = struct.Struct("<3i")
SIZES_SIZE = _SIZES.size  # 80
SIZES_WITH_FACES_SIZE = _SIZES.size + _FACES.size  # 92


def _cstring(raw: bytes, what: str) -> str:
    text = raw.split(b"\0", 1)[0]
    try:
        return text.decode(OPTION_TEXT)
    except UnicodeDecodeError as exc:
        raise ZkProtocolError(f"{what} is not ASCII text: {raw[:40]!r}") from exc


def _check_key(key: str) -> None:
    if not key or "=" in key or "\0" in key or not key.isascii() or not key.isprintable():
        raise ZkProtocolError(f"option key {key!r} must be printable ASCII without '='")


def encode_option_request(key: str) -> bytes:
    """CMD_OPTIONS_RRQ payload for ``key``."""
    _check_key(key)
    return key.encode(OPTION_TEXT) + b"\0"


def decode_option_request(payload: bytes) -> str:
    """CMD_OPTIONS_RRQ payload → the key asked for."""
    key = _cstring(payload, "option key")
    _check_key(key)
    return key


def encode_option(key: str, value: str) -> bytes:
    """``key=value`` and a NUL: a CMD_OPTIONS_RRQ answer (and a CMD_OPTIONS_WRQ payload)."""
    _check_key(key)
    if "\0" in value or not value.isascii():
        raise ZkProtocolError(f"option {key} value {value!r} must be ASCII without NUL")
    return f"{key}={value}".encode(OPTION_TEXT) + b"\0"


def decode_option(payload: bytes) -> tuple[str, str]:
    """``key=value`` (NUL-terminated or not) → (key, value)."""
    text = _cstring(payload, "option")
    key, sep, value = text.partition("=")
    if not sep:
        raise ZkProtocolError(f"option answer {text!r} has no '='")
    _check_key(key)
    return key, value


def encode_version(version: str) -> bytes:
    """CMD_GET_VERSION answer payload."""
    if "\0" in version or not version.isascii():
        raise ZkProtocolError(f"firmware version {version!r} must be ASCII without NUL")
    return version.encode(OPTION_TEXT) + b"\0"


def decode_version(payload: bytes) -> str:
    """CMD_GET_VERSION answer payload → version text."""
    return _cstring(payload, "firmware version")


@dataclass(frozen=True, slots=True)
class FreeSizes:
    """Counts and capacities from CMD_GET_FREE_SIZES. ``faces``/``faces_cap`` are ``None``
    when the machine sends the 80-byte form (no face block)."""

    users: int
    fingers: int
    records: int
    cards: int
    users_cap: int
    fingers_cap: int
    records_cap: int
    users_av: int
    fingers_av: int
    records_av: int
    faces: int | None = None
    faces_cap: int | None = None

    @property
    def records_used_pct(self) -> float:
        """How full the attendance log is, in percent of its capacity."""
        return 100.0 * self.records / self.records_cap if self.records_cap else 0.0


def encode_free_sizes(sizes: FreeSizes) -> bytes:
    """``FreeSizes`` → 80 bytes, or 92 when it carries faces."""
    fields = [0] * 20
    fields[4], fields[6], fields[8], fields[12] = (sizes.users, sizes.fingers, sizes.records,
                                                   sizes.cards)
    fields[14], fields[15], fields[16] = sizes.fingers_cap, sizes.users_cap, sizes.records_cap
    fields[17], fields[18], fields[19] = sizes.fingers_av, sizes.users_av, sizes.records_av
    try:
        out = _SIZES.pack(*fields)
        if sizes.faces is not None:
            out += _FACES.pack(sizes.faces, 0, sizes.faces_cap or 0)
    except struct.error as exc:
        raise ZkProtocolError(f"free sizes do not fit i32: {sizes}") from exc
    return out


def decode_free_sizes(payload: bytes) -> FreeSizes:
    """CMD_GET_FREE_SIZES answer payload → ``FreeSizes``."""
    if len(payload) < SIZES_SIZE:
        raise ZkProtocolError(f"free sizes of {len(payload)} bytes, need at least {SIZES_SIZE}")
    f = _SIZES.unpack_from(payload)
    faces = faces_cap = None
    if len(payload) >= SIZES_WITH_FACES_SIZE:
        faces, _, faces_cap = _FACES.unpack_from(payload, SIZES_SIZE)
    if min(f[4], f[6], f[8], f[12], *f[14:20]) < 0:
        raise ZkProtocolError(f"free sizes carry a negative count: {payload[:SIZES_SIZE].hex()}")
    return FreeSizes(users=f[4], fingers=f[6], records=f[8], cards=f[12], fingers_cap=f[14],
                     users_cap=f[15], records_cap=f[16], fingers_av=f[17], users_av=f[18],
                     records_av=f[19], faces=faces, faces_cap=faces_cap)
