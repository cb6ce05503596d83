"""The camera API against a real PostgreSQL: reads are open; PTZ and snapshot requests need a
role that may move cameras (401/403, refusals audited), are checked (404/409/422/429) before
anything is stored or sent, and otherwise are audited, stored and published as a contract
`CctvCommand` whose acks the dashboard can poll."""

from __future__ import annotations

import base64
import queue
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from controlroom.app import ControlRoom
from controlroom.settings import ApiKey, ControlRoomSettings, DatabaseSettings
from controlroom.storage.migrate import migrate
from controlroom.traffic.access import KeyRing
from controlroom.web.api import create_api
from edge import contract as c
from tests.controlroom.test_cctv_service import JPEG, World
from tests.controlroom.test_cctv_service import world as world  # the fixture
from tests.controlroom.test_controlroom import wait_for

# The store's round trips run on both servers in test_cctv_service; the API on the embedded one.
pytestmark = pytest.mark.parametrize("pg_server", ["embedded"], indirect=True)

OPERATOR, VIEWER, ADMIN = "kunci-operator-0123456789", "kunci-viewer-0123456789", "kunci-admin-0123456789"


@pytest.fixture
def api(world: World) -> Iterator[tuple[TestClient, World]]:
    w = world
    w.now = datetime.now(UTC)
    w.birth(cameras=("cam-1", "cam-fixed", "cam-silent"))
    w.service.write([w.status(), w.status("cam-fixed", ptz=False, position=None, presets=[],
                                          name="Pasar")])
    keys = KeyRing([ApiKey(user="budi", role="operator", key=OPERATOR),
                    ApiKey(user="sari", role="viewer", key=VIEWER),
                    ApiKey(user="dewi", role="admin", key=ADMIN)])
    app = create_api(w.store, dict, city="Kota Uji", timezone="Asia/Jakarta", stale_after_s=5,
                     keys=keys, cctv=w.service, cctv_store=w.cctv_store)
    with TestClient(app) as client:
        yield client, w


def ptz(client: TestClient, body: dict[str, Any], cam: str = "cam-1", key: str | None = OPERATOR,
        **params: Any) -> Any:
    headers = {"X-API-Key": key} if key is not None else {}
    return client.post(f"/api/cameras/{cam}/ptz", json=body, headers=headers, params=params)


def audit(w: World) -> list[tuple]:
    return w.rows("SELECT user_name, role, action, target, outcome, before, after, detail "
                  "FROM audit_log ORDER BY id")


def test_commands_need_a_role_that_may_move_cameras(api) -> None:
    client, w = api
    move = {"action": "move", "pan": 0.5}
    assert ptz(client, move, key=None).status_code == 401
    assert ptz(client, move, key="bukan-kunci-yang-dikenal").status_code == 401
    refused = ptz(client, move, key=VIEWER)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    snap = client.post("/api/cameras/cam-1/snapshot", headers={"X-API-Key": VIEWER})
    assert snap.status_code == 403
    assert [r[:5] for r in audit(w)] == [("sari", "viewer", "ptz", "cam-1", "denied"),
                                         ("sari", "viewer", "snapshot_request", "cam-1", "denied")]
    assert w.published == [] and w.rows("SELECT count(*) FROM cctv_command") == [(0,)]


COMMANDS: list[tuple[dict[str, Any], c.CctvBody]] = [
    ({"action": "move", "pan": -0.4, "zoom": 0.2, "timeout_s": 3},
     c.PtzMoveBody(pan=-0.4, zoom=0.2, timeout_s=3)),
    ({"action": "stop"}, c.PtzStopBody()),
    ({"action": "goto", "pan": 0.25, "tilt": -0.5, "zoom": 1},
     c.PtzGotoBody(position=c.PtzPosition(pan=0.25, tilt=-0.5, zoom=1))),
    ({"action": "preset_goto", "preset_token": "2"}, c.PresetGotoBody(preset_token="2")),
    ({"action": "preset_set", "name": "  Antrean barat "}, c.PresetSetBody(name="Antrean barat")),
]


def test_a_command_is_audited_stored_and_published_as_the_contract_says(api) -> None:
    client, w = api
    for k, (request_body, body) in enumerate(COMMANDS):
        answer = ptz(client, {**request_body, "reason": "kecelakaan di lajur 2"})
        assert answer.status_code == 200, answer.text
        cmd_id = answer.json()["cmd_id"]
        assert answer.json()["status"] == "sent"
        assert len(w.published) == k + 1
        topic, payload, qos, retain = w.published[-1]
        message = c.decode(topic, payload)
        assert message.kind is c.Kind.CCTV_COMMAND and (qos, retain) == (1, False)
        command = message.payload
        assert (command.cmd_id, command.issuer, command.camera_id, command.body) == (
            cmd_id, "budi", "cam-1", body)
        assert timedelta(seconds=29) < command.expires_at - command.ts <= timedelta(seconds=30)
        user, role, action, target, outcome, before, after, detail = audit(w)[-1]
        assert (user, role, action, target, outcome) == (
            "budi", "operator", "ptz_" + request_body["action"], "cam-1", "done")
        assert before == {"position": {"pan": 0.1, "tilt": -0.2, "zoom": 0.0}}
        assert after == {**body.model_dump(mode="json"), "cmd_id": cmd_id}
        assert detail == "kecelakaan di lajur 2"
        got = client.get(f"/api/cameras/cam-1/commands/{cmd_id}").json()
        assert (got["status"], got["kind"], got["user_name"]) == ("sent", body.type, "budi")
    assert len(audit(w)) == len(COMMANDS)


def test_the_dashboard_polls_or_waits_for_the_ack(api) -> None:
    client, w = api
    cmd_id = ptz(client, {"action": "stop"}).json()["cmd_id"]
    timer = threading.Timer(0.3, lambda: w.service.write([], acks=[w.ack(cmd_id, "applied")]))
    timer.start()
    waited = client.get(f"/api/cameras/cam-1/commands/{cmd_id}", params={"wait_s": 4})
    timer.join()
    assert waited.json()["status"] == "applied"
    assert client.get(f"/api/cameras/cam-fixed/commands/{cmd_id}").status_code == 404
    assert client.get("/api/cameras/cam-1/commands/nope-nope-nope").status_code == 404
    assert client.get(f"/api/cameras/cam-1/commands/{cmd_id}",
                      params={"wait_s": 6}).status_code == 422
    # a fresh snapshot, waited for: the edge rejects it and says why
    threading.Timer(0.3, lambda: w.service.write([], acks=[
        w.ack(w.commands()[-1].cmd_id, "rejected", cam="cam-fixed", reason="camera busy")])).start()
    snap = client.post("/api/cameras/cam-fixed/snapshot", json={"reason": "cek"},
                       headers={"X-API-Key": ADMIN}, params={"wait_s": 4})
    assert snap.status_code == 200, snap.text
    assert (snap.json()["status"], snap.json()["reason"]) == ("rejected", "camera busy")
    assert w.commands()[-1].body == c.SnapshotBody() and w.commands()[-1].issuer == "dewi"


BAD: list[tuple[dict[str, Any], str]] = [
    ({"action": "move", "pan": 1.5}, "less than or equal to 1"),
    ({"action": "move"}, "needs a pan, tilt or zoom speed"),
    ({"action": "move", "pan": 0.2, "timeout_s": 60}, "timeout_s"),
    ({"action": "move", "pan": 0.2, "preset_token": "1"}, "move takes no preset_token"),
    ({"action": "goto", "pan": 0.1, "tilt": 0.1}, "missing: zoom"),
    ({"action": "goto", "pan": 0.1, "tilt": 0.1, "zoom": -0.5}, "greater than or equal to 0"),
    ({"action": "preset_goto"}, "needs preset_token"),
    ({"action": "preset_goto", "preset_token": "9"}, "no preset '9'"),
    ({"action": "preset_goto", "preset_token": "a/b"}, "preset_token"),
    ({"action": "preset_set", "name": "\x07"}, "name"),
    ({"action": "stop", "pan": 0}, "stop takes no pan"),
    ({"action": "dance"}, ""),
    ({"action": "stop", "speed": 3}, ""),
]
def test_bad_values_are_422_and_change_nothing(api) -> None:
    client, w = api
    for body, says in BAD:
        answer = ptz(client, body)
        assert answer.status_code == 422, (body, answer.text)
        assert says in str(answer.json()["detail"]), body
    assert ptz(client, {"action": "stop"}, wait_s=5.5).status_code == 422
    assert w.published == [] and audit(w) == []
    assert w.rows("SELECT count(*) FROM cctv_command") == [(0,)]


def test_unknown_unable_or_unreachable_cameras_are_refused(api) -> None:
    client, w = api
    assert ptz(client, {"action": "stop"}, cam="cam-nope").status_code == 404
    no_ptz = ptz(client, {"action": "stop"}, cam="cam-fixed")
    assert no_ptz.status_code == 409 and "no PTZ" in no_ptz.json()["detail"]
    silent = client.post("/api/cameras/cam-silent/snapshot", headers={"X-API-Key": OPERATOR})
    assert silent.status_code == 409 and "never reported" in silent.json()["detail"]
    w.service.write([w.status(dt_s=1, reachable=False, error="ONVIF timed out")])
    down = ptz(client, {"action": "stop"})
    assert down.status_code == 409 and "ONVIF timed out" in down.json()["detail"]
    w.service.write([w.status(dt_s=2)])
    assert ptz(client, {"action": "stop"}).status_code == 200
    w.birth(status="offline")
    gone = ptz(client, {"action": "stop"})
    assert gone.status_code == 409 and "edge is offline" in gone.json()["detail"]
    assert [r[2] for r in audit(w)] == ["ptz_stop"] and len(w.published) == 1


def test_commands_to_one_camera_are_rate_limited(api) -> None:
    client, w = api
    answers = [ptz(client, {"action": "move", "tilt": 0.1}).status_code for _ in range(11)]
    assert answers == [200] * 10 + [429]
    # another camera has its own budget (a snapshot needs no PTZ)
    assert client.post("/api/cameras/cam-fixed/snapshot",
                       headers={"X-API-Key": OPERATOR}).status_code == 200
    assert len(w.published) == 11 and len(audit(w)) == 11


def test_the_registry_alarms_and_snapshots_read_openly(api) -> None:
    client, w = api
    w.service.write([w.status(dt_s=1, tampers=["blackout"], tamper="blackout")],
                    snapshots=[w.snapshot(dt_s=1)])
    w.service.check_alarms()
    cameras = {x["camera_id"]: x for x in client.get("/api/cameras").json()}
    assert {k: (v["state"], v["online"], v["open_alarms"]) for k, v in cameras.items()} == {
        "cam-1": ("online", True, 1), "cam-fixed": ("online", True, 0),
        "cam-silent": ("unknown", False, 0)}
    assert cameras["cam-1"]["tampers"] == ["blackout"] and cameras["cam-1"]["ptz"] is True

    detail = client.get("/api/cameras/cam-1").json()
    assert [p["token"] for p in detail["presets"]] == ["1", "2"]
    assert detail["position"] == {"pan": 0.1, "tilt": -0.2, "zoom": 0.0}
    assert [a["code"] for a in detail["alarms"]] == ["tamper_blackout"]
    assert "gelap" in detail["alarms"][0]["text"] and "blacked out" in detail["alarms"][0]["text"]
    assert detail["snapshot"]["url"] == "/api/cameras/cam-1/snapshot.jpg"
    assert client.get("/api/cameras/cam-nope").status_code == 404

    # a picture may show faces and number plates: any API key, but a key
    assert client.get("/api/cameras/cam-1/snapshot.jpg").status_code == 401
    jpg = client.get("/api/cameras/cam-1/snapshot.jpg", headers={"X-API-Key": VIEWER})
    assert jpg.status_code == 200 and jpg.content == JPEG
    assert jpg.headers["content-type"] == "image/jpeg"
    assert datetime.fromisoformat(jpg.headers["x-snapshot-taken-at"]) == w.now + timedelta(seconds=1)
    assert client.get("/api/cameras/cam-fixed/snapshot.jpg",
                      headers={"X-API-Key": VIEWER}).status_code == 404

    w.service.write([w.status(dt_s=2)])
    w.service.check_alarms()
    assert client.get("/api/cctv/alarms").json() == []
    history = client.get("/api/cctv/alarms", params={"state": "all", "camera": "cam-1"}).json()
    assert [(a["code"], a["cleared_at"] is not None) for a in history] == [("tamper_blackout", True)]
    assert client.get("/api/cctv/alarms", params={"state": "nope"}).status_code == 422


@pytest.mark.parametrize("mqtt_url", ["embedded"], indirect=True)
def test_end_to_end_through_the_broker(mqtt_url: str, pg_url: str) -> None:
    """The real control room: a camera edge over MQTT announces, reports and answers; the
    operator's move reaches it as a contract command and its acks come back."""
    migrate(pg_url)
    settings = ControlRoomSettings(mqtt=c.MqttEndpoint(url=mqtt_url, keepalive_s=5),
                                   client_id=f"cr-cctv-{uuid.uuid4().hex[:8]}", http_port=0,
                                   ingest={"flush_interval_ms": 20}, cctv={"alarm_interval_s": 0.2},
                                   api_keys=[{"user": "budi", "role": "operator", "key": OPERATOR}])
    room = ControlRoom(settings, DatabaseSettings(), pg_url, city="Kota Uji", timezone="Asia/Jakarta")
    room.start()
    endpoint = c.MqttEndpoint(url=mqtt_url)
    cam, edge = f"cam-{uuid.uuid4().hex[:8]}", f"edge-{uuid.uuid4().hex[:8]}"
    commands: queue.Queue[c.CctvCommand] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{edge}-test")
    client.on_message = lambda _c, _u, m: commands.put(c.decode(m.topic, m.payload).payload)
    seq = iter(range(1, 1000))

    def send(payload: c.Payload, topic: str) -> None:
        client.publish(topic, c.encode(payload), qos=1).wait_for_publish(5)

    def stamp() -> dict[str, Any]:
        return {"ts": datetime.now(UTC), "edge_id": edge, "epoch": 1, "seq": next(seq)}

    try:
        wait_for(room.link.connected.is_set, what="control room connected")
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        client.subscribe(c.cctv_command_topic(cam), qos=1)[0]
        send(c.EdgeState(**stamp(), status="online", conn=1,
                         inventory=(c.DeviceInfo(device_id=cam, kind="camera"),)),
             c.edge_state_topic(edge))
        status = c.CctvStatus(**stamp(), camera_id=cam, reachable=True, ptz=True, fps=5,
                              tampers=("frozen",), tamper="frozen",
                              position=c.PtzPosition(pan=0, tilt=0, zoom=0))
        send(status, c.cctv_status_topic(cam))
        url = room.url + "api/"
        wait_for(lambda: httpx.get(url + "cctv/alarms", params={"camera": cam}).json(),
                 what="frozen picture alarm")
        moved = httpx.post(f"{url}cameras/{cam}/ptz", json={"action": "move", "pan": 0.3},
                           headers={"X-API-Key": OPERATOR})
        assert moved.status_code == 200, moved.text
        command = commands.get(timeout=5)
        assert command.cmd_id == moved.json()["cmd_id"] and command.body == c.PtzMoveBody(pan=0.3)
        for answer in ("accepted", "applied"):
            send(c.CommandAck(**stamp(), cmd_id=command.cmd_id, target_id=cam, status=answer),
                 c.command_ack_topic("cctv", cam))
        got = httpx.get(f"{url}cameras/{cam}/commands/{command.cmd_id}", params={"wait_s": 5},
                        timeout=10).json()
        assert got["status"] == "applied"
        send(c.CctvSnapshot(**stamp(), camera_id=cam, jpeg_b64=base64.b64encode(JPEG).decode()),
             c.cctv_snapshot_topic(cam))
        wait_for(lambda: httpx.get(f"{url}cameras/{cam}/snapshot.jpg",
                                   headers={"X-API-Key": OPERATOR}).status_code == 200,
                 what="snapshot stored")
        send(status.model_copy(update={**stamp(), "tampers": (), "tamper": "none"}),
             c.cctv_status_topic(cam))
        wait_for(lambda: httpx.get(url + "cctv/alarms", params={"camera": cam}).json() == [],
                 what="alarm cleared")
        health = httpx.get(url + "health").json()
        assert health["cctv"]["acks_applied"] == 2 and health["ingest"]["rejected_total"] == 0
    finally:
        client.loop_stop()
        client.disconnect()
        room.stop()
