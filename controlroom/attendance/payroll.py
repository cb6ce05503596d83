"""Attendance for payroll: recompute a period's days from raw punches, build the monthly recap,
explain any employee's day, and take leave and rosters from BKPSDM.

Owns the order of the work (load → plan → judge → store with audit → aggregate) and the
checks on what people enter (a valid NIP, a leave type the rules know, a document reference).
It must not hold rules (rules.py), do arithmetic on days (engine.py) or write SQL
(payroll_store.py).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from controlroom.attendance import engine
from controlroom.attendance.nip import InvalidNip, parse_nip
from controlroom.attendance.payroll_store import DayRows, LeaveRow, PayrollStore
from controlroom.attendance.recap import (
    CutLine,
    EmployeeRecap,
    SkpdRecap,
    cap_line,
    cut_lines,
    day_cut_lines,
    skpd_recaps,
)
from controlroom.attendance.rules import Rules

log = logging.getLogger(__name__)

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PayrollInputError(ValueError):
    """What a person or a file entered breaks a rule; nothing was changed."""


def month_bounds(period: str) -> tuple[date, date]:
    """"2026-11" → (2026-11-01, 2026-11-30)."""
    match = _PERIOD.match(period or "")
    if not match:
        raise PayrollInputError(f"period {period!r} must be a month like 2026-11")
    first = date(int(match[1]), int(match[2]), 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, last


@dataclass(frozen=True, slots=True)
class RecomputeReport:
    first_day: date
    last_day: date
    employees: int
    punches: int
    rows: int
    changed: int
    new: int
    seconds: dict[str, float]
    results: engine.DayResults  # what was stored, [employees, days]
    nips: list[str]  # the results' employees
    extra: Any = None  # what `while_storing` returned


# Stored status codes: engine.BASE_CODES, then the rules' leave codes.
OFF_INDEX, PRESENT_INDEX, ABSENT_INDEX, PENDING_INDEX = (
    engine.BASE_CODES.index(c) for c in ("L", "H", "TK", "-"))


def _status_index(status: np.ndarray, leave: np.ndarray) -> np.ndarray:
    """The engine's status (and leave index) → the index of the stored code."""
    code = np.select([status == engine.OFF, status == engine.PRESENT, status == engine.ABSENT,
                      status == engine.PENDING],
                     [OFF_INDEX, PRESENT_INDEX, ABSENT_INDEX, PENDING_INDEX],
                     len(engine.BASE_CODES) + leave)
    return code.reshape(-1)


def day_rows(results: engine.DayResults, nips: Sequence[str], machines: Sequence[str],
             rules: Rules) -> DayRows:
    """The engine's [E, D] arrays flattened into stored rows."""
    n_emp, n_days = results.shape
    day0 = np.datetime64(results.first_day - timedelta(days=1), "s")

    def when(seconds: np.ndarray) -> np.ndarray:
        flat = seconds.reshape(-1)
        return np.where(flat == engine.NONE, np.datetime64("NaT", "s"),
                        day0 + flat.astype("timedelta64[s]"))

    status = results.status.astype(np.int64)
    leave = results.leave.astype(np.int64)
    status_index = _status_index(status, leave)
    days = np.datetime64(results.first_day, "D") + np.arange(n_days)
    return DayRows(
        nips=nips, employee=np.repeat(np.arange(n_emp), n_days),
        day=np.tile(days, n_emp), status=status_index,
        status_vocabulary=[*engine.BASE_CODES, *results.leave_codes],
        sched_start=when(results.start_s), sched_end=when(results.end_s),
        in_at=when(results.in_s), out_at=when(results.out_s),
        in_device=results.in_machine.reshape(-1), out_device=results.out_machine.reshape(-1),
        devices=machines, late_min=results.late_min.reshape(-1),
        early_min=results.early_min.reshape(-1), tl=results.tl.reshape(-1),
        psw=results.psw.reshape(-1), cut_pct=results.cut_pct.reshape(-1),
        flags=results.flags.reshape(-1), punches=results.punches.reshape(-1),
        holiday=np.tile(results.holiday, n_emp), holidays=results.holiday_names,
        rules_version=np.tile(results.version, n_emp),
        versions=[rules.label(v) for v in rules.file.versions])


class Payroll:
    """The BKPSDM side of attendance over the payroll store and the region's rules."""

    def __init__(self, store: PayrollStore, rules: Rules, *,
                 today: Callable[[], date] | None = None) -> None:
        self.store = store
        self.rules = rules
        self._today = today or self._region_today

    def _region_today(self) -> date:
        return datetime.now(ZoneInfo(self.rules.file.timezone)).date()

    def judged_until(self) -> date:
        """The last day that is over in the region: today is still pending."""
        return self._today() - timedelta(days=1)

    # --- recompute ---------------------------------------------------------------------------

    def recompute(self, first_day: date, last_day: date, *, actor: str, reason: str,
                  nips: Sequence[str] | None = None,
                  while_storing: Callable[[engine.DayResults, list[dict[str, Any]]], Any]
                  | None = None) -> RecomputeReport:
        """Judge every day of the period again from raw punches, leave and rosters, and store
        it; each stored day that changes is audited (raw punches are only read)."""
        if last_day < first_day:
            raise PayrollInputError(f"the period ends ({last_day}) before it starts ({first_day})")
        if (last_day - first_day).days > 366:
            raise PayrollInputError("recompute at most a year at a time")
        timer: dict[str, float] = {}
        t0 = time.perf_counter()
        employees = self.store.employees(nips=nips)
        if nips is not None:
            missing = sorted(set(nips) - {e["nip"] for e in employees})
            if missing:
                raise PayrollInputError(f"no active employee with NIP {', '.join(missing[:5])}")
        index = {e["nip"]: i for i, e in enumerate(employees)}
        scope = [e["nip"] for e in employees]
        leave = [engine.LeaveSpan(index[r["nip"]], r["first_day"], r["last_day"], r["code"])
                 for r in self.store.leave(first_day - timedelta(days=1),
                                           last_day + timedelta(days=1), nips=scope)
                 if r["nip"] in index]
        roster = [engine.RosterEntry(index[r["nip"]], r["day"], r["shift"])
                  for r in self.store.roster(first_day - timedelta(days=1),
                                             last_day + timedelta(days=1)) if r["nip"] in index]
        timer["load_people_s"] = time.perf_counter() - t0
        # The punches are joined and packed by the server while this thread plans the days.
        t = time.perf_counter()
        with ThreadPoolExecutor(1, thread_name_prefix="punches") as pool:
            loading = pool.submit(self.store.load_punches, first_day, last_day, scope,
                                  [e["skpd"] for e in employees])
            try:
                plan = engine.plan_days(self.rules, first_day, last_day,
                                        [e["schedule_group"] for e in employees],
                                        leave=leave, roster=roster,
                                        judged_until=self.judged_until())
            except ValueError as exc:
                raise PayrollInputError(str(exc)) from exc
            timer["plan_s"] = time.perf_counter() - t
            punches = loading.result()
        timer["load_punches_s"] = time.perf_counter() - t
        t = time.perf_counter()
        results = engine.judge(self.rules, plan, engine.Punches(
            punches.employee, punches.t_s, punches.own_office, punches.machine))
        timer["engine_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rows = day_rows(results, scope, punches.machines, self.rules)
        with ThreadPoolExecutor(1, thread_name_prefix="store-days") as pool:
            storing = pool.submit(self.store.replace_days, rows, first_day, last_day,
                                  actor=actor, reason=reason, computed_at=datetime.now(UTC))
            # Work that needs only the results (the recap) runs while the server stores them;
            # it is returned only once the days are committed.
            extra = while_storing(results, employees) if while_storing is not None else None
            counts = storing.result()
        timer["store_s"] = time.perf_counter() - t
        timer["total_s"] = time.perf_counter() - t0
        self.store.audit(actor, "recomputed", f"{first_day}..{last_day}", {
            "reason": reason, "employees": len(scope), "punches": int(punches.t_s.size),
            "rules": self.rules.source, "rules_checksum": self.rules.checksum,
            "scope": list(nips) if nips is not None else "all", **counts})
        log.info("recomputed %s..%s: %d employees, %d punches, %d days (%d changed, %d new) "
                 "in %.2f s", first_day, last_day, len(scope), punches.t_s.size, counts["rows"],
                 counts["changed"], counts["new"], timer["total_s"])
        return RecomputeReport(first_day, last_day, len(scope), int(punches.t_s.size),
                               counts["rows"], counts["changed"], counts["new"],
                               {k: round(v, 3) for k, v in timer.items()}, results, scope,
                               extra)

    def recompute_month(self, period: str, *, actor: str, reason: str
                        ) -> tuple[RecomputeReport, list[EmployeeRecap], list[SkpdRecap]]:
        """Recompute a month from raw punches and give its recap (built while the days are
        being stored; the same numbers `recap` reads back from the database)."""
        first, last = month_bounds(period)

        def recap(results: engine.DayResults, employees: list[dict[str, Any]]) -> Any:
            return self._recap(period, employees, self._result_arrays(results))

        report = self.recompute(first, last, actor=actor, reason=reason, while_storing=recap)
        recaps, skpds = report.extra
        return report, recaps, skpds

    # --- recap -------------------------------------------------------------------------------

    def _pct_tables(self) -> dict[str, tuple[list[float], list[float], float]]:
        out = {}
        for v in self.rules.file.versions:
            out[self.rules.label(v)] = ([0.0, *(b.pct for b in v.late.brackets)],
                                        [0.0, *(b.pct for b in v.early.brackets)],
                                        v.absent_cut_pct)
        return out

    def _statuses(self) -> tuple[list[str], list[str]]:
        versions = self.rules.file.versions
        labels = [self.rules.label(v) for v in versions]
        leave_codes = sorted({c for v in versions for c in v.leave_types})
        return [*engine.BASE_CODES, *leave_codes], labels

    def recap(self, period: str, *, skpd: str | None = None
              ) -> tuple[list[EmployeeRecap], list[SkpdRecap]]:
        """The month per employee (with the lines behind every cut) and per SKPD, from the
        stored days (recompute first if punches, leave or rules changed since). Employees with
        no stored day in the month are left out."""
        first, last = month_bounds(period)
        employees = self.store.employees(skpd=skpd, include_inactive=True)
        statuses, labels = self._statuses()
        arrays = self.store.month_arrays(first, last, [e["nip"] for e in employees], statuses,
                                         labels)
        return self._recap(period, employees, arrays)

    def _result_arrays(self, r: engine.DayResults) -> dict[str, np.ndarray]:
        """A recompute's [employees, days] results as the flat arrays `_recap` aggregates, in
        the same form `PayrollStore.month_arrays` reads the stored days back."""
        n_emp, n_days = r.shape

        def of_day(seconds: np.ndarray) -> np.ndarray:
            # seconds from midnight of the day before the period → after the row's own midnight
            own = seconds - (np.arange(n_days)[None, :] + 1) * engine.DAY_S
            return np.where(seconds == engine.NONE, -1, own).reshape(-1)

        status = r.status.astype(np.int64)
        return {
            "employee": np.repeat(np.arange(n_emp), n_days),
            "day": np.tile(np.arange(n_days), n_emp),
            "status": _status_index(status, r.leave.astype(np.int64)),
            "tl": r.tl.reshape(-1), "psw": r.psw.reshape(-1), "cut_pct": r.cut_pct.reshape(-1),
            "version": np.tile(r.version, n_emp), "late_min": r.late_min.reshape(-1),
            "early_min": r.early_min.reshape(-1), "sched_start": of_day(r.start_s),
            "sched_end": of_day(r.end_s), "in_s": of_day(r.in_s), "out_s": of_day(r.out_s)}

    def _recap(self, period: str, employees: Sequence[dict[str, Any]],
               a: dict[str, np.ndarray]) -> tuple[list[EmployeeRecap], list[SkpdRecap]]:
        first, last = month_bounds(period)
        cap = self.rules.version_on(last).monthly_cap_pct
        statuses, labels = self._statuses()
        statuses = [*statuses, "?"]  # "?": a stored code the rules no longer know
        n_emp, n_status, n_ver = len(employees), len(statuses), len(labels) + 1
        emp = a["employee"].astype(np.int64)
        status = np.where(a["status"] < 0, n_status - 1, a["status"]).astype(np.int64)
        version = np.where(a["version"] < 0, n_ver - 1, a["version"]).astype(np.int64)
        by_status = np.bincount(emp * n_status + status,
                                minlength=n_emp * n_status).reshape(n_emp, n_status)
        tl = np.bincount(emp * 5 + np.clip(a["tl"], 0, 4), minlength=n_emp * 5).reshape(n_emp, 5)
        psw = np.bincount(emp * 5 + np.clip(a["psw"], 0, 4), minlength=n_emp * 5).reshape(n_emp, 5)
        cut = np.round(np.bincount(emp, weights=a["cut_pct"], minlength=n_emp), 6)
        used = np.bincount(emp * n_ver + version, minlength=n_emp * n_ver).reshape(n_emp, n_ver)
        owners, lines = self._cut_lines(a, first, statuses)
        bounds = np.searchsorted(owners, np.arange(n_emp + 1)).tolist()
        days_in = by_status.sum(axis=1).tolist()
        by_status_l, tl_l, psw_l = by_status.tolist(), tl[:, 1:].tolist(), psw[:, 1:].tolist()
        cut_l, used_l = cut.tolist(), used.astype(bool).tolist()
        version_names = [*labels, "?"]
        recaps = []
        for i, e in enumerate(employees):
            if not days_in[i]:
                continue
            counts = by_status_l[i]
            absences = {statuses[k]: counts[k] for k in range(2, n_status)
                        if counts[k] and k != PENDING_INDEX}
            own = lines[bounds[i]:bounds[i + 1]]
            total = cut_l[i]
            capped = min(total, cap)
            if capped < total:
                own = [*own, cap_line(last, cap, total)]
            recaps.append(EmployeeRecap(
                nip=e["nip"], name=e["name"], skpd=e["skpd"], skpd_name=e["skpd_name"],
                unit=e["unit_name"], position=e["position"], period=period,
                rules_version=", ".join(n for n, u in zip(version_names, used_l[i],
                                                           strict=True) if u),
                working_days=days_in[i] - counts[OFF_INDEX] - counts[PENDING_INDEX],
                present_days=counts[PRESENT_INDEX],
                tl=tuple(tl_l[i]), psw=tuple(psw_l[i]),  # type: ignore[arg-type]
                absences=absences, cut_uncapped_pct=total, cut_pct=capped, lines=tuple(own)))
        return recaps, skpd_recaps(recaps)

    def _cut_lines(self, a: dict[str, np.ndarray], first: date, statuses: Sequence[str]
                   ) -> tuple[np.ndarray, list[CutLine]]:
        """The lines behind every cut day, ordered by employee then day, and each line's
        employee index."""
        versions = self.rules.file.versions
        late_pct = [[0.0, *(b.pct for b in v.late.brackets)] for v in versions]
        early_pct = [[0.0, *(b.pct for b in v.early.brackets)] for v in versions]
        absent_pct = [v.absent_cut_pct for v in versions]
        take = np.flatnonzero(a["cut_pct"] > 0)
        take = take[np.lexsort((a["day"][take], a["employee"][take]))]
        cols = {k: a[k][take].tolist() for k in ("employee", "day", "status", "tl", "psw",
                                                 "version", "late_min", "early_min",
                                                 "sched_start", "sched_end", "in_s", "out_s")}
        days = [first + timedelta(days=d) for d in range(32)]
        absent = ABSENT_INDEX
        owners: list[int] = []
        lines: list[CutLine] = []
        for k in range(len(take)):
            v = cols["version"][k]
            if v < 0:
                continue
            new = day_cut_lines(days[cols["day"][k]], cols["status"][k] == absent,
                                cols["tl"][k], cols["psw"][k], cols["late_min"][k],
                                cols["early_min"][k], cols["sched_start"][k],
                                cols["sched_end"][k], cols["in_s"][k], cols["out_s"][k],
                                late_pct[v], early_pct[v], absent_pct[v])
            lines.extend(new)
            owners.extend([cols["employee"][k]] * len(new))
        return np.array(owners, np.int64), lines

    def explain(self, nip: str, period: str) -> list[dict[str, Any]]:
        """Every day of one employee's month with its status and the reason in words."""
        first, last = month_bounds(period)
        tables = self._pct_tables()
        out = []
        for day in self.store.days(first, last, nip=nip):
            late, early, absent = tables.get(day["rules_version"], ([0.0] * 10, [0.0] * 10, 0.0))
            lines = cut_lines(day, late, early, absent)
            flags = [name for bit, name in engine.FLAG_NAMES.items() if day["flags"] & bit]
            if day["status"] == "L":
                why_id = f"Libur: {day['holiday']}" if day["holiday"] else "Libur"
                why_en = f"Day off: {day['holiday']}" if day["holiday"] else "Day off"
            elif day["status"] == engine.BASE_CODES[PENDING_INDEX]:
                why_id, why_en = "Belum berlalu (belum dinilai)", "Not over yet (not judged)"
            elif day["status"] not in engine.BASE_CODES:
                kind = self._leave_name(day["status"])
                why_id, why_en = f"Dikecualikan: {kind[0]}", f"Excused: {kind[1]}"
            elif not lines:
                why_id, why_en = "Hadir tepat waktu", "Present on time"
            else:
                why_id = "; ".join(x.text_id for x in lines)
                why_en = "; ".join(x.text_en for x in lines)
            out.append({**day, "flag_names": flags, "reason_id": why_id, "reason_en": why_en,
                        "lines": [{"code": x.code, "pct": x.pct, "text_id": x.text_id,
                                   "text_en": x.text_en} for x in lines]})
        return out

    def _leave_name(self, code: str) -> tuple[str, str]:
        for version in reversed(self.rules.file.versions):
            if code in version.leave_types:
                kind = version.leave_types[code]
                return kind.name_id, kind.name_en
        return code, code

    # --- what BKPSDM enters ------------------------------------------------------------------

    def check_leave(self, nip: str, code: str, first_day: date, last_day: date,
                    doc_ref: str) -> None:
        try:
            parse_nip(nip)
        except InvalidNip as exc:
            raise PayrollInputError(f"NIP {nip!r}: {exc}") from exc
        if self.store.employee(nip) is None:
            raise PayrollInputError(f"no employee with NIP {nip} (sync from SIMPEG first)")
        if last_day < first_day:
            raise PayrollInputError(f"leave ends ({last_day}) before it starts ({first_day})")
        if (last_day - first_day).days > 366 * 3:
            raise PayrollInputError("one leave record spans at most three years")
        known = self.rules.version_on(first_day).leave_types
        if code not in known:
            raise PayrollInputError(f"leave type {code!r} is not in the rules (known: "
                                    f"{', '.join(sorted(known))})")
        if not doc_ref.strip() or len(doc_ref) > 200:
            raise PayrollInputError("a document reference (the letter or decree number, up to "
                                    "200 characters) is required")

    def add_leave(self, nip: str, code: str, first_day: date, last_day: date, doc_ref: str, *,
                  actor: str) -> int:
        """BKPSDM enters leave with its document reference (audited). Recompute the months it
        touches for it to count."""
        self.check_leave(nip, code, first_day, last_day, doc_ref)
        source_id = f"bkpsdm:{nip}:{code}:{first_day}:{last_day}:{doc_ref.strip()}"
        leave_id, _ = self.store.add_leave(LeaveRow(nip, code, first_day, last_day,
                                                    doc_ref.strip(), "bkpsdm", source_id),
                                           actor=actor)
        return leave_id
