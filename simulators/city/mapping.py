"""How a SUMO traffic light becomes an emulated controller, and its lamps become SUMO's lamps.

Owns the correspondence, pure and static once the lights are discovered: each green phase of
the network's program is one controller phase and one stage of the local plan (phases that the
program never shows together conflict); its yellow and all-red (at least the controller's
floors of 3 s and 1 s) are the phase's clearance; each incoming lane a green serves is one
movement and one stop-line loop calling the first phase that gives it a priority green; the
local fixed plan is the network's own program. And back: a controller ``LampState`` as the
red-yellow-green string SUMO shows. It must not run SUMO or the emulator.

The controller's lamps are the truth: a link shows green only while a phase whose SUMO green
includes it is green at the controller; a link leaving its green shows yellow while that phase
is yellow, except a link green in every phase (a free turn), which keeps its green through the
change as in the network's own program. Flash (start-up, override or fail-safe) shows 'o'
(blinking, vehicles yield) on every link.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from devices.controller.codec import Identity, PhaseTiming, Plan
from devices.controller.registers import MAX_DETECTORS, MAX_PHASES
from firmware_sim.controller.program import ControllerConfig, LampState
from simulators.traffic.discovery import GREEN_CHARS, GreenPhase, TrafficLight
from simulators.traffic.errors import ScenarioError

log = logging.getLogger(__name__)

DS_PER_S = 10
VENDOR = "Kota Pintar"
MODEL = "KP-ATCS SUMO"  # the identity block holds 16 characters
FIRMWARE = "1.0.0"

# Controller timing derived from the network's program, within the controller's own floors.
YELLOW_FLOOR_DS = 30  # PKJI / Indonesian practice: 3 s amber
ALL_RED_FLOOR_DS = 10  # the controller always runs some all-red
MIN_GREEN_DS = 70  # 7 s, as the control room's timing core assumes …
MIN_GREEN_FLOOR_DS = 50  # … unless the network's green is shorter (never below 5 s)
MAX_GREEN_DS = 600  # 60 s, or the network's green when longer
MAX_GREEN_CEILING_DS = 1200
CYCLE_MIN_DS, CYCLE_MAX_DS = 300, 2400  # the controller's cycle bounds (Identity defaults)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # edge.contract's identifiers
FLASH_CHAR = "o"
RED_CHAR = "r"
YELLOW_CHAR = "y"


def _ds(seconds: float) -> int:
    return int(round(seconds * DS_PER_S))


def intersection_ids(tls_ids: Iterable[str]) -> dict[str, str]:
    """SUMO traffic light id → an intersection id the MQTT contract accepts, unique."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for tls in tls_ids:
        base = tls if ID_PATTERN.match(tls) else re.sub(r"[^A-Za-z0-9_.-]", "_", tls)
        base = ("tl" + base if not base[:1].isalnum() else base)[:60] or "tl"
        candidate, k = base, 1
        while candidate in taken:
            k += 1
            candidate = f"{base}-{k}"
        taken.add(candidate)
        out[tls] = candidate
    return out


@dataclass(frozen=True)
class SignalMap:
    """One SUMO traffic light as one emulated controller."""

    light: TrafficLight
    intersection_id: str
    greens: tuple[GreenPhase, ...]  # controller phase p + 1 = greens[p]
    lanes: tuple[str, ...]  # movement m = detector m + 1 = the stop-line loop on lanes[m]
    call_phases: tuple[int, ...]  # per detector, the 1-based phase its loop calls
    protected: tuple[bool, ...]  # per movement: every green link of its lane is a priority green
    config: ControllerConfig

    @property
    def tls_id(self) -> str:
        return self.light.tls_id

    @property
    def phase_count(self) -> int:
        return len(self.greens)

    @property
    def phase_lanes(self) -> tuple[tuple[int, ...], ...]:
        """Per phase (0-based), the movements it serves."""
        index = {lane: m for m, lane in enumerate(self.lanes)}
        return tuple(tuple(sorted(index[a] for a in _served(self.light, g) if a in index))
                     for g in self.greens)

    def sumo_state(self, lamps: LampState | None) -> str:
        """The red-yellow-green string SUMO shows for the controller's ``lamps``."""
        n = len(self.light.links)
        if lamps is None or lamps.flash_mask:
            return FLASH_CHAR * n
        states = [g.state for g in self.greens]
        out = [RED_CHAR] * n
        always = self._always_green
        for p, state in enumerate(states):
            bit = 1 << p
            if lamps.green_mask & bit:
                for i, c in enumerate(state):
                    if c in GREEN_CHARS and out[i] != "G":
                        out[i] = c
        for p, state in enumerate(states):
            if lamps.yellow_mask & (1 << p):
                for i, c in enumerate(state):
                    if c in GREEN_CHARS and out[i] == RED_CHAR:
                        out[i] = c if i in always else YELLOW_CHAR
        return "".join(out)

    @property
    def _always_green(self) -> frozenset[int]:
        greens = [g.green_links for g in self.greens]
        return frozenset.intersection(*greens) if greens else frozenset()


def _local_plan(greens_ds: list[int], clearance_ds: list[int], min_ds: list[int],
                max_ds: list[int]) -> Plan:
    """The network's program as a fixed-time plan, its cycle stretched or squeezed into bounds."""
    greens = [min(max(g, lo), hi) for g, lo, hi in zip(greens_ds, min_ds, max_ds, strict=True)]
    cycle = sum(greens) + sum(clearance_ds)
    if cycle < CYCLE_MIN_DS:
        room = [hi - g for g, hi in zip(greens, max_ds, strict=True)]
        need = CYCLE_MIN_DS - cycle
        for k in range(len(greens)):  # share the shortfall out evenly, within max greens
            add = min(room[k], -(-need // (len(greens) - k)))
            greens[k] += add
            need -= add
    elif cycle > CYCLE_MAX_DS:
        excess = cycle - CYCLE_MAX_DS
        for k in range(len(greens)):
            cut = min(greens[k] - min_ds[k], -(-excess // (len(greens) - k)))
            greens[k] -= cut
            excess -= cut
    splits = tuple(g + c for g, c in zip(greens, clearance_ds, strict=True))
    return Plan(1, sum(splits), 0, tuple(1 << k for k in range(len(splits))), splits)


def _served(light: TrafficLight, green: GreenPhase) -> frozenset[str]:
    links = green.green_links
    return frozenset(lk.in_lane for lk in light.links if lk is not None and lk.index in links)


def map_light(light: TrafficLight, intersection_id: str, *, local_actuated: bool = False,
              watchdog_timeout_ds: int = 300) -> SignalMap:
    """The controller for ``light``; raises ScenarioError when no controller can run it.

    A green phase that serves no lane (its green links control nothing, as some imported
    networks have) is left out: no controller phase, and its links stay red."""
    greens = tuple(g for g in light.greens if _served(light, g))
    n = len(greens)
    if not 2 <= n <= MAX_PHASES:
        raise ScenarioError(f"traffic light {light.tls_id}: {n} green phases serving lanes; "
                            f"an emulated controller runs 2..{MAX_PHASES}")
    served = [_served(light, g) for g in greens]
    lanes = tuple(lane for lane in light.incoming_lanes if any(lane in s for s in served))
    if len(lanes) > MAX_DETECTORS:
        raise ScenarioError(f"traffic light {light.tls_id}: {len(lanes)} signalised lanes; a "
                            f"controller has at most {MAX_DETECTORS} detectors")
    calls: list[int] = []
    protected: list[bool] = []
    for lane in lanes:
        links = [lk.index for lk in light.links if lk is not None and lk.in_lane == lane]
        prio = [g for g in range(n) if any(greens[g].state[i] == "G" for i in links)]
        any_green = [g for g in range(n) if lane in served[g]]
        calls.append((prio or any_green)[0] + 1)
        protected.append(all(greens[g].state[i] != "g" for g in any_green for i in links
                             if greens[g].state[i] in GREEN_CHARS))
    timing: list[PhaseTiming] = []
    greens_ds, clear_ds, min_ds, max_ds = [], [], [], []
    for g in greens:
        green = _ds(g.duration_s)
        min_green = max(MIN_GREEN_FLOOR_DS, min(MIN_GREEN_DS, green))
        max_green = min(MAX_GREEN_CEILING_DS, max(MAX_GREEN_DS, green))
        yellow = max(YELLOW_FLOOR_DS, _ds(g.yellow_s))
        all_red = max(ALL_RED_FLOOR_DS, _ds(g.all_red_s))
        timing.append(PhaseTiming(min_green, max_green, yellow, all_red, 0, 0))
        greens_ds.append(green)
        clear_ds.append(yellow + all_red)
        min_ds.append(min_green)
        max_ds.append(max_green)
    identity = Identity(vendor=VENDOR, model=MODEL, firmware=FIRMWARE,
                        serial=intersection_id[-12:], phase_count=n, detector_count=len(lanes),
                        min_green_floor_ds=MIN_GREEN_FLOOR_DS, cycle_min_ds=CYCLE_MIN_DS,
                        cycle_max_ds=CYCLE_MAX_DS, max_green_ceiling_ds=MAX_GREEN_CEILING_DS,
                        local_actuated=local_actuated,
                        conflicts=Identity.all_conflicting(n), detector_phase=tuple(calls))
    config = ControllerConfig(identity=identity, timing=tuple(timing),
                              local_plan=_local_plan(greens_ds, clear_ds, min_ds, max_ds),
                              watchdog_timeout_ds=watchdog_timeout_ds)
    return SignalMap(light, intersection_id, greens, lanes, tuple(calls), tuple(protected),
                     config)


def map_lights(lights: Iterable[TrafficLight], *, local_actuated: bool = False,
               watchdog_timeout_ds: int = 300) -> tuple[SignalMap, ...]:
    """A controller for every light that can have one; the others keep SUMO's own program."""
    lights = tuple(lights)
    ids = intersection_ids(tl.tls_id for tl in lights)
    out = []
    for tl in lights:
        try:
            out.append(map_light(tl, ids[tl.tls_id], local_actuated=local_actuated,
                                 watchdog_timeout_ds=watchdog_timeout_ds))
        except ScenarioError as e:
            log.warning("%s; left to its own program in SUMO", e)
    return tuple(out)
