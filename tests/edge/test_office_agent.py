"""The office agent's routing and schedule: stored replies and commands reach their machine's
sync after the contract, issuer and expiry checks; a command wakes the machine at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge import contract as c
from edge.office.agent import MachinePlan, OfficeAgent
from edge.office.state import OfficeState
from edge.office.sync import SyncPolicy
from tests.controlroom.test_controlroom import wait_for
from tests.edge.test_office_sync import FakeMachine, Wire


def agent_for(machine: FakeMachine, wire: Wire, tmp_path: Path, **kw) -> OfficeAgent:
    @contextmanager
    def connect() -> Iterator[FakeMachine]:
        yield machine

    plan = MachinePlan("SN1", connect, SyncPolicy(), pull_interval_s=3600)
    return OfficeAgent([plan], OfficeState(tmp_path / "o.sqlite"), wire.send, **kw)


def cmd(issuer: str = "bkpsdm-siti", expires_in_s: float = 60, device_sn: str = "SN1") -> bytes:
    now = datetime.now(UTC)
    return c.encode(c.AttendanceCommand(
        ts=now - timedelta(seconds=120), cmd_id="cmd-agent-0001", issuer=issuer, device_sn=device_sn,
        expires_at=now + timedelta(seconds=expires_in_s),
        body=c.UsersBody(upsert=[c.MachineUser(user_id="42", name="Siti")])))


def test_subscriptions_cover_each_machine() -> None:
    agent = OfficeAgent([MachinePlan("SN1", None, SyncPolicy()), MachinePlan("SN2", None, SyncPolicy())],
                        OfficeState(Path("/tmp") / f"kota-office-{time.time_ns()}.sqlite"), Wire().send)
    assert agent.subscriptions() == [
        ("kota/v1/attendance/SN1/stored", 1), ("kota/v1/attendance/SN1/cmd", 1),
        ("kota/v1/attendance/SN2/stored", 1), ("kota/v1/attendance/SN2/cmd", 1)]


def test_a_command_wakes_its_machine_and_is_applied(tmp_path) -> None:
    machine, wire = FakeMachine(), Wire()
    agent = agent_for(machine, wire, tmp_path, issuers=["bkpsdm-*"])
    agent.start()
    try:
        wait_for(lambda: agent.rounds["SN1"] == 1, what="first round")
        assert agent.on_message(c.attendance_command_topic("SN1"), cmd())
        wait_for(lambda: "42" in machine.users, timeout_s=5, what="command applied at once")
        wait_for(lambda: [a.status for a in wire.of(c.CommandAck)] == ["accepted", "applied"],
                 what="acks")
    finally:
        agent.stop()


def test_forged_expired_and_malformed_commands_change_nothing(tmp_path, caplog) -> None:
    machine, wire = FakeMachine(), Wire()
    agent = agent_for(machine, wire, tmp_path, issuers=["bkpsdm-*"])
    assert agent.on_message(c.attendance_command_topic("SN1"), cmd(issuer="intruder"))
    assert agent.on_message(c.attendance_command_topic("SN1"), cmd(expires_in_s=-1))
    assert agent.on_message(c.attendance_command_topic("SN1"), b'{"v":1,"cmd_id":')
    agent.syncs["SN1"].sync_once()
    assert machine.users == {}
    acks = [(a.status, a.reason) for a in wire.of(c.CommandAck)]
    assert acks == [("rejected", "issuer 'intruder' not allowed"),
                    ("rejected", "expired before it arrived")]
    assert "breaks the contract" in caplog.text
    assert not agent.on_message(c.attendance_command_topic("OTHER"), cmd(device_sn="OTHER"))
    assert not agent.on_message(c.command_topic("simpang-1"), b"{garbage")  # traffic's own


def test_stored_replies_reach_the_ledger(tmp_path) -> None:
    machine, wire = FakeMachine(), Wire()
    machine.punch(3)
    agent = agent_for(machine, wire, tmp_path)
    agent.syncs["SN1"].sync_once()
    batch = wire.of(c.AttendanceBatch)[0]
    assert agent.status()[0]["unstored_punches"] == 3
    reply = c.AttendanceStored(ts=datetime.now(UTC), device_sn="SN1", batch_ids=[batch.batch_id])
    assert agent.on_message(c.attendance_stored_topic("SN1"), c.encode(reply))
    status = agent.status()[0]
    assert status["unstored_punches"] == 0 and status["punches_on_machine"] == 3
