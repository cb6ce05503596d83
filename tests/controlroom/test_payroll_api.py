"""The payroll API against a real PostgreSQL: the recap for payroll and the filing files need
an API key (personal data), changes need the bkpsdm or admin role and are audited under the
key's user, a late leave entered through the API changes exactly its days, bad input is a
clear 422 and changes nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import openpyxl
import pytest
from fastapi.testclient import TestClient

from controlroom.attendance.payroll import Payroll
from controlroom.attendance.payroll_store import EmployeeRow, PayrollStore, UnitRow
from controlroom.attendance.rules import load_rules
from controlroom.attendance.store import AttendanceStore, Punch, PunchBatch
from controlroom.settings import ApiKey
from controlroom.storage.migrate import migrate
from controlroom.storage.store import Store, open_pool
from controlroom.traffic.access import KeyRing
from controlroom.web.api import create_api

WIB = timezone(timedelta(hours=7))
NIP = "198504122010011003"
CLERK, VIEWER, OPERATOR = "kunci-bkpsdm-0123456789", "kunci-viewer-0123456789", "kunci-op-0123456789"


@pytest.fixture
def api(pg_url: str) -> Iterator[tuple[TestClient, PayrollStore]]:
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    store = PayrollStore(pool)
    store.upsert_units([UnitRow("DISHUB", "Dinas Perhubungan", "DISHUB")], actor="test")
    store.upsert_employees([EmployeeRow(NIP, "Budi Santoso", "DISHUB", "DISHUB", "Analis")],
                           source="simpeg", actor="test")
    store.replace_user_map([("", "17", NIP)], [NIP], actor="test")
    AttendanceStore(pool).store_batch(PunchBatch("M1", "b1", "e1", "Asia/Jakarta", [
        Punch("17", datetime(2026, 11, 2, 7, 45, tzinfo=WIB), 0),
        Punch("17", datetime(2026, 11, 2, 16, 5, tzinfo=WIB), 1)]))
    payroll = Payroll(store, load_rules())
    payroll.recompute_month("2026-11", actor="test", reason="month end")
    keys = KeyRing([ApiKey(user="rina", role="bkpsdm", key=CLERK),
                    ApiKey(user="sari", role="viewer", key=VIEWER),
                    ApiKey(user="joko", role="operator", key=OPERATOR)])
    app = create_api(Store(pool), dict, city="Kota Contoh", timezone="Asia/Jakarta",
                     stale_after_s=5, keys=keys, payroll=payroll)
    with TestClient(app) as client:
        yield client, store
    pool.close()


def test_the_recap_is_personal_data(api) -> None:
    client, _ = api
    assert client.get("/api/attendance/recap", params={"month": "2026-11"}).status_code == 401
    got = client.get("/api/attendance/recap", params={"month": "2026-11"},
                     headers={"X-API-Key": VIEWER})
    assert got.status_code == 200
    (budi,) = got.json()["employees"]
    assert (budi["nip"], budi["tl"], budi["absences"]) == (NIP, [1, 0, 0, 0], {"TK": 20})
    assert budi["lines"][0] == {"day": "2026-11-02", "code": "TL1", "pct": 0.5,
                                "text_id": "Terlambat 15 menit (masuk 07:45:00, jadwal 07:30)",
                                "text_en": "Late 15 min (in 07:45:00, schedule 07:30)"}
    assert got.json()["skpds"][0]["skpd"] == "DISHUB"
    bad = client.get("/api/attendance/recap", params={"month": "2026-13"},
                     headers={"X-API-Key": VIEWER})
    assert bad.status_code == 422


def test_the_filing_files(api) -> None:
    client, _ = api
    xlsx = client.get("/api/attendance/recap/export", params={"month": "2026-11"},
                      headers={"X-API-Key": VIEWER})
    assert xlsx.status_code == 200
    assert "rekap-kehadiran-2026-11.xlsx" in xlsx.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert {"Rekap", "Rincian", "Per SKPD"} <= set(book.sheetnames)
    csv = client.get("/api/attendance/recap/export", params={"month": "2026-11",
                                                              "format": "csv"},
                     headers={"X-API-Key": VIEWER})
    assert csv.status_code == 200 and NIP in csv.text
    days = client.get(f"/api/attendance/employees/{NIP}/days", params={"month": "2026-11"},
                      headers={"X-API-Key": VIEWER}).json()
    assert len(days) == 30 and days[1]["reason_en"].startswith("Late 15 min")
    assert client.get("/api/attendance/employees/199001012020011001/days",
                      params={"month": "2026-11"},
                      headers={"X-API-Key": VIEWER}).status_code == 404


def test_leave_through_the_api_is_role_checked_audited_and_recomputed(api) -> None:
    client, store = api
    body = {"nip": NIP, "type": "CS", "first_day": "2026-11-03", "last_day": "2026-11-04",
            "doc_ref": "445/12/RSUD/2026"}
    for key in (VIEWER, OPERATOR):
        refused = client.post("/api/attendance/leave", json=body, headers={"X-API-Key": key})
        assert refused.status_code == 403
    assert [a["actor"] for a in store.audit_log(action="refused")] == ["joko", "sari"]
    bad = client.post("/api/attendance/leave", json={**body, "type": "XX"},
                      headers={"X-API-Key": CLERK})
    assert bad.status_code == 422 and "XX" in bad.json()["detail"]
    assert store.leave(datetime(2026, 1, 1).date(), datetime(2026, 12, 31).date()) == []

    made = client.post("/api/attendance/leave", json=body, headers={"X-API-Key": CLERK})
    assert made.status_code == 201
    assert made.json()["changed_days"] == 2
    changes = store.audit_log(action="day_changed")
    assert {(c["actor"], c["detail"]["day"]) for c in changes} == {
        ("rina", "2026-11-03"), ("rina", "2026-11-04")}
    recap = client.get("/api/attendance/recap", params={"month": "2026-11"},
                       headers={"X-API-Key": CLERK}).json()
    assert recap["employees"][0]["absences"] == {"CS": 2, "TK": 18}

    revoked = client.post(f"/api/attendance/leave/{made.json()['leave_id']}/revoke",
                          json={"reason": "wrong employee"}, headers={"X-API-Key": CLERK})
    assert revoked.status_code == 200 and revoked.json()["changed_days"] == 2
    assert client.post(f"/api/attendance/leave/{made.json()['leave_id']}/revoke",
                       json={"reason": "again"}, headers={"X-API-Key": CLERK}).status_code == 404
    audit = client.get("/api/attendance/audit", params={"nip": NIP},
                       headers={"X-API-Key": VIEWER}).json()
    assert {"leave_added", "leave_revoked", "day_changed"} <= {a["action"] for a in audit}
