"""The camera service against real PostgreSQL servers (embedded and system): the registry from
edge inventories and retained statuses, alarms opened and cleared, only the latest snapshot
kept, acks moving command status forward, expiry to unanswered, and bad or forged input
changing nothing. Messages go in the way ingest hands them over."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from controlroom.cctv.alarms import AlarmThresholds
from controlroom.cctv.service import CctvService, InvalidSnapshot, decode_jpeg
from controlroom.cctv.store import CctvStore
from controlroom.ingest import Inbound, Ingest
from controlroom.settings import IngestSettings
from controlroom.storage.migrate import migrate
from controlroom.storage.store import Batch, Store, open_pool
from controlroom.traffic.access import Operator
from edge import contract as c

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"
BUDI = Operator("budi", "operator")


@dataclass
class World:
    """A control room's camera side on a fresh database, a settable clock and the published
    commands; `send` plays the edge."""

    pg_url: str
    store: Store
    cctv_store: CctvStore
    service: CctvService
    published: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    now: datetime = T0
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def birth(self, edge: str = "edge-1", cameras: tuple[str, ...] = ("cam-1",),
              status: str = "online", conn: int = 1) -> c.EdgeState:
        inventory = tuple(c.DeviceInfo(device_id=cam, kind="camera", model="DS-2DE4425IW",
                                       intersection_id="simpang-tugu") for cam in cameras)
        state = c.EdgeState(ts=self.now, edge_id=edge, epoch=1, seq=self.next_seq(),
                            status=status, conn=conn,
                            inventory=inventory + (c.DeviceInfo(device_id="ctl-1",
                                                                kind="controller"),))
        self.store.write(Batch(edge_states=[state]))
        self.service.write([], [state])
        return state

    def status(self, cam: str = "cam-1", edge: str = "edge-1", dt_s: float = 0,
               **over: Any) -> c.CctvStatus:
        fields: dict[str, Any] = {
            "reachable": True, "fps": 5.0, "name": "Tugu utara", "model": "DS-2DE4425IW",
            "firmware": "V5.7.3", "ptz": True, "position": {"pan": 0.1, "tilt": -0.2, "zoom": 0.0},
            "presets": [{"token": "1", "name": "Utara"}, {"token": "2", "name": "Selatan"}],
            "clock_offset_s": 0.3, "zones": 4, "intersection_id": "simpang-tugu"}
        fields.update(over)
        return c.CctvStatus(ts=self.now + timedelta(seconds=dt_s), edge_id=edge, epoch=1,
                            seq=self.next_seq(), camera_id=cam, **fields)

    def snapshot(self, cam: str = "cam-1", jpeg: bytes = JPEG, dt_s: float = 0,
                 cmd_id: str | None = None, edge: str = "edge-1") -> c.CctvSnapshot:
        return c.CctvSnapshot(ts=self.now + timedelta(seconds=dt_s), edge_id=edge, epoch=1,
                              seq=self.next_seq(), camera_id=cam,
                              jpeg_b64=base64.b64encode(jpeg).decode(), cmd_id=cmd_id)

    def ack(self, cmd_id: str, status: str, cam: str = "cam-1", edge: str = "edge-1",
            reason: str = "") -> c.CommandAck:
        return c.CommandAck(ts=self.now, edge_id=edge, epoch=1, seq=self.next_seq(),
                            cmd_id=cmd_id, target_id=cam, status=status, reason=reason)

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.pg_url) as conn:
            return conn.execute(sql, params).fetchall()

    def commands(self) -> list[c.CctvCommand]:
        return [c.decode(topic, payload).payload for topic, payload, _, _ in self.published]


@pytest.fixture
def world(pg_url: str) -> Iterator[World]:
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    cctv_store = CctvStore(pool)
    w = World(pg_url, Store(pool), cctv_store, None)  # type: ignore[arg-type]
    w.service = CctvService(cctv_store, lambda *a: w.published.append(a),
                            thresholds=AlarmThresholds(stale_after_s=120, clock_drift_s=10),
                            command_expiry_s=30, ptz_rate_per_s=10, clock=lambda: w.now)
    yield w
    pool.close()


def camera(w: World, cam: str = "cam-1") -> dict[str, Any]:
    row = w.cctv_store.camera(cam)
    assert row is not None
    return row


def test_the_registry_comes_from_inventories_and_statuses(world: World) -> None:
    w = world
    w.birth(cameras=("cam-1", "cam-2"))
    listed = camera(w, "cam-2")
    assert (listed["edge_id"], listed["intersection_id"], listed["model"]) == (
        "edge-1", "simpang-tugu", "DS-2DE4425IW")
    assert listed["reachable"] is None and listed["last_status_at"] is None
    assert listed["edge_online"] is True
    assert [r["camera_id"] for r in w.cctv_store.cameras()] == ["cam-1", "cam-2"]  # no controller

    w.service.write([w.status(dt_s=1)])
    row = camera(w)
    assert (row["reachable"], row["name"], row["firmware"], row["ptz"], row["zones"]) == (
        True, "Tugu utara", "V5.7.3", True, 4)
    assert row["position"] == {"pan": 0.1, "tilt": -0.2, "zoom": 0.0}
    assert [p["token"] for p in row["presets"]] == ["1", "2"]
    assert row["last_status_at"] == T0 + timedelta(seconds=1)

    # an older status (a redelivered retained message) changes nothing
    w.service.write([w.status(dt_s=0.5, name="lama", reachable=False)])
    assert camera(w)["name"] == "Tugu utara" and camera(w)["reachable"] is True
    # an unreachable report keeps what was last known of the camera
    w.service.write([w.status(dt_s=2, reachable=False, ptz=False, position=None, presets=[],
                              name="", error="ONVIF timed out")])
    row = camera(w)
    assert (row["reachable"], row["error"], row["ptz"], row["name"]) == (
        False, "ONVIF timed out", True, "Tugu utara")
    assert row["status_since"] == T0 + timedelta(seconds=2)
    # an offline will keeps the cameras; the edge's state shows through
    w.birth(status="offline")
    assert camera(w)["edge_online"] is False and len(w.cctv_store.cameras()) == 2


def test_alarms_open_while_their_condition_holds_and_clear_after(world: World) -> None:
    w = world
    w.birth(cameras=("cam-1", "cam-2"))
    w.service.write([w.status(tampers=["blur", "moved"], tamper="blur", clock_offset_s=25.0)])
    assert w.service.check_alarms() == (3, 0)
    assert w.service.check_alarms() == (0, 0)  # at most one open per condition and camera
    assert sorted(a["code"] for a in w.cctv_store.alarms()) == [
        "clock_drift", "tamper_blur", "tamper_moved"]
    assert w.cctv_store.open_alarm_counts() == {"cam-1": 3}

    w.now += timedelta(seconds=10)
    w.service.write([w.status(tampers=["moved"], tamper="moved")])
    assert w.service.check_alarms() == (0, 2)
    assert [a["code"] for a in w.cctv_store.alarms()] == ["tamper_moved"]

    # the listed camera that never reports goes offline after stale_after_s, as does cam-1
    w.now += timedelta(seconds=130)
    assert w.service.check_alarms() == (2, 1)
    offline = w.cctv_store.alarms()
    assert {(a["code"], a["camera_id"], a["data"]["reason"]) for a in offline} == {
        ("camera_offline", "cam-1", "stale"), ("camera_offline", "cam-2", "never_reported")}
    assert all(" / camera " in a["text"] for a in offline)

    w.service.write([w.status(), w.status("cam-2")])
    assert w.service.check_alarms() == (0, 2)
    w.birth(status="offline")  # the edge's will: every camera of it is offline
    assert w.service.check_alarms() == (2, 0)
    history = w.cctv_store.alarms(open_only=False)
    assert len(history) == 7 and sum(a["cleared_at"] is None for a in history) == 2


def test_only_the_latest_snapshot_is_kept(world: World) -> None:
    w = world
    w.birth()
    newer = JPEG[:-2] + b"new\xff\xd9"
    w.service.write([], snapshots=[w.snapshot(dt_s=1), w.snapshot(jpeg=newer, dt_s=2,
                                                                 cmd_id="cmd-snap-0001")])
    w.service.write([], snapshots=[w.snapshot(dt_s=1.5)])  # late: older than the stored one
    snap = w.cctv_store.snapshot("cam-1")
    assert snap is not None and bytes(snap["jpeg"]) == newer
    assert snap["taken_at"] == T0 + timedelta(seconds=2) and snap["cmd_id"] == "cmd-snap-0001"
    assert w.rows("SELECT count(*) FROM cctv_snapshot") == [(1,)]
    assert w.service.stats.snapshots_stored == 2


def test_bad_or_foreign_snapshots_change_nothing(world: World) -> None:
    w = world
    w.birth()
    w.service.write([], snapshots=[w.snapshot(dt_s=1)])
    bad = [w.snapshot(jpeg=b"GIF89a not a jpeg", dt_s=5),
           w.snapshot(jpeg=b"\xff\xd8\xff\xe0 truncated", dt_s=5),
           w.snapshot(cam="cam-unknown", dt_s=5)]
    bad.append(bad[0].model_copy(update={"jpeg_b64": "!!not base64!!"}))
    w.service.write([], snapshots=bad)
    assert w.rows("SELECT camera_id, taken_at FROM cctv_snapshot") == [
        ("cam-1", T0 + timedelta(seconds=1))]
    assert w.service.stats.snapshots_rejected == 3
    with pytest.raises(InvalidSnapshot, match="not base64"):
        decode_jpeg("a")
    assert decode_jpeg(base64.b64encode(JPEG).decode()) == JPEG


def test_acks_move_a_command_forward_only(world: World) -> None:
    w = world
    w.birth()
    w.service.write([w.status()])
    sent = w.service.command("cam-1", BUDI, c.PtzMoveBody(pan=0.5, timeout_s=2), "lihat antrean")
    cmd_id = sent["cmd_id"]
    assert sent["status"] == "sent"
    (command,) = w.commands()
    assert (command.cmd_id, command.issuer, command.camera_id) == (cmd_id, "budi", "cam-1")
    assert command.body == c.PtzMoveBody(pan=0.5, timeout_s=2)
    assert command.expires_at == T0 + timedelta(seconds=30)
    assert w.published[0][0] == "kota/v1/cctv/cam-1/cmd" and w.published[0][2:] == (1, False)

    status = lambda: w.rows("SELECT status, reason FROM cctv_command WHERE cmd_id = %s", cmd_id)[0]  # noqa: E731
    # forged or misrouted: another camera's id, another edge, an unknown command
    w.service.write([], acks=[w.ack(cmd_id, "applied", cam="cam-2"),
                              w.ack(cmd_id, "applied", edge="edge-evil"),
                              w.ack("cmd-unknown-0001", "applied")])
    assert status() == ("sent", "") and w.service.stats.acks_ignored == 3
    w.service.write([], acks=[w.ack(cmd_id, "accepted")])
    assert status() == ("accepted", "")
    w.service.write([], acks=[w.ack(cmd_id, "applied")])
    w.service.write([], acks=[w.ack(cmd_id, "accepted"), w.ack(cmd_id, "rejected", reason="x")])
    assert status() == ("applied", "")
    row = w.service.command_status(cmd_id)
    assert row is not None and row["status"] == "applied" and row["kind"] == "ptz_move"
    assert row["body"]["pan"] == 0.5 and row["reason_given"] == "lihat antrean"
    # the audit row: who, what, the position before and the request after
    (audit,) = w.rows("SELECT user_name, role, action, target, outcome, before, after, detail "
                      "FROM audit_log")
    assert audit[:5] == ("budi", "operator", "ptz_move", "cam-1", "done")
    assert audit[5] == {"position": {"pan": 0.1, "tilt": -0.2, "zoom": 0.0}}
    assert audit[6]["cmd_id"] == cmd_id and audit[6]["pan"] == 0.5 and audit[7] == "lihat antrean"


def test_a_command_with_no_final_ack_before_expiry_is_unanswered(world: World) -> None:
    w = world
    w.birth()
    w.service.write([w.status()])
    silent = w.service.command("cam-1", BUDI, c.SnapshotBody())["cmd_id"]
    accepted = w.service.command("cam-1", BUDI, c.PtzStopBody())["cmd_id"]
    done = w.service.command("cam-1", BUDI, c.PresetGotoBody(preset_token="2"))["cmd_id"]
    w.service.write([], acks=[w.ack(accepted, "accepted"), w.ack(done, "rejected",
                                                                reason="preset busy")])
    w.now += timedelta(seconds=29)
    w.service.check_alarms()
    assert w.rows("SELECT count(*) FROM cctv_command WHERE status = 'unanswered'") == [(0,)]
    w.now += timedelta(seconds=1)
    row = w.service.command_status(silent)  # the API's read marks it without the alarm thread
    assert row is not None and row["status"] == "unanswered"
    w.service.check_alarms()
    states = dict(w.rows("SELECT cmd_id, status FROM cctv_command"))
    assert states == {silent: "unanswered", accepted: "unanswered", done: "rejected"}
    # a late final ack still tells what became of it
    w.service.write([], acks=[w.ack(silent, "applied")])
    assert w.rows("SELECT status FROM cctv_command WHERE cmd_id = %s", silent) == [("applied",)]


def test_analytics_are_stored_as_zone_arrays(world: World) -> None:
    w = world
    w.birth()
    message = c.CctvAnalytics(ts=T0, edge_id="edge-1", epoch=1, seq=w.next_seq(), camera_id="cam-1",
                              zone_ids=("z1", "z2"), presence=(True, False), count=(3, 0),
                              occupancy_pct=(41.5, 0.0), queue_m=(18.0, 0.0))
    w.service.write([], analytics=[message])
    assert w.cctv_store.analytics("cam-1") == [{
        "ts": T0, "camera_id": "cam-1", "edge_id": "edge-1", "zone_ids": ["z1", "z2"],
        "count": [3, 0], "occupancy_pct": [41.5, 0.0], "presence": [True, False],
        "queue_m": [18.0, 0.0]}]


def test_ingest_routes_camera_messages_and_keeps_camera_acks(world: World) -> None:
    w = world
    ingest = Ingest(IngestSettings(flush_interval_ms=5), w.store, cctv=w.service)
    ingest.start()
    state = c.EdgeState(ts=T0, edge_id="edge-9", epoch=1, seq=1000, status="online", conn=1,
                        inventory=(c.DeviceInfo(device_id="cam-9", kind="camera"),))
    status = w.status("cam-9", edge="edge-9")
    snap = w.snapshot("cam-9", edge="edge-9", dt_s=1)
    for topic, payload in ((c.edge_state_topic("edge-9"), state),
                           (c.cctv_status_topic("cam-9"), status),
                           (c.cctv_status_topic("cam-9"), status),  # a duplicate
                           (c.cctv_snapshot_topic("cam-9"), snap),
                           (c.command_ack_topic("cctv", "cam-9"),
                            w.ack("cmd-none-00001", "applied", cam="cam-9", edge="edge-9"))):
        ingest.offer(Inbound(topic, c.encode(payload), 1, 0, 0.0))
    ingest.offer(Inbound(c.cctv_status_topic("cam-9"), b'{"v": 1, "camera_id": 7}', 1, 0, 0.0))
    ingest.stop()
    assert ingest.stats.duplicates == 1 and dict(ingest.stats.rejected) == {"schema": 1}
    row = camera(w, "cam-9")
    assert row["reachable"] is True and row["edge_online"] is True
    assert w.cctv_store.snapshot("cam-9") is not None
    assert w.rows("SELECT domain, target_id FROM command_ack") == [("cctv", "cam-9")]
