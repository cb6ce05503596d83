"""The closed loop as real processes: SUMO city → controllers → edge agents → broker → control room.

Owns the orchestration of one hardware-in-the-loop run (`kota sim city`, `kota demo`): the city
world (SUMO and the emulated controllers, in this process), the database (the embedded
PostgreSQL or an external URL), the broker (`kota broker` as a child process, or an external
URL), the control room (`kota controlroom run`) and one or a few edge agents (`kota edge run`),
each child with its own settings file in the run directory and its log beside it. It waits for
each part to be ready before starting the next, names what failed and what to do, and stops
in reverse order, leaving no process behind. It must not contain control, edge or device logic:
the children run the production code unmodified, configured only through their settings files.

Time. The world paces SUMO (``time_scale`` simulated seconds per real second) and the
controllers count SUMO time; edge agents poll once a *real* second and the control room measures
flows per *real* second. Adaptive control is faithful only at ×1: at ×X every poll spans X
simulated seconds and the core sees X times the flow (it plans for a busier city). ×2–×10 is
sensible for functional runs (plans, faults, fallback); watchdogs are widened to match.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kota.settings import Settings

if TYPE_CHECKING:
    from controlroom.storage.embedded import EmbeddedPostgres
    from firmware_sim.onvif.server import CameraEmulator
    from kota.office import Offices
    from simulators.city import CityResult, CityWorld
    from simulators.simpeg import SimpegServer

log = logging.getLogger("kota.city")

EDGE_POLL_S = 1.0  # the edge agents' poll interval, real seconds (their default)
CONTROLLERS_PER_EDGE_MAX = 256  # edge.settings: controllers max_length
DEFAULT_EDGES = 2
STOP_GRACE_S = 20.0  # a child gets this long after SIGINT before SIGKILL
LOG_TAIL_LINES = 25
PAYROLL_INTERVAL_S = 120.0  # with offices: the control room's SIMPEG sync and recompute round
SIMPEG_CLIENT_ID = "kotapintar"
PR_SET_PDEATHSIG = 1  # prctl(2): the child gets a signal when this process dies


class StackError(Exception):
    """A part of the stack could not start; the message says which, why and what to do."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class StackOptions:
    """How the stack around a city world runs; every value has a working default."""

    run_dir: Path
    layout_path: Path | None = None  # default: run_dir/layout.json
    mqtt_url: str | None = None  # external broker (Mosquitto…); None: embedded `kota broker`
    broker_port: int = 0  # the embedded broker's port; 0: a free one
    database_url: str | None = None  # None: the settings' database (embedded by default)
    fresh: bool = False  # drop the stored data first (the demo's --fresh)
    edges: int | None = None  # edge agent processes; None: DEFAULT_EDGES (at most one each)
    edge_prefix: str = "edge-city"
    http_host: str = "127.0.0.1"
    http_port: int = 0  # 0: a free one
    controlroom_client_id: str = "kota-city-controlroom"
    plan_interval_s: float | None = None  # None: one 60 s SUMO cycle, in real seconds
    watchdog_s: float | None = None  # controllers' central watchdog, SUMO s; None: by scale
    keepalive_s: int = 5  # MQTT keep-alive of every child; a dead one's will after 1.5x
    ready_timeout_s: float = 90.0
    log_level: str = "INFO"
    city_name: str = "Kota Contoh"
    timezone: str = "Asia/Jakarta"
    offices: int = 0  # emulated attendance machines (with staff) and an office edge agent
    cameras: int = 0  # emulated ONVIF PTZ cameras over simulated approaches, and a camera edge


def edge_count(controllers: int, wanted: int | None) -> int:
    """Edge agents for ``controllers`` intersections: as asked, never more than one per
    controller, never more controllers on one agent than it accepts."""
    n = DEFAULT_EDGES if wanted is None else wanted
    n = max(n, math.ceil(controllers / CONTROLLERS_PER_EDGE_MAX))
    return max(1, min(n, controllers))


def split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` in ``parts`` contiguous runs whose lengths differ by at most one."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + size + (1 if k < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def plan_interval_for(time_scale: float | None) -> float:
    """About one 60 s cycle of SUMO time in real seconds, within the core's useful range."""
    scale = time_scale or 1.0
    return min(60.0, max(5.0, 60.0 / scale))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- settings files


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(doc: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for settings files: scalars, lists, tables, arrays of tables."""
    scalars, tables, arrays = [], [], []
    for key, value in doc.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            arrays.append((key, value))
        else:
            scalars.append(f"{key} = {_toml_value(value)}")
    out = "\n".join(scalars) + ("\n" if scalars else "")
    for key, value in tables:
        name = f"{prefix}{key}"
        inner = to_toml(value, name + ".")
        if any(not isinstance(v, Mapping) for v in value.values()):
            out += f"\n[{name}]\n"
        out += inner
    for key, rows in arrays:
        for row in rows:
            out += f"\n[[{prefix}{key}]]\n" + to_toml(row, f"{prefix}{key}.")
    return out


def write_settings(path: Path, doc: Mapping[str, Any], header: str) -> Path:
    """Write a `kota` settings file, refused here (naming the key) rather than by the child."""
    text = "".join(f"# {line}\n" for line in header.splitlines()) + to_toml(doc)
    try:
        Settings.model_validate(tomllib.loads(text))
    except ValueError as exc:  # pydantic's ValidationError names the key
        raise StackError(f"the settings written to {path} are refused: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.chmod(0o600)  # it may hold an API key and broker or database passwords
    partial.replace(path)
    return path


# --------------------------------------------------------------------------- child processes


@functools.cache
def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: a function for ``preexec_fn`` that makes the child get SIGTERM when the
    orchestrator dies, even by SIGKILL, so no child outlives it. Resolved here, in the parent:
    between fork and exec (other threads frozen, maybe holding the import lock) the child must
    only call it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_signal() -> None:  # pragma: no cover - runs in the child
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_signal


def child_env() -> dict[str, str]:
    """The environment of a child: ours without KOTA_* overrides, which would beat the
    settings file written for it (one KOTA_EDGE__EDGE_ID would give every edge one id)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KOTA_")}


@dataclass
class Child:
    """One `kota …` child process, its settings file and its log."""

    name: str
    args: list[str]
    config: Path
    log_path: Path
    log_level: str = "INFO"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_offset: int = 0  # where this start's lines begin in the log

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        argv = [sys.executable, "-m", "kota", "--config", str(self.config),
                "--log-level", self.log_level, *self.args]
        with open(self.log_path, "ab") as out:
            out.write(f"\n==== {datetime.now(UTC).isoformat()} {' '.join(argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=child_env(), start_new_session=True,  # Ctrl-C reaches us, we stop them in order
                preexec_fn=_parent_death_signal())
        log.debug("%s started (pid %d)", self.name, self.proc.pid)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exited(self) -> str | None:
        """Why the child is not running (None while it runs or was never started)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return f"{self.name} exited with code {self.proc.returncode}"

    def output(self) -> str:
        """What the child wrote since its last start."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGINT (its own Ctrl-C: a graceful stop), then SIGKILL after ``grace_s``."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s; killing it (pid %d)", self.name,
                            grace_s, proc.pid)
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a power cut would (fault tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def edge_connected(state_dir: Path) -> bool:
    """An edge agent's status file says it is connected to its broker."""
    from edge.status import StatusError, read_status

    try:
        return bool(read_status(state_dir, datetime.now(UTC)).get("connected"))
    except StatusError:
        return False


def wait_ready(ready: Callable[[], bool], child: Child | None, what: str, timeout_s: float,
               advice: str = "", error: type[Exception] = StackError) -> None:
    """Poll ``ready`` until it holds; raise ``error`` naming ``what``, why (its process exited or
    the time ran out), ``advice`` and the last lines of the child's log."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        gone = child.exited() if child is not None else None
        if gone is not None or time.monotonic() > deadline:
            why = gone or f"not ready after {timeout_s:g} s"
            hint = f"; {advice}" if advice else ""
            tail = f"\n  last lines of {child.log_path}:\n{child.tail()}" if child else ""
            raise error(f"{what}: {why}{hint}{tail}")
        time.sleep(0.1)


def _http_json(url: str, timeout_s: float = 2.0) -> Any:
    """GET ``url`` as JSON; a 503 answer (the health check's "degraded") still has a body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"null")


# --------------------------------------------------------------------------- the stack


@dataclass(frozen=True)
class EdgePart:
    edge_id: str
    intersections: tuple[str, ...]
    state_dir: Path
    child: Child


class CityStack:
    """The whole loop around a started ``CityWorld``; see the module docstring.

    ``stack = CityStack(world, StackOptions(run_dir=…), settings); stack.start()`` starts
    database, broker, control room and edges (the world must be started: its layout and
    controller endpoints configure them) and then the world's steps; ``stack.stop()`` stops
    everything in reverse order and returns the world's result. Tests reach the parts:
    ``stack.controlroom.kill()``, ``stack.restart_controlroom()``, ``stack.world.on_controller``.
    """

    def __init__(self, world: CityWorld, options: StackOptions, settings: Settings | None = None,
                 *, say: Callable[[str], None] | None = None) -> None:
        self.world = world
        self.options = options
        self.settings = settings or Settings()
        self.say = say or (lambda line: log.info("%s", line))
        self.run_dir = options.run_dir.resolve()
        self.layout_path = (options.layout_path or self.run_dir / "layout.json").resolve()
        self.operator_key = secrets.token_urlsafe(24)
        self.bkpsdm_key = secrets.token_urlsafe(24)
        self.users: dict[str, str] = {}  # name → password of this run's log-ins, one per role
        self.database_url: str | None = None
        self.mqtt_url: str | None = None
        self.api_url: str = ""
        self.broker: Child | None = None
        self.controlroom: Child | None = None
        self.edges: list[EdgePart] = []
        self.offices: Offices | None = None
        self.office_edge: Child | None = None
        self.simpeg: SimpegServer | None = None  # the emulated SIMPEG, with offices
        self.cameras: list[CameraEmulator] = []
        self.camera_edge: Child | None = None
        self._embedded_pg: EmbeddedPostgres | None = None
        self._started: list[str] = []  # what to stop, in start order
        self._result: CityResult | None = None

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Start every part in order, each ready before the next; on failure stop what
        started and raise StackError."""
        if not self.world.endpoints:
            raise StackError("start the city world first: its layout and controller addresses "
                             "configure the control room and the edges")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._check_controllers()
            self._check_external_broker()  # before touching any database: fail fast
            self.world.write_layout(self.layout_path)
            self._start_database()
            self._make_users()
            self._start_broker()
            self._start_simpeg()
            self._start_controlroom()
            self._start_edges()
            self._start_offices()
            self.world.run()
            self._started.append("world")
            # Cameras last: the intersections come alive first; a camera adds nothing to them.
            self._start_cameras()
            self._wait_cameras()
        except BaseException:
            self._stop_children()
            if "world" in self._started:
                self.world.stop()
            raise

    def _check_controllers(self) -> None:
        deadline = time.monotonic() + 10
        for e in self.world.endpoints:
            while not port_open(e.host, e.port):
                if time.monotonic() > deadline:
                    raise StackError(f"controller {e.intersection_id} does not listen on "
                                     f"{e.host}:{e.port} (Modbus TCP); is the address usable "
                                     "here? try --host 127.0.0.1 or another --base-port")
                time.sleep(0.1)

    def _start_database(self) -> None:
        from controlroom.storage.migrate import migrate

        db = self.settings.database
        url = self.options.database_url or db.url
        if url is None:
            from controlroom.storage.embedded import EmbeddedPostgres, EmbeddedPostgresError

            emb = db.embedded
            data_dir = emb.data_dir or self.settings.site.resolved_data_dir() / "postgres"
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            server = EmbeddedPostgres(data_dir, port=emb.port, database=emb.database)
            self.say(f"starting the embedded PostgreSQL ({data_dir}, port {emb.port})…")
            try:
                url = server.start()
            except (EmbeddedPostgresError, OSError) as exc:
                raise StackError(f"the embedded PostgreSQL did not start: {exc}; is port "
                                 f"{emb.port} taken? set [database.embedded] port, or give "
                                 "--database URL") from exc
            self._embedded_pg = server
            self._started.append("database")
        self.database_url = url
        import psycopg

        try:
            if self.options.fresh:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                self.say("dropped the stored data (--fresh)")
            migrate(url, retention_days=db.retention_days,
                    compress_after_days=db.compress_after_days)
        except psycopg.Error as exc:
            raise StackError(f"the database {_mask(url)} cannot be used: {exc}; check that "
                             "PostgreSQL runs there and the URL's user may create tables") from exc

    def _make_users(self) -> None:
        """One log-in per role (named after it) with a fresh random password each run, printed
        by describe(): the only passwords the system ever makes itself. A user left from an
        earlier run gets the new password and is enabled and unlocked."""
        from controlroom.auth.passwords import Passwords
        from controlroom.auth.service import Authenticator
        from controlroom.auth.store import ROLES, UserStore
        from controlroom.storage.store import open_pool

        assert self.database_url is not None
        # 96 random bits make the hash's cost irrelevant, so the cheapest argon2id keeps the
        # stack's start quick; the first log-in re-hashes with the configured cost.
        cheap = Passwords(time_cost=1, memory_kib=64, parallelism=1)
        pool = open_pool(self.database_url, 1, 1, name="kota-demo-users")
        try:
            auth = Authenticator(UserStore(pool), self.settings.controlroom.auth, cheap)
            for role in ROLES:
                password = secrets.token_urlsafe(12)
                if auth.store.user(role) is None:
                    auth.add_user(role, role, password, actor="kota-demo")
                else:
                    auth.set_password(role, password, actor="kota-demo")
                    auth.set_disabled(role, False, actor="kota-demo")
                    auth.unlock(role, actor="kota-demo")
                self.users[role] = password
        finally:
            pool.close()

    def _check_external_broker(self) -> None:
        url = self.options.mqtt_url
        if url is None:
            return
        from edge.contract import MqttEndpoint

        try:
            ep = MqttEndpoint(url=url)
        except ValueError as exc:
            raise StackError(f"broker URL {url!r}: {exc}") from exc
        if not port_open(ep.host, ep.port, 2.0):
            raise StackError(f"no MQTT broker answers at {url}; start it (e.g. `systemctl "
                             "start mosquitto`) or leave out --mqtt to use the embedded one")

    def _start_broker(self) -> None:
        if self.options.mqtt_url is not None:
            self.mqtt_url = self.options.mqtt_url
            return
        host = self.settings.broker.host
        port = self.options.broker_port or free_port(host)
        config = write_settings(self.run_dir / "broker.toml",
                                {"broker": {"host": host, "port": port,
                                            "password_file": self.settings.broker.password_file}},
                                "The embedded MQTT broker of this run (`kota broker`).")
        self.broker = Child("broker", ["broker"], config, self.run_dir / "logs" / "broker.log",
                            self.options.log_level)
        self._broker_address = (host, port)
        self._run_broker()
        self._started.append("broker")
        self.mqtt_url = f"mqtt://{host}:{port}"

    def _run_broker(self) -> None:
        broker = self.broker
        assert broker is not None
        host, port = self._broker_address
        broker.start()
        # Its own words, not a probe connection (which the broker would log as an error).
        self._wait(lambda: "MQTT broker listening on" in broker.output(), broker,
                   f"the embedded broker on {host}:{port}",
                   f"is port {port} taken? give another --broker-port")

    def restart_broker(self) -> None:
        """Start the embedded broker again on its port (after a stop or a kill: fault tests)."""
        if self.broker is None:
            raise StackError("this run uses an external broker; restart it yourself")
        if self.broker.running:
            self.broker.stop()
        self._run_broker()

    def _mqtt(self) -> dict[str, Any]:
        return {"url": self.mqtt_url, "keepalive_s": self.options.keepalive_s,
                "reconnect_min_s": 0.5, "reconnect_max_s": 2.0}

    def controlroom_settings(self) -> dict[str, Any]:
        opts = self.options
        return {
            "site": {"city": opts.city_name, "timezone": opts.timezone,
                     "data_dir": self.run_dir / "controlroom"},
            "database": {"url": self.database_url},
            "controlroom": {
                "mqtt": self._mqtt(), "client_id": opts.controlroom_client_id,
                "http_host": opts.http_host, "http_port": self._http_port,
                "state_interval_s": 5.0,
                "traffic": {"layout": self.layout_path,
                            "plan_interval_s": opts.plan_interval_s
                            or plan_interval_for(self.world.options.time_scale),
                            "telemetry_period_s": EDGE_POLL_S},
                # The configured keys, and one for this run's operator (in this file).
                "api_keys": [*({"user": k.user, "role": k.role, "key": k.key.get_secret_value()}
                               for k in self.settings.controlroom.api_keys),
                             {"user": "operator", "role": "operator", "key": self.operator_key},
                             {"user": "bkpsdm", "role": "bkpsdm", "key": self.bkpsdm_key}],
                **({"attendance": self._attendance_settings()} if self.simpeg else {}),
            },
        }

    def _attendance_settings(self) -> dict[str, Any]:
        assert self.simpeg is not None
        return {"payroll_interval_s": PAYROLL_INTERVAL_S,
                "simpeg": {"base_url": self.simpeg.url, "client_id": SIMPEG_CLIENT_ID,
                           "client_secret": self._simpeg_secret}}

    def _start_simpeg(self) -> None:
        """The region's SIMPEG, emulated in this process: the offices' staff as employees."""
        if not self.options.offices:
            return
        from kota.office import simpeg_world
        from simulators.simpeg import SimpegServer

        self._simpeg_secret = secrets.token_urlsafe(16)
        self.simpeg = SimpegServer(simpeg_world(self.options.offices), host="127.0.0.1",
                                   client_id=SIMPEG_CLIENT_ID, client_secret=self._simpeg_secret)
        self.simpeg.start()
        self._started.append("simpeg")
        self.say(f"SIMPEG (emulated) at {self.simpeg.url}: "
                 f"{len(self.simpeg.world.employees)} employees of the offices")

    def _start_controlroom(self) -> None:
        self._http_port = self.options.http_port or free_port(self.options.http_host)
        config = write_settings(self.run_dir / "controlroom.toml", self.controlroom_settings(),
                                "The control room of this run (`kota controlroom run`).")
        self.api_url = f"http://{self.options.http_host}:{self._http_port}/"
        self.controlroom = Child("control room", ["controlroom", "run"], config,
                                 self.run_dir / "logs" / "controlroom.log", self.options.log_level)
        self._run_controlroom()
        self._started.append("controlroom")

    def _run_controlroom(self) -> None:
        assert self.controlroom is not None
        self.controlroom.start()

        def healthy() -> bool:
            try:
                body = _http_json(self.api_url + "api/health")
            except (OSError, ValueError):
                return False
            return isinstance(body, dict) and body.get("status") == "ok"

        self._wait(healthy, self.controlroom, f"the control room at {self.api_url}api/health",
                   f"is port {self._http_port} taken? give another --http-port; its log says more")

    def restart_controlroom(self) -> None:
        """Start the control room again with the same settings (after a stop or a kill)."""
        assert self.controlroom is not None
        if self.controlroom.running:
            self.controlroom.stop()
        self._run_controlroom()

    def _start_edges(self) -> None:

        endpoints = list(self.world.endpoints)
        parts = split_evenly(endpoints, edge_count(len(endpoints), self.options.edges))
        for k, mine in enumerate(parts, start=1):
            edge_id = f"{self.options.edge_prefix}-{k}"
            config = write_settings(self.run_dir / f"{edge_id}.toml", self.edge_settings(edge_id, mine),
                                    f"Edge agent {edge_id} of this run (`kota edge run`): "
                                    f"{len(mine)} controller(s).")
            child = Child(edge_id, ["edge", "run"], config, self.run_dir / "logs" / f"{edge_id}.log",
                          self.options.log_level)
            part = EdgePart(edge_id, tuple(e.intersection_id for e in mine),
                            self.run_dir / "edges" / edge_id, child)
            self.edges.append(part)
            child.start()
        self._started.append("edges")

        for part in self.edges:
            self._wait(functools.partial(edge_connected, part.state_dir), part.child, f"edge agent {part.edge_id} connected to "
                       f"{self.mqtt_url}", "its log says why")

    def edge_settings(self, edge_id: str, endpoints: Sequence[Any]) -> dict[str, Any]:
        from kota.sim import edge_watchdog_s

        scale = self.world.options.time_scale
        watchdog_s = self.options.watchdog_s or edge_watchdog_s(scale)
        return {
            "site": {"city": self.options.city_name, "timezone": self.options.timezone,
                     "data_dir": self.run_dir / "edges"},
            "edge": {
                "edge_id": edge_id, "mqtt": self._mqtt(),
                "state_dir": self.run_dir / "edges" / edge_id,
                "poll_interval_s": EDGE_POLL_S,
                "command_issuers": ["controlroom"],
                "controllers": [
                    {"intersection_id": e.intersection_id, "host": e.host, "port": e.port,
                     "unit": e.unit, "watchdog_timeout_s": watchdog_s,
                     "location": e.name[:120]} for e in endpoints],
            },
        }

    def _wait(self, ready: Callable[[], bool], child: Child | None, what: str, advice: str
              ) -> None:
        wait_ready(ready, child, what, self.options.ready_timeout_s, advice)

    # ------------------------------------------------------------------ run and stop

    def failed_child(self) -> str | None:
        """A child that died on its own (not stopped by us), with its log's last lines."""
        for child in self.children():
            gone = child.exited()
            if gone is not None:
                return f"{gone}; last lines of {child.log_path}:\n{child.tail()}"
        return None

    def children(self) -> list[Child]:
        out = [p.child for p in self.edges]
        out += [self.office_edge] if self.office_edge is not None else []
        out += [self.camera_edge] if self.camera_edge is not None else []
        out += [c for c in (self.controlroom, self.broker) if c is not None]
        return out

    def _start_offices(self) -> None:
        """Attendance machines in this process, their staff, and the office edge agent."""
        if not self.options.offices:
            return
        from zoneinfo import ZoneInfo

        from kota.office import Offices

        tz = self.options.timezone
        offset = ZoneInfo(tz).utcoffset(datetime.now(UTC)) if tz else None
        self.offices = Offices(self.options.offices,
                               utc_offset_h=offset.total_seconds() / 3600 if offset else 7.0)
        self.offices.start()
        edge_id = "kantor-demo"
        state_dir = self.run_dir / "edges" / edge_id
        config = write_settings(self.run_dir / f"{edge_id}.toml", {
            "site": {"city": self.options.city_name, "timezone": tz,
                     "data_dir": self.run_dir / "edges"},
            "edge": self.offices.edge_settings(edge_id, self._mqtt(), state_dir, tz=tz)},
            f"The office edge agent of this run (`kota edge run`): "
            f"{len(self.offices.machines)} attendance machine(s).")
        self.office_edge = Child(edge_id, ["edge", "run"], config,
                                 self.run_dir / "logs" / f"{edge_id}.log", self.options.log_level)
        self.office_edge.start()
        self._started.append("offices")
        self._wait(functools.partial(edge_connected, state_dir), self.office_edge, f"office edge agent {edge_id} connected to "
                   f"{self.mqtt_url}", "its log says why")

    def _start_cameras(self) -> None:
        """PTZ cameras in this process, each over a simulated approach of one intersection,
        and the camera edge agent that watches them (zones, tamper, PTZ, snapshots)."""
        if not self.options.cameras:
            return
        from kota.sim_camera import approach_camera, zone_rows

        edge_id = "kamera-demo"
        state_dir = self.run_dir / "edges" / edge_id
        ids = [e.intersection_id for e in self.world.endpoints]
        cameras = []
        for k in range(self.options.cameras):
            password = secrets.token_urlsafe(12)
            cam = approach_camera(seed=k + 1, host="127.0.0.1", port=0, password=password)
            cam.start()
            self.cameras.append(cam)
            iid = ids[k % len(ids)] if ids else None
            cameras.append({
                "camera_id": f"cam-{iid or k + 1}", "host": cam.host, "port": cam.port,
                "user": cam.camera.user, "password": password, "name": f"Simpang {iid} (demo)",
                **({"intersection_id": iid} if iid else {}),
                "video": "stream", "video_url": f"{cam.base_url}/mjpeg", "fps": 4.0,
                "zones": zone_rows(cam.view.world.zones),
                "snapshot_interval_s": 30.0})
        self._started.append("cameras")
        config = write_settings(self.run_dir / f"{edge_id}.toml", {
            "site": {"city": self.options.city_name, "timezone": self.options.timezone,
                     "data_dir": self.run_dir / "edges"},
            "edge": {"edge_id": edge_id, "mqtt": self._mqtt(), "state_dir": state_dir,
                     "command_issuers": ["controlroom", "operator*"], "cameras": cameras}},
            f"The camera edge agent of this run (`kota edge run`): {len(cameras)} camera(s).")
        self.camera_edge = Child(edge_id, ["edge", "run"], config,
                                 self.run_dir / "logs" / f"{edge_id}.log", self.options.log_level)
        self.camera_edge.start()

    def _wait_cameras(self) -> None:
        """The camera edge connected (waited for once the world runs: it starts slowest)."""
        if self.camera_edge is None:
            return
        self._wait(functools.partial(edge_connected, self.run_dir / "edges" / "kamera-demo"),
                   self.camera_edge, f"camera edge agent kamera-demo connected to "
                   f"{self.mqtt_url}", "its log says why")

    def _stop_children(self) -> None:
        if self.camera_edge is not None:
            self.camera_edge.stop()
        for cam in self.cameras:
            cam.stop()
        self.cameras = []
        if self.office_edge is not None:
            self.office_edge.stop()
        if self.offices is not None:
            self.offices.stop()
            self.offices = None
        if self.simpeg is not None:
            self.simpeg.stop()
            self.simpeg = None
        for part in self.edges:
            part.child.stop()
        if self.controlroom is not None:
            self.controlroom.stop()
        if self.broker is not None:
            self.broker.stop()
        if self._embedded_pg is not None and self._embedded_pg.launched:
            self._embedded_pg.stop()  # only a server this run started; `kota db start`'s stays
            self._embedded_pg = None

    def stop(self) -> CityResult:
        """Edges, control room, broker, database, then the world: its result (RESCO delay)."""
        if self._result is not None:
            return self._result
        try:
            self._stop_children()
        finally:
            self._result = self.world.stop()
        return self._result

    def where(self) -> dict[str, Any]:
        """Where everything is, for people (printed) and orchestrators (--json)."""
        return {
            "api": self.api_url, "status_page": self.api_url,
            "broker": self.mqtt_url, "broker_embedded": self.broker is not None,
            "database": _mask(self.database_url or ""),
            "database_embedded": self._embedded_pg is not None or (
                self.options.database_url is None and self.settings.database.url is None),
            "run_dir": str(self.run_dir), "layout": str(self.layout_path),
            "operator_key_file": str(self.run_dir / "controlroom.toml"),
            "controlroom_pid": self.controlroom.pid if self.controlroom else None,
            "broker_pid": self.broker.pid if self.broker else None,
            "edges": [{"edge_id": p.edge_id, "pid": p.child.pid, "intersections":
                       list(p.intersections), "state_dir": str(p.state_dir)}
                      for p in self.edges],
            "simpeg": self.simpeg.url if self.simpeg is not None else None,
            "bkpsdm_key_file": str(self.run_dir / "controlroom.toml"),
            "attendance_machines": [{"serial": e.serial, "office": e.office, "port": e.port,
                                     "profile": e.profile}
                                    for e in (self.offices.endpoints if self.offices else [])],
            "cameras": [{"device_url": cam.device_url, "mjpeg": f"{cam.base_url}/mjpeg"}
                        for cam in self.cameras],
            "logs": str(self.run_dir / "logs"),
            "users": [{"name": name, "role": name, "password": password}
                      for name, password in self.users.items()],
        }


def _mask(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@",
                                                                     ":***@")))
    return url


def describe(stack: CityStack) -> str:
    """The lines a person needs: where to look and how to act."""
    w = stack.where()
    world = stack.world
    scale = world.options.time_scale
    pace = ("as fast as SUMO goes" if scale is None else "at real speed" if scale == 1
            else f"at ×{scale:g}")
    lines = [
        f"status page:  {w['status_page']}",
        f"API:          {w['api']}api/intersections  ·  {w['api']}api/alarms",
        f"broker:       {w['broker']}" + (" (embedded)" if w["broker_embedded"] else ""),
        f"database:     {w['database']}" + (" (embedded)" if w["database_embedded"] else ""),
        "edge agents:  " + "; ".join(f"{e['edge_id']} ({', '.join(e['intersections'])})"
                                      for e in w["edges"]),
        f"operator key: in {w['operator_key_file']} (X-API-Key header, role operator)",
        f"run dir:      {w['run_dir']} (settings files; logs in logs/)",
        f"SUMO:         {len(world.endpoints)} intersections, {pace}",
    ]
    if w["attendance_machines"]:
        lines.insert(5, "attendance:   " + "; ".join(
            f"{m['serial']} ({m['office']}, 127.0.0.1:{m['port']})"
            for m in w["attendance_machines"])
            + f" — staff checking in; {w['api']}api/attendance/machines")
    if w["simpeg"]:
        lines.insert(6, f"payroll:      {w['api']}api/attendance/recap?month="
                     f"{datetime.now():%Y-%m} (X-API-Key: the bkpsdm key in "
                     f"{w['bkpsdm_key_file']}); SIMPEG (emulated) at {w['simpeg']}")
    if w["cameras"]:
        lines.insert(-3, f"cameras:      {len(w['cameras'])} PTZ camera(s) over simulated "
                     f"approaches; {w['api']}api/cameras (PTZ and snapshots: operator key); "
                     f"first camera's ONVIF at {w['cameras'][0]['device_url']}")
    if w["users"]:
        lines.append("log-ins:      " + ", ".join(f"{u['name']} / {u['password']}"
                                                  for u in w["users"])
                     + f" (name / password, this run only; POST {w['api']}api/auth/login)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- one run, start to end

PROGRESS_EVERY_S = 300.0  # simulated seconds between progress lines


def _clock(t_s: float) -> str:
    t = int(t_s)
    return f"{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


def run_closed_loop(world: CityWorld, options: StackOptions, settings: Settings, *,
                    json_out: bool = False, metrics_path: Path | None = None,
                    extra: Mapping[str, Any] | None = None, title: str = "") -> int:
    """Start the world and the stack, run until the world's end, Ctrl-C / SIGTERM or a part
    failing, stop everything in reverse order and print the RESCO delay. Exit code 0 when the
    run ended as asked, 1 when a part could not start or died."""
    import threading

    from firmware_sim.controller.server import EmulatorError
    from simulators.traffic.errors import TrafficSimError

    def say(line: str) -> None:
        print(line, file=sys.stderr if json_out else sys.stdout, flush=True)

    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    stack: CityStack | None = None
    failed: str | None = None
    result: CityResult | None = None
    try:
        try:
            world.start()
        except (TrafficSimError, EmulatorError, OSError) as exc:
            say(f"cannot start the city: {exc}")
            return 1
        stack = CityStack(world, options, settings, say=say)
        try:
            stack.start()
        except StackError as exc:
            failed = f"cannot start the stack — {exc}"
        if failed is None:
            if json_out:
                print(json.dumps({"event": "ready", **stack.where(), **(extra or {}),
                                  "begin_s": world.t_s, "end_s": world.end_s,
                                  "time_scale": world.options.time_scale,
                                  "controllers": [e.as_dict() for e in world.endpoints]},
                                 ensure_ascii=False), flush=True)
            else:
                say(f"\n{title or 'Kota Pintar closed loop'} is running.\n{describe(stack)}\n"
                    f"SUMO {_clock(world.t_s)} → {_clock(world.end_s)} — Ctrl-C to stop\n")
            next_report = world.t_s + PROGRESS_EVERY_S
            while not stop.is_set() and not world.wait(0.5):
                failed = stack.failed_child()
                if failed is not None:
                    break
                if world.t_s >= next_report and not json_out:
                    say(f"SUMO {_clock(world.t_s)}")
                    next_report = world.t_s + PROGRESS_EVERY_S
    finally:
        say("stopping: edge agents, control room, broker, database, city…")
        try:
            result = stack.stop() if stack is not None else world.stop()
        except TrafficSimError as exc:
            failed = failed or f"the city failed: {exc}"
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failed is not None:
        say(failed)
        return 1
    assert result is not None
    m = result.metrics
    summary = {"begin_s": result.begin_s, "end_s": result.end_s, "steps": result.steps,
               "wall_s": round(result.wall_s, 3), "seed": world.options.seed,
               "time_scale": world.options.time_scale, **m.as_dict()}
    if json_out:
        print(json.dumps({"event": "stopped", **summary}), flush=True)
    else:
        say(f"stopped at SUMO {_clock(result.end_s)} after {result.steps} steps "
            f"({result.wall_s:.1f} s): {m.vehicles} vehicles, {m.arrived} arrived, average "
            f"delay {m.avg_delay_s:.1f} s (RESCO)")
    if metrics_path is not None:
        metrics_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0
