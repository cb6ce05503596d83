"""Video detectors (edge.camera) on rendered scenes with exact truth, and their pure logic."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.camera.detectors import (
    HysteresisState,
    TamperConfig,
    TamperDetector,
    ZoneConfig,
    ZoneDetector,
    ZoneDetectorConfig,
    presence_series,
    presence_step,
    queue_lengths,
)
from kota.bench_video import accuracy, detector_for, tamper_delay_s, tamper_false_alarms
from simulators.camera.scene import HEIGHT, WIDTH, Scene, SceneConfig

FPS = 10.0


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> None:
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------- pure logic


def test_hysteresis_needs_min_frames_and_counts_rising_edges() -> None:
    # One zone; on at ≥ 0.5 for 2 frames, off below 0.2 for 2 frames.
    fractions = np.array([[0.0], [0.6], [0.1], [0.6], [0.6], [0.3], [0.1], [0.3], [0.1],
                          [0.1], [0.9], [0.9]])
    present, rising = presence_series(fractions, 0.5, 0.2, min_on_frames=2, min_off_frames=2)
    # t5 and t7 sit in the band and restart the off run; two frames below 0.2 at t8–t9.
    assert present[:, 0].tolist() == [False, False, False, False, True, True, True, True, True,
                                      False, False, True]
    assert rising[:, 0].tolist() == [False] * 4 + [True] + [False] * 6 + [True]
    assert rising.sum() == 2


def test_hysteresis_band_holds_state_per_zone() -> None:
    # Two zones in one step: 0.3 sits in the band (off < 0.3 < on) and changes nothing.
    state = HysteresisState(np.array([False, True]), np.zeros(2, np.int64))
    state, rising = presence_step(state, np.array([0.3, 0.3]), 0.5, 0.2, 1, 1)
    assert state.on.tolist() == [False, True] and not rising.any()
    state, rising = presence_step(state, np.array([0.5, 0.1]), 0.5, 0.2, 1, 1)
    assert state.on.tolist() == [True, False] and rising.tolist() == [True, False]


def test_queue_counts_unbroken_run_from_stop_line() -> None:
    present = np.array([True, True, False, True,   # lane A: zones 0..3 from the line
                        False, True, True])         # lane B: zones 4..6
    chains = [[0, 1, 2, 3], [4, 5, 6]]
    assert queue_lengths(present, chains).tolist() == [2, 0]
    series = np.array([[True, True, True, True, True, True, True],
                       [False, True, True, True, True, False, True]])
    assert queue_lengths(series, chains).tolist() == [[4, 3], [0, 1]]


def test_interval_in_loop_detector_shape() -> None:
    scene = Scene(SceneConfig(seed=2))
    det = detector_for(scene, FPS)
    for i in range(30):
        det.update(det.small(scene.frame(i / FPS)[0]))
    out = det.interval()
    n = len(scene.zones)
    assert len(out.det_count) == len(out.det_occupancy_pct) == len(out.det_fault) == n == 8
    assert all(0.0 <= o <= 100.0 for o in out.det_occupancy_pct) and out.frames == 30
    assert len(out.queue_zones) == 3 and not any(out.det_fault)
    assert det.interval().det_fault == (True,) * n     # no frames: faulty, like a dead loop


# --------------------------------------------------------------------------- one zone, by hand

ZONE = ((200, 150), (300, 150), (300, 200), (200, 200))     # full-frame pixels
CAR = (210, 158, 290, 192)                                  # x0, y0, x1, y1 inside the zone


class _Road:
    """Plain grey road with sensor noise (never the same field twice in a row)."""

    def __init__(self, paint: bool = False) -> None:
        rng = np.random.default_rng(1)
        texture = rng.normal(85, 4, (HEIGHT, WIDTH, 1)).clip(0, 255).astype(np.uint8)
        self.base = np.repeat(texture, 3, axis=2)          # asphalt
        if paint:                               # a painted stripe across the zone
            cv2.rectangle(self.base, (245, 150), (250, 200), (235, 235, 235), -1)
        noise = rng.normal(0, 3, (4, HEIGHT, WIDTH, 3))
        self.pos = np.clip(noise, 0, 255).astype(np.uint8)
        self.neg = np.clip(-noise, 0, 255).astype(np.uint8)
        self.i = 0

    def frame(self, car: tuple[int, int, int, int] | None = None) -> np.ndarray:
        img = self.base.copy()
        if car is not None:
            cv2.rectangle(img, car[:2], (car[2] - 1, car[3] - 1), (165, 165, 170), -1)
        self.i += 1
        return cv2.subtract(cv2.add(img, self.pos[self.i % 4]), self.neg[self.i % 4])


def _one_zone() -> ZoneDetector:
    return ZoneDetector(ZoneDetectorConfig(zones=(ZoneConfig("Z", ZONE),), fps=FPS),
                        (WIDTH, HEIGHT))


def test_a_vehicle_standing_through_the_warm_up_leaves_no_ghost() -> None:
    # The warm-up learns the standing vehicle as background; the road it reveals when it
    # leaves looks like road, so the zone is free at once (MOG2 alone kept it on ~30 s).
    road, det = _Road(), _one_zone()
    for _ in range(100):
        det.update(det.small(road.frame(CAR)))
    free = [bool(det.update(det.small(road.frame()))[0]) for _ in range(200)]
    assert not any(free[5:])


def test_a_vehicle_standing_longer_than_a_red_does_not_fade() -> None:
    # MOG2 absorbs a still object after about a tenth of its history (30 s here); the
    # vehicle is far from road colour, so the zone stays occupied for all 90 s.
    road, det = _Road(), _one_zone()
    for _ in range(200):
        det.update(det.small(road.frame()))
    standing = [bool(det.update(det.small(road.frame(CAR)))[0]) for _ in range(900)]
    assert all(standing[1:])
    after = [bool(det.update(det.small(road.frame()))[0]) for _ in range(50)]
    assert not any(after[5:])
    assert det.interval().det_count == (1,)


def test_paint_in_a_zone_does_not_hold_it_on() -> None:
    # The stripe never looks like road: after a second it is structure, and only MOG2 can
    # see a vehicle over it; a vehicle driving through counts once.
    road, det = _Road(paint=True), _one_zone()
    empty = [bool(det.update(det.small(road.frame()))[0]) for _ in range(300)]
    assert not any(empty[20:])
    det.interval()
    for x in range(0, 520, 12):                 # 12 px per frame (12 m/s) left to right
        det.update(det.small(road.frame((x, 158, x + 60, 192))))
    after = [bool(det.update(det.small(road.frame()))[0]) for _ in range(30)]
    assert not any(after[5:])
    assert det.interval().det_count == (1,)


# --------------------------------------------------------------------------- scenes


def test_scene_is_deterministic_and_truth_counts() -> None:
    a, b = Scene(SceneConfig(seed=9)), Scene(SceneConfig(seed=9))
    fa, ta = a.frame(12.0)
    fb, tb = b.frame(12.0)
    assert fa.shape == (HEIGHT, WIDTH, 3) and fa.dtype == np.uint8
    assert np.array_equal(fa, fb) and ta == tb


def test_daylight_counts_and_presence() -> None:
    acc = accuracy("day", seconds=80.0, fps=FPS, seed=3, settle_s=35.0)
    print(f"\nday: {acc}")
    assert acc.count_truth >= 30
    assert acc.count_error_pct <= 5.0
    assert acc.presence_f1 >= 0.95


@pytest.mark.parametrize("condition", ["night", "noisy"])
def test_night_and_noisy_figures(condition: str) -> None:
    acc = accuracy(condition, seconds=25.0, fps=FPS, seed=3, settle_s=25.0)  # type: ignore[arg-type]
    print(f"\n{condition}: {acc}")
    # Loose: the figures are reported (kota bench video), not promised.
    assert acc.presence_f1 >= 0.8
    assert acc.count_error_pct <= 25.0


# --------------------------------------------------------------------------- tamper


@pytest.mark.parametrize("condition", ["day", "night"])
@pytest.mark.parametrize("kind", ["covered", "blurred", "moved", "frozen"])
def test_tamper_raised_within_5_s(kind: str, condition: str) -> None:
    delay = tamper_delay_s(kind, fps=FPS, onset_s=6.0, limit_s=6.0,  # type: ignore[arg-type]
                           condition=condition)  # type: ignore[arg-type]
    print(f"\n{condition} {kind}: raised after {delay} s")
    assert delay is not None and delay <= 5.0


def covered_events(covered_from_s: float, covered_until_s: float
                   ) -> list[tuple[str, bool, float]]:
    """Tamper events (kind, raised, at s) over 20 s of scene with the lens covered between."""
    scene = Scene(SceneConfig(seed=5))
    det = detector_for(scene, FPS)
    tamper = TamperDetector(TamperConfig(fps=FPS))
    events = []
    for i in range(200):
        t = i / FPS
        frame, _ = scene.frame(t, tamper="covered" if covered_from_s <= t < covered_until_s
                               else None)
        events += [(e.kind, e.active, e.frame / FPS) for e in tamper.update(det.small(frame))]
    return events


def test_tamper_clears_after_the_camera_recovers() -> None:
    events = covered_events(6.0, 12.0)
    kinds = [(k, a) for k, a, _ in events]
    assert kinds == [("covered", True), ("covered", False)]
    assert 12.0 < events[1][2] <= 17.0      # cleared 3 s (clear_s) after the cover went


def test_a_camera_covered_from_the_start_is_not_called_moved_when_uncovered() -> None:
    # The agent may start while the lens is covered: the covered picture is no reference for
    # "moved", the first clear picture is.
    events = covered_events(0.0, 8.0)
    assert [(k, a) for k, a, _ in events] == [("covered", True), ("covered", False)]


@pytest.mark.parametrize("condition", ["day", "night"])
def test_no_tamper_false_alarm_in_ten_minutes(condition: str) -> None:
    # Ten simulated minutes at 1 fps (the detector is told its fps), lighting drift included;
    # at night the headlights are the brightest moving structure.
    assert tamper_false_alarms(condition, seconds=600.0, fps=1.0) == []  # type: ignore[arg-type]
