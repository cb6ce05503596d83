"""Unmodified pyzk 0.9 against the emulated ZKTeco machine, over TCP and over UDP.

Each module fixture serves machines from ``ZkEmulatorThread`` on free loopback ports; pyzk is
used exactly as an office script would (``ommit_ping=True`` only because ping is not ZK).
Where pyzk 0.9 fails against a faithful machine, the test asserts the failure it has.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from zk import ZK
from zk.base import ZK as _ZKClass
from zk.exception import ZKErrorResponse

from devices.zk.records import User
from firmware_sim.zk.machine import Fault, ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import ZkEmulatorThread

UNTIL = date(2026, 11, 2)
BIG = 50_000
TRANSPORTS = pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])


def connect(port: int, *, udp: bool, password: int = 0, timeout: float = 5) -> _ZKClass:
    return ZK("127.0.0.1", port, timeout=timeout, password=password, force_udp=udp,
              ommit_ping=True).connect()


@pytest.fixture(scope="module")
def office() -> Iterator[tuple[ZkEmulatorThread, dict[str, ZkMachine]]]:
    """A colour machine with 60 staff and 50,000 punches, one per profile with 300 punches,
    and a colour machine with a comm key."""
    machines = {"big": ZkMachine(MachineConfig(serial="KPZKBIG01", profile="colour"))}
    seed_machine(machines["big"], users=60, punches=BIG, seed=7, until=UNTIL)
    for profile in ("colour", "older", "newer"):
        machines[profile] = ZkMachine(MachineConfig(serial=f"KPZK{profile.upper()}",
                                                    profile=profile))
        seed_machine(machines[profile], users=12, punches=300, seed=3, until=UNTIL)
    machines["keyed"] = ZkMachine(MachineConfig(serial="KPZKKEY01", comm_key=123456))
    seed_machine(machines["keyed"], users=3, punches=10, seed=1, until=UNTIL)
    with ZkEmulatorThread(list(machines.values())) as emulators:
        yield emulators, machines


def port_of(office: tuple[ZkEmulatorThread, dict[str, ZkMachine]], key: str) -> int:
    emulators, machines = office
    return emulators.ports[machines[key].serial]


def as_tuples(punches: list) -> list[tuple[str, datetime, int, int]]:
    return [(p.user_id, p.timestamp, p.status, p.punch) for p in punches]


# --------------------------------------------------------------------------- info, users, logs


@TRANSPORTS
def test_info(office, udp: bool) -> None:
    conn = connect(port_of(office, "big"), udp=udp)
    try:
        assert conn.get_serialnumber() == "KPZKBIG01"
        assert conn.get_device_name() == "iFace302"
        assert conn.get_firmware_version() == "Ver 6.60 Apr 28 2017"
        assert conn.get_platform() == "ZMM220_TFT"
        assert conn.get_mac() == "00:17:61:10:00:01"
        assert conn.get_fp_version() == 10
        assert conn.get_face_version() == 7
        assert conn.get_extend_fmt() == 1
        assert conn.get_pin_width() == 9
        conn.read_sizes()
        assert (conn.users, conn.records, conn.users_cap, conn.rec_cap, conn.faces_cap) == \
            (60, BIG, 10_000, 100_000, 10_000)
        assert conn.rec_av == 100_000 - BIG
        # an option the machine does not have: pyzk clears the error with unknown commands,
        # each of which must be answered or pyzk would hang
        assert conn.get_compat_old_firmware() == 0
    finally:
        conn.disconnect()


@TRANSPORTS
def test_users(office, udp: bool) -> None:
    _, machines = office
    conn = connect(port_of(office, "big"), udp=udp)
    try:
        users = conn.get_users()
    finally:
        conn.disconnect()
    assert [(u.uid, u.user_id, u.name) for u in users] == \
        [(u.uid, u.user_id, u.name) for u in machines["big"].users]
    assert conn.user_packet_size == 72


@TRANSPORTS
def test_fifty_thousand_punches(office, udp: bool) -> None:
    _, machines = office
    conn = connect(port_of(office, "big"), udp=udp)
    try:
        punches = conn.get_attendance()
    finally:
        conn.disconnect()
    assert len(punches) == BIG
    assert as_tuples(punches) == as_tuples(machines["big"].attendance)


@pytest.mark.parametrize("profile", ["colour", "older"])
@TRANSPORTS
def test_profiles_users_and_punches(office, profile: str, udp: bool) -> None:
    _, machines = office
    machine = machines[profile]
    conn = connect(port_of(office, profile), udp=udp)
    try:
        assert conn.get_serialnumber() == machine.serial
        assert conn.get_firmware_version() == machine.firmware.firmware_version
        users = conn.get_users()
        punches = conn.get_attendance()
    finally:
        conn.disconnect()
    assert conn.user_packet_size == int(machine.firmware.user_format)
    # older firmware keeps 8-byte names: the machine cut them on enrolment, pyzk strips them
    assert [(u.uid, u.user_id, u.name) for u in users] == \
        [(u.uid, u.user_id, u.name.strip()) for u in machine.users]
    assert as_tuples(punches) == as_tuples(machine.attendance)


@TRANSPORTS
def test_newer_firmware_49_byte_records_defeat_pyzk(office, udp: bool) -> None:
    """Known pyzk 0.9 fault: no 49-byte branch; it reads the table as 40-byte records."""
    _, machines = office
    machine = machines["newer"]
    conn = connect(port_of(office, "newer"), udp=udp)
    try:
        users = conn.get_users()
        assert len(users) == 12  # users (72-byte) are fine
        try:
            punches = conn.get_attendance()
        except ValueError as exc:  # a misaligned "date" such as 30 February
            assert "out of range" in str(exc)
        else:
            assert as_tuples(punches) != as_tuples(machine.attendance)
    finally:
        conn.disconnect()


# --------------------------------------------------------------------------- time


@TRANSPORTS
def test_get_and_set_time(udp: bool) -> None:
    machine = ZkMachine(MachineConfig(serial="KPZKTIME1", clock_offset_s=-3600))
    with ZkEmulatorThread([machine]) as emu:
        conn = connect(emu.port, udp=udp)
        try:
            shown = conn.get_time()
            assert abs((shown - machine.clock.now()).total_seconds()) <= 1
            assert abs(machine.clock.error_s() + 3600) < 1  # an hour slow
            target = datetime(2026, 11, 23, 7, 29, 50)
            assert conn.set_time(target)
            assert abs((conn.get_time() - target).total_seconds()) <= 1
        finally:
            conn.disconnect()


def test_clock_drifts() -> None:
    now = [1_790_000_000.0]
    from firmware_sim.zk.clock import MachineClock

    clock = MachineClock(utc_offset_h=8, drift_s_per_day=30, time_source=lambda: now[0])
    start = clock.now()
    now[0] += 2 * 86400
    assert clock.now() - start == timedelta(days=2, seconds=60)  # WITA, 30 s/day fast
    clock.set(datetime(2026, 11, 23, 8, 0, 0))
    assert clock.now() == datetime(2026, 11, 23, 8, 0, 0)
    now[0] += 86400
    assert clock.now() == datetime(2026, 11, 24, 8, 0, 30)


# --------------------------------------------------------------------------- users, device


@TRANSPORTS
def test_set_and_delete_user(udp: bool) -> None:
    machine = ZkMachine(MachineConfig(serial="KPZKUSER1"))
    seed_machine(machine, users=2, punches=0)
    with ZkEmulatorThread([machine]) as emu:
        conn = connect(emu.port, udp=udp)
        try:
            conn.get_users()  # pyzk learns the 72-byte layout here (over UDP it assumes 28)
            conn.disable_device()
            conn.set_user(uid=3, name="Ketut Wibowo", privilege=0, password="", group_id="",
                          user_id="1003")
            conn.enable_device()
            assert machine.user_by_id("1003") == User(3, "1003", "Ketut Wibowo")
            conn.delete_user(uid=3)
            assert machine.user_by_id("1003") is None
        finally:
            conn.disconnect()
    assert machine.enabled


def test_old_firmware_refuses_a_72_byte_user_until_pyzk_learns_its_layout(office) -> None:
    conn = connect(port_of(office, "older"), udp=False)  # pyzk assumes 72 bytes after its probe
    try:
        with pytest.raises(ZKErrorResponse, match="Can't set user"):
            conn.set_user(uid=40, name="Dewi", user_id="1040")
        conn.get_users()
        conn.set_user(uid=40, name="Dewi", user_id="1040")
        conn.delete_user(uid=40)
    finally:
        conn.disconnect()


def test_clear_attendance_and_pyzk_clear_data_fault() -> None:
    machine = ZkMachine(MachineConfig(serial="KPZKCLR01"))
    seed_machine(machine, users=3, punches=20)
    with ZkEmulatorThread([machine]) as emu:
        conn = connect(emu.port, udp=False)
        try:
            # Known pyzk 0.9 fault: clear_data concatenates bytes and str under Python 3.
            with pytest.raises(TypeError):
                conn.clear_data()
            assert machine.record_count == 20 and len(machine.users) == 3
            assert conn.clear_attendance()
            assert machine.record_count == 0 and len(machine.users) == 3
        finally:
            conn.disconnect()


# --------------------------------------------------------------------------- live capture


def live_punch(port: int, machine: ZkMachine, user_id: str, *, udp: bool) -> list:
    conn = connect(port, udp=udp)
    got = []
    punched = False
    try:
        for event in conn.live_capture(new_timeout=0.3):
            if event is None:  # registered and idle: now a user punches
                if punched:
                    conn.end_live_capture = True  # give up: fails the assertion below
                else:
                    machine.punch(user_id, punch=1)
                    punched = True
                continue
            got.append(event)
            conn.end_live_capture = True
    finally:
        conn.disconnect()
    return got


@pytest.mark.parametrize("profile", ["colour", "older", "newer"])
def test_live_capture_tcp(profile: str) -> None:
    machine = ZkMachine(MachineConfig(serial="KPZKLIVE1", profile=profile))
    seed_machine(machine, users=3, punches=0)
    with ZkEmulatorThread([machine]) as emu:
        events = live_punch(emu.port, machine, "1002", udp=False)
    stored = machine.attendance[-1]
    assert [(e.user_id, e.timestamp, e.punch, e.uid) for e in events] == \
        [("1002", stored.timestamp, 1, 2)]


def test_live_capture_udp() -> None:
    machine = ZkMachine(MachineConfig(serial="KPZKLIVE2"))
    seed_machine(machine, users=3, punches=0)
    with ZkEmulatorThread([machine]) as emu:
        events = live_punch(emu.port, machine, "1003", udp=True)
    assert [(e.user_id, e.punch) for e in events] == [("1003", 1)]


# --------------------------------------------------------------------------- comm key


@TRANSPORTS
def test_comm_key_right_and_wrong(office, udp: bool) -> None:
    port = port_of(office, "keyed")
    conn = connect(port, udp=udp, password=123456)
    try:
        assert conn.get_serialnumber() == "KPZKKEY01"
    finally:
        conn.disconnect()
    for wrong in (654321, 0):
        with pytest.raises(ZKErrorResponse, match="Unauthenticated"):
            connect(port, udp=udp, password=wrong)


def test_unauthenticated_session_gets_nothing(office) -> None:
    """Skipping CMD_AUTH after CMD_ACK_UNAUTH: every command is answered CMD_ACK_UNAUTH."""
    from devices.zk import framing
    from devices.zk.codes import FIRST_REPLY_ID, Command, Reply

    with socket.create_connection(("127.0.0.1", port_of(office, "keyed")), timeout=2) as s:
        raw, reply = framing.encode_request(Command.CONNECT, 0, FIRST_REPLY_ID)
        s.sendall(framing.tcp_frame(raw))
        answer = framing.decode_tcp_frame(s.recv(1024))
        assert answer.command == Reply.ACK_UNAUTH
        raw, _ = framing.encode_request(Command.GET_VERSION, answer.session_id, reply)
        s.sendall(framing.tcp_frame(raw))
        assert framing.decode_tcp_frame(s.recv(1024)).command == Reply.ACK_UNAUTH


# --------------------------------------------------------------------------- known chunk fault


def test_chunks_in_1008_byte_pieces_time_pyzk_out() -> None:
    """Known pyzk 0.9 fault: a chunk sent as several 1008-byte CMD_DATA packets makes it wait
    for bytes it has already read, until its timeout."""
    machine = ZkMachine(MachineConfig(serial="KPZK1008A"))
    seed_machine(machine, users=5, punches=400, seed=2)
    machine.faults.add(Fault.CHUNKS_1008)
    with ZkEmulatorThread([machine]) as emu:
        conn = connect(emu.port, udp=False, timeout=1)
        with pytest.raises(TimeoutError):  # socket.timeout, not even wrapped in ZKNetworkError
            conn.get_attendance()
        machine.faults.discard(Fault.CHUNKS_1008)
        conn = connect(emu.port, udp=False)
        try:
            assert len(conn.get_attendance()) == 400
        finally:
            conn.disconnect()


def test_ten_thousand_users_and_a_full_machine() -> None:
    machine = ZkMachine(MachineConfig(serial="KPZKFULL1", users_cap=10_000))
    seed_machine(machine, users=10_000, punches=0, seed=5)
    with ZkEmulatorThread([machine]) as emu:
        conn = connect(emu.port, udp=False)
        try:
            users = conn.get_users()
            assert len(users) == 10_000 and users[-1].user_id == "11000"
            with pytest.raises(ZKErrorResponse, match="Can't set user"):  # at capacity
                conn.set_user(uid=10_001, name="Wayan Putra", user_id="11001")
            conn.read_sizes()
            assert (conn.users, conn.users_av) == (10_000, 0)
        finally:
            conn.disconnect()
