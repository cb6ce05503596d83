"""The BKPSDM clerk's attendance page in a real browser against the running demo: the three
offices' machines online with today's presence as the engine judges it, the SIMPEG sync run
from the page, last month's recap per SKPD and per employee, one employee's cuts explained
line by line with the rule that applied, the recap downloaded as a real XLSX and CSV holding
the API's employees, a leave entered for one employee changing that employee's recap and no
one else's (and revoked again); an operator is refused the page and the changes."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl

from controlroom.attendance.export import CSV_DELIMITER
from tests.dashboard.conftest import Demo, shot


def _today(demo: Demo) -> date:
    return date.fromisoformat(demo.get("/api/attendance/today", "bkpsdm").json()["day"])


def _recap(demo: Demo, month: str) -> dict[str, dict[str, Any]]:
    got = demo.get("/api/attendance/recap", "bkpsdm", params={"month": month})
    assert got.status_code == 200, got.text
    return {e["nip"]: e for e in got.json()["employees"]}


def _number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def test_machines_presence_and_the_simpeg_sync(new_page, demo: Demo) -> None:
    page = new_page("bkpsdm")  # the clerk lands on the attendance page
    page.wait_for_selector("section[data-page=attendance] #att-today [data-skpd] li[data-sn]")
    page.wait_for_selector("#simpeg-state")
    machines = page.locator("#att-today li[data-sn]")
    assert machines.count() == 3
    assert page.locator("#att-today li[data-sn] [data-online=true]").count() == 3
    cards = page.locator("#att-today .att-card[data-skpd]")
    shown = {}
    for k in range(cards.count()):
        card = cards.nth(k)
        stat = {s: _number(card.locator(f"[data-stat={s}] .att-n").inner_text())
                for s in ("scheduled", "present", "on_time", "late", "no_punch", "on_leave",
                          "off")}
        shown[card.get_attribute("data-skpd")] = stat
        assert card.locator("li[data-sn]").count() == 1  # one machine per office in the demo
    api = {s["skpd"]: s for s in demo.get("/api/attendance/today", "bkpsdm").json()["skpds"]}
    assert set(shown) == set(api) == {"SETDA", "BKPSDM", "DINKES"}
    for code, stat in shown.items():
        a = api[code]
        # Who is due and who is on leave is fixed for the day; punches only add presence.
        assert (stat["scheduled"], stat["on_leave"], stat["off"]) == (
            a["scheduled"], sum(a["leave"].values()), a["off"])
        assert stat["present"] + stat["no_punch"] == stat["scheduled"]
        assert stat["on_time"] + stat["late"] == stat["present"] <= a["present"]
    assert "terhubung" in page.inner_text("#simpeg-state")
    assert page.inner_text("#simpeg-last-pull") != "—"
    shot(page, "attendance-1920")

    # One office's staff, one by one.
    page.click("#att-today .att-card[data-skpd=BKPSDM] [data-action=staff]")
    page.wait_for_selector("#att-today .att-card[data-skpd=BKPSDM] table.att-staff tbody tr")
    assert page.locator("#att-today .att-card[data-skpd=BKPSDM] table.att-staff tbody tr"
                        ).count() == 60

    # Sync now, confirmed with a reason; the server's answer is shown and audited.
    page.click("#simpeg-sync")
    page.fill(".dialog input[name=reason]", "uji dasbor: sinkron manual")
    page.click(".dialog [data-action=confirm]")
    page.wait_for_selector("#simpeg-answer.ok-text", timeout=60_000)
    assert "Sinkronisasi selesai" in page.inner_text("#simpeg-answer")
    audit = demo.get("/api/attendance/audit", "bkpsdm",
                     params={"action": "simpeg_sync_requested"}).json()
    assert audit[0]["actor"] == "bkpsdm"
    assert audit[0]["detail"]["reason"] == "uji dasbor: sinkron manual"

    page.click("#lang")
    page.wait_for_selector("text=Civil servants' attendance")
    page.wait_for_selector("#simpeg-state")
    assert "answering" in page.inner_text("#simpeg-state")
    assert page.get_attribute("#recap-xlsx", "href").endswith("lang=en")
    shot(page, "attendance-en-1920")

    laptop = new_page("bkpsdm", viewport=(1366, 768))
    laptop.wait_for_selector("#att-today li[data-sn] [data-online=true]")
    laptop.wait_for_selector("#recap-employees tbody tr")
    shot(laptop, "attendance-1366")


def test_recap_explained_downloaded_and_a_leave_changes_only_its_employee(new_page,
                                                                          demo: Demo) -> None:
    today = _today(demo)
    month = f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"  # last month: over
    # Judge it once from everything stored, so the payroll round has nothing left to change.
    settled = demo.post("/api/attendance/recompute", "bkpsdm",
                        json={"month": month, "reason": "uji dasbor"})
    assert settled.status_code == 200, settled.text
    before = _recap(demo, month)

    page = new_page("bkpsdm")
    page.goto(f"/#/attendance/{month}")
    page.wait_for_function("n => document.querySelectorAll('#recap-employees tbody tr').length "
                           "=== n", arg=len(before))
    assert page.locator("#recap-skpds tbody tr").count() == 3
    assert page.input_value("#recap-month") == month
    page.select_option("#recap-sort", "cut")  # the largest cut first
    worst = min(before.values(), key=lambda e: (-e["cut_pct"], e["nip"]))
    assert page.get_attribute("#recap-employees tbody tr:first-child", "data-nip") == worst["nip"]
    page.select_option("#recap-sort", "nip")

    with page.expect_download() as xlsx:
        page.click("#recap-xlsx")
    assert xlsx.value.suggested_filename == f"rekap-kehadiran-{month}.xlsx"
    body = Path(xlsx.value.path()).read_bytes()
    assert body[:2] == b"PK"  # a real workbook (a zip), not an error page
    book = openpyxl.load_workbook(io.BytesIO(body))
    filed = {str(c) for row in book["Rekap"].iter_rows(values_only=True) for c in row
             if c is not None and re.fullmatch(r"\d{18}", str(c))}
    assert filed == set(before)
    with page.expect_download() as csv_file:
        page.click("#recap-csv")
    assert csv_file.value.suggested_filename == f"rekap-kehadiran-{month}.csv"
    text = Path(csv_file.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=CSV_DELIMITER))
    assert len(rows) == len(before) + 1  # a header, then one row per employee
    assert {c for r in rows for c in r if re.fullmatch(r"\d{18}", c)} == set(before)

    # Someone with an unexcused absence (TK) and a late day: each cut line and its rule.
    def tk_day(e: dict[str, Any]) -> str | None:
        return next((x["day"] for x in e["lines"] if x["code"] == "TK"), None)

    candidates = [e for e in before.values() if tk_day(e)]
    assert candidates, "the demo's last month holds no unexcused absence"
    who = max(candidates, key=lambda e: (any(x["code"].startswith("TL") for x in e["lines"]),
                                         len(e["lines"])))
    nip, day = who["nip"], tk_day(who)
    page.click(f"#recap-employees tr[data-nip='{nip}'] a")
    page.wait_for_selector("#emp-lines tbody tr")
    lines = page.locator("#emp-lines tbody tr")
    assert lines.count() == len(who["lines"])
    for k, line in enumerate(who["lines"]):
        text = lines.nth(k).inner_text()
        assert line["text_id"] in text and line["code"] in text
        if line["code"] == "TK":
            assert "3,00 %" in text and "Tanpa keterangan (TK): 3,00 % per hari" in text
        if line["code"].startswith("TL"):
            assert "mulai menit ke-" in text
    assert page.locator(f"#emp-days-table tr[data-day='{day}'][data-status=TK]").count() == 1
    cut_before = page.inner_text("#emp-cut")
    shot(page, "attendance-employee-1920")

    # Leave for that day, confirmed twice: the recap changes for exactly this employee.
    page.click("#leave-add")
    assert page.input_value(".dialog input[name=nip]") == nip
    page.select_option(".dialog select[name=type]", "CS")
    page.fill(".dialog input[name=first_day]", day)
    page.fill(".dialog input[name=last_day]", day)
    page.fill(".dialog input[name=doc_ref]", "800/UJI/BKPSDM/2026")
    page.click(".dialog [data-action=confirm]")
    page.wait_for_selector(".dialog >> text=Simpan CS")
    page.click(".dialog [data-action=confirm]")
    page.wait_for_selector("#leave-answer.ok-text", timeout=30_000)
    assert "1 hari berubah" in page.inner_text("#leave-answer")
    page.wait_for_function("([sel, old]) => document.querySelector(sel)?.innerText !== old",
                           arg=["#emp-cut", cut_before])
    after = _recap(demo, month)
    assert {n for n in before if before[n] != after.get(n)} == {nip}
    mine, was = after[nip], before[nip]
    assert mine["absences"].get("CS", 0) == was["absences"].get("CS", 0) + 1
    assert mine["absences"].get("TK", 0) == was["absences"]["TK"] - 1
    assert round(was["cut_uncapped_pct"] - mine["cut_uncapped_pct"], 6) == 3.0
    assert page.locator(f"#emp-days-table tr[data-day='{day}'][data-status=CS]").count() == 1

    # Revoked again, with a reason: the employee's recap is as before.
    page.click("#leave-table tr:not(.att-revoked):has-text('800/UJI/BKPSDM/2026') "
               "[data-action=revoke]")
    page.fill(".dialog input[name=reason]", "uji dasbor selesai")
    page.click(".dialog [data-action=confirm]")
    page.wait_for_selector("#leave-answer:has-text('dicabut')", timeout=30_000)
    assert _recap(demo, month)[nip] == was

    laptop = new_page("bkpsdm", viewport=(1366, 768))
    laptop.goto(f"/#/attendance/{month}/{nip}")
    laptop.wait_for_selector("#emp-days-table tbody tr")
    shot(laptop, "attendance-employee-1366")


def test_an_operator_is_refused_the_page_and_every_change(new_page, demo: Demo) -> None:
    page = new_page("operator")
    assert page.locator("#nav a[data-page=attendance]").count() == 0
    page.goto("/#/attendance")
    page.wait_for_selector("#no-access")
    assert page.locator("section[data-page=attendance]").count() == 0

    day = _today(demo).replace(day=1).isoformat()
    nip = next(iter(_recap(demo, day[:7])))
    leave = {"nip": nip, "type": "CT", "first_day": day, "last_day": day,
             "doc_ref": "800/1/BKPSDM/2026"}
    held = demo.get("/api/attendance/leave", "bkpsdm", params={"month": day[:7],
                                                               "revoked": "true"}).json()
    assert demo.post("/api/attendance/leave", "operator", json=leave).status_code == 403

    # The sync endpoint: no log-in 401, operator 403, a clerk's cookie without its CSRF token
    # 403, malformed 422 — and no sync was run.
    asked = len(demo.get("/api/attendance/audit", "bkpsdm",
                         params={"action": "simpeg_sync_requested"}).json())
    url = demo.base + "/api/attendance/simpeg/sync"
    assert httpx.post(url, json={"reason": "x"}).status_code == 401
    with httpx.Client(base_url=demo.base) as clerk, httpx.Client(base_url=demo.base) as op:
        token = clerk.post("/api/auth/login", json={"name": "bkpsdm",
                                                    "password": demo.users["bkpsdm"]}
                           ).json()["csrf_token"]
        op_token = op.post("/api/auth/login", json={"name": "operator",
                                                    "password": demo.users["operator"]}
                           ).json()["csrf_token"]
        assert op.post("/api/attendance/simpeg/sync", json={"reason": "x"},
                       headers={"X-CSRF-Token": op_token}).status_code == 403
        no_csrf = clerk.post("/api/attendance/simpeg/sync", json={"reason": "x"})
        assert no_csrf.status_code == 403 and "X-CSRF-Token" in no_csrf.text
        bad = clerk.post("/api/attendance/simpeg/sync", json={"reason": "x", "force": True},
                         headers={"X-CSRF-Token": token})
        assert bad.status_code == 422
    assert len(demo.get("/api/attendance/audit", "bkpsdm",
                        params={"action": "simpeg_sync_requested"}).json()) == asked
    assert demo.get("/api/attendance/leave", "bkpsdm", params={"month": day[:7],
                                                               "revoked": "true"}).json() == held
