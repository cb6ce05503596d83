"""The alarm board and alarm acknowledgement against a real PostgreSQL, through the API
(TestClient): one list of traffic, camera and attendance machine alarms; acknowledging with a
comment stores who, when and the comment with an audit row (before and after) in one
transaction; refusals — unauthenticated (401), wrong role (403, audited as denied), cookie
without CSRF token (403), unknown alarm (404), already acknowledged (409), malformed request
(422) — change nothing; the reconcile that clears an alarm keeps its acknowledgement."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from controlroom.attendance.store import AlarmCondition as MachineCondition
from controlroom.attendance.store import AttendanceStore
from controlroom.auth.service import Authenticator
from controlroom.auth.store import UserStore
from controlroom.cctv.store import AlarmCondition as CameraCondition
from controlroom.cctv.store import CctvStore
from controlroom.settings import ApiKey, AuthSettings
from controlroom.storage.migrate import migrate
from controlroom.storage.store import AlarmKey, AlarmRecord, Store, TrafficWrites, open_pool
from controlroom.traffic.access import KeyRing
from controlroom.traffic.alarms import alarm_text
from controlroom.web.api import create_api


@pytest.fixture
def pg_server(embedded_pg_server: str) -> str:
    """The embedded server only: nothing here depends on which PostgreSQL it is."""
    return embedded_pg_server


CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}
PASSWORD = "pintu-merah-2026"
USERS = {"budi": "operator", "sari": "supervisor", "tono": "technician", "rina": "bkpsdm"}
KEYS = {"operator": "kunci-operator-0123456789", "admin": "kunci-admin-0123456789",
        "technician": "kunci-teknisi-0123456789", "viewer": "kunci-viewer-0123456789"}
T0 = datetime(2026, 12, 3, 7, 15, tzinfo=UTC)


@dataclass
class World:
    app: FastAPI
    url: str
    store: Store
    cctv: CctvStore
    attendance: AttendanceStore
    ids: dict[str, int]  # kind → id of its open alarm

    def client(self, name: str | None = None) -> TestClient:
        client = TestClient(self.app)
        client.csrf = ""  # type: ignore[attr-defined]
        if name is not None:
            got = client.post("/api/auth/login", json={"name": name, "password": PASSWORD})
            assert got.status_code == 200, got.text
            client.csrf = got.json()["csrf_token"]  # type: ignore[attr-defined]
        return client

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def state(self) -> list[tuple]:
        """Every alarm's ack columns and the operator audit log: what a refusal must not touch
        (besides the one denied row a wrong role leaves)."""
        out: list[tuple] = []
        for table in ("traffic_alarm", "cctv_alarm", "attendance_alarm"):
            out += self.rows(f"SELECT '{table}', id, acked_at, acked_by, acked_role, ack_comment, "
                             f"cleared_at FROM {table} ORDER BY id")
        return out

    def audit(self) -> list[tuple]:
        """The audit log's alarm rows (log-ins are audited too)."""
        return self.rows("SELECT user_name, role, action, target, outcome, before, after, detail "
                         "FROM audit_log WHERE action = 'alarm_ack' ORDER BY id")


def ack(client: TestClient, kind: str, alarm_id: int | str, body: Any = None,
        key: str | None = None, csrf: bool = True, headers: dict[str, str] | None = None) -> Any:
    headers = dict(headers or {})
    if key is not None:
        headers["X-API-Key"] = KEYS[key]
    elif csrf and getattr(client, "csrf", ""):
        headers["X-CSRF-Token"] = client.csrf  # type: ignore[attr-defined]
    if body is None:
        body = {"comment": "Petugas sudah dikirim ke lokasi"}
    return client.post(f"/api/alarms/{kind}/{alarm_id}/ack", json=body, headers=headers)


@pytest.fixture
def world(pg_url: str) -> Iterator[World]:
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 6)
    auth = Authenticator(UserStore(pool), AuthSettings(**CHEAP))
    for name, role in USERS.items():
        auth.add_user(name, role, PASSWORD, actor="test")
    store, cctv, attendance = Store(pool), CctvStore(pool), AttendanceStore(pool)
    # One alarm of each kind, opened the way each service opens them.
    store.write_traffic(TrafficWrites(alarms_opened=[
        AlarmRecord(AlarmKey("edge_offline", "J4", "edge-2"), "critical",
                    alarm_text("edge_offline", edge="edge-2", why=" (lost / link)"), T0, {}),
        # Stored before traffic alarm texts were bilingual: English only.
        AlarmRecord(AlarmKey("detector_fault", "J1", "3"), "warning",
                    "detector 3 reports a fault; the core no longer trusts it", T0, {})]))
    cctv.reconcile_alarms([CameraCondition(
        "tamper_blackout", "cam-J1", "critical",
        "Kamera cam-J1: gambar gelap (kamera tertutup atau tanpa sinyal) / camera cam-J1: "
        "picture blacked out (camera covered or no signal)", {"tamper": "blackout"})],
        T0 + timedelta(minutes=1))
    attendance.reconcile_alarms([MachineCondition(
        "machine_clock_drift", "ZK-001", "warning",
        "Jam mesin ZK-001 selisih +95 s / machine clock off by +95 s", data={"drift_s": 95})],
        T0 + timedelta(minutes=2))
    keys = KeyRing([ApiKey(user=f"{role}-key", role=role, key=key) for role, key in KEYS.items()])
    app = create_api(store, dict, city="Kota Uji", timezone="Asia/Jakarta", stale_after_s=5,
                     keys=keys, attendance=attendance, cctv_store=cctv, auth=auth)
    ids = {"traffic": store.alarms(intersection_id="J4")[0]["id"],
           "camera": cctv.alarms()[0]["id"], "machine": attendance.alarms()[0]["id"]}
    yield World(app, pg_url, store, cctv, attendance, ids)
    pool.close()


# --------------------------------------------------------------------------- the board


def test_the_board_lists_every_kind_in_one_list_with_both_languages(world: World) -> None:
    client = world.client("tono")  # a technician reads the board
    board = client.get("/api/alarms/board")
    assert board.status_code == 200, board.text
    rows = board.json()
    assert [(r["kind"], r["source"], r["code"]) for r in rows] == [
        ("machine", "ZK-001", "machine_clock_drift"),
        ("camera", "cam-J1", "tamper_blackout"),
        ("traffic", "J1", "detector_fault"), ("traffic", "J4", "edge_offline")]
    camera = rows[1]
    assert camera["key"] == f"camera/{world.ids['camera']}" and camera["severity"] == "critical"
    assert camera["text_id"] == "Kamera cam-J1: gambar gelap (kamera tertutup atau tanpa sinyal)"
    assert camera["text_en"] == "camera cam-J1: picture blacked out (camera covered or no signal)"
    assert rows[0]["text_id"].startswith("Jam mesin ZK-001") and rows[0]["text_en"].startswith(
        "machine clock")
    assert rows[3]["text_id"] == "Edge edge-2 tidak terhubung (lost/link)"
    assert rows[3]["text_en"] == "edge edge-2 is offline (lost/link)"
    assert rows[2]["text_id"] is None and rows[2]["text_en"].startswith("detector 3 reports")
    assert all(r["state"] == "open" and r["acked"] is False and r["acked_by"] is None
               for r in rows)
    assert rows[3]["opened_at"] == T0.isoformat()
    # filters
    assert {r["kind"] for r in client.get("/api/alarms/board?kind=traffic").json()} == {"traffic"}
    assert [r["code"] for r in client.get("/api/alarms/board?severity=critical").json()] == [
        "tamper_blackout", "edge_offline"]  # newest first
    assert client.get("/api/alarms/board?acked=true").json() == []
    assert len(client.get("/api/alarms/board?acked=false").json()) == 4
    assert client.get("/api/alarms/board?kind=printer").status_code == 422
    assert client.get("/api/alarms/board?since=2026-12-03T00:00:00").status_code == 422
    late = (T0 + timedelta(minutes=1, seconds=30)).isoformat()
    assert [r["kind"] for r in client.get("/api/alarms/board", params={"until": late}).json()] == [
        "camera", "traffic", "traffic"]


def test_the_board_needs_a_log_in(world: World) -> None:
    assert world.client().get("/api/alarms/board").status_code == 401
    assert world.client().get("/api/alarms/board",
                              headers={"X-API-Key": KEYS["viewer"]}).status_code == 200


# --------------------------------------------------------------------------- acknowledging


def test_an_operator_acknowledges_with_a_comment_stored_and_audited(world: World) -> None:
    client = world.client("budi")
    alarm_id = world.ids["camera"]
    got = ack(client, "camera", alarm_id, {"comment": "  Lensa ditutup terpal, tim menuju  "})
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["key"], body["acked_by"], body["acked_role"], body["ack_comment"]) == (
        f"camera/{alarm_id}", "budi", "operator", "Lensa ditutup terpal, tim menuju")
    acked_at = datetime.fromisoformat(body["acked_at"])
    assert abs((datetime.now(UTC) - acked_at).total_seconds()) < 30
    # the board shows it acknowledged, still open (acknowledging does not clear)
    row = next(r for r in client.get("/api/alarms/board").json() if r["kind"] == "camera")
    assert (row["state"], row["acked"], row["acked_by"], row["ack_comment"]) == (
        "open", True, "budi", "Lensa ditutup terpal, tim menuju")
    [(user, role, action, target, outcome, before, after, detail)] = world.audit()
    assert (user, role, action, target, outcome, detail) == (
        "budi", "operator", "alarm_ack", f"camera/{alarm_id}", "done",
        "Lensa ditutup terpal, tim menuju")
    assert before["acked_by"] is None and before["acked_at"] is None
    assert before["code"] == after["code"] == "tamper_blackout"
    assert after["acked_by"] == "budi" and after["ack_comment"] == "Lensa ditutup terpal, tim menuju"
    assert datetime.fromisoformat(after["acked_at"]) == acked_at


@pytest.mark.parametrize("kind", ["traffic", "machine"])
def test_every_kind_is_acknowledged_by_key_too(world: World, kind: str) -> None:
    got = ack(world.client(), kind, world.ids[kind], key="admin")
    assert got.status_code == 200, got.text
    assert got.json()["acked_by"] == "admin-key"
    assert world.audit()[-1][:5] == ("admin-key", "admin", "alarm_ack", f"{kind}/{world.ids[kind]}",
                                     "done")


def test_a_second_acknowledgement_is_refused_and_keeps_the_first(world: World) -> None:
    alarm_id = world.ids["traffic"]
    assert ack(world.client("budi"), "traffic", alarm_id).status_code == 200
    before = world.state(), world.audit()
    again = ack(world.client("sari"), "traffic", alarm_id, {"comment": "saya juga"})
    assert again.status_code == 409
    assert "budi" in again.json()["detail"] and "Petugas sudah dikirim" in again.json()["detail"]
    assert (world.state(), world.audit()) == before


def test_two_operators_at_once_get_one_acknowledgement(world: World) -> None:
    alarm_id = world.ids["machine"]
    answers: list[int] = []
    start = threading.Barrier(2)

    def go(key: str) -> None:
        client = world.client()
        start.wait()
        answers.append(ack(client, "machine", alarm_id, {"comment": key}, key=key).status_code)

    threads = [threading.Thread(target=go, args=(k,)) for k in ("operator", "admin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 409]
    assert [a[4] for a in world.audit()] == ["done"]


def test_a_cleared_alarm_keeps_its_acknowledgement_and_a_cleared_one_may_be_acknowledged(
        world: World) -> None:
    camera_id = world.ids["camera"]
    assert ack(world.client("budi"), "camera", camera_id).status_code == 200
    # the conditions end: the services' reconcile clears both alarms
    world.cctv.reconcile_alarms([], T0 + timedelta(minutes=5))
    world.attendance.reconcile_alarms([], T0 + timedelta(minutes=5))
    client = world.client("sari")
    assert [r["kind"] for r in client.get("/api/alarms/board").json()] == ["traffic", "traffic"]
    history = {r["kind"]: r for r in client.get("/api/alarms/board?state=all").json()
               if r["kind"] != "traffic"}
    assert history["camera"]["state"] == "cleared" and history["camera"]["acked_by"] == "budi"
    assert history["camera"]["cleared_at"] == (T0 + timedelta(minutes=5)).isoformat()
    assert history["machine"]["state"] == "cleared" and not history["machine"]["acked"]
    got = ack(client, "machine", world.ids["machine"], {"comment": "Jam sudah disetel ulang"})
    assert got.status_code == 200 and got.json()["acked_by"] == "sari"


# --------------------------------------------------------------------------- refusals


def test_without_a_log_in_nothing_changes(world: World) -> None:
    before = world.state()
    anonymous = world.client()
    got = ack(anonymous, "camera", world.ids["camera"])
    assert got.status_code == 401 and "WWW-Authenticate" in got.headers
    assert ack(anonymous, "camera", world.ids["camera"],
               headers={"X-API-Key": "bukan-kunci-yang-dikenal"}).status_code == 401
    assert world.state() == before and world.audit() == []


@pytest.mark.parametrize(("who", "role"), [("tono", "technician"), ("rina", "bkpsdm"),
                                           ("viewer", "viewer")])
def test_a_role_that_may_not_acknowledge_is_refused_and_audited(world: World, who: str,
                                                               role: str) -> None:
    before = world.state()
    if who == "viewer":
        got = ack(world.client(), "traffic", world.ids["traffic"], key="viewer")
        user = "viewer-key"
    else:
        got = ack(world.client(who), "traffic", world.ids["traffic"])
        user = who
    assert got.status_code == 403 and role in got.json()["detail"]
    assert world.state() == before
    assert [a[:5] for a in world.audit()] == [
        (user, role, "alarm_ack", f"traffic/{world.ids['traffic']}", "denied")]


def test_a_cookie_without_its_csrf_token_is_refused(world: World) -> None:
    before = world.state()
    client = world.client("budi")
    assert ack(client, "camera", world.ids["camera"], csrf=False).status_code == 403
    got = ack(client, "camera", world.ids["camera"], headers={"X-CSRF-Token": "salah"},
              csrf=False)
    assert got.status_code == 403 and "CSRF" in got.json()["detail"]
    assert world.state() == before and world.audit() == []


def test_an_unknown_alarm_is_404_and_an_unknown_kind_422(world: World) -> None:
    before = world.state()
    client = world.client("budi")
    assert ack(client, "camera", 999_999).status_code == 404
    assert ack(client, "traffic", world.ids["machine"] + 1000).status_code == 404
    assert ack(client, "printer", 1).status_code == 422
    assert world.state() == before and world.audit() == []


@pytest.mark.parametrize("body", [
    {}, {"comment": ""}, {"comment": "   "}, {"comment": 42}, {"comment": "x" * 501},
    {"comment": "ok", "acked_by": "someone-else"}, ["comment"], "not json"])
def test_a_malformed_request_is_422_with_nothing_changed(world: World, body: Any) -> None:
    before = world.state()
    client = world.client("budi")
    if body == "not json":
        got = client.post(f"/api/alarms/camera/{world.ids['camera']}/ack", content=b"{oops",
                          headers={"X-CSRF-Token": client.csrf,  # type: ignore[attr-defined]
                                   "Content-Type": "application/json"})
    else:
        got = ack(client, "camera", world.ids["camera"], body)
    assert got.status_code == 422, got.text
    for bad_id in ("abc", "0", "-3", str(2**63)):
        assert ack(client, "camera", bad_id).status_code == 422
    assert world.state() == before and world.audit() == []
