"""Operator overrides through the API: roles (401/403), audit rows with before/after,
precedence over the core until released or expired; and the shapes of the read endpoints.
The control room runs for real; the test is the edge over MQTT (see test_traffic_service)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from controlroom.app import ControlRoom
from controlroom.settings import ControlRoomSettings, DatabaseSettings
from controlroom.storage.migrate import migrate
from controlroom.traffic.layout import LayoutError
from edge import contract as c
from tests.controlroom import test_traffic_service as world
from tests.controlroom.test_traffic_service import (
    OPERATOR_KEY,
    SUPERVISOR_KEY,
    VIEWER_KEY,
    Setup,
    wait_for,
)

make_setup = world.make_setup  # the same fixture: a control room with a layout and a fake edge

pytestmark = world.EMBEDDED_ONLY


def audit(s: Setup) -> list[tuple]:
    return s.rows("SELECT user_name, role, action, target, outcome, before, after, detail "
                  "FROM audit_log ORDER BY id")


def test_roles_are_checked_and_refusals_audited(make_setup: Callable[..., Setup]) -> None:
    s = make_setup(n=1)
    (a,) = s.ids
    body = {"action": "hold", "phase": 1, "reason": "test"}
    assert s.post(f"intersections/{a}/override", body, key=None).status_code == 401
    assert s.post(f"intersections/{a}/override", body, key="not-a-key-at-all-xxxx").status_code == 401
    refused = s.post(f"intersections/{a}/override", body, key=VIEWER_KEY)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert s.post(f"intersections/{a}/release", {}, key=VIEWER_KEY).status_code == 403
    rows = audit(s)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("sari", "viewer", "override", a, "denied"), ("sari", "viewer", "override_release", a, "denied")]
    time.sleep(0.3)
    assert not s.edge.commands_for(a, c.OverrideBody)
    assert s.rows("SELECT count(*) FROM traffic_override") == [(0,)]


def test_override_takes_precedence_until_released(make_setup: Callable[..., Setup]) -> None:
    s = make_setup(refresh_s=0.4)  # every plan step sends, so a silence means precedence
    a, b = s.ids
    wait_for(lambda: s.edge.commands_for(a, c.PlanBody), what="adaptive plans")

    assert s.post(f"intersections/{a}/override", {"action": "force"}).status_code == 422
    assert s.post(f"intersections/{a}/override", {"action": "force", "phase": 3}).status_code == 422
    assert s.post("intersections/NOPE/override", {"action": "hold"}).status_code == 404
    assert s.post(f"intersections/{a}/release", {}).status_code == 409

    started = s.post(f"intersections/{a}/override",
                     {"action": "force", "phase": 2, "duration_s": 60, "reason": "ambulance"})
    assert started.status_code == 200, started.text
    answer = started.json()
    assert answer["override"]["user"] == "budi" and answer["override"]["action"] == "force"
    command = wait_for(lambda: s.edge.commands_for(a, c.OverrideBody), what="override command")[0]
    assert command.cmd_id == answer["cmd_id"] and command.issuer == "controlroom"
    assert command.body == c.OverrideBody(action="force", phase=2)
    wait_for(lambda: s.rows("SELECT status FROM traffic_command WHERE cmd_id = %s", command.cmd_id)
             == [("applied",)], what="override applied")

    view = s.api(f"intersections/{a}").json()
    assert view["plan"]["source"] == "operator_override"
    assert view["override"]["reason"] == "ambulance" and view["override"]["phase"] == 2
    assert view["last_command"]["kind"] == "override" and view["last_command"]["source"] == "operator"
    plans_a = len(s.edge.commands_for(a, c.PlanBody))
    plans_b = len(s.edge.commands_for(b, c.PlanBody))
    time.sleep(1.3)
    assert len(s.edge.commands_for(a, c.PlanBody)) == plans_a  # the core's plans are held back
    assert len(s.edge.commands_for(b, c.PlanBody)) > plans_b  # the neighbour is still controlled

    released = s.post(f"intersections/{a}/release", {"reason": "ambulance passed"})
    assert released.status_code == 200, released.text
    wait_for(lambda: any(x.body == c.OverrideBody(action="release")
                         for x in s.edge.commands_for(a, c.OverrideBody)), what="release command")
    wait_for(lambda: len(s.edge.commands_for(a, c.PlanBody)) > plans_a, what="adaptive plans resume")
    assert s.api(f"intersections/{a}").json()["override"] is None
    assert s.post(f"intersections/{a}/release", {}).status_code == 409

    rows = audit(s)
    assert [(r[0], r[2], r[4]) for r in rows] == [("budi", "override_force", "done"),
                                                  ("budi", "override_release", "done")]
    before, after = rows[0][5], rows[0][6]
    assert before["override"] is None and before["source"] == "adaptive"
    assert after["override"]["phase"] == 2 and after["cmd_id"] == command.cmd_id
    assert rows[1][5]["override"]["action"] == "force" and rows[1][6]["override"] is None
    assert rows[1][7] == "ambulance passed"
    ended = s.rows("SELECT action, user_name, end_reason, ended_by FROM traffic_override")
    assert ended == [("force", "budi", "released", "budi")]
    assert s.api("audit", headers={"X-API-Key": OPERATOR_KEY}).status_code == 403
    log = s.api("audit", headers={"X-API-Key": SUPERVISOR_KEY}).json()
    assert [x["action"] for x in log] == ["override_release", "override_force"]
    assert log[1]["after"]["override"]["phase"] == 2 and log[1]["user_name"] == "budi"


def test_overrides_expire_by_themselves(make_setup: Callable[..., Setup]) -> None:
    s = make_setup(n=1)
    (a,) = s.ids
    wait_for(lambda: s.edge.commands_for(a, c.PlanBody), what="adaptive plans")

    bad = s.post(f"intersections/{a}/plan", {"plan": 7, "cycle_s": 60, "splits_s": [52, 5]})
    assert bad.status_code == 422 and "phase 2" in bad.json()["detail"]
    bad = s.post(f"intersections/{a}/plan", {"plan": 7, "cycle_s": 60, "splits_s": [30, 20, 10]})
    assert bad.status_code == 422 and "phases" in bad.json()["detail"]
    bad = s.post(f"intersections/{a}/plan", {"plan": 7, "cycle_s": 60, "splits_s": [30, 20]})
    assert bad.status_code == 422 and "add up" in bad.json()["detail"]
    assert s.post(f"intersections/{a}/plan", {"plan": 7, "cycle_s": 60, "splits_s": [35, 25],
                                              "colour": "red"}).status_code == 422
    assert s.rows("SELECT count(*) FROM audit_log") == [(0,)]  # refused requests change nothing

    started = s.post(f"intersections/{a}/plan", {"plan": 7, "cycle_s": 60, "offset_s": 5,
                                                 "splits_s": [35, 25], "duration_s": 1.0})
    assert started.status_code == 200, started.text
    operator_plan = wait_for(lambda: [x for x in s.edge.commands_for(a, c.PlanBody) if x.body.plan == 7],
                             what="operator plan sent")[0]
    assert operator_plan.body == c.PlanBody(plan=7, cycle_s=60, offset_s=5, splits_s=(35, 25))
    wait_for(lambda: s.rows("SELECT end_reason, ended_by FROM traffic_override") == [("expired", "system")],
             what="plan override expired")
    wait_for(lambda: s.edge.commands_for(a, c.PlanBody)[-1].body.plan == 1, what="adaptive plan again")
    assert s.rows("SELECT source FROM traffic_plan WHERE cmd_id = %s", operator_plan.cmd_id) == [("operator",)]

    s.post(f"intersections/{a}/override", {"action": "flash", "duration_s": 0.5})
    wait_for(lambda: any(x.body == c.OverrideBody(action="release")
                         for x in s.edge.commands_for(a, c.OverrideBody)), what="release on expiry")
    release = next(x for x in s.edge.commands_for(a, c.OverrideBody) if x.body.action == "release")
    # The command goes out within the tick; its records are stored at the tick's end.
    expected = [("budi", "override_plan"), ("system", "override_expired"),
                ("budi", "override_flash"), ("system", "override_expired")]
    wait_for(lambda: [(r[0], r[2]) for r in audit(s)] == expected, what="audit rows")
    assert s.rows("SELECT source FROM traffic_command WHERE cmd_id = %s", release.cmd_id) == [("system",)]


def test_overrides_and_alarms_survive_a_restart(make_setup: Callable[..., Setup]) -> None:
    s = make_setup(n=1, refresh_s=0.4)
    (a,) = s.ids
    wait_for(lambda: s.edge.commands_for(a, c.PlanBody), what="adaptive plans")
    s.edge.policy[a] = "reject"
    assert s.post(f"intersections/{a}/override", {"action": "hold", "duration_s": 600}).status_code == 200
    # Without a phase the hold names the one green now (the controller holds a named phase).
    wait_for(lambda: s.edge.commands_for(a, c.OverrideBody), what="the hold sent")
    assert s.edge.commands_for(a, c.OverrideBody)[-1].body == c.OverrideBody(action="hold", phase=1)
    # An operator's command rejected raises the alarm at once.
    wait_for(lambda: ("command_rejected", "") in s.open_alarms(a), what="command_rejected alarm")

    s.restart()
    view = s.api(f"intersections/{a}").json()
    assert view["override"]["action"] == "hold" and view["plan"]["source"] == "operator_override"
    plans = len(s.edge.commands_for(a, c.PlanBody))
    time.sleep(1.2)  # several plan steps: the override still holds the core back
    assert len(s.edge.commands_for(a, c.PlanBody)) == plans
    assert ("command_rejected", "") in s.open_alarms(a)
    assert s.rows("SELECT count(*) FROM traffic_alarm WHERE code = 'command_rejected'") == [(1,)]

    s.edge.policy[a] = "apply"
    assert s.post(f"intersections/{a}/release", {}).status_code == 200
    wait_for(lambda: ("command_rejected", "") not in s.open_alarms(a), what="alarm cleared by an applied command")
    wait_for(lambda: len(s.edge.commands_for(a, c.PlanBody)) > plans, what="adaptive plans again")


def test_read_endpoints(make_setup: Callable[..., Setup]) -> None:
    s = make_setup(n=1)
    (a,) = s.ids
    assert s.api("intersections/NOPE").status_code == 404
    assert s.api("alarms?state=bogus").status_code == 422
    # An intersection that reports but is not in the layout is shown, marked as such.
    stray = f"{a}-stray"
    t = c.TrafficTelemetry(ts=datetime.now(UTC), edge_id=s.edge.edge_id, epoch=1, seq=s.edge.seq(),
                           intersection_id=stray, mode="local_fixed", plan=3, signal=["R", "G"],
                           det_count=[1], det_occupancy_pct=[0.0], det_fault=[False])
    s.edge.client.publish(c.telemetry_topic(stray), c.encode(t), qos=1).wait_for_publish(5)
    view = wait_for(lambda: s.api(f"intersections/{stray}").json() if s.api(
        f"intersections/{stray}").status_code == 200 else None, what="stray intersection stored")
    assert view["in_layout"] is False and view["plan"]["source"] == "local_fallback"
    assert view["last_command"] is None and view["stored"]["plan"] == 3

    wait_for(lambda: s.api(f"intersections/{a}").json()["last_command"], what="a command")
    listed = {x["intersection_id"]: x for x in s.api("intersections").json()}
    assert listed[a]["plan_source"] in ("adaptive", "central") and listed[stray]["plan_source"] is None
    view = s.api(f"intersections/{a}").json()
    assert set(view) >= {"intersection_id", "in_layout", "stored", "name", "live", "plan", "computed",
                         "override", "last_command", "alarms"}
    assert set(view["plan"]) == {"source", "sent", "sent_source", "sent_at", "cmd_id"}
    assert view["name"] == f"Simpang {a}"
    alarms = s.api("alarms?state=all&limit=5")
    assert alarms.status_code == 200 and isinstance(alarms.json(), list)


def test_without_a_layout_the_operator_endpoints_say_why(mqtt_url: str, pg_url: str) -> None:
    migrate(pg_url)
    settings = ControlRoomSettings(mqtt=c.MqttEndpoint(url=mqtt_url), client_id="cr-nolayout",
                                   http_port=0,
                                   api_keys=[{"user": "budi", "role": "operator", "key": OPERATOR_KEY}])
    room = ControlRoom(settings, DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Makassar")
    room.start()
    try:
        r = httpx.post(f"{room.url}api/intersections/J1/override", json={"action": "hold"},
                       headers={"X-API-Key": OPERATOR_KEY}, timeout=5)
        assert r.status_code == 503 and "layout" in r.json()["detail"]
        assert httpx.get(f"{room.url}api/health", timeout=5).json()["traffic"] is None
    finally:
        room.stop()


# uvicorn's thread dies of the taken port: that is the failure under test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failed_start_stops_what_it_started(mqtt_url: str, pg_url: str, tmp_path: Path) -> None:
    migrate(pg_url)
    missing = ControlRoomSettings(mqtt=c.MqttEndpoint(url=mqtt_url), client_id="cr-bad", http_port=0,
                                  traffic={"layout": tmp_path / "nowhere.json"})
    room = ControlRoom(missing, DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Makassar")
    with pytest.raises(LayoutError, match="cannot read"):
        room.start()
    assert room.store is None  # nothing was opened
    layout = tmp_path / "city.json"
    layout.write_text(json.dumps(world.layout_for(["J1"])), encoding="utf-8")
    names = ("kota-traffic", "kota-traffic-store", "kota-heartbeat", "kota-ingest")
    before = {t for t in threading.enumerate() if t.name in names}  # other tests' rooms
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = ControlRoomSettings(mqtt=c.MqttEndpoint(url=mqtt_url), client_id="cr-busy",
                                   http_port=taken.getsockname()[1], traffic={"layout": layout})
        room = ControlRoom(busy, DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Makassar")
        with pytest.raises(RuntimeError, match="port"):
            room.start()
    assert room.traffic is not None and not room.traffic.alive(60)
    assert not {t for t in threading.enumerate() if t.name in names and t.is_alive()} - before
