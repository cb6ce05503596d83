"""A synthetic street scene for the emulated camera: a road with lane markings and moving
vehicles under time-of-day light, seen through a pan/tilt/zoom view, with image faults.

A pure function of (time, PTZ position, faults) → BGR frame (NumPy + OpenCV drawing), so video
detectors can be tested on it without the camera around; no I/O, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WIB_OFFSET_S = 7 * 3600  # the scene's local time of day is Western Indonesia Time
FIELD_OF_VIEW_W = 2.0  # world units across the frame at zoom 0 (pan 1.0 = half a view)
ZOOM_MAX_FACTOR = 4.0  # zoom 1.0 magnifies this much
ROAD_Y = (-0.25, 0.25)  # road band in world units (y grows downward)
LANES = 2  # lanes each way
MOVED_SHIFT = (0.35, 0.2)  # world units the view is knocked aside by the "moved" fault
BLUR_KERNEL = 41

# Vehicles as data: (lane, speed world units/s, length, width, BGR colour, phase)
VEHICLES = (
    (0, 0.35, 0.22, 0.08, (40, 40, 200), 0.0),
    (0, 0.35, 0.16, 0.07, (200, 200, 200), 2.5),
    (1, 0.25, 0.45, 0.10, (30, 140, 230), 1.0),
    (2, -0.30, 0.20, 0.08, (160, 60, 20), 0.7),
    (3, -0.40, 0.12, 0.05, (20, 20, 20), 3.1),
    (3, -0.40, 0.12, 0.05, (90, 90, 240), 4.6),
)
WORLD_X = (-3.0, 3.0)  # vehicles wrap around this span


def _buildings() -> tuple[tuple[float, float, float, float, tuple[int, int, int]], ...]:
    """Roadside blocks (x, y, w, h, BGR) on both verges, fixed by a seed: texture for every
    PTZ view, so blur and scene-change detectors have edges to work on anywhere."""
    rng = np.random.default_rng(8)
    out = []
    for x in np.arange(-4.0, 4.0, 0.3):
        for y in (*np.arange(-2.2, ROAD_Y[0] - 0.2, 0.35), *np.arange(ROAD_Y[1] + 0.1, 2.2, 0.35)):
            w, h = rng.uniform(0.12, 0.26), rng.uniform(0.1, 0.28)
            colour = tuple(int(c) for c in rng.integers(60, 230, 3))
            out.append((float(x + rng.uniform(0, 0.05)), float(y), float(w), float(h), colour))
    return tuple(out)


BUILDINGS = _buildings()


@dataclass(frozen=True)
class SceneFaults:
    covered: bool = False
    blurred: bool = False
    moved: bool = False


def daylight(t_s: float) -> float:
    """Brightness factor 0.25 (night) … 1.0 (noon) from the WIB time of day."""
    hour = ((t_s + WIB_OFFSET_S) % 86400) / 3600.0
    sun = max(0.0, np.cos((hour - 12.0) / 12.0 * np.pi))  # 1 at noon, 0 from 18:00 to 06:00
    return 0.25 + 0.75 * float(sun)


def render_scene(t_s: float, pan: float = 0.0, tilt: float = 0.0, zoom: float = 0.0,
                 faults: SceneFaults | None = None, width: int = 640,
                 height: int = 360) -> np.ndarray:
    """The frame at Unix time ``t_s`` for a PTZ position (pan/tilt in [-1, 1], zoom in
    [0, 1]) as a ``height × width × 3`` uint8 BGR array."""
    f = faults or SceneFaults()
    if f.covered:
        return np.zeros((height, width, 3), np.uint8)
    scale_px = width / (FIELD_OF_VIEW_W / (1.0 + (ZOOM_MAX_FACTOR - 1.0) * zoom))  # px/unit
    cx, cy = pan, tilt * 0.5
    if f.moved:
        cx, cy = cx + MOVED_SHIFT[0], cy + MOVED_SHIFT[1]

    def px(x: float, y: float) -> tuple[int, int]:
        return (int(round((x - cx) * scale_px + width / 2)),
                int(round((y - cy) * scale_px + height / 2)))

    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (70, 140, 90)  # verge
    for bx, by, bw, bh, colour in BUILDINGS:
        cv2.rectangle(frame, px(bx, by), px(bx + bw, by + bh), colour, -1)
    y0, y1 = ROAD_Y
    cv2.rectangle(frame, px(WORLD_X[0] - 5, y0), px(WORLD_X[1] + 5, y1), (80, 80, 80), -1)
    lane_h = (y1 - y0) / (2 * LANES)
    for k in range(1, 2 * LANES):  # dashed lane lines, a solid centre line
        y = y0 + k * lane_h
        if k == LANES:
            cv2.line(frame, px(WORLD_X[0] - 5, y), px(WORLD_X[1] + 5, y), (0, 200, 230), 2)
            continue
        x = WORLD_X[0] - 5
        while x < WORLD_X[1] + 5:
            cv2.line(frame, px(x, y), px(x + 0.1, y), (235, 235, 235), 2)
            x += 0.25
    span = WORLD_X[1] - WORLD_X[0]
    for lane, speed, length, vwidth, colour, phase in VEHICLES:
        x = WORLD_X[0] + (phase + speed * t_s) % span if speed > 0 else \
            WORLD_X[1] - (phase - speed * t_s) % span
        y = y0 + (lane + 0.5) * lane_h
        cv2.rectangle(frame, px(x - length / 2, y - vwidth / 2), px(x + length / 2, y + vwidth / 2),
                      colour, -1)
    cv2.putText(frame, "KOTA PINTAR", px(-0.9, -0.6), cv2.FONT_HERSHEY_SIMPLEX,
                max(0.3, scale_px / 400), (255, 255, 255), 1)
    frame = cv2.convertScaleAbs(frame, alpha=daylight(t_s))
    if f.blurred:
        frame = cv2.GaussianBlur(frame, (BLUR_KERNEL, BLUR_KERNEL), 0)
    return frame


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()
