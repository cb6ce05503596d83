"""Today's presence as BKPSDM watches it during the day: who is in, late, not (yet) in, on leave
or off, per SKPD, judged by the daily engine from the raw punches as they stand now.

Owns the day-so-far view only: the engine judges the day as if it were over (so a missing
in-punch counts in its TL bracket as the rules say) and nothing is stored — the day's stored
row stays pending until the payroll round judges it after midnight. It must not hold rules or
arithmetic of its own (engine.py), nor SQL (payroll_store.py, store.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from controlroom.attendance import engine
from controlroom.attendance.payroll import Payroll


@dataclass(frozen=True, slots=True)
class EmployeeToday:
    nip: str
    name: str
    skpd: str
    # "off" (no schedule today), "leave" (excused all day: `leave` holds the code), "present"
    # (a counted punch), "no_punch" (scheduled, no counted punch yet: TK once the day is over)
    state: str
    leave: str | None
    scheduled_start: str | None  # "07:30"
    scheduled_end: str | None
    in_time: str | None  # "07:41:12", the machine's wall time
    out_time: str | None
    late_min: int | None
    tl: int  # the TL bracket the in-punch falls in (0: on time), as the rules judge it
    flags: list[str]


@dataclass
class SkpdToday:
    skpd: str
    skpd_name: str
    employees: int = 0
    scheduled: int = 0  # due at work today (not off, not on leave)
    present: int = 0
    on_time: int = 0
    late: int = 0  # present with TL1..TL4 (a missing in-punch is in its bracket too)
    late_by_tl: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    no_punch: int = 0
    leave: dict[str, int] = field(default_factory=dict)
    off: int = 0


def _clock(seconds: int, day_index: int, with_seconds: bool = True) -> str | None:
    """Seconds from the plan's day 0 → the wall-clock time on that day (None: none)."""
    if seconds == engine.NONE:
        return None
    s = int(seconds) - day_index * engine.DAY_S
    text = f"{(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"
    return text if with_seconds else text[:5]


def presence_on(payroll: Payroll, day: date, *, skpd: str | None = None
                ) -> tuple[list[SkpdToday], list[EmployeeToday]]:
    """Every active employee's day so far (of one SKPD when given) and the counts per SKPD."""
    store, rules = payroll.store, payroll.rules
    employees = store.employees(skpd=skpd)
    nips = [e["nip"] for e in employees]
    index = {nip: i for i, nip in enumerate(nips)}
    around = (day - timedelta(days=1), day + timedelta(days=1))
    leave = [engine.LeaveSpan(index[r["nip"]], r["first_day"], r["last_day"], r["code"])
             for r in store.leave(*around, nips=nips) if r["nip"] in index]
    roster = [engine.RosterEntry(index[r["nip"]], r["day"], r["shift"])
              for r in store.roster(*around) if r["nip"] in index]
    plan = engine.plan_days(rules, day, day, [e["schedule_group"] for e in employees],
                            leave=leave, roster=roster, judged_until=day)
    punches = store.load_punches(day, day, nips, [e["skpd"] for e in employees])
    r = engine.judge(rules, plan, engine.Punches(punches.employee, punches.t_s,
                                                 punches.own_office, punches.machine))
    # The period is one day: column 0 of the results, whose times count from the day before.
    by_skpd: dict[str, SkpdToday] = {}
    people: list[EmployeeToday] = []
    for i, e in enumerate(employees):
        group = by_skpd.setdefault(e["skpd"], SkpdToday(e["skpd"], e["skpd_name"]))
        group.employees += 1
        status, tl = int(r.status[i, 0]), int(r.tl[i, 0])
        code = r.leave_codes[r.leave[i, 0]] if r.leave[i, 0] != engine.NONE else None
        if status == engine.LEAVE:
            state = "leave"
            group.leave[code or "?"] = group.leave.get(code or "?", 0) + 1
        elif status == engine.OFF:
            state = "off"
            group.off += 1
        else:
            group.scheduled += 1
            if status == engine.PRESENT:
                state = "present"
                group.present += 1
                if tl:
                    group.late += 1
                    group.late_by_tl[min(tl, 4) - 1] += 1
                else:
                    group.on_time += 1
            else:
                state = "no_punch"
                group.no_punch += 1
        late = int(r.late_min[i, 0])
        people.append(EmployeeToday(
            nip=e["nip"], name=e["name"], skpd=e["skpd"], state=state,
            leave=code if state == "leave" else None,
            scheduled_start=_clock(r.start_s[i, 0], 1, False),
            scheduled_end=_clock(r.end_s[i, 0], 1, False),
            in_time=_clock(r.in_s[i, 0], 1), out_time=_clock(r.out_s[i, 0], 1),
            late_min=late if late != engine.NONE else None,
            tl=tl if state == "present" else 0,
            flags=[name for bit, name in engine.FLAG_NAMES.items() if r.flags[i, 0] & bit]))
    return [by_skpd[k] for k in sorted(by_skpd)], people


def as_json(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in row.__dataclass_fields__}
