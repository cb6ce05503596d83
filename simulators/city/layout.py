"""The city layout the control room loads, and the edge side's controller addresses.

Owns two JSON documents written from the mapped lights: the layout (per intersection its
position, phases with their timing, movements = signalised incoming lanes with width,
protection and the next signalised intersection's detector on the receiving lane, detectors =
one stop-line loop per movement, index d being the controller's detector d + 1 and the index
in the telemetry ``det_*`` arrays; corridor coordination as ``upstream``/``travel_time_s``) and
the edge config (per intersection the controller's Modbus address). It must not run SUMO or
the emulators: everything comes in as values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlroom.timing.structure import MAX_DOWNSTREAM
from simulators.city.mapping import DS_PER_S, SignalMap

DEFAULT_LANE_WIDTH_M = 3.2


@dataclass(frozen=True)
class LaneGeometry:
    """What SUMO says of a lane: width, length, speed limit."""

    width_m: float
    length_m: float
    speed_ms: float


@dataclass(frozen=True)
class ControllerEndpoint:
    """Where an intersection's emulated controller answers Modbus TCP."""

    intersection_id: str
    tls_id: str
    name: str
    host: str
    port: int
    unit: int
    phases: int
    detectors: int

    def as_dict(self) -> dict[str, Any]:
        return {"intersection_id": self.intersection_id, "tls_id": self.tls_id,
                "name": self.name, "host": self.host, "port": self.port, "unit": self.unit,
                "phases": self.phases, "detectors": self.detectors}


def _seconds(ds: int) -> float:
    return ds / DS_PER_S


def build_layout(maps: Sequence[SignalMap], *, city: str,
                 positions: Mapping[str, tuple[float, float]],
                 lanes: Mapping[str, LaneGeometry],
                 names: Mapping[str, str] | None = None,
                 corridors: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """The layout document. ``positions``/``names`` by SUMO tls id; ``corridors`` are chains of
    tls ids, upstream first (each intersection's ``upstream`` is the one before it)."""
    names = names or {}
    detector_of: dict[str, tuple[str, int]] = {}
    for sm in maps:
        for d, lane in enumerate(sm.lanes):
            detector_of[lane] = (sm.intersection_id, d)
    by_tls = {sm.tls_id: sm for sm in maps}
    upstream: dict[str, tuple[str, float]] = {}
    for chain in corridors:
        for up, down in zip(chain, chain[1:], strict=False):
            if up in by_tls and down in by_tls:
                upstream[down] = (by_tls[up].intersection_id,
                                  _travel_s(by_tls[up], by_tls[down], lanes))
    out = []
    for sm in maps:
        x, y = positions.get(sm.tls_id, (0.0, 0.0))
        phases = []
        for p, served in enumerate(sm.phase_lanes):
            t = sm.config.timing[p]
            phases.append({"movements": list(served), "min_green_s": _seconds(t.min_green_ds),
                           "max_green_s": _seconds(t.max_green_ds),
                           "yellow_s": _seconds(t.yellow_ds), "all_red_s": _seconds(t.all_red_ds),
                           "ped_min_s": _seconds(t.ped_walk_ds + t.ped_clear_ds)})
        movements = []
        for m, lane in enumerate(sm.lanes):
            outs = sorted({lk.out_lane for lk in sm.light.links
                           if lk is not None and lk.in_lane == lane})
            down = sorted({detector_of[o] for o in outs if o in detector_of
                           and detector_of[o][0] != sm.intersection_id})[:MAX_DOWNSTREAM]
            geometry = lanes.get(lane)
            width = geometry.width_m if geometry is not None else DEFAULT_LANE_WIDTH_M
            movements.append({"width_m": round(width, 2), "protected": sm.protected[m],
                              "downstream": [[i, d] for i, d in down]})
        up = upstream.get(sm.tls_id)
        out.append({
            "id": sm.intersection_id, "name": names.get(sm.tls_id, sm.tls_id),
            "x": round(float(x), 2), "y": round(float(y), 2), "phases": phases,
            "movements": movements,
            "detectors": [{"movement": m, "counts": True, "queues": True}
                          for m in range(len(sm.lanes))],
            "cycle_min_s": None, "cycle_max_s": None,
            "upstream": up[0] if up else None,
            "travel_time_s": round(up[1], 1) if up else 0,
        })
    return {"city": city, "intersections": out}


def _travel_s(up: SignalMap, down: SignalMap, lanes: Mapping[str, LaneGeometry]) -> float:
    """Free-flow time from ``up``'s stop line to ``down``'s: the lanes joining them."""
    joining = {lk.out_lane for lk in up.light.links if lk is not None} & set(down.lanes)
    times = [lanes[ln].length_m / lanes[ln].speed_ms for ln in joining
             if ln in lanes and lanes[ln].speed_ms > 0]
    return min(times) if times else 0.0


def edge_config(endpoints: Sequence[ControllerEndpoint], *, city: str) -> dict[str, Any]:
    """What an orchestrator needs to write edge agent configs: one controller per intersection."""
    return {"city": city, "controllers": [e.as_dict() for e in endpoints]}


def write_json(document: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``document`` to ``path`` at once (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    partial.replace(path)
    return path
