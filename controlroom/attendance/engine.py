"""The daily engine: raw punches to one status per employee per day, with its reason, for all
employees at once.

Owns the arithmetic of the rules over arrays: which schedule applies to each employee on each
day (weekly group, Ramadan week, holiday, roster shift), which day's window a punch falls in
(overnight shifts across midnight and month end included), first-in and last-out, lateness and
leaving early in whole minutes, the TL/PSW brackets, leave that excuses, unexcused absence, the
day's cut, and the flags a clerk needs to check (double punches, another office's machine,
punches outside any window, leave on a day with punches). No Python loop over employees or
punches: loops run over schedule groups, days and leave records only. It must not read the
database or format text for files (recap.py and export.py do).

Times are the machine's local wall time (the office's zone, as the employee sees the clock),
counted in seconds from local midnight of the day before the period. Minutes late are whole
minutes, truncated (07:30:59 against 07:30 is 0 minutes), as the machine's display shows them.
A punch's `punch_state` (the in/out key) is ignored: staff press the wrong key often, so the
first punch in the first half of the working span is the in-punch and the last punch in the
second half is the out-punch, as regional e-absensi systems do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from controlroom.attendance.rules import Rules, RuleVersion, Span

DAY_S = 86_400
NONE = -1

# Day status (the `status` array)
OFF, PRESENT, ABSENT, LEAVE, PENDING = 0, 1, 2, 3, 4
# The stored codes of OFF, PRESENT, ABSENT and PENDING (a working day not yet over: never
# judged absent before it has passed); LEAVE days carry the leave type's code instead.
BASE_CODES = ("L", "H", "TK", "-")

# Flags (the `flags` bitmask): what a clerk may want to look at, whatever the status.
DOUBLE_PUNCH = 1  # two punches within duplicate_s (one counted)
OTHER_OFFICE = 2  # a counted punch was on another office's machine
OUTSIDE_WINDOW = 4  # a punch this day fell in no schedule window (e.g. on a day off)
LEAVE_WITH_PUNCH = 8  # excused by leave, yet punches exist
NO_IN = 16  # present, but no in-punch (counted in the late brackets' missing_punch)
NO_OUT = 32  # present, but no out-punch
EXCUSED_LATE = 64  # late, excused by a permit (izin terlambat)
EXCUSED_EARLY = 128  # left early, excused by a permit (izin pulang cepat)
OTHER_OFFICE_IGNORED = 256  # a punch on another office's machine was not counted
UNKNOWN_GROUP = 512  # the employee's schedule group is not in the rules: the default applied
FLAG_NAMES = {
    DOUBLE_PUNCH: "double_punch", OTHER_OFFICE: "other_office", OUTSIDE_WINDOW: "outside_window",
    LEAVE_WITH_PUNCH: "leave_with_punch", NO_IN: "no_in", NO_OUT: "no_out",
    EXCUSED_LATE: "excused_late", EXCUSED_EARLY: "excused_early",
    OTHER_OFFICE_IGNORED: "other_office_ignored", UNKNOWN_GROUP: "unknown_group",
}

_EXCUSE = {"day": 1, "late": 2, "early": 4, "none": 0}


@dataclass(frozen=True, slots=True)
class LeaveSpan:
    """Leave or duty of one employee (an index into the employees), days inclusive."""

    employee: int
    first_day: date
    last_day: date
    code: str


@dataclass(frozen=True, slots=True)
class RosterEntry:
    employee: int
    day: date
    shift: str  # a shift code of the rules, or "OFF"


@dataclass(frozen=True, slots=True)
class Punches:
    """Raw punches as arrays: whose, when, and whether on the employee's own office's machine."""

    employee: np.ndarray  # int32 [P]: index into the employees
    t_s: np.ndarray  # int64 [P]: local wall time, seconds from midnight of first_day - 1
    own_office: np.ndarray  # bool [P]: on a machine of the employee's office (or either unknown)
    machine: np.ndarray  # int32 [P]: index into the caller's machine list

    @classmethod
    def empty(cls) -> Punches:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, bool),
                   np.zeros(0, np.int32))


@dataclass(frozen=True)
class DayPlan:
    """What each employee was due to do each day: the schedule and the leave, over the period
    with one margin day either side (index 0 is first_day - 1)."""

    first_day: date
    days: int  # in the period (the arrays hold days + 2)
    version: np.ndarray  # int16 [D2]: index into rules.file.versions
    start_s: np.ndarray  # int64 [E, D2]: scheduled start, seconds from day 0; NONE: off
    end_s: np.ndarray  # int64 [E, D2]
    leave: np.ndarray  # int16 [E, D2]: index into leave_codes, NONE for none
    excuse: np.ndarray  # int8 [E, D2]: 1 day, 2 late, 4 early (bits)
    holiday: np.ndarray  # int16 [D2]: index into holiday_names, NONE
    unknown_group: np.ndarray  # bool [E]
    leave_codes: tuple[str, ...]
    holiday_names: tuple[str, ...]
    due: np.ndarray  # bool [D2]: the day is over and may be judged (else PENDING)


@dataclass(frozen=True)
class DayResults:
    """One row per employee per period day ([E, D] arrays; times in seconds from day 0 of the
    plan, i.e. midnight of first_day - 1)."""

    first_day: date
    status: np.ndarray  # int8: OFF, PRESENT, ABSENT, LEAVE, PENDING
    leave: np.ndarray  # int16: index into leave_codes or NONE
    start_s: np.ndarray  # int64: scheduled start or NONE
    end_s: np.ndarray
    in_s: np.ndarray  # int64: in-punch or NONE
    out_s: np.ndarray
    in_machine: np.ndarray  # int32: machine index or NONE
    out_machine: np.ndarray
    late_min: np.ndarray  # int32: whole minutes late (0 on time); NONE: no in-punch
    early_min: np.ndarray
    tl: np.ndarray  # int8: 0 none, k = the k-th late bracket
    psw: np.ndarray  # int8
    cut_pct: np.ndarray  # float64: the day's cut
    flags: np.ndarray  # int32
    punches: np.ndarray  # int16: punches that fell on this day's window
    version: np.ndarray  # int16 [D]
    holiday: np.ndarray  # int16 [D]
    leave_codes: tuple[str, ...]
    holiday_names: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.status.shape  # type: ignore[return-value]


def _version_index(rules: Rules, days: Sequence[date]) -> np.ndarray:
    starts = [v.valid_from for v in rules.file.versions]
    out = np.empty(len(days), np.int16)
    for i, day in enumerate(days):
        found = NONE
        for k, first in enumerate(starts):
            if first <= day:
                found = k
        if found == NONE and i == 0:
            found = 0  # the margin day before a period that starts with the first version
        if found == NONE:
            rules.version_on(day)  # raises RulesError naming the first version's date
        out[i] = found
    return out


def _in_ramadan(version: RuleVersion, day: date) -> bool:
    return any(p.first_day <= day <= p.last_day for p in version.ramadan)


def plan_days(rules: Rules, first_day: date, last_day: date, groups: Sequence[str],
              *, leave: Sequence[LeaveSpan] = (), roster: Sequence[RosterEntry] = (),
              judged_until: date | None = None) -> DayPlan:
    """Expand the rules into each employee's schedule and leave, day by day.

    `groups` holds each employee's schedule group (SIMPEG's kelompok jadwal; "" for the
    default). Loops run over days × groups and over leave and roster records, never over
    employees: the per-employee arrays are gathers.
    """
    if last_day < first_day:
        raise ValueError(f"the period ends ({last_day}) before it starts ({first_day})")
    n_days = (last_day - first_day).days + 1
    days = [first_day + timedelta(days=i - 1) for i in range(n_days + 2)]
    d2 = len(days)
    versions = _version_index(rules, days)
    group_names = sorted({g for g in groups} | {v.default_group for v in rules.file.versions})
    group_of = {name: i for i, name in enumerate(group_names)}
    employee_group = np.array([group_of[g or ""] if (g or "") in group_of else NONE
                               for g in groups], dtype=np.int32).reshape(-1)
    n_emp = len(groups)

    # [G, D2] spans per group and day; roster groups get theirs from the roster below.
    g_start = np.full((len(group_names), d2), NONE, np.int64)
    g_end = np.full((len(group_names), d2), NONE, np.int64)
    g_roster = np.zeros((len(group_names), d2), bool)
    g_known = np.zeros((len(group_names), d2), bool)
    holiday_names: list[str] = []
    holiday = np.full(d2, NONE, np.int16)
    for j, day in enumerate(days):
        version = rules.file.versions[versions[j]]
        names = {h.day: h.name for h in version.holidays}
        if day in names:
            holiday_names.append(names[day])
            holiday[j] = len(holiday_names) - 1
        for name, gi in group_of.items():
            # "" (no group in SIMPEG) is the default group, not an unknown one.
            group = version.groups.get(name or version.default_group)
            g_known[gi, j] = group is not None
            if group is None:
                group = version.groups[version.default_group]
            if group.kind == "roster":
                g_roster[gi, j] = True
                continue
            if holiday[j] != NONE and group.holidays_off:
                continue
            week = group.ramadan if group.ramadan and _in_ramadan(version, day) else group.week
            span = week.span(day.weekday()) if week else None
            if span is not None:
                g_start[gi, j] = j * DAY_S + span.start_min * 60
                g_end[gi, j] = j * DAY_S + span.end_min * 60

    unknown = employee_group == NONE
    # An unknown group takes the default group of the version in force on each day.
    default_idx = np.array([group_of[rules.file.versions[v].default_group] for v in versions])
    gather = np.where(unknown[:, None], default_idx[None, :], employee_group[:, None])
    cols = np.arange(d2)[None, :]
    start = g_start[gather, cols] if n_emp else np.zeros((0, d2), np.int64)
    end = g_end[gather, cols] if n_emp else np.zeros((0, d2), np.int64)
    is_roster = g_roster[gather, cols] if n_emp else np.zeros((0, d2), bool)
    unknown = unknown | (~g_known[gather, cols]).any(axis=1) if n_emp else unknown

    if roster:
        emp = np.array([r.employee for r in roster], np.int64)
        col = np.array([(r.day - days[0]).days for r in roster], np.int64)
        keep = (col >= 0) & (col < d2)
        shift_s = np.full((len(roster), 2), NONE, np.int64)
        spans: dict[str, Span] = {}
        for i, entry in enumerate(roster):
            if not keep[i] or entry.shift == "OFF":
                continue
            version = rules.file.versions[versions[col[i]]]
            shift = version.shifts.get(entry.shift)
            if shift is None:
                raise ValueError(f"roster of employee #{entry.employee} on {entry.day}: shift "
                                 f"{entry.shift!r} is not in the rules (known: "
                                 f"{', '.join(sorted(version.shifts))}, OFF)")
            span = spans.get(shift.span)
            if span is None:
                span = spans[shift.span] = Span.parse(shift.span)
            shift_s[i] = (col[i] * DAY_S + span.start_min * 60, col[i] * DAY_S + span.end_min * 60)
        emp, col, shift_s = emp[keep], col[keep], shift_s[keep]
        on_roster = is_roster[emp, col]
        start[emp[on_roster], col[on_roster]] = shift_s[on_roster, 0]
        end[emp[on_roster], col[on_roster]] = shift_s[on_roster, 1]

    leave_codes = tuple(sorted({code for v in rules.file.versions for code in v.leave_types}))
    code_of = {c: i for i, c in enumerate(leave_codes)}
    leave_idx = np.full((n_emp, d2), NONE, np.int16)
    excuse = np.zeros((n_emp, d2), np.int8)
    if leave:
        unknown_codes = sorted({s.code for s in leave} - set(code_of))
        if unknown_codes:
            raise ValueError(f"leave types {unknown_codes} are not in the rules (known: "
                             f"{', '.join(leave_codes)})")
        first = np.array([(s.first_day - days[0]).days for s in leave], np.int64)
        last = np.array([(s.last_day - days[0]).days for s in leave], np.int64)
        first, last = np.clip(first, 0, d2), np.clip(last + 1, 0, d2)
        lengths = np.maximum(last - first, 0)
        rows = np.repeat(np.array([s.employee for s in leave], np.int64), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        cols_l = np.repeat(first, lengths) + offsets
        codes = np.repeat(np.array([code_of[s.code] for s in leave], np.int16), lengths)
        # The excuse a code gives can change between versions: look it up per day.
        excuse_table = np.zeros((len(rules.file.versions), len(leave_codes)), np.int8)
        for vi, version in enumerate(rules.file.versions):
            for code, kind in version.leave_types.items():
                excuse_table[vi, code_of[code]] = _EXCUSE[kind.excuses]
        bits = excuse_table[versions[cols_l], codes]
        np.bitwise_or.at(excuse, (rows, cols_l), bits)
        # A day-excusing leave's code wins the day's label over a permit's.
        order = np.argsort(bits & 1, kind="stable")
        leave_idx[rows[order], cols_l[order]] = codes[order]

    # Days after `judged_until` (today and later, for a month not over) are not judged yet.
    due = np.array([judged_until is None or day <= judged_until for day in days])
    return DayPlan(first_day, n_days, versions, start, end, leave_idx, excuse, holiday,
                   unknown, leave_codes, tuple(holiday_names), due)


def _version_tables(rules: Rules) -> dict[str, np.ndarray]:
    """Per-version constants as arrays, so that each day is judged by its own version."""
    versions = rules.file.versions
    k_late = max(len(v.late.brackets) for v in versions)
    k_early = max(len(v.early.brackets) for v in versions)
    big = np.iinfo(np.int32).max

    def brackets(attr: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts = np.full((len(versions), k), big, np.int64)
        pct = np.zeros((len(versions), k + 1))
        missing = np.zeros(len(versions), np.int8)
        for vi, version in enumerate(versions):
            table = getattr(version, attr)
            for bi, bracket in enumerate(table.brackets):
                starts[vi, bi] = bracket.from_min
                pct[vi, bi + 1] = bracket.pct
            missing[vi] = table.index(table.missing_punch) + 1
        return starts, pct, missing

    late_starts, late_pct, late_missing = brackets("late", k_late)
    early_starts, early_pct, early_missing = brackets("early", k_early)
    return {
        "grace_min": np.array([v.grace_min for v in versions], np.int64),
        "before_s": np.array([v.in_before_min * 60 for v in versions], np.int64),
        "after_s": np.array([v.out_after_min * 60 for v in versions], np.int64),
        "duplicate_s": np.array([v.duplicate_s for v in versions], np.int64),
        "accept_other": np.array([v.accept_other_office for v in versions], bool),
        "absent_pct": np.array([v.absent_cut_pct for v in versions]),
        "late_starts": late_starts, "late_pct": late_pct, "late_missing": late_missing,
        "early_starts": early_starts, "early_pct": early_pct, "early_missing": early_missing,
    }


def _first_per_key(keys: np.ndarray, values: np.ndarray, size: int, fill: int,
                   *, last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For keys sorted ascending (values ascending within a key): the first (or last) value per
    key, as a dense array of `size`, and the position it came from (NONE where no key)."""
    out = np.full(size, fill, values.dtype)
    where = np.full(size, NONE, np.int64)
    if keys.size:
        if last:
            take = np.flatnonzero(np.r_[keys[1:] != keys[:-1], True])
        else:
            take = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        out[keys[take]] = values[take]
        where[keys[take]] = take
    return out, where


def judge(rules: Rules, plan: DayPlan, punches: Punches) -> DayResults:
    """Each employee's status on each period day from the plan and the raw punches."""
    n_emp, d2 = plan.start_s.shape
    tables = _version_tables(rules)
    size = n_emp * d2
    start_flat = plan.start_s.reshape(-1)
    end_flat = plan.end_s.reshape(-1)
    flags = np.zeros(size, np.int32)

    emp = punches.employee.astype(np.int64)
    t = punches.t_s.astype(np.int64)
    valid = (emp >= 0) & (emp < n_emp) & (t >= 0) & (t < d2 * DAY_S)
    emp, t = emp[valid], t[valid]
    own, machine = punches.own_office[valid], punches.machine[valid].astype(np.int32)
    day_of = t // DAY_S

    # Another office's machine: counted and flagged, or (by the rules in force) not counted.
    ignore = ~own & ~tables["accept_other"][plan.version[day_of]]
    np.bitwise_or.at(flags, emp[ignore] * d2 + day_of[ignore], OTHER_OFFICE_IGNORED)
    keep = ~ignore
    emp, t, own, machine, day_of = emp[keep], t[keep], own[keep], machine[keep], day_of[keep]

    # Each punch belongs to the window it falls in of three candidate days: the day before
    # (an overnight shift's out-punch), its own day, and the next (an early in-punch for a
    # shift starting at midnight). Among several, the nearest working span wins.
    cand = day_of[:, None] + np.array([-1, 0, 1])[None, :]
    inside = (cand >= 0) & (cand < d2)
    cand_c = np.clip(cand, 0, d2 - 1)
    key = emp[:, None] * d2 + cand_c
    c_start, c_end = start_flat[key], end_flat[key]
    v = plan.version[cand_c]
    scheduled = inside & (c_start != NONE)
    in_window = (scheduled & (t[:, None] >= c_start - tables["before_s"][v])
                 & (t[:, None] <= c_end + tables["after_s"][v]))
    distance = np.maximum(np.maximum(c_start - t[:, None], t[:, None] - c_end), 0)
    distance = np.where(in_window, distance, np.iinfo(np.int64).max)
    pick = np.argmin(distance, axis=1)
    rows = np.arange(t.size)
    assigned = in_window[rows, pick]
    p_key = key[rows, pick]

    outside = ~assigned
    np.bitwise_or.at(flags, emp[outside] * d2 + day_of[outside], OUTSIDE_WINDOW)

    p_key, p_t = p_key[assigned], t[assigned]
    p_own, p_machine = own[assigned], machine[assigned]
    mid2 = start_flat[p_key] + end_flat[p_key]  # twice the span's midpoint
    is_in = 2 * p_t < mid2

    # The machine breaks ties: the same second on two machines must give the same in/out
    # machine whatever the order the punches came in.
    order = np.lexsort((p_machine, p_t, p_key))
    s_key, s_t, s_in = p_key[order], p_t[order], is_in[order]
    s_machine, s_own = p_machine[order], p_own[order]
    counts = np.bincount(s_key, minlength=size).astype(np.int16)
    same = s_key[1:] == s_key[:-1]
    dup_s = tables["duplicate_s"][plan.version[s_key[1:] % d2]]
    doubled = same & (s_t[1:] - s_t[:-1] <= dup_s)
    np.bitwise_or.at(flags, s_key[1:][doubled], DOUBLE_PUNCH)
    np.bitwise_or.at(flags, s_key[~s_own], OTHER_OFFICE)

    in_s, in_pos = _first_per_key(s_key[s_in], s_t[s_in], size, NONE)
    out_s, out_pos = _first_per_key(s_key[~s_in], s_t[~s_in], size, NONE, last=True)
    in_machine = np.where(in_pos != NONE, s_machine[s_in][np.maximum(in_pos, 0)] if s_in.any()
                          else NONE, NONE).astype(np.int32)
    out_machine = np.where(out_pos != NONE, s_machine[~s_in][np.maximum(out_pos, 0)]
                           if (~s_in).any() else NONE, NONE).astype(np.int32)

    # Judge every cell, then keep the period's days (margin days were only there for windows).
    vers = np.broadcast_to(plan.version[None, :], (n_emp, d2)).reshape(-1)
    excuse = plan.excuse.reshape(-1)
    scheduled = start_flat != NONE
    has_in, has_out = in_s != NONE, out_s != NONE
    day_leave = scheduled & (excuse & 1).astype(bool)  # known ahead: shown on future days too
    not_due = ~np.repeat(plan.due[None, :], n_emp, axis=0).reshape(-1)
    pending = scheduled & not_due & ~day_leave
    working = scheduled & ~pending
    absent = working & ~day_leave & ~has_in & ~has_out
    present = working & ~day_leave & ~absent

    grace = tables["grace_min"][vers]
    late_min = np.where(has_in, np.maximum(in_s - start_flat, 0) // 60, NONE)
    early_min = np.where(has_out, np.maximum(end_flat - out_s, 0) // 60, NONE)
    late_counted = np.where(late_min > grace, late_min, 0)
    early_counted = np.where(early_min > grace, early_min, 0)
    tl = (late_counted[:, None] >= tables["late_starts"][vers]).sum(axis=1).astype(np.int8)
    psw = (early_counted[:, None] >= tables["early_starts"][vers]).sum(axis=1).astype(np.int8)
    tl = np.where(has_in, tl, tables["late_missing"][vers]).astype(np.int8)
    psw = np.where(has_out, psw, tables["early_missing"][vers]).astype(np.int8)
    excused_late = present & (excuse & 2).astype(bool) & (tl > 0)
    excused_early = present & (excuse & 4).astype(bool) & (psw > 0)
    tl = np.where(present & ~excused_late, tl, 0).astype(np.int8)
    psw = np.where(present & ~excused_early, psw, 0).astype(np.int8)

    cut = (tables["late_pct"][vers, tl] + tables["early_pct"][vers, psw]
           + np.where(absent, tables["absent_pct"][vers], 0.0))
    status = np.full(size, OFF, np.int8)
    status[present] = PRESENT
    status[absent] = ABSENT
    status[day_leave] = LEAVE
    status[pending] = PENDING

    flags |= np.where(day_leave & (counts > 0), LEAVE_WITH_PUNCH, 0).astype(np.int32)
    flags |= np.where(present & ~has_in, NO_IN, 0).astype(np.int32)
    flags |= np.where(present & ~has_out, NO_OUT, 0).astype(np.int32)
    flags |= np.where(excused_late, EXCUSED_LATE, 0).astype(np.int32)
    flags |= np.where(excused_early, EXCUSED_EARLY, 0).astype(np.int32)
    flags |= np.where(np.repeat(plan.unknown_group, d2), UNKNOWN_GROUP, 0).astype(np.int32)

    def period(a: np.ndarray) -> np.ndarray:
        return a.reshape(n_emp, d2)[:, 1:-1]

    return DayResults(
        first_day=plan.first_day, status=period(status), leave=plan.leave[:, 1:-1],
        start_s=plan.start_s[:, 1:-1], end_s=plan.end_s[:, 1:-1],
        in_s=period(in_s), out_s=period(out_s), in_machine=period(in_machine),
        out_machine=period(out_machine), late_min=period(late_min).astype(np.int32),
        early_min=period(early_min).astype(np.int32), tl=period(tl), psw=period(psw),
        cut_pct=period(cut), flags=period(flags), punches=period(counts),
        version=plan.version[1:-1], holiday=plan.holiday[1:-1], leave_codes=plan.leave_codes,
        holiday_names=plan.holiday_names)
