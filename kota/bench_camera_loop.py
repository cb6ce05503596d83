"""`kota bench camera-loop`: the kota controller closing the loop on camera zones alone.

Runs a SUMO scenario under the kota controller twice per seed: with the stop-line loops and
camera zones SUMO measures (as `kota bench control` does), and with one intersection's
detectors replaced by what the edge's video detector (edge.camera.detectors.ZoneDetector)
measures on frames of SUMO's own vehicles (simulators.traffic.video). Prints both average
delays, how far the camera's counts are from the loops' over the run, and the frame rate. A
script, not a test; it writes nothing next to the scenario.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.camera.detectors import ZoneConfig, ZoneDetector, ZoneDetectorConfig
from simulators.camera.scene import HEIGHT, WIDTH, Condition
from simulators.traffic.detectors import DetectorLayout, DetectorReport
from simulators.traffic.errors import ControllerError
from simulators.traffic.video import (
    CameraView,
    IntersectionVideo,
    plan_exit_views,
    plan_views,
)

DEFAULT_FPS = 5.0
# The virtual loop at a stop line is covered by a standing car for much of every red. MOG2
# takes a colour into the background once it holds about a tenth of the model's weight, so
# at a busy stop line the standing cars' colours join the road within minutes: with a 600 s
# memory the approaches that wait longest lost stopped cars, which flickered back as extra
# counts (single-intersection, seed 1, 3600 s: 102.0 % of the loops' count, 11.1 s/veh
# against 10.8 with loops). One hour of memory keeps them foreground for the run (100.1 %,
# 10.8 s/veh; 10 hours measured the same); slow lighting drift is the detector's automatic
# gain's job.
BACKGROUND_S = 3600.0


def zone_detector_for(view: CameraView, fps: float,
                      background_s: float = BACKGROUND_S) -> ZoneDetector:
    """The edge's production zone detector, configured with the zones drawn on ``view``."""
    zones = tuple(ZoneConfig(z.zone_id, z.polygon) for z in view.zones)
    return ZoneDetector(ZoneDetectorConfig(zones=zones, queues=view.queues, fps=fps,
                                           background_s=background_s), (WIDTH, HEIGHT))


class CameraReports:
    """Camera zones in place of one intersection's loops and SUMO camera zones.

    Per incoming lane: the virtual loop's count and occupancy become count_veh and
    occupancy_pct; the queue zones' unbroken run from the stop line becomes queue_veh and
    the occupied queue zones (one car each when standing) zone_veh and zone_occupancy_pct.
    With ``exits`` (the default) exit cameras replace the exit zones too: occupied zones
    become exit_veh, and zones occupied in every frame of the interval (a car standing:
    a moving one crosses a 7 m zone in about a second) exit_queue_veh. The loops' own
    counts are kept alongside, to say how far the camera is from them.
    """

    def __init__(self, tls_id: str | None, *, fps: float = DEFAULT_FPS,
                 condition: Condition = "day", seed: int = 1,
                 background_s: float = BACKGROUND_S, exits: bool = True) -> None:
        self.tls_id = tls_id
        self.exits = exits
        self.background_s = background_s
        self.fps = fps
        self.condition: Condition = condition
        self.seed = seed
        self.frames = 0
        self.render_s = 0.0
        self.detect_s = 0.0
        self._video: IntersectionVideo | None = None
        self._detectors: list[ZoneDetector] = []
        self._row = 0
        self._slots: list[list[tuple[int, int, list[int]]]] = []  # per view: (d, loop, queue)
        self.loop_count = np.zeros(0)
        self.camera_count = np.zeros(0)
        self.lanes: tuple[str, ...] = ()
        self._zone_err: list[float] = []
        self._exit_slots: list[list[tuple[int, list[int]]]] = []  # per exit view: (e, chain)
        self._exit_err: list[float] = []
        self._exit_queue_err: list[float] = []

    def begin(self, api: Any, layout: DetectorLayout, t_s: float) -> None:
        ids = [tl.tls_id for tl in layout.lights]
        if not ids:
            raise ControllerError("the network has no controllable traffic light for a camera")
        tls_id = self.tls_id or ids[0]
        if tls_id not in ids:
            raise ControllerError(f"no controllable traffic light {tls_id!r}; the network has "
                                  f"{', '.join(ids)}")
        self.tls_id = tls_id
        self._row = i = ids.index(tls_id)
        light = layout.lights[i]
        self.lanes = light.incoming_lanes
        views = plan_views(light, layout.zone_length_m[i])
        exit_views = plan_exit_views(light) if self.exits else ()
        self._video = IntersectionVideo(api, (*views, *exit_views), fps=self.fps,
                                        condition=self.condition, seed=self.seed, t_s=t_s)
        self._detectors = [zone_detector_for(v, self.fps, self.background_s)
                           for v in (*views, *exit_views)]
        self._exit_slots = []
        for view in exit_views:
            index = {z.zone_id: n for n, z in enumerate(view.zones)}
            self._exit_slots.append([(light.outgoing_lanes.index(lane), [index[z] for z in chain])
                                     for lane, chain in zip(view.lanes, view.queues,
                                                            strict=True)])
        self._slots = []
        for view in views:
            index = {z.zone_id: n for n, z in enumerate(view.zones)}
            self._slots.append([(light.incoming_lanes.index(lane), index[loop],
                                 [index[q] for q in chain])
                                for lane, loop, chain in zip(view.lanes, view.loops,
                                                             view.queues, strict=True)])
        self.loop_count = np.zeros(len(self.lanes))
        self.camera_count = np.zeros(len(self.lanes))

    def step(self, api: Any, t_s: float) -> None:
        assert self._video is not None
        t0 = time.perf_counter()
        frames = self._video.advance(t_s)
        t1 = time.perf_counter()
        for _, pictures in frames:
            for det, picture in zip(self._detectors, pictures, strict=True):
                det.update(det.small(picture))
                self.frames += 1
        self.render_s += t1 - t0
        self.detect_s += time.perf_counter() - t1

    def report(self, report: DetectorReport, t_s: float) -> DetectorReport:
        i = self._row
        count, occ = report.count_veh.copy(), report.occupancy_pct.copy()
        queue, zone_veh = report.queue_veh.copy(), report.zone_veh.copy()
        zone_occ, valid = report.zone_occupancy_pct.copy(), report.valid.copy()
        exit_veh, exit_queue = report.exit_veh.copy(), report.exit_queue_veh.copy()
        n_approach = len(self._slots)
        for det, exit_slots in zip(self._detectors[n_approach:], self._exit_slots, strict=True):
            present = det.present
            busy = np.asarray(det.interval().det_occupancy_pct) >= 99.9
            for e, chain in exit_slots:
                exit_veh[i, e] = float(present[chain].sum())
                exit_queue[i, e] = float(busy[chain].sum())
                self._exit_err.append(abs(exit_veh[i, e] - report.exit_veh[i, e]))
                self._exit_queue_err.append(abs(exit_queue[i, e] - report.exit_queue_veh[i, e]))
        for det, slots in zip(self._detectors[:n_approach], self._slots, strict=True):
            present = det.present
            iv = det.interval()
            for chain_no, (d, loop, chain) in enumerate(slots):
                self.loop_count[d] += report.count_veh[i, d]
                self.camera_count[d] += iv.det_count[loop]
                count[i, d] = iv.det_count[loop]
                occ[i, d] = iv.det_occupancy_pct[loop]
                queue[i, d] = iv.queue_zones[chain_no]
                zone_veh[i, d] = float(present[chain].sum())
                zone_occ[i, d] = float(present[chain].mean()) * 100.0
                valid[i, d] = not iv.det_fault[loop]
                self._zone_err.append(abs(zone_veh[i, d] - report.zone_veh[i, d]))
        return dataclasses.replace(report, count_veh=count, occupancy_pct=occ, queue_veh=queue,
                                   zone_veh=zone_veh, zone_occupancy_pct=zone_occ, valid=valid,
                                   exit_veh=exit_veh, exit_queue_veh=exit_queue)

    def figures(self) -> dict[str, Any]:
        """Camera against loops over the run, and the frame rate of render + detect."""
        loops, cams = float(self.loop_count.sum()), float(self.camera_count.sum())
        lane_err = np.abs(self.camera_count - self.loop_count)
        busy_s = self.render_s + self.detect_s
        return {
            "intersection": self.tls_id, "lanes": list(self.lanes),
            "loop_count": int(loops), "camera_count": int(cams),
            "count_agreement_pct": round(cams / loops * 100.0, 1) if loops else None,
            "lane_count_error_pct": round(float(lane_err.sum()) / loops * 100.0, 1)
            if loops else None,
            "per_lane": {ln: [int(lp), int(c)] for ln, lp, c in
                         zip(self.lanes, self.loop_count, self.camera_count, strict=True)},
            "zone_veh_mean_abs_error": round(float(np.mean(self._zone_err)), 2)
            if self._zone_err else None,
            "exits": "camera" if self.exits else "sumo",
            "exit_veh_mean_abs_error": round(float(np.mean(self._exit_err)), 2)
            if self._exit_err else None,
            "exit_queue_mean_abs_error": round(float(np.mean(self._exit_queue_err)), 3)
            if self._exit_queue_err else None,
            "frames": self.frames, "cameras": len(self._detectors),
            "frames_per_s": round(self.frames / busy_s, 1) if busy_s else None,
            "render_s": round(self.render_s, 1), "detect_s": round(self.detect_s, 1),
        }


def run_once(sumocfg: str, *, seed: int, end_s: float | None, camera: bool,
             intersection: str | None, fps: float, condition: Condition,
             tripinfo: Path, background_s: float = BACKGROUND_S,
             exits: bool = True) -> dict[str, Any]:
    """One kota run, with loops (``camera`` False) or the intersection on camera zones."""
    from simulators.traffic.kota_controller import KotaController
    from simulators.traffic.runner import run_scenario
    from simulators.traffic.scenario import Scenario

    cv2.setNumThreads(1)  # one run, one core: --jobs says how many run side by side
    scenario = Scenario.from_sumocfg(sumocfg)
    horizon_s = scenario.horizon_s(end_s)
    source = CameraReports(intersection, fps=fps, condition=condition, seed=seed,
                           background_s=background_s, exits=exits) if camera else None
    result = run_scenario(scenario, KotaController(), seed=seed, end_s=horizon_s,
                          tripinfo=tripinfo, report_source=source)
    run = {"mode": "camera" if camera else "loops", "seed": seed, "end_s": horizon_s,
           "sim_end_s": result.sim_end_s, "wall_s": round(result.wall_s, 2),
           **result.metrics.as_dict()}
    if source is not None:
        run["camera"] = source.figures()
    return run


def _job(sumocfg: str, seed: int, end_s: float | None, camera: bool, intersection: str | None,
         fps: float, condition: str, background_s: float, exits: bool,
         out_dir: str) -> dict[str, Any]:
    mode = "camera" if camera else "loops"
    return run_once(sumocfg, seed=seed, end_s=end_s, camera=camera, intersection=intersection,
                    fps=fps, condition=condition,  # type: ignore[arg-type]
                    tripinfo=Path(out_dir) / f"kota-{mode}-seed{seed}.tripinfo.xml",
                    background_s=background_s, exits=exits)


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("loops", "camera"):
        mine = sorted((r for r in runs if r["mode"] == mode), key=lambda r: r["seed"])
        if not mine:
            continue
        mean, std = _mean_std([r["avg_delay_s"] for r in mine])
        out[mode] = {"avg_delay_s": {"mean": round(mean, 2), "std": round(std, 2)},
                     "per_seed": {r["seed"]: r["avg_delay_s"] for r in mine},
                     "arrived": [r["arrived"] for r in mine]}
        if mode == "camera":
            cams = [r["camera"] for r in mine]
            loops = sum(c["loop_count"] for c in cams)
            out[mode]["count_agreement_pct"] = round(
                sum(c["camera_count"] for c in cams) / loops * 100.0, 1) if loops else None
            out[mode]["lane_count_error_pct"] = [c["lane_count_error_pct"] for c in cams]
            out[mode]["frames"] = sum(c["frames"] for c in cams)
            busy = sum(c["render_s"] + c["detect_s"] for c in cams)
            out[mode]["frames_per_s"] = round(out[mode]["frames"] / busy, 1) if busy else None
    return out


def format_report(summary: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    rows = [f"{'detectors':<10} {'delay s/veh':>16}   per seed"]
    for mode, s in summary.items():
        d = s["avg_delay_s"]
        seeds = "  ".join(f"{k}: {v:.1f}" for k, v in s["per_seed"].items())
        rows.append(f"{mode:<10} {d['mean']:>7.1f} ± {d['std']:<6.1f}   {seeds}")
    for r in sorted((r for r in runs if r["mode"] == "camera"), key=lambda r: r["seed"]):
        c = r["camera"]
        rows.append(f"camera seed {r['seed']}: {c['intersection']} counts {c['camera_count']} "
                    f"camera / {c['loop_count']} loops ({c['count_agreement_pct']} %, lane "
                    f"error {c['lane_count_error_pct']} %), zone vehicles off by "
                    f"{c['zone_veh_mean_abs_error']} on average, exits ({c['exits']}) off by "
                    f"{c['exit_veh_mean_abs_error']} vehicles and {c['exit_queue_mean_abs_error']} "
                    f"standing, {c['frames']} frames from "
                    f"{c['cameras']} camera(s) at {c['frames_per_s']} frames/s "
                    f"(render {c['render_s']} s, detect {c['detect_s']} s)")
    cam = summary.get("camera")
    if cam:
        rows.append(f"camera vs loops over all seeds: counts {cam['count_agreement_pct']} %, "
                    f"{cam['frames']} frames at {cam['frames_per_s']} frames/s")
    return "\n".join(rows)


def bench_camera_loop(args: argparse.Namespace) -> int:
    from simulators.traffic.errors import TrafficSimError
    from simulators.traffic.scenario import Scenario, sumo_binary

    if args.seeds < 1 or args.fps <= 0 or args.jobs < 1 or args.background_s <= 0:
        print("kota bench camera-loop: --seeds, --fps, --jobs and --background-s must be "
              "positive",
              file=sys.stderr)
        return 2
    try:
        sumo_binary()
        scenario = Scenario.from_sumocfg(args.sumocfg)
        horizon_s = scenario.horizon_s(args.end)
    except TrafficSimError as e:
        print(f"kota bench camera-loop: {e}", file=sys.stderr)
        return 2
    tmp = None
    if args.out:
        out_dir = Path(args.out).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="kota-camera-loop-")
        out_dir = Path(tmp.name)
    jobs = [(k, cam) for k in range(1, args.seeds + 1) for cam in (False, True)]
    print(f"kota bench camera-loop: {scenario.sumocfg.name}, kota with loops and with "
          f"{args.intersection or 'the first light'} on cameras at {args.fps:g} fps "
          f"({args.condition}), {args.seeds} seed(s) to {horizon_s:g} s, {args.jobs} "
          f"process(es)", file=sys.stderr, flush=True)
    wall0 = time.monotonic()
    runs: list[dict[str, Any]] = []
    failed: list[str] = []
    try:
        # A fresh spawned process per run, as `kota bench control` (libsumo keeps state).
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs)),
                                 mp_context=mp.get_context("spawn"),
                                 max_tasks_per_child=1) as pool:
            futures = {pool.submit(_job, str(scenario.sumocfg), k, horizon_s, cam,
                                   args.intersection, args.fps, args.condition,
                                   args.background_s, args.exits == "camera",
                                   str(out_dir)): (k, cam)
                       for k, cam in jobs}
            for fut in as_completed(futures):
                k, cam = futures[fut]
                mode = "camera" if cam else "loops"
                try:
                    run = fut.result()
                except TrafficSimError as e:
                    failed.append(f"{mode} seed {k}: {e}")
                    print(f"kota bench camera-loop: {mode} seed {k} FAILED: {e}",
                          file=sys.stderr, flush=True)
                    continue
                runs.append(run)
                print(f"kota bench camera-loop: [{len(runs) + len(failed)}/{len(jobs)}] "
                      f"{mode} seed {k}: delay {run['avg_delay_s']:.1f} s/veh, "
                      f"{run['arrived']} arrived ({run['wall_s']:.0f} s wall)",
                      file=sys.stderr, flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    summary = summarise(runs)
    print(f"{scenario.sumocfg}  end {horizon_s:g} s  seeds 1..{args.seeds}  kota controller "
          f"(mean ± std over seeds; delay = RESCO average delay per vehicle)")
    print(format_report(summary, runs))
    if args.json:
        print(json.dumps({"benchmark": "camera-loop", "sumocfg": str(scenario.sumocfg),
                          "end_s": horizon_s, "seeds": list(range(1, args.seeds + 1)),
                          "intersection": args.intersection, "fps": args.fps,
                          "condition": args.condition, "background_s": args.background_s,
                          "exits": args.exits,
                          "wall_s": round(time.monotonic() - wall0, 1), "summary": summary,
                          "runs": sorted(runs, key=lambda r: (r["seed"], r["mode"])),
                          "failed": failed}))
    return 1 if failed else 0


def add_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Register `camera-loop` under `kota bench`."""
    p = bench_subparsers.add_parser(
        "camera-loop", help="kota closing the loop on camera zones only, against loops (SUMO)",
        description="Run the kota controller on a SUMO scenario twice per seed: with stop-line "
        "loops and SUMO's camera zones, and with one intersection's loops and zones replaced "
        "by the edge's video zone detector (edge.camera.detectors.ZoneDetector) on rendered "
        "frames of SUMO's own vehicles: a virtual loop where the stop-line loop lies (count, "
        "occupancy) and a chain of queue zones over the last 45 m (queue, vehicles in the "
        "zone); exit cameras on the outgoing lanes for the exit zones (standing = a zone "
        "occupied for a whole interval), or SUMO's with --exits sumo. Prints RESCO average delay for both, the camera's "
        "count against the loops' over the run, frames rendered and frames/s.",
        epilog="Example: kota bench camera-loop --sumocfg nets/single-intersection.sumocfg "
        "--seeds 3 --end 3600 --json")
    p.add_argument("--sumocfg", required=True, metavar="PATH", help="the SUMO scenario")
    p.add_argument("--intersection", metavar="ID",
                   help="traffic light on cameras only (default: the first controllable one)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 1..N (default 3)")
    p.add_argument("--end", type=float, metavar="S",
                   help="end time on the scenario's clock (default: its end, at most 3600 s "
                   "after its begin)")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS,
                   help=f"camera frames per simulated second (default {DEFAULT_FPS:g})")
    p.add_argument("--condition", choices=["day", "night", "noisy"], default="day",
                   help="picture: day, night or a noisy camera (default day)")
    p.add_argument("--background-s", type=float, default=BACKGROUND_S, metavar="S",
                   help="the zone detector's background memory (MOG2 history) in seconds "
                   f"(default {BACKGROUND_S:g})")
    p.add_argument("--exits", choices=["camera", "sumo"], default="camera",
                   help="the intersection's exit zones from exit cameras too (default), or "
                   "SUMO's exit zones")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="runs side by side, one process each (default 1)")
    p.add_argument("--out", metavar="DIR",
                   help="keep tripinfo files here (default: a temporary directory)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    p.set_defaults(func=bench_camera_loop)
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m kota.bench_camera_loop …`, the same as `kota bench camera-loop …`."""
    parser = argparse.ArgumentParser(prog="kota bench")
    add_parser(parser.add_subparsers(dest="bench_command", required=True))
    args = parser.parse_args(["camera-loop", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
