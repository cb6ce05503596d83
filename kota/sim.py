"""`kota sim controller`: emulated traffic controllers on Modbus TCP, for technicians and benchmarks.

It parses the command line into a ``firmware_sim.controller.host.HostConfig`` and runs a
``ControllerHost`` until Ctrl-C, SIGTERM or ``--duration``. It owns only arguments, output and
the process's signal handling; the emulator itself lives in ``firmware_sim.controller``.
Exit codes: 0 stopped cleanly, 1 could not listen, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from firmware_sim.controller.host import (
    ControllerHost,
    HostConfig,
    HostConfigError,
    describe,
    load_host_config,
    validate_host_config,
)
from firmware_sim.controller.server import EmulatorError

log = logging.getLogger("kota.sim")

EXIT_OK = 0
EXIT_LISTEN = 1
EXIT_USAGE = 2
LIST_EACH_UP_TO = 10  # beyond this many controllers, print a range instead of one line each
TEMPLATE_FLAGS = ("phases", "detectors", "actuated", "traffic")


def _config_from_args(args: argparse.Namespace) -> HostConfig:
    template_given = [f for f in TEMPLATE_FLAGS if getattr(args, f) is not None]
    if args.sim_config:
        if args.port is not None or args.count is not None or template_given:
            flags = ["--port"] * (args.port is not None) + ["--count"] * (args.count is not None)
            flags += [f"--{f}" for f in template_given]
            raise HostConfigError("arguments", [(
                "/".join(flags), "set these in the --config file; with --config only --host, "
                "--base-port, --time-scale and --duration apply")])
        config = load_host_config(Path(args.sim_config))
        overrides: dict[str, Any] = {}
        if args.host is not None:
            overrides["host"] = args.host
        if args.time_scale is not None:
            overrides["time_scale"] = args.time_scale
        if args.base_port is not None:
            overrides["base_port"] = args.base_port
        if overrides:
            raw = config.model_dump(exclude_unset=True) | overrides
            config = validate_host_config(raw, args.sim_config)
        return config
    template: dict[str, Any] = {}
    if args.phases is not None:
        template["phases"] = args.phases
    if args.detectors is not None:
        template["detectors"] = args.detectors
    if args.actuated:
        template["local_actuated"] = True
    if args.traffic is not None:
        template["traffic_level"] = args.traffic
    raw: dict[str, Any] = {"host": args.host or "127.0.0.1", "template": template,
                           "time_scale": args.time_scale or 1.0}
    if args.count is not None:
        if args.port is not None:
            raise HostConfigError("arguments", [("--port", "with --count give --base-port")])
        raw["count"] = args.count
        if args.base_port is not None:
            raw["base_port"] = args.base_port
    elif args.port is not None or args.base_port is not None:
        raw["count"] = 1
        raw["base_port"] = args.port if args.port is not None else args.base_port
    else:
        raise HostConfigError("arguments", [("--port", "give --port P (one controller), "
                                             "--count N --base-port P, or --config FILE")])
    return validate_host_config(raw, "arguments")


def _print_listening(host: ControllerHost) -> None:
    emulators = host.emulators
    if len(emulators) <= LIST_EACH_UP_TO:
        for line in describe(emulators):
            print(line, flush=True)
    else:
        ports = sorted(e.port for e in emulators)
        units = sorted({e.unit_id for e in emulators})
        print(f"{len(emulators)} controllers on {host.config.host} ports {ports[0]}–{ports[-1]}, "
              f"unit {'/'.join(str(u) for u in units)}", flush=True)
    scale = host.clock.time_scale
    print(f"time runs at ×{scale:g}" if scale != 1 else "time runs at real speed", end="")
    print(" — Ctrl-C to stop", flush=True)


async def _run(config: HostConfig, duration_s: float | None) -> int:
    host = ControllerHost(config)
    try:
        await host.start()
    except EmulatorError as exc:
        print(f"cannot start the emulated controllers: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        _print_listening(host)
        try:
            await asyncio.wait_for(stop.wait(), duration_s)
        except TimeoutError:
            pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await host.stop()
    log.info("emulated controllers stopped")
    return EXIT_OK


def cmd_sim_controller(args: argparse.Namespace) -> int:
    try:
        config = _config_from_args(args)
    except HostConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        print("--duration must be positive", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_run(config, args.duration))


def add_sim_parser(sub: argparse._SubParsersAction) -> None:
    """Register `sim controller` on the `kota` command's subparsers."""
    sim = sub.add_parser("sim", help="run emulated field devices (traffic controller)",
                         description="Emulated device firmware speaking the real protocols, for "
                         "testing an edge box or the control room without street hardware.")
    kinds = sim.add_subparsers(dest="sim_kind", metavar="DEVICE", required=True)
    ctl = kinds.add_parser(
        "controller", help="traffic signal controllers on Modbus TCP",
        description="Emulated traffic signal controllers, each a Modbus TCP server with the "
        "register map of `kota device controller map`: signal program with safe points, "
        "watchdog fallback, overrides, live detectors fed by built-in traffic. "
        "One with --port, many with --count/--base-port or --config.",
        epilog="Examples: `kota sim controller --port 15020` (one four-phase intersection); "
        "`kota sim controller --count 200 --base-port 21000 --detectors 16`; "
        "`kota sim controller --config city.toml --time-scale 10`. Exit codes: 0 stopped, "
        "1 could not listen, 2 bad arguments or configuration.")
    ctl.set_defaults(func=cmd_sim_controller)
    ctl.add_argument("--port", type=int, metavar="P", help="run one controller on port P")
    ctl.add_argument("--host", metavar="ADDR", help="address to listen on (default 127.0.0.1; "
                     "use 0.0.0.0 only on a trusted network — Modbus has no authentication)")
    ctl.add_argument("--config", dest="sim_config", metavar="FILE", help="TOML file describing "
                     "many controllers ([[controllers]] entries and/or `count` with a [template])")
    ctl.add_argument("--count", type=int, metavar="N", help="run N identical controllers on "
                     "consecutive ports from --base-port (default: free ports)")
    ctl.add_argument("--base-port", type=int, metavar="P", help="port of the first controller")
    ctl.add_argument("--time-scale", type=float, metavar="X", help="emulated seconds per real "
                     "second (default 1; 50 runs a 100 s cycle in 2 s)")
    ctl.add_argument("--phases", type=int, metavar="N", help="signal phases per controller "
                     "(default 4, all mutually conflicting)")
    ctl.add_argument("--detectors", type=int, metavar="N", help="vehicle detectors per controller "
                     "(default 8; detector d calls phase ((d-1) mod phases) + 1)")
    ctl.add_argument("--actuated", action="store_const", const=True, default=None,
                     help="run the local plan actuated (greens extend on detector calls)")
    ctl.add_argument("--traffic", type=float, metavar="LEVEL", help="built-in traffic level: 0 none, "
                     "1 a busy street (default), up to 5")
    ctl.add_argument("--duration", type=float, metavar="S", help="stop by itself after S real "
                     "seconds (default: run until Ctrl-C / SIGTERM)")
