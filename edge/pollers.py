"""One poller per device, in the manner of a Home Assistant data-update coordinator.

A poller fetches a typed snapshot on an interval; consumers read only the snapshot and the
availability it implies. A failure is logged once (what failed and what to do), the recovery
once — never once per poll. It knows nothing of MQTT or of what the snapshot holds; it catches
only the device's own error tree, so a programming error still surfaces.

``Poller`` polls a blocking fetch in a thread of its own; ``AsyncPoller`` polls a coroutine as
a task on an event loop it is given, so that an agent with hundreds of asyncio devices (Modbus
controllers) runs them all on one loop thread instead of one thread each.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Generic, TypeVar

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
        self._notify()

    def _notify(self) -> None:
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


class AsyncPoller(Poller[Snapshot]):
    """A ``Poller`` whose fetch is a coroutine, run as a task on a shared event loop.

    ``spawn`` schedules a coroutine on that loop from any thread (``ModbusLoop.spawn``).
    Listeners are handed to ``dispatch`` (one worker thread for all pollers of an agent), so a
    listener that stores or publishes never holds up the loop's device I/O. If the listeners of
    the previous poll have not run yet when the next poll ends, that poll's call is not queued
    again: the pending call reads the newest state (an overloaded agent reports less often
    rather than later and later). ``first_delay_s`` spreads the pollers of one agent over the
    interval instead of polling every device at the same instant.
    """

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[Snapshot]],
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], concurrent.futures.Future[None]],
        dispatch: Callable[[Callable[[], None]], object],
        interval_s: float,
        errors: tuple[type[Exception], ...],
        hint: str = "check the device's power, cabling and address",
        first_delay_s: float = 0.0,
    ) -> None:
        super().__init__(name, self._not_blocking, interval_s=interval_s, errors=errors,
                         hint=hint)
        self._fetch_async = fetch
        self._spawn = spawn
        self._dispatch = dispatch
        self._first_delay_s = max(0.0, first_delay_s)
        self._future: concurrent.futures.Future[None] | None = None
        self._notify_pending = threading.Event()

    def _not_blocking(self) -> Snapshot:
        raise TypeError(f"poller {self.name} polls on its event loop: use poll_async")

    async def poll_async(self) -> None:
        """One fetch and state update on the loop; the listeners are dispatched."""
        try:
            snapshot = await self._fetch_async()
        except self._errors as exc:
            self._failed(exc)
        else:
            self._succeeded(snapshot)
        if self._listeners and not self._notify_pending.is_set():
            self._notify_pending.set()
            self._dispatch(self._dispatched)

    def _dispatched(self) -> None:
        self._notify_pending.clear()  # before reading: a poll ending meanwhile queues again
        self._notify()

    def poll_once(self) -> None:
        raise TypeError(f"poller {self.name} polls on its event loop: use poll_async")

    def start(self) -> None:
        if self._future is not None:
            raise RuntimeError(f"poller {self.name} already started")
        self._future = self._spawn(self._run_async())

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the task (a poll in flight is abandoned; the driver drops its connection)."""
        future, self._future = self._future, None
        if future is None:
            return
        future.cancel()
        try:
            future.result(timeout_s)
        except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
            pass

    async def _run_async(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self._first_delay_s)
        next_due = loop.time()
        while True:
            await self.poll_async()
            # Drift-free schedule; after a slow fetch skip the missed slots instead of bursting.
            next_due += self._interval_s
            now = loop.time()
            if next_due < now:
                next_due = now + self._interval_s
            await asyncio.sleep(next_due - now)


class ListenerWorker:
    """One thread running queued calls in order: the listeners of an agent's ``AsyncPoller``s
    and whatever else must not run on the event loop (acks stored in the outbox).

    ``submit`` appends to a queue and wakes the thread only if it sleeps — a thread pool's
    submit (a future, locks, a wake-up per call) costs more than the call itself when
    hundreds of pollers report every second.
    """

    def __init__(self, name: str) -> None:
        self._calls: collections.deque[tuple[Callable[..., object], tuple[Any, ...]] | None] = (
            collections.deque())
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        self._calls.append((fn, args))
        # Appended before the check: a worker that already cleared the flag still finds it.
        if not self._wake.is_set():
            self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Run what is queued, then end."""
        if not self._started:
            return
        self._calls.append(None)
        self._wake.set()
        self._thread.join(timeout_s)
        self._started = False

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._calls:
                call = self._calls.popleft()
                if call is None:
                    return
                fn, args = call
                try:
                    fn(*args)
                except Exception:
                    # One thread serves every device of the agent: a programming error in one
                    # call is logged with its traceback and must not stop the others' reports.
                    log.exception("%s: a queued call failed", self._thread.name)
