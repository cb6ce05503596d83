"""The emulated camera's view pipeline on a synthetic world: PTZ geometry and the image faults."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from firmware_sim.onvif.camera import Position
from firmware_sim.onvif.view import (
    MOVED_ROTATION_DEG,
    MOVED_SHIFT,
    PAN_REACH,
    ZOOM_MAX_FACTOR,
    CameraView,
    ViewFaults,
    ptz_view,
)

W, H = 640, 360


def _board(width: int = W, height: int = H, marker: int = 0) -> np.ndarray:
    """Textured world (a seeded checker of blocks) with a white square at the centre."""
    rng = np.random.default_rng(4)
    cells = rng.integers(30, 200, (height // 20 + 1, width // 20 + 1, 3)).astype(np.uint8)
    img = cv2.resize(cells, (cells.shape[1] * 20, cells.shape[0] * 20),
                     interpolation=cv2.INTER_NEAREST)[:height, :width].copy()
    cx, cy, half = width // 2, height // 2, max(4, width // 64)
    img[cy - half:cy + half, cx - half:cx + half] = 255
    if marker:  # a changing digit in a corner: a world that moves with time
        cv2.putText(img, str(marker), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 255), 3)
    return img


def _marker(frame: np.ndarray) -> tuple[float, float, float]:
    """Centre x, centre y and side of the white square."""
    white = np.all(frame >= 250, axis=2)
    ys, xs = np.nonzero(white)
    return float(xs.mean()), float(ys.mean()), float(xs.max() - xs.min() + 1)


class Ticking:
    """A world whose picture changes every call; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def frame(self, t_s: float) -> np.ndarray:
        self.calls += 1
        return _board(marker=self.calls)


# --------------------------------------------------------------------------- PTZ geometry


def test_home_view_is_the_world_exactly_resized() -> None:
    world = _board()
    assert np.array_equal(ptz_view(world, Position(), W, H), world)
    big = _board(1920, 1080)
    assert np.array_equal(ptz_view(big, Position(), W, H),
                          cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA))
    assert np.array_equal(ptz_view(world, Position(), 1920, 1080),
                          cv2.resize(world, (1920, 1080), interpolation=cv2.INTER_LINEAR))
    # A hair off home goes through the general warp and must look the same (no jump).
    nudged = ptz_view(world, Position(pan=1e-6), 1920, 1080).astype(int)
    home = ptz_view(world, Position(), 1920, 1080).astype(int)
    assert np.abs(nudged - home).mean() < 1.0


@pytest.mark.parametrize(("pan", "tilt"), [(0.2, 0.0), (-0.3, 0.0), (0.0, 0.2), (0.0, -0.25)])
def test_pan_and_tilt_move_the_content_the_right_way(pan: float, tilt: float) -> None:
    world = _board()
    x, y, _ = _marker(ptz_view(world, Position(pan=pan, tilt=tilt), W, H))
    x0, y0, _ = _marker(world)
    # Turning right (pan +) moves what is seen to the left; looking up (tilt +) moves it down.
    assert x == pytest.approx(x0 - pan * PAN_REACH * W, abs=1.0)
    assert y == pytest.approx(y0 + tilt * PAN_REACH * H, abs=1.0)


def test_zoom_magnifies_about_the_centre() -> None:
    world = _board()
    x0, y0, side0 = _marker(world)
    x, y, side = _marker(ptz_view(world, Position(zoom=1.0), W, H))
    assert side == pytest.approx(side0 * ZOOM_MAX_FACTOR, rel=0.1)
    assert (x, y) == pytest.approx((x0, y0), abs=2.0)
    _, _, half_way = _marker(ptz_view(world, Position(zoom=0.5), W, H))
    assert side0 < half_way < side


def test_view_beyond_the_world_is_still_a_picture() -> None:
    out = ptz_view(_board(), Position(pan=1.0, tilt=-1.0, zoom=1.0), W, H)
    assert out.shape == (H, W, 3) and out.std() > 20      # the world mirrored at its edge


# --------------------------------------------------------------------------- faults


def test_covered_is_near_black_with_noise() -> None:
    view = CameraView(Ticking())
    a = view.render(0.0, Position(), ViewFaults(covered=True))
    b = view.render(0.1, Position(), ViewFaults(covered=True))
    assert a.shape == (H, W, 3) and a.mean() < 8 and a.max() < 40
    assert a.std() > 0.5 and not np.array_equal(a, b)    # the sensor still adds noise


def test_blurred_loses_the_detail() -> None:
    view = CameraView(Ticking())
    sharp = cv2.cvtColor(view.render(0.0, Position()), cv2.COLOR_BGR2GRAY)
    soft = cv2.cvtColor(view.render(0.0, Position(), ViewFaults(blurred=True)),
                        cv2.COLOR_BGR2GRAY)
    assert cv2.Laplacian(soft, cv2.CV_64F).var() < cv2.Laplacian(sharp, cv2.CV_64F).var() / 20
    assert abs(float(soft.mean()) - float(sharp.mean())) < 5    # same light, no detail


def test_moved_shifts_and_turns_the_view() -> None:
    world = _board()
    moved = ptz_view(world, Position(), W, H, moved=True)
    x0, y0, _ = _marker(world)
    x, y, _ = _marker(moved)
    shift = np.hypot(x - x0, y - y0)
    assert shift > 0.5 * np.hypot(MOVED_SHIFT[0] * W, MOVED_SHIFT[1] * H)
    # Turned: a level line across the world comes out at the fault's angle.
    line = np.zeros((H, W, 3), np.uint8)
    line[H // 2 - 2:H // 2 + 2] = 255
    ys, xs = np.nonzero(ptz_view(line, Position(), W, H, moved=True)[..., 0] > 128)
    slope_deg = np.degrees(np.arctan(np.polyfit(xs, ys, 1)[0]))
    assert abs(slope_deg) == pytest.approx(MOVED_ROTATION_DEG, abs=0.5)


def test_frozen_repeats_the_last_picture_and_stops_asking_the_world() -> None:
    world = Ticking()
    view = CameraView(world)
    before = view.render(0.0, Position())
    assert not np.array_equal(before, view.render(0.1, Position()))   # the world moves
    last = view.render(0.2, Position())
    calls = world.calls
    frozen = [view.render(t, Position(pan=0.4), ViewFaults(frozen=True)) for t in (0.3, 5.0)]
    assert all(np.array_equal(f, last) for f in frozen)   # PTZ and time change nothing
    assert world.calls == calls
    # Each size keeps its own last picture; one never seen is taken once, then repeated.
    first_main = view.render(1.0, Position(), ViewFaults(frozen=True), 1920, 1080)
    assert first_main.shape == (1080, 1920, 3)
    assert np.array_equal(view.render(2.0, Position(), ViewFaults(frozen=True), 1920, 1080),
                          first_main)
    assert not np.array_equal(view.render(6.0, Position()), last)     # thawed: live again
