"""The control room's payroll round: on an interval, pull employees, units and leave from
SIMPEG (when configured), recompute the current month (and the previous one during the first
days of a month, while late leave for it still arrives) and push the recaps of months that
are over back.

Owns the schedule and what one round does, logging each outcome once (a SIMPEG outage is
logged when it starts and when it ends, not every round). It must not hold rules or SQL; the
clerk's own `kota attendance …` commands run the same steps by hand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import psycopg

from controlroom.attendance.payroll import Payroll, PayrollInputError, month_bounds
from controlroom.attendance.simpeg import SimpegError
from controlroom.attendance.sync import SimpegSync

log = logging.getLogger(__name__)

ACTOR = "payroll-job"


def months_to_recompute(today: date, previous_until_day: int) -> list[str]:
    """The current month, and the previous one while `today` is within its first days."""
    current = f"{today:%Y-%m}"
    if today.day > previous_until_day:
        return [current]
    previous = today.replace(day=1) - timedelta(days=1)
    return [f"{previous:%Y-%m}", current]


class RoundBusy(RuntimeError):
    """A payroll round is already running (the scheduled one, or one asked for by hand)."""


class PayrollJob:
    """One background thread; `run_once()` is the round, callable from tests and the CLI.
    Rounds never overlap: one asked for while another runs waits for it, or with
    ``wait=False`` is refused with RoundBusy."""

    def __init__(self, payroll: Payroll, sync: SimpegSync | None, *, interval_s: float,
                 previous_until_day: int = 10,
                 today: Callable[[], date] = date.today) -> None:
        self.payroll = payroll
        self.sync = sync
        self.interval_s = interval_s
        self.previous_until_day = previous_until_day
        self._today = today
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._simpeg_down = False
        self._round = threading.Lock()
        self.last: dict[str, Any] = {}

    @property
    def busy(self) -> bool:
        """A round is running now."""
        return self._round.locked()

    def run_once(self, *, wait: bool = True) -> dict[str, Any]:
        if not self._round.acquire(blocking=wait):
            raise RoundBusy("a payroll round is running now (the scheduled one or one asked "
                            "for by hand); its answer comes within a minute or two")
        try:
            return self._round_once()
        finally:
            self._round.release()

    def _round_once(self) -> dict[str, Any]:
        months = months_to_recompute(self._today(), self.previous_until_day)
        out: dict[str, Any] = {"months": months, "at": time.time()}
        if self.sync is not None:
            first, _ = month_bounds(months[0])
            _, last = month_bounds(months[-1])
            try:
                pulled = self.sync.pull(first, last, actor=ACTOR)
                out["pulled"] = pulled.summary()
                self._simpeg_back()
            except SimpegError as exc:
                self._simpeg_lost(exc)
                out["simpeg_error"] = str(exc)
        for month in months:
            first, last = month_bounds(month)
            report = self.payroll.recompute(first, last, actor=ACTOR,
                                            reason="scheduled payroll round")
            out[f"recomputed_{month}"] = {"employees": report.employees,
                                          "changed": report.changed, "new": report.new}
        if self.sync is not None and "simpeg_error" not in out:
            # Only a month that is over goes to payroll; the current one is recomputed above.
            for month in [m for m in months if month_bounds(m)[1] < self._today()]:
                try:
                    pushed = self.sync.push(month, actor=ACTOR)
                    out[f"pushed_{month}"] = pushed.summary()
                except SimpegError as exc:
                    self._simpeg_lost(exc)
                    out["simpeg_error"] = str(exc)
                    break
        self.last = out
        return out

    def _simpeg_lost(self, exc: Exception) -> None:
        if not self._simpeg_down:
            log.warning("SIMPEG sync failed: %s; recaps stay here and are sent when SIMPEG "
                        "answers again (check [controlroom.attendance.simpeg] and the network)",
                        exc)
        self._simpeg_down = True

    def _simpeg_back(self) -> None:
        if self._simpeg_down:
            log.info("SIMPEG answers again; sync resumed")
        self._simpeg_down = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="payroll-job", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except psycopg.Error as exc:
                log.warning("payroll round failed, the database did not answer (%s); retrying "
                            "in %.0f s", exc, self.interval_s)
            except PayrollInputError as exc:
                log.error("payroll round refused: %s; fix the rule file, roster or leave named "
                          "there (`kota attendance rules check`), retrying in %.0f s", exc,
                          self.interval_s)
            self._stop.wait(self.interval_s)

    def health(self) -> dict[str, Any]:
        return {"interval_s": self.interval_s, "simpeg": None if self.sync is None else
                ("down" if self._simpeg_down else "ok"), "last": self.last}
