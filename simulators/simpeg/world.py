"""What the emulated SIMPEG knows: organisation units, employees, leave, and the recaps it has
received, plus the rule a NIP must follow.

Owns the emulator's state as plain dataclasses the tests and the demo fill and inspect. It must
not speak HTTP (server.py does) nor invent data (sample.py does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

# Leave and permit codes SIMPEG files (cuti per PP 11/2017 as amended by PP 17/2020, and the
# region's permits); the recap's `absen` keys use the same codes plus TK.
LEAVE_KINDS: dict[str, str] = {
    "CT": "cuti tahunan",
    "CS": "cuti sakit",
    "CM": "cuti melahirkan",
    "CAP": "cuti karena alasan penting",
    "CB": "cuti bersama",
    "CBS": "cuti besar",
    "CLTN": "cuti di luar tanggungan negara",
    "DL": "dinas luar",
    "TB": "tugas belajar",
    "IT": "izin terlambat",
    "IPC": "izin pulang cepat",
}
APPROVED = "disetujui"
CANCELLED = "dibatalkan"
LEAVE_STATUSES = (APPROVED, CANCELLED)
SCHEDULE_GROUPS = ("reguler", "shift")

NIP_RE = re.compile(r"^\d{18}$")
NIP_BIRTH_YEARS = (1965, 2000)  # the range the sample world draws from
CPNS_MIN_AGE_Y = 18


def nip_problem(nip: str, *, today: date | None = None) -> str | None:
    """Why ``nip`` is not a valid NIP, or None. The 18 digits are the birth date (YYYYMMDD),
    the CPNS start (YYYYMM, at age 18 or later and not in the future), the gender (1 male,
    2 female) and a sequence number 001..999 (PP 11/2017 and BKN's NIP rule)."""
    if not isinstance(nip, str) or not NIP_RE.match(nip):
        return "a NIP is 18 digits"
    try:
        born = date(int(nip[0:4]), int(nip[4:6]), int(nip[6:8]))
    except ValueError:
        return f"digits 1-8 ({nip[:8]}) are no birth date"
    if not NIP_BIRTH_YEARS[0] <= born.year <= NIP_BIRTH_YEARS[1]:
        return f"birth year {born.year} outside {NIP_BIRTH_YEARS[0]}-{NIP_BIRTH_YEARS[1]}"
    start_y, start_m = int(nip[8:12]), int(nip[12:14])
    if not 1 <= start_m <= 12:
        return f"digits 9-14 ({nip[8:14]}) are no CPNS start month"
    # TMT CPNS is the first day of its month; the holder must be 18 on that day (UU 5/2014
    # art. 23).
    if (start_y, start_m, 1) < (born.year + CPNS_MIN_AGE_Y, born.month, born.day):
        return f"CPNS start {start_y}-{start_m:02d} before age {CPNS_MIN_AGE_Y}"
    today = today or date.today()
    if (start_y, start_m) > (today.year, today.month):
        return f"CPNS start {start_y}-{start_m:02d} is in the future"
    if nip[14] not in "12":
        return f"gender digit {nip[14]} is neither 1 nor 2"
    if nip[15:] == "000":
        return "sequence number 000"
    return None


@dataclass(slots=True)
class Unit:
    """An organisation unit (unor); an SKPD is a unit whose skpd_id is its own id."""

    id: str
    name: str
    parent_id: str | None
    skpd_id: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "nama": self.name, "induk_id": self.parent_id,
                "skpd_id": self.skpd_id}


@dataclass(slots=True)
class MachineUserId:
    """A user id on an attendance machine mapped to a NIP; sn "" means any machine (newer
    machines enrol staff by NIP), a serial means that machine only (old machines hold short
    numeric ids)."""

    sn: str
    user_id: str


@dataclass(slots=True)
class Employee:
    nip: str
    name: str
    unit_id: str
    position: str
    schedule_group: str = "reguler"
    machine_ids: list[MachineUserId] = field(default_factory=list)
    active: bool = True
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def wire(self) -> dict[str, Any]:
        return {"nip": self.nip, "nama": self.name, "unor_id": self.unit_id,
                "jabatan": self.position, "kelompok_jadwal": self.schedule_group,
                "id_mesin": [{"sn": m.sn, "user_id": m.user_id} for m in self.machine_ids],
                "aktif": self.active, "updated_at": self.updated_at.isoformat()}


@dataclass(slots=True)
class Leave:
    id: str
    nip: str
    kind: str  # a LEAVE_KINDS code
    first_day: date
    last_day: date  # inclusive
    reference: str  # nomor surat
    status: str = APPROVED
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def overlaps(self, first_day: date, last_day: date) -> bool:
        return self.first_day <= last_day and self.last_day >= first_day

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "nip": self.nip, "jenis": self.kind,
                "mulai": self.first_day.isoformat(), "selesai": self.last_day.isoformat(),
                "nomor_surat": self.reference, "status": self.status,
                "updated_at": self.updated_at.isoformat()}


@dataclass(slots=True)
class StoredRecap:
    """The one recap SIMPEG keeps per (periode, nip): the latest content and its revision."""

    period: str
    nip: str
    revision: int
    content_hash: str
    record: dict[str, Any]
    received_at: datetime


@dataclass(slots=True)
class StoredResponse:
    """An answered upload, replayed for the same Idempotency-Key."""

    body_hash: str
    status: int
    body: dict[str, Any]
    stored_at_s: float  # monotonic


@dataclass(slots=True)
class SimpegWorld:
    """The emulator's whole state. Tests may read and change it while the server runs, under
    ``SimpegServer.lock``."""

    units: dict[str, Unit] = field(default_factory=dict)
    employees: dict[str, Employee] = field(default_factory=dict)
    leave: dict[str, Leave] = field(default_factory=dict)
    recaps: dict[tuple[str, str], StoredRecap] = field(default_factory=dict)
    idempotency: dict[str, StoredResponse] = field(default_factory=dict)
    today: date | None = None  # the server's date for "period in the future"; None: real date

    def add_unit(self, unit: Unit) -> Unit:
        self.units[unit.id] = unit
        return unit

    def add_employee(self, employee: Employee) -> Employee:
        self.employees[employee.nip] = employee
        return employee

    def add_leave(self, leave: Leave) -> Leave:
        self.leave[leave.id] = leave
        return leave

    def recap(self, period: str, nip: str) -> StoredRecap | None:
        return self.recaps.get((period, nip))

    def current_date(self) -> date:
        return self.today or date.today()
