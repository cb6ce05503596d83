"""Comm-key authentication: the scrambled key a client answers CMD_ACK_UNAUTH with.

A machine with a comm key (a number, 0 = none, set on its menu) answers CMD_CONNECT with
CMD_ACK_UNAUTH and a session id; the client then sends CMD_AUTH with ``make_commkey(key,
session_id)`` and the machine answers CMD_ACK_OK or, for a wrong key, CMD_ACK_UNAUTH again.
The scrambling is commpro.c's MakeKey, as pyzk 0.9 copies it. Pure; no I/O.
"""

from __future__ import annotations

import struct

from devices.zk.errors import ZkProtocolError

COMMKEY_SIZE = 4
MAX_COMM_KEY = 0xFFFFFFFF
DEFAULT_TICKS = 50  # pyzk's default; the machine reads it back from byte 2


def _reverse_bits32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def make_commkey(key: int, session_id: int, ticks: int = DEFAULT_TICKS) -> bytes:
    """The 4-byte CMD_AUTH payload for comm key ``key`` on session ``session_id``.

    Bit-reverse the 32-bit key, add the session id (modulo 2**32; pyzk itself fails with
    struct.error when the sum overflows), XOR the bytes with "ZKSO", swap the two 16-bit
    halves, XOR with ``ticks`` and put ``ticks`` itself in byte 2.
    """
    if not isinstance(key, int) or not 0 <= key <= MAX_COMM_KEY:
        raise ZkProtocolError(f"comm key {key!r} is not a number in 0..{MAX_COMM_KEY}")
    if not 0 <= session_id <= 0xFFFF:
        raise ZkProtocolError(f"session id {session_id!r} is not a 16-bit value")
    k = (_reverse_bits32(key) + session_id) & 0xFFFFFFFF
    b = bytearray(struct.pack("<I", k))
    b = bytearray(x ^ m for x, m in zip(b, b"ZKSO", strict=True))
    b = b[2:4] + b[0:2]
    t = ticks & 0xFF
    return bytes((b[0] ^ t, b[1] ^ t, t, b[3] ^ t))


def commkey_matches(payload: bytes, key: int, session_id: int) -> bool:
    """Is ``payload`` (a CMD_AUTH payload) the scrambled ``key`` for ``session_id``?"""
    if len(payload) < COMMKEY_SIZE:
        return False
    return make_commkey(key, session_id, ticks=payload[2]) == bytes(payload[:COMMKEY_SIZE])
