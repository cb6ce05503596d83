"""ZK packets on the wire: the 8-byte header, its checksum, TCP framing and UDP datagrams.

Pure bytes in, typed values out (and back); no sockets. A packet is::

    offset  size  field
    0       2     command or reply code     (u16 little-endian)
    2       2     checksum                  (u16, see ``checksum``)
    4       2     session id                (u16, given by the machine's reply to CMD_CONNECT)
    6       2     reply id                  (u16, counted by the client, echoed by the machine)
    8       n     payload

Over UDP a datagram is exactly one packet. Over TCP each packet is preceded by an 8-byte top::

    50 50 82 7D   u32 little-endian length of packet (header + payload)

(pyzk's const.py comments these two magic words wrongly; the bytes above are what it sends.)
``TcpDeframer`` turns a byte stream into packets and raises ``ZkProtocolError`` on a stream that
cannot be resynchronised (wrong magic, impossible length): the caller drops that connection.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass

from devices.zk.codes import (
    HEADER_SIZE,
    REPLY_ID_MODULUS,
    TCP_MAGIC,
    TCP_MAX_CHUNK,
    TCP_TOP_SIZE,
    USHRT_MAX,
    code_name,
)
from devices.zk.errors import ZkProtocolError

_HEADER = struct.Struct("<4H")
_TOP = struct.Struct("<4sI")
# A reply carries at most one buffered-read chunk; a request is far smaller. Anything longer is
# not a ZK packet, and buffering it would let one client exhaust the machine's memory.
MAX_PACKET_SIZE = HEADER_SIZE + TCP_MAX_CHUNK + 64


def _sum_words(data: bytes) -> int:
    words = array("H")
    even = len(data) & ~1
    words.frombytes(data[:even])
    if sys.byteorder == "big":
        words.byteswap()
    total = sum(words)
    if len(data) & 1:
        total += data[-1]
    return total


def checksum(data: bytes) -> int:
    """The ZK checksum of a header (checksum field zero) plus payload.

    zkemsdk.c (and pyzk, php-zklib) add the little-endian 16-bit words with end-around carry
    (a one's-complement sum, folded by subtracting 65535), add a trailing odd byte, then take
    ``~sum`` and add 65535 until it is not negative. That is ``65534 - (sum mod 65535)``:
    one's-complement arithmetic in which 0 and 0xFFFF are the same number.
    """
    return USHRT_MAX - 1 - _sum_words(data) % USHRT_MAX


def next_reply_id(reply_id: int) -> int:
    """The reply id after ``reply_id`` (zkemsdk wraps at 65535, not 65536)."""
    return (reply_id + 1) % REPLY_ID_MODULUS


@dataclass(frozen=True, slots=True)
class Packet:
    """One ZK packet: a command or reply code, the session and reply ids, and a payload.

    ``checksum`` is what came on the wire (``None`` for a packet built here: ``encode`` computes
    it over the header as sent).
    """

    command: int
    session_id: int = 0
    reply_id: int = 0
    data: bytes = b""
    checksum: int | None = None

    def __post_init__(self) -> None:
        for name in ("command", "session_id", "reply_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= USHRT_MAX:
                raise ZkProtocolError(f"packet {name} {value!r} is not a 16-bit value")
        if not isinstance(self.data, bytes | bytearray):
            raise ZkProtocolError(f"packet payload must be bytes, not {type(self.data).__name__}")

    @property
    def name(self) -> str:
        """The command or reply code by name, for logs."""
        return code_name(self.command)

    def encode(self) -> bytes:
        """Header and payload with the checksum computed over exactly these bytes."""
        return encode_packet(self.command, self.session_id, self.reply_id, self.data)

    def checksum_ok(self) -> bool:
        """Does the received checksum match, under either convention in use?

        A machine's replies checksum the header as sent. zkemsdk-derived clients (pyzk,
        php-zklib) compute the checksum *before* they advance the reply id they then send, so
        their requests checksum ``reply_id - 1``. Both are accepted.
        """
        if self.checksum is None:
            return True
        plain = struct.pack("<4H", self.command, 0, self.session_id, self.reply_id) + self.data
        if checksum(plain) == self.checksum:
            return True
        before = (self.reply_id - 1) % REPLY_ID_MODULUS
        sdk = struct.pack("<4H", self.command, 0, self.session_id, before) + self.data
        return checksum(sdk) == self.checksum


def encode_packet(command: int, session_id: int, reply_id: int, data: bytes = b"") -> bytes:
    """A packet whose checksum covers its own header (how a machine answers)."""
    try:
        head = _HEADER.pack(command, 0, session_id, reply_id)
    except struct.error as exc:
        raise ZkProtocolError(f"header fields out of range: command={command}, "
                              f"session={session_id}, reply={reply_id}") from exc
    body = head + bytes(data)
    return _HEADER.pack(command, checksum(body), session_id, reply_id) + bytes(data)


def encode_request(command: int, session_id: int, last_reply_id: int,
                   data: bytes = b"") -> tuple[bytes, int]:
    """A client request as zkemsdk and pyzk build it; returns (packet, reply id it carries).

    The checksum is computed over ``last_reply_id`` and the packet then carries the next reply
    id — the convention every machine in the field accepts, so a new client follows it too.
    """
    try:
        head = _HEADER.pack(command, 0, session_id, last_reply_id)
    except struct.error as exc:
        raise ZkProtocolError(f"header fields out of range: command={command}, "
                              f"session={session_id}, reply={last_reply_id}") from exc
    value = checksum(head + bytes(data))
    reply_id = next_reply_id(last_reply_id)
    return _HEADER.pack(command, value, session_id, reply_id) + bytes(data), reply_id


def decode_packet(raw: bytes) -> Packet:
    """One packet (a UDP datagram, or a TCP frame without its top) → ``Packet``."""
    if len(raw) < HEADER_SIZE:
        raise ZkProtocolError(f"packet of {len(raw)} bytes is shorter than the "
                              f"{HEADER_SIZE}-byte header")
    if len(raw) > MAX_PACKET_SIZE:
        raise ZkProtocolError(f"packet of {len(raw)} bytes is longer than any ZK packet "
                              f"({MAX_PACKET_SIZE})")
    command, value, session_id, reply_id = _HEADER.unpack_from(raw)
    return Packet(command, session_id, reply_id, bytes(raw[HEADER_SIZE:]), value)


def tcp_frame(packet: bytes) -> bytes:
    """Prefix a packet with the TCP top (magic and length)."""
    return _TOP.pack(TCP_MAGIC, len(packet)) + packet


def decode_tcp_top(top: bytes) -> int:
    """The 8-byte TCP top → the length of the packet that follows."""
    if len(top) < TCP_TOP_SIZE:
        raise ZkProtocolError(f"TCP top of {len(top)} bytes, need {TCP_TOP_SIZE}")
    magic, length = _TOP.unpack_from(top)
    if magic != TCP_MAGIC:
        raise ZkProtocolError(f"TCP top starts {magic.hex(' ')}, expected {TCP_MAGIC.hex(' ')}")
    if not HEADER_SIZE <= length <= MAX_PACKET_SIZE:
        raise ZkProtocolError(f"TCP top announces {length} bytes, a ZK packet has "
                              f"{HEADER_SIZE}..{MAX_PACKET_SIZE}")
    return length


def decode_tcp_frame(frame: bytes) -> Packet:
    """Exactly one TCP frame (top + packet) → ``Packet``."""
    length = decode_tcp_top(frame)
    if len(frame) != TCP_TOP_SIZE + length:
        raise ZkProtocolError(f"TCP frame of {len(frame)} bytes, its top announces "
                              f"{TCP_TOP_SIZE + length}")
    return decode_packet(frame[TCP_TOP_SIZE:])


class TcpDeframer:
    """Feed it TCP bytes as they arrive; take whole packets out.

    ``feed`` returns the packets completed by these bytes (possibly none) and keeps the rest.
    A wrong magic or an impossible length raises ``ZkProtocolError``: a byte stream cannot be
    resynchronised, so the connection must be dropped. ``max_packet`` bounds what is buffered.
    """

    def __init__(self, max_packet: int = MAX_PACKET_SIZE) -> None:
        self._buffer = bytearray()
        self._max_packet = max_packet

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        self._buffer += data
        packets: list[Packet] = []
        while len(self._buffer) >= TCP_TOP_SIZE:
            length = decode_tcp_top(bytes(self._buffer[:TCP_TOP_SIZE]))
            if length > self._max_packet:
                raise ZkProtocolError(f"TCP top announces {length} bytes, more than the "
                                      f"{self._max_packet} accepted here")
            end = TCP_TOP_SIZE + length
            if len(self._buffer) < end:
                break
            packets.append(decode_packet(bytes(self._buffer[TCP_TOP_SIZE:end])))
            del self._buffer[:end]
        if self._buffer and not TCP_MAGIC.startswith(bytes(self._buffer[:4])):
            raise ZkProtocolError(f"stream does not start with the TCP magic: "
                                  f"{bytes(self._buffer[:8]).hex(' ')}")
        return packets
