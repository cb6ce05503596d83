"""The attendance page's own API against a real PostgreSQL and the SIMPEG emulator: today's
presence per SKPD as the engine judges the punches so far (on time, late by TL bracket, no
punch yet, on leave, off), punches per machine today, the rules and leave records the page
shows, and the SIMPEG sync — its status, what SIMPEG rejected and why, and a round run now by
a clerk (audited under the clerk's name; 401, 403 audited, 422 and 409 change nothing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from controlroom.attendance.payroll import Payroll
from controlroom.attendance.payroll_job import PayrollJob
from controlroom.attendance.payroll_store import EmployeeRow, LeaveRow, PayrollStore, UnitRow
from controlroom.attendance.rules import load_rules
from controlroom.attendance.simpeg import SimpegClient
from controlroom.attendance.store import AttendanceStore, MachineStatus, Punch, PunchBatch
from controlroom.attendance.sync import SimpegSync
from controlroom.settings import ApiKey
from controlroom.storage.migrate import migrate
from controlroom.storage.store import Store, open_pool
from controlroom.traffic.access import KeyRing
from controlroom.web.api import create_api
from simulators.simpeg import SimpegServer, sample_world

WIB = timezone(timedelta(hours=7))
TODAY = date(2026, 11, 3)  # a Tuesday: 07:30–16:00
CLERK, OPERATOR = "kunci-bkpsdm-0123456789", "kunci-op-0123456789"
KEYS = KeyRing([ApiKey(user="rina", role="bkpsdm", key=CLERK),
                ApiKey(user="joko", role="operator", key=OPERATOR)])
ON_TIME, LATE, NO_PUNCH, ON_LEAVE = ("198504122010011003", "199001012015011001",
                                     "198807152012012002", "197912302005011004")
OTHER = "199203142019031005"  # another SKPD, in on time


def at(hh: int, mm: int, ss: int = 0, day: date = TODAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=WIB)


@pytest.fixture
def office(pg_url: str) -> Iterator[tuple[TestClient, PayrollStore]]:
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    store = PayrollStore(pool)
    store.upsert_units([UnitRow("DISHUB", "Dinas Perhubungan", "DISHUB"),
                        UnitRow("BKPSDM", "BKPSDM", "BKPSDM")], actor="test")
    store.upsert_employees([EmployeeRow(n, f"Pegawai {k}", "DISHUB", "DISHUB", "Analis")
                            for k, n in enumerate((ON_TIME, LATE, NO_PUNCH, ON_LEAVE))]
                           + [EmployeeRow(OTHER, "Pegawai BKPSDM", "BKPSDM", "BKPSDM", "Analis")],
                           source="simpeg", actor="test")
    ids = [("", str(k + 10), n) for k, n in enumerate((ON_TIME, LATE, NO_PUNCH, ON_LEAVE, OTHER))]
    store.replace_user_map(ids, [n for _, _, n in ids], actor="test")
    store.add_leave(LeaveRow(ON_LEAVE, "CS", TODAY, TODAY + timedelta(days=1), "445/1/2026",
                             "bkpsdm", "t1"), actor="test")
    machines = AttendanceStore(pool)
    machines.update_machines([MachineStatus("M-DISHUB", "edge-1", datetime.now(WIB), True,
                                            office="Dinas Perhubungan"),
                              MachineStatus("M-BKPSDM", "edge-1", datetime.now(WIB), True,
                                            office="BKPSDM")])
    machines.store_batch(PunchBatch("M-DISHUB", "b1", "edge-1", "Asia/Jakarta", [
        Punch("10", at(7, 20, 5), 0), Punch("10", at(16, 5), 1),
        Punch("11", at(8, 5, 30), 0),  # 35 min late: TL2 (31–60)
        Punch("10", at(7, 10, day=TODAY - timedelta(days=1)), 0)]))  # yesterday: not today's
    machines.store_batch(PunchBatch("M-BKPSDM", "b2", "edge-1", "Asia/Jakarta", [
        Punch("14", at(7, 29, 59), 0)]))
    payroll = Payroll(store, load_rules(), today=lambda: TODAY)
    app = create_api(Store(pool), dict, city="Kota Contoh", timezone="Asia/Jakarta",
                     stale_after_s=5, keys=KEYS, attendance=machines, payroll=payroll)
    with TestClient(app) as client:
        yield client, store
    pool.close()


def test_today_counts_each_skpd_as_the_engine_judges_the_punches_so_far(office) -> None:
    client, store = office
    assert client.get("/api/attendance/today").status_code == 401
    got = client.get("/api/attendance/today", headers={"X-API-Key": OPERATOR})
    assert got.status_code == 200
    body = got.json()
    assert body["day"] == "2026-11-03" and body["employees"] is None
    skpds = {s["skpd"]: s for s in body["skpds"]}
    dishub = skpds["DISHUB"]
    assert (dishub["employees"], dishub["scheduled"], dishub["present"], dishub["on_time"],
            dishub["late"], dishub["late_by_tl"], dishub["no_punch"], dishub["leave"],
            dishub["off"]) == (4, 3, 2, 1, 1, [0, 1, 0, 0], 1, {"CS": 1}, 0)
    assert dishub["skpd_name"] == "Dinas Perhubungan"
    assert (skpds["BKPSDM"]["present"], skpds["BKPSDM"]["on_time"]) == (1, 1)
    machines = {m["device_sn"]: m for m in body["machines"]}
    # Yesterday's punch is not today's; machines are placed in their SKPD by office name.
    assert machines["M-DISHUB"]["punches_today"] == 3
    assert machines["M-DISHUB"]["skpd"] == "DISHUB"
    assert machines["M-BKPSDM"]["punches_today"] == 1
    assert datetime.fromisoformat(machines["M-DISHUB"]["last_punch"]) == at(16, 5)

    one = client.get("/api/attendance/today", params={"skpd": "DISHUB"},
                     headers={"X-API-Key": CLERK}).json()
    people = {p["nip"]: p for p in one["employees"]}
    assert set(people) == {ON_TIME, LATE, NO_PUNCH, ON_LEAVE}
    assert (people[ON_TIME]["state"], people[ON_TIME]["in_time"], people[ON_TIME]["out_time"],
            people[ON_TIME]["tl"]) == ("present", "07:20:05", "16:05:00", 0)
    assert (people[LATE]["state"], people[LATE]["late_min"], people[LATE]["tl"],
            people[LATE]["scheduled_start"]) == ("present", 35, 2, "07:30")
    assert people[NO_PUNCH]["state"] == "no_punch"
    assert (people[ON_LEAVE]["state"], people[ON_LEAVE]["leave"]) == ("leave", "CS")
    # Nothing stored: today's presence is a view, not a judgement.
    assert store.days(TODAY, TODAY) == []


def test_rules_and_leave_records_the_page_shows(office) -> None:
    client, _ = office
    assert client.get("/api/attendance/rules").status_code == 401
    rules = client.get("/api/attendance/rules", params={"month": "2026-11"},
                       headers={"X-API-Key": CLERK}).json()
    assert [b["code"] for b in rules["late"]["brackets"]] == ["TL1", "TL2", "TL3", "TL4"]
    assert rules["late"]["brackets"][1] == {"code": "TL2", "from_min": 31, "pct": 1.0}
    assert rules["absent_cut_pct"] == 3.0
    assert {"CT", "CS", "DL"} <= {k["code"] for k in rules["leave_types"]}
    assert client.get("/api/attendance/rules", params={"month": "2026-13"},
                      headers={"X-API-Key": CLERK}).status_code == 422

    leave = client.get("/api/attendance/leave", params={"month": "2026-11"},
                       headers={"X-API-Key": CLERK}).json()
    assert [(r["nip"], r["code"], r["first_day"], r["name"]) for r in leave] == [
        (ON_LEAVE, "CS", "2026-11-03", "Pegawai 3")]
    assert client.get("/api/attendance/leave", params={"month": "2026-10"},
                      headers={"X-API-Key": CLERK}).json() == []
    assert client.get("/api/attendance/leave", params={"month": "2026-11", "nip": "123"},
                      headers={"X-API-Key": CLERK}).status_code == 422


def test_no_simpeg_configured_is_said_and_sync_refused(office) -> None:
    client, store = office
    status = client.get("/api/attendance/simpeg", headers={"X-API-Key": CLERK}).json()
    assert status["configured"] is False and status["round"] is None
    got = client.post("/api/attendance/simpeg/sync", json={"reason": "month end"},
                      headers={"X-API-Key": CLERK})
    assert got.status_code == 409 and "SIMPEG" in got.json()["detail"]


@pytest.fixture
def simpeg(pg_url: str) -> Iterator[tuple[TestClient, PayrollStore, SimpegServer]]:
    today = date(2026, 12, 3)
    world = sample_world(employees=12, seed=2, skpds=2, today=today, leave_share=0)
    world.today = today
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    store = PayrollStore(pool)
    payroll = Payroll(store, load_rules(), today=lambda: today)
    with SimpegServer(world, client_id="k", client_secret="s") as server, SimpegClient(
            server.url, "k", "s", timeout_s=2, retries=1, backoff_s=0.01) as client:
        job = PayrollJob(payroll, SimpegSync(client, payroll), interval_s=3600,
                         today=lambda: today)
        app = create_api(Store(pool), dict, city="Kota Contoh", timezone="Asia/Jakarta",
                         stale_after_s=5, keys=KEYS, attendance=AttendanceStore(pool),
                         payroll=payroll, payroll_job=job)
        with TestClient(app) as http:
            http.job = job  # type: ignore[attr-defined]  # the scheduled round's job
            yield http, store, server
    pool.close()


def test_a_clerk_runs_the_sync_and_sees_what_simpeg_accepted_and_rejected(simpeg) -> None:
    client, store, server = simpeg
    before = client.get("/api/attendance/simpeg", headers={"X-API-Key": CLERK}).json()
    assert before["configured"] is True and before["last_pull"] is None
    assert [u["period"] for u in before["uploads"]] == ["2026-11", "2026-12"]
    assert before["uploads"][0]["records"] == 0
    # Before the first pull there is nobody: an empty day, not an error.
    empty = client.get("/api/attendance/today", headers={"X-API-Key": CLERK})
    assert empty.status_code == 200 and empty.json()["skpds"] == []

    active = sorted(n for n, e in server.world.employees.items() if e.active)
    refused_nip = active[0]
    server.set_faults(reject_nips={refused_nip: "jabatan belum diverifikasi"})
    got = client.post("/api/attendance/simpeg/sync", json={"reason": "rekap akhir bulan"},
                      headers={"X-API-Key": CLERK})
    assert got.status_code == 200, got.text
    out = got.json()
    assert out["months"] == ["2026-11", "2026-12"] and "simpeg_error" not in out
    assert f"{len(active)} new" in out["pulled"]
    assert "1 rejected" in out["pushed_2026-11"]

    after = client.get("/api/attendance/simpeg", headers={"X-API-Key": OPERATOR}).json()
    assert after["round"]["simpeg"] == "ok" and after["round"]["last"]["at"] == out["at"]
    assert after["last_pull"]["detail"]["summary"] == out["pulled"]
    november = after["uploads"][0]
    assert (november["records"], november["accepted"], november["rejected"]) == (
        len(active), len(active) - 1, 1)
    assert [(r["nip"], r["reason"]) for r in november["rejections"]] == [
        (refused_nip, "jabatan belum diverifikasi")]
    assert november["rejections"][0]["name"] == server.world.employees[refused_nip].name
    assert after["uploads"][1]["records"] == 0  # December is not over: not sent
    (asked,) = store.audit_log(action="simpeg_sync_requested")
    assert (asked["actor"], asked["subject"]) == ("rina", "2026-11,2026-12")
    assert asked["detail"]["reason"] == "rekap akhir bulan"
    assert asked["detail"]["after"]["pulled"] == out["pulled"]
    assert {"simpeg_sync_requested", "simpeg_pulled", "recap_uploaded"} <= {
        h["action"] for h in after["history"]}

    # SIMPEG down: the round answers with the error, the status says so.
    server.set_faults(fail_next=1000)
    down = client.post("/api/attendance/simpeg/sync", json={"reason": "coba lagi"},
                       headers={"X-API-Key": CLERK}).json()
    assert "simpeg_error" in down
    status = client.get("/api/attendance/simpeg", headers={"X-API-Key": CLERK}).json()
    assert status["round"]["simpeg"] == "down"
    assert status["round"]["last"]["simpeg_error"] == down["simpeg_error"]


def test_a_sync_asked_for_while_the_scheduled_round_runs_is_refused_not_run_twice(
        simpeg) -> None:
    client, store, server = simpeg
    job: PayrollJob = client.job
    server.set_faults(delay_s=0.4)  # SIMPEG answers slowly: the round takes a while
    scheduled = threading.Thread(target=job.run_once)
    scheduled.start()
    deadline = time.monotonic() + 5
    while not job.busy:
        assert time.monotonic() < deadline, "the round did not start"
        time.sleep(0.01)
    status = client.get("/api/attendance/simpeg", headers={"X-API-Key": CLERK}).json()
    assert status["round"]["running"] is True
    busy = client.post("/api/attendance/simpeg/sync", json={"reason": "rekap akhir bulan"},
                       headers={"X-API-Key": CLERK})
    assert busy.status_code == 409 and "round is running" in busy.json()["detail"]
    assert store.audit_log(action="simpeg_sync_requested") == []
    scheduled.join(30)
    server.set_faults(delay_s=0.0)
    done = client.post("/api/attendance/simpeg/sync", json={"reason": "rekap akhir bulan"},
                       headers={"X-API-Key": CLERK})
    assert done.status_code == 200, done.text
    assert len(store.audit_log(action="simpeg_sync_requested")) == 1


def test_refused_syncs_change_nothing(simpeg) -> None:
    client, store, server = simpeg
    state = (store.audit_log(limit=10_000), store.employees(include_inactive=True),
             server.world.recaps.copy())
    assert client.post("/api/attendance/simpeg/sync",
                       json={"reason": "x"}).status_code == 401
    refused = client.post("/api/attendance/simpeg/sync", json={"reason": "x"},
                          headers={"X-API-Key": OPERATOR})
    assert refused.status_code == 403 and "bkpsdm or admin" in refused.json()["detail"]
    for bad in ({}, {"reason": ""}, {"reason": "x", "month": "2026-11"}, {"reason": "x" * 301}):
        got = client.post("/api/attendance/simpeg/sync", json=bad, headers={"X-API-Key": CLERK})
        assert got.status_code == 422, bad
    got = client.post("/api/attendance/simpeg/sync", content=b"{not json",
                      headers={"X-API-Key": CLERK, "Content-Type": "application/json"})
    assert got.status_code == 422
    (denied,) = store.audit_log(action="refused")
    assert (denied["actor"], denied["subject"]) == ("joko", "/api/attendance/simpeg/sync")
    assert store.audit_log(limit=10_000)[1:] == state[0]
    assert store.employees(include_inactive=True) == state[1] == []
    assert server.world.recaps == state[2] == {}
