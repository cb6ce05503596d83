"""A fixed camera over a signalised approach, rendered with NumPy/OpenCV, with exact truth.

Owns the traffic on the approach (IDM car following, a stop line with a fixed-time signal,
queues), the picture (day, night, noisy; shadows, headlights, lighting drift, sensor noise,
JPEG-like artefacts), camera tamper and the ground truth per detection zone. Deterministic
from a seed. It must not know anything of the detectors that watch it.

Top-down view, travel left to right, 12 px per metre at 640×360; an opposing carriageway
above carries traffic that no zone watches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 360
PX_PER_M = 12.0
LANE_PX = 42
ROAD_TOP = 117                      # first approach lane's upper edge
STOP_X = 440                        # stop line, px
SIM_DT_S = 0.1

Condition = Literal["day", "night", "noisy"]
Tamper = Literal["covered", "blurred", "moved", "frozen"]


@dataclass(frozen=True, slots=True)
class VehicleKind:
    name: str
    length_m: float
    width_m: float
    share: float
    v0_mps: tuple[float, float]
    accel_mps2: float
    gap_m: float
    headway_s: float


# Indonesian urban mix: mostly motorcycles (data, not an if chain).
KINDS: tuple[VehicleKind, ...] = (
    VehicleKind("motorcycle", 2.0, 0.8, 0.70, (8.0, 12.0), 2.5, 1.2, 0.9),
    VehicleKind("car", 4.4, 1.8, 0.24, (7.0, 11.0), 1.6, 1.8, 1.2),
    VehicleKind("truck", 10.0, 2.5, 0.06, (6.0, 9.0), 1.0, 2.2, 1.5),
)
_SHARES = np.array([k.share for k in KINDS])
_BODY_COLOURS = np.array([[40, 40, 160], [200, 200, 200], [30, 30, 30], [150, 90, 30],
                          [60, 140, 200], [230, 230, 235], [165, 165, 170], [40, 120, 40]])


@dataclass(slots=True)
class _Vehicle:
    vid: int
    kind: VehicleKind
    lane: int
    front_m: float                  # along the lane, in its direction of travel
    speed_mps: float
    v0_mps: float
    offset_px: int                  # lateral offset in the lane (motorcycles wander)
    colour: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Zone:
    """A detection zone: an id and a polygon in full-frame pixels."""

    zone_id: str
    polygon: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Truth:
    """What the picture at ``t_s`` shows, per zone in the order given to the scene."""

    t_s: float
    occupied: tuple[bool, ...]
    entered: tuple[frozenset[int], ...]     # vehicle ids that entered since the last frame
    red: bool


@dataclass(frozen=True, slots=True)
class SceneConfig:
    seed: int = 1
    condition: Condition = "day"
    lanes: int = 3
    arrivals_per_lane_s: float = 0.22
    cycle_s: float = 60.0
    green_s: float = 27.0
    yellow_s: float = 3.0
    drift_period_s: float = 240.0
    drift_amplitude: float = 0.15
    queue_depth: tuple[int, ...] = (3, 3, 2)   # zones per lane, from the stop line back
    zones: tuple[Zone, ...] | None = field(default=None)


def lane_y(lane: int) -> tuple[int, int]:
    """Upper and lower pixel row of an approach lane (0 is the upper one)."""
    top = ROAD_TOP + lane * LANE_PX
    return top, top + LANE_PX


def approach_zones(lanes: int = 3, queue_depth: Sequence[int] = (3, 3, 2)) -> tuple[Zone, ...]:
    """Per lane a 3 m stop-line zone, then 6 m queue zones every 7 m upstream.

    Ids are ``L{lane}Z{k}`` with k = 0 at the stop line, so a lane's chain is its ids in order.
    """
    zones = []
    for lane in range(lanes):
        top, bottom = lane_y(lane)
        depth = queue_depth[lane] if lane < len(queue_depth) else 1
        for k in range(depth):
            x1 = STOP_X if k == 0 else int(STOP_X - (4 + 7 * (k - 1)) * PX_PER_M)
            x0 = int(STOP_X - 3 * PX_PER_M) if k == 0 else int(x1 - 6 * PX_PER_M)
            zones.append(Zone(f"L{lane}Z{k}", ((x0, top + 5), (x1, top + 5), (x1, bottom - 5),
                                               (x0, bottom - 5))))
    return tuple(zones)


class Scene:
    """``frame(t_s)`` → (BGR uint8 360×640×3, Truth); time may only go forward (else replay)."""

    def __init__(self, config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        c = self.config
        self.zones = c.zones if c.zones is not None else approach_zones(c.lanes, c.queue_depth)
        self._zone_masks = []
        for z in self.zones:
            mask = np.zeros((HEIGHT, WIDTH), np.uint8)
            cv2.fillPoly(mask, [np.array(z.polygon, np.int32)], 1)
            ys, xs = np.nonzero(mask)
            self._zone_masks.append((mask.astype(bool), xs.min(), xs.max() + 1, ys.min(),
                                     ys.max() + 1))
        art = np.random.default_rng(c.seed + 7919)
        self._background = road_background(art, c.lanes, c.condition)
        self._sensor_model = SensorNoise(art, c.condition)
        self._signal_offset_s = float(art.uniform(0, c.cycle_s))
        self._reset()

    def _reset(self) -> None:
        self._rng = np.random.default_rng(self.config.seed)
        self._t = -40.0                 # a populated road at t = 0
        self._vehicles: list[_Vehicle] = []
        self._next_id = 1
        self._inside: list[set[int]] = [set() for _ in self.zones]
        self._frozen: np.ndarray | None = None

    # ------------------------------------------------------------------ traffic

    def red(self, t_s: float) -> bool:
        """Red or yellow for the approach (vehicles that can stop, stop)."""
        c = self.config
        return (t_s + self._signal_offset_s) % c.cycle_s >= c.green_s

    def _lanes_total(self) -> int:
        return self.config.lanes + 2    # two opposing lanes, no zones, no signal

    def _road_m(self) -> float:
        return WIDTH / PX_PER_M

    def _step(self) -> None:
        c, rng = self.config, self._rng
        red = self.red(self._t)
        stop_m = STOP_X / PX_PER_M
        by_lane: dict[int, list[_Vehicle]] = {}
        for v in self._vehicles:
            by_lane.setdefault(v.lane, []).append(v)
        for lane in range(self._lanes_total()):
            rate = c.arrivals_per_lane_s * (0.6 if lane >= c.lanes else 1.0)
            queue = sorted(by_lane.get(lane, []), key=lambda v: -v.front_m)
            if rng.random() < rate * SIM_DT_S:
                kind = KINDS[int(rng.choice(len(KINDS), p=_SHARES))]
                last = queue[-1] if queue else None
                room = (last.front_m - last.kind.length_m) if last else 1e9
                if room > kind.gap_m + 1.0:
                    v0 = float(rng.uniform(*kind.v0_mps))
                    lane_px = LANE_PX - int(kind.width_m * PX_PER_M) - 6
                    offset = int(rng.integers(-lane_px // 2, lane_px // 2 + 1)) if lane_px > 0 else 0
                    colour = tuple(int(x) for x in _BODY_COLOURS[rng.integers(len(_BODY_COLOURS))])
                    speed = min(v0, last.speed_mps if last else v0)
                    new = _Vehicle(self._next_id, kind, lane, 0.0, speed, v0, offset, colour)
                    self._next_id += 1
                    self._vehicles.append(new)
                    queue.append(new)
            leader: _Vehicle | None = None
            for v in queue:
                k = v.kind
                gaps = []
                if leader is not None:
                    gaps.append((leader.front_m - leader.kind.length_m - v.front_m,
                                 v.speed_mps - leader.speed_mps, k.gap_m))
                if lane < c.lanes and red and v.front_m < stop_m:
                    d = stop_m - v.front_m
                    if d >= v.speed_mps ** 2 / (2 * 3.0):   # can stop comfortably: stops
                        gaps.append((d, v.speed_mps, 0.3))
                acc = k.accel_mps2 * (1 - (v.speed_mps / v.v0_mps) ** 4)
                for s, dv, s0 in gaps:      # IDM (Treiber 2000), interaction term
                    s_star = s0 + max(0.0, v.speed_mps * k.headway_s
                                      + v.speed_mps * dv / (2 * np.sqrt(k.accel_mps2 * 2.0)))
                    acc = min(acc, k.accel_mps2 * (1 - (v.speed_mps / v.v0_mps) ** 4
                                                   - (s_star / max(s, 0.05)) ** 2))
                v.speed_mps = max(0.0, v.speed_mps + acc * SIM_DT_S)
                v.front_m += v.speed_mps * SIM_DT_S
                if leader is not None:      # never overlap, whatever the integration did
                    v.front_m = min(v.front_m, leader.front_m - leader.kind.length_m - 0.2)
                leader = v
        end = self._road_m()
        self._vehicles = [v for v in self._vehicles if v.front_m - v.kind.length_m < end + 1]
        self._t += SIM_DT_S

    def _rect(self, v: _Vehicle) -> tuple[int, int, int, int]:
        """Body as (x0, y0, x1, y1) in pixels, x1/y1 exclusive."""
        length = int(round(v.kind.length_m * PX_PER_M))
        width = int(round(v.kind.width_m * PX_PER_M))
        front = int(round(v.front_m * PX_PER_M))
        if v.lane < self.config.lanes:
            top, _ = lane_y(v.lane)
            x0, x1 = front - length, front
        else:                           # opposing traffic, right to left, above the median
            top = ROAD_TOP - 8 - (v.lane - self.config.lanes + 1) * LANE_PX
            x0, x1 = WIDTH - front, WIDTH - front + length
        y0 = top + (LANE_PX - width) // 2 + v.offset_px
        return x0, y0, x1, y0 + width

    # ------------------------------------------------------------------ picture

    def frame(self, t_s: float, tamper: Tamper | None = None) -> tuple[np.ndarray, Truth]:
        if t_s < self._t - SIM_DT_S / 2:
            self._reset()
        while self._t + SIM_DT_S / 2 <= t_s:
            self._step()
        truth = self._truth(t_s)
        if tamper == "frozen" and self._frozen is not None:
            return self._frozen.copy(), truth
        clean = self._render_clean(t_s)
        if tamper == "covered":
            clean = np.full_like(clean, 6)
        elif tamper == "blurred":
            clean = cv2.GaussianBlur(clean, (0, 0), 5.0)
        elif tamper == "moved":
            m = np.float32([[1, 0, 48], [0, 1, 30]])
            clean = cv2.warpAffine(clean, m, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
        out = self._sensor(clean)
        if tamper is None:
            self._frozen = out
        elif tamper == "frozen":
            self._frozen = out
        return out.copy(), truth

    def _truth(self, t_s: float) -> Truth:
        occupied, entered = [], []
        rects = [(v.vid, self._rect(v)) for v in self._vehicles if v.lane < self.config.lanes]
        for i, (mask, zx0, zx1, zy0, zy1) in enumerate(self._zone_masks):
            now = set()
            for vid, (x0, y0, x1, y1) in rects:
                ax0, ax1, ay0, ay1 = max(x0, zx0), min(x1, zx1), max(y0, zy0), min(y1, zy1)
                if ax0 < ax1 and ay0 < ay1 and mask[ay0:ay1, ax0:ax1].any():
                    now.add(vid)
            entered.append(frozenset(now - self._inside[i]))
            self._inside[i] = now
            occupied.append(bool(now))
        return Truth(t_s, tuple(occupied), tuple(entered), self.red(t_s))

    def _render_clean(self, t_s: float) -> np.ndarray:
        c = self.config
        bodies = [Body(self._rect(v), v.colour, v.kind.name == "motorcycle", v.lane < c.lanes)
                  for v in self._vehicles]
        return draw_scene(self._background, bodies, c.condition,
                          lighting_gain(t_s, c.drift_period_s, c.drift_amplitude))

    def _sensor(self, clean: np.ndarray) -> np.ndarray:
        return self._sensor_model.apply(clean, self._rng)


# --------------------------------------------------------------------------- picture model
# Shared by every rendered camera (this scene, simulators.traffic.video): the road, vehicle
# bodies, lighting and the sensor. Pure drawing, no traffic.


@dataclass(frozen=True, slots=True)
class Body:
    """A vehicle as the camera sees it from above: (x0, y0, x1, y1) px, x1/y1 exclusive."""

    rect: tuple[int, int, int, int]
    colour: tuple[int, int, int]
    motorcycle: bool
    forward: bool = True            # travelling left to right (towards the stop line)


def body_colour(key: int) -> tuple[int, int, int]:
    """One of the paint colours of the mix, picked by an integer key."""
    return tuple(int(x) for x in _BODY_COLOURS[key % len(_BODY_COLOURS)])  # type: ignore[return-value]


def lighting_gain(t_s: float, period_s: float, amplitude: float) -> float:
    """Slow lighting drift (clouds, sun): the picture's gain at ``t_s``."""
    return 1.0 + amplitude * np.sin(2 * np.pi * t_s / period_s)


def draw_scene(background: np.ndarray, bodies: Sequence[Body], condition: Condition,
               gain: float = 1.0) -> np.ndarray:
    """The clean picture: shadows (by day), bodies, headlights (at night), lighting gain."""
    night = condition == "night"
    img = background.copy()
    height, width = img.shape[:2]
    if not night:                   # sun from the upper left: shadows fall down-right
        for b in bodies:
            x0, y0, x1, y1 = b.rect
            sx0, sy0 = max(x0 + 4, 0), max(y0 + 7, 0)
            sx1, sy1 = min(x1 + 4, width), min(y1 + 7, height)
            if sx0 < sx1 and sy0 < sy1:
                region = img[sy0:sy1, sx0:sx1]
                region[:] = (region * 0.6).astype(np.uint8)
    for b in bodies:
        x0, y0, x1, y1 = b.rect
        colour = tuple(int(ch * (0.35 if night else 1.0)) for ch in b.colour)
        dark = tuple(int(ch * 0.6) for ch in colour)
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), dark, -1)
        cv2.rectangle(img, (x0 + 2, y0 + 2), (x1 - 3, y1 - 3), colour, -1)
        if not b.motorcycle:                    # windscreen and roof shading
            wx = x1 - int((x1 - x0) * 0.35) if b.forward else x0 + int((x1 - x0) * 0.2)
            cv2.rectangle(img, (wx, y0 + 3), (wx + 5, y1 - 4), (40, 30, 30), -1)
        else:                                   # rider's helmet
            cv2.circle(img, ((x0 + x1) // 2, (y0 + y1) // 2), 4, (20, 20, 20), -1)
    if night:
        glow = np.zeros_like(img)
        for b in bodies:
            x0, y0, x1, y1 = b.rect
            fx = x1 if b.forward else x0
            sign = 1 if b.forward else -1
            cy = (y0 + y1) // 2
            cv2.ellipse(glow, (fx + sign * 18, cy), (20, max(6, (y1 - y0) // 2 + 2)), 0, 0,
                        360, (70, 80, 80), -1)
            for hy in ({cy} if b.motorcycle else {y0 + 3, y1 - 4}):
                cv2.circle(glow, (fx, hy), 3, (255, 255, 255), -1)
                cv2.circle(glow, (x0 if b.forward else x1, hy), 2, (0, 0, 200), -1)
        img = cv2.add(img, cv2.GaussianBlur(glow, (0, 0), 2.0))
    return cv2.convertScaleAbs(img, alpha=gain)


class SensorNoise:
    """The camera's sensor: a few fixed noise fields (never the same twice in a row), and
    compression artefacts on a noisy camera."""

    def __init__(self, rng: np.random.Generator, condition: Condition,
                 size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
        width, height = size
        self.condition = condition
        sigma = {"day": 2.0, "night": 3.0, "noisy": 9.0}[condition]
        noise = rng.normal(0.0, sigma, (6, height, width, 3))
        self._pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._neg = np.clip(-noise, 0, 255).astype(np.uint8)
        self._last = 0

    def apply(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        i = int(rng.integers(len(self._pos) - 1))
        i = i if i < self._last else i + 1          # never the same noise twice in a row
        self._last = i
        out = cv2.subtract(cv2.add(clean, self._pos[i]), self._neg[i])
        if self.condition == "noisy":               # compression artefacts
            ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 25])
            out = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else out
        return out


def road_background(rng: np.random.Generator, lanes: int, condition: Condition = "day", *,
                    road_top: int = ROAD_TOP, stop_x: int = STOP_X,
                    opposing_lanes: int = 2) -> np.ndarray:
    """Static scene for ``condition``: ``lanes`` approach lanes from ``road_top`` down, the stop
    line at ``stop_x``, and ``opposing_lanes`` above a median (none: no median)."""
    scene = _background(rng, lanes, road_top=road_top, stop_x=stop_x,
                        opposing_lanes=opposing_lanes)
    if condition == "night":        # street lighting only: dark, a few lit patches
        scene = cv2.convertScaleAbs(scene, alpha=0.22)
    return scene


def _background(rng: np.random.Generator, lanes: int, *, road_top: int = ROAD_TOP,
                stop_x: int = STOP_X, opposing_lanes: int = 2) -> np.ndarray:
    """Static scene: kerbs, pavements and buildings, asphalt texture, lane and stop lines."""
    scene = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    scene[:] = (95, 110, 105)
    for _ in range(60):                         # roofs, trees, stalls off the road
        x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
        w, h = int(rng.integers(15, 80)), int(rng.integers(10, 40))
        colour = tuple(int(v) for v in rng.integers(40, 200, 3))
        cv2.rectangle(scene, (x, y), (x + w, y + h), colour, -1)
    top = road_top - 8 - opposing_lanes * LANE_PX if opposing_lanes else road_top
    bottom = road_top + lanes * LANE_PX
    asphalt = rng.normal(85, 6, (bottom - top, WIDTH, 1)).clip(0, 255)
    scene[top:bottom] = np.repeat(asphalt, 3, axis=2).astype(np.uint8)
    if opposing_lanes:
        cv2.rectangle(scene, (0, road_top - 8), (WIDTH, road_top - 1), (150, 160, 160), -1)
    cv2.line(scene, (0, top - 2), (WIDTH, top - 2), (190, 190, 190), 3)
    cv2.line(scene, (0, bottom + 1), (WIDTH, bottom + 1), (190, 190, 190), 3)
    for lane in range(1, lanes):
        y = road_top + lane * LANE_PX
        for x in range(0, stop_x - 30, 40):
            cv2.line(scene, (x, y), (x + 20, y), (220, 220, 220), 2)
    cv2.line(scene, (stop_x + 2, road_top), (stop_x + 2, bottom), (235, 235, 235), 4)
    return scene
