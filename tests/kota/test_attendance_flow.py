"""The attendance pipeline in one process, on both brokers: emulated machines → the office edge
agent (EdgeAgent with [[edge.attendance]]) → MQTT → the control room → PostgreSQL, and the
"stored" replies back to the edge's ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
import pytest

from controlroom.app import ControlRoom
from controlroom.settings import ControlRoomSettings, DatabaseSettings
from controlroom.storage.migrate import migrate
from edge import contract as c
from edge.app import EdgeAgent
from edge.settings import EdgeSettings
from edge.status import render
from firmware_sim.zk.machine import ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import ZkEmulatorThread
from tests.conftest import BACKEND_PAIRS
from tests.controlroom.test_controlroom import wait_for

TZ = ZoneInfo("Asia/Makassar")


@pytest.fixture
def machines() -> Iterator[tuple[ZkEmulatorThread, list[ZkMachine]]]:
    tag = uuid.uuid4().hex[:6].upper()  # serials are topics: unique on a shared broker
    ms = [ZkMachine(MachineConfig(serial=f"KPF{tag}{k}", profile=p, utc_offset_h=8.0))
          for k, p in enumerate(("colour", "older"))]
    for k, m in enumerate(ms):
        seed_machine(m, users=10, punches=700, seed=k, until=date(2026, 11, 20))
    with ZkEmulatorThread(ms) as emulators:
        yield emulators, ms


@BACKEND_PAIRS
def test_punches_flow_to_storage_and_the_ledger_hears_they_are_stored(
        machines, mqtt_url: str, pg_url: str, tmp_path: Path) -> None:
    emulators, ms = machines
    migrate(pg_url)
    endpoint = c.MqttEndpoint(url=mqtt_url, keepalive_s=5)
    room = ControlRoom(ControlRoomSettings(mqtt=endpoint, client_id=f"cr-{uuid.uuid4().hex[:8]}",
                                           http_port=0, ingest={"flush_interval_ms": 20}),
                       DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Makassar")
    room.start()
    agent = EdgeAgent(EdgeSettings(
        edge_id=f"kantor-{uuid.uuid4().hex[:6]}", mqtt=endpoint, state_dir=tmp_path / "edge",
        attendance=[{"device_sn": m.serial, "host": "127.0.0.1", "port": emulators.ports[m.serial],
                     "tz": "Asia/Makassar", "pull_interval_s": 1, "office": "Dinas Kominfo"}
                    for m in ms]), tmp_path)
    try:
        agent.start()
        for m in ms:
            m.punch(m.users[0].user_id)

        def stored() -> set[tuple[str, str, str, int]]:
            with psycopg.connect(pg_url) as conn:
                return {(sn, uid, ts.astimezone(TZ).replace(tzinfo=None).isoformat(), st)
                        for sn, uid, ts, st in conn.execute(
                            "SELECT device_sn, user_id, ts, punch_state FROM attendance_punch")}

        punched = {(m.serial, r.user_id, r.timestamp.isoformat(), r.punch)
                   for m in ms for r in m.attendance}
        wait_for(lambda: stored() == punched, 30, "every punch stored")
        wait_for(lambda: all(s["unstored_punches"] == 0 for s in agent.office.status()), 15,
                 "the edge's ledger told they are stored")
        def registry() -> dict[str, str]:
            with psycopg.connect(pg_url) as conn:  # a shared broker holds others' machines too
                return dict(conn.execute("SELECT device_sn, office FROM attendance_machine "
                                         "WHERE device_sn = ANY(%s)", ([m.serial for m in ms],)))

        wait_for(lambda: registry() == {m.serial: "Dinas Kominfo" for m in ms}, 15,
                 "both machines in the registry")
        text = render({**agent.status(), "pid": 1}, c.utc_now())
        assert ms[0].serial in text and "0 in 0 batch(es)" in text
    finally:
        agent.stop()
        room.stop()
        clear_retained(endpoint, [c.attendance_status_topic(m.serial) for m in ms]
                       + [c.edge_state_topic(agent.edge_id)])


def clear_retained(endpoint: c.MqttEndpoint, topics: list[str]) -> None:
    """Leave a shared broker as found: no retained state of this test's machines and edge."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"clean-{uuid.uuid4().hex[:8]}")
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
