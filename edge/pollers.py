"""One poller per device, in the manner of a Home Assistant data-update coordinator.

A poller fetches a typed snapshot on an interval in its own thread; consumers read only the
snapshot and the availability it implies. A failure is logged once (what failed and what to
do), the recovery once — never once per poll. It knows nothing of MQTT or of what the snapshot
holds; it catches only the device's own error tree, so a programming error still surfaces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from edge.contract import utc_now

log = logging.getLogger(__name__)

Snapshot = TypeVar("Snapshot")


class Poller(Generic[Snapshot]):
    """Polls ``fetch`` every ``interval_s``; after each poll, calls every listener with itself."""

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Snapshot],
        *,
        interval_s: float,
        errors: tuple[type[Exception], ...],
        hint: str = "check the device's power, cabling and address",
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.name = name
        self._fetch = fetch
        self._interval_s = interval_s
        self._errors = errors
        self._hint = hint
        self._listeners: list[Callable[[Poller[Snapshot]], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._available = False
        self._last_ok_at: datetime | None = None
        self._last_error: str | None = None
        self._first_error: str | None = None  # the error that began the current failure streak
        self._failed_since: datetime | None = None
        self._failures = 0
        self._polls = 0

    # ------------------------------------------------------------------ what consumers read

    @property
    def snapshot(self) -> Snapshot | None:
        """The last good snapshot (kept while the device is unavailable; check ``available``)."""
        with self._state_lock:
            return self._snapshot

    @property
    def available(self) -> bool:
        with self._state_lock:
            return self._available

    @property
    def last_ok_at(self) -> datetime | None:
        with self._state_lock:
            return self._last_ok_at

    @property
    def last_error(self) -> str | None:
        with self._state_lock:
            return self._last_error

    @property
    def first_error(self) -> str | None:
        """The error that began the current run of failures (often the cause; later errors may
        only say that a retry is waiting). None while the device answers."""
        with self._state_lock:
            return self._first_error if self._failed_since is not None else None

    @property
    def consecutive_failures(self) -> int:
        """Failed polls since the last good one (0 while the device answers)."""
        with self._state_lock:
            return self._failures

    @property
    def failing_since(self) -> datetime | None:
        """When the current run of failures began (None while the device answers)."""
        with self._state_lock:
            return self._failed_since

    @property
    def polls(self) -> int:
        """Polls done so far, good or bad (tells a listener whether it has seen this one)."""
        with self._state_lock:
            return self._polls

    def add_listener(self, listener: Callable[[Poller[Snapshot]], None]) -> None:
        """Called in the poller's thread after every poll; keep it short (no network waits)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ running

    def poll_once(self) -> None:
        """One fetch, state update, logging and listener calls (the thread calls this)."""
        try:
            snapshot = self._fetch()
        except self._errors as exc:
            self._failed(exc)
        else:
            self._succeeded(snapshot)
        for listener in list(self._listeners):
            listener(self)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"poller {self.name} already started")
        self._thread = threading.Thread(target=self._run, name=f"poll-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            self.poll_once()
            # Drift-free schedule; after a slow fetch skip the missed slots instead of bursting.
            next_due += self._interval_s
            now = time.monotonic()
            if next_due < now:
                next_due = now + self._interval_s
            self._stop.wait(next_due - now)

    def _failed(self, exc: Exception) -> None:
        with self._state_lock:
            first = self._failed_since is None  # a success resets it
            self._polls += 1
            self._failures += 1
            self._available = False
            self._last_error = f"{type(exc).__name__}: {exc}"
            if first:
                self._failed_since = utc_now()
                self._first_error = self._last_error
        if first:
            log.warning("device %s: poll failed (%s); marked unavailable, retrying every %g s — %s",
                        self.name, self._last_error, self._interval_s, self._hint)
        else:
            log.debug("device %s: still failing: %s", self.name, exc)

    def _succeeded(self, snapshot: Snapshot) -> None:
        now = utc_now()
        with self._state_lock:
            recovered = self._failed_since is not None
            failures, since = self._failures, self._failed_since
            self._snapshot = snapshot
            self._available = True
            self._last_ok_at = now
            self._polls += 1
            self._failures = 0
            self._failed_since = None
        if recovered and since is not None:
            log.info("device %s: answering again after %d failed polls (%.0f s)",
                     self.name, failures, (now - since).total_seconds())
