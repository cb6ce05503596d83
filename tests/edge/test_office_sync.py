"""The office edge's per-machine sync against an in-memory machine (our own MachineClient
boundary; the driver and the emulator are exercised end to end elsewhere): what is pulled,
what is published, when the watermark moves, and when a log may be cleared."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge import contract as c
from edge.office.state import OfficeState, OfficeStateError
from edge.office.sync import (
    BATCH_MAX,
    LogChanged,
    MachineError,
    MachineFacts,
    MachineMismatch,
    MachineRecord,
    MachineSync,
    SyncPolicy,
)
from edge.traffic import Stamp

WIB = timezone(timedelta(hours=7))
NOW = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 07:30 WIB


class FakeMachine:
    """An attendance machine's memory: a log, users, a clock; faults on demand."""

    def __init__(self, serial: str = "SN1", capacity: int = 10_000) -> None:
        self.serial = serial
        self.log: list[MachineRecord] = []
        self.users: dict[str, c.MachineUser] = {}
        self.capacity = capacity
        self.offset = timedelta(0)
        self.reachable = True
        self.reads = 0
        self.on_disable: list[MachineRecord] = []  # punched just before the disable lands
        self.time_set: list[datetime] = []

    def punch(self, n: int, start_min: int = 0) -> None:
        base = len(self.log)
        for k in range(n):
            self.log.append(MachineRecord(f"{100 + (base + k) % 50}",
                                          datetime(2026, 11, 23, 7, 0, tzinfo=WIB)
                                          + timedelta(minutes=start_min, seconds=base + k),
                                          (base + k) % 2, 1))

    # MachineClient
    def facts(self) -> MachineFacts:
        return MachineFacts(self.serial, "Lobi", "ZMM220_TFT", "Ver 6.60", len(self.users), 3000,
                            len(self.log), self.capacity)

    def records(self) -> list[MachineRecord]:
        self.reads += 1
        return list(self.log)

    def machine_time(self) -> datetime:
        return NOW + self.offset

    def set_time(self, when: datetime) -> None:
        self.time_set.append(when)
        self.offset = timedelta(0)

    def record_count(self) -> int:
        return len(self.log)

    def clear_records(self, expect_count: int) -> None:
        self.log.extend(self.on_disable)  # punched just before the machine was disabled
        self.on_disable = []
        if len(self.log) != expect_count:
            raise LogChanged(f"holds {len(self.log)}, not {expect_count}")
        self.log.clear()

    def set_user(self, user: c.MachineUser) -> None:
        if user.user_id == "0":
            raise MachineError("user id 0 refused by the machine")
        self.users[user.user_id] = user

    def delete_user(self, user_id: str) -> None:
        self.users.pop(user_id, None)


class Wire:
    """EdgeLink.send's stand-in: builds each message as the link would and validates it."""

    def __init__(self) -> None:
        self.seq = 0
        self.sent: list[c.Payload] = []

    def send(self, topic: str, build) -> int:
        self.seq += 1
        payload = build(Stamp("office-1", 1, self.seq, NOW))
        self.sent.append(c.decode(topic, c.encode(payload)).payload)
        return self.seq

    def of(self, kind: type) -> list:
        return [p for p in self.sent if isinstance(p, kind)]

    def keys(self) -> list[tuple[str, datetime, int]]:
        return [(p.user_id, p.at, p.state) for b in self.of(c.AttendanceBatch) for p in b.punches]


@pytest.fixture
def machine() -> FakeMachine:
    return FakeMachine()


@pytest.fixture
def wire() -> Wire:
    return Wire()


def make_sync(machine: FakeMachine, wire: Wire, tmp_path: Path, may_ask_again=lambda: True,
              **policy) -> MachineSync:
    @contextmanager
    def connect() -> Iterator[FakeMachine]:
        if not machine.reachable:
            raise MachineError("no answer from 10.1.2.3:4370 within 5 s")
        yield machine

    state = OfficeState(tmp_path / "office.sqlite")
    return MachineSync("SN1", connect, state, wire.send, SyncPolicy(**policy), clock=lambda: NOW,
                       may_ask_again=may_ask_again)


def keys_of(records: list[MachineRecord]) -> list[tuple[str, datetime, int]]:
    return [(r.user_id, r.ts, r.state) for r in records]


def test_every_record_is_sent_once_in_batches_and_only_new_ones_later(machine, wire, tmp_path) -> None:
    machine.punch(1203)
    sync = make_sync(machine, wire, tmp_path)
    report = sync.sync_once()
    assert (report.new_punches, report.batches) == (1203, 3)
    assert [len(b.punches) for b in wire.of(c.AttendanceBatch)] == [BATCH_MAX, BATCH_MAX, 203]
    assert wire.keys() == keys_of(machine.log)
    reads = machine.reads
    assert sync.sync_once().new_punches == 0 and machine.reads == reads  # count unchanged: no read
    machine.punch(7)
    assert sync.sync_once().new_punches == 7
    assert wire.keys() == keys_of(machine.log)
    status = wire.of(c.AttendanceStatus)[-1]
    assert status.online and status.punches == 1210 and status.unstored == 1210
    assert status.last_punch_at == machine.log[-1].ts


def test_times_are_sent_in_the_office_zone(machine, wire, tmp_path) -> None:
    machine.punch(1)
    make_sync(machine, wire, tmp_path, tz="Asia/Makassar").sync_once()
    batch = wire.of(c.AttendanceBatch)[0]
    assert batch.tz == "Asia/Makassar"
    assert batch.punches[0].at.utcoffset() == timedelta(hours=8)
    assert batch.punches[0].at == machine.log[0].ts


def test_a_crash_before_the_watermark_moves_resends_and_loses_nothing(
        machine, wire, tmp_path, monkeypatch) -> None:
    machine.punch(600)
    sync = make_sync(machine, wire, tmp_path)
    calls = {"n": 0}
    real = OfficeState.add_batch

    def dies_on_second(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch is in the outbox, the watermark did not move
            raise OfficeStateError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(OfficeState, "add_batch", dies_on_second)
    with pytest.raises(OfficeStateError):
        sync.sync_once()
    monkeypatch.setattr(OfficeState, "add_batch", real)
    sync.sync_once()
    sent = wire.keys()
    assert set(sent) == set(keys_of(machine.log))  # nothing lost
    assert len(sent) == 600 + 100  # the 100 of the batch in doubt went twice: harmless


def test_a_log_changed_behind_our_back_is_sent_again_from_its_start(machine, wire, tmp_path) -> None:
    machine.punch(20)
    sync = make_sync(machine, wire, tmp_path)
    sync.sync_once()
    machine.log.clear()  # someone cleared it at the machine's menu, then people punched
    machine.punch(25, start_min=60)
    report = sync.sync_once()
    assert report.restarted_log and report.new_punches == 25
    assert set(keys_of(machine.log)) <= set(wire.keys())


def test_a_full_machine_that_overwrites_is_read_although_its_count_stays(tmp_path, wire) -> None:
    machine = FakeMachine(capacity=30)
    machine.punch(30)
    sync = make_sync(machine, wire, tmp_path)
    sync.sync_once()
    del machine.log[:5]  # overwrites its five oldest records
    machine.punch(5, start_min=90)
    sync.sync_once()
    assert set(keys_of(machine.log)) <= set(wire.keys())


def test_the_clock_is_set_only_beyond_the_allowed_drift(machine, wire, tmp_path) -> None:
    sync = make_sync(machine, wire, tmp_path, max_drift_s=30)
    machine.offset = timedelta(seconds=20)
    report = sync.sync_once()
    assert report.drift_s == pytest.approx(20) and not report.clock_set and machine.time_set == []
    machine.offset = timedelta(seconds=-95)
    report = sync.sync_once()
    assert report.clock_set and machine.time_set == [NOW.astimezone(WIB)]
    assert machine.time_set[0].utcoffset() == timedelta(hours=7)  # the machine keeps local time


def _confirm_all(sync: MachineSync, wire: Wire) -> None:
    sync.on_stored([b.batch_id for b in wire.of(c.AttendanceBatch)])


def test_a_log_is_cleared_only_when_configured_and_everything_on_it_is_stored(tmp_path, wire) -> None:
    machine = FakeMachine(capacity=1000)
    machine.punch(600)
    sync = make_sync(machine, wire, tmp_path, clear_when_stored=True, clear_at_share=0.5)
    assert not sync.sync_once().cleared  # sent, not yet confirmed
    batches = wire.of(c.AttendanceBatch)
    sync.on_stored([batches[0].batch_id])
    assert not sync.sync_once().cleared  # one of two confirmed: still not
    _confirm_all(sync, wire)
    assert sync.sync_once().cleared and machine.log == []
    machine.punch(3)
    sync.sync_once()
    assert wire.keys()[-3:] == keys_of(machine.log)  # after the clear, reading starts over


def test_no_clear_when_not_configured_or_not_full_enough(tmp_path, wire) -> None:
    machine = FakeMachine(capacity=1000)
    machine.punch(600)
    sync = make_sync(machine, wire, tmp_path)  # clear_when_stored off (the default)
    sync.sync_once()
    _confirm_all(sync, wire)
    assert not sync.sync_once().cleared and len(machine.log) == 600
    other = FakeMachine(capacity=1000)
    other.punch(100)
    sync = make_sync(other, Wire(), tmp_path / "b", clear_when_stored=True, clear_at_share=0.5)
    sync.sync_once()
    assert not sync.sync_once().cleared


def test_a_punch_landing_just_before_the_disable_stops_the_clear(tmp_path, wire) -> None:
    machine = FakeMachine(capacity=100)
    machine.punch(80)
    sync = make_sync(machine, wire, tmp_path, clear_when_stored=True, clear_at_share=0.5)
    sync.sync_once()
    _confirm_all(sync, wire)
    late = FakeMachine()
    late.punch(1, start_min=300)
    machine.on_disable = late.log
    assert not sync.sync_once().cleared
    assert len(machine.log) == 81  # nothing cleared


def test_an_unanswered_batch_is_asked_again_with_the_same_id(machine, wire, tmp_path) -> None:
    machine.punch(3)
    sync = make_sync(machine, wire, tmp_path, resend_after_s=0.0)
    sync.sync_once()
    first = wire.of(c.AttendanceBatch)[0]
    sync.sync_once()
    again = wire.of(c.AttendanceBatch)[1]
    assert again.batch_id == first.batch_id and again.punches == first.punches
    assert again.seq != first.seq  # a new message of the same batch
    sync.on_stored([first.batch_id])
    sync.sync_once()
    assert len(wire.of(c.AttendanceBatch)) == 2


def test_no_batch_is_asked_again_while_the_first_copy_cannot_have_been_answered(
        machine, wire, tmp_path) -> None:
    # The broker down (or the outbox still holding the first copy, or the control room not
    # alive): asking again would only pile up duplicates; once it could have answered, once.
    answerable = False
    machine.punch(3)
    sync = make_sync(machine, wire, tmp_path, may_ask_again=lambda: answerable,
                     resend_after_s=0.0)
    for _ in range(5):
        sync.sync_once()
    assert len(wire.of(c.AttendanceBatch)) == 1
    answerable = True
    sync.sync_once()
    assert len(wire.of(c.AttendanceBatch)) == 2


def command(cmd_id: str, body, expires_in_s: float = 60) -> c.AttendanceCommand:
    return c.AttendanceCommand(ts=NOW - timedelta(seconds=1), cmd_id=cmd_id, issuer="bkpsdm",
                               device_sn="SN1", expires_at=NOW + timedelta(seconds=expires_in_s),
                               body=body)


def test_user_commands_are_applied_or_rejected_with_a_reason(machine, wire, tmp_path) -> None:
    machine.users["43"] = c.MachineUser(user_id="43", name="Lama")
    sync = make_sync(machine, wire, tmp_path)
    sync.queue_command(command("cmd-users-0001", c.UsersBody(
        upsert=[c.MachineUser(user_id="42", name="Siti Rahayu")], remove=["43"])))
    sync.queue_command(command("cmd-users-0002", c.UsersBody(upsert=[c.MachineUser(user_id="0")])))
    sync.queue_command(command("cmd-users-0003", c.SyncTimeBody(), expires_in_s=0))
    sync.sync_once()
    acks = [(a.cmd_id, a.status) for a in wire.of(c.CommandAck)]
    assert acks == [("cmd-users-0001", "accepted"), ("cmd-users-0002", "accepted"),
                    ("cmd-users-0003", "accepted"), ("cmd-users-0001", "applied"),
                    ("cmd-users-0002", "rejected"), ("cmd-users-0003", "rejected")]
    assert set(machine.users) == {"42"}
    reasons = {a.cmd_id: a.reason for a in wire.of(c.CommandAck)}
    assert "refused" in reasons["cmd-users-0002"] and "expired" in reasons["cmd-users-0003"]


def test_an_unreachable_machine_is_reported_offline_and_recovers(machine, wire, tmp_path) -> None:
    sync = make_sync(machine, wire, tmp_path)
    machine.reachable = False
    with pytest.raises(MachineError):
        sync.sync_once()
    status = wire.of(c.AttendanceStatus)[-1]
    assert not status.online and "no answer" in status.error
    machine.reachable = True
    machine.punch(2)
    sync.sync_once()
    status = wire.of(c.AttendanceStatus)[-1]
    assert status.online and status.error == "" and status.punches == 2


def test_another_machine_at_the_address_is_refused(wire, tmp_path) -> None:
    machine = FakeMachine(serial="OTHER")
    machine.punch(5)
    with pytest.raises(MachineMismatch, match="OTHER"):
        make_sync(machine, wire, tmp_path).sync_once()
    assert wire.of(c.AttendanceBatch) == []
