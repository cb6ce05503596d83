"""The monthly recap BKPSDM pays TPP from: per employee and per SKPD, with the lines behind
every cut.

Owns the recap's types and their aggregation from the daily engine's results. It must not read
the database nor format files (export.py lays them out for filing; the SIMPEG adapter turns
them into upload records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
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


def _hm(value: Any) -> str:
    return value.strftime("%H:%M") if value is not None else "-"


def _hms(value: Any) -> str:
    return value.strftime("%H:%M:%S") if value is not None else "-"


def _pct(value: float) -> str:
    return f"{value:g}"


def cut_lines(day: dict[str, Any], late_pct: Sequence[float], early_pct: Sequence[float],
              absent_pct: float) -> list[CutLine]:
    """The lines behind one day's cut (a stored attendance_day row); `late_pct[k]` is the cut
    of the k-th late bracket (index 0: none) in the rule version of that day."""
    lines = []
    d = day["day"]
    if day["status"] == ABSENT:
        lines.append(CutLine(d, ABSENT, absent_pct, *ABSENT_TEXT))
    if day["tl"]:
        code = f"TL{day['tl']}"
        texts = (NO_IN_TEXT if day["in_at"] is None else LATE_TEXT)
        args = {"m": day["late_min"], "t": _hms(day["in_at"]), "s": _hm(day["sched_start"])}
        lines.append(CutLine(d, code, late_pct[day["tl"]], *(t.format(**args) for t in texts)))
    if day["psw"]:
        code = f"PSW{day['psw']}"
        texts = (NO_OUT_TEXT if day["out_at"] is None else EARLY_TEXT)
        args = {"m": day["early_min"], "t": _hms(day["out_at"]), "s": _hm(day["sched_end"])}
        lines.append(CutLine(d, code, early_pct[day["psw"]], *(t.format(**args) for t in texts)))
    return lines


def employee_recap(employee: dict[str, Any], period: str, totals: Sequence[dict[str, Any]],
                   lines: Sequence[CutLine], *, cap_pct: float, last_day: date) -> EmployeeRecap:
    """One employee's month from the per-status totals of their stored days."""
    absences: dict[str, int] = {}
    working = present = 0
    tl = [0, 0, 0, 0]
    psw = [0, 0, 0, 0]
    cut = 0.0
    versions: set[str] = set()
    for row in totals:
        versions.update(row["versions"])
        cut += float(row["cut_pct"] or 0.0)
        if row["status"] == OFF:
            continue
        working += row["days"]
        if row["status"] == PRESENT:
            present += row["days"]
        else:
            absences[row["status"]] = absences.get(row["status"], 0) + row["days"]
        for k in range(4):
            tl[k] += row[f"tl{k + 1}"]
            psw[k] += row[f"psw{k + 1}"]
    cut = round(cut, 6)
    capped = min(cut, cap_pct)
    all_lines = list(lines)
    if capped < cut:
        all_lines.append(CutLine(last_day, "BATAS", round(capped - cut, 6),
                                 CAP_TEXT[0].format(cap=_pct(cap_pct), total=_pct(cut)),
                                 CAP_TEXT[1].format(cap=_pct(cap_pct), total=_pct(cut))))
    return EmployeeRecap(
        nip=employee["nip"], name=employee["name"], skpd=employee["skpd"],
        skpd_name=employee.get("skpd_name") or employee["skpd"],
        unit=employee.get("unit_name") or employee["unit"], position=employee["position"],
        period=period, rules_version=", ".join(sorted(versions)), working_days=working,
        present_days=present, tl=tuple(tl), psw=tuple(psw),  # type: ignore[arg-type]
        absences=dict(sorted(absences.items())), cut_uncapped_pct=cut, cut_pct=capped,
        lines=tuple(all_lines))


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
