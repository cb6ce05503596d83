"""NIP (Nomor Induk Pegawai) of a PNS: parsing, validation and the written form.

Owns the 18-digit layout of Peraturan Kepala BKN No. 22/2007 and its plausibility rules. It is
pure: no I/O, no logging, no database; the only clock read is `date.today()` when the caller
passes no `today`. It knows PNS NIPs only: a PPPK's Nomor Induk (NI PPPK) lays out its middle
digits differently and is refused here, so callers that export every employee (export.py) must
not run their NIPs through this module.

Layout (Perka BKN 22/2007)::

    19850412 201001 1 003
    |        |      | +-- sequence number 001-999 among equal first 15 digits
    |        |      +---- gender: 1 male (laki-laki, "L"), 2 female (perempuan, "P")
    |        +----------- TMT CPNS: year and month of the first appointment (always day 1)
    +-------------------- birth date YYYYMMDD
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

# A CPNS is at least 18 when appointed (UU 5/2014 on ASN, art. 23: "usia paling rendah 18
# tahun"); a birth year before 1940 cannot belong to anyone the 2007 numbering still covers.
MIN_BIRTH_YEAR = 1940
MIN_AGE_AT_CPNS = 18

_GENDER_BY_DIGIT: dict[str, Literal["L", "P"]] = {"1": "L", "2": "P"}
_NIP_DIGITS = re.compile(r"[0-9]{18}")  # ASCII digits only: str.isdigit() also takes "١٢٣"

# One English and one Bahasa Indonesia wording per rule: str(error) is the English one, the
# dashboard shows .text_id. Placeholders are filled by parse_nip.
_MESSAGES: dict[str, tuple[str, str]] = {
    "length": (
        "NIP must be 18 digits (spaces between the groups allowed), got {got!r}",
        "NIP harus 18 angka (spasi di antara kelompok boleh), tertulis {got!r}",
    ),
    "birth_date": (
        "NIP birth date {digits} (YYYYMMDD) is not a calendar date",
        "Tanggal lahir pada NIP {digits} (TTTTBBHH) bukan tanggal yang ada",
    ),
    "birth_year": (
        "NIP birth year {year} is implausible (before {min_year})",
        "Tahun lahir pada NIP {year} tidak wajar (sebelum {min_year})",
    ),
    "cpns_month": (
        "NIP CPNS start month {month} is not 01-12",
        "Bulan TMT CPNS pada NIP {month} bukan 01-12",
    ),
    "cpns_future": (
        "NIP CPNS start {year}-{month} is after the current month {today_year}-{today_month}",
        "TMT CPNS pada NIP {year}-{month} melewati bulan berjalan {today_year}-{today_month}",
    ),
    "age": (
        "NIP holder would be {age} at CPNS start {year}-{month}, younger than {min_age}",
        "Pemilik NIP baru berusia {age} tahun saat TMT CPNS {year}-{month}, kurang dari {min_age}",
    ),
    "gender": (
        "NIP gender digit {digit} is neither 1 (male) nor 2 (female)",
        "Angka jenis kelamin pada NIP {digit} bukan 1 (laki-laki) atau 2 (perempuan)",
    ),
    "sequence": (
        "NIP sequence number 000 is not issued (001-999)",
        "Nomor urut NIP 000 tidak pernah diberikan (001-999)",
    ),
}


class InvalidNip(ValueError):
    """A text that is not a valid PNS NIP; `rule` names the broken rule, `text_id` says it in
    Bahasa Indonesia."""

    def __init__(self, rule: str, **values: object) -> None:
        text_en, text_id = _MESSAGES[rule]
        super().__init__(text_en.format(**values))
        self.rule = rule
        self.text_id = text_id.format(**values)


@dataclass(frozen=True, slots=True)
class Nip:
    nip: str  # the 18 digits, no spaces
    birth_date: date
    cpns_start: date  # TMT CPNS: always the first day of its month
    gender: Literal["L", "P"]  # laki-laki / perempuan
    sequence: int  # 1..999


def _digits(text: str) -> str:
    """The 18 digits of `text` with separating spaces removed, or InvalidNip("length")."""
    if not isinstance(text, str):
        raise InvalidNip("length", got=text)
    digits = text.strip().replace(" ", "")
    if not _NIP_DIGITS.fullmatch(digits):
        raise InvalidNip("length", got=text)
    return digits


def _age_on(born: date, day: date) -> int:
    # A 29 February birthday falls on 1 March in common years: (2, 1) < (2, 29) still counts
    # as before the birthday, (3, 1) as on or after it.
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def parse_nip(text: str, *, today: date | None = None) -> Nip:
    """Parse a PNS NIP written with or without spaces ("19850412 201001 1 003").

    Rules are checked in the order of the digits, so the error names the first broken one.
    `today` decides whether the CPNS start lies in the future (default: the system date).
    """
    digits = _digits(text)
    try:
        born = date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError as exc:
        raise InvalidNip("birth_date", digits=digits[0:8]) from exc
    if born.year < MIN_BIRTH_YEAR:
        raise InvalidNip("birth_year", year=born.year, min_year=MIN_BIRTH_YEAR)

    cpns_year, cpns_month = int(digits[8:12]), int(digits[12:14])
    if not 1 <= cpns_month <= 12:
        raise InvalidNip("cpns_month", month=digits[12:14])
    today = today if today is not None else date.today()
    if (cpns_year, cpns_month) > (today.year, today.month):
        raise InvalidNip("cpns_future", year=digits[8:12], month=digits[12:14],
                         today_year=f"{today.year:04d}", today_month=f"{today.month:02d}")
    # A start year before the birth year fails the age rule without building the date:
    # date() refuses year 0000, which the digits allow.
    if cpns_year < born.year:
        raise InvalidNip("age", age=cpns_year - born.year, year=digits[8:12],
                         month=digits[12:14], min_age=MIN_AGE_AT_CPNS)
    cpns_start = date(cpns_year, cpns_month, 1)
    age = _age_on(born, cpns_start)
    if age < MIN_AGE_AT_CPNS:
        raise InvalidNip("age", age=age, year=digits[8:12], month=digits[12:14],
                         min_age=MIN_AGE_AT_CPNS)

    gender = _GENDER_BY_DIGIT.get(digits[14])
    if gender is None:
        raise InvalidNip("gender", digit=digits[14])
    sequence = int(digits[15:18])
    if sequence == 0:
        raise InvalidNip("sequence")
    return Nip(nip=digits, birth_date=born, cpns_start=cpns_start, gender=gender,
               sequence=sequence)


def is_nip(text: str, *, today: date | None = None) -> bool:
    """Whether `text` is a valid PNS NIP (see parse_nip)."""
    try:
        parse_nip(text, today=today)
    except InvalidNip:
        return False
    return True


def format_nip(nip: Nip | str) -> str:
    """The written form with its four groups: "19850412 201001 1 003".

    A string is only grouped, not validated beyond "18 digits" (a signer's NIP on a printed
    recap is shown as given, whatever rule it may break); use parse_nip to validate.
    """
    digits = nip.nip if isinstance(nip, Nip) else _digits(nip)
    return f"{digits[0:8]} {digits[8:14]} {digits[14]} {digits[15:18]}"
