"""The office sync over the real ZK driver against emulated machines (TCP and UDP, every
firmware profile, faults): every punch on a machine reaches a batch, times carry the office
zone, the clock is kept and a log is cleared only once everything on it is stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge import contract as c
from edge.office.agent import MachinePlan, OfficeAgent
from edge.office.machine import MachineAddress, live_punches, open_machine
from edge.office.state import OfficeState
from edge.office.sync import MachineError, MachineSync, SyncPolicy
from firmware_sim.zk.machine import Fault, ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import ZkEmulatorThread
from tests.controlroom.test_controlroom import wait_for
from tests.edge.test_office_sync import Wire

UNTIL = date(2026, 11, 20)


@pytest.fixture
def office() -> Iterator[tuple[ZkEmulatorThread, dict[str, ZkMachine]]]:
    machines = {p: ZkMachine(MachineConfig(serial=f"KPOFF{p.upper()}", profile=p, records_cap=4000,
                                           reboot_s=0.5, slow_answer_s=0.2))
                for p in ("colour", "older", "newer")}
    for k, m in enumerate(machines.values()):
        seed_machine(m, users=15, punches=1200, seed=k, until=UNTIL)
    with ZkEmulatorThread(list(machines.values())) as emulators:
        yield emulators, machines


def sync_for(office, key: str, tmp_path: Path, wire: Wire, *, udp: bool = False,
             tz: str = "Asia/Jakarta", **policy) -> MachineSync:
    emulators, machines = office
    sn = machines[key].serial
    address = MachineAddress("127.0.0.1", emulators.ports[sn], udp=udp, timeout_s=3, tz=tz)
    return MachineSync(sn, partial(open_machine, address), OfficeState(tmp_path / f"{key}.sqlite"),
                       wire.send, SyncPolicy(tz=tz, **policy))


def machine_keys(m: ZkMachine, tz: str = "Asia/Jakarta") -> set[tuple[str, datetime, int]]:
    zone = ZoneInfo(tz)
    return {(r.user_id, r.timestamp.replace(tzinfo=zone), r.punch) for r in m.attendance}


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
@pytest.mark.parametrize("profile", ["colour", "older", "newer"])
def test_every_punch_of_every_profile_reaches_a_batch(office, tmp_path, profile, udp) -> None:
    wire = Wire()
    sync = sync_for(office, profile, tmp_path, wire, udp=udp)
    assert sync.sync_once().new_punches == 1200
    m = office[1][profile]
    people = [u.user_id for u in m.users[:3]]
    for user_id in people:
        m.punch(user_id)
    assert sync.sync_once().new_punches == 3
    assert set(wire.keys()) == machine_keys(m) and len(wire.keys()) == 1203
    status = wire.of(c.AttendanceStatus)[-1]
    assert status.online and status.punches == 1203 and status.punches_capacity == 4000


def test_times_carry_the_office_zone(office, tmp_path) -> None:
    wire = Wire()
    sync_for(office, "colour", tmp_path, wire, tz="Asia/Makassar").sync_once()
    batch = wire.of(c.AttendanceBatch)[0]
    assert batch.tz == "Asia/Makassar" and batch.punches[0].at.utcoffset() == timedelta(hours=8)
    assert set(wire.keys()) == machine_keys(office[1]["colour"], "Asia/Makassar")


@pytest.mark.parametrize("fault", [Fault.DROP_MID_TRANSFER, Fault.REBOOT_MID_TRANSFER,
                                   Fault.GARBLED_REPLY])
def test_a_transfer_broken_midway_loses_nothing_on_the_next_round(office, tmp_path, fault) -> None:
    wire = Wire()
    sync = sync_for(office, "colour", tmp_path, wire)
    m = office[1]["colour"]
    m.faults.add(fault)
    try:
        sync.sync_once()
    except MachineError:
        assert not wire.of(c.AttendanceStatus)[-1].online
    for _ in range(20):  # a rebooting machine is back within a second
        try:
            sync.sync_once()
            break
        except MachineError:
            time.sleep(0.2)
    assert set(wire.keys()) == machine_keys(m)
    assert m.enabled  # re-enabled after the broken read


def test_chunks_in_1008_byte_pieces_and_duplicate_punches(office, tmp_path) -> None:
    wire = Wire()
    m = office[1]["newer"]
    m.faults.update({Fault.CHUNKS_1008, Fault.DUPLICATE_PUNCHES})
    sync = sync_for(office, "newer", tmp_path, wire)
    sync.sync_once()
    m.punch(m.users[0].user_id)
    sync.sync_once()
    assert set(wire.keys()) == machine_keys(m)
    assert len(wire.keys()) == len(set(wire.keys()))  # each punch once


def test_the_clock_is_set_when_it_drifts(office, tmp_path) -> None:
    m = office[1]["colour"]
    m.clock.skew(-300.0)  # five minutes slow
    wire = Wire()
    report = sync_for(office, "colour", tmp_path, wire, max_drift_s=30).sync_once()
    assert report.clock_set and report.drift_s == pytest.approx(-300, abs=2)
    report = sync_for(office, "colour", tmp_path / "again", Wire(), max_drift_s=30).sync_once()
    assert not report.clock_set and abs(report.drift_s) < 2
    assert abs(m.clock.error_s()) < 2


def test_a_full_enough_machine_is_cleared_only_after_everything_is_stored(office, tmp_path) -> None:
    wire = Wire()
    m = office[1]["older"]
    sync = sync_for(office, "older", tmp_path, wire, clear_when_stored=True, clear_at_share=0.25)
    assert not sync.sync_once().cleared and m.record_count == 1200
    sync.on_stored([b.batch_id for b in wire.of(c.AttendanceBatch)])
    m.punch(m.users[0].user_id)  # arrives after the last pull: not stored yet
    assert not sync.sync_once().cleared and m.record_count == 1201
    sync.on_stored([b.batch_id for b in wire.of(c.AttendanceBatch)])
    assert sync.sync_once().cleared and m.record_count == 0
    assert len(wire.keys()) == 1201


def test_users_are_pushed_to_the_machine(office, tmp_path) -> None:
    wire = Wire()
    m = office[1]["colour"]
    sync = sync_for(office, "colour", tmp_path, wire)
    gone = m.users[0].user_id
    now = datetime.now(UTC)
    sync.queue_command(c.AttendanceCommand(
        ts=now, cmd_id="cmd-push-0001", issuer="bkpsdm", device_sn=m.serial,
        expires_at=now + timedelta(minutes=5),
        body=c.UsersBody(upsert=[c.MachineUser(user_id="199001012020121001", name="Dewi Lestari")],
                         remove=[gone])))
    sync.sync_once()
    ids = {u.user_id: u for u in m.users}
    assert ids["199001012020121001"].name == "Dewi Lestari" and gone not in ids
    assert [a.status for a in wire.of(c.CommandAck)] == ["accepted", "applied"]


def test_a_live_punch_is_read_at_once_and_a_lost_live_link_is_retried(office, tmp_path) -> None:
    emulators, machines = office
    m = machines["colour"]
    address = MachineAddress("127.0.0.1", emulators.ports[m.serial], timeout_s=3)
    wire = Wire()
    plan = MachinePlan(m.serial, partial(open_machine, address), SyncPolicy(),
                       pull_interval_s=3600, live=partial(live_punches, address))
    agent = OfficeAgent([plan], OfficeState(tmp_path / "live.sqlite"), wire.send)
    agent.start()
    try:
        wait_for(lambda: len(wire.keys()) == 1200, 15, "the history pulled")
        time.sleep(0.5)  # the live link registers for events
        m.punch(m.users[1].user_id)
        wait_for(lambda: len(wire.keys()) == 1201, 5, "the live punch read within seconds")
        m.reboot(0.5)  # the live link drops; it comes back and still wakes the pull
        wait_for(lambda: not m.is_down, 5, "machine back")
        deadline = time.monotonic() + 15
        while len(wire.keys()) < 1202 and time.monotonic() < deadline:
            m.punch(m.users[2].user_id)
            time.sleep(1.0)
        wait_for(lambda: set(wire.keys()) == machine_keys(m), 5, "every punch read")
        assert agent.live_punches[m.serial] >= 2
    finally:
        agent.stop()
