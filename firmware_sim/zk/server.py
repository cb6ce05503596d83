"""The emulated machine on the network: ZK over TCP and UDP on one port, asyncio, loopback-safe.

It owns sockets, sessions, framing, the link-level faults (slow answers, scrambled replies,
links dropped halfway through a chunk, reboot), and the push of live events to registered
sessions. It must not decide answers (``ZkMachine.handle`` does) nor encode records
(``devices.zk`` does). Real clients — unmodified pyzk 0.9, the driver, the edge agent — talk
to it as to a terminal on the office LAN.

Asyncio use (the CLI, a simulator)::

    async with ZkServer(ZkMachine(MachineConfig(serial="KPZK0001")), port=0) as server:
        server.port            # TCP and UDP both listen here

Several machines, blocking clients (tests, pyzk)::

    with ZkEmulatorThread([machine_a, machine_b]) as emulators:
        emulators.ports["KPZK0001"]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence

from devices.zk.codes import DEFAULT_PORT, Command, EventFlag
from devices.zk.errors import ZkProtocolError
from devices.zk.events import event_packet
from devices.zk.framing import Packet, TcpDeframer, decode_packet, tcp_frame
from devices.zk.records import AttendanceRecord
from firmware_sim.zk.machine import Action, Answer, Session, Transport, ZkMachine

log = logging.getLogger(__name__)

# A client request is a header and at most ~1 KiB (a user record, an uploaded chunk); anything
# far larger is garbage, and buffering it would let one client exhaust the emulator's memory.
MAX_REQUEST_SIZE = 16 * 1024
MAX_UDP_SESSIONS = 256  # oldest forgotten first: a UDP peer that vanished never says goodbye
READ_SIZE = 64 * 1024
BIND_ATTEMPTS = 20


class ZkEmulatorError(Exception):
    """Root of the emulator's own errors (bad use of the emulator, not a refused request)."""


class ZkEmulatorStartError(ZkEmulatorError):
    """The emulator could not listen (port taken, address not local)."""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop a TCP connection with a reset (RST), as a rebooting machine's stack does.

    An orderly close (FIN) is what ``Fault.CLOSE_MID_TRANSFER`` sends instead: pyzk 0.9 reads
    the empty result of ``recv`` as "no data yet" and loops forever in ``__recieve_raw_data``,
    so every other drop resets, which pyzk reports as ConnectionResetError.
    """
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _garble(packet: bytes) -> bytes:
    """Scramble header and payload (keeps its size): the reply no longer makes sense."""
    return bytes(b ^ 0xA5 for b in packet)


class ZkServer:
    """One machine served on TCP and UDP at ``host:port`` (port 0: a free port for both)."""

    def __init__(self, machine: ZkMachine, *, host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT, tcp: bool = True, udp: bool = True) -> None:
        if not (tcp or udp):
            raise ZkEmulatorError("serve at least one of TCP and UDP")
        self.machine = machine
        self.host = host
        self._want_port = port
        self._tcp_enabled, self._udp_enabled = tcp, udp
        self._port: int | None = None
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session_ids = itertools.count(0x1A2B)
        self._tcp_sessions: dict[Session, asyncio.StreamWriter] = {}
        self._udp_sessions: OrderedDict[int, Session] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._port is None:
            raise ZkEmulatorError("the server is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._port is not None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.machine.on_punch(self._punched)
        self.machine.on_reboot(self._rebooted)
        attempts = BIND_ATTEMPTS if self._want_port == 0 else 1
        last: OSError | None = None
        for _ in range(attempts):
            try:
                await self._bind(self._want_port)
                break
            except OSError as exc:
                last = exc
                await self._close_sockets()
        else:
            self.machine.off_punch(self._punched)
            self.machine.off_reboot(self._rebooted)
            raise ZkEmulatorStartError(f"zk {self.machine.serial}: cannot listen on "
                                       f"{self.host}:{self._want_port} ({last}); choose a free "
                                       f"port") from last
        log.info("zk %s: %s machine listening on %s:%d (%s)", self.machine.serial,
                 self.machine.firmware.key, self.host, self._port,
                 "+".join(t for t, on in (("tcp", self._tcp_enabled), ("udp", self._udp_enabled))
                          if on))

    async def _bind(self, port: int) -> None:
        assert self._loop is not None
        if self._tcp_enabled:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port,
                                                   reuse_address=True)
            port = self._tcp.sockets[0].getsockname()[1]
        if self._udp_enabled:
            self._udp, _ = await self._loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, port))
            port = self._udp.get_extra_info("sockname")[1]
        self._port = port

    async def _close_sockets(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def stop(self) -> None:
        self.machine.off_punch(self._punched)
        self.machine.off_reboot(self._rebooted)
        for writer in list(self._tcp_sessions.values()):
            writer.close()
        self._tcp_sessions.clear()
        self._udp_sessions.clear()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_sockets()
        self._port = None

    async def __aenter__(self) -> ZkServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _new_session(self, transport: Transport) -> Session:
        sid = next(self._session_ids) % 0xFFFF or next(self._session_ids) % 0xFFFF
        return Session(sid, transport)

    # ----------------------------------------------------------------- TCP

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        if self.machine.is_down:
            _reset(writer)  # rebooting: the connection is refused at once
            return
        session = self._new_session(Transport.TCP)
        session.peer = writer
        self._tcp_sessions[session] = writer
        deframer = TcpDeframer(MAX_REQUEST_SIZE)
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                try:
                    packets = deframer.feed(data)
                except ZkProtocolError as exc:
                    self.machine.garbled_packets += 1
                    log.warning("zk %s: garbled TCP stream from %s (%s); connection dropped — "
                                "the client must reconnect", self.machine.serial, peer, exc)
                    break
                for packet in packets:
                    if not await self._answer_tcp(session, writer, packet):
                        return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # ``stop`` cancels handlers; ending normally keeps asyncio's stream callback from
            # logging the cancellation as an error. Nothing awaits this task's result.
            pass
        finally:
            self._tcp_sessions.pop(session, None)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _answer_tcp(self, session: Session, writer: asyncio.StreamWriter,
                          packet: Packet) -> bool:
        """Send one answer; False when the connection must end."""
        answer: Answer = self.machine.handle(session, packet)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        frames = [p.encode() for p in answer.packets]
        if answer.garble and frames:
            frames[0] = _garble(frames[0])
        wire = b"".join(tcp_frame(f) for f in frames)
        if answer.action in (Action.DROP_HALFWAY, Action.CLOSE_HALFWAY, Action.REBOOT_HALFWAY):
            writer.write(wire[:len(wire) // 2])
            await writer.drain()
            log.info("zk %s: %s halfway through a chunk (fault)", self.machine.serial,
                     answer.action.value)
            if answer.action is not Action.CLOSE_HALFWAY:
                _reset(writer)
            if answer.action is Action.REBOOT_HALFWAY:
                self.machine.reboot()
            return False
        if wire:
            writer.write(wire)
            await writer.drain()
        if answer.action is Action.CLOSE:
            return False
        if answer.action is Action.REBOOT:
            _reset(writer)
            self.machine.reboot()
            return False
        return True

    # ----------------------------------------------------------------- UDP

    def _udp_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.machine.is_down:
            return
        if len(data) > MAX_REQUEST_SIZE:
            self.machine.garbled_packets += 1
            log.warning("zk %s: %d-byte UDP datagram from %s ignored (no ZK request is that "
                        "long)", self.machine.serial, len(data), addr)
            return
        try:
            packet = decode_packet(data)
        except ZkProtocolError as exc:
            self.machine.garbled_packets += 1
            log.warning("zk %s: garbled UDP datagram from %s ignored (%s)", self.machine.serial,
                        addr, exc)
            return
        if packet.command == Command.CONNECT:
            session = self._new_session(Transport.UDP)
            self._udp_sessions[session.session_id] = session
            while len(self._udp_sessions) > MAX_UDP_SESSIONS:
                self._udp_sessions.popitem(last=False)
        else:
            found = self._udp_sessions.get(packet.session_id)
            session = found if found is not None else Session(packet.session_id, Transport.UDP)
        session.peer = addr
        answer = self.machine.handle(session, packet)
        if answer.action is Action.CLOSE:
            self._udp_sessions.pop(session.session_id, None)
        datagrams = [p.encode() for p in answer.packets]
        if answer.garble and datagrams:
            datagrams[0] = _garble(datagrams[0])
        if answer.action in (Action.DROP_HALFWAY, Action.CLOSE_HALFWAY, Action.REBOOT_HALFWAY):
            datagrams = datagrams[:len(datagrams) // 2]
            self._udp_sessions.pop(session.session_id, None)
        assert self._loop is not None
        if answer.delay_s:
            self._loop.call_later(answer.delay_s, self._send_udp, datagrams, addr, answer.action)
        else:
            self._send_udp(datagrams, addr, answer.action)

    def _send_udp(self, datagrams: Sequence[bytes], addr: tuple[str, int],
                  action: Action) -> None:
        if self._udp is None:
            return
        for datagram in datagrams:
            self._udp.sendto(datagram, addr)
        if action in (Action.REBOOT, Action.REBOOT_HALFWAY):
            self.machine.reboot()

    # ----------------------------------------------------------------- events and reboot

    def _punched(self, record: AttendanceRecord) -> None:
        if self._loop is not None and self.running:
            self._loop.call_soon_threadsafe(self._send_event, record)

    def _send_event(self, record: AttendanceRecord) -> None:
        packet = event_packet(self.machine.punch_event(record),
                              self.machine.firmware.event_format).encode()
        for session, writer in list(self._tcp_sessions.items()):
            if session.events & EventFlag.ATTLOG and not writer.is_closing():
                writer.write(tcp_frame(packet))
        for session in list(self._udp_sessions.values()):
            if session.events & EventFlag.ATTLOG and self._udp is not None:
                self._udp.sendto(packet, session.peer)  # type: ignore[arg-type]

    def _rebooted(self) -> None:
        if self._loop is not None and self.running:
            self._loop.call_soon_threadsafe(self._drop_all)

    def _drop_all(self) -> None:
        for writer in list(self._tcp_sessions.values()):
            _reset(writer)
        self._tcp_sessions.clear()
        self._udp_sessions.clear()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: ZkServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._udp_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("zk %s: UDP error %s", self.server.machine.serial, exc)


@contextlib.asynccontextmanager
async def serve_machines(machines: Sequence[ZkMachine], *, host: str = "127.0.0.1",
                         base_port: int = 0) -> AsyncIterator[list[ZkServer]]:
    """Serve each machine on its own port: ``base_port``, ``base_port + 1``, … (0: free ports)."""
    servers = [ZkServer(m, host=host, port=base_port + i if base_port else 0)
               for i, m in enumerate(machines)]
    started: list[ZkServer] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
        yield servers
    finally:
        for server in started:
            await server.stop()


class ZkEmulatorThread:
    """Machines served from an event loop in a background thread, for blocking clients.

    ``with ZkEmulatorThread([machine]) as emu: ZK("127.0.0.1", emu.port)``; ``ports`` maps
    each serial number to its port. ``start`` returns once every machine listens.
    """

    def __init__(self, machines: Sequence[ZkMachine], *, host: str = "127.0.0.1",
                 base_port: int = 0) -> None:
        serials = [m.serial for m in machines]
        if len(set(serials)) != len(serials):
            raise ZkEmulatorError(f"serial numbers must be unique: {serials}")
        self.machines = list(machines)
        self.host = host
        self.base_port = base_port
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="zk-emulator",
                                        daemon=True)
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def port(self) -> int:
        """The first machine's port."""
        return self.ports[self.machines[0].serial]

    def start(self) -> ZkEmulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        servers = await self._stack.enter_async_context(
            serve_machines(self.machines, host=self.host, base_port=self.base_port))
        self.ports = {s.machine.serial: s.port for s in servers}

    def stop(self) -> None:
        if self._stack is not None:
            asyncio.run_coroutine_threadsafe(self._stack.aclose(), self._loop).result(timeout=30)
            self._stack = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ZkEmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["ZkEmulatorError", "ZkEmulatorStartError",
           "ZkEmulatorThread", "ZkServer", "serve_machines"]
