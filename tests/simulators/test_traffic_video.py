"""SUMO's vehicles drawn as a camera sees them: geometry, zones and the frames of a real run."""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulators.camera.scene import HEIGHT, LANE_PX, PX_PER_M, WIDTH
from simulators.traffic.detectors import LOOP_SETBACK_M
from simulators.traffic.discovery import discover
from simulators.traffic.scenario import Scenario
from simulators.traffic.video import (
    STOP_X,
    DrawnVehicle,
    IntersectionVideo,
    ViewPainter,
    exit_before_stop_m,
    plan_exit_view,
    plan_view,
    plan_views,
    x_px,
)

LANES = ("a_0", "a_1", "b_0")


def _mask(polygon) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(mask, [np.asarray(polygon, np.int32)], 1)
    return mask.astype(bool)


def _changed(frame: np.ndarray, empty: np.ndarray) -> np.ndarray:
    return np.abs(frame.astype(int) - empty.astype(int)).max(axis=2) > 25


def test_zones_sit_at_the_stop_line_in_each_band() -> None:
    view = plan_view(LANES, (150.0, 150.0, 30.0), (50.0, 50.0, 30.0))
    assert [len(q) for q in view.queues] == [6, 6, 4]  # 45 m of 7.5 m zones; 30 m lane: 4
    for k, (loop, chain) in enumerate(zip(view.loops, view.queues, strict=True)):
        top, bottom = view.band(k)
        polys = {z.zone_id: z.polygon for z in view.zones}
        xs = [x for x, _ in polys[loop]]
        ys = [y for _, y in polys[loop]]
        # The virtual loop covers where the stop-line loop lies, inside its own band.
        assert min(xs) <= x_px(LOOP_SETBACK_M) <= max(xs)
        assert top < min(ys) and max(ys) < bottom
        assert max(xs) < STOP_X
        # Queue zones run back from the stop line, one after the other, none overlapping.
        spans = [sorted({x for x, _ in polys[q]}) for q in chain]
        assert spans[0][1] == STOP_X
        assert all(a[0] > b[1] for a, b in pairwise(spans))
    assert view.road_top >= 0 and view.band(len(LANES) - 1)[1] <= HEIGHT


def test_a_vehicle_shows_in_its_own_lanes_zones_only() -> None:
    view = plan_view(LANES, (150.0,) * 3, (50.0,) * 3)
    painter = ViewPainter(view, seed=3, drift_amplitude=0.0)
    empty = painter.paint([], 0.0)
    assert empty.shape == (HEIGHT, WIDTH, 3) and empty.dtype == np.uint8
    # A car standing at the stop line on the middle lane, one 22.5 m back on the first: the
    # fourth car of a standing queue, in the fourth queue zone (22.5–29.5 m).
    frame = painter.paint([DrawnVehicle(1, 0.2, 5.0, 1.8),
                           DrawnVehicle(0, 22.5, 5.0, 1.8, colour_key=4)], 0.0)
    changed = _changed(frame, empty)
    cover = {z.zone_id: changed[_mask(z.polygon)].mean() for z in view.zones}
    assert cover["a_1/loop"] > 0.5 and cover["a_1/q0"] > 0.3
    assert cover["a_0/q3"] > 0.5
    assert cover["a_0/q2"] < 0.05 and cover["a_0/q4"] < 0.05 and cover["a_0/loop"] < 0.05
    assert all(v < 0.05 for k, v in cover.items() if k.startswith("b_0"))
    # Drawn where the metres say: the front 0.2 m before the stop line.
    top, bottom = view.band(1)
    cols = np.flatnonzero(changed[top:bottom].any(axis=0))
    assert abs(cols.max() - (STOP_X - 0.2 * PX_PER_M)) <= 6  # + the shadow's 4 px
    assert abs((cols.max() - cols.min()) - 5.0 * PX_PER_M) <= 6


def test_exit_view_watches_the_first_metres_after_the_junction() -> None:
    view = plan_exit_view(("c_0", "c_1"), (148.0, 20.0))
    assert view.exit and view.loops == ()
    assert [len(q) for q in view.queues] == [6, 2]  # 45 m of zones; a 20 m lane: two
    painter = ViewPainter(view, seed=5, drift_amplitude=0.0)
    empty = painter.paint([], 0.0)
    # A car whose front is 13 m down the first outgoing lane: it covers 8–13 m, zone x1.
    frame = painter.paint([DrawnVehicle(0, exit_before_stop_m(13.0), 5.0, 1.8)], 0.0)
    changed = _changed(frame, empty)
    cover = {z.zone_id: changed[_mask(z.polygon)].mean() for z in view.zones}
    assert cover["c_0/x1"] > 0.5
    assert all(v < 0.05 for k, v in cover.items() if k != "c_0/x1")


def test_many_lanes_take_several_cameras() -> None:
    class Light:
        incoming_lanes = tuple(f"e{e}_{k}" for e in range(4) for k in range(3))
        lane_length_m = dict.fromkeys(incoming_lanes, 100.0)

    views = plan_views(Light(), [50.0] * 12)  # type: ignore[arg-type]
    assert [len(v.lanes) for v in views] == [6, 6]  # whole approaches, ≤ 7 bands per frame
    assert sum((v.lanes for v in views), ()) == Light.incoming_lanes
    for v in views:
        assert v.band(len(v.lanes) - 1)[1] <= HEIGHT and len(v.lanes) * LANE_PX <= HEIGHT


def test_frames_follow_sumo_between_steps(single_intersection: Path) -> None:
    import libsumo as api

    scenario = Scenario.from_sumocfg(single_intersection)
    with tempfile.TemporaryDirectory() as tmp:
        api.start(scenario.command(seed=1, end_s=60, run_dir=Path(tmp)))
        try:
            light = discover(api)[0]
            views = plan_views(light, [50.0] * len(light.incoming_lanes))
            video = IntersectionVideo(api, views, fps=5.0, t_s=0.0)
            times, busy = [], []
            for _ in range(40):
                api.simulationStep()
                for t, pictures in video.advance(float(api.simulation.getTime())):
                    times.append(t)
                    assert len(pictures) == 1 and pictures[0].shape == (HEIGHT, WIDTH, 3)
                    top, bottom = views[0].band(2)  # w_t_0, the busier approach
                    busy.append(float(pictures[0][top + 8:bottom - 8, :STOP_X].std()))
        finally:
            api.close()
    assert times == pytest.approx([k / 5 for k in range(1, 201)])
    assert video.frames == 200
    assert max(busy) > 2 * min(busy)  # vehicles come into a lane that started empty


class _FakeSumo:
    """Just what IntersectionVideo reads, for one vehicle on a scripted path."""

    class TraCIException(Exception):
        pass

    def __init__(self) -> None:
        self.where: dict[str, tuple[str, float, float]] = {}  # vid → (lane, pos, odometer)
        api = self

        class Lane:
            @staticmethod
            def getLastStepVehicleIDs(lane: str) -> list[str]:
                return [v for v, (ln, _, _) in api.where.items() if ln == lane]

        class Vehicle:
            getLanePosition = staticmethod(lambda v: api.where[v][1])
            getDistance = staticmethod(lambda v: api.where[v][2])
            getLaneID = staticmethod(lambda v: api.where[v][0])
            getSpeed = staticmethod(lambda v: 14.0)
            getLength = staticmethod(lambda v: 5.0)
            getWidth = staticmethod(lambda v: 1.8)
            getVehicleClass = staticmethod(lambda v: "passenger")

        class Simulation:
            getDeltaT = staticmethod(lambda: 1.0)

        self.lane, self.vehicle, self.simulation = Lane, Vehicle, Simulation


def test_a_fast_vehicle_crosses_the_virtual_loop_between_steps() -> None:
    # At 14 m/s a car 5 m short of the stop line is past the junction one step later: the
    # approach camera must still show it over the loop in the frames between, and the exit
    # camera must pick it up.
    api = _FakeSumo()
    approach = plan_view(("a_0",), (100.0,), (50.0,))
    exit_view = plan_exit_view(("x_0",), (100.0,))
    api.where["car"] = ("a_0", 95.0, 95.0)
    video = IntersectionVideo(api, (approach, exit_view), fps=5.0, t_s=0.0)
    api.where["car"] = ("x_0", 4.0, 109.0)  # 5 m through the junction, 4 m down the exit
    frames = video.advance(1.0)
    assert [t for t, _ in frames] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    empty = ViewPainter(approach, seed=1).paint([], 0.2)
    loop = _mask(next(z.polygon for z in approach.zones if z.zone_id == "a_0/loop"))
    over_loop = [_changed(pictures[0], empty)[loop].mean() for _, pictures in frames]
    assert max(over_loop) > 0.5  # 95 + 14 × 0.2…0.4 m: over the loop at 97.75–99.25 m
    assert over_loop[-1] < 0.05  # front 9 m past the line: the rear has cleared it
    first_exit = _mask(next(z.polygon for z in exit_view.zones if z.zone_id == "x_0/x0"))
    empty_exit = ViewPainter(exit_view, seed=102).paint([], 1.0)
    assert _changed(frames[-1][1][1], empty_exit)[first_exit].mean() > 0.3
