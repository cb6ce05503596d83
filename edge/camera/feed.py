"""Camera zones as an intersection's detectors: intervals summed until the next telemetry, and
laid over the controller's own detector arrays.

Pure: no I/O, threads or clock. The camera agent adds each closed ``ZoneInterval``; the edge
agent, when it builds an intersection's telemetry, takes what came since the last one and lays
it over the reading, so the control room's adaptive core sees camera zones exactly like loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edge.camera.detectors import ZoneInterval
from edge.traffic import Reading

# The detector tamper names (edge.camera.detectors) in the contract's words, most serious first.
TAMPER_NAMES = {"covered": "blackout", "moved": "moved", "blurred": "blur", "frozen": "frozen"}
TAMPER_ORDER = ("blackout", "moved", "blur", "frozen")


def contract_tampers(active: frozenset[str] | set[str]) -> tuple[str, ...]:
    """The active tamper conditions in the contract's names, most serious first."""
    names = {TAMPER_NAMES[a] for a in active if a in TAMPER_NAMES}
    return tuple(n for n in TAMPER_ORDER if n in names)


@dataclass(frozen=True, slots=True)
class DetectorFeed:
    """What one zone reported since the last telemetry, as one detector."""

    count: int
    occupancy_pct: float
    fault: bool


class FeedAccumulator:
    """Per detector number: counts summed, occupancy averaged over frames, fault if any interval
    was faulty or no frame came. Zones without a detector number are not fed."""

    def __init__(self, detectors: Sequence[int | None]) -> None:
        self._detectors = tuple(detectors)  # per zone index: its detector number or None
        self._reset()

    def _reset(self) -> None:
        n = len(self._detectors)
        self._count = [0] * n
        self._on_frames = [0.0] * n
        self._frames = 0
        self._fault = False
        self._intervals = 0

    def add(self, interval: ZoneInterval) -> None:
        if len(interval.det_count) != len(self._detectors):
            raise ValueError(f"an interval of {len(interval.det_count)} zones for "
                             f"{len(self._detectors)} configured")
        for i, (count, occ) in enumerate(zip(interval.det_count, interval.det_occupancy_pct,
                                             strict=True)):
            self._count[i] += count
            self._on_frames[i] += occ / 100.0 * interval.frames
        self._frames += interval.frames
        self._fault |= any(interval.det_fault)
        self._intervals += 1

    def fault_all(self) -> None:
        """The camera cannot see (unreachable, tampered, turned away): its detectors are faulty."""
        self._fault = True

    def take(self) -> dict[int, DetectorFeed]:
        """What came since the last take, by detector number; resets."""
        frames = self._frames
        fault = self._fault or frames == 0
        out = {}
        for i, det in enumerate(self._detectors):
            if det is None:
                continue
            occ = 100.0 * self._on_frames[i] / frames if frames else 0.0
            out[det] = DetectorFeed(0 if fault else self._count[i],
                                    0.0 if fault else round(min(occ, 100.0), 1), fault)
        self._reset()
        return out


def feed_reading(reading: object, feeds: Mapping[int, DetectorFeed]) -> Reading:
    """``reading`` with detector k (1-based) replaced by ``feeds[k]``; arrays grow to the highest
    fed detector (detectors between, if any, read 0 and healthy)."""
    count = list(reading.det_count)  # type: ignore[attr-defined]
    occ = list(reading.det_occupancy_pct)  # type: ignore[attr-defined]
    fault = list(reading.det_fault)  # type: ignore[attr-defined]
    n = max([len(count), *feeds])
    count += [0] * (n - len(count))
    occ += [0.0] * (n - len(occ))
    fault += [False] * (n - len(fault))
    for det, feed in feeds.items():
        count[det - 1] = min(feed.count, 65535)
        occ[det - 1] = feed.occupancy_pct
        fault[det - 1] = feed.fault
    return Reading(reading.mode, reading.plan, reading.cycle_timer_s,  # type: ignore[attr-defined]
                   tuple(reading.signal), tuple(count), tuple(occ), tuple(fault))  # type: ignore[attr-defined]
