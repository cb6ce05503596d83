"""`kota sim camera`: an emulated ONVIF Profile S PTZ camera (SOAP over HTTP, snapshot, MJPEG).

Parses the command line into a ``firmware_sim.onvif.server.CameraEmulator`` with its faults and
its world (the simulated approach of ``simulators.camera`` or the camera's test pattern) and
serves it until Ctrl-C, SIGTERM or ``--duration``; ``approach_camera`` builds the same camera
in-process. This module owns only arguments, output, the process's signal handling and the
wiring; the camera lives in ``firmware_sim.onvif``, the traffic in ``simulators.camera``.
Exit codes: 0 stopped cleanly, 1 could not listen, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from firmware_sim.onvif.camera import Faults, Identity
from firmware_sim.onvif.server import CameraEmulator, CameraEmulatorError
from simulators.camera.live import LIVE_CONDITIONS, LiveCondition, LiveScene
from simulators.camera.scene import HEIGHT, PX_PER_M, WIDTH, SceneConfig, Zone

log = logging.getLogger("kota.sim.camera")

EXIT_OK = 0
EXIT_LISTEN = 1
EXIT_USAGE = 2
DEFAULT_PORT = 8080
FLAG_FAULTS = ("offline", "covered", "blurred", "moved", "frozen")
SCENES = ("approach", "pattern")


def approach_camera(*, condition: LiveCondition = "auto", seed: int = 1,
                    **emulator: Any) -> CameraEmulator:
    """An emulated camera over the simulated signalised approach, not started yet (``with
    approach_camera(port=0) as cam:`` or ``cam.start()``).

    ``condition``: ``auto`` (day or night by the WIB hour), ``day``, ``night`` or ``noisy``;
    ``seed`` picks the traffic and the roadside. Other keywords go to ``CameraEmulator``
    (host, port, user, password, identity, faults, …). The world is ``cam.view.world`` (a
    ``LiveScene``); its ``zones`` fit the home view of the 640×360 profiles (``zone_rows``).
    """
    return CameraEmulator(world=LiveScene(SceneConfig(seed=seed), condition), **emulator)


def zone_rows(zones: Sequence[Zone]) -> list[dict[str, Any]]:
    """Detection zones as rows of an edge camera's ``zones`` (``zone_id``, ``polygon`` in
    pixels of the home view at 640×360 — the edge's ``frame_size`` — and ``length_m``, the
    road the zone covers: traffic runs along x at ``PX_PER_M``)."""
    return [{"zone_id": z.zone_id, "polygon": [list(p) for p in z.polygon],
             "length_m": round((max(x for x, _ in z.polygon) - min(x for x, _ in z.polygon))
                               / PX_PER_M, 1)} for z in zones]


def _describe(emu: CameraEmulator, args: argparse.Namespace) -> dict[str, Any]:
    f = emu.camera.faults
    row = {"device_url": emu.device_url, "host": emu.host, "port": emu.port,
           "user": emu.camera.user, "snapshot": f"{emu.base_url}/snapshot.jpg",
           "mjpeg": f"{emu.base_url}/mjpeg", "serial": emu.camera.identity.serial,
           "skew_s": f.skew_s, "faults": [n for n in FLAG_FAULTS if getattr(f, n)],
           "scene": args.scene, "discovery_port": emu.discovery_port}
    if isinstance(emu.view.world, LiveScene):
        row.update(condition=args.condition, seed=args.seed)
        if args.zones:
            row.update(zone_frame=[WIDTH, HEIGHT], zones=zone_rows(emu.view.world.zones))
    return row


def cmd_sim_camera(args: argparse.Namespace) -> int:
    problems = []
    if not args.user or not args.password:
        problems.append("--user and --password must not be empty")
    if args.duration is not None and args.duration <= 0:
        problems.append("--duration must be positive")
    if not 0 <= args.port <= 65535:
        problems.append("--port must be 0..65535")
    if args.discovery_port is not None and not 0 <= args.discovery_port <= 65535:
        problems.append("--discovery-port must be 0..65535")
    if args.scene == "pattern" and (args.zones or args.condition != "auto"):
        problems.append("--zones and --condition need --scene approach (the test pattern has "
                        "no traffic and follows the time of day)")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return EXIT_USAGE
    faults = Faults(skew_s=args.skew, **{name: True for name in args.fault or []})
    camera: dict[str, Any] = dict(host=args.host, port=args.port, user=args.user,
                                  password=args.password, identity=Identity(serial=args.serial),
                                  faults=faults, discovery_port=args.discovery_port)
    emu = (approach_camera(condition=args.condition, seed=args.seed, **camera)
           if args.scene == "approach" else CameraEmulator(**camera))
    try:
        emu.start()
    except CameraEmulatorError as exc:
        print(f"cannot start the emulated camera: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    try:
        row = _describe(emu, args)
        if args.json:
            print(json.dumps({"event": "ready", "camera": row}), flush=True)
        else:
            faults_text = f", faults: {', '.join(row['faults'])}" if row["faults"] else ""
            skew = f", clock {args.skew:+g} s" if args.skew else ""
            scene = (f"the approach ({args.condition}, seed {args.seed})"
                     if args.scene == "approach" else "the test pattern")
            print(f"ONVIF camera {row['serial']} at {row['device_url']} (user {args.user}"
                  f"{skew}{faults_text}) showing {scene}; snapshot {row['snapshot']}, MJPEG "
                  f"{row['mjpeg']} — Ctrl-C to stop", flush=True)
            if emu.discovery_port is not None:
                print(f"WS-Discovery: answers unicast probes on udp {emu.host}:"
                      f"{emu.discovery_port}", flush=True)
            for zone in row.get("zones", []):
                print(f"zone {zone['zone_id']}: {zone['polygon']} ({zone['length_m']:g} m; px "
                      f"of the {WIDTH}×{HEIGHT} home view)", flush=True)
        stop.wait(args.duration)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        emu.stop()
    if args.json:
        print(json.dumps({"event": "stopped", "soap_requests": emu.soap_requests,
                          "soap_faults": len(emu.soap_faults)}), flush=True)
    log.info("emulated camera stopped")
    return EXIT_OK


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register `camera` on the `kota sim` subparsers."""
    cam = kinds.add_parser(
        "camera", help="an ONVIF PTZ IP camera (SOAP over HTTP, JPEG snapshot, MJPEG)",
        description="An emulated ONVIF Profile S PTZ camera that unmodified ONVIF clients "
        "(onvif-zeep-async, Home Assistant) work against: device, media and PTZ services with "
        "WS-Security digest authentication, three profiles (H.264 1920×1080 and 640×360, "
        "JPEG), presets, a clock that can be skewed, a JPEG snapshot and an MJPEG stream of a "
        "simulated signalised approach (traffic, signal, day/night light, sensor noise) or a "
        "static test pattern, seen through the PTZ position, and image faults on demand. The "
        "RTSP URIs it hands out are not served.",
        epilog="Examples: `kota sim camera --port 8080` (user admin, password kamera123); "
        "`kota sim camera --port 8080 --user operator --password rahasia --skew 3600`; "
        "`kota sim camera --port 8080 --fault blurred --fault frozen`; "
        "`kota sim camera --port 0 --condition night --zones --json` (the detection zones the "
        "approach scene uses, for an edge config). Then point an ONVIF "
        "client at http://127.0.0.1:8080/onvif/device_service, or fetch "
        "http://127.0.0.1:8080/snapshot.jpg with digest auth. Exit codes: 0 stopped, 1 could "
        "not listen, 2 bad arguments.")
    cam.set_defaults(func=cmd_sim_camera)
    cam.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="P", help="HTTP port "
                     f"(default {DEFAULT_PORT}; 0: a free one, printed)")
    cam.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="address to listen "
                     "on (default 127.0.0.1)")
    cam.add_argument("--user", default="admin", metavar="U", help="ONVIF and snapshot user "
                     "(default admin)")
    cam.add_argument("--password", default="kamera123", metavar="W", help="its password "
                     "(default kamera123)")
    cam.add_argument("--serial", default="KPCAM0001", metavar="SN", help="serial number "
                     "(default KPCAM0001)")
    cam.add_argument("--skew", type=float, default=0.0, metavar="S", help="camera clock "
                     "error in seconds, + fast / - slow (default 0); clients must correct for "
                     "it, tokens more than 300 s off are refused")
    cam.add_argument("--fault", action="append", choices=FLAG_FAULTS, metavar="FAULT",
                     help="a fault on demand, repeatable: " + ", ".join(FLAG_FAULTS)
                     + " (offline answers 503; covered black, blurred, moved shifted, "
                     "frozen a repeated frame)")
    cam.add_argument("--scene", choices=SCENES, default="approach", help="what the camera "
                     "looks at: approach (default; a signalised approach with simulated "
                     "traffic, in real time) or pattern (a static road test pattern)")
    cam.add_argument("--condition", choices=LIVE_CONDITIONS, default="auto", help="the "
                     "approach's light: auto (default; day 06:00–18:00 WIB, else night), day, "
                     "night or noisy (a poor sensor)")
    cam.add_argument("--seed", type=int, default=1, metavar="N", help="the approach's traffic "
                     "and roadside (default 1)")
    cam.add_argument("--zones", action="store_true", help="also print the detection zones "
                     "of the approach (zone ids and polygons in pixels of the 640×360 home "
                     "view; with --json as camera.zones and camera.zone_frame)")
    cam.add_argument("--discovery-port", type=int, metavar="P", help="also answer "
                     "WS-Discovery probes (SOAP-over-UDP) on this UDP port of --host (3702 is "
                     "the standard one; 0: a free one, printed; default: off). Unicast only: "
                     "probe it with `kota device onvif discover HOST:P`")
    cam.add_argument("--duration", type=float, metavar="S", help="stop by itself after S "
                     "seconds (default: run until Ctrl-C / SIGTERM)")
    cam.add_argument("--json", action="store_true", help="machine-readable output: one JSON "
                     "line when listening ({\"event\": \"ready\", \"camera\": {device_url, "
                     "host, port, user, snapshot, mjpeg, serial, skew_s, faults, scene, condition, "
                     "seed, discovery_port, and with --zones zone_frame and zones}}) and one when stopped")
