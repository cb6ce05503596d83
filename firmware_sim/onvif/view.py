"""The emulated camera's optics: a world picture seen through the PTZ head, then the image
faults on demand (moved, covered, blurred, frozen).

Owns the geometry (pan/tilt move a window over the world, zoom narrows it, the window is
resampled to the profile's size) and the faults' look. Must not own a world: traffic and light
come from a ``WorldSource`` handed in (``simulators.camera`` has one; ``scene.TestPattern`` is
the camera's own static picture). NumPy + OpenCV only; no I/O, no clock of its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from firmware_sim.onvif.camera import Position

ZOOM_MAX_FACTOR = 4.0  # zoom 1.0 narrows the window to a quarter of the world's width
PAN_REACH = 0.5  # pan 1.0 moves the window's centre half the world's width (tilt: height)
MOVED_SHIFT = (0.075, 0.083)  # the "moved" fault knocks the view aside by these fractions
MOVED_ROTATION_DEG = 4.0  # … and turns it a little
BLUR_SIGMA_PER_PX = 5.0 / 640  # out of focus: Gaussian sigma per output pixel of width
COVERED_LEVEL, COVERED_NOISE = 4.0, 1.5  # a covered lens: near-black plus sensor noise


class WorldSource(Protocol):
    """What the camera looks at: the whole world as a BGR uint8 image at Unix time ``t_s``.

    Called with non-decreasing times in practice, from one thread at a time (the view holds a
    lock around it). The world should be at least the size of the largest profile for full
    detail; a smaller one is upsampled. Its pixels are the home view's pixels, scaled: zones
    drawn on the world fit the view at pan = tilt = zoom = 0.
    """

    def frame(self, t_s: float) -> np.ndarray: ...


@dataclass(frozen=True)
class ViewFaults:
    covered: bool = False  # near-black with sensor noise
    blurred: bool = False  # strong Gaussian blur
    moved: bool = False  # shifted and turned
    frozen: bool = False  # the last picture of that size again


HOME = Position()


def resize_world(world: np.ndarray, width: int, height: int) -> np.ndarray:
    """The world at the output size: area averaging to shrink, bilinear to enlarge (the home
    view is exactly this)."""
    h, w = world.shape[:2]
    if (w, h) == (width, height):
        return world.copy()
    shrink = width < w or height < h
    return cv2.resize(world, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def view_window(world_size: tuple[int, int], position: Position
                ) -> tuple[float, float, float, float]:
    """The part of the world the head looks at, ``(x0, y0, w, h)`` in world pixels.

    Pan + turns right (the window moves right, the picture's content left); tilt + looks up
    (ONVIF's generic space), so the window moves up. The window may leave the world: what lies
    beyond is the world mirrored at its edge.
    """
    ww, wh = world_size
    factor = 1.0 + (ZOOM_MAX_FACTOR - 1.0) * position.zoom
    w, h = ww / factor, wh / factor
    cx = ww / 2 + position.pan * PAN_REACH * ww
    cy = wh / 2 - position.tilt * PAN_REACH * wh
    return cx - w / 2, cy - h / 2, w, h


def ptz_view(world: np.ndarray, position: Position, width: int, height: int,
             moved: bool = False) -> np.ndarray:
    """The ``height × width`` picture of ``world`` at a PTZ position (optionally knocked
    aside by the "moved" fault). At the home position, not moved, it is ``resize_world``."""
    if position == HOME and not moved:
        return resize_world(world, width, height)
    wh, ww = world.shape[:2]
    x0, y0, w, h = view_window((ww, wh), position)
    sx, sy = w / width, h / height
    if sx > 1.0 or sy > 1.0:  # shrinking: average first, so fine texture does not alias
        kx, ky = max(sx, 1.0), max(sy, 1.0)
        small_w, small_h = max(1, round(ww / kx)), max(1, round(wh / ky))
        world = cv2.resize(world, (small_w, small_h), interpolation=cv2.INTER_AREA)
        fx, fy = small_w / ww, small_h / wh
        x0, y0, w, h = x0 * fx, y0 * fy, w * fx, h * fy
        sx, sy = w / width, h / height
    # Output pixel centre (u + ½) maps to world x0 + (u + ½)·sx, in OpenCV's pixel-centre
    # convention (the same as cv2.resize), so the view is continuous with the home view.
    to_world = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5],
                         [0.0, sy, y0 + 0.5 * sy - 0.5],
                         [0.0, 0.0, 1.0]])
    if moved:
        knock = cv2.getRotationMatrix2D((width / 2, height / 2), MOVED_ROTATION_DEG, 1.0)
        knock[:, 2] += (MOVED_SHIFT[0] * width, MOVED_SHIFT[1] * height)
        to_world = to_world @ np.vstack([knock, [0.0, 0.0, 1.0]])
    return cv2.warpAffine(world, to_world[:2], (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def covered_frame(width: int, height: int) -> np.ndarray:
    """A covered lens: a little light leaks in, the sensor still adds noise."""
    out = np.empty((height, width, 3), np.uint8)
    cv2.randn(out, (COVERED_LEVEL,) * 3, (COVERED_NOISE,) * 3)
    return out


def blurred(frame: np.ndarray) -> np.ndarray:
    sigma = max(2.0, frame.shape[1] * BLUR_SIGMA_PER_PX)
    return cv2.GaussianBlur(frame, (0, 0), sigma)


class CameraView:
    """One camera's picture: the world through the PTZ head, then the faults.

    Thread-safe (the snapshot and MJPEG handlers call it from worker threads): the world is
    asked under a lock. Frozen repeats the last picture rendered at that size (the encoder
    stopped taking new ones); the world is not asked while frozen.
    """

    def __init__(self, world: WorldSource) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._last: dict[tuple[int, int], np.ndarray] = {}

    def render(self, t_s: float, position: Position, faults: ViewFaults | None = None,
               width: int = 640, height: int = 360) -> np.ndarray:
        """The ``height × width × 3`` uint8 BGR picture at camera time ``t_s``."""
        f = faults or ViewFaults()
        size = (width, height)
        if f.frozen:
            with self._lock:
                last = self._last.get(size)
            if last is not None:
                return last
        if f.covered:
            out = covered_frame(width, height)
        else:
            with self._lock:
                world = self.world.frame(t_s)
            out = ptz_view(world, position, width, height, moved=f.moved)
            if f.blurred:
                out = blurred(out)
        with self._lock:
            if f.frozen:  # frozen before any picture of this size: this one is the repeat
                return self._last.setdefault(size, out)
            self._last[size] = out
        return out
