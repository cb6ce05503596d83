"""The ONVIF camera emulator over the simulated approach (simulators.camera.live): its snapshots
feed the edge's zone detector with the approach's own zones; the clock paces the scene."""

from __future__ import annotations

import json
import time

import cv2
import httpx
import numpy as np
import pytest

from edge.camera.detectors import ZoneConfig, ZoneDetector, ZoneDetectorConfig
from edge.settings import CameraZoneSettings
from firmware_sim.onvif.camera import Position
from firmware_sim.onvif.server import CameraEmulator
from firmware_sim.onvif.view import ptz_view
from kota.sim_camera import approach_camera, zone_rows
from simulators.camera.live import LiveScene, condition_at
from simulators.camera.scene import HEIGHT, SIM_DT_S, WIDTH, SceneConfig, approach_zones

USER, PASSWORD = "admin", "kamera123"
FPS = 10.0
NOON_WIB = 1_764_046_800.0      # 2025-11-25 05:00 UTC = 12:00 WIB


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize("condition", ["day", "night"])
def test_snapshots_of_the_approach_feed_the_zone_detector(condition: str) -> None:
    """25 s of scene as 250 digest-authenticated snapshots of the sub profile at the home
    position; the camera clock (its skew) is set 0.1 s on per snapshot, so the scene runs at
    10 frames per scene second however fast the loop goes."""
    with (approach_camera(condition=condition, seed=3, user=USER, password=PASSWORD) as emu,
          httpx.Client(auth=httpx.DigestAuth(USER, PASSWORD), timeout=5) as http):
        world = emu.view.world
        assert isinstance(world, LiveScene)
        zones = tuple(ZoneConfig(z.zone_id, z.polygon) for z in approach_zones())
        det = ZoneDetector(ZoneDetectorConfig(zones=zones, fps=FPS), (WIDTH, HEIGHT))
        url = f"{emu.base_url}/snapshot.jpg?profile=Profile_Sub"
        detected, truth = [], []
        start = time.time()
        for i in range(250):
            with emu.camera.lock:
                emu.camera.faults.skew_s = start + i / FPS - time.time()
            reply = http.get(url)
            assert reply.status_code == 200
            present = det.update(det.small(_decode(reply.content)))
            if i >= 100:        # after the warm-up and a signal phase
                assert world.truth is not None
                detected.append(present.copy())
                truth.append(world.truth.occupied)
    d, t = np.array(detected), np.array(truth)
    assert world.scene_t_s == pytest.approx(24.9, abs=0.05)
    seen = d.any(axis=1)[t.any(axis=1)]
    assert seen.mean() > 0.9        # a vehicle in some zone: seen in some zone
    assert d.any(axis=0).sum() >= 4                 # … in several zones
    f1 = 2 * (d & t).sum() / (d.sum() + t.sum())
    print(f"\n{condition}: presence F1 {f1:.3f} over {d.size} zone-frames")
    assert f1 >= 0.8


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference with the sensor noise and JPEG blocks smoothed out."""
    smooth = [cv2.GaussianBlur(x, (0, 0), 1.5).astype(int) for x in (a, b)]
    return float(np.abs(smooth[0] - smooth[1]).mean())


class Recording:
    """A world that keeps the last picture it handed out."""

    def __init__(self, world: LiveScene) -> None:
        self.world = world
        self.last: np.ndarray | None = None

    def frame(self, t_s: float) -> np.ndarray:
        self.last = self.world.frame(t_s)
        return self.last


def test_snapshot_is_the_world_through_the_ptz_view() -> None:
    rec = Recording(LiveScene(SceneConfig(seed=2), condition="day"))
    with CameraEmulator(user=USER, password=PASSWORD, world=rec) as emu:
        home = _decode(emu.frame_jpeg("Profile_Sub"))
        assert rec.last is not None
        assert _diff(home, rec.last) < 1.5       # JPEG's loss only: zones fit
        main = _decode(emu.frame_jpeg("Profile_Main"))
        assert main.shape == (1080, 1920, 3)
        target = Position(pan=0.3, tilt=-0.2, zoom=0.5)
        with emu.camera.lock:
            emu.camera.ptz.go_to(emu.camera.now_s(), target)
            emu.camera.ptz.position = target        # arrived (no travel time in the test)
            emu.camera.ptz.target = None
        moved = _decode(emu.frame_jpeg("Profile_Sub"))
        assert _diff(moved, rec.last) > 15
        assert _diff(moved, ptz_view(rec.last, target, WIDTH, HEIGHT)) < 1.5


def test_live_scene_follows_the_clock_monotonically_with_a_capped_catch_up() -> None:
    live = LiveScene(SceneConfig(seed=4), condition="day", max_catch_up_s=5.0)
    t0 = time.time()
    first = live.frame(t0)
    assert first.shape == (HEIGHT, WIDTH, 3) and live.scene_t_s == 0.0
    assert live.frame(t0 + SIM_DT_S / 3) is first               # within a step: the same
    after_gap = live.frame(t0 + 3600.0)
    assert live.scene_t_s == pytest.approx(5.0 + SIM_DT_S / 3)  # an hour away: 5 s caught up
    assert live.frame(t0 + 10.0) is after_gap                   # clock set back: held
    live.frame(t0 + 10.5)
    assert live.scene_t_s == pytest.approx(5.5 + SIM_DT_S / 3)  # then on from the new time
    assert live.truth is not None and live.truth.t_s == live.scene_t_s


def test_live_scene_light_by_the_wib_hour_or_fixed() -> None:
    assert condition_at(NOON_WIB) == "day"
    assert condition_at(NOON_WIB + 7 * 3600) == "night"        # 19:00 WIB
    assert condition_at(NOON_WIB - 6.5 * 3600) == "night"      # 05:30 WIB
    auto = LiveScene(SceneConfig(seed=4))
    day = auto.frame(NOON_WIB).mean()
    night = auto.frame(NOON_WIB + 7 * 3600).mean()
    assert night < day / 2 and auto.scene_t_s == 0.0           # a new road in night light
    fixed = LiveScene(SceneConfig(seed=4), condition="noisy")
    fixed.frame(NOON_WIB + 7 * 3600)
    assert fixed.condition(NOON_WIB + 7 * 3600) == "noisy"
    with pytest.raises(ValueError):
        LiveScene(condition="dusk")  # type: ignore[arg-type]


def test_kota_sim_camera_prints_the_approach_zones(capsys: pytest.CaptureFixture[str]) -> None:
    from kota.cli import main

    assert main(["sim", "camera", "--port", "0", "--duration", "0.1", "--json", "--zones",
                 "--condition", "night", "--seed", "7"]) == 0
    ready = json.loads(capsys.readouterr().out.splitlines()[0])["camera"]
    assert (ready["scene"], ready["condition"], ready["seed"]) == ("approach", "night", 7)
    assert ready["zone_frame"] == [WIDTH, HEIGHT]
    assert ready["zones"] == zone_rows(approach_zones())
    edge_zones = [CameraZoneSettings(**z) for z in ready["zones"]]   # an edge config takes them
    assert [z.length_m for z in edge_zones[:2]] == [3.0, 6.0]
    assert main(["sim", "camera", "--port", "0", "--duration", "0.1", "--json",
                 "--scene", "pattern"]) == 0
    ready = json.loads(capsys.readouterr().out.splitlines()[0])["camera"]
    assert ready["scene"] == "pattern" and "zones" not in ready
    assert main(["sim", "camera", "--port", "0", "--scene", "pattern", "--zones"]) == 2
