"""SIMPEG sync end to end: the real client against the SIMPEG emulator over loopback HTTP, our
payroll tables in a real PostgreSQL, and every fault the emulator has — 500 bursts, an expiring
token, slowness, malformed records, rejected NIPs, a 500 after SIMPEG stored a recap, SIMPEG
down. Afterwards SIMPEG holds exactly one record per employee (a new revision only where the
recap changed), our upload log says what SIMPEG answered, and nothing is missing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest

from controlroom.attendance.payroll import Payroll, month_bounds
from controlroom.attendance.payroll_store import PayrollStore
from controlroom.attendance.rules import load_rules
from controlroom.attendance.simpeg import SimpegClient, SimpegUnavailable
from controlroom.attendance.store import AttendanceStore, Punch, PunchBatch
from controlroom.attendance.sync import SimpegSync
from controlroom.storage.migrate import migrate
from controlroom.storage.store import open_pool
from simulators.simpeg import SimpegServer, sample_world
from simulators.simpeg.world import Leave

ID, SECRET = "kota-pintar", "rahasia"
WIB = timezone(timedelta(hours=7))
PERIOD = "2026-11"


@pytest.fixture
def setup(pg_url: str) -> Iterator[tuple[SimpegServer, SimpegSync, Payroll, AttendanceStore]]:
    world = sample_world(employees=40, seed=5, skpds=3, today=date(2026, 12, 3), leave_share=0)
    world.today = date(2026, 12, 3)
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    payroll = Payroll(PayrollStore(pool), load_rules())
    with SimpegServer(world, client_id=ID, client_secret=SECRET) as server, SimpegClient(
            server.url, ID, SECRET, timeout_s=2.0, retries=4, backoff_s=0.01,
            per_page=7) as client:
        yield server, SimpegSync(client, payroll), payroll, AttendanceStore(pool)
    pool.close()


def punch_everyone_on_time(server: SimpegServer, att: AttendanceStore) -> None:
    """Each active employee punches 07:20 and 16:40 on every November weekday, on the first
    machine SIMPEG lists for them (by the id that machine holds)."""
    days = [date(2026, 11, d) for d in range(1, 31) if date(2026, 11, d).weekday() < 5]
    for k, e in enumerate(sorted(server.world.employees.values(), key=lambda e: e.nip)):
        if not e.active or not e.machine_ids:
            continue
        m = e.machine_ids[0]
        sn = m.sn or "ANY-MACHINE"
        times = [datetime(d.year, d.month, d.day, h, mi, tzinfo=WIB)
                 for d in days for h, mi in ((7, 20), (16, 40))]
        if e.schedule_group == "shift":
            continue  # no roster in this test: their days are off
        att.store_batch(PunchBatch(sn, f"b{k}", "office", "Asia/Jakarta",
                                   [Punch(m.user_id, t, 0) for t in times]))


def test_sync_through_every_fault_loses_and_duplicates_nothing(setup) -> None:
    server, sync, payroll, att = setup
    first, last = month_bounds(PERIOD)
    victim = sorted(server.world.employees)[3]
    server.set_faults(fail_next=2, token_max_uses=3, delay_s=0.01,
                      corrupt_employees={victim: {"nip": "not-a-nip"}})
    pulled = sync.pull(first, last, actor="sync")
    server.set_faults(fail_next=0, token_max_uses=None, corrupt_employees={})
    active = {n for n, e in server.world.employees.items() if e.active}
    stored = {e["nip"] for e in payroll.store.employees()}
    assert stored == active - {victim}  # the malformed one is skipped and reported
    assert any(kind == "employee" for kind, _, _ in pulled.skipped)
    assert pulled.machine_ids > 0
    assert sync.pull(first, last, actor="sync").employees_new == 1  # repaired: it comes in

    punch_everyone_on_time(server, att)
    report, recaps, _ = payroll.recompute_month(PERIOD, actor="clerk", reason="month end")
    regular = [r for r in recaps if r.cut_pct == 0 and r.present_days > 0]
    assert len(regular) >= len(recaps) // 2  # the machine ids mapped punches to NIPs

    # First upload: one NIP refused by SIMPEG, a 500 before the token call and a 500 after
    # SIMPEG stored the batch (the retry is recognised): one record per employee, no more.
    rejected = sorted(active)[0]
    server.set_faults(reject_nips={rejected: "pegawai sedang diberhentikan sementara"},
                      fail_next=1, fail_after_store=1, delay_s=0.0)
    up = sync.push(PERIOD, actor="sync").sent
    assert up.rejected == ((rejected, "pegawai sedang diberhentikan sementara"),)
    assert up.accepted + up.duplicate == len(recaps) - 1
    log = {u["nip"]: u for u in payroll.store.uploads(PERIOD)}
    assert log[rejected]["status"] == "rejected"
    assert "diberhentikan" in log[rejected]["reason"]
    assert len(server.world.recaps) == len(recaps) - 1
    assert {r.revision for r in server.world.recaps.values()} == {1}

    # The cause lifted: only the rejected recap is sent again, and taken.
    server.set_faults(reject_nips={})
    again = sync.push(PERIOD, actor="sync")
    assert (again.sent.accepted, again.unchanged) == (1, len(recaps) - 1)
    assert len(server.world.recaps) == len(recaps)
    # Nothing changed: nothing sent. Sent anyway (resend): all duplicates, still one each.
    assert sync.push(PERIOD, actor="sync").unchanged == len(recaps)
    forced = sync.push(PERIOD, actor="sync", resend=True).sent
    assert (forced.accepted, forced.duplicate) == (0, len(recaps))
    assert {r.revision for r in server.world.recaps.values()} == {1}

    # A leave approved late in SIMPEG: the pull names the month, its recompute changes that
    # employee's days only, and the next push makes revision 2 of that recap alone.
    who = sorted(n for n in active if n != victim and n != rejected
                 and server.world.employees[n].schedule_group != "shift"
                 and server.world.employees[n].machine_ids)[0]
    server.world.leave["L-late"] = Leave("L-late", who, "CT", date(2026, 11, 9),
                                         date(2026, 11, 10), "800/9/BKPSDM/2026")
    late = sync.pull(first, last, actor="sync")
    assert late.leave_added == 1 and late.months == {PERIOD}
    changed = payroll.recompute(first, last, actor="sync", reason="SIMPEG sync")
    assert changed.changed == 2
    audit = payroll.store.audit_log(action="day_changed")
    assert {a["subject"] for a in audit} == {who}
    third = sync.push(PERIOD, actor="sync")
    assert (third.sent.accepted, third.sent.revised, third.unchanged) == (1, 1, len(recaps) - 1)
    assert server.world.recaps[(PERIOD, who)].revision == 2
    assert sum(r.revision for r in server.world.recaps.values()) == len(recaps) + 1

    # SIMPEG down: a clear error after the retries, nothing of ours lost; back up: it goes on.
    server.set_faults(fail_next=100)
    with pytest.raises(SimpegUnavailable, match="SIMPEG"):
        sync.push(PERIOD, actor="sync", resend=True)
    with pytest.raises(SimpegUnavailable):
        sync.pull(first, last, actor="sync")
    assert len(payroll.store.employees()) == len(active)
    server.set_faults(fail_next=0)
    fourth = sync.push(PERIOD, actor="sync", resend=True).sent
    assert fourth.duplicate == len(recaps) and fourth.accepted == 0
    assert len(server.world.recaps) == len(recaps)


def test_an_employee_whose_nip_breaks_the_nip_rules_is_skipped_with_the_reason(setup) -> None:
    server, sync, payroll, _ = setup
    first, last = month_bounds(PERIOD)
    good = sorted(n for n, e in server.world.employees.items() if e.active)[0]
    bad = good[:12] + "13" + good[14:]  # CPNS start month 13
    server.set_faults(corrupt_employees={good: {"nip": bad}})
    pulled = sync.pull(first, last, actor="sync")
    problems = {key: problem for kind, key, problem in pulled.skipped if kind == "employee"}
    assert bad in problems and "not a valid NIP" in problems[bad] and "month" in problems[bad]
    assert payroll.store.employee(bad) is None and payroll.store.employee(good) is None


def test_a_leave_cancelled_in_simpeg_is_revoked_and_its_month_named(setup) -> None:
    server, sync, payroll, _ = setup
    first, last = month_bounds(PERIOD)
    nip = sorted(n for n, e in server.world.employees.items() if e.active)[1]
    server.world.leave["L1"] = Leave("L1", nip, "DL", date(2026, 11, 16), date(2026, 11, 18),
                                     "094/12/DISHUB/2026")
    server.world.leave["L2"] = Leave("L2", nip, "ZZ", date(2026, 11, 19), date(2026, 11, 19),
                                     "x")
    first_pull = sync.pull(first, last, actor="sync")
    assert first_pull.leave_added == 1
    assert ("leave", "L2") in {(k, key) for k, key, _ in first_pull.skipped}
    assert sync.pull(first, last, actor="sync").leave_added == 0  # the same again: no change
    server.world.leave["L1"].status = "dibatalkan"
    cancelled = sync.pull(first, last, actor="sync")
    assert cancelled.leave_revoked == 1 and cancelled.months == {PERIOD}
    assert payroll.store.leave(first, last) == []
    assert payroll.store.audit_log(action="leave_revoked")[0]["subject"] == nip
