"""`kota sim zk`: emulated ZKTeco attendance machines on TCP and UDP, seeded with staff and punches.

It parses the command line into ``firmware_sim.zk`` machine settings (``MachineConfig``), seeds
each machine with sample users and historical punches (``firmware_sim.zk.seed``), optionally
lets simulated staff punch live, and serves them until Ctrl-C, SIGTERM or ``--duration``. This
module owns only arguments, output and the process's signal handling; the machine lives in
``firmware_sim.zk``.
Exit codes: 0 stopped cleanly, 1 could not listen, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import sys
from typing import Any

from pydantic import ValidationError

from devices.zk.codes import DEFAULT_PORT
from firmware_sim.zk.machine import Fault, ZkMachine
from firmware_sim.zk.profiles import PROFILES, MachineConfig, WhenFull
from firmware_sim.zk.seed import CHECK_IN, CHECK_OUT, seed_machine
from firmware_sim.zk.server import ZkEmulatorStartError, serve_machines

log = logging.getLogger("kota.sim.zk")

EXIT_OK = 0
EXIT_LISTEN = 1
EXIT_USAGE = 2
LIST_EACH_UP_TO = 10
ZONE_OFFSETS_H = {"WIB": 7.0, "WITA": 8.0, "WIT": 9.0}


def machine_configs(args: argparse.Namespace) -> list[MachineConfig]:
    """The settings of each machine the arguments ask for (pydantic validates the values)."""
    count = args.count or 1
    return [MachineConfig(
        serial=args.serial if count == 1 else f"{args.serial}{k + 1:03d}",
        profile=args.profile, comm_key=args.comm_key, users_cap=args.users_cap,
        records_cap=args.capacity, when_full=WhenFull(args.when_full),
        utc_offset_h=ZONE_OFFSETS_H[args.tz], clock_offset_s=args.clock_offset,
        drift_s_per_day=args.drift, reboot_s=args.reboot_s, slow_answer_s=args.slow_s,
        mac=f"00:17:61:10:{(k + 1) >> 8 & 0xFF:02X}:{(k + 1) & 0xFF:02X}")
        for k in range(count)]


def build_machines(args: argparse.Namespace) -> list[ZkMachine]:
    machines = []
    for k, config in enumerate(machine_configs(args)):
        machine = ZkMachine(config)
        seed_machine(machine, users=args.users, punches=min(args.punches, config.records_cap),
                     seed=args.seed + k)
        machine.faults.update(Fault(f) for f in args.fault or [])
        machines.append(machine)
    return machines


def _describe(machine: ZkMachine, host: str, port: int) -> dict[str, Any]:
    c = machine.config
    return {"serial": c.serial, "host": host, "port": port, "profile": c.profile,
            "comm_key": c.comm_key, "users": len(machine.users),
            "punches": machine.record_count, "capacity": c.records_cap,
            "faults": sorted(f.value for f in machine.faults)}


def _print_listening(rows: list[dict[str, Any]]) -> None:
    if len(rows) <= LIST_EACH_UP_TO:
        for r in rows:
            key = f", comm key {r['comm_key']}" if r["comm_key"] else ", no comm key"
            faults = f", faults: {', '.join(r['faults'])}" if r["faults"] else ""
            print(f"{r['serial']}: {r['profile']} machine on {r['host']}:{r['port']} (TCP+UDP)"
                  f"{key}, {r['users']} users, {r['punches']} punches of {r['capacity']}"
                  f"{faults}", flush=True)
    else:
        ports = sorted(r["port"] for r in rows)
        print(f"{len(rows)} {rows[0]['profile']} machines on {rows[0]['host']} ports "
              f"{ports[0]}–{ports[-1]}, {rows[0]['users']} users and {rows[0]['punches']} "
              f"punches each", flush=True)
    print("Ctrl-C to stop", flush=True)


async def _staff_punching(machines: list[ZkMachine], every_s: float, seed: int) -> None:
    """Every ``every_s`` seconds one random employee punches on each machine."""
    rng = random.Random(seed)
    while True:
        await asyncio.sleep(every_s)
        for machine in machines:
            users = machine.users
            if users:
                hour = machine.clock.now().hour
                machine.punch(rng.choice(users).user_id,
                              punch=CHECK_IN if hour < 12 else CHECK_OUT)


async def _run(args: argparse.Namespace, machines: list[ZkMachine]) -> int:
    base_port = args.port if args.port is not None else (args.base_port or 0)
    try:
        async with serve_machines(machines, host=args.host, base_port=base_port) as servers:
            rows = [_describe(s.machine, args.host, s.port) for s in servers]
            if args.json:
                print(json.dumps({"event": "ready", "machines": rows}), flush=True)
            else:
                _print_listening(rows)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            staff = (asyncio.create_task(_staff_punching(machines, args.punch_every, args.seed))
                     if args.punch_every else None)
            try:
                await asyncio.wait_for(stop.wait(), args.duration)
            except TimeoutError:
                pass
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
                if staff is not None:
                    staff.cancel()
    except ZkEmulatorStartError as exc:
        print(f"cannot start the emulated attendance machines: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    if args.json:
        print(json.dumps({"event": "stopped", "machines": [
            {"serial": m.serial, "punches": m.record_count, "refused": m.refused_punches,
             "garbled": m.garbled_packets, "reboots": m.reboots} for m in machines]}),
            flush=True)
    log.info("emulated attendance machines stopped")
    return EXIT_OK


def cmd_sim_zk(args: argparse.Namespace) -> int:
    problems = []
    if args.count is not None and args.port is not None:
        problems.append("--port runs one machine; with --count give --base-port")
    if args.count is not None and args.count < 1:
        problems.append("--count must be at least 1")
    if args.users < 0 or args.punches < 0:
        problems.append("--users and --punches must not be negative")
    if args.punches and not args.users:
        problems.append("--punches needs --users: punches are made by users")
    if args.duration is not None and args.duration <= 0:
        problems.append("--duration must be positive")
    if args.punch_every is not None and args.punch_every <= 0:
        problems.append("--punch-every must be positive")
    if args.port is None and args.count is None and args.base_port is None:
        args.port = DEFAULT_PORT
    try:
        machines = [] if problems else build_machines(args)
    except (ValidationError, ValueError) as exc:
        problems.append(str(exc))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_run(args, machines))


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register `zk` on the `kota sim` subparsers."""
    profiles = "; ".join(f"{p.key}: {p.description}" for p in PROFILES.values())
    zk = kinds.add_parser(
        "zk", help="ZKTeco attendance machines on the ZK protocol (TCP and UDP)",
        description="Emulated ZKTeco attendance machines, each serving the ZK protocol on one "
        "port over TCP and UDP, as unmodified pyzk and the office edge agent expect: users, an "
        "attendance log with a capacity, comm key, a drifting clock, live punch events, "
        "restart, and faults on demand. Each machine starts with --users sample staff and "
        "--punches historical punches (work days before today, reproducible from --seed). "
        f"Firmware profiles — {profiles}.",
        epilog="Examples: `kota sim zk --port 4370` (one colour-screen machine, 50 staff, 2,000 "
        "punches, no comm key); `kota sim zk --count 40 --base-port 14370 --punches 5000`; "
        "`kota sim zk --port 4370 --profile newer --comm-key 1234 --drift 30 --punch-every 5`; "
        "`kota sim zk --port 4370 --fault chunks_1008 --fault slow_answers --slow-s 1`. Then "
        "`kota device zk info --port 4370`. Exit codes: 0 stopped, 1 could not listen, 2 bad "
        "arguments.")
    zk.set_defaults(func=cmd_sim_zk)
    zk.add_argument("--port", type=int, metavar="P", help=f"run one machine on port P (the "
                    f"default, on {DEFAULT_PORT}, when neither --port nor --count is given)")
    zk.add_argument("--count", type=int, metavar="N", help="run N machines on consecutive "
                    "ports from --base-port (serials SERIAL001, SERIAL002, …)")
    zk.add_argument("--base-port", type=int, metavar="P", help="port of the first machine "
                    "with --count (default: free ports, printed)")
    zk.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="address to listen on "
                    "(default 127.0.0.1)")
    zk.add_argument("--profile", choices=list(PROFILES), default="colour", help="firmware "
                    "family (default colour: 72-byte users, 40-byte punches)")
    zk.add_argument("--serial", default="KPZK", metavar="SN", help="serial number (with "
                    "--count: its prefix; default KPZK)")
    zk.add_argument("--comm-key", type=int, default=0, metavar="N", help="communication key "
                    "clients must give (default 0: none)")
    zk.add_argument("--users", type=int, default=50, metavar="N", help="sample staff enrolled "
                    "on each machine (default 50)")
    zk.add_argument("--punches", type=int, default=2000, metavar="M", help="historical punches "
                    "in each machine's log (default 2000; at most --capacity)")
    zk.add_argument("--capacity", type=int, default=100_000, metavar="N", help="attendance log "
                    "capacity in punches (default 100000)")
    zk.add_argument("--users-cap", type=int, default=10_000, metavar="N", help="user capacity "
                    "(default 10000)")
    zk.add_argument("--when-full", choices=[w.value for w in WhenFull], default="stop",
                    help="a punch into a full log: stop refuses it, overwrite drops the oldest "
                    "(default stop)")
    zk.add_argument("--tz", choices=list(ZONE_OFFSETS_H), default="WIB", help="office zone "
                    "the clock was set in (default WIB)")
    zk.add_argument("--clock-offset", type=float, default=0.0, metavar="S", help="initial "
                    "clock error in seconds, + fast / - slow (default 0)")
    zk.add_argument("--drift", type=float, default=0.0, metavar="S", help="clock drift in "
                    "seconds gained (+) or lost (-) per day (default 0)")
    zk.add_argument("--punch-every", type=float, metavar="S", help="every S seconds one "
                    "random employee punches on each machine (live events; default: nobody "
                    "punches)")
    zk.add_argument("--fault", action="append", choices=[f.value for f in Fault],
                    metavar="FAULT", help="a fault on demand, repeatable: "
                    + ", ".join(f.value for f in Fault) + " (drop_mid_transfer, "
                    "reboot_mid_transfer and garbled_reply fire once)")
    zk.add_argument("--slow-s", type=float, default=2.0, metavar="S", help="delay of each "
                    "answer under slow_answers (default 2)")
    zk.add_argument("--reboot-s", type=float, default=5.0, metavar="S", help="seconds a "
                    "machine is unreachable after a restart (default 5)")
    zk.add_argument("--seed", type=int, default=0, metavar="N", help="sample data seed "
                    "(default 0); the same seed, the same staff and punches")
    zk.add_argument("--duration", type=float, metavar="S", help="stop by itself after S "
                    "seconds (default: run until Ctrl-C / SIGTERM)")
    zk.add_argument("--json", action="store_true", help="machine-readable output: one JSON "
                    "line when listening ({\"event\": \"ready\", \"machines\": [{serial, host, "
                    "port, profile, comm_key, users, punches, capacity, faults}]}) and one when "
                    "stopped ({\"event\": \"stopped\", …})")
