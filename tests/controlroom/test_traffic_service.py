"""The traffic service end to end: a real broker, a real PostgreSQL, the control room as it
runs, and the test acting as an edge over MQTT (telemetry out, commands in, acks back).

Ids are unique per test, so tests sharing the machine's Mosquitto never see each other.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from controlroom.app import ControlRoom
from controlroom.settings import ControlRoomSettings, DatabaseSettings
from controlroom.storage.migrate import migrate
from edge import contract as c
from tests.conftest import BACKEND_PAIRS

OPERATOR_KEY = "op-key-0123456789abcdef"

# The slower scenarios run on the embedded broker and PostgreSQL only (always present); the
# end-to-end plan test and the command tests run on the machine's servers too.
EMBEDDED_ONLY = pytest.mark.parametrize(("mqtt_url", "pg_server"), [("embedded", "embedded")],
                                        indirect=True)
VIEWER_KEY = "viewer-key-0123456789ab"
SUPERVISOR_KEY = "supervisor-key-0123456789"


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def layout_for(ids: list[str]) -> dict[str, Any]:
    """Two-phase intersections with one detector per movement; the second is downstream-coordinated."""
    def one(iid: str, upstream: str | None) -> dict[str, Any]:
        return {
            "id": iid, "name": f"Simpang {iid}", "x": 0.0, "y": 0.0,
            "phases": [{"movements": [0], "min_green_s": 7, "max_green_s": 60, "yellow_s": 3,
                        "all_red_s": 1, "ped_min_s": 0},
                       {"movements": [1], "min_green_s": 7, "max_green_s": 60, "yellow_s": 3,
                        "all_red_s": 1, "ped_min_s": 0}],
            "movements": [{"width_m": 3.2, "protected": True, "downstream": []},
                          {"width_m": 3.2, "protected": True, "downstream": []}],
            "detectors": [{"movement": 0, "counts": True, "queues": True},
                          {"movement": 1, "counts": True, "queues": True}],
            "cycle_min_s": None, "cycle_max_s": None, "upstream": upstream, "travel_time_s": 12,
        }
    return {"city": "Kota Uji", "intersections": [one(iid, ids[0] if k else None)
                                                  for k, iid in enumerate(ids)]}


@dataclass
class Edge:
    """A fake edge agent over MQTT: telemetry at 10 Hz with the vehicles of each poll (as the
    edge agent sends them), commands recorded and answered as ``policy`` says (apply / reject /
    silent)."""

    url: str
    edge_id: str
    ids: list[str]
    policy: dict[str, str] = field(default_factory=dict)
    mode: dict[str, str] = field(default_factory=dict)
    faults: dict[str, list[bool]] = field(default_factory=dict)
    rate_veh_s: dict[str, float] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    commands: list[c.TrafficCommand] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._counters = {iid: [0.0, 0.0] for iid in self.ids}
        self._stop = threading.Event()
        endpoint = c.MqttEndpoint(url=self.url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{self.edge_id}-fake")
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.subscribe([(c.command_topic(iid), 1) for iid in self.ids])
        self.client.loop_start()
        self.state("online")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def seq(self) -> int:
        with self._lock:
            return next(self._seq)

    def state(self, status: str) -> None:
        msg = c.EdgeState(ts=datetime.now(UTC), edge_id=self.edge_id, epoch=1, seq=self.seq(),
                          status=status, conn=1 if status == "online" else 1)
        self.client.publish(c.edge_state_topic(self.edge_id), c.encode(msg), qos=1).wait_for_publish(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for iid in self.ids:
                if iid in self.silent:
                    continue
                counters = self._counters[iid]
                before = [int(v) for v in counters]
                rate = self.rate_veh_s.get(iid, 0.05)
                for d in range(2):
                    counters[d] += rate * 0.1
                t = c.TrafficTelemetry(
                    ts=datetime.now(UTC), edge_id=self.edge_id, epoch=1, seq=self.seq(),
                    intersection_id=iid, mode=self.mode.get(iid, "central"), plan=1,
                    cycle_timer_s=3.0, signal=["G", "R"],
                    det_count=[int(v) - b for v, b in zip(counters, before, strict=True)], det_occupancy_pct=[12.5, 7.5],
                    det_fault=self.faults.get(iid, [False, False]))
                self.client.publish(c.telemetry_topic(iid), c.encode(t), qos=0)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        command = c.decode(message.topic, message.payload).payload
        assert isinstance(command, c.TrafficCommand)
        with self._lock:
            self.commands.append(command)
        policy = self.policy.get(command.intersection_id, "apply")
        if policy == "silent":
            return
        answers = [("accepted", ""), ("applied", "")] if policy == "apply" else [
            ("rejected", "splits under the controller's minimum")]
        for status, reason in answers:
            ack = c.CommandAck(ts=datetime.now(UTC), edge_id=self.edge_id, epoch=1, seq=self.seq(),
                               cmd_id=command.cmd_id, target_id=command.intersection_id,
                               status=status, reason=reason)
            client.publish(c.command_ack_topic("traffic", command.intersection_id), c.encode(ack), qos=1)

    def commands_for(self, iid: str, kind: type | None = None) -> list[c.TrafficCommand]:
        with self._lock:
            return [x for x in self.commands if x.intersection_id == iid
                    and (kind is None or isinstance(x.body, kind))]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        # Its state was never retained, so nothing is left to clear on a shared broker (an
        # empty retained message would reach every control room listening, as invalid JSON).
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Setup:
    room: ControlRoom
    edge: Edge
    ids: list[str]
    pg_url: str
    settings: ControlRoomSettings

    def restart(self) -> None:
        """Stop the control room and start a new one on the same database and layout."""
        self.room.stop()
        self.room = ControlRoom(self.settings, DatabaseSettings(), self.pg_url, city="Kota Uji",
                                timezone="Asia/Makassar")
        self.room.start()
        wait_for(self.room.link.connected.is_set, what="control room connected again")

    def api(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(f"{self.room.url}api/{path}", timeout=5, **kw)

    def post(self, path: str, body: dict[str, Any], key: str | None = OPERATOR_KEY) -> httpx.Response:
        headers = {"X-API-Key": key} if key is not None else {}
        return httpx.post(f"{self.room.url}api/{path}", json=body, headers=headers, timeout=10)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg_url) as conn:
            return conn.execute(sql, params).fetchall()

    def open_alarms(self, iid: str) -> set[tuple[str, str]]:
        return {(a["code"], a["subject"]) for a in self.api(f"alarms?intersection={iid}").json()}


@pytest.fixture
def make_setup(mqtt_url: str, pg_url: str, tmp_path: Path) -> Iterator[Callable[..., Setup]]:
    made: list[Setup] = []

    def make(n: int = 2, state_interval_s: float = 10.0, **traffic: Any) -> Setup:
        tag = uuid.uuid4().hex[:6]
        ids = [f"T{tag}-{k + 1}" for k in range(n)]
        path = tmp_path / "city.json"
        path.write_text(json.dumps(layout_for(ids)), encoding="utf-8")
        migrate(pg_url)
        settings = ControlRoomSettings(
            mqtt=c.MqttEndpoint(url=mqtt_url, keepalive_s=5), client_id=f"cr-{tag}", http_port=0,
            state_interval_s=state_interval_s,
            ingest={"flush_interval_ms": 20},
            traffic={"layout": path, "plan_interval_s": 0.4, "refresh_s": 30, "tick_s": 0.05,
                     "ack_timeout_s": 0.3, "max_retries": 1, "stale_after_s": 1.0,
                     "command_ttl_s": 10, "ds_alarm_cycles": 2, "win_back_s": 1.0,
                     **traffic},
            api_keys=[{"user": "budi", "role": "operator", "key": OPERATOR_KEY},
                      {"user": "sari", "role": "viewer", "key": VIEWER_KEY},
                      {"user": "ani", "role": "supervisor", "key": SUPERVISOR_KEY}])
        room = ControlRoom(settings, DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Makassar")
        room.start()
        wait_for(room.link.connected.is_set, what="control room connected")
        edge = Edge(mqtt_url, f"edge-{tag}", ids)
        setup = Setup(room, edge, ids, pg_url, settings)
        made.append(setup)
        return setup

    yield make
    for s in made:
        s.edge.close()
        s.room.stop()


@BACKEND_PAIRS
def test_telemetry_becomes_plans_that_the_edge_applies(make_setup: Callable[..., Setup]) -> None:
    s = make_setup()
    a, b = s.ids
    first = wait_for(lambda: s.edge.commands_for(a, c.PlanBody), what="a plan for the first intersection")[0]
    wait_for(lambda: s.edge.commands_for(b, c.PlanBody), what="a plan for the second intersection")
    assert first.issuer == "controlroom" and first.expires_at > first.ts
    body = first.body
    assert isinstance(body, c.PlanBody) and len(body.splits_s) == 2
    assert abs(sum(body.splits_s) - body.cycle_s) < 1e-6 and 40 <= body.cycle_s <= 80
    assert all(split >= 7 + 3 + 1 for split in body.splits_s)

    wait_for(lambda: s.rows("SELECT status FROM traffic_command WHERE cmd_id = %s", first.cmd_id)
             == [("applied",)], what="the command's status moved to applied")
    plans = s.rows("SELECT source, cycle_s, splits_s FROM traffic_plan WHERE cmd_id = %s", first.cmd_id)
    assert plans == [("adaptive", pytest.approx(body.cycle_s), [pytest.approx(x) for x in body.splits_s])]

    view = s.api(f"intersections/{a}").json()
    assert view["plan"]["source"] == "adaptive" and view["in_layout"] is True
    assert view["live"]["online"] is True and view["live"]["signal"] == ["G", "R"]
    assert view["live"]["mode"] == "central" and view["live"]["det_fault"] == [False, False]
    assert view["computed"]["cycle_s"] > 0 and len(view["computed"]["ds"]) == 2
    last = view["last_command"]
    assert last["source"] == "adaptive" and last["kind"] == "plan"
    wait_for(lambda: [x["status"] for x in s.api(f"intersections/{a}").json()["last_command"]["acks"]],
             what="acks listed")
    health = s.api("health").json()["traffic"]
    assert health["running"] and health["plan_steps"] >= 1 and health["acks"] >= 2

    # A plan that did not change is not sent again before refresh_s.
    wait_for(lambda: s.api("health").json()["traffic"]["not_sent"].get("unchanged"),
             what="an unchanged plan held back")


@EMBEDDED_ONLY
def test_control_room_heartbeat_stops_when_its_control_loop_stops(
        make_setup: Callable[..., Setup], mqtt_url: str) -> None:
    s = make_setup(n=1, state_interval_s=0.1)
    got: list[c.ControlRoomState] = []
    endpoint = c.MqttEndpoint(url=mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:6]}")
    client.on_message = lambda cl, u, m: got.append(c.decode(m.topic, m.payload).payload) if m.payload else None
    client.connect(endpoint.host, endpoint.port)
    client.subscribe(c.controlroom_state_topic(), 1)
    client.loop_start()
    try:
        wait_for(lambda: sum(x.status == "online" and x.epoch == s.room.link.epoch for x in got) >= 4,
                 what="the online state, re-published")
        assert s.room.link.heartbeats >= 3
        # A control loop that stops (hangs, dies) must fall silent, so edges let their
        # controllers' watchdogs lapse to the local plans.
        assert s.room.traffic is not None
        s.room.traffic.stop()
        time.sleep(0.5)
        heard = len(got)
        time.sleep(0.6)
        assert len(got) == heard
    finally:
        client.disconnect()
        client.loop_stop()


@BACKEND_PAIRS
def test_rejected_and_unanswered_commands_raise_alarms_that_clear(make_setup: Callable[..., Setup]) -> None:
    s = make_setup(reject_alarm_after=2)
    a, b = s.ids
    s.edge.policy.update({a: "reject", b: "silent"})
    # a rejects every plan; the service keeps trying each plan step and raises the alarm at 2
    wait_for(lambda: ("command_rejected", "") in s.open_alarms(a), what="command_rejected alarm")
    assert len(s.edge.commands_for(a, c.PlanBody)) >= 2
    rejected = s.rows("SELECT count(*) FROM traffic_command WHERE intersection_id = %s AND status = 'rejected'", a)
    assert rejected[0][0] >= 2
    # b never answers: the same command is sent again (max_retries 1), then it is unanswered
    wait_for(lambda: ("command_unanswered", "") in s.open_alarms(b), what="command_unanswered alarm")
    first = s.edge.commands_for(b)[0]
    assert [x.cmd_id for x in s.edge.commands_for(b)].count(first.cmd_id) == 2
    assert s.rows("SELECT status, attempts FROM traffic_command WHERE cmd_id = %s", first.cmd_id) == [
        ("unanswered", 2)]
    alarm = next(x for x in s.api(f"alarms?intersection={a}").json() if x["code"] == "command_rejected")
    assert alarm["severity"] == "warning" and "minimum" in alarm["text"] and alarm["cleared_at"] is None

    # Both edges behave again: the next applied command clears the alarms, kept as history.
    s.edge.policy.update({a: "apply", b: "apply"})
    wait_for(lambda: not {"command_rejected", "command_unanswered"} & {
        code for iid in s.ids for code, _ in s.open_alarms(iid)}, what="alarms cleared")
    history = s.api(f"alarms?state=all&intersection={a}").json()
    assert any(x["code"] == "command_rejected" and x["cleared_at"] is not None for x in history)


@EMBEDDED_ONLY
def test_street_alarms_raise_and_clear(make_setup: Callable[..., Setup]) -> None:
    s = make_setup()
    a, b = s.ids
    wait_for(lambda: s.edge.commands_for(a, c.PlanBody), what="adaptive control running")
    s.edge.faults[a] = [False, True]
    s.edge.mode[b] = "local_fixed"
    wait_for(lambda: ("detector_fault", "1") in s.open_alarms(a), what="detector fault alarm")
    wait_for(lambda: ("local_fallback", "") in s.open_alarms(b), what="local fallback alarm")
    # A controller in local fallback is commanded back to the adaptive plan.
    sent_before = len(s.edge.commands_for(b, c.PlanBody))
    wait_for(lambda: len(s.edge.commands_for(b, c.PlanBody)) > sent_before + 1, what="plans resent")
    # …one at a time, win_back_s (1 s) apart, not on every 0.4 s plan step (a flood that
    # swamps the edges when many controllers wait for their safe point at once).
    counted = len(s.edge.commands_for(b, c.PlanBody))
    time.sleep(3.0)
    assert len(s.edge.commands_for(b, c.PlanBody)) - counted <= 4

    s.edge.faults[a] = [False, False]
    s.edge.mode[b] = "central"
    wait_for(lambda: not s.open_alarms(a) and not s.open_alarms(b), what="alarms cleared")

    # No telemetry: the controller is offline, and nothing is sent to it.
    s.edge.silent.add(a)
    wait_for(lambda: ("controller_offline", "") in s.open_alarms(a), what="controller offline alarm")
    view = s.api(f"intersections/{a}").json()
    assert view["live"]["online"] is False and view["live"]["signal"] is None
    assert view["plan"]["source"] == "unknown"
    sent = len(s.edge.commands_for(a))
    # "Hold the current green" needs a green to hold: refused, nothing stored or sent.
    refused = s.post(f"intersections/{a}/override", {"action": "hold", "duration_s": 60})
    assert refused.status_code == 409 and "name the phase" in refused.json()["detail"]
    assert s.rows("SELECT count(*) FROM traffic_override") == [(0,)]
    time.sleep(1.0)
    assert len(s.edge.commands_for(a)) == sent
    s.edge.silent.discard(a)
    wait_for(lambda: not s.open_alarms(a), what="controller back")

    # The edge goes offline (its will): one root-cause alarm per intersection, not two.
    s.edge.state("offline")
    wait_for(lambda: ("edge_offline", s.edge.edge_id) in s.open_alarms(b), what="edge offline alarm")
    assert ("controller_offline", "") not in s.open_alarms(b)
    alarm = next(x for x in s.api("alarms").json() if x["code"] == "edge_offline")
    assert alarm["severity"] == "critical"


@EMBEDDED_ONLY
def test_a_controller_still_on_its_local_plan_at_start_is_not_a_fallback(
        make_setup: Callable[..., Setup]) -> None:
    s = make_setup(n=1)
    (a,) = s.ids
    s.edge.mode[a] = "local_fixed"  # as controllers boot, until the first plan's safe point
    wait_for(lambda: len(s.edge.commands_for(a, c.PlanBody)) >= 3, what="plans sent to win it")
    assert ("local_fallback", "") not in s.open_alarms(a)
    s.edge.mode[a] = "central"
    wait_for(lambda: s.api(f"intersections/{a}").json()["plan"]["source"] == "adaptive",
             what="central on the adaptive plan")
    s.edge.mode[a] = "local_fixed"  # now it fell back (watchdog, cabinet switch)
    wait_for(lambda: ("local_fallback", "") in s.open_alarms(a), what="fallback alarm")
    assert s.api(f"intersections/{a}").json()["plan"]["source"] == "local_fallback"


@EMBEDDED_ONLY
def test_saturation_for_several_plan_steps_raises_an_alarm(make_setup: Callable[..., Setup]) -> None:
    s = make_setup(n=1, plan_interval_s=1.0, ds_alarm_cycles=2)
    (a,) = s.ids
    s.edge.rate_veh_s[a] = 0.6  # 2,160 veh/h on a movement with ~900 pcu/h of capacity
    wait_for(lambda: ("saturation", "") in s.open_alarms(a), timeout_s=15, what="saturation alarm")
    view = s.api(f"intersections/{a}").json()
    assert view["computed"]["ds_max"] > 0.95
    s.edge.rate_veh_s[a] = 0.0
    wait_for(lambda: ("saturation", "") not in s.open_alarms(a), timeout_s=15, what="saturation cleared")


@EMBEDDED_ONLY
def test_control_goes_on_through_a_database_outage_and_nothing_is_lost(
        make_setup: Callable[..., Setup], pg_server: str) -> None:
    s = make_setup(n=1, refresh_s=0.4)  # a command every plan step
    (a,) = s.ids
    wait_for(lambda: s.edge.commands_for(a, c.PlanBody), what="adaptive plans")
    dbname = psycopg.conninfo.conninfo_to_dict(s.pg_url)["dbname"]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                      (dbname,))
        try:
            sent_before = len(s.edge.commands_for(a, c.PlanBody))
            wait_for(lambda: len(s.edge.commands_for(a, c.PlanBody)) >= sent_before + 3,
                     what="plans sent while the database is down")
            assert s.room.link.connected.is_set() and s.room.traffic is not None
            assert s.room.traffic.alive(1.0)
            during = [x.cmd_id for x in s.edge.commands_for(a, c.PlanBody)[sent_before:]]
        finally:
            admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
    # Back: every command sent meanwhile is stored, with its acks.
    wait_for(lambda: s.rows("SELECT count(*) FROM traffic_command WHERE cmd_id = ANY(%s) "
                            "AND status = 'applied'", during) == [(len(during),)],
             timeout_s=60, what="commands of the outage stored")
    assert not [x for x in s.api(f"alarms?state=all&intersection={a}").json()
                if x["code"] == "controller_offline"]
