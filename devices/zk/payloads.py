"""Payloads of the single-packet commands: time, users, device control. Pure.

Each ``encode_*`` builds what a client puts after the header, each ``decode_*`` reads it back
(the emulator's side). Table reads are in ``transfer``, events in ``events``, options and
sizes in ``info``, comm keys in ``auth``. Commands without a payload (CMD_CONNECT,
CMD_ENABLEDEVICE, CMD_DISABLEDEVICE, CMD_RESTART, CMD_CLEAR_ATTLOG, CMD_FREE_DATA,
CMD_REFRESHDATA, CMD_EXIT, CMD_GET_TIME, CMD_GET_FREE_SIZES) need nothing here.
"""

from __future__ import annotations

import struct
from datetime import datetime

from devices.zk.errors import ZkProtocolError
from devices.zk.records import User, UserFormat, decode_user, encode_user
from devices.zk.zktime import decode_time, encode_time


def encode_set_time(when: datetime) -> bytes:
    """CMD_SET_TIME payload (also the CMD_GET_TIME answer): packed u32 local time."""
    return struct.pack("<I", encode_time(when))


def decode_set_time(payload: bytes) -> datetime:
    """CMD_SET_TIME payload or CMD_GET_TIME answer → naive local datetime."""
    if len(payload) < 4:
        raise ZkProtocolError(f"time payload of {len(payload)} bytes, need 4")
    return decode_time(struct.unpack_from("<I", payload)[0])


def encode_set_user(user: User, fmt: UserFormat) -> bytes:
    """CMD_USER_WRQ payload: the user record in the machine's layout."""
    return encode_user(user, fmt)


def decode_set_user(payload: bytes) -> tuple[User, UserFormat]:
    """CMD_USER_WRQ payload → the user and the layout it came in (found by its size)."""
    try:
        fmt = UserFormat(len(payload))
    except ValueError as exc:
        raise ZkProtocolError(f"user write of {len(payload)} bytes; layouts are 28 and 72") \
            from exc
    return decode_user(payload, fmt), fmt


def encode_delete_user(uid: int) -> bytes:
    """CMD_DELETE_USER payload: the uid (u16)."""
    if not 1 <= uid <= 0xFFFF:
        raise ZkProtocolError(f"uid {uid} outside 1..65535")
    return struct.pack("<H", uid)


def decode_delete_user(payload: bytes) -> int:
    """CMD_DELETE_USER payload → uid."""
    if len(payload) < 2:
        raise ZkProtocolError(f"delete-user payload of {len(payload)} bytes, need 2")
    (uid,) = struct.unpack_from("<H", payload)
    if uid == 0:
        raise ZkProtocolError("delete-user for uid 0")
    return uid


def encode_unlock(seconds: int) -> bytes:
    """CMD_UNLOCK payload: door open time in tenths of a second (u32)."""
    if not 0 < seconds <= 0xFFFFFFFF // 10:
        raise ZkProtocolError(f"unlock time {seconds} s out of range")
    return struct.pack("<I", seconds * 10)
