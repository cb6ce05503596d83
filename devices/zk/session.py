"""The client side of a ZK conversation as a state machine without I/O (h11-style).

``ClientSession`` numbers requests the way machines expect (reply ids from 65534 + 1, wrapping
at 65535, checksums in the zkemsdk convention), learns the session id from the machine's
answer to CMD_CONNECT, frames for TCP or leaves bare for UDP, matches each reply to the
request it answers, and turns refusal codes into ``ZkDeviceError`` / ``ZkUnauthorized``.
A driver only moves bytes::

    session = ClientSession(tcp=True)
    sock.sendall(session.connect())
    reply = session.receive(deframer.feed(sock.recv(1024))[0])
    if session.needs_auth:
        sock.sendall(session.auth(comm_key)); session.receive(...)
    sock.sendall(session.request(Command.GET_TIME))

Live events (CMD_REG_EVENT packets the machine sends unasked) are not replies: ``is_event``
tells them apart, and ``ack_event`` builds the CMD_ACK_OK the machine expects for each.
"""

from __future__ import annotations

from devices.zk.auth import make_commkey
from devices.zk.codes import FIRST_REPLY_ID, SUCCESS_CODES, Command, Reply, code_name
from devices.zk.errors import ZkDeviceError, ZkProtocolError, ZkUnauthorized
from devices.zk.framing import Packet, encode_request, tcp_frame


class ClientSession:
    """Request numbering and reply checking for one connection to one machine."""

    def __init__(self, *, tcp: bool = True) -> None:
        self.tcp = tcp
        self.session_id = 0
        self.connected = False
        self.needs_auth = False
        self._last_reply_id = FIRST_REPLY_ID
        self._pending: tuple[int, int] | None = None  # (command, reply id) awaiting its answer

    def _build(self, command: int, data: bytes) -> bytes:
        if self._pending is not None:
            raise ZkProtocolError(f"{code_name(self._pending[0])} is still unanswered; one "
                                  f"request at a time")
        raw, reply_id = encode_request(command, self.session_id, self._last_reply_id, data)
        self._pending = (command, reply_id)
        return tcp_frame(raw) if self.tcp else raw

    def connect(self) -> bytes:
        """CMD_CONNECT, starting a new conversation."""
        self.session_id, self.connected, self.needs_auth = 0, False, False
        self._last_reply_id = FIRST_REPLY_ID
        self._pending = None
        return self._build(Command.CONNECT, b"")

    def auth(self, comm_key: int) -> bytes:
        """CMD_AUTH with the scrambled comm key, after CMD_CONNECT was answered CMD_ACK_UNAUTH."""
        return self._build(Command.AUTH, make_commkey(comm_key, self.session_id))

    def request(self, command: int, data: bytes = b"") -> bytes:
        """Any other request, once connected."""
        if not self.connected:
            raise ZkProtocolError(f"{code_name(command)} before the session is connected")
        return self._build(command, data)

    @staticmethod
    def is_event(packet: Packet) -> bool:
        """Is this an unsolicited live event rather than a reply?"""
        return packet.command == Command.REG_EVENT and packet.reply_id == 0

    def ack_event(self) -> bytes:
        """The CMD_ACK_OK a client sends for each live event (not a request: no reply comes)."""
        raw, _ = encode_request(Reply.ACK_OK, self.session_id, FIRST_REPLY_ID, b"")
        return tcp_frame(raw) if self.tcp else raw

    def receive(self, packet: Packet) -> Packet:
        """Take the reply to the pending request; raises on refusals and stray packets.

        Returns the packet for the caller to decode its payload. CMD_PREPARE_DATA and CMD_DATA
        count as success (the start of a data transfer; the caller reads the rest).
        """
        if self._pending is None:
            raise ZkProtocolError(f"{packet.name} arrived with no request pending")
        command, reply_id = self._pending
        if packet.reply_id != reply_id:
            raise ZkProtocolError(f"{packet.name} answers reply id {packet.reply_id}, the "
                                  f"pending {code_name(command)} has {reply_id}")
        self._pending = None
        self._last_reply_id = reply_id
        if command == Command.CONNECT:
            self.session_id = packet.session_id
            self.connected = True
            if packet.command == Reply.ACK_UNAUTH:
                self.needs_auth = True
                return packet
        if packet.command == Reply.ACK_UNAUTH:
            raise ZkUnauthorized(
                "the machine refused the comm key" if command == Command.AUTH else
                f"{code_name(command)} refused: session not authorised (comm key needed)",
                packet.command)
        if command == Command.AUTH:
            self.needs_auth = False
        if packet.command not in SUCCESS_CODES:
            raise ZkDeviceError(f"{code_name(command)} refused by the machine: "
                                f"{code_name(packet.command)}", packet.command)
        return packet
