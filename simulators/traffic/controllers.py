"""Signal controllers the traffic world can run, behind one small adapter interface.

Owns the baselines: `fixed` (the network's own program), `actuated` (SUMO's actuated logic on
the same phases) and `maxpressure` (Varaiya 2013), plus a seeded random controller for tests.
A controller sees only detector reports and its own signal status, never vehicles; the
runner owns SUMO and the phase driver, so a controller must not call SUMO except to select a
program SUMO runs natively.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from xml.sax.saxutils import quoteattr

import numpy as np

from simulators.traffic.detectors import DetectorReport
from simulators.traffic.discovery import TrafficLight
from simulators.traffic.signals import KEEP, TransitionTimes

ACTUATED_PROGRAM_ID = "kota-actuated"
ACTUATED_MIN_GREEN_S = 5.0  # netconvert's --tls.min-dur default
ACTUATED_MAX_GREEN_S = 50.0  # netconvert's --tls.max-dur default


@dataclass(frozen=True)
class SignalStatus:
    """What a signal controller knows of itself, per intersection [I]."""

    current_green: np.ndarray  # index into TrafficLight.greens (the one left, in a change)
    target_green: np.ndarray  # the green being changed to (= current when not changing)
    green_elapsed_s: np.ndarray  # 0 while in yellow / all-red
    clearance_left_s: np.ndarray  # yellow + all-red still to run; 0 in green
    in_green: np.ndarray


@dataclass(frozen=True)
class Observation:
    """One decision's input: detector report, own signal status, and (max-pressure only) 200 m zones."""

    t_s: float
    detectors: DetectorReport
    signals: SignalStatus
    pressure_zone_veh: dict[str, int]


class Controller:
    """Adapter every controller implements; the base itself is the network's own program."""

    name: ClassVar[str] = "fixed"
    decision_interval_s: ClassVar[float | None] = None  # None: SUMO runs the signals itself
    needs_pressure_zones: ClassVar[bool] = False
    times: TransitionTimes = TransitionTimes()

    def program_additional(self, lights: tuple[TrafficLight, ...]) -> str | None:
        """Extra SUMO additional-file content (e.g. a program to switch to), or None."""
        return None

    def begin(self, api: Any, lights: tuple[TrafficLight, ...]) -> None:
        """Called once after SUMO loaded; native controllers may select their program here."""

    def decide(self, obs: Observation) -> list[int]:
        """Requested green phase per intersection (KEEP for no change)."""
        return [KEEP] * len(obs.signals.current_green)


class FixedController(Controller):
    """The network's own signal program, untouched."""

    name = "fixed"


class ActuatedController(Controller):
    """SUMO's gap-based actuated control on the network's own phases and clearances.

    Green phases keep their min/max if the network gives a range; otherwise they get
    netconvert's actuated defaults (min 5 s, max 50 s or the fixed duration if longer).
    SUMO places its own stop-line detectors for actuated programs.
    """

    name = "actuated"

    def program_additional(self, lights: tuple[TrafficLight, ...]) -> str:
        rows: list[str] = []
        for tl in lights:
            greens = {g.program_index for g in tl.greens}
            rows.append(f'  <tlLogic id={quoteattr(tl.tls_id)} type="actuated" '
                        f'programID="{ACTUATED_PROGRAM_ID}" offset="0">')
            for k, (state, dur) in enumerate(zip(tl.program_states, tl.program_durations_s,
                                                 strict=True)):
                attrs = f'duration="{dur:g}" state="{state}"'
                if k in greens:
                    g = next(x for x in tl.greens if x.program_index == k)
                    lo, hi = (g.min_s, g.max_s) if g.min_s < g.max_s else (
                        min(ACTUATED_MIN_GREEN_S, dur), max(ACTUATED_MAX_GREEN_S, dur))
                    attrs += f' minDur="{lo:g}" maxDur="{hi:g}"'
                rows.append(f"    <phase {attrs}/>")
            rows.append("  </tlLogic>")
        return "\n".join(rows)

    def begin(self, api: Any, lights: tuple[TrafficLight, ...]) -> None:
        for tl in lights:
            api.trafficlight.setProgram(tl.tls_id, ACTUATED_PROGRAM_ID)


class MaxPressureController(Controller):
    """Max-pressure (Varaiya 2013) as RESCO benchmarks it.

    Every 10 s each intersection shows the green phase with the largest pressure,
    Σ over its movements of (vehicles within 200 m before the stop line on the incoming lane
    − vehicles within the first 200 m of the outgoing lane); a change costs 3 s of yellow.
    Ties keep the current phase.
    """

    name = "maxpressure"
    decision_interval_s = 10.0
    needs_pressure_zones = True
    times = TransitionTimes(yellow_s=3.0, all_red_s=0.0, min_green_s=0.0)

    def __init__(self) -> None:
        self._movements: list[list[tuple[tuple[str, str], ...]]] = []

    def begin(self, api: Any, lights: tuple[TrafficLight, ...]) -> None:
        self._movements = [[tuple(sorted(tl.movements(g))) for g in range(len(tl.greens))]
                           for tl in lights]

    def decide(self, obs: Observation) -> list[int]:
        q = obs.pressure_zone_veh
        out: list[int] = []
        for i, phases in enumerate(self._movements):
            pressure = [sum(q[a] - q[b] for a, b in moves) for moves in phases]
            best = max(pressure)
            cur = int(obs.signals.current_green[i])
            out.append(cur if pressure[cur] == best else pressure.index(best))
        return out


class RandomController(Controller):
    """Requests a random green every second (seeded): a fuzzer for the phase driver's safety."""

    name = "random"
    decision_interval_s = 1.0
    times = TransitionTimes(yellow_s=3.0, all_red_s=2.0, min_green_s=7.0)

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._n_greens: list[int] = []

    def begin(self, api: Any, lights: tuple[TrafficLight, ...]) -> None:
        self._n_greens = [len(tl.greens) for tl in lights]

    def decide(self, obs: Observation) -> list[int]:
        return [int(self._rng.integers(n)) for n in self._n_greens]


BASELINES: dict[str, type[Controller]] = {
    "fixed": FixedController,
    "actuated": ActuatedController,
    "maxpressure": MaxPressureController,
}
