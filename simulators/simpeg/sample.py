"""A sample regional government for the SIMPEG emulator: SKPDs and their units, civil servants
with valid NIPs and Indonesian names, machine user ids, and some leave.

Owns only the generator; the same seed gives the same world. It must not speak HTTP.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from simulators.simpeg.world import (
    APPROVED,
    CANCELLED,
    CPNS_MIN_AGE_Y,
    NIP_BIRTH_YEARS,
    Employee,
    Leave,
    MachineUserId,
    SimpegWorld,
    Unit,
)

WIB = timedelta(hours=7)


@dataclass(frozen=True, slots=True)
class SkpdTemplate:
    code: str
    name: str
    units: tuple[str, ...]  # sub-units below the SKPD itself
    shift_units: tuple[str, ...] = ()  # sub-units whose staff mostly work shifts
    positions: tuple[str, ...] = ()


# In the order a sample world takes them: the first ones are the ones the issue names.
SKPDS: tuple[SkpdTemplate, ...] = (
    SkpdTemplate("dishub", "Dinas Perhubungan",
                 ("Sekretariat", "Bidang Lalu Lintas", "Bidang Angkutan", "UPT Pengujian Kendaraan",
                  "UPT Pengelolaan Ruang Kontrol ATCS"),
                 ("Bidang Lalu Lintas", "UPT Pengelolaan Ruang Kontrol ATCS"),
                 ("Petugas Pengatur Lalu Lintas", "Penguji Kendaraan Bermotor Terampil",
                  "Operator Ruang Kontrol ATCS", "Analis Lalu Lintas")),
    SkpdTemplate("bkpsdm", "Badan Kepegawaian dan Pengembangan Sumber Daya Manusia",
                 ("Sekretariat", "Bidang Mutasi dan Promosi", "Bidang Pengembangan Kompetensi",
                  "Bidang Penilaian Kinerja dan Penghargaan"), (),
                 ("Analis Sumber Daya Manusia Aparatur Ahli Pertama", "Pranata Komputer Ahli Muda",
                  "Pengelola Data Kepegawaian")),
    SkpdTemplate("rsud", "Rumah Sakit Umum Daerah",
                 ("Bagian Tata Usaha", "Instalasi Gawat Darurat", "Instalasi Rawat Inap",
                  "Instalasi Farmasi", "Instalasi Laboratorium"),
                 ("Instalasi Gawat Darurat", "Instalasi Rawat Inap", "Instalasi Farmasi",
                  "Instalasi Laboratorium"),
                 ("Perawat Ahli Pertama", "Perawat Terampil", "Dokter Ahli Muda", "Bidan Terampil",
                  "Apoteker Ahli Pertama", "Pranata Laboratorium Kesehatan")),
    SkpdTemplate("diskominfo", "Dinas Komunikasi dan Informatika",
                 ("Sekretariat", "Bidang Aplikasi Informatika", "Bidang Persandian dan Statistik"),
                 (), ("Pranata Komputer Ahli Pertama", "Pranata Hubungan Masyarakat",
                      "Sandiman Ahli Pertama", "Statistisi Ahli Muda")),
    SkpdTemplate("setda", "Sekretariat Daerah",
                 ("Bagian Umum", "Bagian Hukum", "Bagian Organisasi", "Bagian Perekonomian"), (),
                 ("Analis Hukum", "Perancang Peraturan Perundang-undangan", "Analis Kebijakan")),
    SkpdTemplate("dinkes", "Dinas Kesehatan",
                 ("Sekretariat", "Bidang Pelayanan Kesehatan", "Bidang Pencegahan Penyakit",
                  "UPT Puskesmas Kota"), (),
                 ("Epidemiolog Kesehatan", "Sanitarian Terampil", "Nutrisionis Ahli Pertama")),
    SkpdTemplate("disdik", "Dinas Pendidikan",
                 ("Sekretariat", "Bidang Pendidikan Dasar", "Bidang Pendidik dan Tenaga "
                  "Kependidikan"), (), ("Pengawas Sekolah", "Pamong Belajar", "Analis Kurikulum")),
    SkpdTemplate("pupr", "Dinas Pekerjaan Umum dan Penataan Ruang",
                 ("Sekretariat", "Bidang Bina Marga", "Bidang Sumber Daya Air",
                  "Bidang Penataan Ruang"), (),
                 ("Teknik Jalan dan Jembatan Ahli Pertama", "Penata Ruang Ahli Muda",
                  "Teknik Pengairan Terampil")),
    SkpdTemplate("satpolpp", "Satuan Polisi Pamong Praja",
                 ("Sekretariat", "Bidang Penegakan Peraturan Daerah", "Bidang Ketertiban Umum"),
                 (), ("Polisi Pamong Praja Terampil", "Polisi Pamong Praja Ahli Pertama")),
    SkpdTemplate("disdukcapil", "Dinas Kependudukan dan Pencatatan Sipil",
                 ("Sekretariat", "Bidang Pelayanan Pendaftaran Penduduk",
                  "Bidang Pencatatan Sipil"), (),
                 ("Administrator Database Kependudukan", "Pengadministrasi Kependudukan")),
    SkpdTemplate("bappeda", "Badan Perencanaan Pembangunan Daerah",
                 ("Sekretariat", "Bidang Perencanaan Infrastruktur", "Bidang Perencanaan Sosial "
                  "Budaya"), (), ("Perencana Ahli Pertama", "Perencana Ahli Muda")),
    SkpdTemplate("dlh", "Dinas Lingkungan Hidup",
                 ("Sekretariat", "Bidang Persampahan", "Bidang Pengendalian Pencemaran"), (),
                 ("Pengendali Dampak Lingkungan", "Pengawas Lingkungan Hidup")),
)
COMMON_POSITIONS = ("Pengadministrasi Perkantoran", "Penata Layanan Operasional",
                    "Pengelola Keuangan", "Arsiparis Terampil", "Analis Perencanaan")

MALE_FIRST = ("Agus", "Budi", "Dedi", "Eko", "Fajar", "Hendra", "Iwan", "Joko", "Rahmat",
              "Slamet", "Teguh", "Wahyu", "Yusuf", "Arif", "Bambang", "Dimas", "Gilang",
              "Hadi", "Made", "Putu", "Nyoman", "Rizky", "Andi", "Muhammad", "Ahmad", "Taufik")
FEMALE_FIRST = ("Siti", "Sri", "Dewi", "Fitri", "Rina", "Wulan", "Ayu", "Nur", "Ratna", "Yuni",
                "Indah", "Lestari", "Kartika", "Putri", "Rahmawati", "Desi", "Ni Luh", "Intan",
                "Nurul", "Eka", "Anisa", "Maya", "Tri", "Endang")
FAMILY = ("Santoso", "Wijaya", "Saputra", "Hidayat", "Pratama", "Nugroho", "Kurniawan",
          "Setiawan", "Siregar", "Nasution", "Harahap", "Simanjuntak", "Lubis", "Wibowo",
          "Susanto", "Rahman", "Hasibuan", "Sitompul", "Purnomo", "Gunawan", "Permana",
          "Suryadi", "Hakim", "Maharani", "Anggraini", "Handayani", "Wulandari", "Utami")
DEGREES = ("S.Kom.", "S.E.", "S.H.", "S.T.", "S.Sos.", "S.Kep., Ns.", "A.Md.", "M.Si.",
           "S.I.P.", "S.Pd.", "M.M.")

# Share of each leave kind among the sample's leave records (rough shape of a month's filings).
LEAVE_MIX: tuple[tuple[str, float, tuple[int, int]], ...] = (  # kind, weight, days range
    ("CT", 0.35, (1, 5)), ("CS", 0.15, (1, 3)), ("DL", 0.2, (1, 3)), ("IT", 0.1, (1, 1)),
    ("IPC", 0.08, (1, 1)), ("CAP", 0.05, (1, 4)), ("TB", 0.02, (30, 90)),
    ("CBS", 0.02, (30, 60)), ("CM", 0.03, (90, 90)),
)


def _name(rng: random.Random, female: bool) -> str:
    first = rng.choice(FEMALE_FIRST if female else MALE_FIRST)
    name = f"{first} {rng.choice(FAMILY)}"
    if rng.random() < 0.3:
        name = f"{first} {rng.choice(FAMILY)} {rng.choice(FAMILY)}"
    if rng.random() < 0.6:
        name = f"{name}, {rng.choice(DEGREES)}"
    return name


def _nip(rng: random.Random, female: bool, today: date, taken: set[str]) -> str:
    while True:
        birth_year = rng.randint(NIP_BIRTH_YEARS[0], min(NIP_BIRTH_YEARS[1],
                                                          today.year - CPNS_MIN_AGE_Y - 1))
        born = date(birth_year, 1, 1) + timedelta(days=rng.randrange(365))
        # the first month whose first day finds the holder 18
        adult = ((born.year + CPNS_MIN_AGE_Y, born.month) if born.day == 1 else
                 (born.year + CPNS_MIN_AGE_Y + born.month // 12, born.month % 12 + 1))
        first = max((born.year + CPNS_MIN_AGE_Y + rng.randint(0, 12), rng.randint(1, 12)),
                    adult)
        last = (today.year, today.month)
        start_y, start_m = min(first, last)
        nip = (f"{born:%Y%m%d}{start_y:04d}{start_m:02d}{2 if female else 1}"
               f"{rng.randint(1, 999):03d}")
        if nip not in taken:
            taken.add(nip)
            return nip


def _serial(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(4)) + \
        f"{rng.randrange(10**9):09d}"


def sample_world(employees: int = 200, seed: int = 0, skpds: int = 4, *,
                 today: date | None = None, leave_share: float = 0.25) -> SimpegWorld:
    """A reproducible city government: ``skpds`` SKPDs (at most 12, in SKPDS order: Dinas
    Perhubungan, BKPSDM, RSUD, Diskominfo, …), each with its sub-units; ``employees`` civil
    servants spread over them (valid NIPs, Indonesian names, positions, "shift" for most of the
    RSUD and Dishub operational units, "reguler" for everyone else, about 2 % inactive); each
    SKPD has one attendance machine that is either old (short numeric user ids bound to its
    serial) or newer (staff enrolled by NIP on any machine); about ``leave_share`` of the staff
    have a leave or permit in the two months around ``today``, a few of them cancelled."""
    if not 1 <= skpds <= len(SKPDS):
        raise ValueError(f"skpds must be 1..{len(SKPDS)}, not {skpds}")
    if employees < 0:
        raise ValueError("employees must not be negative")
    rng = random.Random(seed)
    today = today or date.today()
    world = SimpegWorld()
    units_of: list[tuple[SkpdTemplate, list[Unit], str | None]] = []
    for template in SKPDS[:skpds]:
        skpd = world.add_unit(Unit(template.code, template.name, None, template.code))
        subs = [world.add_unit(Unit(f"{template.code}.{k + 1:02d}", name, skpd.id, skpd.id))
                for k, name in enumerate(template.units)]
        old_machine = _serial(rng) if rng.random() < 0.5 else None
        units_of.append((template, [skpd, *subs], old_machine))
    taken: set[str] = set()
    short_ids: dict[str, int] = {}
    stamp_base = datetime.combine(today, time(8), UTC) - WIB
    for k in range(employees):
        template, units, old_machine = units_of[k % len(units_of)]
        # a quarter of each SKPD works in the SKPD's own office, the rest in its sub-units
        unit = units[0] if rng.random() < 0.25 or len(units) == 1 else rng.choice(units[1:])
        female = rng.random() < 0.5
        nip = _nip(rng, female, today, taken)
        shift = unit.name in template.shift_units and rng.random() < 0.85
        position = rng.choice(template.positions + COMMON_POSITIONS
                              if not shift else template.positions)
        if old_machine is not None:
            short_ids[old_machine] = short_ids.get(old_machine, 0) + 1
            machine_ids = [MachineUserId(old_machine, str(short_ids[old_machine]))]
            if rng.random() < 0.1:  # also enrolled by NIP (moved from a newer office)
                machine_ids.append(MachineUserId("", nip))
        else:
            machine_ids = [MachineUserId("", nip)]
        updated = stamp_base - timedelta(days=rng.randrange(120), minutes=rng.randrange(600))
        world.add_employee(Employee(
            nip, _name(rng, female), unit.id, position, "shift" if shift else "reguler",
            machine_ids, active=rng.random() >= 0.02, updated_at=updated))
    kinds = [k for k, _, _ in LEAVE_MIX]
    weights = [w for _, w, _ in LEAVE_MIX]
    days_of = {k: d for k, _, d in LEAVE_MIX}
    n = 0
    for employee in world.employees.values():
        if rng.random() >= leave_share:
            continue
        kind = rng.choices(kinds, weights)[0]
        if kind == "CM" and not employee.nip[14] == "2":
            kind = "CT"
        first = today - timedelta(days=rng.randint(-20, 45))
        length = rng.randint(*days_of[kind])
        n += 1
        skpd = world.units[employee.unit_id].skpd_id.upper()
        world.add_leave(Leave(
            f"C{today.year}{n:05d}", employee.nip, kind, first,
            first + timedelta(days=length - 1), f"851/{n:04d}/{skpd}/{first.year}",
            CANCELLED if rng.random() < 0.05 else APPROVED,
            updated_at=datetime.combine(first, time(9), UTC) - timedelta(days=rng.randint(0, 7))
            - WIB))
    return world
