"""`kota attendance …` in-process (``kota.cli.main``) against a real PostgreSQL (embedded and
system) and the SIMPEG emulator on loopback: rule checks, sync then recap, a late leave that
changes exactly its employee's days and no raw punch, exports, roster import, SIMPEG down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from controlroom.attendance.payroll_store import EmployeeRow, PayrollStore
from controlroom.attendance.store import AttendanceStore, Punch, PunchBatch
from controlroom.storage.migrate import migrate
from controlroom.storage.store import open_pool
from kota.cli import main
from simulators.simpeg import SimpegServer, SimpegWorld, sample_world

ID, SECRET = "kota-pintar", "rahasia-simpeg"
MONTH = "2026-10"
TODAY = date(2026, 10, 20)  # the emulator's today: its leave falls around October
WIB = ZoneInfo("Asia/Jakarta")
OTHER_SN = "KPCLI0001"  # the machine staff enrolled by NIP punch on
ABSENT_DAYS = (date(2026, 10, 12), date(2026, 10, 13), date(2026, 10, 14))  # Mon–Wed


def world() -> SimpegWorld:
    w = sample_world(employees=30, seed=1, today=TODAY)
    w.today = TODAY
    return w


def write_config(tmp_path: Path, pg_url: str, simpeg_url: str | None = None, **extra: str
                 ) -> Path:
    db = conninfo_to_dict(pg_url)  # the fixture gives key=value conninfo; settings want a URL
    url = (f"postgresql://{db.get('user', 'postgres')}@{db.get('host', '127.0.0.1')}:"
           f"{db.get('port', 5432)}/{db['dbname']}")
    lines = ["[site]", f'data_dir = "{tmp_path / "data"}"', 'city = "Kota Uji"',
             "[database]", f'url = "{url}"']
    if simpeg_url is not None:
        lines += ["[controlroom.attendance.simpeg]", f'base_url = "{simpeg_url}"',
                  f'client_id = "{ID}"', f'client_secret = "{SECRET}"', "timeout_s = 2",
                  "retries = 0"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    path = tmp_path / "kota.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path | None, *argv: object
        ) -> tuple[int, str, str]:
    head = ["--log-level", "WARNING"] + (["--config", str(config)] if config else [])
    code = main([*head, "attendance", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def simpeg() -> Iterator[SimpegServer]:
    with SimpegServer(world(), client_id=ID, client_secret=SECRET) as server:
        yield server


def machine_id(server: SimpegServer, nip: str) -> tuple[str, str]:
    m = server.world.employees[nip].machine_ids[0]
    return (m.sn or OTHER_SN, m.user_id)


def regular_staff(server: SimpegServer) -> list[str]:
    """Active employees on the weekly schedule with no SIMPEG leave in the month."""
    first, last = date(2026, 10, 1), date(2026, 10, 31)
    on_leave = {lv.nip for lv in server.world.leave.values() if lv.overlaps(first, last)}
    return sorted(n for n, e in server.world.employees.items()
                  if e.active and e.schedule_group == "reguler" and n not in on_leave)


def store_month_of_punches(pg_url: str, server: SimpegServer, absent_nip: str) -> int:
    """In 07:20, out 16:40 every weekday of the month for every active employee; `absent_nip`
    is away on ABSENT_DAYS. Returns the punches stored."""
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 2)
    try:
        store = AttendanceStore(pool)
        by_sn: dict[str, list[Punch]] = {}
        for nip, e in server.world.employees.items():
            if not e.active:
                continue
            sn, user = machine_id(server, nip)
            for k in range(31):
                day = date(2026, 10, 1) + timedelta(days=k)
                if day.weekday() >= 5 or (nip == absent_nip and day in ABSENT_DAYS):
                    continue
                by_sn.setdefault(sn, []).extend([
                    Punch(user, datetime.combine(day, time(7, 20), WIB), 0, 1),
                    Punch(user, datetime.combine(day, time(16, 40), WIB), 1, 1)])
        for sn, punches in by_sn.items():
            store.store_batch(PunchBatch(sn, f"b-{sn}", "kantor-uji", "Asia/Jakarta", punches))
        return sum(len(p) for p in by_sn.values())
    finally:
        pool.close()


def raw_punches(pg_url: str) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT device_sn, user_id, ts, local_ts, punch_state, batch_id "
                            "FROM attendance_punch ORDER BY 1, 2, 3").fetchall()


# --------------------------------------------------------------------------- no database


def test_rules_check_ok_and_a_bad_file_names_the_key_path(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, None, "rules", "check")
    assert code == 0
    assert "region:   default" in out and "valid from 2025-01-01" in out
    assert "leave types: CT, CS" in out and "holidays:    25" in out

    from controlroom.attendance.rules import load_rules

    text = Path(load_rules().source).name  # the shipped file, copied and broken
    shipped = (Path(__file__).parents[2] / "controlroom/attendance/rule_files" / text)
    bad = tmp_path / "aturan.toml"
    bad.write_text(shipped.read_text(encoding="utf-8").replace(
        '{ code = "TL2", from_min = 31', '{ code = "TL2", from_min = -5'), encoding="utf-8")
    code, out, err = run(capsys, None, "rules", "check", bad)
    assert code == 2 and out == ""
    assert "versions.0.late.brackets.1.from_min" in err and str(bad) in err
    code, _, err = run(capsys, None, "rules", "check", tmp_path / "missing.toml")
    assert code == 2 and "cannot read the rule file" in err


def test_bad_month_and_bad_dates_exit_2(capsys, tmp_path: Path) -> None:
    for argv in (["recap", "--month", "2026-13"], ["recompute", "--month", "11-2026",
                                                   "--reason", "x"],
                 ["leave", "add", "--nip", "1", "--type", "CT", "--from", "2026-11-31",
                  "--to", "2026-12-01", "--doc", "x"]):
        with pytest.raises(SystemExit) as exc:
            run(capsys, None, *argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "must be a month like 2026-11" in err or "is not a date like" in err


def test_every_command_has_complete_help(capsys) -> None:
    for argv in (["rules", "check"], ["recompute"], ["recap"], ["explain"], ["export"],
                 ["leave", "add"], ["leave", "revoke"], ["leave", "list"], ["roster", "set"],
                 ["roster", "import"], ["sync"], ["audit"]):
        with pytest.raises(SystemExit):
            run(capsys, None, *argv, "--help")
        out = " ".join(capsys.readouterr().out.split())
        assert "Example" in out and "Exit codes: 0 done; 1" in out and "--by USER" in out, argv


# --------------------------------------------------------------------------- with PostgreSQL


def test_sync_recap_late_leave_export_and_audit(capsys, tmp_path: Path, pg_url: str,
                                                simpeg: SimpegServer) -> None:
    staff = regular_staff(simpeg)
    absent, other = staff[0], staff[1]
    stored = store_month_of_punches(pg_url, simpeg, absent)
    before = raw_punches(pg_url)
    assert len(before) == stored
    config = write_config(tmp_path, pg_url, simpeg.url)

    code, out, err = run(capsys, config, "sync", "--month", MONTH, "--by", "clerk")
    assert code == 0, err
    assert "pulled: " in out and "pushed 2026-10: " in out
    assert f"{MONTH}: recomputed" in err  # progress on stderr
    code, out, _ = run(capsys, config, "recap", "--month", MONTH, "--json")
    recap = json.loads(out)  # stdout is one JSON object
    active = sorted(n for n, e in simpeg.world.employees.items() if e.active)
    by_nip = {e["nip"]: e for e in recap["employees"]}
    assert sorted(by_nip) == active and recap["skpds"]
    assert by_nip[absent]["absences"] == {"TK": 3}
    assert [line["code"] for line in by_nip[absent]["lines"]] == ["TK"] * 3
    assert by_nip[other]["absences"] == {} and by_nip[other]["cut_pct"] == 0
    tk_before = recap["totals"]["tk_days"]
    code, out, _ = run(capsys, config, "recap", "--month", MONTH, "--nip", absent)
    assert code == 0 and absent in out and "Tidak hadir tanpa keterangan" in out

    # Bad input changes nothing: an unknown leave type, a leave ending before it starts.
    audited = len(json.loads(run(capsys, config, "audit", "--json", "--limit", 1000)[1]))
    for kind, last in (("XX", ABSENT_DAYS[-1]), ("CS", date(2026, 10, 1))):
        code, out, err = run(capsys, config, "leave", "add", "--nip", absent, "--type", kind,
                             "--from", ABSENT_DAYS[0], "--to", last, "--doc", "SK/1")
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert len(json.loads(run(capsys, config, "audit", "--json", "--limit", 1000)[1])) == audited

    # The sick note arrives late: only those three days of that employee change.
    code, out, err = run(capsys, config, "leave", "add", "--nip", absent, "--type", "CS",
                         "--from", ABSENT_DAYS[0], "--to", ABSENT_DAYS[-1], "--doc",
                         "SK-DR/7/X/2026", "--by", "clerk")
    assert code == 0, err
    leave_id = int(out.split()[1])
    assert f"recomputed 1 employee(s), 31 days, 3 changed, 0 new (leave {leave_id} added)" in err
    code, out, _ = run(capsys, config, "audit", "--action", "day_changed", "--json")
    changed = json.loads(out)
    assert sorted((a["subject"], a["detail"]["day"]) for a in changed) == [
        (absent, d.isoformat()) for d in ABSENT_DAYS]
    assert {a["detail"]["reason"] for a in changed} == {f"leave {leave_id} added"}
    assert {(a["detail"]["before"]["status"], a["detail"]["after"]["status"])
            for a in changed} == {("TK", "CS")}
    code, out, _ = run(capsys, config, "audit", "--nip", absent)
    assert code == 0 and "leave_added" in out and "day_changed" in out
    code, out, _ = run(capsys, config, "recap", "--month", MONTH, "--json")
    after = json.loads(out)
    assert after["totals"]["tk_days"] == tk_before - 3
    assert {e["nip"]: e["absences"] for e in after["employees"]}[absent] == {"CS": 3}
    assert raw_punches(pg_url) == before  # count and content
    code, out, _ = run(capsys, config, "explain", "--nip", absent, "--month", MONTH,
                       "--lang", "en")
    assert code == 0 and "Excused: " in out and "Present on time" in out
    code, out, _ = run(capsys, config, "leave", "list", "--month", MONTH, "--nip", absent)
    assert "SK-DR/7/X/2026" in out and "bkpsdm" in out

    # Files for filing: written once, refused without --force.
    xlsx, csv_file = tmp_path / "rekap.xlsx", tmp_path / "rekap.csv"
    for fmt, path in (("xlsx", xlsx), ("csv", csv_file)):
        code, out, err = run(capsys, config, "export", "--month", MONTH, "--format", fmt,
                             "--out", path)
        assert code == 0 and path.stat().st_size > 0, err
        mtime = path.stat().st_mtime_ns
        code, _, err = run(capsys, config, "export", "--month", MONTH, "--format", fmt,
                           "--out", path)
        assert code == 2 and "--force" in err and path.stat().st_mtime_ns == mtime
        code, _, _ = run(capsys, config, "export", "--month", MONTH, "--format", fmt, "--out",
                         path, "--force")
        assert code == 0
    assert absent in csv_file.read_text(encoding="utf-8-sig")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".rekap")) == []

    # Revoked, the three days are absences again; a second revoke is refused.
    code, out, err = run(capsys, config, "leave", "revoke", leave_id, "--reason", "surat palsu")
    assert code == 0, err
    assert f"3 changed, 0 new (leave {leave_id} revoked)" in err
    code, out, _ = run(capsys, config, "recap", "--month", MONTH, "--json")
    assert json.loads(out)["totals"]["tk_days"] == tk_before
    code, _, err = run(capsys, config, "leave", "revoke", leave_id, "--reason", "lagi")
    assert code == 2 and "already revoked" in err
    # A month not over is pulled and recomputed, never pushed (its days to come count as TK).
    code, out, err = run(capsys, config, "sync", "--month", date.today().strftime("%Y-%m"))
    assert code == 0 and "not pushed" in out, err


def test_roster_import_with_a_bad_row_stores_nothing(capsys, tmp_path: Path,
                                                     pg_url: str) -> None:
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 2)
    nurse, clerk = "198503122010012002", "199001012015031001"
    try:
        PayrollStore(pool).upsert_employees(
            [EmployeeRow(nurse, "Siti", "RSUD", "RSUD.01", "Perawat", "shift"),
             EmployeeRow(clerk, "Budi", "RSUD", "RSUD", "Pengadministrasi", "reguler")],
            source="simpeg", actor="test")
    finally:
        pool.close()
    config = write_config(tmp_path, pg_url)
    roster = tmp_path / "jadwal.csv"
    roster.write_text("nip;tanggal;shift\n"
                      f"{nurse};2026-10-05;P\n"
                      f"{nurse};2026-10-32;M\n"
                      f"199912312020121001;2026-10-06;S\n"
                      f"{clerk};2026-10-06;PAGI\n"
                      f"{nurse};2026-10-07;OFF\n", encoding="utf-8")
    code, out, err = run(capsys, config, "roster", "import", roster)
    assert code == 2 and out == ""
    assert "line 3: '2026-10-32' is not a date" in err
    assert "line 4: unknown NIP '199912312020121001'" in err
    assert "line 5: shift 'PAGI' is not in the rules" in err
    assert "line 2" not in err and "line 6" not in err and "nothing was stored" in err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM attendance_roster").fetchone()[0] == 0
    roster.write_text(f"nip,tanggal,shift\n{nurse},2026-10-05,P\n{nurse},2026-10-07,OFF\n",
                      encoding="utf-8")
    code, out, err = run(capsys, config, "roster", "import", roster, "--no-recompute")
    assert code == 0, err
    assert "2 roster day(s) stored for 1 employee(s)" in out
    code, out, _ = run(capsys, config, "audit", "--action", "roster_set")
    assert "roster_set" in out
    code, _, err = run(capsys, config, "roster", "set", "--nip", nurse, "--from", "2026-10-08",
                       "--to", "2026-10-09", "--shift", "X")
    assert code == 2 and "shift 'X' is not in the rules" in err
    code, out, err = run(capsys, config, "roster", "set", "--nip", nurse, "--from",
                         "2026-10-08", "--to", "2026-10-09", "--shift", "M")
    assert code == 0 and "2 roster day(s) stored" in out, err
    assert "recomputed 1 employee(s), 31 days" in err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM attendance_roster").fetchone()[0] == 4


def test_sync_with_simpeg_unreachable_or_not_configured(capsys, tmp_path: Path,
                                                        pg_url: str) -> None:
    config = write_config(tmp_path, pg_url)
    code, _, err = run(capsys, config, "sync", "--month", MONTH)
    assert code == 2 and "[controlroom.attendance.simpeg]" in err
    server = SimpegServer(world(), client_id=ID, client_secret=SECRET).start()
    url = server.url
    server.stop()
    config = write_config(tmp_path, pg_url, url)
    code, out, err = run(capsys, config, "sync", "--month", MONTH)
    assert code == 1
    assert f"SIMPEG at {url} is unavailable during the pull" in err
    assert "nothing was done" in err
