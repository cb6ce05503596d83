"""The monthly recap BKPSDM pays TPP from: per employee and per SKPD, with the lines behind
every cut.

Owns the recap's types, the words of each cut line (Bahasa Indonesia and English) and the
per-SKPD totals; payroll.py counts the days into an employee's recap. It must not read the
database nor format files (export.py lays them out for filing; the SIMPEG adapter turns them
into upload records).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# Day status codes as they appear in recaps and exports (Bahasa Indonesia, as BKPSDM files them).
PRESENT = "H"  # hadir
ABSENT = "TK"  # tanpa keterangan: an unexcused absent working day
OFF = "L"  # libur: weekend, holiday, collective leave, or no shift on the roster


@dataclass(frozen=True, slots=True)
class CutLine:
    """One line behind a cut: which day, which rule, how much, and why in words."""

    day: date
    code: str  # "TL1".."TL4", "PSW1".."PSW4", "TK" (unexcused absence), "BATAS" (the monthly cap)
    pct: float  # the cut this line adds to the month (the cap's line is negative)
    text_id: str  # Bahasa Indonesia, e.g. "Terlambat 35 menit (masuk 08:05:12, jadwal 07:30)"
    text_en: str


@dataclass(frozen=True, slots=True)
class EmployeeRecap:
    nip: str
    name: str
    skpd: str  # SKPD code
    skpd_name: str
    unit: str  # unit name within the SKPD
    position: str
    period: str  # "2026-11"
    rules_version: str  # "<region>@<version>" of the rule file that applied
    working_days: int  # scheduled working days in the month
    present_days: int
    tl: tuple[int, int, int, int]  # days late in TL1..TL4
    psw: tuple[int, int, int, int]  # days left early in PSW1..PSW4
    absences: dict[str, int]  # "TK" and excused leave/duty codes ("CT", "CS", "DL", …) -> days
    cut_uncapped_pct: float
    cut_pct: float  # after the monthly cap: what payroll applies to the TPP
    lines: tuple[CutLine, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SkpdRecap:
    skpd: str
    skpd_name: str
    period: str
    employees: int
    working_days: int  # summed over its employees
    present_days: int
    tl: tuple[int, int, int, int]
    psw: tuple[int, int, int, int]
    absences: dict[str, int]
    cut_pct_mean: float  # mean cut over its employees
    employees_with_cut: int


LATE_TEXT = ("Terlambat {m} menit (masuk {t}, jadwal {s})", "Late {m} min (in {t}, schedule {s})")
NO_IN_TEXT = ("Tidak ada absen masuk (jadwal {s})", "No in-punch (schedule {s})")
EARLY_TEXT = ("Pulang {m} menit sebelum waktunya (pulang {t}, jadwal {s})",
              "Left {m} min early (out {t}, schedule {s})")
NO_OUT_TEXT = ("Tidak ada absen pulang (jadwal {s})", "No out-punch (schedule {s})")
ABSENT_TEXT = ("Tidak hadir tanpa keterangan", "Absent without leave")
CAP_TEXT = ("Potongan dibatasi {cap}% sebulan (jumlah {total}%)",
            "Cut capped at {cap}% a month (sum {total}%)")


@functools.cache
def _clock_table() -> tuple[str, ...]:
    return tuple(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60)
                 for s in range(60))


def _clock(seconds: int, with_seconds: bool = True) -> str:
    """Seconds after the day's midnight as the machine shows them (past 24:00 for the next
    morning of an overnight shift is shown as that morning's time)."""
    if seconds < 0:
        return "-"
    text = _clock_table()[seconds % 86_400]
    return text if with_seconds else text[:5]


def day_cut_lines(day: date, absent: bool, tl: int, psw: int, late_min: int, early_min: int,
                  sched_start_s: int, sched_end_s: int, in_s: int, out_s: int,
                  late_pct: Sequence[float], early_pct: Sequence[float], absent_pct: float
                  ) -> list[CutLine]:
    """The lines behind one day's cut; times in seconds after the day's midnight (-1: none),
    `late_pct[k]` the cut of the k-th late bracket (index 0: none) of the day's rule version."""
    lines = []
    if absent:
        lines.append(CutLine(day, ABSENT, absent_pct, *ABSENT_TEXT))
    if tl:
        start = _clock(sched_start_s, False)
        if in_s < 0:
            text_id, text_en = NO_IN_TEXT[0].format(s=start), NO_IN_TEXT[1].format(s=start)
        else:
            t = _clock(in_s)
            text_id = LATE_TEXT[0].format(m=late_min, t=t, s=start)
            text_en = LATE_TEXT[1].format(m=late_min, t=t, s=start)
        lines.append(CutLine(day, f"TL{tl}", late_pct[tl], text_id, text_en))
    if psw:
        end = _clock(sched_end_s, False)
        if out_s < 0:
            text_id, text_en = NO_OUT_TEXT[0].format(s=end), NO_OUT_TEXT[1].format(s=end)
        else:
            t = _clock(out_s)
            text_id = EARLY_TEXT[0].format(m=early_min, t=t, s=end)
            text_en = EARLY_TEXT[1].format(m=early_min, t=t, s=end)
        lines.append(CutLine(day, f"PSW{psw}", early_pct[psw], text_id, text_en))
    return lines


def _seconds_of_day(value: Any, day: date) -> int:
    if value is None:
        return -1
    return int((value - datetime.combine(day, datetime.min.time())).total_seconds())


def cut_lines(row: dict[str, Any], late_pct: Sequence[float], early_pct: Sequence[float],
              absent_pct: float) -> list[CutLine]:
    """The lines behind one stored attendance_day row's cut."""
    d = row["day"]
    return day_cut_lines(d, row["status"] == ABSENT, row["tl"], row["psw"], row["late_min"],
                         row["early_min"], _seconds_of_day(row["sched_start"], d),
                         _seconds_of_day(row["sched_end"], d), _seconds_of_day(row["in_at"], d),
                         _seconds_of_day(row["out_at"], d), late_pct, early_pct, absent_pct)


def _pct(value: float) -> str:
    return f"{value:g}"


def cap_line(last_day: date, cap_pct: float, total_pct: float) -> CutLine:
    """The monthly cap's line: a negative cut bringing the month down to the cap."""
    return CutLine(last_day, "BATAS", round(cap_pct - total_pct, 6),
                   CAP_TEXT[0].format(cap=_pct(cap_pct), total=_pct(total_pct)),
                   CAP_TEXT[1].format(cap=_pct(cap_pct), total=_pct(total_pct)))


def skpd_recaps(recaps: Sequence[EmployeeRecap]) -> list[SkpdRecap]:
    by_skpd: dict[str, list[EmployeeRecap]] = {}
    for r in recaps:
        by_skpd.setdefault(r.skpd, []).append(r)
    out = []
    for code in sorted(by_skpd):
        group = by_skpd[code]
        absences: dict[str, int] = {}
        for r in group:
            for k, v in r.absences.items():
                absences[k] = absences.get(k, 0) + v
        out.append(SkpdRecap(
            skpd=code, skpd_name=group[0].skpd_name, period=group[0].period,
            employees=len(group), working_days=sum(r.working_days for r in group),
            present_days=sum(r.present_days for r in group),
            tl=tuple(sum(r.tl[k] for r in group) for k in range(4)),  # type: ignore[arg-type]
            psw=tuple(sum(r.psw[k] for r in group) for k in range(4)),  # type: ignore[arg-type]
            absences=dict(sorted(absences.items())),
            cut_pct_mean=round(sum(r.cut_pct for r in group) / len(group), 6),
            employees_with_cut=sum(1 for r in group if r.cut_pct > 0)))
    return out
