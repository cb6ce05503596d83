"""`kota bench video`: the edge's video detectors on rendered scenes with exact ground truth.

Speed: frames per second per core of ``edge.camera.detectors.ZoneDetector`` plus
``TamperDetector`` at 640×360 with 8 zones, on pre-rendered frames (the renderer is not
timed), OpenCV single-threaded, median of runs. Accuracy: count error and per-frame zone
presence F1 against the scene's truth for day, night and noisy pictures, and how long each
kind of tamper takes to be raised. A script, not a test; the tests reuse its measurements.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge.camera.detectors import (
    TamperConfig,
    TamperDetector,
    ZoneConfig,
    ZoneDetector,
    ZoneDetectorConfig,
)
from simulators.camera.scene import HEIGHT, WIDTH, Condition, Scene, SceneConfig, Tamper


def detector_for(scene: Scene, fps: float) -> ZoneDetector:
    zones = tuple(ZoneConfig(z.zone_id, z.polygon) for z in scene.zones)
    lanes = sorted({z.zone_id.split("Z")[0] for z in scene.zones})
    queues = tuple(tuple(z.zone_id for z in scene.zones if z.zone_id.startswith(lane + "Z"))
                   for lane in lanes)
    return ZoneDetector(ZoneDetectorConfig(zones=zones, queues=queues, fps=fps),
                        (WIDTH, HEIGHT))


@dataclass(frozen=True, slots=True)
class Accuracy:
    condition: str
    seconds: float
    count_truth: int
    count_detected: int
    count_error_pct: float          # |detected − truth| / truth, stop-line (counting) zones
    zone_count_error_pct: float     # mean over those zones of the same, per zone
    all_zones_count_error_pct: float  # queue zones too: a discharging queue keeps them busy
    presence_f1: float
    frames: int

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def accuracy(condition: Condition, seconds: float = 150.0, fps: float = 10.0, seed: int = 3,
             settle_s: float = 60.0) -> Accuracy:
    """Run the zone detector over ``settle_s + seconds`` of scene; score the last ``seconds``.

    The settling time covers the detector's warm-up and one signal cycle, so a queue that
    stood still while the background model was still learning fast is not scored.
    """
    scene = Scene(SceneConfig(seed=seed, condition=condition))
    det = detector_for(scene, fps)
    settle = round(settle_s * fps)
    frames = settle + round(seconds * fps)
    truth_on, det_on = [], []
    truth_count = np.zeros(len(scene.zones), np.int64)
    for i in range(frames):
        frame, truth = scene.frame(i / fps)
        present = det.update(det.small(frame))
        if i == settle - 1:
            det.interval()                  # counts start with the scored part
        if i >= settle:
            truth_on.append(truth.occupied)
            det_on.append(present.copy())
            truth_count += [len(e) for e in truth.entered]
    counted = np.asarray(det.interval().det_count)
    t, p = np.asarray(truth_on), np.asarray(det_on)
    tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
    heads = [i for i, z in enumerate(scene.zones) if z.zone_id.endswith("Z0")]
    per_zone = np.abs(counted - truth_count)[heads] / np.maximum(truth_count[heads], 1) * 100
    total, found = int(truth_count[heads].sum()), int(counted[heads].sum())
    every = abs(int(counted.sum()) - int(truth_count.sum())) / max(int(truth_count.sum()), 1)
    return Accuracy(condition, seconds, total, found,
                    round(abs(found - total) / max(total, 1) * 100, 2),
                    round(float(per_zone.mean()), 2), round(every * 100, 2),
                    round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else 1.0, len(t))


def tamper_delay_s(kind: Tamper, fps: float = 10.0, seed: int = 5, onset_s: float = 30.0,
                   limit_s: float = 10.0, condition: Condition = "day") -> float | None:
    """Seconds from the tamper's onset to its event (None: not raised within ``limit_s``)."""
    scene = Scene(SceneConfig(seed=seed, condition=condition))
    zone = detector_for(scene, fps)
    tamper = TamperDetector(TamperConfig(fps=fps))
    for i in range(round((onset_s + limit_s) * fps)):
        t = i / fps
        frame, _ = scene.frame(t, tamper=kind if t >= onset_s else None)
        events = tamper.update(zone.small(frame))
        if t >= onset_s and any(e.kind == kind and e.active for e in events):
            return round(t - onset_s, 2)
    return None


def tamper_false_alarms(condition: Condition, seconds: float = 600.0, fps: float = 1.0,
                        seed: int = 11) -> list[str]:
    """Tamper events raised over ``seconds`` of an untampered scene (should be none).

    The detector is told the fps, so a low frame rate covers many simulated minutes cheaply.
    """
    scene = Scene(SceneConfig(seed=seed, condition=condition))
    zone = detector_for(scene, fps)
    tamper = TamperDetector(TamperConfig(fps=fps))
    raised = []
    for i in range(round(seconds * fps)):
        t = i / fps
        raised += [f"{e.kind}@{t:.0f}s" for e in tamper.update(zone.small(scene.frame(t)[0]))
                   if e.active]
    return raised


def render(frames: int, fps: float = 10.0, seed: int = 4) -> list[np.ndarray]:
    scene = Scene(SceneConfig(seed=seed))
    return [scene.frame(i / fps)[0] for i in range(frames)]


def speed(frames: list[np.ndarray], runs: int = 3, fps: float = 10.0) -> dict[str, Any]:
    """Frames per second of ZoneDetector + TamperDetector on one core, median of ``runs``."""
    cv2.setNumThreads(1)
    scene = Scene(SceneConfig(seed=4))
    rates = []
    for _ in range(runs):
        det = detector_for(scene, fps)
        tamper = TamperDetector(TamperConfig(fps=fps))
        start = time.perf_counter()
        for frame in frames:
            small = det.small(frame)
            tamper.update(small)
            det.update(small, faulty=bool(tamper.active))
        rates.append(len(frames) / (time.perf_counter() - start))
    return {"fps_per_core": round(statistics.median(rates), 1),
            "fps_runs": [round(r, 1) for r in rates], "frames": len(frames),
            "zones": len(scene.zones), "resolution": f"{WIDTH}x{HEIGHT}", "goal_fps": 200}


def bench_video(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.runs < 1 or args.seeds < 1 or not args.seconds > 0:
        print("kota bench video: --frames, --runs, --seeds and --seconds must be positive",
              file=sys.stderr)
        return 2
    frames = render(args.frames)
    figures: dict[str, Any] = {"speed": speed(frames, args.runs)}
    s = figures["speed"]
    print(f"  speed  {s['fps_per_core']:8.1f} frames/s per core  (runs {s['fps_runs']}, "
          f"{s['zones']} zones, {s['resolution']}, goal ≥ 200)", flush=True)
    figures["accuracy"] = {}
    for condition in ("day", "night", "noisy"):
        runs = []
        for seed in range(3, 3 + args.seeds):
            acc = accuracy(condition, seconds=args.seconds, seed=seed)
            runs.append({"seed": seed, **acc.as_dict()})
            print(f"  {condition:<6} seed {seed}  count error {acc.count_error_pct:5.1f} % "
                  f"(per zone {acc.zone_count_error_pct:5.1f} %, {acc.count_detected}/"
                  f"{acc.count_truth}; all zones {acc.all_zones_count_error_pct:5.1f} %)  "
                  f"presence F1 {acc.presence_f1:.3f}", flush=True)
        figures["accuracy"][condition] = {
            "runs": runs,
            "worst_count_error_pct": max(r["count_error_pct"] for r in runs),
            "median_count_error_pct": statistics.median(r["count_error_pct"] for r in runs),
            "worst_presence_f1": min(r["presence_f1"] for r in runs),
            "median_presence_f1": statistics.median(r["presence_f1"] for r in runs)}
    figures["tamper_delay_s"] = {}
    figures["tamper_false_alarms_10_min"] = {}
    for condition in ("day", "night", "noisy"):
        delays = {kind: tamper_delay_s(kind, condition=condition)
                  for kind in ("covered", "blurred", "moved", "frozen")}
        figures["tamper_delay_s"][condition] = delays
        false = tamper_false_alarms(condition)
        figures["tamper_false_alarms_10_min"][condition] = false
        print(f"  tamper {condition:<6} raised after (s) {delays}; false alarms in 10 min: "
              f"{len(false)}", flush=True)
    if args.json:
        print(json.dumps(figures))
    raised = all(d is not None and d <= 5.0
                 for delays in figures["tamper_delay_s"].values() for d in delays.values())
    return 0 if raised else 1


def add_parser(bench_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `video` on the `kota bench` subparsers; returns its parser."""
    p = bench_subparsers.add_parser(
        "video", help="OpenCV video detectors (zones as virtual loops, tamper) on rendered scenes",
        description="Render a road scene with exact ground truth (simulators.camera) and run the "
        "edge's video detectors (edge.camera.detectors) over it. (1) Speed: ZoneDetector plus "
        "TamperDetector at 640x360 with 8 zones on --frames pre-rendered frames (the renderer "
        "is not timed), OpenCV single-threaded, frames/s per core, median of --runs (goal "
        "≥ 200). (2) Accuracy in the same run: count error % (stop-line zones, and all "
        "zones) and per-frame presence F1 over all zones for day, night and noisy scenes, "
        "--seconds scored after 60 s of settling, on --seeds scenes; at night zones count headlamps. (3) Seconds "
        "from onset until each tamper (covered, blurred, moved, frozen) is raised, and tamper "
        "false alarms over 10 minutes of untampered scene, per condition.",
        epilog="Example: `kota bench video --json`. Exit codes: 0 done, 1 a tamper was not "
        "raised within 5 s, 2 bad arguments.")
    p.set_defaults(func=bench_video)
    p.add_argument("--frames", type=int, default=1000, metavar="N",
                   help="pre-rendered frames per speed run (default 1000)")
    p.add_argument("--runs", type=int, default=5, metavar="R",
                   help="speed runs; the median is reported (default 5)")
    p.add_argument("--seconds", type=float, default=300.0, metavar="S",
                   help="scored seconds of scene per condition at 10 fps (default 300)")
    p.add_argument("--seeds", type=int, default=3, metavar="K",
                   help="scenes (seeds 3, 4, …) per condition; per-seed, median and worst "
                   "figures are reported (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    return p
