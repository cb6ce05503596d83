"""The driver against a hostile or broken peer on a raw socket: garbage, truncated frames,
an oversized length and silence end in a typed ZkError within the timeout — no hang, no crash,
no unbounded buffer — and the same driver works again once a real machine answers."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from devices.zk.driver import ZkDriver, office_zone
from devices.zk.errors import ZkError
from devices.zk.framing import encode_packet, tcp_frame
from firmware_sim.zk.machine import ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.server import ZkEmulatorThread

WIB = office_zone("WIB")
MAGIC = bytes.fromhex("5050827d")


def _garbage(_: bytes) -> bytes:
    return bytes(range(256)) * 4


def _truncated(_: bytes) -> bytes:
    return tcp_frame(encode_packet(2000, 0x1234, 0, b"x" * 40))[:20]  # then the peer closes


def _oversized(_: bytes) -> bytes:
    return MAGIC + struct.pack("<I", 0x7FFF_FFFF) + b"\0" * 64  # claims 2 GiB


def _bad_checksum(_: bytes) -> bytes:
    frame = bytearray(tcp_frame(encode_packet(2000, 0x1234, 0)))
    frame[10] ^= 0xFF
    return bytes(frame)


def _silence(_: bytes) -> bytes:
    return b""


@pytest.fixture
def hostile() -> Iterator[Callable[[Callable[[bytes], bytes], bool], int]]:
    """A TCP server on loopback that answers every request with ``reply(request)``."""
    socks: list[socket.socket] = []
    stop = threading.Event()

    def serve(reply: Callable[[bytes], bytes], close_after: bool) -> int:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.settimeout(0.2)
        socks.append(srv)

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(5)
                    try:
                        while not stop.is_set():
                            request = conn.recv(4096)
                            if not request:
                                break
                            answer = reply(request)
                            if answer:
                                conn.sendall(answer)
                            if close_after:
                                break
                    except OSError:
                        pass

        threading.Thread(target=loop, daemon=True).start()
        return srv.getsockname()[1]

    yield serve
    stop.set()
    for s in socks:
        s.close()


@pytest.mark.parametrize(("reply", "close_after"), [
    (_garbage, False), (_truncated, True), (_oversized, False), (_bad_checksum, False),
    (_silence, False)], ids=["garbage", "truncated", "oversized", "bad-checksum", "silence"])
def test_a_broken_peer_ends_in_a_typed_error_within_the_timeout(hostile, reply, close_after) -> None:
    port = hostile(reply, close_after)
    driver = ZkDriver("127.0.0.1", port, timeout_s=1.0, tz=WIB)
    started = time.monotonic()
    with pytest.raises(ZkError) as err:
        driver.info()
    assert time.monotonic() - started < 10  # retries included, never a hang
    assert str(err.value)  # says something a technician can act on
    driver.close()


def test_garbage_over_udp_ends_in_a_typed_error() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                _, addr = srv.recvfrom(2048)
            except OSError:
                continue
            srv.sendto(b"\x13\x37" * 7, addr)  # a runt

    threading.Thread(target=loop, daemon=True).start()
    try:
        driver = ZkDriver("127.0.0.1", srv.getsockname()[1], udp=True, timeout_s=1.0, tz=WIB)
        with pytest.raises(ZkError):
            driver.info()
        driver.close()
    finally:
        stop.set()
        srv.close()


def test_the_driver_is_not_wedged_by_a_broken_answer(hostile) -> None:
    machine = ZkMachine(MachineConfig(serial="KPGOOD01"))
    with ZkEmulatorThread([machine]) as emulators:
        good = emulators.ports["KPGOOD01"]
        bad = hostile(_garbage, False)
        driver = ZkDriver("127.0.0.1", bad, timeout_s=1.0, tz=WIB)
        with pytest.raises(ZkError):
            driver.info()
        driver.close()
        # The same kind of object, one after the other, in the same process: a fresh session
        # to a real machine works (no state left over from the broken one).
        with ZkDriver("127.0.0.1", good, timeout_s=2.0, tz=WIB) as zk:
            assert zk.info().serial == "KPGOOD01"
