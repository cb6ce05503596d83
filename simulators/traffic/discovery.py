"""What each traffic light of a running SUMO network controls, read through TraCI/libsumo.

Owns turning a signal program into green phases (with the yellow and all-red SUMO shows
after each), links (incoming lane → outgoing lane, one per signal-state character) and the
incoming and outgoing lanes. It must not change the simulation; it only reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

GREEN_CHARS = frozenset("Gg")
YELLOW_CHARS = frozenset("yY")


@dataclass(frozen=True)
class Link:
    """One signal-state character: a movement from an incoming lane to an outgoing lane."""

    index: int
    in_lane: str
    out_lane: str


@dataclass(frozen=True)
class GreenPhase:
    """A green phase of the network's program and the transition the network shows after it."""

    program_index: int
    state: str
    duration_s: float
    min_s: float
    max_s: float
    yellow_s: float  # sum of the yellow phases after it in the network's program
    all_red_s: float  # sum of the phases after it that are neither green nor yellow

    @property
    def green_links(self) -> frozenset[int]:
        return frozenset(i for i, c in enumerate(self.state) if c in GREEN_CHARS)


@dataclass(frozen=True)
class TrafficLight:
    """A signalised intersection as the simulator sees it: phases, links, lanes."""

    tls_id: str
    program_id: str
    program_states: tuple[str, ...]
    program_durations_s: tuple[float, ...]
    greens: tuple[GreenPhase, ...]
    links: tuple[Link | None, ...]  # by signal index; None where the index controls nothing
    incoming_lanes: tuple[str, ...]
    outgoing_lanes: tuple[str, ...]
    lane_length_m: dict[str, float]

    def movements(self, green: int) -> frozenset[tuple[str, str]]:
        """Distinct (incoming lane, outgoing lane) pairs the green phase ``green`` serves."""
        served = self.greens[green].green_links
        return frozenset((lk.in_lane, lk.out_lane) for lk in self.links
                         if lk is not None and lk.index in served)

    def served_incoming(self, green: int) -> frozenset[str]:
        return frozenset(a for a, _ in self.movements(green))


def _is_green(state: str) -> bool:
    return any(c in GREEN_CHARS for c in state) and not any(c in YELLOW_CHARS for c in state)


def _active_logic(api: Any, tls_id: str) -> Any:
    logics = api.trafficlight.getAllProgramLogics(tls_id)
    current = api.trafficlight.getProgram(tls_id)
    for logic in logics:
        if logic.programID == current:
            return logic
    return logics[0] if logics else None


def _greens(states: list[str], durations: list[float], mins: list[float],
            maxs: list[float]) -> tuple[GreenPhase, ...]:
    n = len(states)
    out: list[GreenPhase] = []
    seen: set[str] = set()
    for i, st in enumerate(states):
        if not _is_green(st) or st in seen:
            continue
        seen.add(st)
        yellow = all_red = 0.0
        j = (i + 1) % n
        while j != i and not _is_green(states[j]):
            if any(c in YELLOW_CHARS for c in states[j]):
                yellow += durations[j]
            else:
                all_red += durations[j]
            j = (j + 1) % n
        out.append(GreenPhase(i, st, durations[i], mins[i], maxs[i], yellow, all_red))
    return tuple(out)


def discover(api: Any) -> tuple[TrafficLight, ...]:
    """Every traffic light with at least two green phases (one green cannot be controlled)."""
    lights: list[TrafficLight] = []
    for tls_id in api.trafficlight.getIDList():
        logic = _active_logic(api, tls_id)
        if logic is None:
            log.warning("traffic light %s has no program; left alone", tls_id)
            continue
        phases = list(logic.phases)
        states = [p.state for p in phases]
        durations = [float(p.duration) for p in phases]
        mins = [float(p.minDur) for p in phases]
        maxs = [float(p.maxDur) for p in phases]
        greens = _greens(states, durations, mins, maxs)
        if len(greens) < 2:
            log.warning("traffic light %s has %d green phase(s) in program %s; nothing to "
                        "decide, left to its own program", tls_id, len(greens), logic.programID)
            continue
        links: list[Link | None] = []
        for index, group in enumerate(api.trafficlight.getControlledLinks(tls_id)):
            link = next((Link(index, a, b) for a, b, *_ in group if a and b), None)
            links.append(link)
        incoming = tuple(sorted({lk.in_lane for lk in links if lk is not None}))
        outgoing = tuple(sorted({lk.out_lane for lk in links if lk is not None}))
        lengths = {ln: float(api.lane.getLength(ln)) for ln in (*incoming, *outgoing)}
        lights.append(TrafficLight(tls_id, str(logic.programID), tuple(states),
                                   tuple(durations), greens, tuple(links), incoming,
                                   outgoing, lengths))
    return tuple(lights)
