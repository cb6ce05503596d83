"""Faults on demand and hostile bytes against the emulated machine on loopback.

Dropped links, reboots, slow and garbled answers, duplicate punches, and garbled, truncated
and oversized packets from a raw socket: none crashes or wedges the emulator — unmodified
pyzk 0.9 is answered afterwards, over TCP and UDP.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator

import pytest
from zk import ZK
from zk.base import ZK as _ZKClass
from zk.exception import ZKErrorResponse, ZKNetworkError

from devices.zk import framing
from devices.zk.codes import FIRST_REPLY_ID, Command, Reply
from firmware_sim.zk.machine import Fault, ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import MAX_REQUEST_SIZE, ZkEmulatorThread

PUNCHES = 3000  # 120 KB of 40-byte records: two TCP chunks, eight UDP chunks
PYZK_FAILURES = (ZKErrorResponse, ZKNetworkError, TimeoutError, ConnectionError, OSError)


def connect(port: int, *, udp: bool = False, timeout: float = 3) -> _ZKClass:
    return ZK("127.0.0.1", port, timeout=timeout, force_udp=udp, ommit_ping=True).connect()


@pytest.fixture
def served() -> Iterator[tuple[ZkMachine, int]]:
    machine = ZkMachine(MachineConfig(serial="KPZKFLT01", reboot_s=0.5, slow_answer_s=0.3))
    seed_machine(machine, users=10, punches=PUNCHES, seed=5)
    with ZkEmulatorThread([machine]) as emu:
        yield machine, emu.port


def pyzk_reads_everything(port: int, *, udp: bool = False) -> None:
    conn = connect(port, udp=udp)
    try:
        assert conn.get_serialnumber() == "KPZKFLT01"
        assert len(conn.get_attendance()) == PUNCHES
    finally:
        conn.disconnect()


def wait_until_up(machine: ZkMachine, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while machine.is_down:
        assert time.monotonic() < deadline, "machine did not come back"
        time.sleep(0.05)


# --------------------------------------------------------------------------- faults on demand


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_drop_mid_transfer(served, udp: bool) -> None:
    machine, port = served
    machine.faults.add(Fault.DROP_MID_TRANSFER)
    conn = connect(port, udp=udp, timeout=1)
    # TCP: the reset surfaces unwrapped; UDP: the missing datagrams leave pyzk waiting
    with pytest.raises(TimeoutError if udp else ConnectionResetError):
        conn.get_attendance()
    assert Fault.DROP_MID_TRANSFER not in machine.faults
    pyzk_reads_everything(port, udp=udp)


def test_reboot_mid_transfer_keeps_data(served) -> None:
    machine, port = served
    machine.faults.add(Fault.REBOOT_MID_TRANSFER)
    conn = connect(port, timeout=1)
    with pytest.raises(PYZK_FAILURES):
        conn.get_attendance()
    assert machine.reboots == 1
    with pytest.raises(PYZK_FAILURES):  # still down: connections are dropped at once
        connect(port, timeout=1)
    wait_until_up(machine)
    pyzk_reads_everything(port)
    assert machine.record_count == PUNCHES


def test_restart_command(served) -> None:
    machine, port = served
    conn = connect(port)
    assert conn.restart()
    deadline = time.monotonic() + 2
    while machine.reboots == 0:  # it acknowledges first, then restarts
        assert time.monotonic() < deadline, "CMD_RESTART acknowledged but no reboot"
        time.sleep(0.01)
    wait_until_up(machine)
    pyzk_reads_everything(port, udp=True)


def test_slow_answers(served) -> None:
    machine, port = served
    machine.faults.add(Fault.SLOW_ANSWERS)
    started = time.monotonic()
    conn = connect(port)
    assert conn.get_serialnumber() == "KPZKFLT01"
    assert time.monotonic() - started >= 2 * 0.3  # connect and one question
    conn.disconnect()
    with pytest.raises(PYZK_FAILURES):
        connect(port, udp=True, timeout=0.1)
    machine.faults.clear()
    pyzk_reads_everything(port)


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_garbled_reply(served, udp: bool) -> None:
    machine, port = served
    conn = connect(port, udp=udp)
    machine.faults.add(Fault.GARBLED_REPLY)
    with pytest.raises(PYZK_FAILURES):  # pyzk: "TCP packet invalid" / not a success code
        conn.get_serialnumber()
    pyzk_reads_everything(port, udp=udp)


def test_duplicate_punches(served) -> None:
    machine, port = served
    machine.faults.add(Fault.DUPLICATE_PUNCHES)
    machine.punch("1004")
    conn = connect(port)
    try:
        punches = conn.get_attendance()
    finally:
        conn.disconnect()
    assert len(punches) == PUNCHES + 2
    assert (punches[-1].user_id, punches[-1].timestamp) == \
        (punches[-2].user_id, punches[-2].timestamp)


# --------------------------------------------------------------------------- raw sockets


def tcp(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=2)


def closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not ZK at all
    bytes(range(256)) * 4,  # noise
    bytes.fromhex("5050827d ffffff7f") + b"\0" * 64,  # a top announcing 2 GiB
    bytes.fromhex("5050827d 00000100") + b"\0" * 64,  # a top announcing 16 MiB
    bytes.fromhex("5050827d 03000000 e803"),  # a top announcing less than a header
], ids=["http", "noise", "2gib", "16mib", "runt"])
def test_garbage_on_tcp_drops_that_connection_only(served, garbage: bytes) -> None:
    machine, port = served
    bystander = connect(port)  # a client in the middle of its session
    with tcp(port) as s:
        s.sendall(garbage)
        assert closed_by_peer(s)
    assert machine.garbled_packets >= 1
    assert bystander.get_serialnumber() == "KPZKFLT01"
    bystander.disconnect()
    pyzk_reads_everything(port)


def test_truncated_and_split_frames_on_tcp(served) -> None:
    machine, port = served
    raw, _ = framing.encode_request(Command.CONNECT, 0, FIRST_REPLY_ID)
    frame = framing.tcp_frame(raw)
    with tcp(port) as s:  # half a frame, then the client vanishes
        s.sendall(frame[:11])
    with tcp(port) as s:  # a frame one byte at a time is still one request
        for i in range(len(frame)):
            s.sendall(frame[i:i + 1])
            time.sleep(0.002)
        assert framing.decode_tcp_frame(s.recv(1024)).command == Reply.ACK_OK
    with tcp(port) as s:  # a frame with a wrong checksum gets no answer, the link stays usable
        bad = raw[:2] + bytes((raw[2] ^ 0x55,)) + raw[3:]
        s.sendall(framing.tcp_frame(bad))
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(1024)
        s.settimeout(2)
        s.sendall(frame)
        assert framing.decode_tcp_frame(s.recv(1024)).command == Reply.ACK_OK
    pyzk_reads_everything(port)


def test_oversized_request_in_a_valid_frame(served) -> None:
    _, port = served
    raw, _ = framing.encode_request(Command.USER_WRQ, 0, 1, b"\x01" * (MAX_REQUEST_SIZE + 1))
    with tcp(port) as s:
        s.sendall(framing.tcp_frame(raw))
        assert closed_by_peer(s)
    pyzk_reads_everything(port)


def test_garbage_on_udp_is_ignored(served) -> None:
    machine, port = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for datagram in (b"\x01", b"\0" * 7, bytes(60_000), bytes(range(256)) * 3):
            s.sendto(datagram, ("127.0.0.1", port))
        with pytest.raises(TimeoutError):
            s.recv(2048)
        # a request on a session that was never opened is refused, not served
        raw, _ = framing.encode_request(Command.GET_VERSION, 0x7777, 1)
        s.sendto(raw, ("127.0.0.1", port))
        assert framing.decode_packet(s.recv(2048)).command == Reply.ACK_UNAUTH
    assert machine.garbled_packets >= 4
    pyzk_reads_everything(port, udp=True)


def test_fuzzed_requests_on_an_open_session(served) -> None:
    """400 well-framed requests with random codes and payloads; then pyzk is still served."""
    machine, port = served
    rng = random.Random(11)
    codes = [int(c) for c in Command if c not in (Command.RESTART, Command.POWEROFF,
                                                    Command.EXIT, Command.CLEAR_DATA,
                                                    Command.CLEAR_ATTLOG)]
    with tcp(port) as s:
        raw, reply = framing.encode_request(Command.CONNECT, 0, FIRST_REPLY_ID)
        s.sendall(framing.tcp_frame(raw))
        session = framing.decode_tcp_frame(s.recv(1024)).session_id
        deframer = framing.TcpDeframer(max_packet=1 << 20)
        for _ in range(400):
            command = rng.choice(codes) if rng.random() < 0.8 else rng.randrange(0x10000)
            if command in (Command.RESTART, Command.POWEROFF, Command.EXIT,
                           Command.CLEAR_DATA, Command.CLEAR_ATTLOG):
                continue
            payload = rng.randbytes(rng.randrange(0, 120))
            raw, reply = framing.encode_request(command, session, reply, payload)
            s.sendall(framing.tcp_frame(raw))
        s.settimeout(0.5)
        received = 0
        try:
            while chunk := s.recv(1 << 16):
                received += len(deframer.feed(chunk))
        except TimeoutError:
            pass
        assert received >= 300  # every request answered (ACK_OK from a client excepted)
    assert machine.record_count == PUNCHES  # nothing the fuzz could reach lost a punch
    pyzk_reads_everything(port)
    pyzk_reads_everything(port, udp=True)


PYZK_READ_SCRIPT = """
import sys
from zk import ZK
conn = ZK("127.0.0.1", int(sys.argv[1]), timeout=2, ommit_ping=True).connect()
conn.get_attendance()
print("returned")
"""


def test_orderly_close_mid_transfer_hangs_pyzk(served) -> None:
    """Known pyzk 0.9 fault: after a FIN mid-chunk it loops forever on recv() == b"" (no
    timeout can fire). Run in a child process and killed; the emulator serves on."""
    import subprocess
    import sys

    machine, port = served
    machine.faults.add(Fault.CLOSE_MID_TRANSFER)
    child = subprocess.Popen([sys.executable, "-c", PYZK_READ_SCRIPT, str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            child.communicate(timeout=4)  # twice pyzk's own timeout
    finally:
        child.kill()
        child.communicate()
    assert Fault.CLOSE_MID_TRANSFER not in machine.faults  # it did fire
    pyzk_reads_everything(port)
