"""The attendance side of the demo and of `kota sim city --offices N`: emulated ZKTeco machines in
a few offices, their staff checking in over the first minutes, and the office edge agent that
keeps them in sync (a `kota edge run` child, configured only through its settings file).

Owns the offices' choices (names, zones, machine profiles, staff counts) and the machines'
lifetime in this process; `kota.city` starts and stops the edge child with the rest of the stack.
It must not contain attendance logic: the emulators, the staff simulator and the edge agent are
the production and simulator code, unmodified.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from firmware_sim.zk.machine import ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine, staff
from firmware_sim.zk.server import ZkEmulatorThread
from simulators.office import OfficeStaff, plan_day
from simulators.simpeg import Employee, Leave, MachineUserId, SimpegWorld, Unit

log = logging.getLogger("kota.office")

# (office, machine profile): a city hall, the civil-service agency and a health office.
OFFICES = (("Sekretariat Daerah", "colour"), ("BKPSDM", "newer"), ("Dinas Kesehatan", "older"))
# Their SKPD codes in SIMPEG (the emulated one of the demo).
SKPD_CODES = {"Sekretariat Daerah": "SETDA", "BKPSDM": "BKPSDM", "Dinas Kesehatan": "DINKES"}
STAFF_PER_MACHINE = 60
HISTORY_PUNCHES = 3000  # the previous weeks, still on the machines
ARRIVAL_WINDOW_S = 1200.0  # the morning's check-ins spread over the first 20 minutes


@dataclass(frozen=True)
class OfficeMachine:
    serial: str
    office: str
    host: str
    port: int
    profile: str


class Offices:
    """``count`` emulated attendance machines with staff, served on loopback from this process."""

    def __init__(self, count: int, *, seed: int = 1, utc_offset_h: float = 7.0,
                 window_s: float = ARRIVAL_WINDOW_S) -> None:
        if count < 1:
            raise ValueError("offices: at least one machine")
        self.machines: list[ZkMachine] = []
        self._offices: list[str] = []
        for k in range(count):
            office, profile = OFFICES[k % len(OFFICES)]
            machine = ZkMachine(MachineConfig(serial=f"KPDEMO{k + 1:04d}", profile=profile,
                                              utc_offset_h=utc_offset_h))
            seed_machine(machine, users=STAFF_PER_MACHINE, punches=HISTORY_PUNCHES,
                         seed=seed + k, until=date.today())
            self.machines.append(machine)
            self._offices.append(office)
        self.staff = OfficeStaff(self.machines, plan_day(self.machines, window_s=window_s,
                                                         seed=seed))
        self._emulators = ZkEmulatorThread(self.machines)
        self.endpoints: list[OfficeMachine] = []

    def start(self) -> None:
        self._emulators.start()
        self.endpoints = [OfficeMachine(m.serial, office, "127.0.0.1",
                                        self._emulators.ports[m.serial], m.config.profile)
                          for m, office in zip(self.machines, self._offices, strict=True)]
        self.staff.start()
        log.info("%d attendance machine(s) on loopback, %d staff checking in over %.0f min",
                 len(self.machines), self.staff.pending, ARRIVAL_WINDOW_S / 60)

    def stop(self) -> None:
        self.staff.stop()
        self._emulators.stop()

    def edge_settings(self, edge_id: str, mqtt: dict[str, Any], state_dir: Path, *,
                      tz: str) -> dict[str, Any]:
        """The office edge agent's `[edge]` section for these machines."""
        return {
            "edge_id": edge_id, "mqtt": mqtt, "state_dir": state_dir,
            "command_issuers": ["controlroom", "bkpsdm*"],
            "attendance": [{"device_sn": e.serial, "host": e.host, "port": e.port, "tz": tz,
                            "office": e.office, "pull_interval_s": 30.0, "timeout_s": 10.0}
                           for e in self.endpoints],
        }


def simpeg_world(count: int, *, seed: int = 1, today: date | None = None) -> SimpegWorld:
    """The demo region's SIMPEG: one SKPD per office, and every person enrolled on the offices'
    machines (``Offices(count, seed=seed)``) as an employee with a valid NIP, mapped to the
    short numeric id that machine knows them by; a few of them on leave this month."""
    today = today or date.today()
    rng = random.Random(seed)
    world = SimpegWorld(today=today)
    taken: set[str] = set()
    for k in range(count):
        office = OFFICES[k % len(OFFICES)][0]
        code = SKPD_CODES[office]
        world.units.setdefault(code, Unit(code, office, None, code))
        serial = f"KPDEMO{k + 1:04d}"
        for user in staff(STAFF_PER_MACHINE, seed=seed + k):
            female = rng.random() < 0.5
            while True:
                birth = date(1968, 1, 1) + timedelta(days=rng.randrange(27 * 365))
                start = min(birth.year + rng.randrange(22, 32), today.year - 1)
                nip = (f"{birth:%Y%m%d}{start:04d}{rng.randrange(1, 13):02d}"
                       f"{2 if female else 1}{rng.randrange(1, 1000):03d}")
                if nip not in taken:
                    break
            taken.add(nip)
            world.employees[nip] = Employee(nip, user.name, code, "Pelaksana",
                                            machine_ids=[MachineUserId(serial, user.user_id)])
    # Leave this month for one in twenty: annual, sick or official travel, two days each.
    first = today.replace(day=1)
    for n, nip in enumerate(sorted(world.employees)[::20]):
        start = first + timedelta(days=rng.randrange(0, 20))
        world.leave[f"DEMO-{n + 1}"] = Leave(f"DEMO-{n + 1}", nip, rng.choice(("CT", "CS", "DL")),
                                             start, start + timedelta(days=1),
                                             f"800/{n + 1}/BKPSDM/{today.year}")
    return world
