"""The whole chain with real processes: an edge agent process (`kota edge run`), a broker, the
control room and PostgreSQL. Kill -9 the agent, take the broker away, and count what arrives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from controlroom.app import ControlRoom
from controlroom.broker import EmbeddedBroker
from controlroom.settings import BrokerSettings, ControlRoomSettings, DatabaseSettings
from controlroom.storage.migrate import migrate
from edge.contract import MqttEndpoint
from tests.conftest import BACKEND_PAIRS, free_port

pytestmark = pytest.mark.slow
FAULT_EVERY_S = 0.5


def wait_for(predicate, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def start_room(mqtt_url: str, pg_url: str) -> ControlRoom:
    migrate(pg_url)
    room = ControlRoom(
        ControlRoomSettings(mqtt=MqttEndpoint(url=mqtt_url, reconnect_max_s=1),
                            client_id=f"cr-{uuid.uuid4().hex[:8]}", http_port=0,
                            ingest={"flush_interval_ms": 20}),
        DatabaseSettings(), pg_url, city="Uji", timezone="Asia/Jakarta")
    room.start()
    wait_for(room.link.connected.is_set, 10, "control room connected")
    return room


def edge_process(mqtt_url: str, data_dir: Path, edge_id: str, iid: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(data_dir),
        "KOTA_EDGE__EDGE_ID": edge_id,
        "KOTA_EDGE__MQTT__URL": mqtt_url,
        "KOTA_EDGE__MQTT__KEEPALIVE_S": "2",
        "KOTA_EDGE__MQTT__RECONNECT_MIN_S": "0.2",
        "KOTA_EDGE__MQTT__RECONNECT_MAX_S": "1",
        "KOTA_EDGE__POLL_INTERVAL_S": "0.1",
        "KOTA_EDGE__SIMULATED": json.dumps([{"intersection_id": iid, "detectors": 4, "phases": 2,
                                             "detector_fault_every_s": FAULT_EVERY_S}]),
    }
    return subprocess.Popen([sys.executable, "-m", "kota", "edge", "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def edge_online(room: ControlRoom, edge_id: str) -> bool | None:
    return {e["edge_id"]: e["online"] for e in room.store.edges()}.get(edge_id)


@pytest.fixture
def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    return f"edge-{tag}", f"simpang-{tag}"


@BACKEND_PAIRS
def test_edge_killed_shows_offline_within_will_delay(mqtt_url: str, pg_url: str, tmp_path: Path,
                                                      names: tuple[str, str]) -> None:
    edge_id, iid = names
    room = start_room(mqtt_url, pg_url)
    proc = edge_process(mqtt_url, tmp_path, edge_id, iid)
    try:
        wait_for(lambda: edge_online(room, edge_id) is True, 20, "edge online")
        proc.kill()
        proc.wait(5)
        # keep-alive 2 s: the broker gives up after 1.5 × 2 s and publishes the will
        took = wait_for(lambda: edge_online(room, edge_id) is False, 8, "edge offline after kill -9")
        assert took < 6
        rows = {r["intersection_id"]: r for r in room.store.intersections()}
        assert rows[iid]["edge_online"] is False
    finally:
        if proc.poll() is None:
            proc.kill()
        room.stop()


def _events(pg_url: str, edge_id: str) -> list[tuple[int, int, str, float]]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            "SELECT epoch, seq, kind, extract(epoch FROM ts)::float8 FROM traffic_event "
            "WHERE edge_id = %s AND kind IN ('detector_fault', 'detector_recovered') ORDER BY epoch, ts",
            (edge_id,)).fetchall()


def test_qos1_events_survive_broker_outage_and_agent_kill(pg_url: str, tmp_path: Path,
                                                          names: tuple[str, str]) -> None:
    edge_id, iid = names
    broker_settings = BrokerSettings(port=free_port())
    broker = EmbeddedBroker(broker_settings)
    broker.start()
    room = start_room(broker.url, pg_url)
    proc = edge_process(broker.url, tmp_path, edge_id, iid)
    try:
        wait_for(lambda: len(_events(pg_url, edge_id)) >= 3, 20, "first events")
        broker.stop()                      # outage: the agent keeps producing events
        outage_start = time.time()
        time.sleep(6 * FAULT_EVERY_S)
        proc.kill()                        # … and dies hard with them in its outbox
        proc.wait(5)
        killed_at = time.time()
        proc = edge_process(broker.url, tmp_path, edge_id, iid)   # restarted: epoch 2
        time.sleep(1)
        broker = EmbeddedBroker(broker_settings)
        broker.start()
        wait_for(lambda: any(e[0] == 2 for e in _events(pg_url, edge_id)), 30, "epoch 2 events")
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        room.stop()
        broker.stop()
    events = _events(pg_url, edge_id)
    epoch1 = [e for e in events if e[0] == 1]
    # every event produced during the outage, up to the kill, arrived …
    assert any(outage_start <= e[3] <= killed_at for e in epoch1), (outage_start, killed_at, events, out[-3000:])
    assert epoch1[-1][3] >= killed_at - 2 * FAULT_EVERY_S - 0.5, (killed_at, epoch1[-3:])
    # … none is missing (the fault toggles, so kinds alternate and gaps stay one period) …
    for epoch in (1, 2):
        run = [e for e in events if e[0] == epoch]
        for before, after in zip(run, run[1:], strict=False):
            assert before[2] != after[2], f"an event is missing between {before} and {after}"
            assert after[3] - before[3] < 2 * FAULT_EVERY_S + 0.3, (before, after)
    # … and none is stored twice, though the outbox resent what was in flight
    assert len({(e[2], e[3]) for e in events}) == len(events)
    assert "epoch 2" in out
