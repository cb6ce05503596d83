"""The camera's own picture when no world is attached: a static test pattern (a road with lane
markings between roadside blocks) under time-of-day light, and the JPEG encoder.

A ``view.WorldSource``; no traffic of its own (moving vehicles come from a world such as
``simulators.camera``), no I/O, no clock of its own.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

WIB_OFFSET_S = 7 * 3600  # the pattern's local time of day is Western Indonesia Time
PATTERN_SIZE = (1920, 1080)  # the main profile's size: every profile gets full detail
ROAD_Y = (0.40, 0.60)  # road band, fractions of the height
LANES = 2  # lanes each way
LIGHT_STEPS = 100  # the light is quantised so a picture is reused between its steps


def daylight(t_s: float) -> float:
    """Brightness factor 0.25 (night) … 1.0 (noon) from the WIB time of day."""
    hour = ((t_s + WIB_OFFSET_S) % 86400) / 3600.0
    sun = max(0.0, np.cos((hour - 12.0) / 12.0 * np.pi))  # 1 at noon, 0 from 18:00 to 06:00
    return 0.25 + 0.75 * float(sun)


def _pattern(width: int, height: int) -> np.ndarray:
    """Verge with seeded roadside blocks (texture in every PTZ view, so blur and scene-change
    detectors have edges anywhere), a four-lane road, dashed lane lines, a solid centre line,
    a zebra crossing and a caption."""
    rng = np.random.default_rng(8)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (70, 140, 90)
    road_top, road_bottom = (int(f * height) for f in ROAD_Y)
    step_x, step_y = width // 26, height // 12
    for x in range(0, width, step_x):
        for y in range(0, height, step_y):
            if road_top - step_y < y < road_bottom + 8:
                continue
            w = int(rng.uniform(0.4, 0.85) * step_x)
            h = int(rng.uniform(0.3, 0.8) * step_y)
            colour = tuple(int(c) for c in rng.integers(60, 230, 3))
            x0 = x + int(rng.uniform(0, 0.1) * step_x)
            cv2.rectangle(img, (x0, y), (x0 + w, y + h), colour, -1)
    cv2.rectangle(img, (0, road_top), (width, road_bottom), (80, 80, 80), -1)
    lane_h = (road_bottom - road_top) / (2 * LANES)
    line_px = max(2, height // 270)
    for k in range(1, 2 * LANES):
        y = int(road_top + k * lane_h)
        if k == LANES:
            cv2.line(img, (0, y), (width, y), (0, 200, 230), line_px)
            continue
        for x in range(0, width, width // 24):
            cv2.line(img, (x, y), (x + width // 60, y), (235, 235, 235), line_px)
    zebra_x = int(0.7 * width)
    for k in range(0, 2 * LANES * 2, 2):  # stripes across the road, half a lane each
        y0 = int(road_top + k * lane_h / 2) + line_px
        cv2.rectangle(img, (zebra_x, y0), (zebra_x + width // 20, int(y0 + lane_h / 2)),
                      (235, 235, 235), -1)
    cv2.putText(img, "KOTA PINTAR", (int(0.05 * width), int(0.3 * height)),
                cv2.FONT_HERSHEY_SIMPLEX, height / 360, (255, 255, 255), max(1, height // 360))
    return img


class TestPattern:
    """The static pattern as a world: ``frame(t_s)`` is the pattern under the light at
    ``t_s`` (a ``view.WorldSource``)."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, width: int = PATTERN_SIZE[0], height: int = PATTERN_SIZE[1]) -> None:
        self._base = _pattern(width, height)
        self._lock = threading.Lock()
        self._lit: tuple[int, np.ndarray] | None = None

    def frame(self, t_s: float) -> np.ndarray:
        step = round(daylight(t_s) * LIGHT_STEPS)
        with self._lock:
            if self._lit is None or self._lit[0] != step:
                self._lit = step, cv2.convertScaleAbs(self._base, alpha=step / LIGHT_STEPS)
            return self._lit[1]


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()
