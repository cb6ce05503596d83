"""Real traffic-signal controllers for the edge agent, over Modbus TCP through ``devices.controller``.

It owns one asyncio event loop thread shared by every controller of the agent (the driver is
asyncio; an edge box may serve ~50 controllers, so one loop, not one per controller), and per
controller a ``ControllerDevice``: the poll (identity and watchdog set-up after every contact
loss, status + detectors, the watchdog kick while the control room is alive), the mapping of a
controller reading onto the contract's telemetry fields, and the plan and override commands
(converted from the contract's bodies, judged against the controller's own limits with
``devices.controller.safety`` before anything is written, written and confirmed by the driver).
The pure pieces — ``reading_from``, ``CountTracker``, ``TakenCounts``, ``plan_from_body``,
``prepare`` — do no I/O.
It knows nothing of MQTT: ``edge.app`` polls these devices and publishes what they read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from devices.controller.codec import Identity, Plan, Snapshot, volume_delta
from devices.controller.driver import ControllerClient
from devices.controller.errors import (
    CommandRejected,
    ControllerConnectionError,
    ControllerError,
    ControllerTimeout,
)
from devices.controller.registers import (
    ALARM_BITS,
    REASON_TEXT,
    CommandCode,
    CommandResult,
    Reason,
)
from devices.controller.registers import UnitMode as RegisterMode
from devices.controller.safety import check_plan
from edge.contract import OverrideBody, PlanBody, UnitMode, utc_now
from edge.liveness import Liveness
from edge.settings import ControllerSettings
from edge.traffic import Reading

log = logging.getLogger(__name__)

T = TypeVar("T")

# The register map's unit modes in the contract's spelling (NTCIP unitControlStatus, reduced).
MODE_NAMES: dict[RegisterMode, UnitMode] = {
    RegisterMode.OFF: UnitMode.OFF,
    RegisterMode.FLASH: UnitMode.FLASH,
    RegisterMode.LOCAL_FIXED: UnitMode.LOCAL_FIXED,
    RegisterMode.LOCAL_ACTUATED: UnitMode.LOCAL_ACTUATED,
    RegisterMode.CENTRAL: UnitMode.CENTRAL,
}

# Override actions of the contract → mailbox commands, and whether they name a phase.
OVERRIDE_CODES: dict[str, tuple[CommandCode, bool]] = {
    "hold": (CommandCode.HOLD, True),
    "force": (CommandCode.FORCE, True),
    "flash": (CommandCode.FLASH, False),
    "release": (CommandCode.RELEASE, False),
}

LOOP_START_S = 5.0
# The watchdog is kicked when less than this share of it is left (see _feed_watchdog).
KICK_BELOW = 2 / 3


class ModbusLoop:
    """One asyncio event loop in its own thread, where every controller's driver runs."""

    def __init__(self, name: str = "edge-modbus") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("Modbus loop already started")
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        if not ready.wait(LOOP_START_S):
            raise RuntimeError("Modbus loop did not start")

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float, what: str = "Modbus") -> T:
        """Run ``coro`` on the loop and wait for it from the calling thread.

        Raises ControllerError subclasses only, so a poller treats a stopped loop or a hung
        request like any controller failure instead of dying.
        """
        loop = self._loop
        if loop is None or not loop.is_running():
            coro.close()
            raise ControllerConnectionError(f"{what}: the agent's Modbus loop is not running "
                                            "(agent stopping)")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise ControllerTimeout(f"{what}: no result within {timeout_s:g} s") from exc

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop and return at once (pollers run as tasks this way)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError("the agent's Modbus loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop and wait (closing clients belongs to the loop's thread)."""
        async def wrapper() -> None:
            fn()
        self.run(wrapper(), LOOP_START_S)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(LOOP_START_S)
        self._loop = None
        self._thread = None


# --------------------------------------------------------------------------- readings (pure)


@dataclass(frozen=True, slots=True)
class ControllerReading(Reading):
    """One poll of a controller in the contract's terms, with what only a controller tells."""

    mode_reason: str
    alarms: frozenset[str]
    local_plan: int
    pending_plan: int | None
    watchdog_left_s: float
    uptime_s: int
    det_total: tuple[int, ...] = ()  # vehicles per detector since the agent started (CountTracker)


class CountTracker:
    """Vehicles per poll from the controllers' wrapping volume counters, and their running
    totals since the agent started.

    The first reading, the first after a lost contact and the first after a controller restart
    (uptime went back) have no baseline: they count zero rather than a burst of everything
    counted since power-on or during the gap.
    """

    def __init__(self) -> None:
        self._volumes: tuple[int, ...] | None = None
        self._uptime_s = -1
        self.totals: tuple[int, ...] = ()

    def reset(self) -> None:
        self._volumes = None

    def counts(self, volumes: tuple[int, ...], uptime_s: int) -> tuple[int, ...]:
        before = self._volumes
        restarted = uptime_s < self._uptime_s
        self._volumes, self._uptime_s = volumes, uptime_s
        if len(self.totals) != len(volumes):
            self.totals = (0,) * len(volumes)  # another detector set: totals start over
        if before is None or restarted or len(before) != len(volumes):
            return (0,) * len(volumes)
        counts = tuple(volume_delta(b, a) for b, a in zip(before, volumes, strict=True))
        self.totals = tuple(t + c for t, c in zip(self.totals, counts, strict=True))
        return counts


class TakenCounts:
    """Per intersection, what the publisher last took of a controller's running totals.

    An agent's pollers hand their readings to one publisher thread and, when it lags, a poll's
    call is folded into the next one (``AsyncPoller``): the skipped reading's per-poll counts
    would be lost. The publisher counts from the totals instead, so a skipped poll's vehicles
    come with the next reading it takes.
    """

    def __init__(self) -> None:
        self._last: tuple[int, ...] = ()

    def take(self, reading: ControllerReading) -> ControllerReading:
        """``reading`` with det_count = vehicles since the last reading taken."""
        total = reading.det_total
        if len(total) != len(reading.det_count):
            return reading  # no totals: its own counts
        last = self._last if len(self._last) == len(total) else (0,) * len(total)
        self._last = total
        return replace(reading, det_count=tuple(t - b for t, b in zip(total, last, strict=True)))


def reading_from(snapshot: Snapshot, ident: Identity, counts: tuple[int, ...],
                 totals: tuple[int, ...] = ()) -> ControllerReading:
    status = snapshot.status
    return ControllerReading(
        mode=MODE_NAMES[status.mode].value,
        plan=status.plan or None,
        cycle_timer_s=status.cycle_timer_ds / 10 if status.plan else None,
        signal=status.lamps(ident.phase_count),
        det_count=counts,
        det_occupancy_pct=tuple(d.occupancy_pct for d in snapshot.detectors),
        det_fault=tuple(d.faulty for d in snapshot.detectors),
        mode_reason=status.mode_reason.name.lower(),
        alarms=frozenset(name for name, bit in ALARM_BITS.items() if status.alarms >> bit & 1),
        local_plan=status.local_plan,
        pending_plan=status.pending_plan or None,
        watchdog_left_s=status.watchdog_left_ds / 10,
        uptime_s=status.uptime_s,
        det_total=totals,
    )


# --------------------------------------------------------------------------- commands (pure)


class CommandRefused(Exception):
    """The agent refuses a command before writing anything; ``reason`` goes into the ack."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _verdict_text(reason: Reason, detail: str) -> str:
    return f"{reason.name}: {REASON_TEXT.get(reason, 'rejected')}" + (f" ({detail})" if detail else "")


def _to_ds(seconds: float) -> int:
    return int(math.floor(seconds * 10 + 0.5))


def plan_from_body(body: PlanBody, ident: Identity) -> Plan:
    """A contract plan → the driver's Plan: one stage per phase, in phase order.

    Each split is its phase's green plus yellow and all-red. The controller counts deciseconds;
    splits are rounded so they still add up to the cycle (largest remainders get the spare
    deciseconds), provided the body's own splits add up to its cycle within rounding.
    """
    n = ident.phase_count
    if len(body.splits_s) != n:
        raise CommandRefused(f"{len(body.splits_s)} splits for a {n}-phase controller "
                             "(one split per phase, in phase order)")
    cycle_ds = _to_ds(body.cycle_s)
    if abs(sum(body.splits_s) - body.cycle_s) > 0.05:
        raise CommandRefused(_verdict_text(Reason.SPLITS_NOT_CYCLE, f"splits add up to "
                             f"{sum(body.splits_s):g} s, cycle is {body.cycle_s:g} s"))
    exact = [s * 10 for s in body.splits_s]
    splits = [int(math.floor(x)) for x in exact]
    spare = cycle_ds - sum(splits)
    order = sorted(range(n), key=lambda k: exact[k] - splits[k], reverse=True)
    for k in order[:max(0, spare)]:
        splits[k] += 1
    if sum(splits) != cycle_ds:  # not reachable by rounding: say so rather than guess
        raise CommandRefused(_verdict_text(Reason.SPLITS_NOT_CYCLE, f"splits of {sum(splits)} ds "
                             f"for a cycle of {cycle_ds} ds"))
    return Plan(body.plan, cycle_ds, _to_ds(body.offset_s), tuple(1 << k for k in range(n)),
                tuple(splits))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A command judged safe to send: a plan, or one mailbox command."""

    plan: Plan | None = None
    code: CommandCode = CommandCode.NONE
    phase: int = 0

    def describe(self) -> str:
        if self.plan is not None:
            return (f"plan {self.plan.number} cycle {self.plan.cycle_ds / 10:g} s splits "
                    f"{[s / 10 for s in self.plan.splits_ds]}")
        return f"{self.code.name}" + (f" phase {self.phase}" if self.phase else "")


def prepare(body: PlanBody | OverrideBody, ident: Identity, timing: Any) -> Prepared:
    """Convert and judge a command against the controller's identity and timing; raise
    CommandRefused with the controller's reason text if it would be unsafe."""
    if isinstance(body, PlanBody):
        plan = plan_from_body(body, ident)
        verdict = check_plan(plan, timing, ident)
        if not verdict.ok:
            raise CommandRefused(_verdict_text(verdict.reason, verdict.detail))
        return Prepared(plan=plan)
    code, needs_phase = OVERRIDE_CODES[body.action]
    if needs_phase:
        if body.phase is None:
            raise CommandRefused(f"{body.action} needs a phase")
        if body.phase > ident.phase_count:
            raise CommandRefused(_verdict_text(Reason.UNKNOWN_PHASE, f"phase {body.phase} on a "
                                 f"{ident.phase_count}-phase controller"))
        return Prepared(code=code, phase=body.phase)
    return Prepared(code=code)


# --------------------------------------------------------------------------- one controller (I/O)


@dataclass(frozen=True, slots=True)
class WatchdogState:
    feeding: bool
    reason: str
    kicks: int
    last_kick_at: datetime | None


class ControllerDevice:
    """One controller: polled by an ``AsyncPoller`` task on the shared loop (``poll``), its
    commands run there too from the agent's command thread (``prepare``, ``execute``).

    ``liveness`` is asked before every kick, so the watchdog is fed only while the control room
    is alive; when it is not, the controller's own watchdog runs out and it falls back.
    """

    def __init__(self, spec: ControllerSettings, loop: ModbusLoop,
                 liveness: Callable[[], Liveness]) -> None:
        self.spec = spec
        self._loop = loop
        self._liveness = liveness
        self.client = ControllerClient(spec.host, spec.port, spec.unit, timeout_s=spec.timeout_s,
                                       backoff_initial_s=min(0.5, spec.reconnect_max_s),
                                       backoff_max_s=spec.reconnect_max_s)
        self.identity: Identity | None = None  # last identity read (kept while unreachable)
        self._set_up = False  # identity read and watchdog timeout written on this contact
        self._counts = CountTracker()
        self._watchdog_ds = int(round(spec.watchdog_timeout_s * 10))
        self.watchdog = WatchdogState(False, "not polled yet", 0, None)
        # A poll is at most identity + timeout write + status/detector reads + kick.
        self._poll_budget_s = 6 * spec.timeout_s + 1.0
        # Commands to this controller are carried out one at a time, in arrival order.
        self.command_turn = asyncio.Lock()

    @property
    def intersection_id(self) -> str:
        return self.spec.intersection_id

    @property
    def device_id(self) -> str:
        return f"ctl-{self.spec.intersection_id}"

    # ------------------------------------------------------------------ polling (on the loop)

    async def poll(self) -> ControllerReading:
        """One poll (the ``AsyncPoller``'s fetch, on the loop); raises ControllerError when the
        controller fails or the whole poll overruns its budget."""
        try:
            return await asyncio.wait_for(self._poll(), self._poll_budget_s)
        except TimeoutError as exc:
            self._set_up = False
            self._counts.reset()
            raise ControllerTimeout(f"controller {self.spec.address}: poll not done within "
                                    f"{self._poll_budget_s:g} s") from exc

    async def _poll(self) -> ControllerReading:
        try:
            if not self._set_up:
                self.identity = await self.client.identity(refresh=True)
                await self.client.set_watchdog_timeout(self._watchdog_ds)
                self._counts.reset()
                self._set_up = True
                log.info("controller %s (%s): %s %s firmware %s serial %s, %d phases, %d detectors; "
                         "watchdog %g s", self.intersection_id, self.spec.address,
                         self.identity.vendor, self.identity.model, self.identity.firmware,
                         self.identity.serial, self.identity.phase_count,
                         self.identity.detector_count, self.spec.watchdog_timeout_s)
            ident = self.identity
            assert ident is not None
            snapshot = await self.client.snapshot()
            await self._feed_watchdog(snapshot.status.watchdog_left_ds)
        except ControllerError:
            # After any failure the next contact starts over: the controller may have been
            # restarted or replaced, and a lost connection may have lost our timeout write.
            self._set_up = False
            self._counts.reset()
            raise
        counts = self._counts.counts(tuple(d.volume for d in snapshot.detectors),
                                     snapshot.status.uptime_s)
        return reading_from(snapshot, ident, counts, self._counts.totals)

    async def _feed_watchdog(self, left_ds: int) -> None:
        """Kick while the control room is alive, once less than ``KICK_BELOW`` of the watchdog
        is left (as this poll read it): a kick is a Modbus write, and one per poll per
        controller doubles the requests of an agent with hundreds of them. The margin is many
        polls (the settings require a watchdog of at least two), and a controller that reads 0
        — expired, or one that does not report the time left — is kicked on every poll."""
        verdict = self._liveness()
        before = self.watchdog
        # The agent logs the control room's transitions once; per controller only at debug.
        if not verdict.alive:
            if before.feeding:
                log.debug("controller %s: not feeding its watchdog (%s); it falls back to its "
                          "local plan after %g s", self.intersection_id, verdict.reason,
                          self.spec.watchdog_timeout_s)
            self.watchdog = WatchdogState(False, verdict.reason, before.kicks, before.last_kick_at)
            return
        if left_ds > KICK_BELOW * self._watchdog_ds:
            self.watchdog = WatchdogState(True, verdict.reason, before.kicks, before.last_kick_at)
            return
        await self.client.kick_watchdog()
        if not before.feeding and before.kicks:
            log.debug("controller %s: feeding its watchdog again (%s)", self.intersection_id,
                      verdict.reason)
        self.watchdog = WatchdogState(True, verdict.reason, before.kicks + 1, utc_now())

    # ------------------------------------------------------------------ commands (on the loop)

    async def prepare_async(self, body: PlanBody | OverrideBody) -> Prepared:
        """Judge a command against this controller's limits (reads identity and timing)."""
        return await self._within_budget(self._prepare(body), "judging a command")

    async def execute_async(self, prepared: Prepared) -> str:
        """Write and confirm; returns the ack's note. Raises CommandRejected (the controller's
        refusal, its reason text in the message) or another ControllerError."""
        return await self._within_budget(self._execute(prepared), "carrying out a command")

    async def _within_budget(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        try:
            return await asyncio.wait_for(coro, self._poll_budget_s)
        except TimeoutError as exc:
            raise ControllerTimeout(f"controller {self.spec.address}: {what} took over "
                                    f"{self._poll_budget_s:g} s") from exc

    async def _prepare(self, body: PlanBody | OverrideBody) -> Prepared:
        ident = await self.client.identity()
        timing = await self.client.timing() if isinstance(body, PlanBody) else ()
        return prepare(body, ident, timing)

    async def _execute(self, prepared: Prepared) -> str:
        if prepared.plan is not None:
            outcome = await self.client.write_plan(prepared.plan)
        else:
            outcome = await self.client.command(prepared.code, prepared.phase)
        if outcome.result is CommandResult.PENDING:
            return (f"committed (seq {outcome.seq}); in force from the controller's next safe "
                    "point (cycle boundary)")
        return f"in force (seq {outcome.seq})"

    def close(self) -> None:
        self._loop.call(self.client.close)


def refusal_text(exc: ControllerError) -> str:
    """The ack reason for a driver error: the controller's own words where it gave some."""
    if isinstance(exc, CommandRejected):
        return f"controller refused: {exc}"
    return f"controller error: {exc}"
