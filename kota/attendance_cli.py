"""`kota attendance …`: the BKPSDM clerk's command line for attendance and payroll (issue 7).

It parses arguments, checks what the clerk typed before anything is stored, opens the payroll
store over the configured database and hands the work to `controlroom.attendance.payroll`
(recompute, recap, explain, leave), `…sync` (SIMPEG) and `…export` (files for filing). It owns
only arguments, output and exit codes; it must not judge days, write SQL or speak HTTP itself.
Exit codes: 0 done, 1 a failure (database or SIMPEG unreachable; what was done before stays
done), 2 bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from controlroom.attendance.payroll import Payroll
    from controlroom.attendance.recap import EmployeeRecap, SkpdRecap
    from controlroom.attendance.rules import Rules
    from kota.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CODES = ("Exit codes: 0 done; 1 a failure (database or SIMPEG unreachable; what was done "
              "before stays done); 2 bad input (one line on stderr says what; nothing changed).")
ROSTER_OFF = "OFF"
WEEKDAYS = {"id": ("Sen", "Sel", "Rab", "Kam", "Jum", "Sab", "Min"),
            "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


class UsageError(Exception):
    """What the clerk typed cannot be used; nothing was changed (exit 2)."""


class CommandFailed(Exception):
    """Something outside the clerk's input failed (exit 1)."""


# --------------------------------------------------------------------------- arguments


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-03") from None


def _month(text: str) -> str:
    from controlroom.attendance.payroll import PayrollInputError, month_bounds

    try:
        month_bounds(text)
    except PayrollInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still audit something true
        return f"uid-{os.getuid()}"


def _months(first: date, last: date) -> list[str]:
    from controlroom.attendance.sync import months_between

    return sorted(months_between(first, last))


def _current_month() -> str:
    return date.today().strftime("%Y-%m")


# --------------------------------------------------------------------------- context


@dataclass
class _Context:
    settings: Settings
    rules: Rules
    payroll: Payroll


def _load_rules(settings: Settings) -> Rules:
    from controlroom.attendance.rules import RulesError, load_rules

    path = settings.controlroom.attendance.rules_file
    try:
        return load_rules(path)
    except RulesError as exc:
        raise UsageError(f"the configured rule file is not valid: {exc}") from exc


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[_Context]:
    """Settings, rules and the payroll store over the configured database (migrated first);
    the embedded server, if this command started it, is stopped afterwards."""
    import psycopg
    from psycopg_pool import PoolTimeout

    from controlroom.attendance.payroll import Payroll
    from controlroom.attendance.payroll_store import PayrollStore
    from controlroom.storage.embedded import EmbeddedPostgresError
    from controlroom.storage.migrate import migrate
    from controlroom.storage.store import open_pool
    from kota.cli import _database_url, _settings

    settings = _settings(args)
    rules = _load_rules(settings)
    try:
        url, server = _database_url(settings)
    except EmbeddedPostgresError as exc:
        raise CommandFailed(f"cannot start the embedded PostgreSQL: {exc}") from exc
    try:
        try:
            migrate(url, retention_days=settings.database.retention_days,
                    compress_after_days=settings.database.compress_after_days)
            pool = open_pool(url, 1, 4, name="kota-attendance")
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise CommandFailed(f"cannot reach the database: {exc}") from exc
        try:
            yield _Context(settings, rules, Payroll(PayrollStore(pool), rules))
        finally:
            pool.close()
    finally:
        if server is not None and server.launched:
            server.stop()


def _command(work: Callable[[argparse.Namespace, _Context], int], *, needs_db: bool = True
             ) -> Callable[[argparse.Namespace], int]:
    """A command with its errors turned into one line on stderr and the exit code."""
    def run(args: argparse.Namespace) -> int:
        import psycopg

        from controlroom.attendance.payroll import PayrollInputError
        from controlroom.attendance.payroll_store import PayrollStorageError
        from controlroom.attendance.rules import RulesError
        from controlroom.attendance.simpeg import SimpegError

        name = "kota attendance " + " ".join(args.attendance_path)
        try:
            if not needs_db:
                return work(args, None)  # type: ignore[arg-type]
            with _opened(args) as ctx:
                return work(args, ctx)
        except (UsageError, PayrollInputError, RulesError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (CommandFailed, SimpegError, PayrollStorageError, psycopg.OperationalError,
                OSError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    return run


def _progress(text: str) -> None:
    """Progress goes to stderr so that stdout holds only the answer (and stays valid JSON)."""
    print(text, file=sys.stderr, flush=True)


def _json_out(value: Any) -> None:
    print(json.dumps(value, default=str, ensure_ascii=False, indent=2))


def _recompute_months(ctx: _Context, months: Sequence[str], *, actor: str, reason: str,
                      nips: Sequence[str] | None = None) -> None:
    """Recompute these months (only the months already begun: a day not yet lived would be
    judged absent)."""
    from controlroom.attendance.payroll import month_bounds

    today = date.today()
    for period in months:
        first, last = month_bounds(period)
        if first > today:
            _progress(f"{period}: not begun yet, not recomputed (recompute it once it has)")
            continue
        report = ctx.payroll.recompute(first, last, actor=actor, reason=reason, nips=nips)
        _progress(f"{period}: recomputed {report.employees} employee(s), {report.rows} days, "
                  f"{report.changed} changed, {report.new} new ({reason})")


# --------------------------------------------------------------------------- rules


def cmd_rules_check(args: argparse.Namespace, _: _Context) -> int:
    from controlroom.attendance.rules import load_rules

    if args.file is not None:
        path: Path | None = Path(args.file)
    else:
        from kota.cli import _settings

        path = _settings(args).controlroom.attendance.rules_file
    rules = load_rules(path)  # RulesError: exit 2 with the key path
    f = rules.file
    print(f"{rules.source}: OK")
    print(f"region:   {f.region} ({f.name}), time zone {f.timezone}")
    print(f"checksum: {rules.checksum}")
    for v in f.versions:
        groups = ", ".join(f"{name} ({g.kind})" for name, g in v.groups.items())
        print(f"version {v.version}: valid from {v.valid_from}" + (f" — {v.basis}" if v.basis
                                                                    else ""))
        print(f"  groups:      {groups}; default {v.default_group}")
        if v.shifts:
            print(f"  shifts:      {', '.join(f'{c} {s.span}' for c, s in v.shifts.items())}")
        print(f"  leave types: {', '.join(v.leave_types)}")
        print(f"  holidays:    {len(v.holidays)}; Ramadan periods: {len(v.ramadan)}")
        print(f"  brackets:    {', '.join(b.code for b in v.late.brackets)}; "
              f"{', '.join(b.code for b in v.early.brackets)}; TK {v.absent_cut_pct:g}%, "
              f"monthly cap {v.monthly_cap_pct:g}%")
    return EXIT_OK


# --------------------------------------------------------------------------- recompute


def cmd_recompute(args: argparse.Namespace, ctx: _Context) -> int:
    from controlroom.attendance.payroll import month_bounds

    if not args.reason.strip():
        raise UsageError("--reason must say why (it goes into the audit log)")
    first, last = month_bounds(args.month)
    nips = sorted(set(args.nip)) if args.nip else None
    report = ctx.payroll.recompute(first, last, actor=args.by, reason=args.reason.strip(),
                                   nips=nips)
    print(f"{args.month}: {report.employees} employees, {report.punches} punches, "
          f"{report.rows} days: {report.changed} changed, {report.new} new")
    print("timing: " + ", ".join(f"{k} {v:.3f}" for k, v in report.seconds.items()))
    return EXIT_OK


# --------------------------------------------------------------------------- recap


def _labels(lang: str) -> dict[str, str]:
    from controlroom.attendance.export import LABELS

    return LABELS[lang]


def _skpd_table(skpds: Sequence[SkpdRecap], lang: str) -> list[str]:
    lab = _labels(lang)
    codes = sorted({c for s in skpds for c in s.absences})
    head = [lab["skpd_code"], lab["skpd"], lab["employees"], lab["working_days"],
            lab["present_days"], "TL1-4", "PSW1-4", *codes, lab["cut_pct_mean"],
            lab["employees_with_cut"]]
    rows = [[s.skpd, s.skpd_name[:32], s.employees, s.working_days, s.present_days,
             "/".join(map(str, s.tl)), "/".join(map(str, s.psw)),
             *(s.absences.get(c, 0) for c in codes), f"{s.cut_pct_mean:.2f}",
             s.employees_with_cut] for s in skpds]
    if skpds:
        n = sum(s.employees for s in skpds)
        mean = sum(s.cut_pct_mean * s.employees for s in skpds) / n
        rows.append(["", "Total", n, sum(s.working_days for s in skpds),
                     sum(s.present_days for s in skpds),
                     "/".join(str(sum(s.tl[k] for s in skpds)) for k in range(4)),
                     "/".join(str(sum(s.psw[k] for s in skpds)) for k in range(4)),
                     *(sum(s.absences.get(c, 0) for s in skpds) for c in codes),
                     f"{mean:.2f}", sum(s.employees_with_cut for s in skpds)])
    return _table(head, rows)


def _table(head: Sequence[object], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in head], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[k]) for r in cells) for k in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in cells]


def _employee_lines(r: EmployeeRecap, lang: str) -> list[str]:
    lab = _labels(lang)
    absences = ", ".join(f"{k} {v}" for k, v in sorted(r.absences.items())) or "-"
    out = [f"{r.nip}  {r.name} — {r.position}, {r.unit} ({r.skpd_name})",
           f"  {lab['working_days']} {r.working_days}, {lab['present_days']} {r.present_days}, "
           f"TL {'/'.join(map(str, r.tl))}, PSW {'/'.join(map(str, r.psw))}, {absences}; "
           f"{lab['cut_pct']} {r.cut_pct:g} ({lab['cut_uncapped_pct']} {r.cut_uncapped_pct:g}); "
           f"{lab['rules_version']} {r.rules_version}"]
    for line in r.lines:
        text = line.text_id if lang == "id" else line.text_en
        out.append(f"  {line.day}  {line.code:<5} {line.pct:>6.2f}%  {text}")
    if not r.lines:
        out.append(f"  {lab['no_lines']}")
    return out


def _recap_json(period: str, recaps: Sequence[EmployeeRecap], skpds: Sequence[SkpdRecap]
                ) -> dict[str, Any]:
    return {"period": period, "employees": [asdict(r) for r in recaps],
            "skpds": [asdict(s) for s in skpds],
            "totals": {"employees": len(recaps),
                       "tk_days": sum(r.absences.get("TK", 0) for r in recaps),
                       "employees_with_cut": sum(1 for r in recaps if r.cut_pct > 0)}}


def cmd_recap(args: argparse.Namespace, ctx: _Context) -> int:
    if args.nip is not None and ctx.payroll.store.employee(args.nip) is None:
        raise UsageError(f"no employee with NIP {args.nip}")
    if args.recompute:
        from controlroom.attendance.payroll import month_bounds

        first, last = month_bounds(args.month)
        report = ctx.payroll.recompute(first, last, actor=args.by, reason="recap --recompute")
        _progress(f"{args.month}: recomputed {report.employees} employees, {report.changed} "
                  f"days changed, {report.new} new")
    recaps, skpds = ctx.payroll.recap(args.month, skpd=args.skpd)
    if args.nip is not None:
        recaps = [r for r in recaps if r.nip == args.nip]
        if not recaps:
            raise UsageError(f"{args.nip} has no stored day in {args.month}"
                             + (f" in SKPD {args.skpd}" if args.skpd else "")
                             + " (recompute the month first)")
    if not recaps:
        _progress(f"{args.month}: no stored days" + (f" in SKPD {args.skpd}" if args.skpd
                                                     else "") + "; recompute the month first")
    if args.json:
        _json_out(_recap_json(args.month, recaps, skpds))
        return EXIT_OK
    for line in _skpd_table(skpds, args.lang):
        print(line)
    for r in recaps if args.nip is not None else ():
        print()
        for line in _employee_lines(r, args.lang):
            print(line)
    return EXIT_OK


# --------------------------------------------------------------------------- explain


def _clock(value: datetime | None) -> str:
    return value.strftime("%H:%M") if value is not None else "--:--"


def cmd_explain(args: argparse.Namespace, ctx: _Context) -> int:
    if ctx.payroll.store.employee(args.nip) is None:
        raise UsageError(f"no employee with NIP {args.nip}")
    days = ctx.payroll.explain(args.nip, args.month)
    if not days:
        raise UsageError(f"{args.nip} has no stored day in {args.month} (recompute the month "
                         "first)")
    if args.json:
        _json_out({"nip": args.nip, "period": args.month, "days": days})
        return EXIT_OK
    rows = []
    for d in days:
        schedule = (f"{_clock(d['sched_start'])}-{_clock(d['sched_end'])}"
                    if d["sched_start"] is not None else "")
        minutes = "/".join("" if m is None else str(m) for m in (d["late_min"], d["early_min"]))
        rows.append([d["day"], WEEKDAYS[args.lang][d["day"].weekday()], d["status"], schedule,
                     _clock(d["in_at"]) if d["in_at"] else "", _clock(d["out_at"])
                     if d["out_at"] else "", minutes.strip("/"),
                     f"{d['tl'] or ''}/{d['psw'] or ''}".strip("/"),
                     f"{d['cut_pct']:g}" if d["cut_pct"] else "",
                     d["reason_id"] if args.lang == "id" else d["reason_en"],
                     ",".join(d["flag_names"])])
    head = (["Tanggal", "Hari", "Status", "Jadwal", "Masuk", "Pulang", "Menit TL/PSW", "TL/PSW",
             "Potong %", "Keterangan", "Tanda"] if args.lang == "id" else
            ["Date", "Day", "Status", "Schedule", "In", "Out", "Min late/early", "TL/PSW",
             "Cut %", "Reason", "Flags"])
    for line in _table(head, rows):
        print(line)
    return EXIT_OK


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace, ctx: _Context) -> int:
    from controlroom.attendance.export import write_csv, write_csv_lines, write_xlsx

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; give --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent} is not a directory")
    recaps, skpds = ctx.payroll.recap(args.month, skpd=args.skpd)
    if not recaps:
        _progress(f"{args.month}: no stored days" + (f" in SKPD {args.skpd}" if args.skpd
                                                     else "") + "; the file has no employees "
                  "(recompute the month first)")
    a = ctx.settings.controlroom.attendance
    # Written next to the target and renamed over it: a failed export leaves no half file.
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        if args.format == "xlsx":
            write_xlsx(tmp, recaps, skpds, region_name=ctx.settings.site.city, period=args.month,
                       printed_at=datetime.now(ZoneInfo(ctx.settings.site.timezone)),
                       lang=args.lang, signer_title=a.signer_title, signer_name=a.signer_name,
                       signer_nip=a.signer_nip)
        elif args.format == "csv":
            write_csv(tmp, recaps, lang=args.lang)
        else:
            write_csv_lines(tmp, recaps, lang=args.lang)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"{out}: {args.format}, {args.month}, {len(recaps)} employees in {len(skpds)} SKPDs")
    return EXIT_OK


# --------------------------------------------------------------------------- leave


def cmd_leave_add(args: argparse.Namespace, ctx: _Context) -> int:
    leave_id = ctx.payroll.add_leave(args.nip, args.type, args.first, args.last, args.doc,
                                     actor=args.by)
    print(f"leave {leave_id} added: {args.nip} {args.type} {args.first}..{args.last} "
          f"({args.doc.strip()})")
    months = _months(args.first, args.last)
    if not args.recompute:
        print(f"not recomputed: run `kota attendance recompute --month M` for "
              f"{', '.join(months)} for it to count")
        return EXIT_OK
    if not ctx.payroll.store.employee(args.nip)["active"]:  # type: ignore[index]
        print(f"{args.nip} is inactive: no days to recompute")
        return EXIT_OK
    _recompute_months(ctx, months, actor=args.by, reason=f"leave {leave_id} added",
                      nips=[args.nip])
    return EXIT_OK


def cmd_leave_revoke(args: argparse.Namespace, ctx: _Context) -> int:
    if not args.reason.strip():
        raise UsageError("--reason must say why (it goes into the audit log)")
    row = ctx.payroll.store.revoke_leave(args.id, actor=args.by, reason=args.reason.strip())
    if row is None:
        raise UsageError(f"no leave {args.id} in force (unknown or already revoked)")
    print(f"leave {args.id} revoked: {row['nip']} {row['code']} {row['first_day']}.."
          f"{row['last_day']}")
    months = _months(row["first_day"], row["last_day"])
    employee = ctx.payroll.store.employee(row["nip"])
    if args.recompute and employee is not None and employee["active"]:
        _recompute_months(ctx, months, actor=args.by, reason=f"leave {args.id} revoked",
                          nips=[row["nip"]])
    elif not args.recompute:
        print(f"not recomputed: run `kota attendance recompute --month M` for "
              f"{', '.join(months)}")
    return EXIT_OK


def cmd_leave_list(args: argparse.Namespace, ctx: _Context) -> int:
    from controlroom.attendance.payroll import month_bounds

    first, last = month_bounds(args.month)
    rows = ctx.payroll.store.leave(first, last, nips=[args.nip] if args.nip else None,
                                   include_revoked=True)
    if args.json:
        _json_out(rows)
        return EXIT_OK
    table = [[r["id"], r["nip"], r["code"], r["first_day"], r["last_day"], r["source"],
              r["doc_ref"][:40], r["entered_by"],
              f"revoked by {r['revoked_by']}" if r["revoked_at"] else ""] for r in rows]
    for line in _table(["ID", "NIP", "Type", "From", "To", "Source", "Document", "Entered by",
                        ""], table):
        print(line)
    print(f"{len(rows)} leave record(s) overlapping {args.month}")
    return EXIT_OK


# --------------------------------------------------------------------------- roster


def _read_roster_csv(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each data row; `;` or `,` separated, a header row first."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    lines = text.splitlines()
    if not lines:
        raise UsageError(f"{path} is empty (expected a header nip;tanggal;shift)")
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [c.strip().lower() for c in rows[0]]
    if header != ["nip", "tanggal", "shift"]:
        raise UsageError(f"{path} line 1: the header must be nip{delimiter}tanggal{delimiter}"
                         f"shift, not {delimiter.join(rows[0])!r}")
    return [(k + 2, r) for k, r in enumerate(rows[1:]) if any(c.strip() for c in r)]


def _check_roster(ctx: _Context, rows: Sequence[tuple[int, str, str, str]]
                  ) -> tuple[list[tuple[str, date, str]], list[str]]:
    """Entries and, for every bad row, "line N: why"."""
    nips = {r[1] for r in rows}
    known = {e["nip"] for e in ctx.payroll.store.employees(nips=sorted(nips),
                                                           include_inactive=True)}
    entries, problems = [], []
    for line, nip, day_text, shift in rows:
        why = []
        if nip not in known:
            why.append(f"unknown NIP {nip!r}")
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            why.append(f"{day_text!r} is not a date like 2026-11-03")
            day = None
        if day is not None and shift != ROSTER_OFF:
            try:
                shifts = ctx.rules.version_on(day).shifts
            except ValueError as exc:
                why.append(str(exc))
            else:
                if shift not in shifts:
                    why.append(f"shift {shift!r} is not in the rules (known: "
                               f"{', '.join([*shifts, ROSTER_OFF])})")
        if why:
            problems.append(f"line {line}: " + "; ".join(why))
        elif day is not None:
            entries.append((nip, day, shift))
    return entries, problems


def _store_roster(args: argparse.Namespace, ctx: _Context,
                  entries: list[tuple[str, date, str]], reason: str) -> int:
    stored = ctx.payroll.store.set_roster(entries, actor=args.by)
    first, last = min(e[1] for e in entries), max(e[1] for e in entries)
    nips = sorted({e[0] for e in entries})
    print(f"{stored} roster day(s) stored for {len(nips)} employee(s), {first}..{last}")
    if args.recompute:
        active = [e["nip"] for e in ctx.payroll.store.employees(nips=nips)]
        if active:
            _recompute_months(ctx, _months(first, last), actor=args.by, reason=reason,
                              nips=active)
    else:
        print(f"not recomputed: run `kota attendance recompute --month M` for "
              f"{', '.join(_months(first, last))}")
    return EXIT_OK


def cmd_roster_set(args: argparse.Namespace, ctx: _Context) -> int:
    if args.last < args.first:
        raise UsageError(f"--to {args.last} is before --from {args.first}")
    if (args.last - args.first).days > 366:
        raise UsageError("set a roster for at most a year at a time")
    rows = [(0, args.nip, date.fromordinal(o).isoformat(), args.shift)
            for o in range(args.first.toordinal(), args.last.toordinal() + 1)]
    entries, problems = _check_roster(ctx, rows)
    if problems:
        raise UsageError("; ".join(sorted({p.split(": ", 1)[1] for p in problems})))
    return _store_roster(args, ctx, entries, f"roster set for {args.nip}")


def cmd_roster_import(args: argparse.Namespace, ctx: _Context) -> int:
    path = Path(args.file)
    rows, problems = [], []
    for line, cells in _read_roster_csv(path):
        if len(cells) != 3:
            problems.append(f"line {line}: {len(cells)} column(s), expected nip, tanggal, shift")
            continue
        rows.append((line, *(c.strip() for c in cells)))
    entries, bad = _check_roster(ctx, rows)  # type: ignore[arg-type]
    problems = sorted(problems + bad, key=lambda p: int(p.split()[1].rstrip(":")))
    if problems:
        for p in problems:
            print(f"{path} {p}", file=sys.stderr)
        raise UsageError(f"{path}: {len(problems)} bad row(s); nothing was stored")
    if not entries:
        raise UsageError(f"{path} has no rows")
    return _store_roster(args, ctx, entries, f"roster imported from {path.name}")


# --------------------------------------------------------------------------- sync


def cmd_sync(args: argparse.Namespace, ctx: _Context) -> int:
    from controlroom.attendance.payroll import month_bounds
    from controlroom.attendance.simpeg import SimpegClient, SimpegUnavailable
    from controlroom.attendance.sync import SimpegSync

    settings = ctx.settings.controlroom.attendance.simpeg
    if settings is None:
        raise UsageError("no SIMPEG configured: add [controlroom.attendance.simpeg] base_url, "
                         "client_id and client_secret to the settings file")
    period = args.month or _current_month()
    first, last = month_bounds(period)
    # The engine judges a working day with no punch as TK whether or not it has come yet, so
    # the recap of a month not over holds its remaining days as absences: not for payroll.
    unfinished = last >= date.today()
    if args.push_only and unfinished:
        raise UsageError(f"{period} is not over yet: its recap counts the days still to come "
                         "as absent; push it once the month has ended")
    with SimpegClient(settings.base_url, settings.client_id, settings.client_secret,
                      timeout_s=settings.timeout_s, retries=settings.retries) as client:
        sync = SimpegSync(client, ctx.payroll)
        step = "pull"
        try:
            if not args.push_only:
                _progress(f"pulling units, employees and leave for {period} from "
                          f"{settings.base_url} …")
                pulled = sync.pull(first, last, actor=args.by)
                print(f"pulled: {pulled.summary()}")
                for kind, key, problem in pulled.skipped:
                    print(f"  skipped {kind} {key}: {problem}")
                # The month itself too: new or changed employees need their days judged.
                _recompute_months(ctx, sorted(pulled.months | {period}), actor=args.by,
                                  reason="SIMPEG sync")
            if unfinished and not args.pull_only:
                print(f"not pushed: {period} is not over yet (its remaining days would count "
                      "as absent); the recap is pushed by a sync once the month has ended")
            elif not args.pull_only:
                step = "push"
                _progress(f"pushing the {period} recap to {settings.base_url} …")
                pushed = sync.push(period, actor=args.by, resend=args.resend)
                print(f"pushed {period}: {pushed.summary()}")
                for nip, reason in pushed.sent.rejected:
                    print(f"  rejected {nip}: {reason}")
        except SimpegUnavailable as exc:
            done = {"pull": "nothing", "push": "nothing" if args.push_only
                    else "the pull and the recompute"}
            raise CommandFailed(f"SIMPEG at {settings.base_url} is unavailable during the {step}"
                                f" ({exc}); {done[step]} was done and stays done; run the sync "
                                "again later") from exc
    return EXIT_OK


# --------------------------------------------------------------------------- audit


def cmd_audit(args: argparse.Namespace, ctx: _Context) -> int:
    rows = ctx.payroll.store.audit_log(subject=args.nip, action=args.action, limit=args.limit)
    if args.json:
        _json_out(rows)
        return EXIT_OK
    for r in rows:
        detail = json.dumps(r["detail"], default=str, ensure_ascii=False, sort_keys=True)
        if len(detail) > 160:
            detail = detail[:157] + "…"
        print(f"{r['id']:>6}  {r['at']:%Y-%m-%d %H:%M:%S}  {r['actor']:<12} {r['action']:<16} "
              f"{r['subject'] or '-':<18} {detail}")
    print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}", file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `attendance` and its commands on the `kota` subparsers."""
    attendance = subparsers.add_parser(
        "attendance", help="attendance for payroll: recompute, recap, explain, export, leave, "
        "roster, SIMPEG sync, audit (BKPSDM)",
        description="The BKPSDM clerk's tools for the monthly attendance recap that TPP is paid "
        "from: check the region's rule file, judge a month again from the raw punches (which are "
        "never changed), read the recap per SKPD and per employee, explain any employee's day, "
        "write the files for filing, enter leave and rosters, sync with SIMPEG, and read the "
        "audit log. Every change is audited under --by (default: the OS user).",
        epilog="Examples: `kota attendance rules check`; `kota attendance sync --month 2026-11`; "
        "`kota attendance recap --month 2026-11`; `kota attendance explain --nip "
        "198503122010011002 --month 2026-11`; `kota attendance export --month 2026-11 --format "
        "xlsx --out rekap-2026-11.xlsx`. " + EXIT_CODES)
    sub = attendance.add_subparsers(dest="attendance_command", metavar="ACTION", required=True)

    def add(parent: argparse._SubParsersAction, path: tuple[str, ...], help_: str,
            description: str, epilog: str,
            func: Callable[[argparse.Namespace, _Context], int], *, needs_db: bool = True
            ) -> argparse.ArgumentParser:
        p = parent.add_parser(path[-1], help=help_, description=description,
                              epilog=f"{epilog} {EXIT_CODES}")
        p.set_defaults(func=_command(func, needs_db=needs_db), attendance_path=path)
        p.add_argument("--by", metavar="USER", default=_os_user(), help="who does this, "
                       "for the audit log (default: the OS user)")
        return p

    def month(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--month", type=_month, required=required, metavar="YYYY-MM",
                       help="the month" + ("" if required else " (default: this month)"))

    def lang(p: argparse.ArgumentParser) -> None:
        p.add_argument("--lang", choices=["id", "en"], default="id", help="language of labels "
                       "and reasons (default id: Bahasa Indonesia)")

    def day_span(p: argparse.ArgumentParser) -> None:
        p.add_argument("--from", dest="first", required=True, type=_day, metavar="DATE",
                       help="first day (YYYY-MM-DD)")
        p.add_argument("--to", dest="last", required=True, type=_day, metavar="DATE",
                       help="last day (YYYY-MM-DD)")

    def recompute_switch(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--recompute", action=argparse.BooleanOptionalAction, default=True,
                       help=f"recompute the months it touches afterwards, for {what} only "
                       "(default: yes; months not begun yet are left for later)")

    rules = sub.add_parser("rules", help="check a rule file",
                           description="The region's attendance rule file.")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    p = add(rules_sub, ("rules", "check"), "validate a rule file and summarise it",
            "Validate an attendance rule file (schedules, holidays, TL/PSW brackets, leave "
            "types) and print its region, each version with its valid_from date, the schedule "
            "groups, shifts, leave types and holiday count. Nothing is stored.",
            "Examples: `kota attendance rules check` (the file [controlroom.attendance] "
            "rules_file names, else the shipped default); `kota attendance rules check "
            "aturan-kota.toml`. An invalid file prints the bad key path, e.g. "
            "`versions.0.late.brackets: …`.", cmd_rules_check, needs_db=False)
    p.add_argument("file", nargs="?", metavar="FILE", help="TOML rule file (default: the "
                   "configured one, else the shipped default)")

    p = add(sub, ("recompute",), "judge a month again from the raw punches",
            "Judge every day of the month again from the raw punches, leave and rosters under "
            "the rules in force on each day, and store the days; every day that changes is "
            "audited with its before and after and --reason. Raw punches are only read. Prints "
            "employees, punches, days, changed, new and the time each step took.",
            "Examples: `kota attendance recompute --month 2026-11 --reason \"Perwali 12/2026 "
            "applied\"`; `kota attendance recompute --month 2026-11 --nip 198503122010011002 "
            "--reason \"machine id fixed\"`.", cmd_recompute)
    month(p)
    p.add_argument("--nip", action="append", metavar="NIP", help="only this employee "
                   "(repeatable; default: every active employee)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (into the audit log)")

    p = add(sub, ("recap",), "the month's recap per SKPD (and one employee's lines)",
            "The month's recap from the stored days: per SKPD the employees, working and "
            "present days, TL and PSW bracket counts, absences by code, mean cut and employees "
            "with a cut, with a total row; with --nip also that employee's month and every line "
            "behind the cut. --json prints one JSON object {period, employees: [... with their "
            "lines], skpds: [...], totals}; progress goes to stderr.",
            "Examples: `kota attendance recap --month 2026-11`; `kota attendance recap --month "
            "2026-11 --skpd DISHUB --lang en`; `kota attendance recap --month 2026-11 --nip "
            "198503122010011002`; `kota attendance recap --month 2026-11 --recompute --json > "
            "rekap.json`.", cmd_recap)
    month(p)
    p.add_argument("--skpd", metavar="CODE", help="only this SKPD")
    p.add_argument("--nip", metavar="NIP", help="also show this employee's month and cut lines")
    p.add_argument("--recompute", action="store_true", help="recompute the month first "
                   "(audited as \"recap --recompute\")")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    lang(p)

    p = add(sub, ("explain",), "every day of one employee's month, with the reason",
            "Every stored day of one employee's month: date, status (H present, TK absent, L "
            "off, or the leave code), schedule, in and out punches, minutes late/early, TL/PSW "
            "bracket, cut, the reason in words and the flags (double punch, other office, …).",
            "Examples: `kota attendance explain --nip 198503122010011002 --month 2026-11`; "
            "`… --lang en --json`.", cmd_explain)
    p.add_argument("--nip", required=True, metavar="NIP", help="the employee")
    month(p)
    p.add_argument("--json", action="store_true", help="print one JSON object {nip, period, "
                   "days: [...]}")
    lang(p)

    p = add(sub, ("export",), "write the month's recap for filing (xlsx, csv, lines)",
            "Write the month's recap from the stored days: xlsx (the workbook BKPSDM files: "
            "Rekap, Rincian, Per SKPD, signed by [controlroom.attendance] signer_*), csv (one "
            "row per employee, `;` separated, decimal commas) or lines (one row per cut line). "
            "An existing file is replaced only with --force; a failed export leaves no file.",
            "Examples: `kota attendance export --month 2026-11 --format xlsx --out "
            "rekap-2026-11.xlsx`; `kota attendance export --month 2026-11 --format csv --skpd "
            "RSUD --out rsud.csv --force`.", cmd_export)
    month(p)
    p.add_argument("--format", required=True, choices=["xlsx", "csv", "lines"],
                   help="file format")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--skpd", metavar="CODE", help="only this SKPD")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    lang(p)

    leave = sub.add_parser("leave", help="enter, revoke and list leave",
                           description="Leave, permits and official duty entered by BKPSDM "
                           "(SIMPEG's come with `sync`).")
    leave_sub = leave.add_subparsers(dest="leave_command", metavar="ACTION", required=True)
    p = add(leave_sub, ("leave", "add"), "enter leave with its document reference",
            "Enter leave (a type the rules know: CT, CS, DL, IT, …) for an employee with the "
            "letter or decree number; audited. The months it touches are then recomputed for "
            "that employee (reason \"leave ID added\"): only the days the leave covers change.",
            "Examples: `kota attendance leave add --nip 198503122010011002 --type CS --from "
            "2026-11-09 --to 2026-11-11 --doc \"SK-DR/123/XI/2026\"`; `… --no-recompute`.",
            cmd_leave_add)
    p.add_argument("--nip", required=True, metavar="NIP", help="the employee")
    p.add_argument("--type", required=True, metavar="CODE", help="leave type code in the rules")
    day_span(p)
    p.add_argument("--doc", required=True, metavar="REF", help="the letter or decree number")
    recompute_switch(p, "this employee")

    p = add(leave_sub, ("leave", "revoke"), "revoke leave by its id",
            "Revoke a leave record (its id is in `leave list`); audited with --reason. The "
            "months it covered are then recomputed for that employee.",
            "Example: `kota attendance leave revoke 42 --reason \"cancelled by letter "
            "800/17\"`.", cmd_leave_revoke)
    p.add_argument("id", type=_positive, metavar="ID", help="the leave id")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (into the audit log)")
    recompute_switch(p, "this employee")

    p = add(leave_sub, ("leave", "list"), "list the leave overlapping a month",
            "The leave records overlapping the month, revoked ones marked, with their source "
            "(simpeg or bkpsdm), document and who entered them.",
            "Examples: `kota attendance leave list --month 2026-11`; `… --nip "
            "198503122010011002 --json`.", cmd_leave_list)
    month(p)
    p.add_argument("--nip", metavar="NIP", help="only this employee")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    roster = sub.add_parser("roster", help="shift rosters of 24-hour units",
                            description="Shift rosters of employees in roster groups (RSUD, "
                            "Dishub, Damkar): a shift code of the rules, or OFF, per day.")
    roster_sub = roster.add_subparsers(dest="roster_command", metavar="ACTION", required=True)
    p = add(roster_sub, ("roster", "set"), "set one employee's shift over a span of days",
            "Set one employee's shift (a code in the rules' [shifts], or OFF) on every day from "
            "--from to --to; audited, then the months are recomputed for that employee.",
            "Examples: `kota attendance roster set --nip 198503122010011002 --from 2026-11-02 "
            "--to 2026-11-06 --shift P` (the default rules' morning shift); `… --shift OFF`.", cmd_roster_set)
    p.add_argument("--nip", required=True, metavar="NIP", help="the employee")
    day_span(p)
    p.add_argument("--shift", required=True, metavar="CODE|OFF", help="shift code, or OFF")
    recompute_switch(p, "these employees")

    p = add(roster_sub, ("roster", "import"), "import a roster CSV (nip;tanggal;shift)",
            "Import a roster from CSV: a header row nip;tanggal;shift (`;` or `,` separated), "
            "then one row per employee and day (tanggal YYYY-MM-DD, shift a code of the rules "
            "or OFF). Every row is checked first (unknown NIP, bad date, shift not in the "
            "rules); if any is bad, all bad rows are listed with their line numbers and nothing "
            "is stored.",
            "Example: `kota attendance roster import jadwal-rsud-2026-11.csv`, the file "
            "starting `nip;tanggal;shift` / `198503122010011002;2026-11-02;M` (night shift).",
            cmd_roster_import)
    p.add_argument("file", metavar="FILE", help="the CSV file")
    recompute_switch(p, "these employees")

    p = add(sub, ("sync",), "pull from SIMPEG, recompute, push the month's recap",
            "Sync with the region's SIMPEG ([controlroom.attendance.simpeg] must be set): pull "
            "units, employees with their machine ids and the leave overlapping the month; "
            "recompute the month and every month the leave changes touch (reason \"SIMPEG "
            "sync\"); then push the month's recap (only the recaps SIMPEG does not hold yet "
            "with this content, unless --resend; a month not over yet is not pushed, as its "
            "days still to come count as absent). Prints the summaries, every skipped record "
            "and every NIP SIMPEG rejected with its reason. If SIMPEG becomes unavailable the "
            "command stops with exit 1; what was done before stays done and a repeat is safe.",
            "Examples: `kota attendance sync --month 2026-11`; `kota attendance sync "
            "--pull-only`; `kota attendance sync --month 2026-10 --push-only`.", cmd_sync)
    month(p, required=False)
    only = p.add_mutually_exclusive_group()
    only.add_argument("--pull-only", action="store_true", help="pull and recompute, no push")
    only.add_argument("--push-only", action="store_true", help="push the stored recap only")
    p.add_argument("--resend", action="store_true", help="send every recap again, also those "
                   "SIMPEG already accepted unchanged (default: only new, changed or rejected "
                   "ones)")

    p = add(sub, ("audit",), "read the attendance audit log",
            "The attendance audit log, newest first: who changed what and why (leave, rosters, "
            "employees from SIMPEG, each day a recompute changed with before and after, "
            "uploads).",
            "Examples: `kota attendance audit --nip 198503122010011002`; `kota attendance "
            "audit --action day_changed --limit 20 --json`. Actions include leave_added, "
            "leave_revoked, roster_set, day_changed, recomputed, simpeg_pulled, recap_uploaded.",
            cmd_audit)
    p.add_argument("--nip", metavar="NIP", help="only entries about this employee")
    p.add_argument("--action", metavar="A", help="only this action")
    p.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N entries "
                   "(default 50)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    return attendance
