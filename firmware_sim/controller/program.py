"""The emulated traffic signal controller's firmware logic: a pure, event-driven state machine.

It owns the signal sequence (start-up, stages, clearances, flash), the conflict monitor, modes,
plans and their safe-point changes, the central watchdog, overrides and the detector inputs and
diagnostics. It must not do I/O: no sockets, asyncio, threads, wall clock or logging — time comes
in as integer deciseconds (``now_ds``, a common time reference) and lamps go out through a callback.

Sequence (NTCIP 1202 terms, Indonesian practice): a plan is a cycle of stages, each a set of
phases green together. Leaving a stage, the phases that lose their green show yellow for the
longest yellow among them, then all-red for the longest all-red; then the entering phases go
green, and phases in both stages stay green (``safety.clearance_ds``). Every green runs at least
the minimum green (and the pedestrian walk + clearance) of its phases before anything may end
it. The state is constant between changes, so the program jumps from change to change.

Choices documented here because a controller has to make them:

* Offset correction ("smooth transition", the short way round as NEMA/SCATS controllers do):
  at every cycle start of a fixed-time plan the controller measures how far the cycle start is
  from the grid ``(t - offset) % cycle == 0``. If it is late by no more than half a cycle it
  shortens this cycle's greens, otherwise it lengthens them; each stage by at most 20 % of its
  planned green per cycle, never below its minimum (and pedestrian) green, never beyond the
  maximum green of its phases, greedily from stage 1. When the short way has no room it takes
  the long way. Locally actuated operation runs free (isolated), without offset correction.
* Central watchdog (NTCIP backup time): it runs while a central plan is in force, from the
  moment that plan takes effect and from every kick; a committed plan that still waits for its
  safe point cannot lapse. On expiry the alarm is raised and overrides end at once; the local
  plan takes over at the next safe point, and a kick brings the central plan back at the next.
* Locally actuated: each stage's green runs its minimum, then extends while a detector calling
  one of its phases was occupied within the passage gap (3 s), up to the plan's green (gap-out
  otherwise). A stage without a working detector runs its planned green (max recall), as does
  one whose detectors are flagged by the diagnostics (stuck on/off, chatter).
* Conflict monitor (the MMU/CMU of a real cabinet): it checks the lamp outputs at every change,
  including lamp drivers stuck on green. Conflicting greens, or a green lit on a phase that is
  meant to be yellow or red (dual indication), put the unit into fail-safe flash at once,
  before the faulty outputs reach the street. Only CLEAR_FAULT leaves it (the technician has
  repaired the lamp driver), through the start-up all-red.
* A simulated chattering detector oscillates at ``CHATTER_EDGES_PER_S`` rising edges a second
  (finer than the decisecond clock, so counted, not stepped), occupied half of the time.
* Detector diagnostics are judged on the live inputs: STUCK_ON after ``max_presence_ds`` of
  continuous presence, STUCK_OFF after ``no_activity_ds`` without any edge, CHATTER when the
  last complete second saw more rising edges than allowed; each clears when the input behaves.
* Power cycle: timing, the local plan and the watchdog timeout live in non-volatile memory and
  survive; the central plan, overrides, counters and the command registers do not. Hardware
  faults (a stuck lamp driver, a faulty loop) survive a reboot too.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devices.controller.codec import (
    Command,
    DetectorReading,
    Identity,
    PhaseTiming,
    Plan,
    Status,
    phases_of,
)
from devices.controller.registers import (
    ALARM_BITS,
    CONTROL,
    INDEFINITE_DS,
    CommandCode,
    CommandResult,
    DetectorStatus,
    Interval,
    ModeReason,
    Override,
    Reason,
    UnitMode,
)
from devices.controller.safety import (
    ABSOLUTE_ALL_RED_FLOOR_DS,
    OK,
    Verdict,
    check_plan,
    check_timing,
    clearance_ds,
    stage_greens_ds,
)

DS_PER_S = 10
PASSAGE_GAP_DS = 30  # actuated: a green extends while its detectors saw a vehicle within 3 s
OFFSET_STEP_PERCENT = 20  # offset correction: at most this share of a stage's green per cycle
CHATTER_EDGES_PER_S = 25  # a simulated chattering loop amplifier oscillates at 25 Hz
CHATTER_OCCUPANCY_PERMILLE = 500  # … and is occupied half of the time
DETECTOR_HISTORY_DS = 20  # keep two seconds of edges: the last complete second is within them
MAX_TIME_LEFT_DS = INDEFINITE_DS - 1  # a finite time left never reads as "held"
U16 = 0xFFFF

_ALARM = {name: 1 << bit for name, bit in ALARM_BITS.items()}
_WATCHDOG_LOW_DS = CONTROL.field("watchdog_timeout_ds").low
_WATCHDOG_HIGH_DS = CONTROL.field("watchdog_timeout_ds").high


class DetectorFault(enum.StrEnum):
    """A fault put on a detector input by a test or a technician's simulator."""

    NONE = "none"
    STUCK_ON = "stuck_on"  # presence always on (a shorted loop)
    STUCK_OFF = "stuck_off"  # never any presence (a broken loop lead-in)
    CHATTER = "chatter"  # many rapid edges (a loop amplifier oscillating)


@dataclass(frozen=True, slots=True)
class DetectorDiagnostics:
    """Thresholds of the controller's detector diagnostics (NTCIP 1202 vehicleDetector*)."""

    max_presence_ds: int = 1200  # continuous presence longer than this → STUCK_ON
    # No actuation for this long → STUCK_OFF. 30 min, as field practice sets it: a quiet lane at
    # 03:00 (a dozen vehicles an hour) must not read as a broken loop.
    no_activity_ds: int = 18000
    chatter_edges_per_s: int = 10  # more rising edges than this in one second → CHATTER

    def __post_init__(self) -> None:
        if self.max_presence_ds <= 0 or self.no_activity_ds <= 0 or self.chatter_edges_per_s <= 0:
            raise ValueError(f"detector diagnostics thresholds must be positive: {self}")


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """What a controller is built with: identity, phase timing, local plan and its timers."""

    identity: Identity
    timing: tuple[PhaseTiming, ...]  # one per phase
    local_plan: Plan  # the local fixed-time fallback plan
    watchdog_timeout_ds: int = 300
    diagnostics: DetectorDiagnostics = DetectorDiagnostics()
    startup_flash_ds: int = 50
    startup_all_red_ds: int = 30

    def __post_init__(self) -> None:
        object.__setattr__(self, "timing", tuple(self.timing))
        verdict = check_timing(self.timing, self.identity)
        if not verdict.ok:
            raise ValueError(f"timing: {verdict.reason.name}: {verdict.detail}")
        verdict = check_plan(self.local_plan, self.timing, self.identity)
        if not verdict.ok:
            raise ValueError(f"local plan {self.local_plan.number}: {verdict.reason.name}: "
                             f"{verdict.detail}")
        if not _WATCHDOG_LOW_DS <= self.watchdog_timeout_ds <= _WATCHDOG_HIGH_DS:
            raise ValueError(f"watchdog_timeout_ds: OUT_OF_RANGE: {self.watchdog_timeout_ds} "
                             f"outside {_WATCHDOG_LOW_DS}..{_WATCHDOG_HIGH_DS}")
        if self.startup_flash_ds < 0:
            raise ValueError(f"startup_flash_ds: OUT_OF_RANGE: {self.startup_flash_ds}")
        if self.startup_all_red_ds < ABSOLUTE_ALL_RED_FLOOR_DS:
            # The way out of any flash: entering greens need a red clearance first.
            raise ValueError(f"startup_all_red_ds: ALL_RED_TOO_SHORT: {self.startup_all_red_ds} "
                             f"< {ABSOLUTE_ALL_RED_FLOOR_DS}")


@dataclass(frozen=True, slots=True)
class LampState:
    """What the lamps show from ``t_ds`` on (until the next LampState)."""

    t_ds: int
    red_mask: int
    yellow_mask: int
    green_mask: int
    flash_mask: int
    walk_mask: int
    ped_clear_mask: int


class _Step(enum.Enum):
    """What the sequencer is timing."""

    STARTUP_FLASH = "startup_flash"
    STARTUP_ALL_RED = "startup_all_red"  # after power-on and on the way out of any flash
    GREEN = "green"
    YELLOW = "yellow"
    ALL_RED = "all_red"
    FLASH = "flash"  # override flash
    FAULT_FLASH = "fault_flash"  # conflict monitor's fail-safe flash


_FLASH_STEPS = (_Step.STARTUP_FLASH, _Step.FLASH, _Step.FAULT_FLASH)
_INTERVAL_OF_STEP = {
    _Step.STARTUP_FLASH: Interval.FLASH, _Step.STARTUP_ALL_RED: Interval.ALL_RED,
    _Step.GREEN: Interval.GREEN, _Step.YELLOW: Interval.YELLOW, _Step.ALL_RED: Interval.ALL_RED,
    _Step.FLASH: Interval.FLASH, _Step.FAULT_FLASH: Interval.FLASH,
}


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a clearance leads: a stage of a plan (``plan is None``: into flash)."""

    plan: Plan | None
    central: bool = False
    index: int = 0

    @property
    def mask(self) -> int:
        return 0 if self.plan is None else self.plan.stages[self.index]


_FLASH_TARGET = _Target(None)


# --------------------------------------------------------------------------- detectors


def _overlap_ds(start: int, end: int, w0: int, w1: int) -> int:
    return max(0, min(end, w1) - max(start, w0))


def _chatter_edges(since_ds: int, t_ds: int) -> int:
    """Rising edges a loop chattering since ``since_ds`` has made by ``t_ds``."""
    return max(0, t_ds - since_ds) * CHATTER_EDGES_PER_S // DS_PER_S


@dataclass(slots=True)
class _Loop:
    """One detector input: what the world drives, its fault, and what the controller sees."""

    driven: bool = False  # presence as the simulator sets it
    fault: DetectorFault = DetectorFault.NONE
    present: bool = False  # effective presence, after the fault (False while chattering)
    on_since_ds: int = 0
    last_edge_ds: int = 0  # last effective change: the diagnostics' activity
    volume: int = 0  # rising edges, unbounded here; the register wraps
    chatter_since_ds: int | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)  # closed occupancies
    chatter_spans: list[tuple[int, int]] = field(default_factory=list)  # closed chatter
    rises_ds: list[int] = field(default_factory=list)  # recent rising edges

    def reset(self, now_ds: int) -> None:
        """Power-on: counters and history gone; the physical input and its fault remain."""
        self.present = False
        self.on_since_ds = self.last_edge_ds = now_ds
        self.volume = 0
        self.chatter_since_ds = None
        self.spans.clear()
        self.chatter_spans.clear()
        self.rises_ds.clear()
        self.apply(now_ds)

    def _wanted(self) -> bool | None:
        """Effective presence the fault makes of the driven input (None: chattering)."""
        if self.fault is DetectorFault.NONE:
            return self.driven
        return {DetectorFault.STUCK_ON: True, DetectorFault.STUCK_OFF: False,
                DetectorFault.CHATTER: None}[self.fault]

    def apply(self, now_ds: int) -> None:
        """Bring the effective presence in line with the driven input and the fault."""
        want = self._wanted()
        if self.chatter_since_ds is not None and want is not None:
            self.volume += _chatter_edges(self.chatter_since_ds, now_ds)
            self.chatter_spans.append((self.chatter_since_ds, now_ds))
            self.chatter_since_ds = None
            self.last_edge_ds = now_ds
        if want is None:
            if self.chatter_since_ds is None:
                if self.present:
                    self._fall(now_ds)
                self.chatter_since_ds = now_ds
                self.last_edge_ds = now_ds
        elif want and not self.present:
            self.present = True
            self.on_since_ds = self.last_edge_ds = now_ds
            self.volume += 1
            self.rises_ds.append(now_ds)
        elif not want and self.present:
            self._fall(now_ds)
        horizon = now_ds - DETECTOR_HISTORY_DS
        self.spans = [s for s in self.spans if s[1] >= horizon]
        self.chatter_spans = [s for s in self.chatter_spans if s[1] >= horizon]
        self.rises_ds = [t for t in self.rises_ds if t >= horizon]

    def _fall(self, now_ds: int) -> None:
        self.present = False
        self.spans.append((self.on_since_ds, now_ds))
        self.last_edge_ds = now_ds

    def chattering(self) -> bool:
        return self.chatter_since_ds is not None

    def reading(self, now_ds: int, diag: DetectorDiagnostics) -> DetectorReading:
        w1 = now_ds // DS_PER_S * DS_PER_S  # the last complete second: [w1 - 1 s, w1)
        w0 = w1 - DS_PER_S
        full = [*self.spans, *([(self.on_since_ds, now_ds)] if self.present else [])]
        chatter = [*self.chatter_spans,
                   *([(self.chatter_since_ds, now_ds)] if self.chatter_since_ds is not None
                     else [])]
        # 1 ds of presence in a 10 ds window is 100 ‰.
        permille = sum(_overlap_ds(a, b, w0, w1) for a, b in full) * (1000 // DS_PER_S)
        permille += sum(_overlap_ds(a, b, w0, w1) for a, b in chatter) * (
            CHATTER_OCCUPANCY_PERMILLE // DS_PER_S)
        edges = sum(1 for t in self.rises_ds if w0 <= t < w1)
        for since, end in chatter:
            lo, hi = max(since, w0), min(end, w1)
            if hi > lo:
                edges += _chatter_edges(since, hi) - _chatter_edges(since, lo)
        volume = self.volume + (_chatter_edges(self.chatter_since_ds, now_ds)
                                if self.chatter_since_ds is not None else 0)
        if edges > diag.chatter_edges_per_s:
            status = DetectorStatus.CHATTER
        elif self.present and now_ds - self.on_since_ds > diag.max_presence_ds:
            status = DetectorStatus.STUCK_ON
        elif (not self.present and self.chatter_since_ds is None
              and now_ds - self.last_edge_ds >= diag.no_activity_ds):
            status = DetectorStatus.STUCK_OFF
        else:
            status = DetectorStatus.OK
        return DetectorReading(volume & U16, min(permille, 1000), status)


# --------------------------------------------------------------------------- the program


class SignalProgram:
    """One controller's firmware: feed it time, commands and detector inputs; read its state.

    Every public method takes ``now_ds`` and first runs the sequence up to it; an earlier time
    than one already reached is taken as that time (the program's time never goes back).
    """

    def __init__(self, config: ControllerConfig, now_ds: int, *,
                 on_lamps: Callable[[LampState], None] | None = None) -> None:
        self._config = config
        self._identity = config.identity
        self._on_lamps = on_lamps
        # Non-volatile: survives a power cycle.
        self._timing: tuple[PhaseTiming, ...] = config.timing
        self._local: Plan = config.local_plan
        self._watchdog_timeout_ds = config.watchdog_timeout_ds
        self._loops = [_Loop() for _ in range(self._identity.detector_count)]
        self._stuck_green_mask = 0  # lamp drivers stuck on (hardware: survives a reboot)
        self._all_mask = (1 << self._identity.phase_count) - 1
        self._now = now_ds
        self._lamps: LampState | None = None
        self._power_on(now_ds)

    # ------------------------------------------------------------------ properties

    @property
    def identity(self) -> Identity:
        return self._identity

    @property
    def timing(self) -> tuple[PhaseTiming, ...]:
        return self._timing

    @property
    def running_plan(self) -> Plan:
        """The plan in force (during start-up and flash: the plan the sequence resumes with)."""
        return self._plan

    @property
    def local_plan(self) -> Plan:
        return self._local

    @property
    def central_plan(self) -> Plan | None:
        """The committed central plan (None until committed; lost on a power cycle)."""
        return self._central

    @property
    def watchdog_timeout_ds(self) -> int:
        return self._watchdog_timeout_ds

    @property
    def lamps(self) -> LampState | None:
        """The lamp state last put out."""
        return self._lamps

    @property
    def now_ds(self) -> int:
        """The time the program has reached."""
        return self._now

    # ------------------------------------------------------------------ time

    def advance(self, now_ds: int) -> None:
        """Run every change up to ``now_ds`` in order, jumping from change to change."""
        target = max(now_ds, self._now)
        while True:
            t = self._next_event_ds()
            if t is None or t > target:
                break
            self._now = max(t, self._now)
            self._process_due()
        self._now = target

    # ------------------------------------------------------------------ reads

    def status(self, now_ds: int) -> Status:
        """The status block: every field, as of ``now_ds``."""
        self.advance(now_ds)
        now = self._now
        lamps = self._lamps
        assert lamps is not None  # put out at power-on
        mode, reason = self._mode()
        uptime_s = (now - self._power_on_ds) // DS_PER_S
        running = self._step in (_Step.GREEN, _Step.YELLOW, _Step.ALL_RED)
        desired_plan, desired_central = self._desired()
        pending = (desired_plan.number if (desired_plan, desired_central)
                   != (self._plan, self._plan_central) else 0)
        return Status(
            mode=mode, mode_reason=reason, plan=self._plan.number, cycle_ds=self._plan.cycle_ds,
            cycle_timer_ds=(min(now - self._cycle_start_ds, U16)
                            if self._cycle_start_ds is not None else 0),
            offset_ds=self._plan.offset_ds, heartbeat=uptime_s & U16,
            red_mask=lamps.red_mask, yellow_mask=lamps.yellow_mask, green_mask=lamps.green_mask,
            flash_mask=lamps.flash_mask, walk_mask=lamps.walk_mask,
            ped_clear_mask=lamps.ped_clear_mask,
            interval=_INTERVAL_OF_STEP[self._step],
            stage=self._stage + 1 if running else 0,
            time_left_ds=self._time_left_ds(),
            override=self._override, override_phase=self._override_phase,
            override_left_ds=self._override_left_ds(),
            watchdog_left_ds=self._watchdog_left_ds(),
            alarms=self._alarm_bits(), uptime_s=uptime_s, pending_plan=pending,
            last_seq=self._last_seq, last_result=self._last_result,
            last_reason=self._last_reason, local_plan=self._local.number,
            cycle_count=self._cycle_count & U16,
        )

    def detectors(self, now_ds: int) -> tuple[DetectorReading, ...]:
        """Volume, occupancy of the last complete second and diagnostics of every detector."""
        self.advance(now_ds)
        return tuple(loop.reading(self._now, self._config.diagnostics) for loop in self._loops)

    # ------------------------------------------------------------------ writes

    def set_timing(self, now_ds: int, timing: Sequence[PhaseTiming]) -> Verdict:
        """Replace the whole timing table, if it is safe and keeps every stored plan safe."""
        self.advance(now_ds)
        timing = tuple(timing)
        verdict = check_timing(timing, self._identity)
        if verdict.ok:
            plans = [("running", self._plan), ("local", self._local)]
            if self._central is not None:
                plans.append(("central", self._central))
            for name, plan in plans:
                broken = check_plan(plan, timing, self._identity)
                if not broken.ok:
                    verdict = Verdict(Reason.TIMING_BREAKS_PLAN, f"{name} plan {plan.number}: "
                                      f"{broken.reason.name} {broken.detail}")
                    break
        if not verdict.ok:
            self._reject(verdict.reason)
            return verdict
        self._timing = timing
        self._settle()
        return OK

    def set_watchdog_timeout(self, now_ds: int, timeout_ds: int) -> Verdict:
        self.advance(now_ds)
        if not _WATCHDOG_LOW_DS <= timeout_ds <= _WATCHDOG_HIGH_DS:
            self._reject(Reason.OUT_OF_RANGE)
            return Verdict(Reason.OUT_OF_RANGE, f"watchdog timeout {timeout_ds} ds outside "
                           f"{_WATCHDOG_LOW_DS}..{_WATCHDOG_HIGH_DS}")
        self._watchdog_timeout_ds = timeout_ds
        self._settle()
        return OK

    def kick_watchdog(self, now_ds: int) -> None:
        """The central system is alive: restart the watchdog; resume central control if lapsed."""
        self.advance(now_ds)
        self._last_kick_ds = self._now
        self._watchdog_expired = False  # the central plan returns at the next safe point
        self._settle()

    def execute(self, now_ds: int, cmd: Command, shadow: Plan | None) -> Verdict:
        """Run a mailbox command; ``shadow`` is the decoded shadow plan for the COMMIT_* codes.

        Sets last_seq, last_result (APPLIED, PENDING until a safe point, REJECTED) and
        last_reason. A refused command changes nothing else.
        """
        self.advance(now_ds)
        self._last_seq = cmd.seq & U16
        try:
            code = CommandCode(cmd.code)
        except ValueError:
            code = None
        pending = False
        if code is None:
            verdict = Verdict(Reason.BAD_COMMAND, f"command code {cmd.code}")
        elif self._step is _Step.FAULT_FLASH and code not in (CommandCode.CLEAR_FAULT,
                                                              CommandCode.NONE):
            verdict = Verdict(Reason.NOT_PERMITTED, "fail-safe flash: only CLEAR_FAULT")
        else:
            verdict, pending = self._COMMANDS[code](self, cmd, shadow)
        if verdict.ok:
            self._last_result = CommandResult.PENDING if pending else CommandResult.APPLIED
            self._last_reason = Reason.OK
            self._pending_seq = self._last_seq if pending else None
        else:
            self._reject(verdict.reason)
        self._settle()
        return verdict

    def record_rejection(self, now_ds: int, reason: Reason) -> None:
        """A refused register write that was not a command (the server judged it)."""
        self.advance(now_ds)
        self._reject(reason)

    # ------------------------------------------------------------------ the world and faults

    def set_presence(self, now_ds: int, detector: int, present: bool) -> None:
        """The loop of 1-based ``detector`` is (or is no longer) occupied."""
        self.advance(now_ds)
        loop = self._loop(detector)
        loop.driven = bool(present)
        loop.apply(self._now)
        self._settle()

    def set_detector_fault(self, now_ds: int, detector: int, fault: DetectorFault) -> None:
        self.advance(now_ds)
        loop = self._loop(detector)
        loop.fault = DetectorFault(fault)
        loop.apply(self._now)
        self._settle()

    def inject_lamp_fault(self, now_ds: int, phase: int) -> None:
        """The green lamp driver of ``phase`` sticks on; the conflict monitor has to catch it."""
        self.advance(now_ds)
        if not 1 <= phase <= self._identity.phase_count:
            raise ValueError(f"phase {phase} outside 1..{self._identity.phase_count}")
        self._stuck_green_mask |= 1 << (phase - 1)
        self._settle()

    def reboot(self, now_ds: int) -> None:
        """Power cycle: start-up flash again; central plan, overrides and counters are lost."""
        self.advance(now_ds)
        self._power_on(self._now)

    # ------------------------------------------------------------------ power-on

    def _power_on(self, now_ds: int) -> None:
        self._power_on_ds = now_ds
        self._plan: Plan = self._local
        self._plan_central = False
        self._central: Plan | None = None
        self._last_kick_ds = now_ds
        self._watchdog_expired = False
        self._override = Override.NONE
        self._override_phase = 0
        self._override_until_ds: int | None = None
        self._last_seq = 0
        self._last_result = CommandResult.NONE
        self._last_reason = Reason.OK
        self._pending_seq: int | None = None
        self._latched_alarms = _ALARM["power_up"]
        self._cycle_count = 0
        self._cycle_start_ds: int | None = None
        self._adjust_ds: list[int] = []
        self._stage = 0
        self._green_mask = 0
        self._yellow_mask = 0
        self._green_onset_ds: dict[int, int] = {}
        self._target = _FLASH_TARGET
        self._clear_from_mask = 0
        self._stage_start_ds = now_ds
        self._min_end_ds = now_ds
        self._cut_short = False
        for loop in self._loops:
            loop.reset(now_ds)
        self._enter(_Step.STARTUP_FLASH, now_ds + self._config.startup_flash_ds)
        self._settle()

    # ------------------------------------------------------------------ the sequencer

    def _enter(self, step: _Step, end_ds: int | None) -> None:
        self._step = step
        self._step_end_ds = end_ds
        if step is not _Step.YELLOW:
            self._yellow_mask = 0
        if step in _FLASH_STEPS or step is _Step.STARTUP_ALL_RED:
            self._green_mask = 0
            self._green_onset_ds.clear()
            self._cycle_start_ds = None  # the cycle is broken; the next stage 1 starts one

    def _step_end(self) -> int | None:
        if self._step is _Step.GREEN:
            return self._green_end_ds()
        return self._step_end_ds

    def _next_event_ds(self) -> int | None:
        times = [self._step_end()]
        if self._watchdog_armed():
            times.append(self._last_kick_ds + self._watchdog_timeout_ds)
        times.append(self._override_until_ds)
        times.append(self._next_ped_change_ds())
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def _process_due(self) -> None:
        """Everything that falls due at ``self._now``, in a fixed order; then the lamps."""
        now = self._now
        if self._watchdog_armed() and now >= self._last_kick_ds + self._watchdog_timeout_ds:
            self._watchdog_expired = True
            if self._override is not Override.NONE:
                self._release()
        if self._override_until_ds is not None and now >= self._override_until_ds:
            self._release()
        # Each step but a green lasts > 0, and a green that ends leads to a clearance or to a
        # new green with a minimum: the loop ends. The bound only turns a bug into an error.
        for _ in range(4 * len(self._plan.stages) + 16):
            end = self._step_end()
            if end is None or end > now:
                break
            self._finish_step()
        else:
            raise RuntimeError("signal sequence does not settle")
        self._refresh_lamps()

    def _settle(self) -> None:
        """After a change from outside: run what it made due now, and put out the lamps."""
        self._process_due()

    def _finish_step(self) -> None:
        step, now = self._step, self._now
        if step is _Step.STARTUP_FLASH:
            if self._override is Override.FLASH:
                self._enter(_Step.FLASH, None)
            else:
                self._enter(_Step.STARTUP_ALL_RED, now + self._config.startup_all_red_ds)
        elif step is _Step.STARTUP_ALL_RED:
            self._resume()
        elif step is _Step.GREEN:
            self._begin_clearance(self._choose_target())
        elif step is _Step.YELLOW:
            _, all_red = clearance_ds(self._clear_from_mask, self._target.mask, self._timing)
            self._enter(_Step.ALL_RED, now + all_red)
        elif step is _Step.ALL_RED:
            if self._green_mask == 0 and self._override is Override.FLASH:
                self._enter(_Step.FLASH, None)
            elif self._target.plan is None:
                self._resume()  # the flash was released during the clearance: all red now
            else:
                self._start_stage(self._target)
        else:  # FLASH and FAULT_FLASH have no end of their own
            raise RuntimeError(f"{step} has no end")

    def _resume(self) -> None:
        """From all-red (start-up or a cancelled flash) into the plan: a safe point."""
        if self._override is Override.FLASH:
            self._enter(_Step.FLASH, None)
            return
        plan, central = self._desired()
        index = 0
        if self._override in (Override.HOLD, Override.FORCE):
            index = self._first_stage_with(plan, self._override_phase)
        self._start_stage(_Target(plan, central, index))

    def _choose_target(self) -> _Target:
        """Where the green that ends now goes."""
        ov = self._override
        if ov is Override.FLASH:
            return _FLASH_TARGET
        if ov in (Override.HOLD, Override.FORCE):
            return _Target(self._plan, self._plan_central,
                           self._first_stage_with(self._plan, self._override_phase))
        index = self._stage + 1
        if index < len(self._plan.stages):
            return _Target(self._plan, self._plan_central, index)
        plan, central = self._desired()  # the end of the cycle: the safe point for a new plan
        return _Target(plan, central, 0)

    def _begin_clearance(self, target: _Target) -> None:
        here = self._green_mask
        leaving = here & ~target.mask
        if not leaving:
            self._start_stage(target)  # nothing loses its green: the new phases join at once
            return
        yellow, _ = clearance_ds(here, target.mask, self._timing)
        self._target = target
        self._clear_from_mask = here
        self._enter(_Step.YELLOW, self._now + yellow)
        self._yellow_mask = leaving
        self._green_mask = here & target.mask
        for p in phases_of(leaving):
            self._green_onset_ds.pop(p, None)

    def _start_stage(self, target: _Target) -> None:
        assert target.plan is not None
        now = self._now
        if (target.plan, target.central) != (self._plan, self._plan_central):
            self._plan, self._plan_central = target.plan, target.central
            if target.central:
                self._last_kick_ds = now  # the watchdog times central control from its start
            if self._pending_seq is not None and self._pending_seq == self._last_seq:
                self._last_result = CommandResult.APPLIED
            self._pending_seq = None
        mask = target.plan.stages[target.index]
        for p in phases_of(mask & ~self._green_mask):
            self._green_onset_ds[p] = now
        self._enter(_Step.GREEN, None)
        self._stage = target.index
        self._green_mask = mask
        self._stage_start_ds = now
        self._min_end_ds = now + self._stage_min_ds(mask)
        self._cut_short = False
        if target.index == 0:
            if self._cycle_start_ds is not None:
                self._cycle_count += 1
            self._cycle_start_ds = now
            self._adjust_ds = [] if self._actuated() else self._offset_adjust_ds()
        if self._override is Override.FORCE and mask >> (self._override_phase - 1) & 1:
            self._clear_override()  # forced there: the plan continues from this stage

    def _green_end_ds(self) -> int | None:
        """When the current stage's green ends (None: held)."""
        now = self._now
        ov = self._override
        here = self._plan.stages[self._stage]
        if ov is Override.HOLD and here >> (self._override_phase - 1) & 1:
            return None
        if ov is not Override.NONE or self._cut_short:
            return max(self._min_end_ds, now)  # force, flash, hold elsewhere, hold released
        greens = stage_greens_ds(self._plan, self._timing)
        planned = greens[self._stage]
        if self._stage < len(self._adjust_ds):
            planned += self._adjust_ds[self._stage]
        end = self._stage_start_ds + planned
        if self._actuated():
            end = min(end, max(self._min_end_ds, self._gap_out_ds(here, end)))
        return max(end, self._min_end_ds, now)

    def _gap_out_ds(self, stage_mask: int, planned_end_ds: int) -> int:
        """Actuated: when the stage's detectors stop extending its green."""
        diag = self._config.diagnostics
        last_ds: int | None = None
        for d, call in enumerate(self._identity.detector_phase):
            if not call or not stage_mask >> (call - 1) & 1:
                continue
            loop = self._loops[d]
            if loop.present or loop.chattering():
                return planned_end_ds
            if loop.reading(self._now, diag).status is not DetectorStatus.OK:
                return planned_end_ds  # a faulty loop is a constant call (max recall)
            last_ds = loop.last_edge_ds if last_ds is None else max(last_ds, loop.last_edge_ds)
        if last_ds is None:
            return planned_end_ds  # no detector: recall to the planned green
        return last_ds + PASSAGE_GAP_DS

    def _stage_min_ds(self, mask: int) -> int:
        """The shortest green the stage may show: minimum greens and pedestrian timing."""
        floor = self._identity.min_green_floor_ds
        need = 0
        for p in phases_of(mask):
            t = self._timing[p - 1]
            ped = t.ped_walk_ds + t.ped_clear_ds if t.ped_walk_ds else 0
            need = max(need, t.min_green_ds, floor, ped)
        return need

    def _offset_adjust_ds(self) -> list[int]:
        """Per stage, the green added (or taken) this cycle to bring the cycle onto its offset."""
        plan = self._plan
        late_ds = (self._now - plan.offset_ds) % plan.cycle_ds
        n = len(plan.stages)
        if late_ds == 0:
            return [0] * n
        greens = stage_greens_ds(plan, self._timing)
        step = [g * OFFSET_STEP_PERCENT // 100 for g in greens]
        shrink = [max(0, min(s, g - self._stage_min_ds(m)))
                  for s, g, m in zip(step, greens, plan.stages, strict=True)]
        grow = [max(0, min(s, self._stage_max_ds(m) - g))
                for s, g, m in zip(step, greens, plan.stages, strict=True)]
        early_ds = plan.cycle_ds - late_ds
        if (late_ds <= early_ds and sum(shrink)) or not sum(grow):
            want, room, sign = late_ds, shrink, -1
        else:
            want, room, sign = early_ds, grow, 1
        out = []
        for r in room:
            take = min(r, want)
            want -= take
            out.append(sign * take)
        return out

    def _stage_max_ds(self, mask: int) -> int:
        return min(self._timing[p - 1].max_green_ds for p in phases_of(mask))

    def _actuated(self) -> bool:
        return self._identity.local_actuated and not self._plan_central

    def _watchdog_armed(self) -> bool:
        """The central watchdog runs while a central plan is in force (NTCIP backup time)."""
        return self._plan_central and not self._watchdog_expired

    def _desired(self) -> tuple[Plan, bool]:
        """The plan the next safe point starts: central while it is alive, else local."""
        if self._central is not None and not self._watchdog_expired:
            return self._central, True
        return self._local, False

    @staticmethod
    def _first_stage_with(plan: Plan, phase: int) -> int:
        for k, mask in enumerate(plan.stages):
            if mask >> (phase - 1) & 1:
                return k
        raise ValueError(f"plan {plan.number} never serves phase {phase}")

    # ------------------------------------------------------------------ overrides

    def _clear_override(self) -> None:
        self._override = Override.NONE
        self._override_phase = 0
        self._override_until_ds = None

    def _release(self) -> None:
        """End any override: out of flash through all-red; a held green serves its minimum."""
        ov, phase = self._override, self._override_phase
        self._clear_override()
        if self._step is _Step.FLASH:
            self._enter(_Step.STARTUP_ALL_RED, self._now + self._config.startup_all_red_ds)
        elif (ov is Override.HOLD and self._step is _Step.GREEN
              and self._plan.stages[self._stage] >> (phase - 1) & 1):
            self._cut_short = True

    def _set_override(self, kind: Override, phase: int, duration_ds: int) -> None:
        self._override = kind
        self._override_phase = phase
        self._override_until_ds = self._now + duration_ds if duration_ds else None
        if kind is not Override.FLASH and self._step is _Step.FLASH:
            # Leaving the flash for a stage: through the start-up all-red.
            self._enter(_Step.STARTUP_ALL_RED, self._now + self._config.startup_all_red_ds)

    # ------------------------------------------------------------------ commands

    def _cmd_none(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        return OK, False

    def _cmd_commit_central(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        if shadow is None:
            return Verdict(Reason.BAD_COMMAND, "commit without a shadow plan"), False
        verdict = check_plan(shadow, self._timing, self._identity)
        if not verdict.ok:
            return verdict, False
        self._central = shadow
        self._last_kick_ds = self._now  # the central system just spoke
        self._watchdog_expired = False
        return OK, (shadow, True) != (self._plan, self._plan_central)

    def _cmd_commit_local(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        if shadow is None:
            return Verdict(Reason.BAD_COMMAND, "commit without a shadow plan"), False
        verdict = check_plan(shadow, self._timing, self._identity)
        if not verdict.ok:
            return verdict, False
        self._local = shadow
        running_local = not self._plan_central
        return OK, running_local and shadow != self._plan

    def _check_phase(self, phase: int) -> Verdict:
        n = self._identity.phase_count
        if not 1 <= phase <= n or not any(m >> (phase - 1) & 1 for m in self._plan.stages):
            return Verdict(Reason.UNKNOWN_PHASE, f"phase {phase}: not served by plan "
                           f"{self._plan.number} of this {n}-phase controller")
        return OK

    def _cmd_hold(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        verdict = self._check_phase(cmd.phase)
        if verdict.ok:
            self._set_override(Override.HOLD, cmd.phase, cmd.duration_ds)
        return verdict, False

    def _cmd_force(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        verdict = self._check_phase(cmd.phase)
        if not verdict.ok:
            return verdict, False
        if self._step is _Step.GREEN and self._green_mask >> (cmd.phase - 1) & 1:
            if self._override is not Override.NONE:
                self._release()  # already there: a force replaces any other override
            return OK, False
        self._set_override(Override.FORCE, cmd.phase, 0)
        return OK, False

    def _cmd_flash(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        self._set_override(Override.FLASH, 0, cmd.duration_ds)
        return OK, False

    def _cmd_release(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        if self._override is not Override.NONE:
            self._release()
        return OK, False

    def _cmd_clear_fault(self, cmd: Command, shadow: Plan | None) -> tuple[Verdict, bool]:
        # The technician has repaired what tripped the monitor; latched alarms are cleared.
        self._stuck_green_mask = 0
        self._latched_alarms = 0
        if self._step is _Step.FAULT_FLASH:
            self._enter(_Step.STARTUP_ALL_RED, self._now + self._config.startup_all_red_ds)
        return OK, False

    _COMMANDS: dict[CommandCode, Callable[[SignalProgram, Command, Plan | None],
                                          tuple[Verdict, bool]]] = {
        CommandCode.NONE: _cmd_none,
        CommandCode.COMMIT_CENTRAL: _cmd_commit_central,
        CommandCode.COMMIT_LOCAL: _cmd_commit_local,
        CommandCode.HOLD: _cmd_hold,
        CommandCode.FORCE: _cmd_force,
        CommandCode.FLASH: _cmd_flash,
        CommandCode.RELEASE: _cmd_release,
        CommandCode.CLEAR_FAULT: _cmd_clear_fault,
    }

    def _reject(self, reason: Reason) -> None:
        self._last_result = CommandResult.REJECTED
        self._last_reason = reason

    # ------------------------------------------------------------------ lamps and the monitor

    def _intended_lamps(self) -> LampState:
        now = self._now
        if self._step in _FLASH_STEPS:
            return LampState(now, 0, 0, 0, self._all_mask, 0, 0)
        green, yellow = self._green_mask, self._yellow_mask
        walk = ped_clear = 0
        for p in phases_of(green):
            t = self._timing[p - 1]
            if not t.ped_walk_ds:
                continue
            into = now - self._green_onset_ds.get(p, now)
            if into < t.ped_walk_ds:
                walk |= 1 << (p - 1)
            elif into < t.ped_walk_ds + t.ped_clear_ds:
                ped_clear |= 1 << (p - 1)
        red = self._all_mask & ~green & ~yellow
        return LampState(now, red, yellow, green, 0, walk, ped_clear)

    def _next_ped_change_ds(self) -> int | None:
        soonest: int | None = None
        for p in phases_of(self._green_mask):
            t = self._timing[p - 1]
            if not t.ped_walk_ds:
                continue
            onset = self._green_onset_ds.get(p, self._now)
            for at in (onset + t.ped_walk_ds, onset + t.ped_walk_ds + t.ped_clear_ds):
                if at > self._now and (soonest is None or at < soonest):
                    soonest = at
        return soonest

    def _conflicting(self, green_mask: int) -> bool:
        return any(self._identity.conflicts[p - 1] & green_mask for p in phases_of(green_mask))

    def _refresh_lamps(self) -> None:
        """The conflict monitor judges the outputs (with stuck drivers); then they go out."""
        lamps = self._intended_lamps()
        if self._step not in _FLASH_STEPS and self._stuck_green_mask:
            # In flash the transfer relays bypass the load switches: a stuck driver shows nothing.
            green = lamps.green_mask | self._stuck_green_mask
            if self._conflicting(green):
                self._trip(_ALARM["conflict"] | _ALARM["internal_fault"])
            elif self._stuck_green_mask & (lamps.red_mask | lamps.yellow_mask):
                self._trip(_ALARM["internal_fault"])  # dual indication: a lamp fault
            lamps = self._intended_lamps()
        elif self._conflicting(lamps.green_mask):  # pragma: no cover - the sequencer's own bug
            self._trip(_ALARM["conflict"] | _ALARM["internal_fault"])
            lamps = self._intended_lamps()
        last = self._lamps
        if last is not None and (last.red_mask, last.yellow_mask, last.green_mask,
                                 last.flash_mask, last.walk_mask, last.ped_clear_mask) == (
                lamps.red_mask, lamps.yellow_mask, lamps.green_mask, lamps.flash_mask,
                lamps.walk_mask, lamps.ped_clear_mask):
            return
        self._lamps = lamps
        if self._on_lamps is not None:
            self._on_lamps(lamps)

    def _trip(self, alarms: int) -> None:
        """Fail-safe flash at once: the monitor does not wait for yellow or minimum greens."""
        self._latched_alarms |= alarms
        self._clear_override()
        self._enter(_Step.FAULT_FLASH, None)

    # ------------------------------------------------------------------ status pieces

    def _mode(self) -> tuple[UnitMode, ModeReason]:
        step = self._step
        if step is _Step.STARTUP_FLASH:
            return UnitMode.FLASH, ModeReason.STARTUP
        if step is _Step.FAULT_FLASH:
            return UnitMode.FLASH, ModeReason.INTERNAL_FAULT
        if step is _Step.FLASH:
            return UnitMode.FLASH, ModeReason.OVERRIDE
        if self._plan_central:
            mode = UnitMode.CENTRAL
        elif self._identity.local_actuated:
            mode = UnitMode.LOCAL_ACTUATED
        else:
            mode = UnitMode.LOCAL_FIXED
        if step is _Step.STARTUP_ALL_RED:
            return mode, ModeReason.STARTUP
        if self._override is not Override.NONE:
            return mode, ModeReason.OVERRIDE
        if not self._plan_central and self._central is not None and self._watchdog_expired:
            return mode, ModeReason.WATCHDOG
        return mode, ModeReason.NORMAL

    def _time_left_ds(self) -> int:
        end = self._step_end()
        if self._step is _Step.FLASH and self._override_until_ds is not None:
            end = self._override_until_ds
        if end is None:
            return INDEFINITE_DS
        return min(max(0, end - self._now), MAX_TIME_LEFT_DS)

    def _override_left_ds(self) -> int:
        if self._override is Override.NONE:
            return 0
        if self._override_until_ds is None:
            return INDEFINITE_DS
        return min(max(0, self._override_until_ds - self._now), MAX_TIME_LEFT_DS)

    def _watchdog_left_ds(self) -> int:
        if self._central is None or self._watchdog_expired:
            return 0
        if not self._plan_central:
            return self._watchdog_timeout_ds  # armed when the central plan comes into force
        return min(max(0, self._last_kick_ds + self._watchdog_timeout_ds - self._now),
                   MAX_TIME_LEFT_DS)

    def _alarm_bits(self) -> int:
        bits = self._latched_alarms
        if self._central is not None and self._watchdog_expired:
            bits |= _ALARM["watchdog_expired"]
        diag = self._config.diagnostics
        if any(loop.reading(self._now, diag).status is not DetectorStatus.OK
               for loop in self._loops):
            bits |= _ALARM["detector_fault"]
        return bits

    def _loop(self, detector: int) -> _Loop:
        if not 1 <= detector <= len(self._loops):
            raise ValueError(f"detector {detector} outside 1..{len(self._loops)}")
        return self._loops[detector - 1]
