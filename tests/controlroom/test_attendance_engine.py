"""The daily engine against hand-computed tables: brackets at every boundary minute, grace,
in/out by the span's midpoint, weekly, Ramadan and holiday days, night shifts across midnight
and month end, leave and permits, double punches, another office's machine, a rule change
mid-year, and the invariants (no NaN, nothing out of range raises, order does not matter).

Every expected number is worked out by hand in the table; none is recomputed with the
engine's own formulas.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import pytest

from controlroom.attendance.engine import (
    ABSENT,
    DOUBLE_PUNCH,
    EXCUSED_EARLY,
    EXCUSED_LATE,
    LEAVE,
    LEAVE_WITH_PUNCH,
    NO_IN,
    NO_OUT,
    NONE,
    OFF,
    OTHER_OFFICE,
    OTHER_OFFICE_IGNORED,
    OUTSIDE_WINDOW,
    PRESENT,
    UNKNOWN_GROUP,
    DayResults,
    LeaveSpan,
    Punches,
    RosterEntry,
    judge,
    plan_days,
)
from controlroom.attendance.rules import Rules, RulesError, load_rules, parse_rules

MON = date(2026, 11, 9)  # a Monday with no holiday: 07:30-16:00 in the default rules
FRI = date(2026, 11, 13)  # 07:30-16:30


@pytest.fixture(scope="module")
def default_rules() -> Rules:
    return load_rules()


# --- a test-local rule file -------------------------------------------------------------------

_HEADER = 'region = "uji"\nname = "Aturan uji"\n'


def _version(name: str, valid_from: str, *, grace_min: int = 0, tl1_pct: float = 0.5,
             accept_other_office: bool = True) -> str:
    """One [[versions]] entry: the default brackets (TL1's cut adjustable), one weekly group
    "kantor" Mon-Thu 07:30-16:00, Fri 07:30-16:30, no Ramadan week, no holidays."""
    accept = "true" if accept_other_office else "false"
    return f"""
[[versions]]
version = "{name}"
valid_from = {valid_from}
grace_min = {grace_min}
accept_other_office = {accept}
default_group = "kantor"

[versions.late]
missing_punch = "TL4"
brackets = [
  {{ code = "TL1", from_min = 1, pct = {tl1_pct} }},
  {{ code = "TL2", from_min = 31, pct = 1.0 }},
  {{ code = "TL3", from_min = 61, pct = 1.25 }},
  {{ code = "TL4", from_min = 91, pct = 1.5 }},
]

[versions.early]
missing_punch = "PSW4"
brackets = [
  {{ code = "PSW1", from_min = 1, pct = 0.5 }},
  {{ code = "PSW2", from_min = 31, pct = 1.0 }},
  {{ code = "PSW3", from_min = 61, pct = 1.25 }},
  {{ code = "PSW4", from_min = 91, pct = 1.5 }},
]

[versions.groups.kantor]
week = {{ mon = "07:30-16:00", tue = "07:30-16:00", wed = "07:30-16:00", thu = "07:30-16:00", fri = "07:30-16:30" }}

[versions.leave_types]
CT = {{ name_id = "Cuti tahunan", name_en = "Annual leave", excuses = "day" }}
"""


def _local_rules(**values) -> Rules:
    return parse_rules(_HEADER + _version("v1", "2026-01-01", **values), "uji.toml")


# --- building punches and running the engine ---------------------------------------------------

def at(day: date, hms: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hms))


def punches(first_day: date, rows) -> Punches:
    """Punches from rows (employee, local datetime[, own_office[, machine]]); t_s counts from
    local midnight of first_day - 1, as the engine expects."""
    day0 = datetime.combine(first_day - timedelta(days=1), time())
    full = [(*row, True, 0)[:4] if len(row) == 2 else (*row, 0)[:4] for row in rows]
    return Punches(
        employee=np.array([r[0] for r in full], np.int32),
        t_s=np.array([int((r[1] - day0).total_seconds()) for r in full], np.int64),
        own_office=np.array([r[2] for r in full], bool),
        machine=np.array([r[3] for r in full], np.int32),
    )


def run(rules: Rules, first: date, last: date, groups, rows=(), *, leave=(),
        roster=()) -> DayResults:
    plan = plan_days(rules, first, last, list(groups), leave=leave, roster=roster)
    return judge(rules, plan, punches(first, rows))


def one_day(rules: Rules, day: date, times, *, group: str = "reguler", leave_code: str = "",
            **kwargs) -> DayResults:
    """One employee, one day, punches at the given local times of that day."""
    leave = [LeaveSpan(0, day, day, leave_code)] if leave_code else ()
    return run(rules, day, day, [group], [(0, at(day, hms)) for hms in times], leave=leave,
               **kwargs)


def cell(results: DayResults, employee: int = 0, column: int = 0) -> dict:
    return {name: getattr(results, name)[employee, column].item()
            for name in ("status", "late_min", "early_min", "tl", "psw", "cut_pct", "flags",
                         "punches", "in_s", "out_s", "in_machine", "out_machine", "leave")}


# --- lateness and leaving early at every bracket boundary -------------------------------------

# (in-punch on Monday, out 16:00) -> (late_min, tl, cut_pct)
LATE_TABLE = [
    ("07:00:00", 0, 0, 0.0),
    ("07:30:00", 0, 0, 0.0),
    ("07:30:59", 0, 0, 0.0),  # 59 s is 0 whole minutes: on time
    ("07:31:00", 1, 1, 0.5),
    ("08:00:00", 30, 1, 0.5),
    ("08:00:59", 30, 1, 0.5),
    ("08:01:00", 31, 2, 1.0),
    ("08:30:00", 60, 2, 1.0),
    ("08:31:00", 61, 3, 1.25),
    ("09:00:00", 90, 3, 1.25),
    ("09:01:00", 91, 4, 1.5),
    ("11:44:59", 254, 4, 1.5),  # one second before the span's midpoint (11:45): still "in"
]


@pytest.mark.parametrize(("in_hms", "late_min", "tl", "cut"), LATE_TABLE)
def test_late_brackets_at_every_boundary(default_rules, in_hms, late_min, tl, cut):
    got = cell(one_day(default_rules, MON, [in_hms, "16:00:00"]))
    assert (got["status"], got["late_min"], got["tl"], got["early_min"], got["psw"]) == (
        PRESENT, late_min, tl, 0, 0)
    assert got["cut_pct"] == pytest.approx(cut)
    assert got["flags"] == 0


# (in 07:30, out-punch on Monday, end 16:00) -> (early_min, psw, cut_pct)
EARLY_TABLE = [
    ("17:00:00", 0, 0, 0.0),
    ("16:00:00", 0, 0, 0.0),
    ("15:59:01", 0, 0, 0.0),  # 59 s early is 0 whole minutes
    ("15:59:00", 1, 1, 0.5),
    ("15:30:00", 30, 1, 0.5),
    ("15:29:30", 30, 1, 0.5),
    ("15:29:00", 31, 2, 1.0),
    ("15:00:00", 60, 2, 1.0),
    ("14:59:00", 61, 3, 1.25),
    ("14:30:00", 90, 3, 1.25),
    ("14:29:00", 91, 4, 1.5),
    ("11:45:00", 255, 4, 1.5),  # exactly the midpoint counts as "out"
]


@pytest.mark.parametrize(("out_hms", "early_min", "psw", "cut"), EARLY_TABLE)
def test_early_brackets_at_every_boundary(default_rules, out_hms, early_min, psw, cut):
    got = cell(one_day(default_rules, MON, ["07:30:00", out_hms]))
    assert (got["status"], got["early_min"], got["psw"], got["late_min"], got["tl"]) == (
        PRESENT, early_min, psw, 0, 0)
    assert got["cut_pct"] == pytest.approx(cut)
    assert got["flags"] == 0


# grace 5: (in, out) -> (tl, psw, cut); beyond grace the minutes count in full from the start
GRACE_TABLE = [
    ("07:35:00", "16:00:00", 0, 0, 0.0),
    ("07:35:59", "16:00:00", 0, 0, 0.0),
    ("07:36:00", "16:00:00", 1, 0, 0.5),
    ("08:01:00", "16:00:00", 2, 0, 1.0),
    ("07:30:00", "15:55:00", 0, 0, 0.0),
    ("07:30:00", "15:54:00", 0, 1, 0.5),
    ("07:36:00", "15:54:00", 1, 1, 1.0),
]


@pytest.mark.parametrize(("in_hms", "out_hms", "tl", "psw", "cut"), GRACE_TABLE)
def test_grace_minutes(in_hms, out_hms, tl, psw, cut):
    rules = _local_rules(grace_min=5)
    got = cell(one_day(rules, MON, [in_hms, out_hms], group="kantor"))
    assert (got["status"], got["tl"], got["psw"]) == (PRESENT, tl, psw)
    assert got["cut_pct"] == pytest.approx(cut)


def test_beyond_grace_the_minutes_count_from_the_start():
    got = cell(one_day(_local_rules(grace_min=5), MON, ["07:36:00", "15:54:00"], group="kantor"))
    assert (got["late_min"], got["early_min"]) == (6, 6)


def test_the_day_cut_is_late_plus_early(default_rules):
    got = cell(one_day(default_rules, MON, ["08:01:00", "14:59:00"]))  # 31 min, 61 min
    assert (got["tl"], got["psw"]) == (2, 3)
    assert got["cut_pct"] == pytest.approx(2.25)  # 1.0 + 1.25


def test_no_in_punch_falls_in_the_last_late_bracket(default_rules):
    got = cell(one_day(default_rules, MON, ["16:00:00"]))
    assert (got["status"], got["tl"], got["psw"], got["late_min"], got["early_min"]) == (
        PRESENT, 4, 0, NONE, 0)
    assert got["flags"] == NO_IN
    assert got["cut_pct"] == pytest.approx(1.5)


def test_no_out_punch_falls_in_the_last_early_bracket(default_rules):
    got = cell(one_day(default_rules, MON, ["07:25:00"]))
    assert (got["status"], got["tl"], got["psw"], got["late_min"], got["early_min"]) == (
        PRESENT, 0, 4, 0, NONE)
    assert got["flags"] == NO_OUT
    assert got["cut_pct"] == pytest.approx(1.5)


# --- in and out by the span's window and midpoint -----------------------------------------------

def test_first_in_and_last_out_whatever_the_key(default_rules):
    # 11-09 is day 1 after day 0 (11-08): 07:20 is 86400 + 26400 s, 16:20 is 86400 + 58800 s.
    got = cell(one_day(default_rules, MON,
                       ["07:20:00", "07:40:00", "12:00:00", "16:10:00", "16:20:00"]))
    assert (got["in_s"], got["out_s"]) == (112_800, 145_200)
    assert (got["late_min"], got["early_min"], got["cut_pct"]) == (0, 0, 0.0)
    assert got["punches"] == 5


def test_punches_either_side_of_the_midpoint(default_rules):
    # Mon 07:30-16:00: midpoint 11:45. 11:40 is the in (250 min late), 11:50 the out (250 early).
    got = cell(one_day(default_rules, MON, ["11:40:00", "11:50:00"]))
    assert (got["late_min"], got["tl"], got["early_min"], got["psw"]) == (250, 4, 250, 4)
    assert got["cut_pct"] == pytest.approx(3.0)


# (punch times on Monday) -> (status, punches in the window, flags)
WINDOW_TABLE = [
    (["05:29:59", "16:00:00"], PRESENT, 1, NO_IN | OUTSIDE_WINDOW),  # window opens 05:30
    (["05:30:00", "16:00:00"], PRESENT, 2, 0),
    (["07:30:00", "22:00:00"], PRESENT, 2, 0),  # window closes 22:00 (16:00 + 360 min)
    (["07:30:00", "22:00:01"], PRESENT, 1, NO_OUT | OUTSIDE_WINDOW),
    (["04:00:00", "23:00:00"], ABSENT, 0, OUTSIDE_WINDOW),
]


@pytest.mark.parametrize(("times", "status", "count", "flags"), WINDOW_TABLE)
def test_the_punch_window(default_rules, times, status, count, flags):
    got = cell(one_day(default_rules, MON, times))
    assert (got["status"], got["punches"], got["flags"]) == (status, count, flags)


# --- weekly schedule, Ramadan, holidays --------------------------------------------------------

def test_a_week_without_punches(default_rules):
    results = run(default_rules, MON, MON + timedelta(days=6), ["reguler"])
    assert results.status[0].tolist() == [ABSENT] * 5 + [OFF] * 2
    assert results.cut_pct[0].tolist() == [3.0] * 5 + [0.0] * 2
    assert results.tl[0].tolist() == [0] * 7
    assert results.psw[0].tolist() == [0] * 7


# (day, in, out) -> (late_min, tl, early_min, psw, cut)
SCHEDULE_TABLE = [
    (FRI, "07:30:00", "16:05:00", 0, 0, 25, 1, 0.5),  # Friday ends 16:30
    (FRI, "07:30:00", "16:30:00", 0, 0, 0, 0, 0.0),
    (MON, "07:30:00", "16:00:00", 0, 0, 0, 0, 0.0),  # Monday ends 16:00
    (date(2026, 2, 18), "08:10:00", "16:00:00", 40, 2, 0, 0, 1.0),  # the day before Ramadan
    (date(2026, 2, 19), "08:10:00", "15:00:00", 10, 1, 0, 0, 0.5),  # Ramadan Thu 08:00-15:00
    (date(2026, 2, 19), "07:50:00", "15:00:00", 0, 0, 0, 0, 0.0),
    (date(2026, 2, 20), "08:00:00", "15:30:00", 0, 0, 0, 0, 0.0),  # Ramadan Fri 08:00-15:30
    (date(2026, 2, 20), "08:00:00", "15:00:00", 0, 0, 30, 1, 0.5),
    (date(2026, 3, 17), "08:00:00", "15:00:00", 0, 0, 0, 0, 0.0),  # Ramadan Tue
]


@pytest.mark.parametrize(("day", "in_hms", "out_hms", "late", "tl", "early", "psw", "cut"),
                         SCHEDULE_TABLE)
def test_weekly_and_ramadan_hours(default_rules, day, in_hms, out_hms, late, tl, early, psw,
                                  cut):
    got = cell(one_day(default_rules, day, [in_hms, out_hms]))
    assert (got["status"], got["late_min"], got["tl"], got["early_min"], got["psw"]) == (
        PRESENT, late, tl, early, psw)
    assert got["cut_pct"] == pytest.approx(cut)


def test_ramadan_start_and_end_of_day(default_rules):
    # 2026-02-19 is day 1 of the plan: start 86400 + 8 h, end 86400 + 15 h.
    results = one_day(default_rules, date(2026, 2, 19), [])
    assert (results.start_s[0, 0], results.end_s[0, 0]) == (115_200, 140_400)


def test_holidays_are_off_and_a_punch_on_them_is_flagged(default_rules):
    first = date(2026, 12, 21)  # Mon; 12-24 cuti bersama, 12-25 Natal, 12-26/27 weekend
    results = run(default_rules, first, date(2026, 12, 27), ["reguler"],
                  [(0, at(date(2026, 12, 25), "08:00:00"))])
    assert results.status[0].tolist() == [ABSENT, ABSENT, ABSENT, OFF, OFF, OFF, OFF]
    assert results.cut_pct[0].tolist() == [3.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0]
    assert results.flags[0].tolist() == [0, 0, 0, 0, OUTSIDE_WINDOW, 0, 0]
    names = [results.holiday_names[h] if h != NONE else None for h in results.holiday]
    assert names == [None, None, None, "Cuti bersama Hari Raya Natal", "Hari Raya Natal",
                     None, None]


@pytest.mark.parametrize("day", [date(2026, 8, 17), date(2026, 11, 14), date(2026, 11, 15)])
def test_a_punch_on_a_day_off_stays_off(default_rules, day):
    got = cell(one_day(default_rules, day, ["07:30:00", "16:00:00"]))
    assert (got["status"], got["cut_pct"], got["flags"], got["punches"]) == (
        OFF, 0.0, OUTSIDE_WINDOW, 0)
    assert (got["tl"], got["psw"], got["in_s"], got["out_s"]) == (0, 0, NONE, NONE)


def test_six_day_group_works_saturday(default_rules):
    sat = date(2026, 11, 14)
    got = cell(one_day(default_rules, sat, ["07:05:00", "12:30:00"], group="enam_hari"))
    assert (got["status"], got["late_min"], got["tl"], got["cut_pct"]) == (PRESENT, 5, 1, 0.5)


# --- roster groups: night shifts across midnight and month end ---------------------------------

NIGHT = date(2026, 11, 10)
NEXT = date(2026, 11, 11)


@pytest.mark.parametrize(("in_dt", "late", "tl", "cut"), [
    (at(NIGHT, "20:55:00"), 0, 0, 0.0),
    (at(NIGHT, "21:00:59"), 0, 0, 0.0),
    (at(NIGHT, "21:40:00"), 40, 2, 1.0),
    (at(NEXT, "01:59:00"), 299, 4, 1.5),  # before the shift's midpoint (02:00): still the in
])
def test_a_night_shift_is_one_day(default_rules, in_dt, late, tl, cut):
    results = run(default_rules, NIGHT, NEXT, ["shift"],
                  [(0, in_dt), (0, at(NEXT, "07:02:00"))],
                  roster=[RosterEntry(0, NIGHT, "M")])
    night, after = cell(results, 0, 0), cell(results, 0, 1)
    assert (night["status"], night["late_min"], night["tl"], night["early_min"], night["psw"]) == (
        PRESENT, late, tl, 0, 0)
    assert night["cut_pct"] == pytest.approx(cut)
    assert night["punches"] == 2
    # 11-10 is day 1: the shift runs 86400 + 21 h .. 86400 + 31 h; out at 2 * 86400 + 7 h 2 min.
    assert (results.start_s[0, 0], results.end_s[0, 0]) == (162_000, 198_000)
    assert night["out_s"] == 198_120
    assert (after["status"], after["punches"], after["flags"], after["cut_pct"]) == (OFF, 0, 0, 0.0)


def test_a_night_shift_at_month_end_keeps_its_next_morning_out(default_rules):
    first, last = date(2026, 11, 1), date(2026, 11, 30)
    rows = [(0, at(last, "20:50:00")), (0, at(date(2026, 12, 1), "07:00:00"))]
    results = run(default_rules, first, last, ["shift"], rows,
                  roster=[RosterEntry(0, last, "M")])
    got = cell(results, 0, 29)
    assert (got["status"], got["tl"], got["psw"], got["cut_pct"], got["punches"]) == (
        PRESENT, 0, 0, 0.0, 2)
    # day 0 is 10-31: 11-30 20:50 is 30 * 86400 + 75000; 12-01 07:00 is 31 * 86400 + 25200.
    assert (got["in_s"], got["out_s"]) == (2_667_000, 2_703_600)
    assert results.status[0, :29].tolist() == [OFF] * 29  # no roster entry: off
    assert results.cut_pct[0].sum() == 0.0


@pytest.mark.parametrize(("december_first", "status", "cut"), [
    ((), OFF, 0.0),  # no roster entry
    ((RosterEntry(0, date(2026, 12, 1), "S"),), ABSENT, 3.0),  # a later shift, not worked
])
def test_the_next_month_does_not_take_the_margin_days_out_punch(default_rules, december_first,
                                                                status, cut):
    first = date(2026, 12, 1)
    rows = [(0, at(date(2026, 11, 30), "20:50:00")), (0, at(first, "07:00:00"))]
    results = run(default_rules, first, date(2026, 12, 31), ["shift"], rows,
                  roster=[RosterEntry(0, date(2026, 11, 30), "M"), *december_first])
    got = cell(results, 0, 0)
    assert (got["status"], got["punches"], got["flags"], got["cut_pct"]) == (status, 0, 0, cut)


def test_roster_off_and_missing_entries_are_days_off(default_rules):
    rows = [(0, at(NIGHT, "08:00:00")), (1, at(NIGHT, "07:00:00")), (1, at(NIGHT, "14:00:00"))]
    roster = [RosterEntry(0, NIGHT, "OFF"), RosterEntry(1, NIGHT, "P")]
    results = run(default_rules, NIGHT, NEXT, ["shift", "shift"], rows, roster=roster)
    assert results.status.tolist() == [[OFF, OFF], [PRESENT, OFF]]
    assert results.flags[0].tolist() == [OUTSIDE_WINDOW, 0]
    assert results.cut_pct.sum() == 0.0


def test_holidays_do_not_make_roster_days_off(default_rules):
    christmas = date(2026, 12, 25)
    results = one_day(default_rules, christmas, ["06:58:00", "14:03:00"], group="shift",
                      roster=[RosterEntry(0, christmas, "P")])
    assert (results.status[0, 0], results.cut_pct[0, 0]) == (PRESENT, 0.0)
    absent = run(default_rules, christmas, christmas, ["shift"],
                 roster=[RosterEntry(0, christmas, "P")])
    assert (absent.status[0, 0], absent.cut_pct[0, 0]) == (ABSENT, 3.0)


# --- leave and permits ---------------------------------------------------------------------------

def _code(results: DayResults, employee: int = 0, column: int = 0) -> str:
    return results.leave_codes[results.leave[employee, column]]


@pytest.mark.parametrize(("code", "times", "flags"), [
    ("CT", ["07:40:00", "15:00:00"], LEAVE_WITH_PUNCH),
    ("CS", [], 0),
    ("DL", ["09:00:00"], LEAVE_WITH_PUNCH),
])
def test_leave_excuses_the_day(default_rules, code, times, flags):
    results = one_day(default_rules, MON, times, leave_code=code)
    got = cell(results)
    assert (got["status"], got["cut_pct"], got["tl"], got["psw"], got["flags"]) == (
        LEAVE, 0.0, 0, 0, flags)
    assert _code(results) == code


def test_leave_over_a_week_and_beyond_the_period(default_rules):
    leave = [LeaveSpan(0, date(2026, 11, 5), MON + timedelta(days=1), "CT"),  # Thu .. Tue
             LeaveSpan(1, MON, MON + timedelta(days=6), "DL")]  # Mon .. Sun
    results = run(default_rules, MON, MON + timedelta(days=6), ["reguler", "reguler"],
                  leave=leave)
    assert results.status.tolist() == [
        [LEAVE, LEAVE, ABSENT, ABSENT, ABSENT, OFF, OFF],
        [LEAVE] * 5 + [OFF, OFF],
    ]
    assert results.cut_pct.tolist() == [[0.0, 0.0, 3.0, 3.0, 3.0, 0.0, 0.0], [0.0] * 7]


def test_leave_on_a_day_off_stays_off(default_rules):
    sat = date(2026, 11, 14)
    got = cell(one_day(default_rules, sat, [], leave_code="CT"))
    assert (got["status"], got["cut_pct"]) == (OFF, 0.0)


# (permit, in, out) -> (tl, psw, cut, flags): lateness 31 min (TL2), leaving 31 min early (PSW2)
PERMIT_TABLE = [
    ("IT", "08:01:00", "15:29:00", 0, 2, 1.0, EXCUSED_LATE),
    ("IPC", "08:01:00", "15:29:00", 2, 0, 1.0, EXCUSED_EARLY),
    ("IT", "07:30:00", "15:29:00", 0, 2, 1.0, 0),  # on time: nothing to excuse
    ("IT", None, "16:00:00", 0, 0, 0.0, EXCUSED_LATE | NO_IN),
    ("IPC", "07:30:00", None, 0, 0, 0.0, EXCUSED_EARLY | NO_OUT),
]


@pytest.mark.parametrize(("code", "in_hms", "out_hms", "tl", "psw", "cut", "flags"), PERMIT_TABLE)
def test_permits_excuse_only_their_side(default_rules, code, in_hms, out_hms, tl, psw, cut,
                                        flags):
    times = [t for t in (in_hms, out_hms) if t]
    results = one_day(default_rules, MON, times, leave_code=code)
    got = cell(results)
    assert (got["status"], got["tl"], got["psw"], got["flags"]) == (PRESENT, tl, psw, flags)
    assert got["cut_pct"] == pytest.approx(cut)
    assert _code(results) == code


def test_a_permit_keeps_the_minutes_for_the_clerk(default_rules):
    got = cell(one_day(default_rules, MON, ["08:01:00", "16:00:00"], leave_code="IT"))
    assert (got["late_min"], got["tl"]) == (31, 0)


def test_day_leave_wins_over_a_permit_on_the_same_day(default_rules):
    leave = [LeaveSpan(0, MON, MON, "IT"), LeaveSpan(0, MON, MON, "CT")]
    results = run(default_rules, MON, MON, ["reguler"], [(0, at(MON, "08:30:00"))], leave=leave)
    assert (results.status[0, 0], results.cut_pct[0, 0], _code(results)) == (LEAVE, 0.0, "CT")


# --- double punches ------------------------------------------------------------------------------

# rows of (time on Monday, machine) -> (in_s, in_machine, out_s, psw, cut, flags); 11-09 is day 1
DUPLICATE_TABLE = [
    ([("07:25:00", 0), ("07:26:30", 0), ("16:00:00", 0)], 113_100, 0, 144_000, 0, 0.0,
     DOUBLE_PUNCH),
    ([("07:25:00", 0), ("07:25:40", 1)], 113_100, 0, NONE, 4, 1.5, DOUBLE_PUNCH | NO_OUT),
    ([("07:25:40", 1), ("07:25:00", 0)], 113_100, 0, NONE, 4, 1.5, DOUBLE_PUNCH | NO_OUT),
    ([("07:25:00", 2)], 113_100, 2, NONE, 4, 1.5, NO_OUT),
    ([("07:25:00", 0), ("07:27:00", 0)], 113_100, 0, NONE, 4, 1.5, DOUBLE_PUNCH | NO_OUT),
    ([("07:25:00", 0), ("07:27:01", 0)], 113_100, 0, NONE, 4, 1.5, NO_OUT),  # 121 s apart
    ([("07:25:00", 0), ("16:00:00", 0), ("16:01:00", 3)], 113_100, 0, 144_060, 0, 0.0,
     DOUBLE_PUNCH),
]


@pytest.mark.parametrize(("rows", "in_s", "in_machine", "out_s", "psw", "cut", "flags"),
                         DUPLICATE_TABLE)
def test_double_punches(default_rules, rows, in_s, in_machine, out_s, psw, cut, flags):
    results = run(default_rules, MON, MON, ["reguler"],
                  [(0, at(MON, hms), True, machine) for hms, machine in rows])
    got = cell(results)
    assert (got["status"], got["in_s"], got["in_machine"], got["out_s"]) == (
        PRESENT, in_s, in_machine, out_s)
    assert (got["late_min"], got["tl"], got["psw"], got["flags"]) == (0, 0, psw, flags)
    assert got["cut_pct"] == pytest.approx(cut)


# --- another office's machine --------------------------------------------------------------------

# (accept, [(time, own_office)]) -> (status, tl, cut, flags)
OFFICE_TABLE = [
    (True, [("07:30:00", False), ("16:00:00", False)], PRESENT, 0, 0.0, OTHER_OFFICE),
    (True, [("07:30:00", False), ("16:00:00", True)], PRESENT, 0, 0.0, OTHER_OFFICE),
    (False, [("07:30:00", False)], ABSENT, 0, 3.0, OTHER_OFFICE_IGNORED),
    (False, [("07:30:00", False), ("16:00:00", False)], ABSENT, 0, 3.0, OTHER_OFFICE_IGNORED),
    (False, [("07:30:00", False), ("16:00:00", True)], PRESENT, 4, 1.5,
     OTHER_OFFICE_IGNORED | NO_IN),
    (False, [("07:30:00", True), ("16:00:00", True)], PRESENT, 0, 0.0, 0),
]


@pytest.mark.parametrize(("accept", "rows", "status", "tl", "cut", "flags"), OFFICE_TABLE)
def test_another_offices_machine(accept, rows, status, tl, cut, flags):
    rules = _local_rules(accept_other_office=accept)
    results = run(rules, MON, MON, ["kantor"], [(0, at(MON, hms), own) for hms, own in rows])
    got = cell(results)
    assert (got["status"], got["tl"], got["flags"]) == (status, tl, flags)
    assert got["cut_pct"] == pytest.approx(cut)


# --- a rule change mid-year -----------------------------------------------------------------------

def _two_versions() -> Rules:
    return parse_rules(_HEADER + _version("2026.1", "2026-01-01", tl1_pct=0.5)
                       + _version("2026.2", "2026-07-01", tl1_pct=1.0, grace_min=10), "uji.toml")


def test_each_day_is_judged_by_the_version_in_force():
    rules = _two_versions()
    first = date(2026, 6, 29)  # Mon .. Fri 07-03
    ins = ["07:40:00", "07:40:00", "07:40:00", "07:41:00", "07:45:00"]
    rows = [(0, at(first + timedelta(days=i), hms)) for i, hms in enumerate(ins)]
    rows += [(0, at(first + timedelta(days=i), "16:30:00")) for i in range(5)]
    results = run(rules, first, date(2026, 7, 3), ["kantor"], rows)
    assert results.version.tolist() == [0, 0, 1, 1, 1]
    assert results.late_min[0].tolist() == [10, 10, 10, 11, 15]
    assert results.tl[0].tolist() == [1, 1, 0, 1, 1]  # 10 min is within the new grace
    assert results.cut_pct[0].tolist() == [0.5, 0.5, 0.0, 1.0, 1.0]
    assert [rules.file.versions[v].version for v in results.version] == [
        "2026.1", "2026.1", "2026.2", "2026.2", "2026.2"]


def test_an_old_month_keeps_its_old_answers():
    first = date(2026, 3, 2)  # Mon .. Fri 03-06
    rows = [(0, at(first + timedelta(days=i), "07:41:00")) for i in range(5)]
    rows += [(0, at(first + timedelta(days=i), "16:30:00")) for i in range(5)]
    before = run(_local_rules(), first, date(2026, 3, 6), ["kantor"], rows)
    after = run(_two_versions(), first, date(2026, 3, 6), ["kantor"], rows)
    assert after.version.tolist() == [0] * 5
    assert after.tl[0].tolist() == [1] * 5  # 11 min: TL1 under the old rules (grace 0)
    assert after.cut_pct[0].tolist() == [0.5] * 5
    for name in ("status", "late_min", "tl", "psw", "cut_pct", "flags"):
        assert np.array_equal(getattr(before, name), getattr(after, name)), name


# --- unknown schedule group -----------------------------------------------------------------------

def test_an_unknown_group_takes_the_default_and_is_flagged(default_rules):
    rows = [(e, at(MON, hms)) for e in (0, 1) for hms in ("07:40:00", "16:00:00")]
    results = run(default_rules, MON, MON + timedelta(days=6), ["tidak_ada", "reguler"], rows)
    assert results.flags[0].tolist() == [UNKNOWN_GROUP] * 7
    assert results.flags[1].tolist() == [0] * 7
    assert np.array_equal(results.start_s[0], results.start_s[1])
    assert results.status[0].tolist() == [PRESENT] + [ABSENT] * 4 + [OFF] * 2
    assert (results.late_min[0, 0], results.tl[0, 0], results.cut_pct[0, 0]) == (10, 1, 0.5)


# --- robustness and invariants ---------------------------------------------------------------------

def test_no_punches_for_a_thousand_employees(default_rules):
    plan = plan_days(default_rules, date(2026, 11, 1), date(2026, 11, 30), ["reguler"] * 1000)
    results = judge(default_rules, plan, Punches.empty())
    assert results.shape == (1000, 30)
    # November 2026: 21 weekdays, no holidays, 9 weekend days.
    assert (results.status == ABSENT).sum(axis=1).tolist() == [21] * 1000
    assert (results.status == OFF).sum(axis=1).tolist() == [9] * 1000
    assert np.isfinite(results.cut_pct).all()
    assert results.cut_pct.sum(axis=1) == pytest.approx(np.full(1000, 63.0))
    assert (results.tl == 0).all() and (results.psw == 0).all()


def test_punches_out_of_range_are_ignored(default_rules):
    rows = [
        (-1, at(MON, "07:30:00")),
        (2, at(MON, "07:30:00")),
        (1_000_000, at(MON, "16:00:00")),
        (0, at(date(2026, 11, 7), "07:30:00")),  # before day 0 (11-08): negative seconds
        (1, at(date(2026, 11, 11), "07:30:00")),  # after the margin day (11-10)
        (0, at(date(2030, 1, 1), "07:30:00")),
    ]
    results = run(default_rules, MON, MON, ["reguler", "reguler"], rows)
    assert results.status.tolist() == [[ABSENT], [ABSENT]]
    assert results.punches.tolist() == [[0], [0]]
    assert results.flags.tolist() == [[0], [0]]


def _random_month(rules: Rules, seed: int):
    rng = np.random.default_rng(seed)
    first, last = date(2026, 11, 1), date(2026, 11, 30)
    n_emp = 60
    groups = [("reguler", "shift", "enam_hari", "tidak_ada")[i % 4] for i in range(n_emp)]
    roster = [RosterEntry(e, first + timedelta(days=d), str(rng.choice(["P", "S", "M", "OFF"])))
              for e in range(1, n_emp, 4) for d in range(30)]
    leave = [LeaveSpan(int(e), first + timedelta(days=int(d)), first + timedelta(days=int(d) + 2),
                       str(code))
             for e, d, code in zip(rng.integers(0, n_emp, 15), rng.integers(0, 28, 15),
                                   rng.choice(["CT", "CS", "DL", "IT", "IPC"], 15), strict=True)]
    n = 6000
    employee = rng.integers(0, n_emp, n).astype(np.int32)
    t_s = rng.integers(0, 32 * 86_400, n).astype(np.int64)
    own = rng.random(n) > 0.1
    machine = rng.integers(0, 4, n).astype(np.int32)
    # The same second on two machines: the tie must not depend on the input order.
    employee = np.r_[employee, [0, 0, 4, 4]].astype(np.int32)
    t_s = np.r_[t_s, [2 * 86_400 + 27_000] * 2, [3 * 86_400 + 57_600] * 2].astype(np.int64)
    own = np.r_[own, [True, True, True, True]]
    machine = np.r_[machine, [1, 2, 3, 0]].astype(np.int32)
    plan = plan_days(rules, first, last, groups, leave=leave, roster=roster)
    return plan, Punches(employee, t_s, own, machine)


ARRAYS = ("status", "leave", "start_s", "end_s", "in_s", "out_s", "in_machine", "out_machine",
          "late_min", "early_min", "tl", "psw", "cut_pct", "flags", "punches", "version",
          "holiday")


def test_results_do_not_depend_on_the_order_of_punches(default_rules):
    plan, raw = _random_month(default_rules, seed=7)
    first = judge(default_rules, plan, raw)
    again = judge(default_rules, plan, raw)
    order = np.random.default_rng(11).permutation(raw.t_s.size)
    shuffled = judge(default_rules, plan, Punches(raw.employee[order], raw.t_s[order],
                                                  raw.own_office[order], raw.machine[order]))
    reversed_ = judge(default_rules, plan, Punches(raw.employee[::-1], raw.t_s[::-1],
                                                   raw.own_office[::-1], raw.machine[::-1]))
    for name in ARRAYS:
        for other in (again, shuffled, reversed_):
            assert np.array_equal(getattr(first, name), getattr(other, name)), name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_invariants_over_a_random_month(default_rules, seed):
    plan, raw = _random_month(default_rules, seed)
    results = judge(default_rules, plan, raw)
    cut = results.cut_pct
    assert np.isfinite(cut).all() and (cut >= 0).all()
    assert (cut[results.status == OFF] == 0).all()
    assert (cut[results.status == LEAVE] == 0).all()
    assert (cut[results.status == ABSENT] == 3.0).all()
    assert (cut <= 3.0).all()  # at most TL4 + PSW4 = 1.5 + 1.5, or one absent day
    assert ((results.tl >= 0) & (results.tl <= 4)).all()
    assert ((results.psw >= 0) & (results.psw <= 4)).all()
    off_or_leave = (results.status == OFF) | (results.status == LEAVE)
    assert (results.tl[off_or_leave] == 0).all() and (results.psw[off_or_leave] == 0).all()
    present = results.status == PRESENT
    assert ((results.in_s != NONE) | (results.out_s != NONE))[present].all()
    assert results.punches.sum() <= raw.t_s.size
    assert ((results.flags & UNKNOWN_GROUP) != 0).sum() == 15 * 30  # every 4th of 60 employees


def test_no_group_is_the_default_group_and_not_flagged(default_rules):
    # plan_days: "" is the default group (the employee table's default); only a named group
    # the rules do not know is flagged.
    rows = [(0, at(MON, "07:40:00")), (0, at(MON, "16:00:00"))]
    results = run(default_rules, MON, MON + timedelta(days=6), [""], rows)
    assert results.flags[0].tolist() == [0] * 7
    assert results.status[0].tolist() == [PRESENT] + [ABSENT] * 4 + [OFF] * 2
    assert (results.late_min[0, 0], results.tl[0, 0]) == (10, 1)


def test_plan_errors_name_the_problem(default_rules):
    with pytest.raises(ValueError, match="ends"):
        plan_days(default_rules, MON, MON - timedelta(days=1), ["reguler"])
    with pytest.raises(ValueError, match=r"leave types \['XX'\]"):
        plan_days(default_rules, MON, MON, ["reguler"], leave=[LeaveSpan(0, MON, MON, "XX")])
    with pytest.raises(ValueError, match="shift 'Z'"):
        plan_days(default_rules, MON, MON, ["shift"], roster=[RosterEntry(0, MON, "Z")])
    with pytest.raises(RulesError, match="no rule version is in force"):
        plan_days(_local_rules(), date(2025, 12, 1), date(2025, 12, 31), ["kantor"])


def test_days_not_over_are_pending_never_absent(default_rules) -> None:
    # Period Mon 9 – Fri 13 Nov 2026, judged until Tue 10: Wed–Fri are pending (status 4, no
    # cut) even with no punch; a leave already approved for Thursday shows as leave.
    first, last = date(2026, 11, 9), date(2026, 11, 13)
    plan = plan_days(default_rules, first, last, ["reguler"],
                     leave=[LeaveSpan(0, date(2026, 11, 12), date(2026, 11, 12), "CT")],
                     judged_until=date(2026, 11, 10))
    results = judge(default_rules, plan, punches(first, [(0, at(first, "07:20:00")),
                                                         (0, at(first, "16:10:00")),
                                                         (0, at(date(2026, 11, 11), "07:50:00"))]))
    assert [int(s) for s in results.status[0]] == [PRESENT, ABSENT, 4, LEAVE, 4]
    assert [float(c) for c in results.cut_pct[0]] == [0.0, 3.0, 0.0, 0.0, 0.0]
    assert [int(t) for t in results.tl[0]] == [0, 0, 0, 0, 0]  # the 11th's 20 minutes: not yet
