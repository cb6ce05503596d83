"""The contract between the traffic service and the real edge agent: the agent (edge.app) with a
simulated intersection takes the control room's plans, applies them and acks; an operator's
force and release go through it too. Both run in this process on the embedded broker."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from controlroom.app import ControlRoom
from controlroom.settings import ControlRoomSettings, DatabaseSettings
from controlroom.storage.migrate import migrate
from edge import contract as c
from edge.app import run_agent
from edge.settings import EdgeSettings
from tests.controlroom.test_traffic_service import EMBEDDED_ONLY, OPERATOR_KEY, layout_for, wait_for

pytestmark = EMBEDDED_ONLY


@pytest.fixture
def stack(mqtt_url: str, pg_url: str, tmp_path: Path, scratch_dir: Path) -> Iterator[tuple[ControlRoom, str]]:
    tag = uuid.uuid4().hex[:6]
    iid = f"S{tag}"
    layout = tmp_path / "city.json"
    layout.write_text(json.dumps(layout_for([iid])), encoding="utf-8")
    migrate(pg_url)
    settings = ControlRoomSettings(
        mqtt=c.MqttEndpoint(url=mqtt_url, keepalive_s=5), client_id=f"cr-{tag}", http_port=0,
        ingest={"flush_interval_ms": 20}, state_interval_s=0.5,
        traffic={"layout": layout, "plan_interval_s": 1.0, "tick_s": 0.05, "stale_after_s": 2.0,
                 "telemetry_period_s": 0.2},
        api_keys=[{"user": "budi", "role": "operator", "key": OPERATOR_KEY}])
    room = ControlRoom(settings, DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Makassar")
    room.start()
    edge = EdgeSettings(edge_id=f"edge-{tag}", mqtt=c.MqttEndpoint(url=mqtt_url, keepalive_s=5),
                        poll_interval_s=0.2, state_dir=scratch_dir / "edge",
                        command_issuers=["controlroom"],
                        simulated=[{"intersection_id": iid, "phases": 2, "detectors": 2,
                                    "cycle_s": 60, "peak_veh_per_h": 600}])
    stop = threading.Event()
    agent = threading.Thread(target=run_agent, args=(edge, scratch_dir, stop), daemon=True)
    agent.start()
    yield room, iid
    stop.set()
    agent.join(15)
    room.stop()


def test_the_edge_agent_applies_adaptive_plans_and_operator_overrides(
        stack: tuple[ControlRoom, str], pg_url: str) -> None:
    room, iid = stack

    def statuses(kind: str) -> list[tuple[str, str, str]]:
        with psycopg.connect(pg_url) as conn:
            return conn.execute("SELECT source, status, reason FROM traffic_command "
                                "WHERE intersection_id = %s AND kind = %s ORDER BY issued_at",
                                (iid, kind)).fetchall()

    wait_for(lambda: ("adaptive", "applied", "") in statuses("plan"), timeout_s=20,
             what="an adaptive plan applied by the edge agent")
    view = httpx.get(f"{room.url}api/intersections/{iid}", timeout=5).json()
    assert view["live"]["online"] and len(view["live"]["signal"]) == 2
    assert [a["status"] for a in view["last_command"]["acks"]][:2] == ["accepted", "applied"]
    wait_for(lambda: httpx.get(f"{room.url}api/intersections/{iid}", timeout=5).json()["plan"]["source"]
             == "adaptive", what="controller in central mode on the adaptive plan")

    forced = httpx.post(f"{room.url}api/intersections/{iid}/override", timeout=5,
                        headers={"X-API-Key": OPERATOR_KEY},
                        json={"action": "force", "phase": 2, "reason": "test"})
    assert forced.status_code == 200, forced.text
    wait_for(lambda: ("operator", "applied", "") in statuses("override"), what="force applied")
    released = httpx.post(f"{room.url}api/intersections/{iid}/release", timeout=5,
                          headers={"X-API-Key": OPERATOR_KEY}, json={})
    assert released.status_code == 200, released.text
    wait_for(lambda: [s[1] for s in statuses("override")] == ["applied", "applied"], what="release applied")
    assert not [a for a in httpx.get(f"{room.url}api/alarms", timeout=5).json()
                if a["intersection_id"] == iid and a["code"].startswith("command_")]
