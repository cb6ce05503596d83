"""Punch batches through a real broker into a real PostgreSQL: stored once, answered with
"stored" only after the commit, answered again on a resend, refused when bad."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from controlroom.app import ControlRoom
from controlroom.settings import ControlRoomSettings, DatabaseSettings
from controlroom.storage.migrate import migrate
from edge import contract as c
from tests.conftest import BACKEND_PAIRS
from tests.controlroom.test_controlroom import wait_for

WIB = timezone(timedelta(hours=7))
KEY = "bkpsdm-viewer-key-0001"


@pytest.fixture
def room(mqtt_url: str, pg_url: str) -> Iterator[ControlRoom]:
    migrate(pg_url)
    settings = ControlRoomSettings(mqtt=c.MqttEndpoint(url=mqtt_url, keepalive_s=5),
                                   client_id=f"cr-att-{uuid.uuid4().hex[:8]}", http_port=0,
                                   ingest={"flush_interval_ms": 20},
                                   attendance={"alarm_interval_s": 1},
                                   api_keys=[{"user": "siti", "role": "viewer", "key": KEY}])
    room = ControlRoom(settings, DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Jakarta")
    room.start()
    wait_for(room.link.connected.is_set, what="control room connected")
    yield room
    room.stop()


class Office:
    """A stand-in office edge: publishes as the contract says, collects "stored" replies."""

    def __init__(self, mqtt_url: str) -> None:
        endpoint = c.MqttEndpoint(url=mqtt_url)
        self.sn = f"SN{uuid.uuid4().hex[:10].upper()}"  # unique: the system broker is shared
        self.replies: queue.Queue[c.AttendanceStored] = queue.Queue()
        self.seq = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"office-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda _c, _u, m: self.replies.put(
            c.decode(m.topic, m.payload).payload)
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        self.client.subscribe(c.attendance_stored_topic(self.sn), qos=1)[0]

    def send(self, payload: c.Payload, topic: str) -> None:
        self.client.publish(topic, c.encode(payload), qos=1).wait_for_publish(5)

    def batch(self, batch_id: str, punches: list[c.Punch], seq: int | None = None) -> c.AttendanceBatch:
        self.seq += 1
        return c.AttendanceBatch(ts=datetime.now(UTC), edge_id="office-1", epoch=1,
                                 seq=self.seq if seq is None else seq, device_sn=self.sn,
                                 batch_id=batch_id, punches=punches)

    def reply(self, timeout_s: float = 10.0) -> c.AttendanceStored:
        return self.replies.get(timeout=timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def office(mqtt_url: str) -> Iterator[Office]:
    o = Office(mqtt_url)
    yield o
    o.close()


def punches(n: int, start: int = 0) -> list[c.Punch]:
    t0 = datetime(2026, 11, 23, 7, 0, tzinfo=WIB)
    return [c.Punch(user_id=str(100 + k % 7), at=t0 + timedelta(minutes=k), state=k % 2, verify=1)
            for k in range(start, start + n)]


def stored(pg_url: str, sn: str) -> int:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT count(*) FROM attendance_punch WHERE device_sn = %s",
                            (sn,)).fetchone()[0]


@BACKEND_PAIRS
def test_a_batch_is_answered_stored_after_commit_and_again_when_resent(
        room: ControlRoom, office: Office, pg_url: str) -> None:
    first = office.batch("batch-0000001", punches(300))
    office.send(first, c.attendance_logs_topic(office.sn))
    reply = office.reply()
    assert reply.batch_ids == ("batch-0000001",)
    assert stored(pg_url, office.sn) == 300  # committed before the reply went out
    # the edge never heard the reply (say) and resends the very same message: same seq
    office.send(first, c.attendance_logs_topic(office.sn))
    assert office.reply().batch_ids == ("batch-0000001",)
    assert stored(pg_url, office.sn) == 300


@BACKEND_PAIRS
def test_a_bad_batch_is_refused_unanswered_and_stores_nothing(
        room: ControlRoom, office: Office, pg_url: str) -> None:
    good = office.batch("batch-0000002", punches(2))
    raw = json.loads(c.encode(good))
    raw["punches"][0]["at"] = "2026-11-23T07:00:00"  # no zone: the machine time was not converted
    office.client.publish(c.attendance_logs_topic(office.sn), json.dumps(raw).encode(), qos=1).wait_for_publish(5)
    wait_for(lambda: room.ingest.stats.rejected.get("schema", 0) >= 1, what="rejection counted")
    with pytest.raises(queue.Empty):
        office.reply(timeout_s=1.0)
    assert stored(pg_url, office.sn) == 0


@BACKEND_PAIRS
def test_machine_status_feeds_the_registry_and_its_alarms(
        room: ControlRoom, office: Office, pg_url: str) -> None:
    status = c.AttendanceStatus(ts=datetime.now(UTC), edge_id="office-1", epoch=1, seq=1,
                                device_sn=office.sn, online=True, name="Lobi", firmware="Ver 6.60",
                                punches=95_000, punches_capacity=100_000, clock_drift_s=1.0)
    office.send(status, c.attendance_status_topic(office.sn))

    def alarm_codes() -> set[str]:
        with psycopg.connect(pg_url) as conn:
            return {r[0] for r in conn.execute(
                "SELECT code FROM attendance_alarm WHERE device_sn = %s AND cleared_at IS NULL",
                (office.sn,))}

    wait_for(lambda: alarm_codes() == {"machine_capacity"}, what="capacity alarm")
    office.send(status.model_copy(update={"seq": 2, "ts": datetime.now(UTC), "punches": 10}),
                c.attendance_status_topic(office.sn))
    wait_for(lambda: alarm_codes() == set(), what="capacity alarm cleared")
    health = httpx.get(f"{room.url}api/health", timeout=5).json()
    assert health["attendance"]["batches_rejected"] == 0
    office.client.publish(c.attendance_status_topic(office.sn), b"", qos=1, retain=True).wait_for_publish(5)


@BACKEND_PAIRS
def test_the_api_shows_machines_alarms_and_punches_to_a_key_holder(
        room: ControlRoom, office: Office) -> None:
    office.send(office.batch("batch-0000009", punches(3)), c.attendance_logs_topic(office.sn))
    office.reply()
    status = c.AttendanceStatus(ts=datetime.now(UTC), edge_id="office-1", epoch=1, seq=50,
                                device_sn=office.sn, online=True, name="Lobi", punches=90,
                                punches_capacity=100, clock_drift_s=0.0)
    office.send(status, c.attendance_status_topic(office.sn))
    api = f"{room.url}api/attendance"

    def machine() -> dict | None:
        rows = httpx.get(f"{api}/machines", timeout=5).json()
        return next((m for m in rows if m["device_sn"] == office.sn), None)

    # full above 80 % (no employee list yet: unknown user ids are not news)
    wait_for(lambda: (m := machine()) is not None and m["open_alarms"] == 1, what="machine listed")
    m = machine()
    assert m["online"] is True and m["punches_used_pct"] == 90.0 and m["name"] == "Lobi"
    alarms = httpx.get(f"{api}/alarms", params={"machine": office.sn}, timeout=5).json()
    assert [a["code"] for a in alarms] == ["machine_capacity"]
    assert httpx.get(f"{api}/punches", timeout=5).status_code == 401  # personal data
    rows = httpx.get(f"{api}/punches", params={"machine": office.sn}, headers={"X-API-Key": KEY},
                     timeout=5).json()
    assert [(r["user_id"], r["local_ts"]) for r in rows] == [
        ("100", "2026-11-23T07:00:00"), ("101", "2026-11-23T07:01:00"), ("102", "2026-11-23T07:02:00")]
    bad = httpx.get(f"{api}/punches", params={"since": "2026-11-23T00:00:00"},
                    headers={"X-API-Key": KEY}, timeout=5)
    assert bad.status_code == 422 and "zone" in bad.text
    office.client.publish(c.attendance_status_topic(office.sn), b"", qos=1, retain=True).wait_for_publish(5)
