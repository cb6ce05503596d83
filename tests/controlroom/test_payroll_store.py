"""Attendance for payroll against real PostgreSQL servers (embedded and system): a month
recomputed from raw punches, a late leave approval changing exactly that employee's affected
days with the audit showing before and after, raw punches untouched, the recap read back from
the database equal to the one built while storing, and bad input changing nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from controlroom.attendance.payroll import Payroll, PayrollInputError, month_bounds
from controlroom.attendance.payroll_store import EmployeeRow, PayrollStore, UnitRow
from controlroom.attendance.rules import Rules, load_rules
from controlroom.attendance.store import AttendanceStore, Punch, PunchBatch
from controlroom.storage import pgbinary
from controlroom.storage.migrate import migrate
from controlroom.storage.store import open_pool

WIB = timezone(timedelta(hours=7))
BUDI = "198504122010011003"  # DISHUB, machine id 17 on any machine
SITI = "199003152015032001"  # DISHUB, machine id 18 only on DISHUB-1
ANDI = "197811032005011002"  # RSUD, on the shift roster; enrolled by NIP


def at(day: int, hh: int, mm: int, ss: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hh, mm, ss, tzinfo=WIB)


@pytest.fixture
def region(pg_url: str):
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    store = PayrollStore(pool)
    store.upsert_units([UnitRow("DISHUB", "Dinas Perhubungan", "DISHUB"),
                        UnitRow("RSUD", "RSUD Kota", "RSUD")], actor="test")
    store.upsert_employees([
        EmployeeRow(BUDI, "Budi Santoso", "DISHUB", "DISHUB", "Analis", "reguler"),
        EmployeeRow(SITI, "Siti Aminah", "DISHUB", "DISHUB", "Pengelola", ""),
        EmployeeRow(ANDI, "Andi Wijaya", "RSUD", "RSUD", "Perawat", "shift")],
        source="simpeg", actor="test")
    store.replace_user_map([("", "17", BUDI), ("DISHUB-1", "18", SITI)], [BUDI, SITI],
                           actor="test")
    punches = AttendanceStore(pool)
    yield store, punches, Payroll(store, load_rules()), pool
    pool.close()


def store_punches(att: AttendanceStore, device: str, user: str, times: list[datetime],
                  batch: str) -> None:
    att.store_batch(PunchBatch(device, batch, "office-1", "Asia/Jakarta",
                               [Punch(user, t, 0) for t in times]))


def test_a_month_from_raw_punches_and_a_late_leave_changes_exactly_its_days(region) -> None:
    store, att, payroll, pool = region
    # Budi: Mon 2 Nov 07:45 → 16:05 (TL1, 15 min), Tue 3 Nov in only (PSW4), then nothing.
    store_punches(att, "DISHUB-1", "17", [at(2, 7, 45), at(2, 16, 5), at(3, 7, 20)], "b1")
    # Siti: on time every working day of the first week; id 18 counts only on DISHUB-1.
    week = [at(d, 7, 25) for d in (2, 3, 4, 5, 6)] + [at(d, 16, 2) for d in (2, 3, 4, 5)]
    store_punches(att, "DISHUB-1", "18", week + [at(6, 16, 31)], "b2")
    store_punches(att, "DISHUB-2", "18", [at(9, 7, 0)], "b3")  # id 18 means no one here
    # Andi: night shift 30 Nov 21:00 → 1 Dec 07:00, enrolled by NIP.
    store.set_roster([(ANDI, date(2026, 11, 30), "M")], actor="kepala-ruang")
    store_punches(att, "RSUD-1", ANDI, [at(30, 20, 52), at(1, 7, 4, month=12)], "b4")
    raw_before = att.punches(limit=100)

    first, last = month_bounds("2026-11")
    report, recaps, skpds = payroll.recompute_month("2026-11", actor="clerk", reason="month end")
    assert (report.employees, report.rows, report.new, report.changed) == (3, 90, 90, 0)
    by_nip = {r.nip: r for r in recaps}
    budi = by_nip[BUDI]
    # November 2026: 21 working days (no national holiday in the month).
    assert (budi.working_days, budi.present_days, budi.tl, budi.psw) == (21, 2, (1, 0, 0, 0),
                                                                         (0, 0, 0, 1))
    assert budi.absences == {"TK": 19}
    assert budi.cut_uncapped_pct == pytest.approx(0.5 + 1.5 + 19 * 3.0)
    assert [(x.day.day, x.code) for x in budi.lines[:3]] == [(2, "TL1"), (3, "PSW4"), (4, "TK")]
    assert budi.lines[0].text_id == "Terlambat 15 menit (masuk 07:45:00, jadwal 07:30)"
    siti = by_nip[SITI]
    assert (siti.present_days, siti.absences["TK"]) == (5, 16)  # the DISHUB-2 punch is no one's
    andi = by_nip[ANDI]
    assert (andi.working_days, andi.present_days, andi.cut_pct) == (1, 1, 0.0)
    assert {s.skpd: s.employees for s in skpds} == {"DISHUB": 2, "RSUD": 1}
    # The recap read back from the stored days is the one built while storing.
    assert payroll.recap("2026-11") == (recaps, skpds)

    # Recomputing with nothing changed writes and audits nothing.
    again = payroll.recompute(first, last, actor="clerk", reason="check")
    assert (again.changed, again.new) == (0, 0)
    assert store.audit_log(action="day_changed") == []

    # BKPSDM enters sick leave for Budi on 4–5 Nov, approved late: exactly those two days
    # change, the audit says from what to what, raw punches are untouched.
    leave_id = payroll.add_leave(BUDI, "CS", date(2026, 11, 4), date(2026, 11, 5),
                                 "445/77/RSUD/2026", actor="clerk-bkpsdm")
    late = payroll.recompute(first, last, actor="clerk-bkpsdm", reason=f"leave {leave_id}")
    assert (late.changed, late.new) == (2, 0)
    changes = store.audit_log(action="day_changed")
    assert sorted((c["subject"], c["detail"]["day"]) for c in changes) == [
        (BUDI, "2026-11-04"), (BUDI, "2026-11-05")]
    assert {c["detail"]["before"]["status"] for c in changes} == {"TK"}
    assert {c["detail"]["after"]["status"] for c in changes} == {"CS"}
    assert all(c["actor"] == "clerk-bkpsdm" for c in changes)
    assert store.audit_log(subject=BUDI, action="leave_added")[0]["detail"]["doc_ref"] == (
        "445/77/RSUD/2026")
    budi_after = {r.nip: r for r in payroll.recap("2026-11")[0]}[BUDI]
    assert budi_after.absences == {"CS": 2, "TK": 17}
    assert budi_after.cut_uncapped_pct == pytest.approx(budi.cut_uncapped_pct - 6.0)
    assert att.punches(limit=100) == raw_before
    with pool.connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE attendance_punch SET user_id = 'x'")

    # Revoking it brings the two days back, audited again.
    store.revoke_leave(leave_id, actor="clerk-bkpsdm", reason="entered for the wrong person")
    back = payroll.recompute(first, last, actor="clerk-bkpsdm", reason="revoked")
    assert back.changed == 2
    assert {r.nip: r for r in payroll.recap("2026-11")[0]}[BUDI].absences == {"TK": 19}


def test_explain_gives_every_day_with_its_reason(region) -> None:
    store, att, payroll, _ = region
    store_punches(att, "DISHUB-1", "17", [at(2, 7, 45), at(2, 16, 5)], "b1")
    payroll.recompute(*month_bounds("2026-11"), actor="clerk", reason="month end")
    days = {d["day"].day: d for d in payroll.explain(BUDI, "2026-11")}
    assert len(days) == 30
    assert days[1]["status"] == "L" and days[1]["reason_id"] == "Libur"
    assert days[2]["reason_id"] == "Terlambat 15 menit (masuk 07:45:00, jadwal 07:30)"
    assert days[2]["reason_en"] == "Late 15 min (in 07:45:00, schedule 07:30)"
    assert days[2]["in_device"] == "DISHUB-1" and days[2]["late_min"] == 15
    assert days[3]["reason_id"] == "Tidak hadir tanpa keterangan"


def test_bad_leave_input_changes_nothing(region) -> None:
    store, _, payroll, _ = region
    cases = [
        (("12345", "CT", date(2026, 11, 4), date(2026, 11, 4), "800/1"), "NIP"),
        (("199912312030011001", "CT", date(2026, 11, 4), date(2026, 11, 4), "800/1"), "NIP"),
        ((BUDI, "XX", date(2026, 11, 4), date(2026, 11, 4), "800/1"), "leave type 'XX'"),
        ((BUDI, "CT", date(2026, 11, 5), date(2026, 11, 4), "800/1"), "before it starts"),
        ((BUDI, "CT", date(2026, 11, 4), date(2026, 11, 4), "  "), "document reference"),
    ]
    for args, words in cases:
        with pytest.raises(PayrollInputError, match=words):
            payroll.add_leave(*args, actor="clerk")
    assert store.leave(date(2026, 1, 1), date(2026, 12, 31), include_revoked=True) == []
    assert [a["action"] for a in store.audit_log()].count("leave_added") == 0
    with pytest.raises(PayrollInputError, match="month like 2026-11"):
        month_bounds("2026-13")


def test_a_rule_change_mid_year_leaves_old_months_as_they_were(region) -> None:
    store, att, payroll, pool = region
    store_punches(att, "DISHUB-1", "17", [at(2, 7, 40, month=6), at(2, 16, 0, month=6),
                                          at(1, 7, 40, month=7), at(1, 16, 0, month=7)], "b1")
    # Version 2026.2 from 1 July: ten grace minutes (a new Perwali).
    default = load_rules().file
    two = default.model_copy(update={"versions": (
        default.versions[0], default.versions[0].model_copy(update={
            "version": "2026.2", "valid_from": date(2026, 7, 1), "grace_min": 10}))})
    rules = Rules(two, "two-versions", "x")
    changed = Payroll(store, rules)
    june = changed.recompute(*month_bounds("2026-06"), actor="clerk", reason="june")
    july = changed.recompute(*month_bounds("2026-07"), actor="clerk", reason="july")
    assert (june.new, july.new) == (90, 93)
    june_budi = {d["day"].day: d for d in changed.explain(BUDI, "2026-06")}
    july_budi = {d["day"].day: d for d in changed.explain(BUDI, "2026-07")}
    assert (june_budi[2]["tl"], june_budi[2]["rules_version"]) == (1, "default@2026.1")
    assert (july_budi[1]["tl"], july_budi[1]["rules_version"]) == (0, "default@2026.2")
    # June judged again under the two-version file gives the same stored days: nothing changes.
    assert changed.recompute(*month_bounds("2026-06"), actor="clerk", reason="again").changed == 0
    # …and the single-version rules judge the old June exactly as the two-version file does.
    assert payroll.recompute(*month_bounds("2026-06"), actor="clerk", reason="one").changed == 0


def test_binary_copy_encoding_matches_postgresql(pg_url: str) -> None:
    """pgbinary's bytes, read by the server, give back the values."""
    ts = np.array(["2026-11-02T07:45:00", "NaT", "1999-12-31T23:59:59"], dtype="datetime64[s]")
    micro = ts.astype("datetime64[us]").astype(np.int64) - pgbinary.PG_EPOCH_DAYS * 86_400_000_000
    columns = [
        pgbinary.Column("text", np.array([0, 1, 2]), vocabulary=["Budi", None, "Śiti ☺"]),
        pgbinary.Column("int4", np.array([1, -2, 2**31 - 1]), np.array([False, False, True])),
        pgbinary.Column("int2", np.array([0, 4, -1])),
        pgbinary.Column("float8", np.array([0.5, 1.25, -0.0])),
        pgbinary.Column("date", np.array([9436, 0, -1])),  # 2025-11-01, 2000-01-01, 1999-12-31
        pgbinary.Column("timestamp", np.where(np.isnat(ts), 0, micro), np.isnat(ts)),
    ]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a text, b int4, c int2, d float8, e date, f timestamp)")
        with conn.cursor().copy("COPY t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pgbinary.encode(columns))
        rows = conn.execute("SELECT * FROM t").fetchall()
    assert rows == [("Budi", 1, 0, 0.5, date(2025, 11, 1), datetime(2026, 11, 2, 7, 45)),
                    (None, -2, 4, 1.25, date(2000, 1, 1), None),
                    ("Śiti ☺", None, -1, -0.0, date(1999, 12, 31),
                     datetime(1999, 12, 31, 23, 59, 59))]
    # The exact bytes of one row: field count, then length + big-endian value per field.
    one = pgbinary.encode([pgbinary.Column("int2", np.array([258]))], header=False,
                          trailer=False)
    assert one == b"\x00\x01" + b"\x00\x00\x00\x02" + b"\x01\x02"


def test_a_month_not_over_judges_only_the_days_that_have_passed(region) -> None:
    store, att, _, _ = region
    store_punches(att, "DISHUB-1", "17", [at(2, 7, 25), at(2, 16, 5), at(10, 7, 10)], "b1")
    # Tuesday 10 November 2026, mid-morning: today and the rest of the month are pending.
    payroll = Payroll(store, load_rules(), today=lambda: date(2026, 11, 10))
    payroll.add_leave(BUDI, "CT", date(2026, 11, 20), date(2026, 11, 20), "800/5", actor="c")
    report, recaps, _ = payroll.recompute_month("2026-11", actor="clerk", reason="mid-month")
    budi = {r.nip: r for r in recaps}[BUDI]
    # Judged: Mon 2 – Mon 9 Nov, six working days (present on the 2nd only); the approved
    # leave on the 20th is known already; the 10th (punched in, not yet out) is pending.
    assert (budi.working_days, budi.present_days, budi.absences) == (7, 1, {"CT": 1, "TK": 5})
    assert budi.psw == (0, 0, 0, 0)
    days = {d["day"].day: d for d in payroll.explain(BUDI, "2026-11")}
    assert days[10]["status"] == "-" and days[10]["cut_pct"] == 0
    assert days[10]["reason_id"] == "Belum berlalu (belum dinilai)"
    assert days[30]["status"] == "-" and days[20]["status"] == "CT"
    assert payroll.recap("2026-11")[0] == recaps
    # The next day, the 10th is judged (no out-punch: PSW4) and nothing else of the past moves.
    tomorrow = Payroll(store, load_rules(), today=lambda: date(2026, 11, 11))
    moved = tomorrow.recompute(*month_bounds("2026-11"), actor="clerk", reason="next day")
    assert moved.changed == 2  # the 10th of Budi and Siti (Andi has no shift that day)
    day10 = {d["day"].day: d for d in tomorrow.explain(BUDI, "2026-11")}[10]
    assert (day10["status"], day10["psw"]) == ("H", 4)
