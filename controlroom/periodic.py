"""A check run every few seconds on its own thread: the control room's alarm rounds.

Owns the thread, the interval and the logging of a failing streak (once when it starts, once
when it ends); what is checked and what counts as a failure belong to the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``check`` every ``interval_s`` until stopped; an exception of ``errors`` is logged
    (``what`` names the check) and the next round tries again."""

    def __init__(self, name: str, what: str, check: Callable[[], object], interval_s: float,
                 errors: tuple[type[Exception], ...]) -> None:
        self._name = name
        self._what = what
        self._check = check
        self._interval_s = interval_s
        self._errors = errors
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval_s):
            try:
                self._check()
            except self._errors as exc:
                if not failing:
                    log.error("%s failed: %s; retrying every %.0f s", self._what, exc,
                              self._interval_s)
                failing = True
                continue
            if failing:
                log.info("%s works again", self._what)
                failing = False
