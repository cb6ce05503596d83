"""Video detectors for one camera: detection zones as virtual loops, and camera tamper.

Owns frame → per-zone presence/count/occupancy/queue (published per interval in the shape of
loop detectors: det_count, det_occupancy_pct, det_fault) and frame → tamper events (blur,
blackout, moved, frozen). Pure computation over frames handed in: no capture, no MQTT, no
clock (time is frames / fps). Must not import the control room, the CLI or the simulators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

SHADOW = 127            # MOG2's shadow label: treated as background
FOREGROUND = 255


# --------------------------------------------------------------------------- pure logic


@dataclass(slots=True)
class HysteresisState:
    """Per-zone presence state, vectorised over zones."""

    on: np.ndarray              # bool[z]
    run: np.ndarray             # int[z]: consecutive frames arguing for the other state

    @classmethod
    def empty(cls, zones: int) -> HysteresisState:
        return cls(np.zeros(zones, bool), np.zeros(zones, np.int64))


def presence_step(state: HysteresisState, fraction: np.ndarray, on_fraction: float,
                  off_fraction: float, min_on_frames: int, min_off_frames: int
                  ) -> tuple[HysteresisState, np.ndarray]:
    """One frame of hysteresis; returns the new state and the rising edges (bool[z]).

    Off → on needs ``min_on_frames`` consecutive frames with fraction ≥ on_fraction;
    on → off needs ``min_off_frames`` consecutive frames with fraction < off_fraction.
    """
    arguing = np.where(state.on, fraction < off_fraction, fraction >= on_fraction)
    run = np.where(arguing, state.run + 1, 0)
    flip = run >= np.where(state.on, min_off_frames, min_on_frames)
    on = state.on ^ flip
    return HysteresisState(on, np.where(flip, 0, run)), flip & on


def presence_series(fractions: np.ndarray, on_fraction: float, off_fraction: float,
                    min_on_frames: int = 1, min_off_frames: int = 1
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Presence (bool[t, z]) and rising edges (bool[t, z]) of a fraction series [t, z]."""
    fractions = np.atleast_2d(np.asarray(fractions, float))
    state = HysteresisState.empty(fractions.shape[1])
    present = np.zeros(fractions.shape, bool)
    rising = np.zeros(fractions.shape, bool)
    for t, row in enumerate(fractions):
        state, rising[t] = presence_step(state, row, on_fraction, off_fraction, min_on_frames,
                                         min_off_frames)
        present[t] = state.on
    return present, rising


def queue_lengths(present: np.ndarray, chains: Sequence[Sequence[int]]) -> np.ndarray:
    """Occupied zones counted from the stop line back, per chain, until the first free one.

    ``present`` is bool[z] (or bool[t, z]); each chain lists zone indices from the stop line.
    """
    present = np.asarray(present, bool)
    out = []
    for chain in chains:
        run = present[..., list(chain)]
        # cumprod stops at the first free zone: the queue is the unbroken run from the line
        out.append(np.cumprod(run, axis=-1).sum(axis=-1))
    return np.stack(out, axis=-1) if out else np.zeros(present.shape[:-1] + (0,), np.int64)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    zone_id: str
    polygon: tuple[tuple[float, float], ...]     # full-frame pixels


@dataclass(frozen=True, slots=True)
class ZoneDetectorConfig:
    zones: tuple[ZoneConfig, ...]
    queues: tuple[tuple[str, ...], ...] = ()     # zone ids from the stop line back
    fps: float = 10.0
    scale: float = 0.5                           # work at half resolution
    on_fraction: float = 0.05
    off_fraction: float = 0.025
    min_on_frames: int = 1
    min_off_frames: int = 1
    background_s: float = 300.0                  # MOG2 history; a queue must not fade in a red
    var_threshold: float = 25.0
    warmup_s: float = 5.0                        # learning fast from an empty model
    night_level: float = 45.0                    # mean grey below this: count headlights
    lamp_level: int = 150                        # grey level of a lit headlamp
    lamp_on_fraction: float = 0.006
    gap_ratio: float = 0.2                       # counting: a dip to this × the peak is a gap
    # Road colour (per-channel median and robust spread of the zones' background pixels):
    # MOG2 foreground that looks like road is a ghost, not a vehicle.
    road_every: int = 5                          # frames between road-colour samples
    road_k: float = 4.0                          # "looks like road": within k robust sds
    road_min_tol: float = 6.0                    # grey levels, however clean the picture
    shadow_range: tuple[float, float] = (0.45, 0.95)   # a shadow darkens the road this much
    # Far from the road colour (road_k × far_k sds) counts as vehicle even where MOG2 has
    # absorbed it (a queue standing through a red), except on static structure: pixels
    # that looked like road less than structure_share of the last structure_s (paint).
    far_from_road: bool = True
    far_k: float = 2.5
    structure_s: float = 120.0
    structure_share: float = 0.05


@dataclass(frozen=True, slots=True)
class ZoneInterval:
    """One interval of one camera in the loop detectors' shape, plus the camera's extras."""

    det_count: tuple[int, ...]
    det_occupancy_pct: tuple[float, ...]
    det_fault: tuple[bool, ...]
    queue_zones: tuple[int, ...]
    frames: int


# --------------------------------------------------------------------------- zones


class ZoneDetector:
    """All zones of one camera: MOG2 foreground checked against the road's colour → presence.

    MOG2 alone (shadows as background) errs both ways on a stop line: a vehicle standing
    through a red fades into its background after about 0.1 × history, and a queue it
    learned (the warm-up's, or one that faded) leaves a ghost when it drives off, holding
    the zone on through the platoon. The road's own colour, sampled from the zones, settles
    both: foreground that looks like road (or its shadow) is a ghost and does not count,
    and a pixel far from road colour counts whatever MOG2 says, except on static structure
    that never looks like road (paint). By night only the first holds (headlight glow).
    """

    def __init__(self, config: ZoneDetectorConfig, frame_size: tuple[int, int]) -> None:
        self.config = c = config
        width, height = frame_size
        self._size = (max(1, round(width * c.scale)), max(1, round(height * c.scale)))
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=max(1, round(c.background_s * c.fps)), varThreshold=c.var_threshold,
            detectShadows=True)
        self._history = max(1, round(c.background_s * c.fps))
        self._warmup = max(1, round(c.warmup_s * c.fps))
        ids = [z.zone_id for z in c.zones]
        self._chains = [[ids.index(i) for i in chain] for chain in c.queues]
        # Per zone: its bounding box in the small frame and its mask inside it, computed once.
        self._boxes: list[tuple[slice, slice, np.ndarray, int]] = []
        sw, sh = self._size
        for z in c.zones:
            mask = np.zeros((sh, sw), np.uint8)
            pts = np.round(np.asarray(z.polygon, float) * c.scale).astype(np.int32)
            cv2.fillPoly(mask, [pts], 255)
            x, y, w, h = cv2.boundingRect(pts)
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + w, sw), min(y + h, sh)
            sub = np.ascontiguousarray(mask[y0:y1, x0:x1])
            self._boxes.append((slice(y0, y1), slice(x0, x1), sub, max(1, cv2.countNonZero(sub))))
        union = np.zeros((sh, sw), bool)
        for ys, xs, zmask, _ in self._boxes:
            union[ys, xs] |= zmask > 0
        self._zone_pixels = np.flatnonzero(union)
        self._road_stats: np.ndarray | None = None       # [median, robust sd] per channel
        self._road_samples = 0
        self._structure_checks = 0
        self._road: tuple[np.ndarray, ...] = ()     # inRange bounds: road, shadowed road
        self._road_far: tuple[np.ndarray, ...] = ()
        self._road_share = np.zeros((sh, sw), np.float32)
        self._not_structure = np.full((sh, sw), 255, np.uint8)
        self._structure_every = max(1, round(c.fps))
        self._structure_n = max(1, round(c.structure_s * c.fps / self._structure_every))
        n = len(c.zones)
        self._state = HysteresisState.empty(n)
        self._frames_seen = 0
        self._level_ref: float | None = None
        self._reset_interval()
        self.fraction = np.zeros(n)
        self._lamps = HysteresisState.empty(n)
        self._passes = HysteresisState.empty(n)
        self._peak = np.zeros(n)
        self._lamp_fraction = np.zeros(n)

    def _reset_interval(self) -> None:
        n = len(self.config.zones)
        self._count = np.zeros(n, np.int64)
        self._on_frames = np.zeros(n, np.int64)
        self._frames = 0
        self._faulty = False

    @property
    def present(self) -> np.ndarray:
        return self._state.on.copy()

    def small(self, frame: np.ndarray) -> np.ndarray:
        """The working-resolution frame (shared with the tamper detector by the caller)."""
        return cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)

    def update(self, small: np.ndarray, faulty: bool = False) -> np.ndarray:
        """Feed one working-resolution frame; returns presence per zone (bool[z])."""
        c = self.config
        self._frames_seen += 1
        # Automatic gain: hold the frame's mean brightness at the warm-up's, so slow lighting
        # drift (clouds, dusk) does not turn the whole road into foreground.
        level = sum(cv2.mean(small)[:3]) / 3
        if self._frames_seen <= self._warmup or self._level_ref is None:
            self._level_ref = level if self._level_ref is None else (
                self._level_ref + (level - self._level_ref) / self._frames_seen)
        elif level > 1.0:
            small = cv2.convertScaleAbs(small, alpha=self._level_ref / level)
        # Learn fast for the warm-up, then at 1/history: a stopped queue fades only after
        # minutes (MOG2 absorbs a still object after about 0.1 × history frames).
        rate = (1.0 / self._frames_seen if self._frames_seen <= self._warmup
                else 1.0 / self._history)
        mask = self._mog.apply(small, learningRate=rate)
        fg = cv2.threshold(mask, SHADOW, 255, cv2.THRESH_BINARY)[1]  # shadows → background
        if not self._road or self._frames_seen % c.road_every == 0:
            self._learn_road(small, mask)
        night = self._level_ref is not None and self._level_ref < c.night_level
        # At night headlight glow runs ahead of the vehicles and is far from the dark road's
        # colour too: there only MOG2's foreground counts.
        far_from_road = c.far_from_road and not night
        road = self._road_like(small)
        if far_from_road and self._frames_seen % self._structure_every == 0:
            self._learn_structure(road)
        # A vehicle pixel: MOG2 foreground that does not look like road (what looks like road
        # is a ghost: road revealed where the model had learned a vehicle), or far from road
        # colour off static structure (a vehicle MOG2 has absorbed, or one painted in a colour
        # a standing queue has taught MOG2's mixture).
        vehicle = cv2.bitwise_and(fg, cv2.bitwise_not(road))
        if far_from_road:
            far = cv2.bitwise_not(self._road_like(small, far=True))
            vehicle = cv2.bitwise_or(vehicle, cv2.bitwise_and(far, self._not_structure))
        fraction = self.fraction
        for i, (ys, xs, zmask, area) in enumerate(self._boxes):
            fraction[i] = cv2.countNonZero(cv2.bitwise_and(vehicle[ys, xs], zmask)) / area
        if self._frames_seen <= self._warmup:
            fraction[:] = 0.0       # the models are still learning: nothing is present yet
        self._state, _ = presence_step(self._state, fraction, c.on_fraction,
                                       c.off_fraction, c.min_on_frames, c.min_off_frames)
        # Counting has its own hysteresis: a dip to gap_ratio of the peak since it went on is
        # the gap between two vehicles (a discharging queue never quite empties a 3 m zone);
        # presence keeps the plain one, the zone is not free in that dip.
        off = np.maximum(c.off_fraction, c.gap_ratio * self._peak)
        self._passes, rising = presence_step(self._passes, fraction, c.on_fraction, off,
                                             c.min_on_frames, c.min_off_frames)
        self._peak = np.where(self._passes.on, np.maximum(self._peak, fraction), 0.0)
        if night:
            # At night the headlight glow bridges the gap between vehicles, so presence edges
            # undercount; the lamps themselves are the vehicles' clearest mark: count their
            # rising edges instead (front-to-front spacing exceeds a 3 m zone).
            gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
            lit = cv2.threshold(gray, c.lamp_level, 255, cv2.THRESH_BINARY)[1]
            lamps = self._lamp_fraction
            for i, (ys, xs, zmask, area) in enumerate(self._boxes):
                lamps[i] = cv2.countNonZero(cv2.bitwise_and(lit[ys, xs], zmask)) / area
            self._lamps, rising = presence_step(self._lamps, lamps, c.lamp_on_fraction,
                                                c.lamp_on_fraction / 2, 1, 1)
        self._count += rising
        self._on_frames += self._state.on
        self._frames += 1
        self._faulty |= faulty
        return self._state.on

    def _learn_road(self, small: np.ndarray, mask: np.ndarray) -> None:
        """Road colour and spread from the zone pixels MOG2 calls background (running average).

        Median and a spread from the closest quarter of the sample, so vehicles MOG2 has
        absorbed (a standing queue, the warm-up's) move neither; once known, pixels far from
        it are left out of the sample as well.
        """
        c = self.config
        bgr = small.reshape(-1, small.shape[2] if small.ndim == 3 else 1)[self._zone_pixels]
        background = bgr[mask.reshape(-1)[self._zone_pixels] == 0]
        if len(background) >= 50:
            bgr = background
        elif self._road_stats is not None:
            return                  # hardly any background in the zones: keep what we had
        if self._road_stats is not None:
            # Trimmed: vehicles MOG2 has absorbed (a standing queue) are not road.
            med, sd = self._road_stats
            near = np.all(np.abs(bgr - med) <= np.maximum(3 * c.road_k * sd, 20.0), axis=1)
            if near.sum() < 50:
                return
            bgr = bgr[near]
        med = np.median(bgr, axis=0)
        sd = np.percentile(np.abs(bgr - med), 25, axis=0) / 0.3186
        self._road_samples += 1
        rate = max(1.0 / self._road_samples, 0.05)
        if self._road_stats is None:
            self._road_stats = np.stack([med, sd])
        else:
            self._road_stats += rate * (np.stack([med, sd]) - self._road_stats)
        med, sd = self._road_stats
        tol = np.maximum(c.road_k * sd, c.road_min_tol)
        lo_s, hi_s = c.shadow_range
        self._road = self._bounds(med, tol, lo_s, hi_s)
        self._road_far = self._bounds(med, tol * c.far_k, lo_s, hi_s)

    @staticmethod
    def _bounds(med: np.ndarray, tol: np.ndarray, lo_s: float, hi_s: float
                ) -> tuple[np.ndarray, ...]:
        """inRange bounds of road, and of road darkened by a shadow (lo_s..hi_s of it)."""
        return (np.clip(med - tol, 0, 255), np.clip(med + tol, 0, 255),
                np.clip(med * lo_s - tol / 2, 0, 255), np.clip(med * hi_s + tol / 2, 0, 255))

    def _road_like(self, img: np.ndarray, far: bool = False) -> np.ndarray:
        """255 where a pixel looks like road or shadowed road (``far``: the wide tolerance)."""
        lo, hi, slo, shi = self._road_far if far else self._road
        return cv2.bitwise_or(cv2.inRange(img, lo, hi), cv2.inRange(img, slo, shi))

    def _learn_structure(self, road_like: np.ndarray) -> None:
        """Pixels that hardly ever look like road over ``structure_s``: paint, kerbs, stains.

        An average of "this pixel looks like road" (``road_like``, this frame's
        ``_road_like``) sampled once a second: where vehicles come and go the road shows
        between them; on the stop line it never does.
        """
        road = (road_like > 0).astype(np.float32)
        self._structure_checks += 1
        rate = 1.0 / min(self._structure_checks, self._structure_n)
        self._road_share += rate * (road - self._road_share)
        self._not_structure = np.where(self._road_share < self.config.structure_share, 0,
                                       255).astype(np.uint8)

    def queue(self) -> tuple[int, ...]:
        return tuple(int(q) for q in queue_lengths(self._state.on, self._chains))

    def interval(self) -> ZoneInterval:
        """Close the interval: counts, occupancy %, fault (tamper or no frames) per zone."""
        n = len(self.config.zones)
        frames = self._frames
        fault = self._faulty or frames == 0
        occ = self._on_frames * 100.0 / frames if frames else np.zeros(n)
        out = ZoneInterval(tuple(int(x) for x in self._count),
                           tuple(round(float(x), 1) for x in occ), (fault,) * n, self.queue(),
                           frames)
        self._reset_interval()
        return out


# --------------------------------------------------------------------------- tamper


TAMPER_KINDS = ("blurred", "covered", "moved", "frozen")


@dataclass(frozen=True, slots=True)
class TamperConfig:
    fps: float = 10.0
    check_hz: float = 2.0                # tamper checks per second (cheap, but not every frame)
    raise_s: float = 2.0                 # a condition must hold this long to raise
    clear_s: float = 3.0                 # and be gone this long to clear
    frozen_s: float = 2.5                # frame difference ≈ 0 for this long
    frozen_mean_diff: float = 0.05       # grey levels; live sensors never reach it
    blur_ratio: float = 0.35             # Laplacian variance / own baseline
    baseline_s: float = 120.0            # time constant of that baseline
    warmup_s: float = 3.0
    dark_mean: float = 25.0
    dark_std: float = 3.0
    shift_px: float = 3.0                # at the working resolution
    min_response: float = 0.03           # phase-correlation peak below this is no evidence


@dataclass(frozen=True, slots=True)
class TamperEvent:
    kind: str
    active: bool                         # True raised, False cleared
    frame: int


@dataclass(slots=True)
class _Debounce:
    raise_n: int
    clear_n: int
    active: bool = False
    run: int = 0

    def step(self, condition: bool | None) -> bool | None:
        """Feed one check (None: no evidence either way); returns the new state on a flip."""
        if condition is None:
            return None
        self.run = self.run + 1 if condition != self.active else 0
        if self.run >= (self.clear_n if self.active else self.raise_n):
            self.active, self.run = not self.active, 0
            return self.active
        return None


@dataclass(slots=True)
class _TamperState:
    prev: np.ndarray | None = None
    reference: np.ndarray | None = None
    baseline: float | None = None
    still_frames: int = 0
    frames: int = 0
    checks: dict[str, _Debounce] = field(default_factory=dict)


class TamperDetector:
    """Blur, blackout, moved and frozen, each raised and cleared with hysteresis."""

    def __init__(self, config: TamperConfig | None = None) -> None:
        self.config = c = config or TamperConfig()
        self._every = max(1, round(c.fps / c.check_hz))
        checks_per_s = c.fps / self._every
        raise_n = max(1, round(c.raise_s * checks_per_s))
        clear_n = max(1, round(c.clear_s * checks_per_s))
        checks = {k: _Debounce(raise_n, clear_n) for k in TAMPER_KINDS}
        checks["frozen"] = _Debounce(1, clear_n)    # frozen_s is its own debounce
        self._s = _TamperState(checks=checks)
        self._frozen_frames = max(1, round(c.frozen_s * c.fps))
        self._warmup = round(c.warmup_s * c.fps)
        self._window: np.ndarray | None = None
        self.figures: dict[str, float] = {}

    @property
    def active(self) -> frozenset[str]:
        return frozenset(k for k, d in self._s.checks.items() if d.active)

    def update(self, small: np.ndarray) -> list[TamperEvent]:
        """Feed one working-resolution frame (BGR or grey); returns events raised/cleared."""
        c, s = self.config, self._s
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        s.frames += 1
        if s.prev is not None:
            # Every frame: a frozen stream shows up as an exact repeat, one frame is enough.
            still = cv2.norm(gray, s.prev, cv2.NORM_L1) / gray.size < c.frozen_mean_diff
            s.still_frames = s.still_frames + 1 if still else 0
        s.prev = gray
        if s.frames % self._every:
            return []
        mean, std = cv2.meanStdDev(gray)
        mean_v, std_v = float(mean[0, 0]), float(std[0, 0])
        lap_var = float(cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_32F))[1][0, 0] ** 2)
        dark = mean_v < c.dark_mean and std_v < c.dark_std
        # Clip the highlights: at night headlights are the brightest, moving, structure and
        # would drag the correlation along with the traffic.
        grey32 = np.minimum(gray, max(8.0, 2.0 * mean_v)).astype(np.float32)
        if self._window is None:
            self._window = cv2.createHanningWindow(grey32.shape[::-1], cv2.CV_32F)
        if not dark and (s.reference is None or s.frames <= self._warmup):
            s.reference = grey32    # a covered picture is no reference for "moved"
        if s.reference is not None:
            (dx, dy), response = cv2.phaseCorrelate(s.reference, grey32, self._window)
        else:
            (dx, dy), response = (0.0, 0.0), 0.0
        shift = float(np.hypot(dx, dy))
        if s.baseline is None:
            s.baseline = lap_var
        blur_ratio = lap_var / s.baseline if s.baseline > 0 else 1.0
        moved: bool | None = not dark and s.frames > self._warmup and shift > c.shift_px
        if moved and response < c.min_response:
            moved = None                        # a weak peak: neither moved nor in place
        conditions: dict[str, bool | None] = {
            "covered": dark,
            "blurred": not dark and blur_ratio < c.blur_ratio,
            "moved": moved,
            "frozen": s.still_frames >= self._frozen_frames,
        }
        self.figures = {"mean": mean_v, "std": std_v, "lap_var": lap_var,
                        "blur_ratio": blur_ratio, "shift_px": shift,
                        "shift_response": float(response)}
        events = []
        for kind, cond in conditions.items():
            flip = s.checks[kind].step(cond)
            if flip is not None:
                events.append(TamperEvent(kind, flip, s.frames))
        if not any(d.active or d.run for d in s.checks.values()):
            # The baseline follows the camera's own sharpness (day, night, drift) only while
            # nothing is suspicious, so a slow blur cannot teach it to accept itself.
            dt_s = self._every / c.fps
            alpha = 1.0 if s.frames <= self._warmup else dt_s / c.baseline_s
            s.baseline += alpha * (lap_var - s.baseline)
        return events
