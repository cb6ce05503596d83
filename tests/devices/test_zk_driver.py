"""The ZK driver against the emulated machines over loopback TCP and UDP.

Every firmware profile (colour 72/40, older 28/16, newer 72/49), both transports, incremental
reads, the office zones, comm keys, each emulator fault and the machine always enabled again.
Machines run in a ``ZkEmulatorThread`` on free ports; fault tests get machines of their own.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from devices.zk.driver import (
    MachineTarget,
    Punch,
    ZkDriver,
    office_zone,
    pull_punches,
)
from devices.zk.errors import ZkConnectionError, ZkTimeout, ZkUnauthorized
from devices.zk.records import User
from firmware_sim.zk.machine import Fault, ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import ZkEmulatorThread

WIB = office_zone("WIB")
PROFILES = {"colour": (72, 40), "older": (28, 16), "newer": (72, 49)}
USERS, PUNCHES = 30, 2_000


def machine(serial: str, profile: str = "colour", **config: object) -> ZkMachine:
    m = ZkMachine(MachineConfig(serial=serial, profile=profile, reboot_s=0.5,
                                slow_answer_s=0.3, **config))  # type: ignore[arg-type]
    seed_machine(m, users=USERS, punches=PUNCHES)
    return m


@pytest.fixture(scope="module")
def office() -> Iterator[tuple[ZkEmulatorThread, dict[str, ZkMachine]]]:
    machines = {p: machine(f"KP{p.upper()}", p) for p in PROFILES}
    machines["keyed"] = machine("KPKEYED", comm_key=4321)
    with ZkEmulatorThread(list(machines.values())) as emu:
        yield emu, machines


@pytest.fixture
def lone() -> Iterator[tuple[int, ZkMachine]]:
    """A machine of its own (faults, clearing, restarts)."""
    m = machine("KPLONE")
    with ZkEmulatorThread([m]) as emu:
        yield emu.port, m


def driver(port: int, *, udp: bool = False, tz=WIB, **kw: object) -> ZkDriver:
    return ZkDriver("127.0.0.1", port, udp=udp, timeout_s=kw.pop("timeout_s", 3.0), tz=tz,
                    **kw)  # type: ignore[arg-type]


def expected(m: ZkMachine, tz=WIB) -> list[tuple[str, datetime, int, int]]:
    return [(r.user_id, r.timestamp.replace(tzinfo=tz), r.status, r.punch)
            for r in m.attendance]


def got(punches: list[Punch]) -> list[tuple[str, datetime, int, int]]:
    return [(p.user_id, p.timestamp, p.status, p.punch) for p in punches]


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_info_users_and_punches_for_every_profile(office, profile: str, udp: bool) -> None:
    emu, machines = office
    m = machines[profile]
    with driver(emu.ports[m.serial], udp=udp) as zk:
        info = zk.info()
        users = zk.users()
        punches = zk.punches()
    assert (info.serial, info.name) == (m.serial, m.firmware.device_name)
    assert info.firmware == m.firmware.firmware_version and info.platform == m.firmware.platform
    assert (info.user_size, info.record_size) == PROFILES[profile]
    assert (info.users, info.punches, info.punches_cap) == (USERS, PUNCHES, 100_000)
    # the 28-byte layout keeps the group as a number: "" comes back as "0"
    assert [(u.uid, u.user_id, u.name) for u in users] == [(u.uid, u.user_id, u.name)
                                                           for u in m.users]
    assert got(punches) == expected(m)
    assert all(p.timestamp.tzinfo is WIB for p in punches)
    assert m.enabled


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_incremental_read_returns_the_watermark_second_and_newer(office, udp: bool) -> None:
    emu, machines = office
    m = machines["newer"]
    with driver(emu.ports[m.serial], udp=udp) as zk:
        everything = zk.punches()
        mark = everything[-50].timestamp
        newer = zk.punches(mark)
        assert got(newer) == [p for p in got(everything) if p[1] >= mark]
        user = m.users[0]
        fresh = m.punch(user.user_id, when=(mark + timedelta(days=1)).replace(tzinfo=None))
        assert fresh is not None
        latest = zk.punches(everything[-1].timestamp)
    assert got(latest)[-1] == (user.user_id, fresh.timestamp.replace(tzinfo=WIB), 1, 0)
    assert len(latest) == 1 + sum(1 for p in everything if p.timestamp == everything[-1].timestamp)
    assert all(p.timestamp >= everything[-1].timestamp for p in latest)


def test_watermark_in_another_zone_means_the_same_instant(office) -> None:
    emu, machines = office
    m = machines["colour"]
    with driver(emu.ports[m.serial]) as zk:
        everything = zk.punches()
        mark = everything[len(everything) // 2].timestamp
        assert zk.punches(mark.astimezone(UTC)) == zk.punches(mark)
        with pytest.raises(ValueError, match="aware"):
            zk.punches(mark.replace(tzinfo=None))


@pytest.mark.parametrize(("zone", "offset_h"), [("WIB", 7), ("WITA", 8), ("WIT", 9)])
def test_times_are_aware_in_the_office_zone(zone: str, offset_h: int) -> None:
    tz = office_zone(zone)
    m = machine(f"KPTZ{zone}", utc_offset_h=offset_h, clock_offset_s=-120)
    with ZkEmulatorThread([m]) as emu, driver(emu.port, tz=tz) as zk:
        assert zk.get_time().utcoffset() == timedelta(hours=offset_h)
        assert -122 <= zk.clock_drift_s() <= -118
        sent = zk.set_time(datetime.now(UTC))
        assert sent.tzinfo is tz
        assert abs(zk.clock_drift_s()) <= 1.5
        assert abs(m.clock.error_s()) <= 1.5
        punches = zk.punches()
    assert punches and all(p.timestamp.utcoffset() == timedelta(hours=offset_h) for p in punches)
    assert got(punches) == expected(m, tz)


def test_zone_names() -> None:
    assert office_zone("wita").key == "Asia/Makassar"
    assert office_zone("Asia/Jayapura").key == "Asia/Jayapura"
    with pytest.raises(ValueError, match="WIB, WITA, WIT"):
        office_zone("Mars/Olympus")


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_comm_key_right_and_wrong(office, udp: bool) -> None:
    emu, machines = office
    port = emu.ports["KPKEYED"]
    with driver(port, udp=udp, comm_key=4321) as zk:
        assert zk.info().serial == "KPKEYED"
    with pytest.raises(ZkUnauthorized, match="refused comm key 1234.*--comm-key"):
        driver(port, udp=udp, comm_key=1234).connect()
    with pytest.raises(ZkUnauthorized):
        driver(port, udp=udp).connect()


def test_unreachable_machine_says_what_to_check() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ZkConnectionError, match="cannot reach.*port"):
        driver(port).connect()
    with pytest.raises(ZkConnectionError, match="cannot reach|did not answer"):
        driver(port, udp=True, timeout_s=0.5).connect()


@pytest.mark.parametrize("profile", list(PROFILES))
def test_set_and_delete_user(office, profile: str) -> None:
    emu, machines = office
    m = machines[profile]
    user = User(uid=900, user_id="199001012020", name="Putu Ayu", privilege=0)
    if profile == "older":
        user = User(uid=900, user_id="19900101", name="Putu Ayu")
    with driver(emu.ports[m.serial]) as zk:
        zk.set_user(user)
        assert m.user_by_id(user.user_id) is not None
        assert user.user_id in {u.user_id for u in zk.users()}
        zk.delete_user(900)
        assert m.user_by_id(user.user_id) is None


def test_set_user_on_a_fresh_driver_for_older_firmware(office) -> None:
    emu, machines = office
    m = machines["older"]
    with driver(emu.ports[m.serial]) as zk:  # no read yet: the layout comes from ~UserExtFmt
        zk.set_user(User(uid=901, user_id="777", name="Made"))
        zk.delete_user(901)


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_drop_mid_transfer_raises_enables_and_a_retry_reads_all(lone, udp: bool) -> None:
    port, m = lone
    zk = driver(port, udp=udp, timeout_s=1.0)
    m.faults.add(Fault.DROP_MID_TRANSFER)
    with pytest.raises(ZkConnectionError, match="during|did not answer"):
        zk.punches()
    assert m.enabled, "the machine must be enabled again after a failed read"
    assert got(zk.punches()) == expected(m)  # the caller retries on the same driver
    zk.close()


def test_reboot_mid_transfer(lone) -> None:
    port, m = lone
    zk = driver(port)
    m.faults.add(Fault.REBOOT_MID_TRANSFER)
    with pytest.raises(ZkConnectionError, match="restarting|closed"):
        zk.punches()
    assert m.reboots == 1 and m.enabled
    time.sleep(0.6)
    assert got(zk.punches()) == expected(m)
    zk.close()


def test_chunks_in_1008_byte_pieces(lone) -> None:
    port, m = lone
    m.faults.add(Fault.CHUNKS_1008)
    m.load_attendance(expected_more(m, 3_000))  # a few chunks of 64 KiB
    with driver(port) as zk:
        assert got(zk.punches()) == expected(m)


def expected_more(m: ZkMachine, count: int):
    from firmware_sim.zk.seed import history

    start = m.attendance[-1].timestamp.date() + timedelta(days=400)
    return history(m.users, count, until=start)


def test_slow_answers(lone) -> None:
    port, m = lone
    m.faults.add(Fault.SLOW_ANSWERS)
    with driver(port, timeout_s=2.0) as zk:
        assert zk.get_time().tzinfo is WIB
    with pytest.raises(ZkTimeout, match="did not answer.*--timeout"):
        with driver(port, timeout_s=0.1) as zk:
            zk.get_time()
    m.faults.discard(Fault.SLOW_ANSWERS)


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_a_garbled_answer_is_dropped_and_asked_again(lone, udp: bool) -> None:
    port, m = lone
    with driver(port, udp=udp) as zk:
        m.faults.add(Fault.GARBLED_REPLY)
        assert zk.get_time().tzinfo is WIB
        assert zk._client.garbled == 1
        m.faults.add(Fault.GARBLED_REPLY)
        assert got(zk.punches()) == expected(m)


def test_duplicate_punches_come_once(lone) -> None:
    port, m = lone
    m.faults.add(Fault.DUPLICATE_PUNCHES)
    user = m.users[3]
    m.punch(user.user_id)
    assert m.record_count == PUNCHES + 2
    with driver(port) as zk:
        punches = zk.punches()
        assert zk.duplicates_dropped == 1
    assert len(punches) == PUNCHES + 1 and punches[-1].user_id == user.user_id


def test_clear_punches_keeps_users(lone) -> None:
    port, m = lone
    with driver(port) as zk:
        zk.clear_punches()
        assert zk.punches() == [] and zk.info().punches == 0
        assert len(zk.users()) == USERS
    assert m.enabled


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_live_punches(lone, udp: bool) -> None:
    port, m = lone
    user = m.users[5]
    stop = threading.Event()

    def punch_soon() -> None:
        time.sleep(0.3)
        m.punch(user.user_id, punch=1)

    with driver(port, udp=udp) as zk:
        threading.Thread(target=punch_soon, daemon=True).start()
        seen: list[Punch] = []
        for p in zk.live(stop):
            seen.append(p)
            stop.set()
        assert zk.get_time()  # the session is still good after live capture
    assert [(p.user_id, p.punch) for p in seen] == [(user.user_id, 1)]
    assert seen[0].timestamp.tzinfo is WIB


def test_restart(lone) -> None:
    port, m = lone
    with driver(port) as zk:
        zk.restart()
    deadline = time.monotonic() + 2
    while m.reboots == 0 and time.monotonic() < deadline:  # the machine restarts after it answers
        time.sleep(0.01)
    assert m.reboots == 1
    with pytest.raises(ZkConnectionError):
        driver(port, timeout_s=0.3).connect()
    time.sleep(0.6)
    with driver(port) as zk:
        assert zk.info().serial == "KPLONE"


def test_pull_from_many_machines_one_unreachable(office) -> None:
    emu, machines = office
    plain = [m for m in machines.values() if m.config.comm_key == 0]
    targets = [MachineTarget("127.0.0.1", emu.ports[m.serial]) for m in plain]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        targets.append(MachineTarget("127.0.0.1", s.getsockname()[1], timeout_s=0.5))
    results = pull_punches(targets, tz=WIB, max_parallel=2)
    assert [r.ok for r in results] == [True] * (len(targets) - 1) + [False]
    assert [got(r.punches) for r in results[:-1]] == [expected(m) for m in plain]
    assert isinstance(results[-1].error, ZkConnectionError)
    assert results[0].watermark == max(p.timestamp for p in results[0].punches)


def test_machine_is_disabled_while_read_and_enabled_after(lone) -> None:
    port, m = lone
    states: list[bool] = []
    with driver(port) as zk:
        zk.punches(progress=lambda received, total: states.append(m.enabled))
    assert states and not any(states) and m.enabled


def test_eight_byte_records_resolve_user_ids_through_the_users(lone) -> None:
    import dataclasses

    from devices.zk.records import RecordFormat

    port, m = lone
    m.firmware = dataclasses.replace(m.firmware, record_format=RecordFormat.R8)
    m.attendance_table()  # the cached table is rebuilt on the next change only
    m.load_attendance([])
    m.punch(m.users[0].user_id)  # a change: the table is encoded again in 8-byte records
    states: list[bool] = []
    with driver(port) as zk:  # punches first: the layout is found before the read
        punches = zk.punches(progress=lambda received, total: states.append(m.enabled))
        assert zk.info().record_size == 8
    assert got(punches) == expected(m)
    assert not any(states) and m.enabled  # the nested user read did not enable it midway
