"""Our own protocol code as a client (``ClientSession`` + ``ChunkAssembler``) against the
emulator on real sockets — the pattern the driver follows, including where pyzk 0.9 fails
(chunks in 1008-byte pieces, 49-byte records)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date

import pytest

from devices.zk import framing, info, payloads, records, transfer
from devices.zk.codes import TCP_MAX_CHUNK, UDP_MAX_CHUNK, Command, EventFlag
from devices.zk.errors import ZkUnauthorized
from devices.zk.events import decode_event_packet, encode_reg_event
from devices.zk.framing import Packet, TcpDeframer
from devices.zk.session import ClientSession
from firmware_sim.zk.machine import Fault, ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import ZkEmulatorThread


class MiniClient:
    """Just enough I/O around ClientSession to read a machine (a test stand-in for the driver)."""

    def __init__(self, port: int, *, udp: bool, comm_key: int = 0) -> None:
        self.udp = udp
        self.session = ClientSession(tcp=not udp)
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.settimeout(3)
        self.sock.connect(("127.0.0.1", port))
        self.deframer = TcpDeframer()
        self.queue: list[Packet] = []
        self.call_raw(self.session.connect())
        if self.session.needs_auth:
            self.call_raw(self.session.auth(comm_key))

    def next_packet(self) -> Packet:
        while not self.queue:
            if self.udp:
                self.queue.append(framing.decode_packet(self.sock.recv(65536)))
            else:
                data = self.sock.recv(65536)
                assert data, "machine closed the connection"
                self.queue += self.deframer.feed(data)
        return self.queue.pop(0)

    def call_raw(self, raw: bytes) -> Packet:
        self.sock.send(raw)
        return self.session.receive(self.next_packet())

    def call(self, command: int, data: bytes = b"") -> Packet:
        return self.call_raw(self.session.request(command, data))

    def read_table(self, command: int, fct: int = 0) -> bytes:
        ready = self.call(Command.PREPARE_BUFFER,
                          transfer.encode_prepare_buffer(transfer.BufferRequest(command, fct)))
        total = transfer.decode_buffer_ready(ready.data)
        out = b""
        for start, size in transfer.plan_chunks(total, UDP_MAX_CHUNK if self.udp
                                                else TCP_MAX_CHUNK):
            assembler = transfer.ChunkAssembler(size)
            assembler.add(self.call(Command.READ_BUFFER, transfer.encode_read_chunk(start, size)))
            while not assembler.done:
                assembler.add(self.next_packet())
            out += assembler.data
        self.call(Command.FREE_DATA)
        return out

    def close(self) -> None:
        self.call(Command.EXIT)
        self.sock.close()


@pytest.fixture(scope="module")
def machines() -> Iterator[tuple[ZkEmulatorThread, dict[str, ZkMachine]]]:
    ms = {p: ZkMachine(MachineConfig(serial=f"KPZKCL{p.upper()}", profile=p, comm_key=777))
          for p in ("colour", "older", "newer")}
    for m in ms.values():
        seed_machine(m, users=15, punches=6000, seed=8, until=date(2026, 11, 2))
    with ZkEmulatorThread(list(ms.values())) as emu:
        yield emu, ms


@pytest.mark.parametrize("profile", ["colour", "older", "newer"])
@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_read_everything(machines, profile: str, udp: bool) -> None:
    emu, ms = machines
    machine = ms[profile]
    machine.faults.add(Fault.CHUNKS_1008)  # where pyzk 0.9 times out; ignored over UDP
    try:
        client = MiniClient(emu.ports[machine.serial], udp=udp, comm_key=777)
        sizes = info.decode_free_sizes(client.call(Command.GET_FREE_SIZES).data)
        assert (sizes.users, sizes.records) == (15, 6000)
        serial = client.call(Command.OPTIONS_RRQ, info.encode_option_request("~SerialNumber"))
        assert info.decode_option(serial.data) == ("~SerialNumber", machine.serial)
        fw = machine.firmware
        users = records.decode_user_table(client.read_table(Command.USERTEMP_RRQ, 5),
                                          fw.user_format)
        assert users == machine.users
        table = client.read_table(Command.ATTLOG_RRQ)
        size = records.record_size_of(len(table) - 4, sizes.records, list(records.RecordFormat))
        assert size == fw.record_format
        punches = records.decode_attendance_table(table, fw.record_format,
                                                  {u.uid: u.user_id for u in users})
        # 16-byte records carry no uid, so compare what every layout carries
        assert [(p.user_id, p.timestamp, p.status, p.punch) for p in punches] == \
            [(p.user_id, p.timestamp, p.status, p.punch) for p in machine.attendance]
        now = payloads.decode_set_time(client.call(Command.GET_TIME).data)
        assert abs((now - machine.clock.now()).total_seconds()) <= 1
        client.close()
    finally:
        machine.faults.clear()


def test_wrong_comm_key(machines) -> None:
    emu, ms = machines
    with pytest.raises(ZkUnauthorized):
        MiniClient(emu.ports[ms["colour"].serial], udp=False, comm_key=778)


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_live_event(machines, udp: bool) -> None:
    emu, ms = machines
    machine = ms["older"]
    client = MiniClient(emu.ports[machine.serial], udp=udp, comm_key=777)
    client.call(Command.REG_EVENT, encode_reg_event(EventFlag.ATTLOG))
    stored = machine.punch("1005", punch=1)
    packet = client.next_packet()
    assert ClientSession.is_event(packet)
    client.sock.send(client.session.ack_event())
    event = decode_event_packet(packet)
    assert stored is not None
    assert (event.user_id, event.timestamp, event.punch) == ("1005", stored.timestamp, 1)
    client.call(Command.REG_EVENT, encode_reg_event(0))
    client.close()
