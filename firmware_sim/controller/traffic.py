"""Traffic sources for the emulated controller: what puts vehicles on its loops.

``TrafficSource`` is the emulator's hook: anything that, asked for a span of emulated time and
the phases green over it, returns the loop presence changes in that span. Two sources live here:
``TrafficGenerator``, a small built-in one (Poisson arrivals per detector following a day
profile, a queue at each stop-line loop that holds the loop occupied on red and discharges on
green), and ``PresenceFeed``, presence pushed in from outside by a world simulator (SUMO in
``simulators/city``). They must not touch the signal program, Modbus or the clock itself (the
emulator feeds them the lamps and applies the changes). City-scale traffic lives in
``simulators/``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from firmware_sim.simple_intersection import HOURLY_FLOW_FACTOR, VEHICLE_ON_LOOP_S, WIB_UTC_OFFSET_S

DS_PER_S = 10
# Saturation headway at an Indonesian stop line: ~1,800 veh/h of green per lane (PKJI's 600 pcu/h
# per metre of width on a 3 m lane), i.e. one vehicle every 2 s.
DISCHARGE_HEADWAY_DS = 20.0
PRESENCE_DS = VEHICLE_ON_LOOP_S * DS_PER_S  # one vehicle crossing a ~2 m loop
PEAK_FLOW_VPH = 300.0  # per detector (lane) at the morning peak, traffic level 1
MAX_QUEUE_VEH = 60  # a lane's storage; arrivals beyond it are blocked upstream (spillback)

_PEAK_FACTOR = max(HOURLY_FLOW_FACTOR)

PresenceChange = tuple[int, int, bool]  # (time_ds, detector 1-based, present)


class TrafficSource(Protocol):
    """What the emulator asks of a traffic source every tick."""

    def step(self, from_ds: int, to_ds: int, green_mask: int) -> list[PresenceChange]:
        """Loop presence changes in (from_ds, to_ds], in time order, the phases of
        ``green_mask`` being green over the span."""
        ...


class PresenceFeed:
    """Loop presence pushed in by a world outside the controller (a traffic simulator).

    The world calls ``push`` as its vehicles cross the loops; the emulator's tick takes the
    changes due by then (``step``), in order. A change pushed for a time the controller has
    already passed takes effect at once (the program never goes back in time). Not thread-safe:
    push from the thread that runs the emulator.
    """

    def __init__(self, detectors: int) -> None:
        if detectors < 0:
            raise ValueError("a controller has no negative number of detectors")
        self.detectors = detectors
        self._pending: deque[PresenceChange] = deque()
        self._last_ds = 0
        self.pushed = 0  # presence changes received, for tests and logs

    def push(self, at_ds: int, detector: int, present: bool) -> None:
        """Loop ``detector`` (1-based) becomes occupied (or free) at ``at_ds``."""
        if not 1 <= detector <= self.detectors:
            raise ValueError(f"detector {detector} outside 1..{self.detectors}")
        # Kept in time order: a change dated before the last one pushed lands with it.
        at_ds = max(int(at_ds), self._last_ds)
        self._last_ds = at_ds
        self._pending.append((at_ds, detector, bool(present)))
        self.pushed += 1

    @property
    def pending(self) -> int:
        return len(self._pending)

    def step(self, from_ds: int, to_ds: int, green_mask: int) -> list[PresenceChange]:
        out: list[PresenceChange] = []
        while self._pending and self._pending[0][0] <= to_ds:
            out.append(self._pending.popleft())
        return out


@dataclass(slots=True)
class _Lane:
    """One detector's vehicles: the queue behind its loop and the vehicle on it."""

    call_phase: int  # 0: a counting loop mid-block, traffic never stops on it
    next_arrival_ds: float
    queue_veh: int = 0  # vehicles stopped at the line (the first one sits on the loop)
    crossing_until_ds: float | None = None  # a moving vehicle on the loop until then
    next_departure_ds: float = 0.0  # headway: the earliest the next vehicle may cross
    present: bool = False
    arrivals: int = 0
    blocked: int = 0  # arrivals turned away by a full queue


class TrafficGenerator:
    """Presence for ``len(detector_phases)`` loops; detector d calls phase ``detector_phases[d-1]``.

    ``level`` scales the day profile (0: no traffic, 1: a busy city street at 300 veh/h per lane
    at 07:00). Deterministic for a seed and a sequence of ``step`` calls.
    """

    def __init__(
        self,
        detector_phases: Sequence[int],
        *,
        level: float = 1.0,
        seed: int = 0,
        wall_s: Callable[[int], float] | None = None,
        utc_offset_s: float = WIB_UTC_OFFSET_S,
        peak_flow_vph: float = PEAK_FLOW_VPH,
        start_ds: int = 0,
    ) -> None:
        if level < 0:
            raise ValueError("traffic level must not be negative")
        self.level = level
        self._rng = random.Random(seed)
        self._wall_s = wall_s or (lambda now_ds: now_ds / DS_PER_S)
        self._utc_offset_s = utc_offset_s
        self._peak_per_ds = peak_flow_vph / 3600.0 / DS_PER_S
        self._lanes = [_Lane(p, 0.0) for p in detector_phases]
        for lane in self._lanes:
            lane.next_arrival_ds = self._next_arrival(start_ds)

    def hour_factor(self, now_ds: float) -> float:
        """Share of the peak flow at this instant's local hour (WIB by default)."""
        local_s = self._wall_s(int(now_ds)) + self._utc_offset_s
        return HOURLY_FLOW_FACTOR[int(local_s // 3600) % 24]

    def _next_arrival(self, after_ds: float) -> float:
        """Next arrival of a Poisson process whose rate follows the day profile (by thinning)."""
        top_per_ds = self._peak_per_ds * self.level * _PEAK_FACTOR
        if top_per_ds <= 0:
            return math.inf
        at = after_ds
        while True:
            at += self._rng.expovariate(top_per_ds)
            if self._rng.random() * _PEAK_FACTOR <= self.hour_factor(at):
                return at

    @property
    def queues_veh(self) -> tuple[int, ...]:
        return tuple(lane.queue_veh for lane in self._lanes)

    @property
    def arrivals(self) -> int:
        return sum(lane.arrivals for lane in self._lanes)

    def step(self, from_ds: int, to_ds: int, green_mask: int) -> list[PresenceChange]:
        """Vehicles moving in (from_ds, to_ds] with the phases of ``green_mask`` green.

        Returns the loop presence changes in time order. The lamps are taken as constant over
        the step; the emulator steps every tick (0.1 s of emulated time, or as fast as it can).
        """
        changes: list[PresenceChange] = []
        for index, lane in enumerate(self._lanes):
            green = lane.call_phase == 0 or bool(green_mask >> (lane.call_phase - 1) & 1)
            self._step_lane(index + 1, lane, float(from_ds), float(to_ds), green, changes)
        changes.sort(key=lambda c: c[0])
        return changes

    def _step_lane(self, detector: int, lane: _Lane, t: float, end: float, green: bool,
                   out: list[PresenceChange]) -> None:
        while True:
            # The next thing that happens on this lane, if it happens before ``end``.
            candidates = [lane.next_arrival_ds]
            if lane.crossing_until_ds is not None:
                candidates.append(lane.crossing_until_ds)
            if green and lane.queue_veh and lane.crossing_until_ds is None:
                candidates.append(max(t, lane.next_departure_ds))
            # An arrival drawn before the emulator started (or a stalled tick) happens now.
            at = max(t, min(candidates))
            if at > end:
                break
            t = at
            if lane.crossing_until_ds is not None and at >= lane.crossing_until_ds:
                lane.crossing_until_ds = None
            elif at >= lane.next_arrival_ds:
                lane.arrivals += 1
                lane.next_arrival_ds = self._next_arrival(at)
                if (green and not lane.queue_veh and lane.crossing_until_ds is None
                        and at >= lane.next_departure_ds):
                    self._cross(lane, at)
                elif lane.queue_veh < MAX_QUEUE_VEH:
                    lane.queue_veh += 1
                else:
                    lane.blocked += 1
            else:  # a queued vehicle leaves on green
                lane.queue_veh -= 1
                self._cross(lane, at)
            self._update_presence(detector, lane, at, green, out)
        self._update_presence(detector, lane, end, green, out)

    @staticmethod
    def _cross(lane: _Lane, at: float) -> None:
        lane.crossing_until_ds = at + PRESENCE_DS
        lane.next_departure_ds = at + DISCHARGE_HEADWAY_DS

    @staticmethod
    def _update_presence(detector: int, lane: _Lane, at: float, green: bool,
                         out: list[PresenceChange]) -> None:
        # The loop is occupied by a vehicle crossing it, or by the first one stopped on red.
        present = lane.crossing_until_ds is not None or (lane.queue_veh > 0 and not green)
        if present != lane.present:
            lane.present = present
            out.append((int(round(at)), detector, present))
