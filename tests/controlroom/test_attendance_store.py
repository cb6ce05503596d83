"""Attendance storage against real PostgreSQL servers (embedded and system): each punch stored
exactly once whatever the resends, raw punches immutable, bad batches change nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from controlroom.attendance.alarms import AlarmThresholds, machine_conditions
from controlroom.attendance.store import (
    AttendanceStore,
    InvalidPunchBatch,
    MachineStatus,
    Punch,
    PunchBatch,
)
from controlroom.storage.migrate import migrate
from controlroom.storage.store import open_pool

WIB = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 23, 7, 25, tzinfo=WIB)


def punches(n: int, start: int = 0, user: str | None = None) -> list[Punch]:
    return [Punch(user or f"{1000 + k % 37}", T0 + timedelta(minutes=k), k % 2, 1)
            for k in range(start, start + n)]


def batch(bid: str, ps: list[Punch], sn: str = "CKJX201960001") -> PunchBatch:
    return PunchBatch(sn, bid, "office-1", "Asia/Jakarta", ps)


@pytest.fixture
def store(pg_url: str):
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    yield AttendanceStore(pool)
    pool.close()


def test_a_batch_is_stored_once_and_a_resend_is_answered_as_stored(store: AttendanceStore) -> None:
    first = store.store_batch(batch("b1", punches(100)))
    assert (first.punches, first.new_punches, first.already_stored) == (100, 100, False)
    again = store.store_batch(batch("b1", punches(100)))
    assert (again.new_punches, again.already_stored) == (0, True)
    # an overlapping batch (the edge re-read after a crash) adds only what is new
    overlap = store.store_batch(batch("b2", punches(100, start=50)))
    assert overlap.new_punches == 50
    assert store.punch_count() == 150
    assert store.stored_batches("CKJX201960001", ["b1", "b2", "b3"]) == {"b1", "b2"}


def test_a_batch_id_reused_with_other_punches_loses_nothing(store: AttendanceStore) -> None:
    store.store_batch(batch("b1", punches(10)))
    receipt = store.store_batch(batch("b1", punches(10, start=10)))
    assert receipt.already_stored and receipt.new_punches == 10
    assert store.punch_count() == 20


def test_the_same_punch_on_two_machines_is_two_punches(store: AttendanceStore) -> None:
    store.store_batch(batch("b1", punches(5), sn="A"))
    store.store_batch(batch("b1", punches(5), sn="B"))
    assert store.punch_count("A") == store.punch_count("B") == 5


def test_duplicate_punches_inside_one_batch_are_stored_once(store: AttendanceStore) -> None:
    ps = punches(5)
    assert store.store_batch(batch("b1", ps + ps[:3])).new_punches == 5


def test_times_keep_the_office_zone_and_the_machine_wall_time(store: AttendanceStore) -> None:
    store.store_batch(PunchBatch("W", "b1", "e", "Asia/Makassar",  # WITA, UTC+8
                                 [Punch("7", datetime(2026, 11, 23, 7, 30, tzinfo=timezone(timedelta(hours=8))), 0)]))
    row = store.punches(device_sn="W")[0]
    assert row["ts"] == datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert row["local_ts"] == datetime(2026, 11, 23, 7, 30) and row["tz"] == "Asia/Makassar"


@pytest.mark.parametrize("bad, message", [
    (Punch("", T0, 0), "user id"),
    (Punch("x" * 25, T0, 0), "user id"),
    (Punch("7", T0.replace(tzinfo=None), 0), "no time zone"),
    (Punch("7", T0, 256), "punch state"),
    (Punch("7", T0, 0, verify_type=-1), "verify type"),
    (Punch("7", T0, True), "punch state"),
])
def test_a_bad_punch_rejects_the_whole_batch_and_changes_nothing(store: AttendanceStore, bad: Punch,
                                                                 message: str) -> None:
    with pytest.raises(InvalidPunchBatch, match=message):
        store.store_batch(batch("b1", punches(3) + [bad]))
    assert store.punch_count() == 0
    assert store.stored_batches("CKJX201960001", ["b1"]) == set()


def test_an_unknown_zone_is_refused(store: AttendanceStore) -> None:
    with pytest.raises(InvalidPunchBatch, match="time zone"):
        store.store_batch(PunchBatch("A", "b1", "e", "Asia/Bandung", punches(1)))


def test_raw_punches_cannot_be_edited_or_deleted(store: AttendanceStore, pg_url: str) -> None:
    store.store_batch(batch("b1", punches(3)))
    with psycopg.connect(pg_url) as conn:
        for sql in ("UPDATE attendance_punch SET user_id = '1'", "DELETE FROM attendance_punch",
                    "TRUNCATE attendance_punch"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="raw records"):
                conn.execute(sql)
            conn.rollback()
    assert store.punch_count() == 3


def test_concurrent_resends_of_one_batch_store_each_punch_once(store: AttendanceStore) -> None:
    receipts = []
    go = threading.Barrier(4)

    def send() -> None:
        go.wait()
        receipts.append(store.store_batch(batch("b1", punches(2000))))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.punch_count() == 2000
    assert sum(r.new_punches for r in receipts) == 2000
    assert sorted(r.already_stored for r in receipts) == [False, True, True, True]


def status(sn: str, ts: datetime, **kw) -> MachineStatus:
    return MachineStatus(sn, "office-1", ts, **{"online": True, **kw})


def test_machine_registry_keeps_the_newest_report_and_what_an_offline_one_last_said(
        store: AttendanceStore) -> None:
    t = T0.astimezone(UTC)
    assert store.update_machines([status("A", t, name="Lobi", firmware="Ver 6.60", punches=10,
                                         punches_capacity=100000)]) == 1
    assert store.update_machines([status("A", t - timedelta(minutes=1), punches=1)]) == 0  # older
    store.update_machines([status("A", t + timedelta(minutes=1), online=False, error="timed out")])
    m = store.machine("A")
    assert (m["online"], m["name"], m["firmware"], m["punches"], m["last_error"]) == (
        False, "Lobi", "Ver 6.60", 10, "timed out")
    assert m["status_since"] == t + timedelta(minutes=1)


def test_alarms_open_once_and_clear_when_the_condition_ends(store: AttendanceStore) -> None:
    now = T0.astimezone(UTC)
    store.update_machines([
        status("FULL", now, punches=85_000, punches_capacity=100_000),
        status("DRIFT", now, clock_drift_s=-95.0),
        status("GONE", now - timedelta(minutes=10)),
        status("OK", now, punches=10, punches_capacity=100_000, clock_drift_s=2.0)])
    store.upsert_employees([("1000", "Siti Rahayu", "198503122010012001", "Dinas Kominfo", True)])
    store.store_batch(batch("b1", [Punch("1000", T0, 0), Punch("9999", T0, 0)], sn="OK"))

    assert store.unknown_users() != {}
    conditions = machine_conditions(store.machines(), store.unknown_users(), now, AlarmThresholds())
    got = {(c.code, c.device_sn, c.subject) for c in conditions}
    assert got == {("machine_capacity", "FULL", "punches"), ("machine_clock_drift", "DRIFT", ""),
                   ("machine_offline", "GONE", ""), ("machine_unknown_users", "OK", "")}
    assert store.reconcile_alarms(conditions, now) == (4, 0)
    assert store.reconcile_alarms(conditions, now) == (0, 0)  # still holding: nothing new
    unknown = next(a for a in store.alarms() if a["code"] == "machine_unknown_users")
    assert "9999" in unknown["text"] and unknown["data"]["punches"] == 1

    later = now + timedelta(minutes=1)
    store.update_machines([status("FULL", later, punches=1000), status("GONE", later),
                           status("DRIFT", later, clock_drift_s=0.5), status("OK", later)])
    store.upsert_employees([("9999", "Budi Santoso", "", "Dinas Kominfo", True)])
    conditions = machine_conditions(store.machines(), store.unknown_users(), later)
    assert conditions == []
    assert store.reconcile_alarms(conditions, later) == (0, 4)
    assert store.alarms() == [] and len(store.alarms(open_only=False)) == 4


def test_unknown_user_ids_are_not_news_before_any_employee_is_known(store: AttendanceStore) -> None:
    store.store_batch(batch("b1", punches(3)))
    assert store.unknown_users() == {}
    store.upsert_employees([("9999", "Siti Rahayu", "", "", True)])
    assert store.unknown_users()["CKJX201960001"]["punches"] == 3


def test_a_status_with_an_unknown_zone_is_bad_input_not_a_storage_failure(
        store: AttendanceStore) -> None:
    from controlroom.attendance.store import AttendanceStorageError

    good = status("A", T0.astimezone(UTC))
    with pytest.raises(InvalidPunchBatch, match="time zone") as err:
        store.update_machines([good, status("B", T0.astimezone(UTC), tz="Asia/Bandung")])
    assert not isinstance(err.value, AttendanceStorageError)  # ingest must not retry it
    assert store.machines() == []  # nothing of the report written
