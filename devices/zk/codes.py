"""Command, reply and event codes of the ZK protocol, and its fixed sizes, as data.

Values follow ZKTeco's communication protocol as implemented by zkemsdk.c and pyzk 0.9
(``zk/const.py``); the buffered-read commands 1503/1504 are the ones pyzk uses unnamed.
Nothing here encodes or decodes; ``framing``, ``records`` and ``transfer`` do.
"""

from __future__ import annotations

import enum

USHRT_MAX = 0xFFFF
# Reply ids wrap at 65535, not 65536 (zkemsdk: `if (reply_id >= USHRT_MAX) reply_id -= USHRT_MAX`).
REPLY_ID_MODULUS = USHRT_MAX
# The reply id a client puts on its first CMD_CONNECT (pyzk, zkemsdk): USHRT_MAX - 1, so the
# first packet on the wire carries 65535 - 1 + 1 - 65535 = 0.
FIRST_REPLY_ID = USHRT_MAX - 1

DEFAULT_PORT = 4370
HEADER_SIZE = 8  # command, checksum, session id, reply id: four little-endian u16
TCP_TOP_SIZE = 8  # 50 50 82 7D + u32 little-endian length of header + payload
TCP_MAGIC = b"\x50\x50\x82\x7d"

# Largest chunk a client asks for in one buffered read (pyzk: 0xFFC0 over TCP, 16 KiB over UDP)
# and the largest CMD_DATA payload in one UDP datagram (pyzk reads 1024 + 8 bytes per datagram).
TCP_MAX_CHUNK = 0xFFC0
UDP_MAX_CHUNK = 16 * 1024
UDP_DATA_PACKET = 1024
# Some firmware sends a TCP chunk as CMD_DATA packets of 1008 payload bytes (1024 with header).
SMALL_DATA_PACKET = 1008


class Command(enum.IntEnum):
    """Request codes a client sends (and CMD_REG_EVENT, which the machine also sends)."""

    DB_RRQ = 7
    USER_WRQ = 8
    USERTEMP_RRQ = 9
    USERTEMP_WRQ = 10
    OPTIONS_RRQ = 11
    OPTIONS_WRQ = 12
    ATTLOG_RRQ = 13
    CLEAR_DATA = 14
    CLEAR_ATTLOG = 15
    DELETE_USER = 18
    DELETE_USERTEMP = 19
    CLEAR_ADMIN = 20
    UNLOCK = 31
    CLEAR_OPLOG = 33
    GET_FREE_SIZES = 50
    ENABLE_CLOCK = 57
    STARTVERIFY = 60
    STARTENROLL = 61
    CANCELCAPTURE = 62
    STATE_RRQ = 64
    GET_PINWIDTH = 69
    GET_TIME = 201
    SET_TIME = 202
    REG_EVENT = 500
    CONNECT = 1000
    EXIT = 1001
    ENABLEDEVICE = 1002
    DISABLEDEVICE = 1003
    RESTART = 1004
    POWEROFF = 1005
    SLEEP = 1006
    RESUME = 1007
    REFRESHDATA = 1013
    REFRESHOPTION = 1014
    TESTVOICE = 1017
    GET_VERSION = 1100
    CHANGE_SPEED = 1101
    AUTH = 1102
    PREPARE_DATA = 1500
    DATA = 1501
    FREE_DATA = 1502
    PREPARE_BUFFER = 1503  # "_CMD_PREPARE_BUFFER": read a table through the machine's buffer
    READ_BUFFER = 1504  # "_CMD_READ_BUFFER": one chunk (start, size) of that buffer


class Reply(enum.IntEnum):
    """Reply codes the machine sends (CMD_ACK_OK is also what a client acks an event with)."""

    ACK_OK = 2000
    ACK_ERROR = 2001
    ACK_DATA = 2002
    ACK_RETRY = 2003
    ACK_REPEAT = 2004
    ACK_UNAUTH = 2005
    ACK_UNKNOWN = 0xFFFF
    ACK_ERROR_CMD = 0xFFFD
    ACK_ERROR_INIT = 0xFFFC
    ACK_ERROR_DATA = 0xFFFB


# Replies that carry a successful answer (pyzk treats exactly these as "status True").
SUCCESS_CODES = frozenset({Reply.ACK_OK, Command.PREPARE_DATA, Command.DATA})


class EventFlag(enum.IntFlag):
    """Event classes a client registers for with CMD_REG_EVENT (a u32 mask)."""

    ATTLOG = 1
    FINGER = 1 << 1
    ENROLLUSER = 1 << 2
    ENROLLFINGER = 1 << 3
    BUTTON = 1 << 4
    UNLOCK = 1 << 5
    VERIFY = 1 << 7
    FPFTR = 1 << 8
    ALARM = 1 << 9


class Table(enum.IntEnum):
    """The ``fct`` argument of a buffered read: which table CMD_DB_RRQ / USERTEMP_RRQ reads."""

    ATTLOG = 1
    FINGERTMP = 2
    OPLOG = 4
    USER = 5
    SMS = 6
    UDATA = 7
    WORKCODE = 8


class Privilege(enum.IntEnum):
    """User privilege byte."""

    DEFAULT = 0
    ENROLLER = 2
    MANAGER = 6
    ADMIN = 14


def code_name(code: int) -> str:
    """A readable name for a command or reply code (for logs and error messages)."""
    for kind in (Command, Reply):
        try:
            return f"CMD_{kind(code).name}"
        except ValueError:
            continue
    return f"code {code}"
