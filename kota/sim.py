"""`kota sim controller` and `kota sim city`: emulated field devices and the world around them.

`sim controller` parses the command line into a ``firmware_sim.controller.host.HostConfig`` and
runs a ``ControllerHost`` until Ctrl-C, SIGTERM or ``--duration``. `sim city` runs a SUMO city
whose every traffic light is an emulated controller on Modbus TCP (``simulators.city``), prints
their addresses and writes the layout for the control room and an edge agent configuration. This
module owns only arguments, output and the process's signal handling; the emulator lives in
``firmware_sim.controller``, the world in ``simulators.city``.
Exit codes: 0 stopped cleanly, 1 could not start (listen, SUMO), 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_sim.controller.host import (
    ControllerHost,
    HostConfig,
    HostConfigError,
    describe,
    load_host_config,
    validate_host_config,
)
from firmware_sim.controller.server import EmulatorError

if TYPE_CHECKING:
    from simulators.city import CityWorld

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


# --------------------------------------------------------------------------- sim city

CITY_EDGE_ID = "edge-city-1"
POLL_INTERVAL_S = 1.0  # the edge agent's default poll, in real seconds
WATCHDOG_DEFAULT_S = 30.0
WATCHDOG_MAX_S = 600.0
PROGRESS_EVERY_S = 300.0  # simulated seconds between progress lines


def _clock(t_s: float) -> str:
    """SUMO time of day (the demo city runs on local time) as HH:MM:SS."""
    t = int(t_s)
    return f"{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def edge_watchdog_s(time_scale: float | None) -> float:
    """Watchdog for the edge to set: the controllers count SUMO time, the edge polls in real
    time; at ×X one real poll is X controller seconds, and the watchdog must outlast a few."""
    scale = time_scale if time_scale is not None else 1.0
    return min(WATCHDOG_MAX_S, max(WATCHDOG_DEFAULT_S, 3 * POLL_INTERVAL_S * scale))


def city_edge_toml(world: CityWorld, *, edge_id: str = CITY_EDGE_ID,
                   mqtt_url: str | None = None) -> str:
    """A `kota` settings file whose [edge] polls every controller of ``world``."""
    watchdog_s = edge_watchdog_s(world.options.time_scale)
    lines = [
        f"# Edge agent for the SUMO city {world.options.city!r} (`kota sim city`): one",
        "# [[edge.controllers]] per intersection, at the ports this run listens on.",
        "# Run it with: kota --config THIS_FILE edge run",
        "",
        "[site]",
        f"city = {_toml_str(world.options.city)}",
        "",
        "[edge]",
        f"edge_id = {_toml_str(edge_id)}",
    ]
    if mqtt_url is not None:
        lines += ["", "[edge.mqtt]", f"url = {_toml_str(mqtt_url)}"]
    for e in world.endpoints:
        lines += ["", "[[edge.controllers]]",
                  f"intersection_id = {_toml_str(e.intersection_id)}",
                  f"host = {_toml_str(e.host)}", f"port = {e.port}", f"unit = {e.unit}",
                  f"watchdog_timeout_s = {watchdog_s:g}",
                  f"location = {_toml_str(e.name[:120])}"]
    return "\n".join(lines) + "\n"


def _check_edge_toml(text: str, path: Path) -> None:
    from kota.settings import Settings

    Settings.model_validate(tomllib.loads(text))  # the edge agent must accept it as written
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # an orchestrator waiting for the file never reads half of it


def _city_world(args: argparse.Namespace) -> CityWorld:
    from simulators.city import CityOptions, CityWorld, DemoCity, write_demo_city
    from simulators.traffic.scenario import Scenario

    scale = None if args.fast else args.time_scale
    common: dict[str, Any] = {
        "time_scale": scale, "seed": args.seed, "host": args.host, "base_port": args.base_port,
        "local_actuated": args.actuated, "watchdog_timeout_s": args.watchdog,
        "city": args.city, "tripinfo": Path(args.tripinfo) if args.tripinfo else None}
    if args.generate:
        hours = args.hours
        city = DemoCity(duration_s=hours * 3600.0, demand_scale=args.demand)
        files = write_demo_city(args.generate, seed=args.seed, city=city)
        end_s = city.begin_s + args.duration if args.duration is not None else city.end_s
        print(f"demo city written to {files.directory}: {len(files.names)} intersections, "
              f"{files.vehicles} vehicles from {_clock(city.begin_s)} to {_clock(city.end_s)}",
              file=sys.stderr if args.json else sys.stdout, flush=True)
        return CityWorld.of_city(files, CityOptions(end_s=end_s, **common))
    begin_s = Scenario.from_sumocfg(args.sumocfg).begin_s
    end_s = begin_s + args.duration if args.duration is not None else None
    return CityWorld(args.sumocfg, CityOptions(end_s=end_s, **common))


def _print_city(world: CityWorld, layout: Path, edge: Path) -> None:
    for e in world.endpoints:
        print(f"{e.intersection_id} ({e.name}): {e.host}:{e.port} unit {e.unit}, "
              f"{e.phases} phases, {e.detectors} detectors", flush=True)
    scale = world.options.time_scale
    pace = ("as fast as it goes" if scale is None else
            "at real speed" if scale == 1 else f"at ×{scale:g}")
    print(f"layout: {layout}\nedge config: {edge}", flush=True)
    print(f"SUMO {_clock(world.t_s)} → {_clock(world.end_s)}, {pace} — Ctrl-C to stop",
          flush=True)


def cmd_sim_city(args: argparse.Namespace) -> int:
    from simulators.city import CityWorldError
    from simulators.traffic.errors import ScenarioError, TrafficSimError

    problems = []
    if args.time_scale is not None and not args.time_scale > 0:
        problems.append("--time-scale must be positive")
    if args.duration is not None and args.duration <= 0:
        problems.append("--duration must be positive")
    if not 0 < args.hours <= 24 or not 0 < args.demand <= 5:
        problems.append("--hours must be in (0, 24] and --demand in (0, 5]")
    if args.sumocfg and (args.hours != 2.0 or args.demand != 1.0):
        problems.append("--hours and --demand shape the generated city; use them with --generate")
    world_only = args.world_only or args.fast
    if not world_only and args.edges is not None and args.edges < 1:
        problems.append("--edges must be at least 1")
    if not world_only and args.plan_interval is not None and not 0.1 <= args.plan_interval <= 900:
        problems.append("--plan-interval must be within 0.1..900 s")
    if args.offices < 0:
        problems.append("--offices must be 0 or more")
    if world_only and (args.database or args.edges is not None or args.offices):
        problems.append("--database, --edges and --offices start the closed loop; leave out "
                        "--world-only and --fast")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return EXIT_USAGE
    if not world_only:
        return _closed_loop(args)
    out_dir = Path(args.generate) if args.generate else Path("kota-city")
    layout_path = Path(args.layout) if args.layout else out_dir / "layout.json"
    edge_path = Path(args.edge_config) if args.edge_config else out_dir / "edge.toml"
    try:
        world = _city_world(args)
    except (ScenarioError, CityWorldError) as exc:
        print(f"cannot use the scenario: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        world.start()
    except (TrafficSimError, EmulatorError, OSError) as exc:
        print(f"cannot start the city: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    failed: str | None = None
    try:
        world.write_layout(layout_path)
        _check_edge_toml(city_edge_toml(world, mqtt_url=args.mqtt), edge_path)
        if args.json:
            print(json.dumps({"event": "ready", "layout": str(layout_path),
                              "edge_config": str(edge_path), "begin_s": world.t_s,
                              "end_s": world.end_s, "time_scale": world.options.time_scale,
                              "controllers": [e.as_dict() for e in world.endpoints]},
                             ensure_ascii=False), flush=True)
        else:
            _print_city(world, layout_path, edge_path)
        world.run()
        next_report = world.t_s + PROGRESS_EVERY_S
        while not stop.is_set() and not world.wait(0.5):
            if world.t_s >= next_report and not args.json:
                print(f"SUMO {_clock(world.t_s)}", flush=True)
                next_report = world.t_s + PROGRESS_EVERY_S
    except ValueError as exc:  # pydantic's ValidationError: our edge file, refused
        failed = f"the edge settings written for this city are refused: {exc}"
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    try:
        result = world.stop()
    except TrafficSimError as exc:
        failed = failed or f"the city failed: {exc}"
    if failed is not None:
        print(failed, file=sys.stderr)
        return EXIT_LISTEN
    m = result.metrics
    summary = {"begin_s": result.begin_s, "end_s": result.end_s, "steps": result.steps,
               "wall_s": round(result.wall_s, 3), "seed": args.seed, **m.as_dict()}
    if args.json:
        print(json.dumps({"event": "stopped", **summary}), flush=True)
    else:
        print(f"stopped at SUMO {_clock(result.end_s)} after {result.steps} steps "
              f"({result.wall_s:.1f} s): {m.vehicles} vehicles, {m.arrived} arrived, average "
              f"delay {m.avg_delay_s:.1f} s (RESCO)", flush=True)
    if args.metrics:
        Path(args.metrics).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK


def _closed_loop(args: argparse.Namespace) -> int:
    """`kota sim city` without --world-only: the world plus every process of the loop."""
    import os

    from kota.city import StackOptions, run_closed_loop
    from kota.settings import ConfigError, load_settings
    from simulators.city import CityWorldError
    from simulators.traffic.errors import ScenarioError

    config = getattr(args, "config", None) or os.environ.get("KOTA_CONFIG")
    try:
        settings = load_settings(Path(config) if config else None)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        world = _city_world(args)
    except (ScenarioError, CityWorldError) as exc:
        print(f"cannot use the scenario: {exc}", file=sys.stderr)
        return EXIT_USAGE
    run_dir = Path(args.run_dir or args.generate or "kota-city")
    options = StackOptions(
        run_dir=run_dir, layout_path=Path(args.layout) if args.layout else None,
        mqtt_url=args.mqtt, broker_port=args.broker_port, database_url=args.database,
        edges=args.edges, http_port=args.http_port, plan_interval_s=args.plan_interval,
        watchdog_s=args.watchdog if args.watchdog != WATCHDOG_DEFAULT_S else None,
        city_name=settings.site.city, timezone=settings.site.timezone, offices=args.offices,
        log_level=getattr(args, "log_level", "INFO"))
    return run_closed_loop(world, options, settings, json_out=args.json,
                           metrics_path=Path(args.metrics) if args.metrics else None,
                           title=f"The city {world.options.city!r} in the loop")


def _add_city_parser(kinds: argparse._SubParsersAction) -> None:
    city = kinds.add_parser(
        "city", help="a SUMO city whose traffic lights are emulated controllers on Modbus TCP",
        description="Hardware in the loop without the hardware: Eclipse SUMO runs the city's "
        "traffic; every SUMO traffic light becomes an emulated controller (Modbus TCP on "
        "loopback, the register map of `kota device controller map`) whose lamps SUMO shows "
        "and whose stop-line loops count SUMO's vehicles. Around it, as real processes talking "
        "real protocols: an MQTT broker (the embedded one as a `kota broker` process, or --mqtt "
        "URL), PostgreSQL (the embedded server, or --database URL), the control room (`kota "
        "controlroom run` with the city's layout: adaptive plans for every intersection) and "
        "edge agents (`kota edge run`, the controllers split over --edges of them) polling the "
        "controllers, publishing telemetry and applying plans. Each part is started when the "
        "previous one is ready; Ctrl-C, SIGTERM or the end of the run stops them in reverse "
        "order and prints the RESCO average delay. Settings files and logs go to the run "
        "directory. With --world-only (or --fast) only SUMO and the controllers run, as a "
        "device simulator for your own edge agents and control room.",
        epilog="Examples: `kota sim city --generate demo-city` (the project's demo city: six "
        "intersections, mostly motorcycles, 06:00–08:00 with the 07:00 peak, real time, the "
        "whole loop on embedded broker and database); "
        "`kota sim city --generate demo-city --time-scale 5 --duration 1800 --mqtt "
        "mqtt://127.0.0.1:1883 --database postgresql://127.0.0.1:5432/kota`; "
        "`kota sim city --sumocfg my.sumocfg --world-only` then `kota --config "
        "kota-city/edge.toml edge run` in another shell; `kota sim city --sumocfg my.sumocfg "
        "--fast --metrics m.json` (world only, as fast as SUMO goes). "
        "Time: SUMO steps 1 s and the controllers count SUMO time (watchdogs, minimum greens "
        "and plans run at the chosen scale; the edges' watchdog setting is widened to match), "
        "but edge agents poll once a real second and the control room measures flows per real "
        "second: adaptive control is faithful at --time-scale 1; 2–10 suits functional runs "
        "(plans, faults, fallback), the core then sees X times the traffic. "
        "Exit codes: 0 stopped, 1 could not start (SUMO, a port, a process) or a process died, "
        "2 bad arguments or scenario.")
    city.set_defaults(func=cmd_sim_city)
    which = city.add_mutually_exclusive_group(required=True)
    which.add_argument("--sumocfg", metavar="PATH", help="run this SUMO scenario (its traffic "
                       "lights with two or more green phases get controllers)")
    which.add_argument("--generate", metavar="DIR", help="write the demo city into DIR "
                       "(city.net.xml, city.rou.xml, city.sumocfg) and run it")
    city.add_argument("--seed", type=int, default=1, metavar="N", help="SUMO seed and demo "
                      "city demand seed (default 1); the same seed, the same run")
    city.add_argument("--hours", type=float, default=2.0, metavar="H", help="--generate: hours "
                      "of demand from 06:00 WIB (default 2: across the 07:00 morning peak)")
    city.add_argument("--demand", type=float, default=1.0, metavar="X", help="--generate: "
                      "scale the demand (default 1: a busy morning, near saturation at 07:00)")
    city.add_argument("--duration", type=float, metavar="S", help="stop after S simulated "
                      "seconds (default: the scenario's end, at most one hour for --sumocfg)")
    pace = city.add_mutually_exclusive_group()
    pace.add_argument("--time-scale", type=float, default=1.0, metavar="X", help="simulated "
                      "seconds per real second (default 1: real time, as edge agents and the "
                      "control room expect; 5 runs an hour in 12 minutes)")
    pace.add_argument("--fast", action="store_true", help="run as fast as SUMO goes (for "
                      "metrics; implies --world-only: edge agents poll once a real second)")
    city.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="address the "
                      "controllers listen on (default 127.0.0.1; Modbus has no authentication)")
    city.add_argument("--base-port", type=int, metavar="P", help="controller k listens on "
                      "P + k, in layout order (default or 0: free ports, printed)")
    city.add_argument("--actuated", action="store_true", help="run the controllers' local plan "
                      "actuated on their loops (default: fixed time, as the network's program)")
    city.add_argument("--watchdog", type=float, default=30.0, metavar="S", help="the "
                      "controllers' central watchdog, in SUMO seconds (default 30)")
    city.add_argument("--city", default="Demo", metavar="NAME", help="city name in the layout "
                      "(default Demo)")
    city.add_argument("--layout", metavar="PATH", help="write the layout JSON here (default: "
                      "DIR/layout.json with --generate, else kota-city/layout.json)")
    city.add_argument("--edge-config", metavar="PATH", help="write the edge agent settings "
                      "here (default: next to the layout, edge.toml)")
    city.add_argument("--world-only", action="store_true", help="run only SUMO and the "
                      "controllers (write the layout and an edge config; no broker, database, "
                      "control room or edge agents)")
    city.add_argument("--mqtt", metavar="URL", help="an external broker, e.g. "
                      "mqtt://127.0.0.1:1883 (Mosquitto), for the control room and the edges "
                      "(default: the embedded broker as a child process); with --world-only "
                      "the broker written into the edge config")
    city.add_argument("--broker-port", type=int, default=0, metavar="P", help="port of the "
                      "embedded broker on 127.0.0.1 (default 0: a free one, printed)")
    city.add_argument("--database", metavar="URL", help="PostgreSQL for the control room, "
                      "e.g. postgresql://kota@127.0.0.1:5432/kota (default: [database] url of "
                      "--config, else the embedded PostgreSQL of [database.embedded])")
    city.add_argument("--edges", type=int, metavar="N", help="edge agent processes; the "
                      "controllers are split evenly over them in layout order (default 2)")
    city.add_argument("--offices", type=int, default=0, metavar="N", help="also N emulated "
                      "ZKTeco attendance machines (one per office, staff checking in over the "
                      "first 20 minutes) and an office edge agent keeping them in sync "
                      "(default 0; `kota demo` runs 3)")
    city.add_argument("--http-port", type=int, default=0, metavar="P", help="port of the "
                      "control room's status page and API on 127.0.0.1 (default 0: a free one, "
                      "printed)")
    city.add_argument("--plan-interval", type=float, metavar="S", help="how often the control "
                      "room runs the timing core, real seconds (default: one 60 s SUMO cycle: "
                      "60 / time scale, within 5..60)")
    city.add_argument("--run-dir", metavar="DIR", help="settings files, edge state and logs "
                      "of the processes (default: the --generate DIR, else kota-city)")
    city.add_argument("--tripinfo", metavar="PATH", help="keep SUMO's tripinfo output here")
    city.add_argument("--metrics", metavar="PATH", help="write the run's trip metrics (RESCO "
                      "average delay) as JSON here when it ends")
    city.add_argument("--json", action="store_true", help="machine-readable output for an "
                      "orchestrator: one JSON line when everything is ready ({\"event\": "
                      "\"ready\", \"controllers\": [{intersection_id, host, port, unit, …}], "
                      "\"layout\", and for the closed loop \"api\", \"broker\", "
                      "\"database\", \"edges\": [{edge_id, pid, intersections}], "
                      "\"controlroom_pid\", \"broker_pid\", \"logs\"; with --world-only "
                      "\"edge_config\"}) and one when the run stops ({\"event\": \"stopped\", "
                      "avg_delay_s, …}); other output goes to stderr")


def add_sim_parser(sub: argparse._SubParsersAction) -> None:
    """Register `sim controller` and `sim city` on the `kota` command's subparsers."""
    sim = sub.add_parser("sim", help="run emulated field devices (traffic controller, "
                         "attendance machine) and the SUMO city around them",
                         description="Emulated device firmware speaking the real protocols, for "
                         "testing an edge box or the control room without street hardware; "
                         "`sim city` puts them in a SUMO city.")
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
    from kota.sim_camera import add_parser as add_camera_parser
    from kota.sim_simpeg import add_parser as add_simpeg_parser
    from kota.sim_zk import add_parser as add_zk_parser

    add_zk_parser(kinds)
    add_camera_parser(kinds)
    add_simpeg_parser(kinds)
    _add_city_parser(kinds)
