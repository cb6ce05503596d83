"""The attendance pipeline under chaos, as real processes: emulated ZKTeco machines (in this
process) with staff punching throughout → the office edge agent (`kota edge run`, clearing
machines once everything on them is stored) → the embedded broker (`kota broker`) → the
control room (`kota controlroom run`) → PostgreSQL.

On the way: the edge agent killed -9 in the middle of a pull, a machine rebooted in the middle
of a transfer, the broker stopped for two minutes, the control room restarted. Afterwards the
stored punches equal the punched ones exactly (no loss, no duplicate), and no machine was ever
cleared while it held a punch not yet stored. Embedded broker only (the machine's Mosquitto is
shared and not ours to stop). About two and a half minutes, two of them the outage.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest

from controlroom.storage.migrate import migrate
from devices.zk.codes import Command
from firmware_sim.zk.machine import Fault, ZkMachine
from firmware_sim.zk.profiles import MachineConfig, WhenFull
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import ZkEmulatorThread
from kota.city import Child, _http_json, free_port, wait_ready, write_settings
from tests.controlroom.test_controlroom import wait_for

pytestmark = pytest.mark.slow

BROKER_OUTAGE_S = 120.0
TZ = ZoneInfo("Asia/Jakarta")
Key = tuple[str, str, str, int]  # device serial, user id, ISO time, punch state


class Office:
    """Three machines (one per firmware profile) and the staff punching on them."""

    def __init__(self, pg_url: str) -> None:
        self.machines = [
            ZkMachine(MachineConfig(serial=f"KPCHAOS{k}", profile=p, records_cap=cap,
                                    when_full=WhenFull.STOP, reboot_s=2.0, slow_answer_s=0.02))
            for k, (p, cap) in enumerate((("colour", 60_000), ("older", 3_000), ("newer", 3_000)))]
        seed_machine(self.machines[0], users=40, punches=30_000, seed=1, until=date(2026, 11, 20))
        for k, m in enumerate(self.machines[1:], start=2):
            seed_machine(m, users=25, punches=200, seed=k, until=date(2026, 11, 20))
        self.punched: set[Key] = {self.key(m.serial, r) for m in self.machines for r in m.attendance}
        self.refused = 0
        self.violations: list[str] = []  # clears of a log holding an unstored punch
        self.clears = 0
        self._pg_url = pg_url
        self._stop = threading.Event()
        self._staff = threading.Thread(target=self._punching, name="staff", daemon=True)
        self.in_transfer = threading.Event()
        for m in self.machines:
            self._watch(m)

    @staticmethod
    def key(serial: str, record: Any) -> Key:
        return (serial, record.user_id, record.timestamp.replace(tzinfo=TZ).isoformat(),
                record.punch)

    def _watch(self, machine: ZkMachine) -> None:
        """Check every clear against the database, and tell when a table read is under way."""
        handle = machine.handle

        def watched(session: Any, packet: Any) -> Any:
            if packet.command == Command.READ_BUFFER:
                self.in_transfer.set()
            elif packet.command in (Command.CLEAR_ATTLOG, Command.CLEAR_DATA):
                held = {self.key(machine.serial, r) for r in machine.attendance}
                missing = held - stored(self._pg_url, machine.serial)
                if missing:
                    self.violations.append(f"{machine.serial} cleared holding {len(missing)} "
                                           f"unstored punch(es), e.g. {sorted(missing)[:3]}")
                self.clears += 1
            return handle(session, packet)

        machine.handle = watched  # type: ignore[method-assign]

    def _punching(self) -> None:
        rng = random.Random(5)
        while not self._stop.wait(0.05):
            machine = rng.choice(self.machines)
            if machine.is_down:
                continue
            user = rng.choice(machine.users)
            record = machine.punch(user.user_id, punch=rng.choice((0, 1)))
            if record is None:
                self.refused += 1  # down, or disabled while being cleared: the person retries
            else:
                self.punched.add(self.key(machine.serial, record))

    def start(self) -> None:
        self._staff.start()

    def stop(self) -> None:
        self._stop.set()
        self._staff.join(5)


def stored(pg_url: str, serial: str | None = None) -> set[Key]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT device_sn, user_id, local_ts, punch_state FROM attendance_punch"
            + (" WHERE device_sn = %s" if serial else ""), (serial,) if serial else ()).fetchall()
    return {(sn, uid, local.replace(tzinfo=TZ).isoformat(), state) for sn, uid, local, state in rows}


def stored_rows(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT count(*) FROM attendance_punch").fetchone()[0]


def wait_paced(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """wait_for at a pace fit for a predicate that reads the whole punch table (tens of
    thousands of rows): polled every 50 ms it would take CPU from the stack it waits on."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


class Stack:
    """Broker, control room and office edge as child processes with their own settings files."""

    def __init__(self, run_dir: Path, pg_url: str, office: Office, ports: dict[str, int]) -> None:
        self.run_dir = run_dir
        self.broker_port = free_port()
        self.http_port = free_port()
        mqtt = {"url": f"mqtt://127.0.0.1:{self.broker_port}", "keepalive_s": 2,
                "reconnect_min_s": 0.5, "reconnect_max_s": 2.0}
        site = {"city": "Kota Uji", "timezone": "Asia/Jakarta", "data_dir": run_dir / "data"}
        logs = run_dir / "logs"
        self.broker = Child("broker", ["broker"], write_settings(
            run_dir / "broker.toml", {"broker": {"host": "127.0.0.1", "port": self.broker_port}},
            "chaos broker"), logs / "broker.log")
        self.controlroom = Child("control room", ["controlroom", "run"], write_settings(
            run_dir / "controlroom.toml",
            {"site": site, "database": {"url": pg_url},
             "controlroom": {"mqtt": mqtt, "client_id": f"cr-chaos-{uuid.uuid4().hex[:6]}",
                             "http_port": self.http_port, "state_interval_s": 2.0}},
            "chaos control room"), logs / "controlroom.log")
        machines = [{"device_sn": m.serial, "host": "127.0.0.1", "port": ports[m.serial],
                     "timeout_s": 3.0, "pull_interval_s": 1.0, "clear_when_stored": True,
                     "clear_at_share": 0.1, "resend_after_s": 20.0, "office": "BKPSDM"}
                    for m in office.machines]
        self.edge_state = run_dir / "edge"
        self.edge = Child("edge", ["edge", "run"], write_settings(
            run_dir / "edge.toml",
            {"site": site, "edge": {"edge_id": "kantor-bkpsdm", "mqtt": mqtt,
                                    "state_dir": self.edge_state, "attendance": machines}},
            "chaos office edge"), logs / "edge.log")

    def start_broker(self) -> None:
        self.broker.start()
        wait_ready(lambda: "MQTT broker listening on" in self.broker.output(), self.broker,
                   "broker", 30)

    def start_controlroom(self) -> None:
        self.controlroom.start()

        def healthy() -> bool:
            try:
                return _http_json(f"http://127.0.0.1:{self.http_port}/api/health")["status"] == "ok"
            except (OSError, ValueError, KeyError, TypeError):
                return False

        wait_ready(healthy, self.controlroom, "control room", 60)

    def start_edge(self) -> None:
        self.edge.start()
        wait_ready(lambda: "edge agent kantor-bkpsdm starting" in self.edge.output(), self.edge,
                   "edge agent", 30)

    def children(self) -> list[Child]:
        return [self.edge, self.controlroom, self.broker]

    def alive(self) -> None:
        for child in self.children():
            gone = child.exited()
            assert gone is None, f"{gone}:\n{child.tail()}"


@pytest.fixture
def chaos(embedded_pg_server: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Stack, Office, str]]:
    name = f"kota_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(embedded_pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    pg_url = urlunsplit(urlsplit(embedded_pg_server)._replace(path="/" + name))
    migrate(pg_url)
    office = Office(pg_url)
    with ZkEmulatorThread(office.machines) as emulators:
        stack = Stack(tmp_path_factory.mktemp("chaos"), pg_url, office, emulators.ports)
        try:
            yield stack, office, pg_url
        finally:
            office.stop()
            for child in stack.children():
                child.stop(10)
    with psycopg.connect(embedded_pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_no_punch_lost_or_doubled_and_no_machine_cleared_early(chaos) -> None:
    stack, office, pg_url = chaos
    big = office.machines[0]
    stack.start_broker()
    stack.start_controlroom()
    office.start()
    # 1. the edge agent killed -9 in the middle of its first pull of the big machine
    big.faults.add(Fault.SLOW_ANSWERS)
    office.in_transfer.clear()
    stack.start_edge()
    assert office.in_transfer.wait(30), "the edge never started reading the big machine"
    time.sleep(0.3)
    stack.edge.kill()
    big.faults.discard(Fault.SLOW_ANSWERS)
    stack.start_edge()
    wait_for(lambda: stored_rows(pg_url) >= 30_000, 120, "the big machine's history stored")
    # 2. a machine rebooted in the middle of a transfer (the next read of the newer one)
    office.machines[2].faults.add(Fault.REBOOT_MID_TRANSFER)
    wait_for(lambda: office.machines[2].reboots >= 1, 30, "the newer machine rebooted mid-read")
    # 3. the broker down for two minutes, staff punching on
    stack.broker.kill()
    time.sleep(BROKER_OUTAGE_S)
    held = stored_rows(pg_url)
    stack.start_broker()
    # 4. the control room restarted, once the outage's backlog flows again (part of it is then
    # in flight through the restart)
    wait_for(lambda: stored_rows(pg_url) > held, 60, "punches stored again after the outage")
    stack.controlroom.stop()
    punched_before_restart = set(office.punched)
    stack.start_controlroom()
    # staff punching on until the new control room has stored a punch made since the old one
    # stopped
    wait_paced(lambda: stored(pg_url) & (office.punched - punched_before_restart), 60,
               "a punch made during the control room's restart, stored")
    office.stop()  # the working day ends
    stack.alive()

    def settled() -> bool:
        return stored(pg_url) == office.punched

    wait_paced(settled, 120, "every punch stored")
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT count(*) FROM attendance_punch").fetchone()[0]
        machines = {r[0]: r for r in conn.execute(
            "SELECT device_sn, online, punches FROM attendance_machine")}
    assert rows == len(office.punched)  # stored once each
    # Once the edge hears that everything is stored, the machines over their share are cleared.
    wait_for(lambda: office.clears >= 3, 60, "every machine cleared once all it held was stored")
    assert office.violations == []
    assert set(machines) == {m.serial for m in office.machines}
    edge_log = stack.edge.output()
    assert "Traceback" not in edge_log, edge_log[-3000:]
