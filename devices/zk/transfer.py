"""The buffered read: how a table (users, attendance) leaves the machine in chunks. Pure.

::

    client                                   machine
    _CMD_PREPARE_BUFFER 1503 (1, cmd, fct, ext)  →
                                             ←  CMD_ACK_OK  (00, u32 size, 4 × 00)
    _CMD_READ_BUFFER 1504 (start, size)      →      once per chunk: ≤ 0xFFC0 bytes over
                                             ←  CMD_PREPARE_DATA (u32 size, u32 0)  TCP,
                                             ←  CMD_DATA (the chunk; over UDP ≤ 1024 bytes
                                                 per datagram, so several)           16 KiB
                                             ←  CMD_ACK_OK                           over UDP
    CMD_FREE_DATA                            →
                                             ←  CMD_ACK_OK

A machine may also answer 1503 with CMD_DATA carrying the whole (small) table inline. Some
firmware sends a TCP chunk as several CMD_DATA packets of 1008 payload bytes; pyzk 0.9 then
blocks on a read for bytes it already has and times out. ``ChunkAssembler`` takes either form.
The table itself (a u32 byte count, then records) is ``records``' business.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from devices.zk.codes import (
    TCP_MAX_CHUNK,
    UDP_DATA_PACKET,
    Command,
    Reply,
    code_name,
)
from devices.zk.errors import ZkProtocolError
from devices.zk.framing import Packet

_PREPARE_BUFFER = struct.Struct("<bhii")
_READ_CHUNK = struct.Struct("<ii")
_BUFFER_READY = struct.Struct("<xI4x")
_PREPARE_DATA = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class BufferRequest:
    """What a 1503 asks the machine to put in its buffer: a read command and its table."""

    command: int
    fct: int = 0
    ext: int = 0


def encode_prepare_buffer(request: BufferRequest) -> bytes:
    """1503 payload."""
    try:
        return _PREPARE_BUFFER.pack(1, request.command, request.fct, request.ext)
    except struct.error as exc:
        raise ZkProtocolError(f"buffer request out of range: {request}") from exc


def decode_prepare_buffer(payload: bytes) -> BufferRequest:
    """1503 payload → ``BufferRequest``."""
    if len(payload) != _PREPARE_BUFFER.size:
        raise ZkProtocolError(f"buffer request of {len(payload)} bytes, need "
                              f"{_PREPARE_BUFFER.size}")
    _one, command, fct, ext = _PREPARE_BUFFER.unpack(payload)
    return BufferRequest(command, fct, ext)


def encode_buffer_ready(size: int) -> bytes:
    """The CMD_ACK_OK payload answering 1503: the table's size in bytes."""
    if not 0 <= size <= 0xFFFFFFFF:
        raise ZkProtocolError(f"buffer size {size} does not fit 32 bits")
    return _BUFFER_READY.pack(size)


def decode_buffer_ready(payload: bytes) -> int:
    """The CMD_ACK_OK payload answering 1503 → the table's size in bytes."""
    if len(payload) < 5:
        raise ZkProtocolError(f"buffer-ready answer of {len(payload)} bytes, need 5")
    return struct.unpack_from("<I", payload, 1)[0]


def encode_read_chunk(start: int, size: int) -> bytes:
    """1504 payload."""
    if start < 0 or size <= 0 or start + size > 0x7FFFFFFF:
        raise ZkProtocolError(f"chunk start={start} size={size} out of range")
    return _READ_CHUNK.pack(start, size)


def decode_read_chunk(payload: bytes) -> tuple[int, int]:
    """1504 payload → (start, size)."""
    if len(payload) != _READ_CHUNK.size:
        raise ZkProtocolError(f"chunk request of {len(payload)} bytes, need {_READ_CHUNK.size}")
    start, size = _READ_CHUNK.unpack(payload)
    if start < 0 or size <= 0:
        raise ZkProtocolError(f"chunk request start={start} size={size} out of range")
    return start, size


def encode_prepare_data(size: int) -> bytes:
    """CMD_PREPARE_DATA payload from the machine (u32 size, u32 0; pyzk skips 8 bytes)."""
    if not 0 <= size <= 0xFFFFFFFF:
        raise ZkProtocolError(f"data size {size} does not fit 32 bits")
    return _PREPARE_DATA.pack(size, 0)


def decode_prepare_data(payload: bytes) -> int:
    """CMD_PREPARE_DATA payload (4 bytes from a client, 8 from a machine) → size."""
    if len(payload) < 4:
        raise ZkProtocolError(f"prepare-data of {len(payload)} bytes, need 4")
    return struct.unpack_from("<I", payload)[0]


def plan_chunks(total: int, max_chunk: int = TCP_MAX_CHUNK) -> list[tuple[int, int]]:
    """(start, size) of each 1504 a client sends to read ``total`` bytes, as pyzk splits."""
    if total < 0 or max_chunk <= 0:
        raise ZkProtocolError(f"cannot plan chunks for total={total} max_chunk={max_chunk}")
    return [(start, min(max_chunk, total - start)) for start in range(0, total, max_chunk)]


def chunk_packets(chunk: bytes, *, session_id: int, reply_id: int,
                  piece: int | None = None) -> list[Packet]:
    """The machine's answer to one 1504: PREPARE_DATA, CMD_DATA piece(s), ACK_OK.

    ``piece`` splits the data into CMD_DATA packets of at most that many bytes (UDP:
    ``UDP_DATA_PACKET``; some firmware over TCP: ``SMALL_DATA_PACKET``); ``None`` sends it whole.
    """
    if piece is not None and piece <= 0:
        raise ZkProtocolError(f"piece size {piece} must be positive")
    step = piece or max(len(chunk), 1)
    out = [Packet(Command.PREPARE_DATA, session_id, reply_id, encode_prepare_data(len(chunk)))]
    out += [Packet(Command.DATA, session_id, reply_id, chunk[i:i + step])
            for i in range(0, len(chunk), step)]
    out.append(Packet(Reply.ACK_OK, session_id, reply_id))
    return out


class ChunkAssembler:
    """Client side of one 1504: feed it the machine's packets in order until ``done``.

    Takes the inline form (one CMD_DATA) and the announced form (PREPARE_DATA, CMD_DATA
    pieces, ACK_OK). ``data`` is the chunk once ``done``; a reply of the wrong kind, or pieces
    that overrun the announced size, raise ``ZkProtocolError``.
    """

    def __init__(self, expected_size: int) -> None:
        self.expected_size = expected_size
        self._announced: int | None = None
        self._parts: list[bytes] = []
        self._received = 0
        self.done = False

    @property
    def data(self) -> bytes:
        if not self.done:
            raise ZkProtocolError("chunk not complete yet")
        return b"".join(self._parts)

    def add(self, packet: Packet) -> bool:
        """Take one packet; returns ``done``."""
        if self.done:
            raise ZkProtocolError(f"{packet.name} after the chunk was complete")
        code = packet.command
        if self._announced is None:
            if code == Command.DATA:  # inline answer
                self._take(packet.data)
                self.done = True
            elif code == Command.PREPARE_DATA:
                self._announced = decode_prepare_data(packet.data)
                if self._announced != self.expected_size:
                    raise ZkProtocolError(f"machine announces {self._announced} bytes for a "
                                          f"chunk of {self.expected_size}")
            else:
                raise ZkProtocolError(f"{code_name(code)} where a chunk should start")
        elif code == Command.DATA:
            self._take(packet.data)
        elif code == Reply.ACK_OK:
            if self._received != self._announced:
                raise ZkProtocolError(f"chunk ended after {self._received} of "
                                      f"{self._announced} bytes")
            self.done = True
        else:
            raise ZkProtocolError(f"{code_name(code)} inside a chunk")
        return self.done

    def _take(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self.expected_size:
            raise ZkProtocolError(f"chunk overruns: {self._received} bytes for "
                                  f"{self.expected_size}")
        self._parts.append(data)


__all__ = ["UDP_DATA_PACKET", "BufferRequest", "ChunkAssembler", "chunk_packets",
           "decode_buffer_ready", "decode_prepare_buffer", "decode_prepare_data",
           "decode_read_chunk", "encode_buffer_ready", "encode_prepare_buffer",
           "encode_prepare_data", "encode_read_chunk", "plan_chunks"]
