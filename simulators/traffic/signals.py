"""Safe signal transitions: a requested green becomes yellow, all-red, then the new green.

Owns the per-intersection interval state (green / yellow / all-red), the minimum green and
the red-yellow-green strings set in SUMO. It must not choose phases (controllers do); it only
refuses to cut a green short or to skip yellow and all-red between conflicting greens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.traffic.discovery import GREEN_CHARS, TrafficLight

KEEP = -1  # a request meaning "no change"


@dataclass(frozen=True)
class TransitionTimes:
    """Clearance and minimum green every phase change obeys (seconds)."""

    yellow_s: float = 3.0  # PKJI / Indonesian practice: 3 s amber
    all_red_s: float = 1.0
    min_green_s: float = 5.0


def yellow_state(from_state: str, to_state: str) -> str:
    """Links green now and not green next turn yellow; links green in both stay green."""
    out = []
    for a, b in zip(from_state, to_state, strict=True):
        if a in GREEN_CHARS:
            out.append(a if b in GREEN_CHARS else "y")
        else:
            out.append(a if a in "rs" else "r")
    return "".join(out)


def all_red_state(from_state: str, to_state: str) -> str:
    """Only links green in both phases keep green; everything else shows red."""
    return "".join(a if (a in GREEN_CHARS and b in GREEN_CHARS) else "r"
                   for a, b in zip(from_state, to_state, strict=True))


class _Interval:
    GREEN, YELLOW, ALL_RED = "green", "yellow", "all-red"


class PhaseDriver:
    """Drives every traffic light's lamps from green-phase requests, one simulation step at a time."""

    def __init__(self, api: Any, lights: tuple[TrafficLight, ...], times: TransitionTimes) -> None:
        self._api = api
        self._lights = lights
        self.times = times
        n = len(lights)
        self.current = [0] * n  # green phase index shown or last shown
        self.target = [0] * n
        self.interval = [_Interval.GREEN] * n
        self.entered_s = [0.0] * n  # when the current interval began
        self._shown = [""] * n

    def start(self, t_s: float) -> None:
        for i, tl in enumerate(self._lights):
            self.entered_s[i] = t_s
            self._set(i, tl.greens[0].state)

    def request(self, i: int, green: int) -> None:
        """Ask intersection ``i`` for green phase ``green`` (KEEP: no change); honoured safely."""
        if green == KEEP or self.interval[i] != _Interval.GREEN:
            return  # a transition under way finishes to the target it started for
        if not 0 <= green < len(self._lights[i].greens):
            raise ValueError(f"{self._lights[i].tls_id}: green phase {green} does not exist")
        self.target[i] = green

    def green_elapsed_s(self, i: int, t_s: float) -> float:
        return t_s - self.entered_s[i] if self.interval[i] == _Interval.GREEN else 0.0

    def clearance_left_s(self, i: int, t_s: float) -> float:
        since = t_s - self.entered_s[i]
        if self.interval[i] == _Interval.YELLOW:
            return max(self.times.yellow_s - since, 0.0) + self.times.all_red_s
        if self.interval[i] == _Interval.ALL_RED:
            return max(self.times.all_red_s - since, 0.0)
        return 0.0

    def in_green(self, i: int) -> bool:
        return self.interval[i] == _Interval.GREEN

    def step(self, t_s: float) -> None:
        """Advance the interval timers to ``t_s`` and set any lamp string that changes."""
        times = self.times
        for i, tl in enumerate(self._lights):
            cur, tgt, since = self.current[i], self.target[i], t_s - self.entered_s[i]
            a, b = tl.greens[cur].state, tl.greens[tgt].state
            if self.interval[i] == _Interval.GREEN:
                if tgt != cur and since >= times.min_green_s:
                    self._enter(i, _Interval.YELLOW, t_s, yellow_state(a, b))
                    if times.yellow_s <= 0:
                        self._after_yellow(i, t_s, a, b)
            elif self.interval[i] == _Interval.YELLOW:
                if since >= times.yellow_s:
                    self._after_yellow(i, t_s, a, b)
            elif since >= times.all_red_s:
                self._to_green(i, t_s, b)

    def _after_yellow(self, i: int, t_s: float, a: str, b: str) -> None:
        if self.times.all_red_s > 0:
            self._enter(i, _Interval.ALL_RED, t_s, all_red_state(a, b))
        else:
            self._to_green(i, t_s, b)

    def _to_green(self, i: int, t_s: float, state: str) -> None:
        self.current[i] = self.target[i]
        self._enter(i, _Interval.GREEN, t_s, state)

    def _enter(self, i: int, interval: str, t_s: float, state: str) -> None:
        self.interval[i] = interval
        self.entered_s[i] = t_s
        self._set(i, state)

    def _set(self, i: int, state: str) -> None:
        if state != self._shown[i]:
            self._api.trafficlight.setRedYellowGreenState(self._lights[i].tls_id, state)
            self._shown[i] = state
