"""Sample staff and historical punches for an emulated machine, reproducible from a seed.

It owns only the making of plausible data: Indonesian civil servants' names and the punches
of past work days (Monday–Friday; in around 07:30, out around 16:00, Friday out around 16:30,
a few days absent, the odd double punch). It must not talk to sockets or encode bytes; it
fills a ``ZkMachine`` through its public methods.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from devices.zk.records import AttendanceRecord, User
from firmware_sim.zk.machine import ZkMachine

FIRST_NAMES = (
    "Budi", "Siti", "Agus", "Dewi", "Sri", "Ahmad", "Rina", "Eko", "Nur", "Dian", "Hendra",
    "Wahyu", "Fitri", "Joko", "Yuni", "Rudi", "Lestari", "Bambang", "Ratna", "Andi", "Putri",
    "Hadi", "Indah", "Teguh", "Ayu", "Slamet", "Retno", "Made", "Ketut", "Wayan", "Yusuf",
    "Nurul", "Rahmat", "Sari", "Arif", "Endang", "Dedi", "Wulan", "Ikhsan", "Maria",
)
LAST_NAMES = (
    "Santoso", "Rahayu", "Wijaya", "Lestari", "Wahyuni", "Hidayat", "Kurniawati", "Saputra",
    "Susanti", "Nugroho", "Setiawan", "Pratama", "Handayani", "Siregar", "Nasution", "Harahap",
    "Simanjuntak", "Sitompul", "Purba", "Tanjung", "Lubis", "Hasibuan", "Utami", "Permana",
    "Gunawan", "Kusuma", "Wibowo", "Sulistyo", "Hakim", "Firmansyah", "Syahputra", "Rahman",
)
FIRST_USER_ID = 1001
CHECK_IN, CHECK_OUT = 0, 1
FINGERPRINT = 1


@dataclass(frozen=True, slots=True)
class SeedResult:
    users: list[User]
    punches: list[AttendanceRecord]


def staff(count: int, *, seed: int = 0) -> list[User]:
    """``count`` users: uids 1…, numeric employee numbers from 1001, Indonesian names."""
    rng = random.Random(seed)
    return [User(uid=i + 1, user_id=str(FIRST_USER_ID + i),
                 name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}")
            for i in range(count)]


def _work_days_back(until: date):  # newest first, Monday–Friday
    day = until
    while True:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            yield day


def history(users: list[User], count: int, *, until: date, seed: int = 0) -> list[AttendanceRecord]:
    """``count`` punches of ``users`` on the work days before ``until``, oldest first."""
    if not users:
        return []
    rng = random.Random(seed)
    days: list[list[AttendanceRecord]] = []
    total = 0
    for day in _work_days_back(until):
        if total >= count:
            break
        out_at = time(16, 30) if day.weekday() == 4 else time(16, 0)
        punches: list[AttendanceRecord] = []
        for user in users:
            if rng.random() < 0.04:  # absent: leave, duty travel, sick
                continue
            arrive = datetime.combine(day, time(7, 30)) + timedelta(seconds=rng.gauss(-300, 600))
            leave = datetime.combine(day, out_at) + timedelta(seconds=abs(rng.gauss(600, 900)))
            punches.append(AttendanceRecord(user.user_id, arrive.replace(microsecond=0),
                                            FINGERPRINT, CHECK_IN, user.uid))
            if rng.random() < 0.02:  # pressed twice
                punches.append(AttendanceRecord(user.user_id,
                                                (arrive + timedelta(seconds=3)).replace(
                                                    microsecond=0), FINGERPRINT, CHECK_IN,
                                                user.uid))
            punches.append(AttendanceRecord(user.user_id, leave.replace(microsecond=0),
                                            FINGERPRINT, CHECK_OUT, user.uid))
        punches.sort(key=lambda r: r.timestamp)
        days.append(punches)
        total += len(punches)
    flat = [p for punches in reversed(days) for p in punches]
    return flat[len(flat) - count:] if count else []


def seed_machine(machine: ZkMachine, *, users: int, punches: int, seed: int = 0,
                 until: date | None = None) -> SeedResult:
    """Enrol ``users`` staff and load ``punches`` historical punches (before ``until``,
    default: the machine's today). Same arguments, same data."""
    people = staff(users, seed=seed)
    for user in people:
        machine.add_user(user)
    stored = machine.users
    records = history(stored, punches, until=until or machine.clock.now().date(), seed=seed)
    machine.load_attendance(records)
    return SeedResult(stored, records)
