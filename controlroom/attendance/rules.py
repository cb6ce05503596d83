"""A region's attendance rules as data: one versioned, validated TOML file per region.

Owns the rule file's schema and its loading: work schedules (weekly groups, Ramadan hours,
shift definitions for rostered 24-hour units), grace minutes, punch windows, national holidays
and collective leave, the TL/PSW brackets with their TPP cuts, the cut per unexcused absent
day, the monthly cap, and the leave and duty types that excuse. A Perkada/Perwali changes the
rules from a date on: the file keeps every version, and a day is judged by the version in force
on it, so old months keep their rules. It must not compute attendance (engine.py does) nor read
the database.

The shipped default (`rule_files/default.toml`) follows Perpres 21/2023 (37.5 hours over five
days from 07:30), the MenPAN-RB Ramadan hours (32.5 hours from 08:00), the SKB 3 Menteri on
2026 holidays and collective leave, and the TL/PSW brackets most regions use.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
# Codes the engine itself gives a day; a leave type may not take them.
RESERVED_CODES = frozenset({"H", "TK", "L", "BATAS"})


class RulesError(ValueError):
    """A rule file is malformed or breaks a rule; the message names the file and key path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class Span:
    """A working span in minutes after the day's local midnight; an end at or before the start
    means the next day (an overnight shift), so `end_min` may exceed 1440."""

    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> Span:
        match = _SPAN.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a span like '07:30-16:00'")
        start = _minutes(text[:5])
        end = _minutes(text[6:])
        if end <= start:
            end += 1440
        return cls(start, end)


def _span_or_off(value: str) -> str:
    if value != "":
        Span.parse(value)
    return value


class WeeklySchedule(_Model):
    """A fixed week: one span per weekday, "" for a day off."""

    mon: str = Field(description="Monday span 'HH:MM-HH:MM', or '' (off)")
    tue: str
    wed: str
    thu: str
    fri: str
    sat: str = ""
    sun: str = ""

    _check = field_validator(*WEEKDAYS)(_span_or_off)

    def span(self, weekday: int) -> Span | None:
        text = getattr(self, WEEKDAYS[weekday])
        return Span.parse(text) if text else None


class ScheduleGroup(_Model):
    """A schedule group (SIMPEG's kelompok jadwal): either a fixed week, with its Ramadan week,
    or a roster of shifts entered per employee per day (24-hour units)."""

    kind: Literal["weekly", "roster"] = "weekly"
    week: WeeklySchedule | None = None
    ramadan: WeeklySchedule | None = Field(None, description="The week during the Ramadan "
                                           "periods; the normal week if unset.")
    holidays_off: bool = Field(True, description="Holidays and collective leave are days off "
                               "(false for units that work through them).")

    @model_validator(mode="after")
    def _shape(self) -> ScheduleGroup:
        if self.kind == "weekly" and self.week is None:
            raise ValueError("a weekly group needs `week`")
        if self.kind == "roster" and (self.week is not None or self.ramadan is not None):
            raise ValueError("a roster group takes its days from the roster, not `week`")
        return self


class Shift(_Model):
    span: str = Field(description="'HH:MM-HH:MM'; an end before the start ends the next day")
    name: str = ""

    _check = field_validator("span")(lambda v: (Span.parse(v), v)[1])


class Bracket(_Model):
    code: str = Field(description="TL1…, PSW1…")
    from_min: int = Field(ge=1, le=1440, description="First whole minute of the bracket")
    pct: float = Field(ge=0, le=100, description="TPP cut for a day in this bracket")


class Brackets(_Model):
    brackets: tuple[Bracket, ...] = Field(min_length=1, max_length=9)
    missing_punch: str = Field(description="The bracket a day with no punch in the window "
                               "falls in (usually the last)")

    @model_validator(mode="after")
    def _order(self) -> Brackets:
        starts = [b.from_min for b in self.brackets]
        if starts != sorted(set(starts)):
            raise ValueError("brackets must start at strictly increasing minutes")
        codes = [b.code for b in self.brackets]
        if len(set(codes)) != len(codes):
            raise ValueError("bracket codes must be unique")
        if self.missing_punch not in codes:
            raise ValueError(f"missing_punch {self.missing_punch!r} is not one of {codes}")
        return self

    def index(self, code: str) -> int:
        return [b.code for b in self.brackets].index(code)


class Holiday(_Model):
    day: date
    name: str = Field(min_length=1)
    kind: Literal["nasional", "cuti_bersama", "daerah"] = "nasional"


class Period(_Model):
    first_day: date
    last_day: date

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.last_day < self.first_day:
            raise ValueError("last_day is before first_day")
        return self


class LeaveType(_Model):
    name_id: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    excuses: Literal["day", "late", "early", "none"] = Field(
        description="day: the whole day is excused; late / early: only lateness or leaving "
        "early that day (izin terlambat, izin pulang cepat); none: recorded, not excused")


class RuleVersion(_Model):
    version: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")
    valid_from: date
    basis: str = Field("", description="The regulation it implements (Perkada/Perwali number)")
    grace_min: int = Field(0, ge=0, le=120, description="Whole minutes late (or early) that "
                           "still count as on time; beyond them the minutes count from the "
                           "schedule's start (end)")
    in_before_min: int = Field(120, ge=0, le=720, description="Earliest in-punch before the "
                               "start that counts")
    out_after_min: int = Field(360, ge=0, le=720, description="Latest out-punch after the end "
                               "that counts")
    duplicate_s: int = Field(120, ge=0, le=3600, description="Two punches this close are one "
                             "(flagged as a double punch)")
    accept_other_office: bool = Field(True, description="Punches on another office's machine "
                                      "count (flagged); false ignores them (flagged)")
    absent_cut_pct: float = Field(3.0, ge=0, le=100, description="TPP cut per unexcused "
                                  "absent working day (TK)")
    monthly_cap_pct: float = Field(100.0, ge=0, le=100, description="The most a month's cuts "
                                   "may add up to")
    late: Brackets
    early: Brackets
    groups: dict[str, ScheduleGroup] = Field(min_length=1)
    default_group: str
    shifts: dict[str, Shift] = Field(default_factory=dict)
    ramadan: tuple[Period, ...] = ()
    holidays: tuple[Holiday, ...] = ()
    leave_types: dict[str, LeaveType] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RuleVersion:
        if self.default_group not in self.groups:
            raise ValueError(f"default_group {self.default_group!r} is not a group")
        for code in (*self.leave_types, *self.shifts):
            if not _CODE.match(code):
                raise ValueError(f"code {code!r} must be 1–8 capital letters or digits")
        clash = RESERVED_CODES & set(self.leave_types)
        if clash:
            raise ValueError(f"leave types may not use the engine's codes {sorted(clash)}")
        if "OFF" in self.shifts:
            raise ValueError("OFF is the roster's day off, not a shift")
        days = [h.day for h in self.holidays]
        if len(set(days)) != len(days):
            raise ValueError("a holiday day is listed twice")
        if any(g.kind == "roster" for g in self.groups.values()) and not self.shifts:
            raise ValueError("a roster group needs [shifts]")
        return self


class RuleFile(_Model):
    region: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    name: str = Field(min_length=1)
    timezone: str = Field("Asia/Jakarta")
    versions: tuple[RuleVersion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> RuleFile:
        starts = [v.valid_from for v in self.versions]
        if starts != sorted(set(starts)):
            raise ValueError("versions must have strictly increasing valid_from dates")
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError("version names must be unique")
        return self


@dataclass(frozen=True)
class Rules:
    """A loaded rule file and where it came from (its checksum goes into every recap)."""

    file: RuleFile
    source: str
    checksum: str

    @property
    def region(self) -> str:
        return self.file.region

    def version_on(self, day: date) -> RuleVersion:
        found = None
        for version in self.file.versions:
            if version.valid_from <= day:
                found = version
        if found is None:
            raise RulesError(f"{self.source}: no rule version is in force on {day} (the first "
                             f"starts {self.file.versions[0].valid_from})")
        return found

    def label(self, version: RuleVersion) -> str:
        return f"{self.region}@{version.version}"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"])
        parts.append(f"{path}: {item['msg']}")
    return "; ".join(parts)


def parse_rules(text: str, source: str) -> Rules:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from exc
    try:
        file = RuleFile.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(f"{source}: {_describe(exc)}") from exc
    return Rules(file, source, hashlib.sha256(text.encode()).hexdigest()[:16])


def load_rules(path: Path | None = None) -> Rules:
    """The rule file at `path`, or the shipped default (Perpres 21/2023, holidays 2026)."""
    if path is None:
        text = resources.files("controlroom.attendance").joinpath(
            "rule_files/default.toml").read_text(encoding="utf-8")
        return parse_rules(text, "default.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read the rule file {path}: {exc.strerror}") from exc
    return parse_rules(text, str(path))
