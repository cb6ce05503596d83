"""Detectors placed as a city would, and what they report each control interval.

Owns the generated SUMO additional file (a stop-line induction loop per incoming lane, a
camera zone of limited length ending at the stop line, and an exit camera zone at the start
of each outgoing lane, where a city watches for blocking back; for the max-pressure baseline
only, 200 m zones on incoming and outgoing lanes) and the readings turned into arrays per
intersection and detector. It must not hand out vehicle ids or positions: counts,
occupancy and queue lengths are all a controller ever sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from simulators.traffic.discovery import TrafficLight

LOOP_SETBACK_M = 1.5  # loop centre before the stop line: it sees vehicles leaving on green
CAMERA_ZONE_M = 50.0  # a pole-mounted camera covers about 50 m of approach
PRESSURE_ZONE_M = 200.0  # Varaiya (2013) max-pressure as benchmarked: queues within 200 m
NEVER_RESET_S = 10_000_000  # aggregation period longer than any run: counters only grow


@dataclass(frozen=True)
class DetectorLayout:
    """Detector ids per intersection, padded to the widest intersection (D = max lanes)."""

    lights: tuple[TrafficLight, ...]
    loop_ids: tuple[tuple[str, ...], ...]  # [I][d]: loop on incoming_lanes[d]
    zone_ids: tuple[tuple[str, ...], ...]  # [I][d]: camera zone on incoming_lanes[d]
    zone_length_m: tuple[tuple[float, ...], ...]
    exit_ids: tuple[tuple[str, ...], ...]  # [I][e]: exit zone on outgoing_lanes[e]
    pressure_zone_ids: dict[str, str]  # lane → 200 m zone id (max-pressure only)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.lights), max((len(x) for x in self.loop_ids), default=0)

    @property
    def exit_shape(self) -> tuple[int, int]:
        return len(self.lights), max((len(x) for x in self.exit_ids), default=0)


def _zone_m(lane_length_m: float, wanted_m: float) -> float:
    # Short lanes get a zone as long as the lane, less a hair: SUMO wants pos >= 0.
    return max(0.1, min(wanted_m, lane_length_m - 0.01))


def plan_layout(lights: tuple[TrafficLight, ...], *, pressure_zones: bool) -> DetectorLayout:
    loops, zones, zone_len, exits = [], [], [], []
    n = e = 0
    for tl in lights:
        exits.append(tuple(f"kp_exit_{e + k}" for k in range(len(tl.outgoing_lanes))))
        e += len(tl.outgoing_lanes)
        loops.append(tuple(f"kp_loop_{n + d}" for d in range(len(tl.incoming_lanes))))
        zones.append(tuple(f"kp_zone_{n + d}" for d in range(len(tl.incoming_lanes))))
        zone_len.append(tuple(_zone_m(tl.lane_length_m[ln], CAMERA_ZONE_M)
                              for ln in tl.incoming_lanes))
        n += len(tl.incoming_lanes)
    pz: dict[str, str] = {}
    if pressure_zones:
        for tl in lights:
            for ln in (*tl.incoming_lanes, *tl.outgoing_lanes):
                pz.setdefault(ln, f"kp_mp_{len(pz)}")
    return DetectorLayout(lights, tuple(loops), tuple(zones), tuple(zone_len), tuple(exits), pz)


def write_additional(layout: DetectorLayout, path: Path) -> Path:
    """The SUMO additional file defining every detector of ``layout``; returns ``path``."""
    rows = ["<additional>"]
    common = f'period="{NEVER_RESET_S}" file="/dev/null"'
    for tl, loops, zones, zlen in zip(layout.lights, layout.loop_ids, layout.zone_ids,
                                      layout.zone_length_m, strict=True):
        for lane, loop, zone, zone_m in zip(tl.incoming_lanes, loops, zones, zlen, strict=True):
            length = tl.lane_length_m[lane]
            pos = max(0.0, length - LOOP_SETBACK_M)
            rows.append(f'  <inductionLoop id="{loop}" lane={quoteattr(lane)} pos="{pos:.2f}" '
                        f'{common}/>')
            rows.append(f'  <laneAreaDetector id="{zone}" lane={quoteattr(lane)} '
                        f'pos="{length - zone_m:.2f}" endPos="{length:.2f}" {common}/>')
    for tl, exits in zip(layout.lights, layout.exit_ids, strict=True):
        for lane, exit_zone in zip(tl.outgoing_lanes, exits, strict=True):
            zone_m = _zone_m(tl.lane_length_m[lane], CAMERA_ZONE_M)
            rows.append(f'  <laneAreaDetector id="{exit_zone}" lane={quoteattr(lane)} '
                        f'pos="0.00" endPos="{zone_m:.2f}" {common}/>')
    lengths = {ln: m for tl in layout.lights for ln, m in tl.lane_length_m.items()}
    incoming = {ln for tl in layout.lights for ln in tl.incoming_lanes}
    for lane, zone in layout.pressure_zone_ids.items():
        length = lengths[lane]
        zone_m = _zone_m(length, PRESSURE_ZONE_M)
        # Incoming: the last 200 m before the stop line; outgoing: the first 200 m after it.
        start = length - zone_m if lane in incoming else 0.0
        rows.append(f'  <laneAreaDetector id="{zone}" lane={quoteattr(lane)} '
                    f'pos="{start:.2f}" endPos="{start + zone_m:.2f}" {common}/>')
    rows.append("</additional>")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class DetectorReport:
    """What the detectors reported over the last interval, as arrays [I, D] (D padded).

    count_veh: vehicles over the stop-line loop; occupancy_pct: share of the interval the loop
    was occupied; queue_veh: vehicles standing in a jam within the camera zone at the end of the
    interval; zone_veh / zone_occupancy_pct: vehicles in the zone and its occupancy then;
    valid: False on padding. Exit zones ([I, E], E padded over outgoing lanes) see vehicles
    just past the intersection: a full exit means the street beyond is backed up.
    """

    count_veh: np.ndarray
    occupancy_pct: np.ndarray
    queue_veh: np.ndarray
    zone_veh: np.ndarray
    zone_occupancy_pct: np.ndarray
    valid: np.ndarray
    exit_veh: np.ndarray  # [I, E]: vehicles in the exit zone of outgoing lane e now
    exit_queue_veh: np.ndarray  # [I, E]: of those, standing in a jam (blocking back)
    exit_valid: np.ndarray  # [I, E]: False on padding
    interval_s: float


class DetectorReader:
    """Reads the detectors of a layout; counts and occupancy are per interval between reads."""

    def __init__(self, api: Any, layout: DetectorLayout, begin_s: float) -> None:
        self._api = api
        self._layout = layout
        shape = layout.shape
        self._valid = np.zeros(shape, dtype=bool)
        for i, loops in enumerate(layout.loop_ids):
            self._valid[i, :len(loops)] = True
        self._begin_s = begin_s
        self._last_t_s = begin_s
        self._last_count = np.zeros(shape)
        self._last_occupied_s = np.zeros(shape)
        self._exit_valid = np.zeros(layout.exit_shape, dtype=bool)
        for i, exits in enumerate(layout.exit_ids):
            self._exit_valid[i, :len(exits)] = True

    def read(self, t_s: float) -> DetectorReport:
        loop, zone = self._api.inductionloop, self._api.lanearea
        shape = self._layout.shape
        count_cum = np.zeros(shape)
        occupied_cum_s = np.zeros(shape)
        queue = np.zeros(shape)
        zone_veh = np.zeros(shape)
        zone_occ = np.zeros(shape)
        since_begin_s = max(t_s - self._begin_s, 1e-9)
        for i, (loops, zones) in enumerate(zip(self._layout.loop_ids, self._layout.zone_ids,
                                               strict=True)):
            for d, (lp, zn) in enumerate(zip(loops, zones, strict=True)):
                count_cum[i, d] = loop.getIntervalVehicleNumber(lp)
                # Interval occupancy is the mean since the (never reset) interval began.
                occupied_cum_s[i, d] = loop.getIntervalOccupancy(lp) / 100.0 * since_begin_s
                queue[i, d] = zone.getJamLengthVehicle(zn)
                zone_veh[i, d] = zone.getLastStepVehicleNumber(zn)
                zone_occ[i, d] = zone.getLastStepOccupancy(zn)
        exit_veh = np.zeros(self._layout.exit_shape)
        exit_queue = np.zeros(self._layout.exit_shape)
        for i, exits in enumerate(self._layout.exit_ids):
            for e, ez in enumerate(exits):
                exit_veh[i, e] = zone.getLastStepVehicleNumber(ez)
                exit_queue[i, e] = zone.getJamLengthVehicle(ez)
        interval_s = max(t_s - self._last_t_s, 1e-9)
        count = np.maximum(count_cum - self._last_count, 0.0)
        occupancy = np.clip((occupied_cum_s - self._last_occupied_s) / interval_s * 100.0,
                            0.0, 100.0)
        self._last_t_s, self._last_count, self._last_occupied_s = t_s, count_cum, occupied_cum_s
        return DetectorReport(count, occupancy, queue, zone_veh, zone_occ, self._valid.copy(),
                              exit_veh, exit_queue, self._exit_valid.copy(), interval_s)

    def pressure_zone_veh(self) -> dict[str, int]:
        """Vehicles now within 200 m of the stop line (incoming) or after it (outgoing), by lane."""
        zone = self._api.lanearea
        return {lane: int(zone.getLastStepVehicleNumber(z))
                for lane, z in self._layout.pressure_zone_ids.items()}
