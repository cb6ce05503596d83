"""The emulated machine without sockets: ``ZkMachine.handle`` fed packets, answers decoded with
the shared protocol code; capacity, faults, reboot and seeding; and its asyncio server API."""

from __future__ import annotations

import asyncio
import struct
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.zk import framing, info, payloads, records, transfer
from devices.zk.auth import make_commkey
from devices.zk.codes import (
    FIRST_REPLY_ID,
    UDP_DATA_PACKET,
    Command,
    EventFlag,
    Reply,
    Table,
)
from devices.zk.events import encode_reg_event
from devices.zk.framing import Packet
from devices.zk.records import RecordFormat, User, UserFormat
from firmware_sim.zk.machine import Action, Fault, Session, Transport, ZkMachine
from firmware_sim.zk.profiles import MachineConfig, WhenFull
from firmware_sim.zk.seed import seed_machine, staff
from firmware_sim.zk.server import ZkEmulatorStartError, ZkServer, serve_machines

T = datetime(2026, 11, 23, 7, 31, 0)


def request(machine: ZkMachine, session: Session, command: int, data: bytes = b"") -> list[Packet]:
    raw, _ = framing.encode_request(command, session.session_id, 7, data)
    return machine.handle(session, framing.decode_packet(raw)).packets


def connected(machine: ZkMachine, transport: Transport = Transport.TCP) -> Session:
    session = Session(0x1234, transport)
    [answer] = request(machine, session, Command.CONNECT)
    if answer.command == Reply.ACK_UNAUTH:
        [answer] = request(machine, session, Command.AUTH,
                           make_commkey(machine.config.comm_key, session.session_id))
    assert answer.command == Reply.ACK_OK
    return session


def test_connect_and_comm_key() -> None:
    machine = ZkMachine(MachineConfig(comm_key=4321))
    session = Session(0x1234, Transport.UDP)
    [answer] = request(machine, session, Command.CONNECT)
    assert (answer.command, answer.session_id, answer.reply_id) == (Reply.ACK_UNAUTH, 0x1234, 8)
    assert request(machine, session, Command.GET_VERSION)[0].command == Reply.ACK_UNAUTH
    assert request(machine, session, Command.AUTH,
                   make_commkey(1234, 0x1234))[0].command == Reply.ACK_UNAUTH
    assert request(machine, session, Command.AUTH,
                   make_commkey(4321, 0x1234))[0].command == Reply.ACK_OK
    [version] = request(machine, session, Command.GET_VERSION)
    assert info.decode_version(version.data) == "Ver 6.60 Apr 28 2017"


def test_answers_by_command() -> None:
    machine = ZkMachine(MachineConfig(serial="KPZK0042", profile="older"))
    session = connected(machine)
    [serial] = request(machine, session, Command.OPTIONS_RRQ,
                       info.encode_option_request("~SerialNumber"))
    assert info.decode_option(serial.data) == ("~SerialNumber", "KPZK0042")
    assert request(machine, session, Command.OPTIONS_RRQ,
                   info.encode_option_request("NoSuchOption"))[0].command == Reply.ACK_ERROR
    assert request(machine, session, Command.OPTIONS_WRQ,
                   info.encode_option("~SerialNumber", "X"))[0].command == Reply.ACK_ERROR
    [sizes] = request(machine, session, Command.GET_FREE_SIZES)
    assert len(sizes.data) == info.SIZES_SIZE  # older firmware: no face block
    assert request(machine, session, 4242)[0].command == Reply.ACK_UNKNOWN
    assert request(machine, session, Reply.ACK_OK) == []  # an event acknowledgement
    assert request(machine, session, Command.SET_TIME,
                   payloads.encode_set_time(T))[0].command == Reply.ACK_OK
    [now] = request(machine, session, Command.GET_TIME)
    assert abs((payloads.decode_set_time(now.data) - T).total_seconds()) <= 1
    # a 72-byte user write to 28-byte firmware is refused, a 28-byte one taken
    user = User(5, "1005", "Made", group_id="0")  # 28-byte groups are numbers
    assert request(machine, session, Command.USER_WRQ,
                   records.encode_user(user, UserFormat.ZK8))[0].command == Reply.ACK_ERROR
    assert request(machine, session, Command.USER_WRQ,
                   records.encode_user(user, UserFormat.ZK6))[0].command == Reply.ACK_OK
    assert machine.users == [user]
    # a payload that does not decode is answered CMD_ACK_ERROR and counted
    assert request(machine, session, Command.SET_TIME, b"\x01")[0].command == Reply.ACK_ERROR
    assert machine.garbled_packets == 1


def test_bad_checksum_is_ignored() -> None:
    machine = ZkMachine()
    session = Session(1, Transport.TCP)
    raw, _ = framing.encode_request(Command.CONNECT, 0, FIRST_REPLY_ID)
    bad = raw[:2] + bytes((raw[2] ^ 0x40,)) + raw[3:]
    assert machine.handle(session, framing.decode_packet(bad)).packets == []
    assert machine.garbled_packets == 1


@pytest.mark.parametrize("transport, piece", [(Transport.TCP, None), (Transport.UDP, 1024)])
def test_buffered_read(transport: Transport, piece: int | None) -> None:
    machine = ZkMachine(MachineConfig(profile="newer"))
    seed_machine(machine, users=20, punches=1500, seed=4, until=date(2026, 11, 2))
    session = connected(machine, transport)
    assert request(machine, session, Command.READ_BUFFER,
                   transfer.encode_read_chunk(0, 10))[0].command == Reply.ACK_ERROR  # unprepared
    [ready] = request(machine, session, Command.PREPARE_BUFFER,
                      transfer.encode_prepare_buffer(transfer.BufferRequest(Command.ATTLOG_RRQ)))
    total = transfer.decode_buffer_ready(ready.data)
    assert total == 4 + 1500 * 49
    data = b""
    for start, size in transfer.plan_chunks(total, 16 * 1024):
        packets = request(machine, session, Command.READ_BUFFER,
                          transfer.encode_read_chunk(start, size))
        assert all(len(p.data) <= (piece or size) for p in packets)
        assembler = transfer.ChunkAssembler(size)
        for p in packets:
            assembler.add(p)
        data += assembler.data
    assert request(machine, session, Command.FREE_DATA)[0].command == Reply.ACK_OK
    assert records.decode_attendance_table(data, RecordFormat.R49) == machine.attendance
    assert UDP_DATA_PACKET == 1024
    [ready] = request(machine, session, Command.PREPARE_BUFFER, transfer.encode_prepare_buffer(
        transfer.BufferRequest(Command.USERTEMP_RRQ, Table.USER)))
    assert transfer.decode_buffer_ready(ready.data) == 4 + 20 * 72


@pytest.mark.parametrize("when_full, kept, refused, overwritten", [
    (WhenFull.STOP, ["1001", "1002", "1003"], 2, 0),
    (WhenFull.OVERWRITE, ["1003", "1001", "1002"], 0, 2),
])
def test_full_log(when_full: WhenFull, kept: list[str], refused: int, overwritten: int) -> None:
    machine = ZkMachine(MachineConfig(records_cap=3, when_full=when_full))
    for user in staff(3):
        machine.add_user(user)
    for user_id in ["1001", "1002", "1003", "1001", "1002"]:
        machine.punch(user_id)
    assert [r.user_id for r in machine.attendance] == kept
    assert (machine.refused_punches, machine.overwritten_punches) == (refused, overwritten)
    assert machine.free_sizes().records_av == 0


def test_user_capacity_and_unknown_users() -> None:
    machine = ZkMachine(MachineConfig(users_cap=2))
    a, b, c = staff(3)
    machine.add_user(a)
    machine.add_user(b)
    with pytest.raises(ValueError, match="capacity"):
        machine.add_user(c)
    session = connected(machine)
    assert request(machine, session, Command.USER_WRQ,
                   records.encode_user(c, UserFormat.ZK8))[0].command == Reply.ACK_ERROR
    assert machine.punch("9999") is None  # not enrolled


def test_disabled_down_and_duplicates() -> None:
    clock = [100.0]
    machine = ZkMachine(MachineConfig(reboot_s=30), monotonic=lambda: clock[0])
    seed_machine(machine, users=2, punches=10, seed=1)
    session = connected(machine)
    request(machine, session, Command.DISABLEDEVICE)
    assert machine.punch("1001") is None and machine.refused_punches == 1
    answer = machine.handle(session, framing.decode_packet(
        framing.encode_request(Command.RESTART, session.session_id, 1)[0]))
    assert answer.action is Action.REBOOT
    machine.reboot()
    assert machine.is_down and machine.enabled
    assert machine.punch("1001") is None
    clock[0] += 31
    assert not machine.is_down and machine.record_count == 10 and len(machine.users) == 2
    machine.faults.add(Fault.DUPLICATE_PUNCHES)
    machine.punch("1002", when=T)
    assert [(r.user_id, r.timestamp) for r in machine.attendance[-2:]] == [("1002", T)] * 2


def test_one_shot_faults_fire_once() -> None:
    machine = ZkMachine()
    session = connected(machine)
    machine.faults |= {Fault.GARBLED_REPLY, Fault.SLOW_ANSWERS}
    raw, _ = framing.encode_request(Command.GET_TIME, session.session_id, 1)
    first = machine.handle(session, framing.decode_packet(raw))
    second = machine.handle(session, framing.decode_packet(raw))
    assert first.garble and not second.garble
    assert first.delay_s == second.delay_s == machine.config.slow_answer_s
    assert machine.faults == {Fault.SLOW_ANSWERS}


def test_seeding_is_reproducible() -> None:
    a, b = ZkMachine(), ZkMachine()
    ra = seed_machine(a, users=30, punches=2000, seed=9, until=date(2026, 11, 2))
    rb = seed_machine(b, users=30, punches=2000, seed=9, until=date(2026, 11, 2))
    assert ra == rb and a.attendance == b.attendance and len(ra.punches) == 2000
    assert all(r.timestamp.date() < date(2026, 11, 2) and r.timestamp.weekday() < 5
               for r in ra.punches)
    assert ra.punches == sorted(ra.punches, key=lambda r: r.timestamp)
    older = ZkMachine(MachineConfig(profile="older"))
    seed_machine(older, users=5, punches=10)
    assert all(len(u.name.encode()) <= 8 for u in older.users)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from([int(c) for c in Command if c not in
                                  (Command.RESTART, Command.POWEROFF)]),
                 st.integers(0, 0xFFFF)),
       st.binary(max_size=90))
def test_any_request_gets_an_answer_never_an_exception(command: int, data: bytes) -> None:
    machine = ZkMachine(MachineConfig(profile="older"))
    session = connected(machine)
    raw, _ = framing.encode_request(command, session.session_id, 3, data)
    answer = machine.handle(session, framing.decode_packet(raw))
    assert all(isinstance(p, Packet) for p in answer.packets)


# --------------------------------------------------------------------------- asyncio server API


async def _ask(port: int, command: int, data: bytes = b"") -> list[Packet]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        deframer = framing.TcpDeframer()
        raw, reply = framing.encode_request(Command.CONNECT, 0, FIRST_REPLY_ID)
        writer.write(framing.tcp_frame(raw))
        [hello] = deframer.feed(await reader.read(1024))
        raw, _ = framing.encode_request(command, hello.session_id, reply, data)
        writer.write(framing.tcp_frame(raw))
        return deframer.feed(await reader.read(1024))
    finally:
        writer.close()


def test_async_server_and_serve_machines() -> None:
    async def main() -> None:
        a = ZkMachine(MachineConfig(serial="KPZKA"))
        b = ZkMachine(MachineConfig(serial="KPZKB", profile="older"))
        async with serve_machines([a, b]) as servers:
            ports = [s.port for s in servers]
            assert len(set(ports)) == 2
            [answer] = await _ask(ports[1], Command.OPTIONS_RRQ,
                                  info.encode_option_request("~SerialNumber"))
            assert info.decode_option(answer.data)[1] == "KPZKB"
            with pytest.raises(ZkEmulatorStartError, match=f"cannot listen on 127.0.0.1:{ports[0]}"):
                await ZkServer(ZkMachine(), port=ports[0]).start()
            # live event registration over the async API
            reg = await _ask(ports[0], Command.REG_EVENT, encode_reg_event(EventFlag.ATTLOG))
            assert reg[0].command == Reply.ACK_OK
        assert not servers[0].running

    asyncio.run(main())


def test_free_sizes_struct_matches_machine() -> None:
    machine = ZkMachine()
    seed_machine(machine, users=4, punches=8)
    raw = info.encode_free_sizes(machine.free_sizes())
    assert struct.unpack("<20i", raw[:80])[4] == 4 and struct.unpack("<20i", raw[:80])[8] == 8
