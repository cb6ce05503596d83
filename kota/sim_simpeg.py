"""`kota sim simpeg`: an emulated SIMPEG (the regional HR system) over HTTP, filled with a sample
city government, for testing the control room's employee, leave and recap sync.

This module owns only arguments, output and the process's signal handling; the server, its
world and its faults live in ``simulators.simpeg``.
Exit codes: 0 stopped cleanly, 1 could not listen, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import fields
from typing import Any

from simulators.simpeg import SKPDS, Faults, SimpegServer, SimpegServerError, sample_world

log = logging.getLogger("kota.sim.simpeg")

EXIT_OK = 0
EXIT_LISTEN = 1
EXIT_USAGE = 2
LOOPBACK = ("127.0.0.1", "::1", "localhost")

# --fault NAME=VALUE: the Faults fields a command line can set, and how to read their values.
_FAULT_HELP = {
    "fail_next": "the next N requests answer 500",
    "error_rate": "this fraction (0..1) of requests answer 500",
    "fail_status": "the status of those failures (default 500)",
    "delay_s": "every request waits S seconds",
    "drop_next": "the next N requests drop the connection mid-answer",
    "token_lifetime_s": "tokens live S seconds (default 3600)",
    "token_max_uses": "a token is refused after N requests",
    "reject_nip": "recaps of this NIP are rejected (repeatable)",
    "fail_after_store": "the next N recap uploads are stored, then answer 500",
}


def parse_faults(specs: list[str]) -> Faults:
    """``["delay_s=0.5", "reject_nip=1985…"]`` as a Faults; ValueError naming the bad one."""
    faults = Faults()
    types = {f.name: f.type for f in fields(Faults)}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in _FAULT_HELP:
            raise ValueError(f"--fault {spec!r}: give NAME=VALUE with NAME one of "
                             f"{', '.join(_FAULT_HELP)}")
        if name == "reject_nip":
            faults.reject_nips[text.strip()] = "rejected by SIMPEG (fault on demand)"
            continue
        try:
            value: Any = float(text) if "float" in str(types[name]) else int(text)
        except ValueError as exc:
            raise ValueError(f"--fault {spec!r}: {text!r} is not a number") from exc
        if value < 0 or (name == "error_rate" and value > 1):
            raise ValueError(f"--fault {spec!r}: out of range")
        setattr(faults, name, value)
    return faults


def _ready_line(server: SimpegServer, args: argparse.Namespace) -> dict[str, Any]:
    world = server.world
    return {"event": "ready", "url": server.url, "client_id": server.client_id,
            "units": len(world.units), "skpds": sum(u.skpd_id == u.id
                                                    for u in world.units.values()),
            "employees": len(world.employees), "leave": len(world.leave),
            "seed": args.seed}


def cmd_sim_simpeg(args: argparse.Namespace) -> int:
    problems = []
    if args.employees < 0:
        problems.append("--employees must not be negative")
    if not 1 <= args.skpds <= len(SKPDS):
        problems.append(f"--skpds must be 1..{len(SKPDS)}")
    if args.duration is not None and args.duration <= 0:
        problems.append("--duration must be positive")
    if not args.client_id or not args.client_secret:
        problems.append("--client-id and --client-secret must not be empty")
    try:
        faults = parse_faults(args.fault or [])
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return EXIT_USAGE
    if args.host not in LOOPBACK:
        log.warning("the SIMPEG emulator listens on %s with a sample secret: use a trusted "
                    "network only", args.host)
    world = sample_world(employees=args.employees, seed=args.seed, skpds=args.skpds)
    server = SimpegServer(world, host=args.host, port=args.port, client_id=args.client_id,
                          client_secret=args.client_secret, faults=faults, seed=args.seed)
    try:
        server.start()
    except SimpegServerError as exc:
        print(f"cannot start the SIMPEG emulator: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    try:
        ready = _ready_line(server, args)
        if args.json:
            print(json.dumps(ready), flush=True)
        else:
            print(f"SIMPEG emulator on {ready['url']}: {ready['skpds']} SKPDs, {ready['units']} "
                  f"units, {ready['employees']} employees, {ready['leave']} leave records; "
                  f"client id {args.client_id!r}", flush=True)
            active = {k: v for k, v in vars(faults).items() if v and v != getattr(Faults(), k)}
            if active:
                print(f"faults: {active}", flush=True)
            print("Ctrl-C to stop", flush=True)
        stop.wait(args.duration)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.stop()
    if args.json:
        print(json.dumps({"event": "stopped", "recaps": len(server.world.recaps),
                          "requests": len(server.served)}), flush=True)
    log.info("SIMPEG emulator stopped")
    return EXIT_OK


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register `simpeg` on the `kota sim` subparsers."""
    p = kinds.add_parser(
        "simpeg", help="SIMPEG, the regional HR system, over HTTP (employees, leave, recaps)",
        description="An emulated SIMPEG REST server holding a sample city government: "
        "organisation units (SKPDs such as Dinas Perhubungan, BKPSDM, RSUD and their sub-units), "
        "civil servants with valid NIPs, schedule groups and attendance machine user ids, leave "
        "and permits, and the monthly attendance recaps the control room uploads. OAuth2 "
        "client credentials (POST /oauth/token), then GET /api/v1/unor, /api/v1/pns, "
        "/api/v1/pns/data-utama/{nip}, /api/v1/cuti and POST /api/v1/rekap-kehadiran with an "
        "Idempotency-Key (the format is in the README, 'SIMPEG recap upload format').",
        epilog="Examples: `kota sim simpeg --port 8089` (200 employees in 4 SKPDs); "
        "`kota sim simpeg --port 8089 --employees 5000 --skpds 12 --seed 7`; "
        "`kota sim simpeg --port 8089 --fault error_rate=0.2 --fault delay_s=0.5`; "
        "`kota sim simpeg --fault token_lifetime_s=5 --fault fail_after_store=1 --json`. "
        "Exit codes: 0 stopped, 1 could not listen, 2 bad arguments.")
    p.set_defaults(func=cmd_sim_simpeg)
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="address to listen on "
                   "(default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, metavar="P", help="port to listen on "
                   "(default 0: a free one, printed)")
    p.add_argument("--employees", type=int, default=200, metavar="N", help="sample civil "
                   "servants (default 200)")
    p.add_argument("--skpds", type=int, default=4, metavar="K", help=f"sample SKPDs, 1..{len(SKPDS)}"
                   " (default 4: Dinas Perhubungan, BKPSDM, RSUD, Diskominfo)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="sample data seed "
                   "(default 0); the same seed, the same city")
    p.add_argument("--client-id", default="kota-pintar", metavar="ID", help="OAuth2 client id "
                   "the control room must give (default kota-pintar)")
    p.add_argument("--client-secret", default="rahasia-simpeg", metavar="SECRET",
                   help="its client secret (default rahasia-simpeg)")
    p.add_argument("--fault", action="append", metavar="NAME=VALUE", help="a fault on demand, "
                   "repeatable: " + "; ".join(f"{k}: {v}" for k, v in _FAULT_HELP.items()))
    p.add_argument("--duration", type=float, metavar="S", help="stop by itself after S "
                   "seconds (default: run until Ctrl-C / SIGTERM)")
    p.add_argument("--json", action="store_true", help="machine-readable output: one JSON "
                   "line when listening ({\"event\": \"ready\", \"url\", \"client_id\", "
                   "\"units\", \"skpds\", \"employees\", \"leave\", \"seed\"}) and one when "
                   "stopped ({\"event\": \"stopped\", \"recaps\", \"requests\"})")
