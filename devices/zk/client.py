"""One ZK session over TCP or UDP: sockets, timeouts, reply matching and the buffered read.

It owns the I/O that the pure protocol modules (``framing``, ``auth``, ``transfer``) leave out:
a blocking socket with a per-request timeout, CMD_CONNECT and comm-key authentication, a
request/answer exchange that matches answers by reply id (a late answer to an earlier request,
or a live event, never passes for the answer to this one), and the chunked table read. It must
not interpret tables or times (``driver`` does) and knows nothing of the edge agent.

Why not pyzk's transport: pyzk 0.9 reads each answer with one ``recv`` of the exact expected
size and never checks reply ids or checksums, so a slow answer, a garbled packet or a chunk in
1008-byte pieces leaves it reading the wrong bytes (see ``driver`` for the full account).
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Callable

from devices.zk import transfer
from devices.zk.auth import make_commkey
from devices.zk.codes import (
    FIRST_REPLY_ID,
    TCP_MAX_CHUNK,
    UDP_MAX_CHUNK,
    USHRT_MAX,
    Command,
    Reply,
    code_name,
)
from devices.zk.errors import (
    ZkConnectionError,
    ZkDeviceError,
    ZkError,
    ZkProtocolError,
    ZkTimeout,
    ZkUnauthorized,
)
from devices.zk.framing import Packet, TcpDeframer, decode_packet, encode_request, tcp_frame

log = logging.getLogger(__name__)

RECV_SIZE = 256 * 1024
UDP_RECV_SIZE = 64 * 1024
# Answers whose header or payload fails the checksum are dropped and the request sent again
# this many times: a garbled packet is a line fault, and every request the driver repeats is
# idempotent (reads, writes of the same value, clears). CMD_RESTART is never repeated.
GARBLED_RETRIES = 2

Progress = Callable[[int, int], None]  # (bytes received, bytes in the table)


class ZkClient:
    """A blocking ZK session with one machine. Not thread-safe: one thread per client.

    ``open`` connects the socket and the session (``CMD_CONNECT``, then ``CMD_AUTH`` with
    ``comm_key`` when the machine asks); ``request`` sends one command and returns its answer;
    ``read_buffer`` reads a table in chunks; ``close`` ends the session politely if it can.
    """

    def __init__(self, host: str, port: int, *, udp: bool = False, timeout_s: float = 5.0,
                 comm_key: int = 0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.host, self.port, self.udp = host, port, udp
        self.timeout_s = timeout_s
        self.comm_key = comm_key
        self.session_id = 0
        self._reply_id = FIRST_REPLY_ID
        self._sock: socket.socket | None = None
        self._deframer = TcpDeframer()
        self._inbox: deque[Packet] = deque()  # decoded packets not yet consumed
        self.events: deque[Packet] = deque()  # live events that arrived during a request
        self.garbled = 0  # answers dropped for a bad checksum (for status and tests)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} ({'UDP' if self.udp else 'TCP'})"

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    # ----------------------------------------------------------------- session

    def open(self) -> None:
        """Connect and authenticate; raises ``ZkConnectionError`` or ``ZkUnauthorized``."""
        self.close()
        try:
            if self.udp:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.connect((self.host, self.port))  # fixes the peer: stray datagrams dropped
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError as exc:
            raise ZkTimeout(f"no answer from the attendance machine at {self.where} within "
                            f"{self.timeout_s:g} s: check that it is powered and on this "
                            f"network (ping it), and the port (menu Comm. → Ethernet, default "
                            f"4370)") from exc
        except OSError as exc:
            raise ZkConnectionError(f"cannot reach the attendance machine at {self.where}: "
                                    f"{exc.strerror or exc}. Check the address and port (menu "
                                    f"Comm. → Ethernet, default 4370) and the cable; older "
                                    f"firmware may answer only over UDP (--udp)") from exc
        sock.settimeout(self.timeout_s)
        self._sock = sock
        self._deframer = TcpDeframer()
        self._inbox.clear()
        self.events.clear()
        self.session_id = 0
        self._reply_id = FIRST_REPLY_ID
        try:
            self._authenticate()
        except BaseException:
            self._drop()
            raise

    def _authenticate(self) -> None:
        answer = self.request(Command.CONNECT, check=False)
        self.session_id = answer.session_id
        if answer.command == Reply.ACK_UNAUTH:
            answer = self.request(Command.AUTH, make_commkey(self.comm_key, self.session_id),
                                  check=False)
            if answer.command == Reply.ACK_UNAUTH:
                raise ZkUnauthorized(
                    f"the attendance machine at {self.where} refused comm key "
                    f"{self.comm_key}: give the key set on the machine (menu Comm. → "
                    f"Connection / Comm Key) with --comm-key", answer.command)
        if answer.command != Reply.ACK_OK:
            raise ZkDeviceError(f"the attendance machine at {self.where} refused the "
                                f"connection ({code_name(answer.command)})", answer.command)

    def close(self) -> None:
        """End the session (CMD_EXIT when the link still works) and close the socket."""
        if self._sock is None:
            return
        try:
            self._send(Command.EXIT)
        except ZkError:
            pass  # the link is gone already; closing the socket is all that is left
        self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ----------------------------------------------------------------- requests

    def _send(self, command: int, data: bytes = b"", *, reply_id_before: int | None = None
              ) -> int:
        if self._sock is None:
            raise ZkConnectionError(f"not connected to the attendance machine at {self.where}")
        last = self._reply_id if reply_id_before is None else reply_id_before
        packet, reply_id = encode_request(command, self.session_id, last, data)
        try:
            self._sock.sendall(packet if self.udp else tcp_frame(packet))
        except OSError as exc:
            self._drop()
            raise ZkConnectionError(f"lost the link to the attendance machine at {self.where} "
                                    f"sending {code_name(command)}: {exc}") from exc
        if reply_id_before is None:
            self._reply_id = reply_id
        return reply_id

    def ack_event(self) -> None:
        """Acknowledge a live event (a bare CMD_ACK_OK, as the SDK sends)."""
        self._send(Reply.ACK_OK, reply_id_before=USHRT_MAX - 1)

    def _receive(self, deadline: float, what: str) -> Packet:
        """The next packet from the machine (events included), or ``ZkTimeout``."""
        while not self._inbox:
            if self._sock is None:
                raise ZkConnectionError(f"not connected to the attendance machine at "
                                        f"{self.where}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ZkTimeout(f"the attendance machine at {self.where} did not answer "
                                f"{what} within {self.timeout_s:g} s: it may be busy or the "
                                f"link is poor — retry, or raise --timeout")
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(UDP_RECV_SIZE if self.udp else RECV_SIZE)
            except TimeoutError:
                continue
            except ConnectionRefusedError as exc:  # UDP: the port is closed (ICMP unreachable)
                self._drop()
                raise ZkConnectionError(f"cannot reach the attendance machine at {self.where}: "
                                        f"nothing answers on that port. Check the address and "
                                        f"port (menu Comm. → Ethernet, default 4370)") from exc
            except OSError as exc:
                self._drop()
                raise ZkConnectionError(f"the attendance machine at {self.where} dropped the "
                                        f"connection during {what} ({exc}): it may be "
                                        f"restarting — retry in a few seconds") from exc
            if not data:
                self._drop()
                raise ZkConnectionError(f"the attendance machine at {self.where} closed the "
                                        f"connection during {what}: it may be restarting or "
                                        f"serving another client — retry in a few seconds")
            try:
                if self.udp:
                    self._inbox.append(decode_packet(data))
                else:
                    self._inbox.extend(self._deframer.feed(data))
            except ZkProtocolError as exc:
                if not self.udp:  # a TCP stream that lost its framing cannot be resynchronised
                    self._drop()
                    raise ZkProtocolError(f"the attendance machine at {self.where} sent bytes "
                                          f"that are not ZK packets during {what} ({exc}); "
                                          f"the connection was closed — retry") from exc
                self.garbled += 1
                log.debug("zk %s: datagram dropped: %s", self.where, exc)
        return self._inbox.popleft()

    def _answer_packet(self, reply_id: int, deadline: float, what: str) -> Packet | None:
        """The next packet of the answer to ``reply_id``; ``None`` for a garbled one."""
        while True:
            packet = self._receive(deadline, what)
            if not packet.checksum_ok():
                self.garbled += 1
                log.info("zk %s: garbled packet during %s dropped (bad checksum)", self.where,
                         what)
                return None
            if packet.command == Command.REG_EVENT:
                self.events.append(packet)
                continue
            if packet.reply_id != reply_id:
                continue  # a late answer to an earlier request (after a timeout or a retry)
            return packet

    def request(self, command: int, data: bytes = b"", *, check: bool = True,
                retries: int = GARBLED_RETRIES) -> Packet:
        """Send ``command`` and return the machine's answer.

        With ``check`` an answer other than CMD_ACK_OK / CMD_PREPARE_DATA / CMD_DATA raises
        ``ZkDeviceError`` (``ZkUnauthorized`` for CMD_ACK_UNAUTH). A garbled answer is dropped
        and the request sent again up to ``retries`` times.
        """
        what = code_name(command)
        for _attempt in range(retries + 1):
            reply_id = self._send(command, data)
            answer = self._answer_packet(reply_id, time.monotonic() + self.timeout_s, what)
            if answer is not None:
                break
        else:
            raise ZkProtocolError(f"the attendance machine at {self.where} answered {what} "
                                  f"with garbled packets {retries + 1} times: check the cable "
                                  f"and switch port")
        if check and answer.command not in (Reply.ACK_OK, Command.PREPARE_DATA, Command.DATA):
            if answer.command == Reply.ACK_UNAUTH:
                raise ZkUnauthorized(f"the attendance machine at {self.where} wants a comm key "
                                     f"for {what}: give it with --comm-key", answer.command)
            raise ZkDeviceError(f"the attendance machine at {self.where} refused {what} "
                                f"({code_name(answer.command)})", answer.command)
        return answer

    def next_event(self, wait_s: float) -> Packet | None:
        """The next live event (CMD_REG_EVENT packet), waiting up to ``wait_s``; ``None`` when
        none came. Anything else that arrives meanwhile is a stale answer and is dropped."""
        deadline = time.monotonic() + wait_s
        while not self.events:
            try:
                packet = self._receive(deadline, "live events")
            except ZkTimeout:
                return None
            if packet.command == Command.REG_EVENT and packet.checksum_ok():
                return packet
        return self.events.popleft()

    # ----------------------------------------------------------------- buffered read

    def read_buffer(self, request: transfer.BufferRequest, *,
                    progress: Progress | None = None,
                    on_chunk: Callable[[bytes], None] | None = None) -> int:
        """Read one table through the machine's buffer; returns its size in bytes.

        Each chunk is handed to ``on_chunk`` as it arrives (so the caller decodes while the
        next chunk travels) and ``progress(received, total)`` is called after it. The buffer is
        freed on success; on failure the session is left to the caller to close.
        """
        sink = on_chunk or (lambda _chunk: None)
        ready = self.request(Command.PREPARE_BUFFER, transfer.encode_prepare_buffer(request))
        if ready.command == Command.DATA:  # small tables come inline
            sink(ready.data)
            if progress:
                progress(len(ready.data), len(ready.data))
            return len(ready.data)
        total = transfer.decode_buffer_ready(ready.data)
        max_chunk = UDP_MAX_CHUNK if self.udp else TCP_MAX_CHUNK
        received = 0
        chunks = transfer.plan_chunks(total, max_chunk)
        for index, (start, size) in enumerate(chunks):
            sink(self._read_chunk(start, size, f"chunk {index + 1} of {len(chunks)} "
                                  f"(byte {start} of {total})"))
            received += size
            if progress:
                progress(received, total)
        self.request(Command.FREE_DATA)
        return total

    def _read_chunk(self, start: int, size: int, what: str) -> bytes:
        payload = transfer.encode_read_chunk(start, size)
        for _attempt in range(GARBLED_RETRIES + 1):
            reply_id = self._send(Command.READ_BUFFER, payload)
            assembler = transfer.ChunkAssembler(size)
            deadline = time.monotonic() + self.timeout_s
            while not assembler.done:
                packet = self._answer_packet(reply_id, deadline, what)
                if packet is None:
                    break  # garbled: ask for the chunk again
                if packet.command not in (Command.PREPARE_DATA, Command.DATA, Reply.ACK_OK):
                    raise ZkDeviceError(f"the attendance machine at {self.where} refused "
                                        f"{what} ({code_name(packet.command)})", packet.command)
                assembler.add(packet)
                deadline = time.monotonic() + self.timeout_s  # each piece restarts the clock
            else:
                return assembler.data
        raise ZkProtocolError(f"the attendance machine at {self.where} sent {what} garbled "
                              f"{GARBLED_RETRIES + 1} times: check the cable and switch port")
