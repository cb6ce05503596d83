"""`kota bench recap`: the monthly attendance recap of a whole region from raw punches.

Fills a scratch database (untimed) with a region's employees (valid NIPs, ten SKPDs, short
machine ids mapped to NIPs, a share on shift rosters), a month of raw punches as the machines
would have stored them (late, early, missing and double punches, other offices' machines,
absences) and some leave; then times what BKPSDM runs: `Payroll.recompute` for the month (load
the punches in binary COPY, plan, judge, store every day with the change audit) and
`Payroll.recap` (the per-employee and per-SKPD month with every cut line). A second recompute
after one late leave approval shows the audited change path. A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from controlroom.attendance.payroll import Payroll, month_bounds
from controlroom.attendance.payroll_store import PayrollStore
from controlroom.attendance.rules import load_rules
from controlroom.storage import pgbinary
from controlroom.storage.migrate import migrate
from controlroom.storage.store import open_pool

SKPDS = ("SETDA", "BKPSDM", "DISHUB", "DINKES", "RSUD", "DISDIK", "BAPPEDA", "DPMPTSP",
         "SATPOLPP", "DAMKAR")
SHIFT_SKPDS = {"RSUD", "DISHUB", "DAMKAR"}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _nips(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct valid NIPs: birth date, CPNS start at 20–35, gender, sequence."""
    out = []
    for k in range(n):
        birth = date(1965, 1, 1) + timedelta(days=int(rng.integers(0, 35 * 365)))
        start_year = birth.year + int(rng.integers(20, 36))
        start_year = min(start_year, 2025)
        month = int(rng.integers(1, 13))
        out.append(f"{birth:%Y%m%d}{start_year:04d}{month:02d}{int(rng.integers(1, 3))}"
                   f"{k % 999 + 1:03d}")
    if len(set(out)) != n:  # astronomically unlikely; keep the bench honest anyway
        raise RuntimeError("duplicate NIPs generated")
    return out


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...],
          data: list[pgbinary.Column]) -> None:
    with conn.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(pgbinary.encode(data))


def fill(url: str, *, employees: int, period: str, seed: int, say: Any) -> dict[str, int]:
    """A region's month of attendance in the database (untimed set-up)."""
    rng = np.random.default_rng(seed)
    rules = load_rules()
    first, last = month_bounds(period)
    n_days = (last - first).days + 1
    nips = _nips(employees, rng)
    skpd = rng.integers(0, len(SKPDS), employees)
    shift = np.array([SKPDS[s] in SHIFT_SKPDS for s in skpd]) & (rng.random(employees) < 0.4)
    seq_in_skpd = np.zeros(employees, np.int64)
    for s in range(len(SKPDS)):
        members = np.flatnonzero(skpd == s)
        seq_in_skpd[members] = np.arange(1, members.size + 1)
    machines = [f"BKPS{s:02d}{m:03d}" for s in range(len(SKPDS)) for m in range(3)]

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO attendance_unit (code, name, skpd) SELECT c, c, c FROM "
                     "unnest(%s::text[]) AS c", (list(SKPDS),))
        groups = np.where(shift, 1, 0)
        _copy(conn, "employee", ("nip", "name", "skpd", "unit", "position", "schedule_group",
                                 "source"), [
            pgbinary.Column("text", np.arange(employees), vocabulary=nips),
            pgbinary.Column("text", np.arange(employees),
                            vocabulary=[f"Pegawai {k + 1}" for k in range(employees)]),
            pgbinary.Column("text", skpd, vocabulary=list(SKPDS)),
            pgbinary.Column("text", skpd, vocabulary=list(SKPDS)),
            pgbinary.Column("text", np.zeros(employees, np.int64), vocabulary=["Pelaksana"]),
            pgbinary.Column("text", groups, vocabulary=["reguler", "shift"]),
            pgbinary.Column("text", np.zeros(employees, np.int64), vocabulary=["simpeg"])])
        # Each SKPD's three machines know its staff by their number within the SKPD.
        map_rows = [(machines[s * 3 + m], str(seq_in_skpd[e]), nips[e])
                    for e, s in enumerate(skpd) for m in range(3)]
        with conn.cursor() as cur, cur.copy(
                "COPY attendance_user_map (device_sn, user_id, nip) FROM STDIN") as copy:
            for row in map_rows:
                copy.write_row(row)
        now = datetime.now(UTC)
        conn.cursor().executemany(
            "INSERT INTO attendance_machine (device_sn, edge_id, office, online, status_since, "
            "last_seen) VALUES (%s, 'bench', %s, true, %s, %s)",
            [(sn, SKPDS[i // 3], now, now) for i, sn in enumerate(machines)])

        # Rosters: shift staff rotate P, S, M, OFF, OFF from a random phase.
        shift_emp = np.flatnonzero(shift)
        cycle = np.array(["P", "S", "M", "OFF", "OFF"])
        phase = rng.integers(0, 5, shift_emp.size)
        roster_rows = [(nips[e], first + timedelta(days=d), str(cycle[(phase[i] + d) % 5]))
                       for i, e in enumerate(shift_emp) for d in range(-1, n_days + 1)]
        with conn.cursor() as cur, cur.copy(
                "COPY attendance_roster (nip, day, shift, entered_by) FROM STDIN") as copy:
            for row in roster_rows:
                copy.write_row((*row, "bench"))

        # The schedule every employee was due, from the engine's own planner (so that the
        # punches land where a real workforce's would), then punches around it.
        from controlroom.attendance import engine
        roster = [engine.RosterEntry(int(shift_emp[i]), first + timedelta(days=d),
                                     str(cycle[(phase[i] + d) % 5]))
                  for i in range(shift_emp.size) for d in range(-1, n_days + 1)]
        plan = engine.plan_days(rules, first, last, ["shift" if s else "reguler" for s in shift],
                                roster=roster)
        start = plan.start_s[:, 1:-1]
        end = plan.end_s[:, 1:-1]
        emp_idx, day_idx = np.nonzero(start != engine.NONE)
        s, e_ = start[emp_idx, day_idx], end[emp_idx, day_idx]
        roll = rng.random(emp_idx.size)
        present = roll >= 0.04  # 4 % absent
        in_t = s + rng.normal(-900, 700, emp_idx.size).astype(np.int64)  # mostly early, some late
        out_t = e_ + rng.normal(1200, 1000, emp_idx.size).astype(np.int64)
        no_out = rng.random(emp_idx.size) < 0.02
        double = rng.random(emp_idx.size) < 0.03
        parts_e = [emp_idx[present], emp_idx[present & ~no_out], emp_idx[present & double]]
        parts_t = [in_t[present], out_t[present & ~no_out], in_t[present & double] + 40]
        p_emp = np.concatenate(parts_e)
        p_t = np.concatenate(parts_t)
        # Which machine: mostly the own SKPD's, 1 % another office's.
        own_skpd = skpd[p_emp]
        other = rng.random(p_emp.size) < 0.01
        office = np.where(other, (own_skpd + 1) % len(SKPDS), own_skpd)
        machine = office * 3 + rng.integers(0, 3, p_emp.size)
        day0 = np.datetime64(first - timedelta(days=1), "s")
        local = day0 + p_t.astype("timedelta64[s]")
        local_us = (local.astype("datetime64[us]").astype(np.int64)
                    - pgbinary.PG_EPOCH_DAYS * 86_400_000_000)
        utc_us = local_us - 7 * 3_600_000_000  # WIB
        # Machine user ids are per SKPD; on another office's machine the employee is enrolled
        # by NIP (as visiting staff often are).
        user_vocab = [str(k) for k in range(int(seq_in_skpd.max()) + 1)] + nips
        user_idx = np.where(other, int(seq_in_skpd.max()) + 1 + p_emp, seq_in_skpd[p_emp])
        n = p_emp.size
        say(f"  {n:,} punches of {employees:,} employees over {n_days} days…")
        for lo in range(0, n, 200_000):
            sl = slice(lo, min(n, lo + 200_000))
            m = sl.stop - sl.start
            _copy(conn, "attendance_punch", ("device_sn", "user_id", "ts", "punch_state",
                                             "local_ts", "tz", "batch_id", "edge_id"), [
                pgbinary.Column("text", machine[sl], vocabulary=machines),
                pgbinary.Column("text", user_idx[sl], vocabulary=user_vocab),
                pgbinary.Column("timestamp", utc_us[sl]),
                pgbinary.Column("int2", np.zeros(m, np.int64)),
                pgbinary.Column("timestamp", local_us[sl]),
                pgbinary.Column("text", np.zeros(m, np.int64), vocabulary=["Asia/Jakarta"]),
                pgbinary.Column("text", np.zeros(m, np.int64), vocabulary=["bench"]),
                pgbinary.Column("text", np.zeros(m, np.int64), vocabulary=["bench"])])
        # Leave: 2 % of employees take two days of annual leave, entered from SIMPEG.
        takers = rng.choice(employees, max(1, employees // 50), replace=False)
        leave_rows = []
        for k, e in enumerate(takers):
            d = first + timedelta(days=int(rng.integers(0, n_days - 2)))
            leave_rows.append((nips[e], "CT", d, d + timedelta(days=1), f"800/{k}/BKPSDM",
                               "simpeg", f"bench-{k}", "bench"))
        conn.cursor().executemany(
            "INSERT INTO attendance_leave (nip, code, first_day, last_day, doc_ref, source, "
            "source_id, entered_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", leave_rows)
        # The set-up's own aftermath (autovacuum of the fresh tables, the checkpoint of its WAL)
        # is not the recap's work: settle it before anything is timed.
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return {"punches": int(n), "roster_entries": len(roster_rows), "leave": len(leave_rows),
            "shift_employees": int(shift.sum())}


def bench_recap(args: argparse.Namespace) -> int:
    logging.getLogger("controlroom").setLevel(logging.WARNING)
    say = (lambda *a, **k: None) if args.quiet else (lambda m: print(m, flush=True))
    try:
        month_bounds(args.month)
    except ValueError as exc:
        print(f"--month: {exc}")
        return 2
    if args.employees < 1 or args.employees > 200_000:
        print("--employees must be 1–200000")
        return 2
    embedded = None
    tmp = None
    if args.database:
        server = args.database
    else:
        from controlroom.storage.embedded import EmbeddedPostgres
        from kota.bench import _free_port

        tmp = tempfile.TemporaryDirectory(prefix="kota-bench-recap-")
        embedded = EmbeddedPostgres(Path(tmp.name) / "pg", port=_free_port(), database="postgres")
        say("starting the embedded PostgreSQL…")
        server = embedded.start()
    name = f"kota_bench_recap_{int(time.time())}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    pool = None
    try:
        migrate(url)
        say(f"filling a scratch database with {args.employees:,} employees × {args.month}…")
        t = time.perf_counter()
        filled = fill(url, employees=args.employees, period=args.month, seed=args.seed, say=say)
        say(f"  filled in {time.perf_counter() - t:.1f} s (not timed)")
        pool = open_pool(url, 1, 4)
        payroll = Payroll(PayrollStore(pool), load_rules())
        first, last = month_bounds(args.month)
        runs = []
        for k in range(args.repeat):
            cpu, t = _cpu_s(), time.perf_counter()
            report, recaps, _ = payroll.recompute_month(args.month, actor="bench", reason="bench")
            done = time.perf_counter()
            run = {"total_s": round(done - t, 3), "cpu_s": round(_cpu_s() - cpu, 3),
                   "first_computation": report.new == report.rows,
                   "stages": report.seconds, "day_rows": report.rows, "written": report.new,
                   "changed": report.changed, "cut_lines": sum(len(r.lines) for r in recaps)}
            runs.append(run)
            kind = "first computation" if run["first_computation"] else "recompute"
            say(f"run {k + 1} ({kind}): {run['total_s']:.2f} s for {len(recaps):,} employees, "
                f"{report.rows:,} days, {run['cut_lines']:,} cut lines ("
                f"{', '.join(f'{a} {b:.2f}' for a, b in report.seconds.items())})")
        t = time.perf_counter()
        from_db, _ = payroll.recap(args.month)
        recap_db_s = time.perf_counter() - t
        same = from_db == recaps
        say(f"recap read back from the stored days: {recap_db_s:.2f} s, "
            f"{'identical' if same else 'DIFFERENT'}")
        # A late leave approval: the first employee's first two working days become sick
        # leave; exactly those two stored days must change.
        status = report.results.status[0]
        working = [first + timedelta(days=int(d)) for d in np.flatnonzero(status == 1)[:2]]
        employee = report.nips[0]
        payroll.add_leave(employee, "CS", working[0], working[-1], "bench/late", actor="bench")
        t = time.perf_counter()
        late = payroll.recompute(first, last, actor="bench", reason="late leave")
        late_s = time.perf_counter() - t
        say(f"after a late leave approval: {late.changed} day rows changed, recompute "
            f"{late_s:.2f} s")
        again = [r["total_s"] for r in runs[1:]]
        result: dict[str, Any] = {
            "benchmark": "recap", "employees": args.employees, "month": args.month,
            "days": (last - first).days + 1, **filled, "runs": runs,
            "first_computation_s": runs[0]["total_s"],
            "recompute_median_s": float(np.median(again)) if again else None,
            "recap_from_database_s": round(recap_db_s, 3), "recap_from_database_same": same,
            "late_leave_changed_rows": late.changed, "late_leave_recompute_s": round(late_s, 3),
            "goal_s": 10.0, "database": "embedded" if embedded else "given",
        }
        say(f"{args.employees:,} employees × {result['days']} days from raw punches: first "
            f"computation {runs[0]['total_s']:.2f} s"
            + (f", recompute median {result['recompute_median_s']:.2f} s" if again else "")
            + " (goal ≤ 10 s)")
        if args.json:
            print(json.dumps(result))
        return 0
    finally:
        if pool is not None:
            pool.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if embedded is not None:
            embedded.stop()
        if tmp is not None:
            tmp.cleanup()


def add_parser(bench_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `recap` on the `kota bench` subparsers."""
    p = bench_subparsers.add_parser(
        "recap", help="the monthly attendance recap of a region from raw punches",
        description="Fill a scratch database with --employees employees (ten SKPDs, machine ids "
        "mapped to NIPs, 40 %% of RSUD/Dishub/Damkar staff on rotating shift rosters) and a month "
        "of raw punches (late, early, missing, double, other offices' machines, 4 %% absent) "
        "plus some leave — untimed — then time `recompute_month` --repeat times: the raw "
        "punches loaded, the vectorised engine, every day stored (the first run writes the "
        "month; later runs compare and write only changes, with the audit) and the recap per "
        "employee and per SKPD with every cut line. Then the recap read back from the stored "
        "days (must be identical), and one late leave approval with the recompute after it "
        "(exactly two days must change).",
        epilog="Example: `kota bench recap --json` (20,000 employees × October 2026, 31 days; "
        "goal ≤ 10 s). Exit codes: 0 done, 2 bad arguments.")
    p.set_defaults(func=bench_recap)
    p.add_argument("--employees", type=int, default=20_000, metavar="N",
                   help="employees in the region (default 20000)")
    p.add_argument("--month", default="2026-10", metavar="YYYY-MM",
                   help="the month recapped (default 2026-10, 31 days)")
    p.add_argument("--repeat", type=int, default=3, metavar="R",
                   help="recompute + recap runs: the first computes the month, the rest "
                   "recompute it (default 3)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the workforce (default 7)")
    p.add_argument("--database", metavar="URL", help="a PostgreSQL server to make the scratch "
                   "database on (default: the embedded PostgreSQL)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    return p
