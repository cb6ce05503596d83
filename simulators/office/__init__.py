"""Office staff arriving at and leaving their offices: punches on emulated attendance machines.

Owns the staff's day as data (when each person checks in and out, who is absent) and a thread
that makes those punches on ``firmware_sim.zk`` machines as the time comes, so that a demo or a
soak test sees punches trickle in as they do on a working morning. It must not talk the ZK
protocol (the machines do) nor know about the edge or the control room.

Time is compressed around ``start``: the morning's arrivals (07:30 ± a quarter of an hour, a
few late) fall within ``window_s`` real seconds of it, and, with ``departures``, the afternoon's
check-outs follow in a second window.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from firmware_sim.zk.machine import ZkMachine

log = logging.getLogger(__name__)

CHECK_IN, CHECK_OUT = 0, 1  # ZKTeco punch states
ABSENT_SHARE = 0.04  # leave, duty travel, sick
LATE_SHARE = 0.08  # arrive in the last tenth of the window (the TL brackets of the rules)
VERIFY_FINGER, VERIFY_FACE = 1, 15


@dataclass(frozen=True, order=True)
class PlannedPunch:
    at_s: float  # seconds after ``start``
    serial: str
    user_id: str
    state: int
    verify: int


def plan_day(machines: Sequence[ZkMachine], *, window_s: float, departures: bool = False,
             seed: int = 0) -> list[PlannedPunch]:
    """Every enrolled user of every machine: a check-in within ``window_s`` (bell-shaped around
    40 % of it, a few late), and with ``departures`` a check-out within the next window."""
    rng = random.Random(seed)
    out: list[PlannedPunch] = []
    for m in machines:
        verify = VERIFY_FACE if m.firmware.user_format == 72 else VERIFY_FINGER
        for user in m.users:
            # The same draws for everyone, so a plan with departures has the same arrivals.
            absent, late, early_s, late_s, leave_s = (rng.random(), rng.random(),
                                                      rng.gauss(0.4, 0.15), rng.uniform(0.9, 1.0),
                                                      rng.gauss(0.5, 0.2))
            if absent < ABSENT_SHARE:
                continue
            arrive = late_s if late < LATE_SHARE else min(max(early_s, 0.0), 0.9)
            out.append(PlannedPunch(arrive * window_s, m.serial, user.user_id, CHECK_IN, verify))
            if departures:
                leave = (1.0 + min(max(leave_s, 0.0), 1.0)) * window_s
                out.append(PlannedPunch(leave, m.serial, user.user_id, CHECK_OUT, verify))
    return sorted(out)


class OfficeStaff:
    """Makes the planned punches on their machines as real time passes (its own thread).

    A punch the machine refuses (rebooting, disabled while it is being cleared, full) is tried
    again a few seconds later, as a person at the machine would; ``made`` holds what was stored.
    """

    def __init__(self, machines: Sequence[ZkMachine], plan: Sequence[PlannedPunch], *,
                 clock: Callable[[], float] = time.monotonic, retry_s: float = 3.0) -> None:
        self._machines = {m.serial: m for m in machines}
        self._queue = list(plan)
        self._clock = clock
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.made = 0
        self.retried = 0
        self.start_at: float | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self.start_at = self._clock()
        self._thread = threading.Thread(target=self._run, name="office-staff", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def step(self, now_s: float) -> int:
        """Make every punch due by ``now_s`` (seconds after start); returns how many stored."""
        made = 0
        while self._queue and self._queue[0].at_s <= now_s:
            p = self._queue.pop(0)
            record = self._machines[p.serial].punch(p.user_id, status=p.verify, punch=p.state)
            if record is None:
                self.retried += 1
                self._queue.append(PlannedPunch(now_s + self._retry_s, p.serial, p.user_id,
                                                p.state, p.verify))
                self._queue.sort()
                continue
            made += 1
        self.made += made
        return made

    def _run(self) -> None:
        assert self.start_at is not None
        while not self._stop.wait(0.2):
            self.step(self._clock() - self.start_at)
            if not self._queue:
                log.info("office staff: every planned punch made (%d)", self.made)
                return
