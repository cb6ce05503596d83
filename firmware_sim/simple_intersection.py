"""A simple simulated intersection: fixed-time signal, detectors with synthetic traffic, faults.

A stand-in until the Modbus controller emulator exists: it speaks no protocol, an edge poller
calls ``fetch()`` directly. Time comes from an injected clock (seconds), so tests can run a
day in a second. It must not import edge/ or controlroom/: its signal and mode values are
plain strings that happen to match the contract's (``G``/``Y``/``R``/``y``, ``local_fixed``…).
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Clearance after every green (DESIGN.md: yellow 3 s per PKJI practice; all-red 2 s).
YELLOW_S = 3.0
ALL_RED_S = 2.0
CLEARANCE_S = YELLOW_S + ALL_RED_S
MIN_GREEN_S = 5.0
MIN_SPLIT_S = MIN_GREEN_S + CLEARANCE_S  # a phase's share of the cycle includes its clearance
SPLIT_SUM_TOLERANCE_S = 0.5
MAX_COUNT = 65535  # a detector's count per interval fits 16 bits, like the real register

# Share of the peak-hour flow per hour of the local day (00..23): a morning peak at 07:00
# (school and office start in Indonesian cities), a midday plateau and a lower evening peak.
HOURLY_FLOW_FACTOR: tuple[float, ...] = (
    0.08, 0.05, 0.04, 0.04, 0.08, 0.30, 0.75, 1.00, 0.85, 0.60, 0.55, 0.58,
    0.62, 0.58, 0.55, 0.62, 0.78, 0.90, 0.70, 0.50, 0.38, 0.28, 0.18, 0.12,
)
# Mean time one vehicle covers a ~2 m loop at urban speed, vehicle length included.
VEHICLE_ON_LOOP_S = 0.35
WIB_UTC_OFFSET_S = 7 * 3600


class Lamp(enum.StrEnum):
    GREEN = "G"
    YELLOW = "Y"
    RED = "R"
    FLASH_YELLOW = "y"


class Mode(enum.StrEnum):
    LOCAL_FIXED = "local_fixed"
    CENTRAL = "central"
    FLASH = "flash"


class SimulatedDeviceError(Exception):
    """Root of the simulated intersection's errors."""


class DeviceUnavailable(SimulatedDeviceError):
    """The device does not answer (fault injected with ``set_offline``)."""


class CommandRejected(SimulatedDeviceError):
    """The device refused a plan or an override; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Plan:
    number: int
    cycle_s: float
    offset_s: float
    splits_s: tuple[float, ...]  # per phase: green + yellow + all-red

    @property
    def greens_s(self) -> tuple[float, ...]:
        return tuple(split - CLEARANCE_S for split in self.splits_s)


@dataclass(frozen=True, slots=True)
class IntersectionSnapshot:
    """What one fetch reads: the signal now and detector totals since the previous fetch."""

    intersection_id: str
    at_s: float  # device clock
    interval_s: float  # time the detector counts cover
    mode: str
    plan: int | None
    cycle_timer_s: float | None  # None while an override holds the cycle
    signal: tuple[str, ...]
    det_count: tuple[int, ...]
    det_occupancy_pct: tuple[float, ...]
    det_fault: tuple[bool, ...]


class _Stage(enum.Enum):
    GREEN = "green"
    YELLOW = "yellow"
    ALL_RED = "all_red"


def check_plan(plan: Plan, phases: int) -> None:
    """Raise CommandRejected unless the plan is safe for ``phases`` phases."""
    if len(plan.splits_s) != phases:
        raise CommandRejected(f"plan has {len(plan.splits_s)} splits, the intersection has {phases} phases")
    short = [i + 1 for i, s in enumerate(plan.splits_s) if s < MIN_SPLIT_S]
    if short:
        raise CommandRejected(f"splits of phases {short} are under {MIN_SPLIT_S:g} s "
                              f"(min green {MIN_GREEN_S:g} s + yellow + all-red)")
    if abs(sum(plan.splits_s) - plan.cycle_s) > SPLIT_SUM_TOLERANCE_S:
        raise CommandRejected(f"splits add up to {sum(plan.splits_s):g} s, not the cycle of {plan.cycle_s:g} s")


def equal_splits(cycle_s: float, phases: int) -> tuple[float, ...]:
    return tuple(cycle_s / phases for _ in range(phases))


class SimpleIntersection:
    """Fixed-time controller plus detectors; thread-safe (a poller and a command worker share it)."""

    def __init__(
        self,
        intersection_id: str,
        *,
        phases: int = 4,
        detectors: int = 8,
        cycle_s: float = 60.0,
        peak_veh_per_h: float = 900.0,
        seed: int = 0,
        fault_every_s: float | None = None,
        clock: Callable[[], float] = time.time,
        utc_offset_s: float = WIB_UTC_OFFSET_S,
        model: str = "kota-sim-intersection",
        firmware: str = "1.0",
    ) -> None:
        self.intersection_id = intersection_id
        self.phases = phases
        self.detectors = detectors
        self.model = model
        self.firmware = firmware
        self._peak_veh_per_s = peak_veh_per_h / 3600.0
        self._clock = clock
        self._utc_offset_s = utc_offset_s
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        local = Plan(0, cycle_s, 0.0, equal_splits(cycle_s, phases))
        check_plan(local, phases)  # raises CommandRejected: the constructor's arguments are unsafe
        self._local_plan = local
        self._plan = local
        self._central = False
        self._pending: Plan | None = None
        self._offline = False
        self._faults = [False] * detectors
        # A scheduled fault on detector 1: faulty in every odd period of fault_every_s.
        self._fault_every_s = fault_every_s if detectors else None
        self._fault_epoch_s = clock()
        self._hold = False  # hold the current (or next) green until release
        self._force_to: int | None = None  # phase index to go to (and hold)
        self._flash = False
        now = clock()
        # Power-up: an all-red interval, then phase 1 starts the first cycle.
        self._phase = phases - 1
        self._stage = _Stage.ALL_RED
        self._stage_start_s = now
        self._stage_end_s = now + ALL_RED_S
        self._cycle_start_s = now + ALL_RED_S
        self._last_fetch_s = now

    # ------------------------------------------------------------------ fault injection

    def set_offline(self, offline: bool) -> None:
        with self._lock:
            self._offline = offline

    def set_detector_fault(self, index: int, faulty: bool) -> None:
        with self._lock:
            self._faults[index] = faulty

    def _fault_states(self, now: float) -> tuple[bool, ...]:
        faults = list(self._faults)
        if self._fault_every_s is not None:
            period = int((now - self._fault_epoch_s) // self._fault_every_s)
            faults[0] = faults[0] or period % 2 == 1
        return tuple(faults)

    # ------------------------------------------------------------------ device interface

    def fetch(self) -> IntersectionSnapshot:
        """Read the device; raises DeviceUnavailable when it is offline."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._offline:
                raise DeviceUnavailable(f"intersection {self.intersection_id}: controller does not answer")
            interval_s = max(0.0, now - self._last_fetch_s)
            self._last_fetch_s = now
            faults = self._fault_states(now)
            counts, occupancy = self._traffic(now, interval_s, faults)
            return IntersectionSnapshot(
                intersection_id=self.intersection_id,
                at_s=now,
                interval_s=interval_s,
                mode=self._mode(),
                plan=self._plan.number if self._central else None,
                cycle_timer_s=self._cycle_timer(now),
                signal=self._signal(),
                det_count=counts,
                det_occupancy_pct=occupancy,
                det_fault=faults,
            )

    def apply_plan(self, number: int, cycle_s: float, offset_s: float, splits_s: Sequence[float]) -> None:
        """Accept a central plan; it takes effect at the start of the next cycle (a safe point)."""
        plan = Plan(number, cycle_s, offset_s, tuple(splits_s))
        with self._lock:
            self._require_online()
            check_plan(plan, self.phases)
            self._advance(self._clock())  # so "next cycle" means the one after now
            self._pending = plan

    def override(self, action: str, phase: int | None = None) -> None:
        """hold (current green), force (to ``phase`` and hold), flash, release."""
        with self._lock:
            self._require_online()
            now = self._clock()
            self._advance(now)
            if action == "hold":
                self._hold = True
                if self._stage is _Stage.GREEN:
                    self._stage_end_s = math.inf
            elif action == "force":
                if phase is None or not 1 <= phase <= self.phases:
                    raise CommandRejected(f"force needs a phase 1..{self.phases}")
                if self._flash:
                    raise CommandRejected("release flash before forcing a phase")
                self._force_to = phase - 1
                self._hold = True
                if self._stage is _Stage.GREEN and self._phase != self._force_to:
                    # Leave the current green no earlier than its minimum green.
                    self._stage_end_s = max(now, self._stage_start_s + MIN_GREEN_S)
                elif self._stage is _Stage.GREEN:
                    self._stage_end_s = math.inf
            elif action == "flash":
                self._flash = True
            elif action == "release":
                self._release(now)
            else:
                raise CommandRejected(f"unknown override {action!r}")

    # ------------------------------------------------------------------ internals (lock held)

    def _require_online(self) -> None:
        if self._offline:
            raise DeviceUnavailable(f"intersection {self.intersection_id}: controller does not answer")

    def _release(self, now: float) -> None:
        was_flashing = self._flash
        self._hold = False
        self._force_to = None
        self._flash = False
        if was_flashing:
            # Leaving flash: a start-up all-red, then phase 1 opens a new cycle.
            self._phase, self._stage = self.phases - 1, _Stage.ALL_RED
            self._stage_start_s, self._stage_end_s = now, now + ALL_RED_S
        elif self._stage is _Stage.GREEN and math.isinf(self._stage_end_s):
            green_s = self._plan.greens_s[self._phase]
            self._stage_end_s = max(now, self._stage_start_s + min(green_s, MIN_GREEN_S))

    def _advance(self, now: float) -> None:
        if self._flash:
            return
        while now >= self._stage_end_s:
            t = self._stage_end_s
            if self._stage is _Stage.GREEN:
                self._enter(_Stage.YELLOW, t, t + YELLOW_S)
            elif self._stage is _Stage.YELLOW:
                self._enter(_Stage.ALL_RED, t, t + ALL_RED_S)
            else:
                if self._force_to is not None:
                    self._phase = self._force_to
                else:
                    self._phase = (self._phase + 1) % self.phases
                if self._phase == 0:
                    self._cycle_start_s = t
                    if self._pending is not None:
                        self._plan, self._pending, self._central = self._pending, None, True
                held = self._hold and (self._force_to is None or self._force_to == self._phase)
                end = math.inf if held else t + self._plan.greens_s[self._phase]
                self._enter(_Stage.GREEN, t, end)

    def _enter(self, stage: _Stage, start_s: float, end_s: float) -> None:
        self._stage, self._stage_start_s, self._stage_end_s = stage, start_s, end_s

    def _mode(self) -> str:
        if self._flash:
            return Mode.FLASH
        if self._central or self._hold:
            return Mode.CENTRAL
        return Mode.LOCAL_FIXED

    def _cycle_timer(self, now: float) -> float | None:
        if self._flash or self._hold:
            return None
        return max(0.0, now - self._cycle_start_s) % self._plan.cycle_s

    def _signal(self) -> tuple[str, ...]:
        if self._flash:
            return tuple(Lamp.FLASH_YELLOW for _ in range(self.phases))
        lamps = [Lamp.RED] * self.phases
        if self._stage is _Stage.GREEN:
            lamps[self._phase] = Lamp.GREEN
        elif self._stage is _Stage.YELLOW:
            lamps[self._phase] = Lamp.YELLOW
        return tuple(lamps)

    def _traffic(self, now: float, interval_s: float,
                 faults: tuple[bool, ...]) -> tuple[tuple[int, ...], tuple[float, ...]]:
        hour = int(((now + self._utc_offset_s) % 86400) // 3600)
        mean = self._peak_veh_per_s * HOURLY_FLOW_FACTOR[hour] * interval_s
        raw = self._rng.poisson(mean, self.detectors) if self.detectors else np.zeros(0, dtype=int)
        counts = []
        occupancy = []
        for i, n in enumerate(int(x) for x in raw):
            if faults[i]:  # a faulty loop reports nothing
                counts.append(0)
                occupancy.append(0.0)
                continue
            counts.append(min(n, MAX_COUNT))
            busy_s = n * VEHICLE_ON_LOOP_S
            occupancy.append(round(min(100.0, 100.0 * busy_s / interval_s), 1) if interval_s > 0 else 0.0)
        return tuple(counts), tuple(occupancy)
