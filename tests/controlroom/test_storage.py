"""Schema migrations and the Store, against real PostgreSQL servers (embedded and system)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from controlroom.storage.migrate import load_migrations, migrate, probe
from controlroom.storage.store import Batch, StorageError, Store, open_pool
from edge import contract as c

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def tel(seq: int, iid: str = "s1", edge: str = "e1", epoch: int = 1, dt_s: float = 0, n: int = 16) -> c.TrafficTelemetry:
    return c.TrafficTelemetry(ts=T0 + timedelta(seconds=dt_s or seq), edge_id=edge, epoch=epoch, seq=seq,
                              intersection_id=iid, mode="central", plan=1, signal=["G", "R"],
                              det_count=[seq % 7] * n, det_occupancy_pct=[10.0] * n, det_fault=[False] * n)


def state(status: str, epoch: int, conn: int, seq: int, edge: str = "e1") -> c.EdgeState:
    return c.EdgeState(ts=T0 + timedelta(seconds=seq), edge_id=edge, epoch=epoch, seq=seq,
                       status=status, conn=conn)


@pytest.fixture
def store(pg_url: str):
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 2)
    yield Store(pool)
    pool.close()


def test_migrations_are_idempotent_and_recorded(pg_url: str) -> None:
    first = migrate(pg_url)
    assert first.applied == ("0001_core.sql", "0002_telemetry_plain.sql", "0003_traffic_control.sql",
                             "0004_attendance.sql", "0005_attendance_payroll.sql",
                             "0006_cctv.sql", "0007_users.sql", "0008_alarm_ack.sql",
                             "0009_detector_sample_by_intersection.sql")
    assert not first.features.timescaledb  # neither server here has TimescaleDB
    second = migrate(pg_url)
    assert second.applied == ()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migration ORDER BY version").fetchall()
        assert rows == [(1, "0001_core.sql"), (2, "0002_telemetry_plain.sql"),
                        (3, "0003_traffic_control.sql"), (4, "0004_attendance.sql"),
                        (5, "0005_attendance_payroll.sql"), (6, "0006_cctv.sql"),
                        (7, "0007_users.sql"), (8, "0008_alarm_ack.sql"),
                        (9, "0009_detector_sample_by_intersection.sql")]
        # the rollup answers the same query it would on TimescaleDB's continuous aggregate
        conn.execute("SELECT bucket, intersection, detector, volume FROM detector_15min").fetchall()


def test_every_migration_file_declares_where_it_runs() -> None:
    migrations = load_migrations()
    assert {m.condition for m in migrations} == {"always", "requires timescaledb", "unless timescaledb"}
    versions = [m.version for m in migrations if m.condition != "requires timescaledb"]
    assert versions == sorted(set(versions))


def test_probe_sees_no_timescaledb_without_preload(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        features = probe(conn)
    assert features.timescaledb is False
    assert "date_bin" in features.describe()


def test_telemetry_rows_and_latest_state(store: Store, pg_url: str) -> None:
    result = store.write(Batch(telemetry=[tel(1), tel(2), tel(3, iid="s2"), tel(1, iid="s3", n=0)]))
    assert (result.telemetry_rows, result.detector_rows) == (4, 48)
    store.write(Batch(telemetry=[tel(4)]))
    latest = {r["intersection_id"]: r for r in store.intersections()}
    assert latest["s1"]["last_ts"] == T0 + timedelta(seconds=4)
    assert latest["s1"]["det_count"] == [4] * 16
    # an older message arriving late does not overwrite the latest state
    store.write(Batch(telemetry=[tel(2, dt_s=2)]))
    assert {r["intersection_id"]: r for r in store.intersections()}["s1"]["det_count"] == [4] * 16
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM detector_sample").fetchone()[0] == 80
        volume = conn.execute("SELECT sum(volume) FROM detector_15min").fetchone()[0]
        assert volume == 16 * (1 + 2 + 3 + 4 + 2)


def test_events_and_acks_are_stored_once(store: Store, pg_url: str) -> None:
    ev = c.TrafficEvent(ts=T0, edge_id="e1", epoch=2, seq=9, intersection_id="s1", kind="fallback")
    ack = c.CommandAck(ts=T0, edge_id="e1", epoch=2, seq=10, cmd_id="cmd-12345678",
                       target_id="s1", status="applied")
    first = store.write(Batch(events=[ev], acks=[("traffic", ack)]))
    again = store.write(Batch(events=[ev, ev], acks=[("traffic", ack)]))
    assert (first.events_new, first.acks_new) == (1, 1)
    assert (again.events_new, again.acks_new) == (0, 0)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM traffic_event").fetchone()[0] == 1


def test_edge_state_ordering_ignores_stale_wills(store: Store) -> None:
    def online() -> bool:
        return {e["edge_id"]: e["online"] for e in store.edges()}["e1"]

    store.write(Batch(edge_states=[state("online", epoch=1, conn=1, seq=1)]))
    assert online()
    # the agent restarted (epoch 2) before the broker sent the old session's will
    store.write(Batch(edge_states=[state("online", epoch=2, conn=1, seq=1)]))
    result = store.write(Batch(edge_states=[state("offline", epoch=1, conn=1, seq=0)]))
    assert result.edge_states_applied == 0 and online()
    # a reconnect within the same run: the will of connection 1 after the birth of 2 is stale
    store.write(Batch(edge_states=[state("online", epoch=2, conn=2, seq=5)]))
    store.write(Batch(edge_states=[state("offline", epoch=2, conn=1, seq=2)]))
    assert online()
    # the will of the current connection is honoured, even with a lower seq than its birth
    store.write(Batch(edge_states=[state("offline", epoch=2, conn=2, seq=4)]))
    assert not online()
    # and a retained birth redelivered later does not flip it back
    store.write(Batch(edge_states=[state("online", epoch=2, conn=2, seq=5)]))
    assert not online()


def test_a_birth_announced_again_brings_the_new_inventory(store: Store) -> None:
    def inventory() -> list[tuple[str, str]]:
        [edge] = store.edges()
        return [(d["device_id"], d["firmware"]) for d in edge["inventory"]]

    unknown = c.DeviceInfo(device_id="ctl-1", kind="controller", intersection_id="s1")
    told = c.DeviceInfo(device_id="ctl-1", kind="controller", model="Acme ATC-3",
                        firmware="4.2.1", intersection_id="s1")
    birth = state("online", epoch=2, conn=3, seq=1)
    store.write(Batch(edge_states=[birth.model_copy(update={"inventory": (unknown,)})]))
    assert inventory() == [("ctl-1", "")]
    # the controller told its firmware: the edge announces its birth again, same connection
    again = birth.model_copy(update={"seq": 7, "inventory": (told,)})
    assert store.write(Batch(edge_states=[again])).edge_states_applied == 1
    assert inventory() == [("ctl-1", "4.2.1")]
    # the same birth once more changes nothing, and after the will no birth of it counts
    assert store.write(Batch(edge_states=[again])).edge_states_applied == 0
    store.write(Batch(edge_states=[state("offline", epoch=2, conn=3, seq=8)]))
    store.write(Batch(edge_states=[birth.model_copy(update={"seq": 9, "inventory": ()})]))
    assert inventory() == [("ctl-1", "4.2.1")] and not store.edges()[0]["online"]


def test_failed_batch_changes_nothing(store: Store, pg_url: str) -> None:
    store.write(Batch(telemetry=[tel(1)]))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE traffic_event ADD CONSTRAINT no_fallback CHECK (kind <> 'fallback')")
    bad = c.TrafficEvent(ts=T0, edge_id="e1", epoch=1, seq=99, intersection_id="s1", kind="fallback")
    with pytest.raises(StorageError, match="not stored"):
        store.write(Batch(telemetry=[tel(2), tel(1, iid="new")], events=[bad]))
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM traffic_telemetry").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM intersection").fetchone()[0] == 1
    # the id cache was reset with the rollback: the next batch with the new intersection works
    store.write(Batch(telemetry=[tel(3, iid="new")]))
