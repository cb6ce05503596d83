"""SUMO's vehicles on an intersection's approaches, drawn as a pole-mounted camera sees them.

Owns the pictures of one intersection's incoming lanes (top-down, one lane per band, travel
left to right, the stop line at a fixed x, with simulators.camera's road, bodies, lighting
and sensor noise) at a fixed frame rate between SUMO steps, and the detection zones a city
would draw on them (a virtual loop where the stop-line loop would be, then a chain of queue
zones back to the end of the camera zone), in image coordinates. Exit cameras look at the
first metres of the outgoing lanes the same way, the junction at the left edge, with a
chain of zones from the junction on. It reads vehicle positions,
being the world, but hands out only pixels and polygons; it must not know the detectors
that watch the frames.

SUMO steps 1 s in most scenarios, in which a car at 50 km/h moves 14 m: far past a 1.5 m
virtual loop. Frames in between place each vehicle along its own odometer (linear within the
step), which is what a camera filming continuous motion would show.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.camera.scene import (
    HEIGHT,
    LANE_PX,
    PX_PER_M,
    WIDTH,
    Body,
    Condition,
    SensorNoise,
    Zone,
    body_colour,
    draw_scene,
    lighting_gain,
    road_background,
)
from simulators.traffic.detectors import CAMERA_ZONE_M, LOOP_SETBACK_M
from simulators.traffic.discovery import TrafficLight

STOP_X = 616                         # stop line, px: 51 m of approach and 2 m beyond in view
EXIT_X = 24                          # exit views: where the outgoing lane starts, px
MAX_LANES_PER_VIEW = 7               # 7 bands of 42 px fit 360 px; more lanes, more cameras
VIRTUAL_LOOP_M = 1.5                 # zone length, centred where the stop-line loop lies
# A standing queue of SUMO's default cars (5 m + 2.5 m gap) puts one car in each queue zone.
QUEUE_PITCH_M = 7.5
QUEUE_ZONE_M = 7.0
ZONE_INSET_PX = 5                    # zones stop short of the lane markings, as drawn by hand
_BEYOND_M = (WIDTH - STOP_X) / PX_PER_M + 0.5


@dataclass(frozen=True, slots=True)
class CameraView:
    """One camera's frame: which lanes are its bands (top to bottom) and its zones.

    ``loops[k]`` is the virtual loop's zone id on ``lanes[k]``; ``queues[k]`` its queue
    zones from the stop line back (the chain a ZoneDetector reads a queue from). An exit
    view (``exit``) shows outgoing lanes from their start: no loops, and its chains run from
    the junction on.
    """

    lanes: tuple[str, ...]
    lane_length_m: tuple[float, ...]
    road_top: int
    zones: tuple[Zone, ...]
    loops: tuple[str, ...]
    queues: tuple[tuple[str, ...], ...]
    exit: bool = False

    def band(self, k: int) -> tuple[int, int]:
        """Upper and lower pixel row of band ``k``."""
        top = self.road_top + k * LANE_PX
        return top, top + LANE_PX


def x_px(metres_before_stop: float) -> float:
    """Image column of a point ``metres_before_stop`` upstream of the stop line."""
    return STOP_X - metres_before_stop * PX_PER_M


def _box(top: int, bottom: int, near_m: float, far_m: float) -> tuple[tuple[int, int], ...]:
    x0, x1 = round(x_px(far_m)), round(x_px(near_m))
    y0, y1 = top + ZONE_INSET_PX, bottom - ZONE_INSET_PX
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def plan_view(lanes: Sequence[str], lane_length_m: Sequence[float],
              zone_length_m: Sequence[float]) -> CameraView:
    """The frame for ``lanes`` (at most MAX_LANES_PER_VIEW) with its zones.

    Each lane gets a virtual loop of VIRTUAL_LOOP_M centred LOOP_SETBACK_M before the stop
    line, and as many QUEUE_ZONE_M zones every QUEUE_PITCH_M as fit in its camera zone.
    """
    if not 0 < len(lanes) <= MAX_LANES_PER_VIEW:
        raise ValueError(f"a view shows 1 to {MAX_LANES_PER_VIEW} lanes, not {len(lanes)}")
    road_top = (HEIGHT - len(lanes) * LANE_PX) // 2
    zones: list[Zone] = []
    loops, queues = [], []
    for k, (lane, zone_m) in enumerate(zip(lanes, zone_length_m, strict=True)):
        top, bottom = road_top + k * LANE_PX, road_top + (k + 1) * LANE_PX
        half = VIRTUAL_LOOP_M / 2
        loop = Zone(f"{lane}/loop", _box(top, bottom, LOOP_SETBACK_M - half,
                                         LOOP_SETBACK_M + half))
        zones.append(loop)
        loops.append(loop.zone_id)
        chain = []
        # At least one queue zone, cut to the lane on very short lanes.
        for j in range(max(1, int((min(zone_m, CAMERA_ZONE_M) + 1e-6) // QUEUE_PITCH_M))):
            near = j * QUEUE_PITCH_M
            far = min(near + QUEUE_ZONE_M, max(zone_m, VIRTUAL_LOOP_M))
            zones.append(Zone(f"{lane}/q{j}", _box(top, bottom, near, far)))
            chain.append(zones[-1].zone_id)
        queues.append(tuple(chain))
    return CameraView(tuple(lanes), tuple(float(x) for x in lane_length_m), road_top,
                      tuple(zones), tuple(loops), tuple(queues))


def exit_before_stop_m(pos_m: float) -> float:
    """Where a point ``pos_m`` along an outgoing lane is drawn, in x_px's terms."""
    return (STOP_X - EXIT_X) / PX_PER_M - pos_m


def plan_exit_view(lanes: Sequence[str], lane_length_m: Sequence[float]) -> CameraView:
    """The frame for outgoing ``lanes`` (at most MAX_LANES_PER_VIEW): per lane QUEUE_ZONE_M
    zones every QUEUE_PITCH_M from the lane's start, over its exit camera zone (≤ 50 m)."""
    if not 0 < len(lanes) <= MAX_LANES_PER_VIEW:
        raise ValueError(f"a view shows 1 to {MAX_LANES_PER_VIEW} lanes, not {len(lanes)}")
    road_top = (HEIGHT - len(lanes) * LANE_PX) // 2
    zones: list[Zone] = []
    chains = []
    for k, (lane, length) in enumerate(zip(lanes, lane_length_m, strict=True)):
        top, bottom = road_top + k * LANE_PX, road_top + (k + 1) * LANE_PX
        zone_m = min(CAMERA_ZONE_M, length)
        chain = []
        for j in range(max(1, int((zone_m + 1e-6) // QUEUE_PITCH_M))):
            near = j * QUEUE_PITCH_M
            far = min(near + QUEUE_ZONE_M, zone_m)
            zones.append(Zone(f"{lane}/x{j}", _box(top, bottom, exit_before_stop_m(far),
                                                   exit_before_stop_m(near))))
            chain.append(zones[-1].zone_id)
        chains.append(tuple(chain))
    return CameraView(tuple(lanes), tuple(float(x) for x in lane_length_m), road_top,
                      tuple(zones), (), tuple(chains), exit=True)


def _pack(lanes: Sequence[str]) -> list[list[str]]:
    """Whole approaches (edges) per camera, in the lanes' order, ≤ MAX_LANES_PER_VIEW each."""
    edges: dict[str, list[str]] = {}
    for lane in lanes:
        edges.setdefault(_edge(lane), []).append(lane)
    groups: list[list[str]] = []
    for members in edges.values():
        for start in range(0, len(members), MAX_LANES_PER_VIEW):
            part = members[start:start + MAX_LANES_PER_VIEW]
            if groups and len(groups[-1]) + len(part) <= MAX_LANES_PER_VIEW:
                groups[-1].extend(part)
            else:
                groups.append(list(part))
    return groups


def plan_exit_views(light: TrafficLight) -> tuple[CameraView, ...]:
    """Exit cameras for ``light``'s outgoing lanes, packed as plan_views packs approaches."""
    return tuple(plan_exit_view(g, [light.lane_length_m[ln] for ln in g])
                 for g in _pack(light.outgoing_lanes))


def plan_views(light: TrafficLight, zone_length_m: Sequence[float]) -> tuple[CameraView, ...]:
    """Cameras for ``light``'s incoming lanes: whole approaches (edges) per camera, packed in
    the lanes' order, at most MAX_LANES_PER_VIEW lanes each. ``zone_length_m`` follows
    ``light.incoming_lanes`` (the camera zone each lane has in the DetectorLayout)."""
    zone_of = dict(zip(light.incoming_lanes, zone_length_m, strict=True))
    return tuple(plan_view(g, [light.lane_length_m[ln] for ln in g], [zone_of[ln] for ln in g])
                 for g in _pack(light.incoming_lanes))


@dataclass(frozen=True, slots=True)
class DrawnVehicle:
    """A vehicle to draw: its band, its front's distance before the stop line (negative once
    past it), and its size in metres."""

    band: int
    front_before_stop_m: float
    length_m: float
    width_m: float
    motorcycle: bool = False
    colour_key: int = 0


def bodies(view: CameraView, vehicles: Sequence[DrawnVehicle]) -> list[Body]:
    """Pixel bodies of ``vehicles`` in ``view``; those entirely out of frame are left out."""
    out = []
    for v in vehicles:
        x1 = round(x_px(v.front_before_stop_m))
        x0 = x1 - round(v.length_m * PX_PER_M)
        if x1 <= 0 or x0 >= WIDTH:
            continue
        top, _ = view.band(v.band)
        width = min(round(v.width_m * PX_PER_M), LANE_PX - 2)
        y0 = top + (LANE_PX - width) // 2
        out.append(Body((x0, y0, x1, y0 + width), body_colour(v.colour_key), v.motorcycle))
    return out


class ViewPainter:
    """One camera's picture model: its background, sensor, lighting; deterministic by seed."""

    def __init__(self, view: CameraView, condition: Condition = "day", seed: int = 1,
                 drift_period_s: float = 240.0, drift_amplitude: float = 0.15) -> None:
        self.view = view
        self.condition = condition
        art = np.random.default_rng(seed + 7919)
        # An exit view has no stop line in the picture: its lane lines run across the frame.
        self._background = road_background(art, len(view.lanes), condition,
                                           road_top=view.road_top,
                                           stop_x=WIDTH + 40 if view.exit else STOP_X,
                                           opposing_lanes=0)
        self._sensor = SensorNoise(art, condition)
        self._rng = np.random.default_rng(seed)
        self._drift = (drift_period_s, drift_amplitude)

    def paint(self, vehicles: Sequence[DrawnVehicle], t_s: float) -> np.ndarray:
        """BGR uint8 HEIGHT×WIDTH×3 frame of ``vehicles`` at ``t_s``."""
        clean = draw_scene(self._background, bodies(self.view, vehicles), self.condition,
                           lighting_gain(t_s, *self._drift))
        return self._sensor.apply(clean, self._rng)


def _edge(lane: str) -> str:
    return lane.rsplit("_", 1)[0]


@dataclass(slots=True)
class _Track:
    lane: str
    prev_m: float                     # position along ``lane`` at the previous step
    now_m: float                      # and at this one (past the lane's end once it left)
    anchor_m: float                   # lane position and odometer it is extrapolated from
    anchor_odo_m: float               # after leaving the lane
    on_lane: bool
    length_m: float
    width_m: float
    motorcycle: bool
    colour_key: int


class IntersectionVideo:
    """Frames of SUMO's vehicles on one or more camera views, ``fps`` per simulated second.

    Call ``advance(t_s)`` after every SUMO step: it returns the frames whose times fall in
    the step just done, each a tuple with one picture per view.
    """

    def __init__(self, api: Any, views: Sequence[CameraView], *, fps: float = 5.0,
                 condition: Condition = "day", seed: int = 1, t_s: float = 0.0) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self._api = api
        self.views = tuple(views)
        self.fps = fps
        self._painters = [ViewPainter(v, condition, seed + 101 * k)
                          for k, v in enumerate(self.views)]
        self._where = {lane: (k, b) for k, v in enumerate(self.views)
                       for b, lane in enumerate(v.lanes)}
        self._length = {lane: m for v in self.views
                        for lane, m in zip(v.lanes, v.lane_length_m, strict=True)}
        self._exit_lanes = {lane for v in self.views if v.exit for lane in v.lanes}
        # By (vehicle, on an exit view): a fast vehicle can be past the junction one step
        # after it was short of the stop line, and the approach camera must still see it
        # cross its virtual loop in the frames between, while the exit camera picks it up.
        self._tracks: dict[tuple[str, bool], _Track] = {}
        self._t_s = t_s
        self._next_frame = int(np.floor(t_s * fps + 1e-9)) + 1
        self.frames = 0
        self._read(first=True)

    def _new_track(self, vid: str, lane: str, pos_m: float, odo_m: float,
                   first: bool) -> _Track:
        vt = self._api.vehicle
        # Where it was a step ago, from its speed (it has just come onto the lane).
        prev = pos_m if first else pos_m - float(vt.getSpeed(vid)) * self._step_s()
        return _Track(lane, prev, pos_m, pos_m, odo_m, True, float(vt.getLength(vid)),
                      float(vt.getWidth(vid)), vt.getVehicleClass(vid) == "motorcycle",
                      zlib.crc32(vid.encode()))

    def _step_s(self) -> float:
        return float(self._api.simulation.getDeltaT())

    def _read(self, first: bool = False) -> None:
        """Move every track to where SUMO has its vehicle now."""
        lane_api, vt = self._api.lane, self._api.vehicle
        seen: set[tuple[str, bool]] = set()
        for lane in self._where:
            for vid in lane_api.getLastStepVehicleIDs(lane):
                key = (vid, lane in self._exit_lanes)
                seen.add(key)
                pos, odo = float(vt.getLanePosition(vid)), float(vt.getDistance(vid))
                tr = self._tracks.get(key)
                if tr is None or (tr.lane != lane and not (
                        tr.on_lane and _edge(tr.lane) == _edge(lane))):
                    self._tracks[key] = self._new_track(vid, lane, pos, odo, first)
                    continue
                # A lane change on the same approach keeps its place along the road.
                tr.prev_m, tr.now_m = tr.now_m, pos
                tr.lane, tr.on_lane, tr.anchor_m, tr.anchor_odo_m = lane, True, pos, odo
        for key in [k for k in self._tracks if k not in seen]:
            vid, tr = key[0], self._tracks[key]
            try:
                odo = float(vt.getDistance(vid))
                lane_now = vt.getLaneID(vid)
            except self._api.TraCIException:
                del self._tracks[key]  # arrived or teleported away
                continue
            length = self._length[tr.lane]
            if tr.lane in self._exit_lanes or (tr.on_lane and _edge(lane_now) == _edge(tr.lane)):
                # Gone down the street, far beyond an exit camera's view; or changed to a
                # lane of the approach no camera watches.
                del self._tracks[key]
                continue
            # Past the stop line: carried on along the lane's line by its own odometer until
            # it is out of the picture.
            tr.on_lane = False
            tr.prev_m, tr.now_m = tr.now_m, tr.anchor_m + odo - tr.anchor_odo_m
            if tr.prev_m - tr.length_m > length + _BEYOND_M:
                del self._tracks[key]

    def _vehicles(self, frac: float) -> list[list[DrawnVehicle]]:
        out: list[list[DrawnVehicle]] = [[] for _ in self.views]
        for tr in self._tracks.values():
            k, band = self._where[tr.lane]
            pos = tr.prev_m + (tr.now_m - tr.prev_m) * frac
            before_m = (exit_before_stop_m(pos) if tr.lane in self._exit_lanes
                        else self._length[tr.lane] - pos)
            out[k].append(DrawnVehicle(band, before_m, tr.length_m, tr.width_m,
                                       tr.motorcycle, tr.colour_key))
        return out

    def advance(self, t_s: float) -> list[tuple[float, tuple[np.ndarray, ...]]]:
        """After SUMO stepped to ``t_s``: the frames due since the last call, in time order."""
        t0 = self._t_s
        self._read()
        self._t_s = t_s
        out = []
        while self._next_frame / self.fps <= t_s + 1e-9:
            ft = self._next_frame / self.fps
            frac = (ft - t0) / (t_s - t0) if t_s > t0 else 1.0
            per_view = self._vehicles(min(max(frac, 0.0), 1.0))
            out.append((ft, tuple(p.paint(vs, ft) for p, vs in zip(self._painters, per_view,
                                                                     strict=True))))
            self._next_frame += 1
            self.frames += len(self.views)
        return out
