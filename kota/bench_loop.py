"""`kota bench loop`: detector change at the controller → new plan committed at the controller.

Owns one benchmark run of the whole closed loop as real processes on loopback: emulated
controllers (Modbus TCP, in a few worker processes of this script so that it can push detector
presence into them), the edge agents (`kota edge run`), the broker (`kota broker`, or an
external one with --mqtt), PostgreSQL (embedded, or --database) and the control room
(`kota controlroom run`) with a generated four-phase city layout. Figures: latency from a
surge of vehicles on one phase's loops to the controller holding a new plan that gives that
phase more green (p50/p90/p99/max, with the stages seen on the broker), and the control room's
telemetry intake, plan step time and CPU against every process's CPU. It must not contain
control, edge or device logic: the children run the production code unmodified, configured
only through their settings files. A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from edge.settings import default_scan_s
from kota.bench_stack import BenchError, StackParts, run_bench
from kota.city import (
    Child,
    _http_json,
    split_evenly,
)

PHASES = 4
DETECTORS = 8  # detector d (1-based) calls phase ((d-1) mod 4) + 1: two loops per phase
# The controllers' timing (the emulator's defaults) — the layout must say the same, or the
# edge refuses the control room's plans as unsafe for the controller.
MIN_GREEN_S, MAX_GREEN_S, YELLOW_S, ALL_RED_S = 7.0, 60.0, 3.0, 2.0
LANE_WIDTH_M = 3.2
SURGE_HEADWAY_DS = 20  # one vehicle every 2 s per loop: a lane at saturation flow
SURGE_ON_DS = 5  # each vehicle holds its loop 0.5 s
SPLIT_GAIN_DS = 20  # the plan counts as "new" when the surged phase gained ≥ 2 s of split
WATCH_POLL_S = 0.05  # how often the bench reads a watched controller's status
CONTROLLERS_PER_WORKER = 250
CONTROLLERS_PER_EDGE = 250
READY_TIMEOUT_S = 120.0


def intersection_ids(count: int, tag: str) -> list[str]:
    return [f"BL{tag}-{k + 1:04d}" for k in range(count)]


def layout_document(ids: Sequence[str]) -> dict[str, Any]:
    """A synthetic city for `controlroom.traffic.layout`: per intersection four phases, eight
    movements (one per loop: movement d is detector d), phase p serving movements p and p+4
    (the emulator's default detector → phase wiring), no corridors."""
    side = max(1, math.ceil(math.sqrt(len(ids))))
    phases = [{"movements": [p, p + PHASES], "min_green_s": MIN_GREEN_S,
               "max_green_s": MAX_GREEN_S, "yellow_s": YELLOW_S, "all_red_s": ALL_RED_S}
              for p in range(PHASES)]
    movements = [{"width_m": LANE_WIDTH_M, "protected": True} for _ in range(DETECTORS)]
    detectors = [{"movement": d} for d in range(DETECTORS)]
    return {"city": "Kota Bench", "intersections": [
        {"id": iid, "name": iid, "x": 300.0 * (k % side), "y": 300.0 * (k // side),
         "phases": phases, "movements": movements, "detectors": detectors}
        for k, iid in enumerate(ids)]}


def phase_detectors(phase: int) -> list[int]:
    """1-based loops that call ``phase`` (1-based)."""
    return [d for d in range(1, DETECTORS + 1) if (d - 1) % PHASES + 1 == phase]


# --------------------------------------------------------------------------- emulator workers


class SurgeTraffic:
    """A `TrafficSource`: optional built-in background traffic, plus a surge on demand — a
    vehicle every ``SURGE_HEADWAY_DS`` on the chosen loops from the moment it is asked for.
    While a loop surges, the background's changes on it are dropped (one owner per loop)."""

    def __init__(self, background: Any | None = None) -> None:
        self._background = background
        self._next_ds: dict[int, int] = {}  # surging loop → next vehicle
        self._offs: list[tuple[int, int]] = []  # (time, loop) a vehicle leaves its loop

    def surge(self, detectors: Sequence[int], now_ds: int) -> None:
        for d in detectors:
            self._next_ds.setdefault(d, now_ds)

    def calm(self) -> None:
        self._next_ds.clear()  # vehicles on their loops still leave them

    def step(self, from_ds: int, to_ds: int, green_mask: int) -> list[tuple[int, int, bool]]:
        out: list[tuple[int, int, bool]] = []
        if self._background is not None:
            out = [c for c in self._background.step(from_ds, to_ds, green_mask)
                   if c[1] not in self._next_ds]
        for d, at in self._next_ds.items():
            while at <= to_ds:
                on = max(at, from_ds + 1)
                out.append((on, d, True))
                self._offs.append((on + SURGE_ON_DS, d))
                at += SURGE_HEADWAY_DS
            self._next_ds[d] = at
        if self._offs:
            due = [o for o in self._offs if o[0] <= to_ds]
            self._offs = [o for o in self._offs if o[0] > to_ds]
            out += [(max(t, from_ds + 1), d, False) for t, d in due]
        out.sort(key=lambda c: (c[0], c[2]))  # at one instant a loop frees before it fills
        return out


def _worker_main(conn: Connection, ids: list[str], host: str, traffic_level: float,
                 seed: int) -> None:  # pragma: no cover - runs in a worker process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops it through the pipe
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        asyncio.run(_serve_controllers(conn, ids, host, traffic_level, seed))
    except (EOFError, OSError, KeyboardInterrupt):
        pass


async def _serve_controllers(conn: Connection, ids: list[str], host: str,
                             traffic_level: float, seed: int) -> None:  # pragma: no cover
    from firmware_sim.controller.clock import RealClock
    from firmware_sim.controller.host import ControllerSettings
    from firmware_sim.controller.server import ControllerEmulator, cancel_task, run_ticks
    from firmware_sim.controller.traffic import TrafficGenerator

    clock = RealClock(1.0)
    template = ControllerSettings(phases=PHASES, detectors=DETECTORS)
    sources: dict[str, SurgeTraffic] = {}
    emulators: list[ControllerEmulator] = []
    for k, iid in enumerate(ids):
        background = (TrafficGenerator(template.call_phases(), level=traffic_level, seed=seed + k,
                                       wall_s=clock.wall_s, start_ds=clock.now_ds())
                      if traffic_level > 0 else None)
        sources[iid] = SurgeTraffic(background)
        emulators.append(ControllerEmulator(template.controller_config(iid), clock=clock,
                                            host=host, port=0, unit_id=1, traffic=sources[iid],
                                            name=iid))
    for e in emulators:
        await e.start(tick=False)

    def tick() -> None:
        now = clock.now_ds()
        for e in emulators:
            e.tick(now)

    ticking = asyncio.create_task(run_ticks(clock, tick))
    conn.send(("ready", {e.name: e.port for e in emulators}))
    loop = asyncio.get_running_loop()
    try:
        while True:
            message = await loop.run_in_executor(None, conn.recv)
            if message[0] == "surge":
                sources[message[1]].surge(message[2], clock.now_ds())
            elif message[0] == "calm":
                sources[message[1]].calm()
            elif message[0] == "stop":
                break
    finally:
        await cancel_task(ticking)
        for e in emulators:
            if e.running:
                await e.stop()


@dataclass
class Worker:
    """One emulator worker process and the pipe that steers its surges."""

    ids: list[str]
    process: Any
    conn: Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    ports: dict[str, int] = field(default_factory=dict)

    def send(self, *message: Any) -> None:
        with self.lock:
            self.conn.send(message)

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.send("stop")
            except (OSError, ValueError):
                pass
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


# --------------------------------------------------------------------------- what the broker carries


class Observer:
    """Listens on the broker for the watched intersections' telemetry, commands and acks,
    timestamping each on arrival (monotonic clock, shared with the samplers)."""

    def __init__(self, url: str, client_id: str) -> None:
        import paho.mqtt.client as mqtt

        from edge.contract import MqttEndpoint

        ep = MqttEndpoint(url=url)
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if ep.username:
            self._client.username_pw_set(ep.username, ep.password)
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._lock = threading.Lock()
        self._watched: dict[str, dict[str, Any]] = {}
        self.commands = 0
        self.applied_ids: set[str] = set()
        self.last_command_at = 0.0
        self._connected = threading.Event()
        self._client.connect(ep.host, ep.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(15):
            self.close()
            raise BenchError(f"the bench's own MQTT client could not connect to {url}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        client.subscribe([("kota/v1/traffic/+/cmd", 1), ("kota/v1/traffic/+/cmd_ack", 1)])
        self._connected.set()

    def watch(self, iid: str, detectors: Sequence[int], t0: float) -> None:
        from edge.contract import telemetry_topic

        with self._lock:
            self._watched[iid] = {"t0": t0, "det": [d - 1 for d in detectors], "telemetry": None,
                                  "commands": [], "applied": {}}
        self._client.subscribe(telemetry_topic(iid), 0)

    def unwatch(self, iid: str) -> dict[str, Any]:
        from edge.contract import telemetry_topic

        self._client.unsubscribe(telemetry_topic(iid))
        with self._lock:
            return self._watched.pop(iid, {})

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        from edge.contract import (
            CommandAck,
            ContractError,
            TrafficCommand,
            TrafficTelemetry,
            decode,
        )

        try:
            payload = decode(msg.topic, msg.payload).payload
        except ContractError:
            return
        with self._lock:
            if isinstance(payload, TrafficCommand):
                self.commands += 1
                self.last_command_at = now
                w = self._watched.get(payload.intersection_id)
                if w is not None and payload.body.type == "plan":
                    w["commands"].append((now, payload.cmd_id))
            elif isinstance(payload, CommandAck):
                if payload.status == "applied":
                    self.applied_ids.add(payload.target_id)
                w = self._watched.get(payload.target_id)
                if w is not None and payload.status == "applied":
                    w["applied"].setdefault(payload.cmd_id, now)
            elif isinstance(payload, TrafficTelemetry):
                w = self._watched.get(payload.intersection_id)
                if (w is not None and w["telemetry"] is None
                        and any(payload.det_count[d] > 0 for d in w["det"]
                                if d < len(payload.det_count))):
                    w["telemetry"] = now

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


# --------------------------------------------------------------------------- CPU


class CpuMeter:
    """CPU seconds of named processes between ``start`` and ``stop`` (psutil)."""

    def __init__(self) -> None:
        self._procs: dict[str, Any] = {}
        self._trees: set[str] = set()
        self._t0: dict[str, float] = {}
        self._wall0 = 0.0
        self.result: dict[str, float] = {}

    def add(self, name: str, pid: int | None) -> None:
        import psutil

        if pid is not None:
            try:
                self._procs[name] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                pass

    def add_tree(self, name: str, pid: int | None) -> None:
        """A process with its children (PostgreSQL: the postmaster and its backends)."""
        self.add(name, pid)
        if name in self._procs:
            self._trees.add(name)

    def _cpu_of(self, name: str) -> float:
        import psutil

        proc = self._procs[name]
        procs = [proc]
        if name in self._trees:
            try:
                procs += proc.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                if p is proc:
                    return math.nan
                continue
            total += float(t.user + t.system)
        return total

    def start(self) -> None:
        self._wall0 = time.monotonic()
        self._t0 = {n: self._cpu_of(n) for n in self._procs}

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall0
        self.result = {n: round(100.0 * (self._cpu_of(n) - self._t0[n]) / wall, 1)
                       for n in self._procs}
        return self.result


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class LoopOptions:
    intersections: int = 100
    samples: int = 200
    concurrency: int = 10
    duration_s: float = 60.0
    warmup_max_s: float = 180.0
    poll_interval_s: float = 1.0
    scan_interval_s: float | None = None  # None: the edge's default (a quarter second)
    plan_interval_s: float = 2.0
    surge_replan: bool = True
    tick_s: float = 0.1
    sample_timeout_s: float = 15.0
    cooldown_s: float = 8.0
    traffic_level: float = 0.0
    edges: int | None = None
    workers: int | None = None
    mqtt_url: str | None = None
    database_url: str | None = None
    seed: int = 1
    keep_dir: bool = False


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000.0, 1) if len(values) else None


def _summary_ms(values: Sequence[float]) -> dict[str, Any]:
    return {"p50_ms": _pct(values, 50), "p90_ms": _pct(values, 90), "p99_ms": _pct(values, 99),
            "max_ms": round(max(values) * 1000.0, 1) if values else None,
            "mean_ms": round(float(np.mean(values)) * 1000.0, 1) if values else None}


class LoopBench(StackParts):
    """Start, measure, stop. ``stop`` leaves no process behind and may be called twice."""

    def __init__(self, options: LoopOptions, say: Callable[[str], None]) -> None:
        self.o = options
        self.say = say
        self.tag = secrets.token_hex(2)
        self.db_prefix = "kota_bench_loop"
        self.ids = intersection_ids(options.intersections, self.tag)
        self.run_dir = Path(tempfile.mkdtemp(prefix="kota-bench-loop-"))
        self.workers: list[Worker] = []
        self.worker_of: dict[str, Worker] = {}
        self.children: list[Child] = []
        self.broker: Child | None = None
        self.controlroom: Child | None = None
        self.edges: list[tuple[str, Path, Child]] = []
        self.observer: Observer | None = None
        self._embedded_pg: Any = None
        self._server_url: str | None = None
        self.db_url: str | None = None
        self.mqtt_url: str = ""
        self.api_url = ""
        self.edge_count = 0

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        self._start_workers()
        layout = self.run_dir / "layout.json"
        layout.write_text(json.dumps(layout_document(self.ids)), encoding="utf-8")
        self._start_database()
        self._start_broker()
        self._start_controlroom(layout)
        self._start_edges()
        self.observer = Observer(self.mqtt_url, f"kota-bench-loop-{self.tag}")

    def _start_workers(self) -> None:
        n = len(self.ids)
        count = self.o.workers or max(1, math.ceil(n / CONTROLLERS_PER_WORKER))
        ctx = mp.get_context("spawn")
        for k, ids in enumerate(split_evenly(self.ids, min(count, n))):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, name=f"bench-loop-controllers-{k + 1}",
                               args=(child, ids, "127.0.0.1", self.o.traffic_level,
                                     self.o.seed * 100_000 + k * 10_000), daemon=True)
            proc.start()
            child.close()
            worker = Worker(ids, proc, parent)
            self.workers.append(worker)
        self.say(f"starting {n} emulated controllers in {len(self.workers)} process(es)…")
        for worker in self.workers:
            if not worker.conn.poll(READY_TIMEOUT_S):
                raise BenchError("an emulator worker did not report ready")
            kind, ports = worker.conn.recv()
            worker.ports = ports
            for iid in worker.ids:
                self.worker_of[iid] = worker

    def _start_controlroom(self, layout: Path) -> None:  # type: ignore[override]
        self.say(f"starting the control room (plan every {self.o.plan_interval_s:g} s)…")
        super()._start_controlroom(layout, {"plan_interval_s": self.o.plan_interval_s,
                                            "telemetry_period_s": self.o.poll_interval_s,
                                            "tick_s": self.o.tick_s,
                                            "surge_replan": self.o.surge_replan},
                                   "kota-bench-loop")

    def _start_edges(self) -> None:
        from edge.status import StatusError, read_status

        n = len(self.ids)
        count = self.o.edges or max(2, math.ceil(n / CONTROLLERS_PER_EDGE))
        count = max(1, min(count, n))
        self.edge_count = count
        scan = ("default" if self.o.scan_interval_s is None
                else f"{self.o.scan_interval_s:g} s")
        self.say(f"starting {count} edge agent(s), telemetry every {self.o.poll_interval_s:g} s, "
                 f"controllers read every {scan}…")
        scan_setting = ({} if self.o.scan_interval_s is None
                        else {"scan_interval_s": self.o.scan_interval_s})
        for k, mine in enumerate(split_evenly(self.ids, count), start=1):
            edge_id = f"edge-bench-{self.tag}-{k}"
            state_dir = self.run_dir / "edges" / edge_id
            doc = {
                "site": {"city": "Kota Bench", "timezone": "Asia/Jakarta",
                         "data_dir": self.run_dir / "edges"},
                "edge": {
                    "edge_id": edge_id, "mqtt": self._mqtt(), "state_dir": state_dir,
                    "poll_interval_s": self.o.poll_interval_s,
                    "command_issuers": ["controlroom"],
                    "controllers": [
                        {"intersection_id": iid, "host": "127.0.0.1",
                         "port": self.worker_of[iid].ports[iid], "unit": 1,
                         "poll_interval_s": self.o.poll_interval_s, **scan_setting}
                        for iid in mine],
                },
            }
            child = self._child(edge_id, ["edge", "run"], doc,
                                f"Edge agent {edge_id} of this benchmark: {len(mine)} controllers.")
            self.edges.append((edge_id, state_dir, child))

        for edge_id, state_dir, child in self.edges:
            def connected(state_dir: Path = state_dir) -> bool:
                try:
                    return bool(read_status(state_dir, datetime.now(UTC)).get("connected"))
                except StatusError:
                    return False
            self._wait(connected, child, f"edge agent {edge_id}")

    def failed_child(self) -> str | None:
        for child in self.children:
            gone = child.exited()
            if gone is not None:
                return f"{gone}; last lines of {child.log_path}:\n{child.tail()}"
        for w in self.workers:
            if not w.process.is_alive():
                return f"emulator worker {w.process.name} exited ({w.process.exitcode})"
        return None

    # ------------------------------------------------------------------ measure

    def adaptive_count(self) -> int:
        """Intersections whose controller runs the control room's adaptive plan now (an
        applied plan waits for the controller's next safe point, up to a local cycle away)."""
        try:
            rows = _http_json(self.api_url + "api/intersections", timeout_s=10.0)
        except (OSError, ValueError):
            return 0
        if not isinstance(rows, list):
            return 0
        return sum(1 for r in rows if isinstance(r, dict) and r.get("plan_source") == "adaptive")

    def warm_up(self) -> float:
        """Until nearly every controller runs an adaptive plan and the plans stopped changing
        (the first plans, made before any detector data, settle in a few plan steps). A surge
        on a controller still on its local plan would measure its cycle, not the loop."""
        assert self.observer is not None
        t0 = time.monotonic()
        quiet_s = 3 * self.o.plan_interval_s + 2 * self.o.poll_interval_s + 1.0
        want = math.ceil(0.95 * len(self.ids))
        self.say(f"warming up: waiting for ≥ {want} controllers to run a central plan and the "
                 f"plans to settle (≤ {self.o.warmup_max_s:g} s)…")
        adaptive, asked = 0, -math.inf
        while time.monotonic() - t0 < self.o.warmup_max_s:
            time.sleep(0.5)
            failed = self.failed_child()
            if failed:
                raise BenchError(failed)
            now = time.monotonic()
            if len(self.observer.applied_ids) < want:
                continue
            if adaptive < want and now - asked >= 2.0:
                adaptive, asked = self.adaptive_count(), now
            if adaptive >= want and now - max(self.observer.last_command_at, t0) >= quiet_s:
                break
        else:
            self.say(f"warm-up: still not settled after {self.o.warmup_max_s:g} s "
                     f"({len(self.observer.applied_ids)} controllers with an applied plan, "
                     f"{adaptive} running it); measuring anyway")
        return time.monotonic() - t0

    def measure(self) -> dict[str, Any]:
        cpu = CpuMeter()
        cpu.add("bench (this process)", os.getpid())
        for k, w in enumerate(self.workers, start=1):
            cpu.add(f"controllers-{k}", w.process.pid)
        for edge_id, _, child in self.edges:
            cpu.add(edge_id.replace(f"-{self.tag}", ""), child.pid)
        if self.controlroom is not None:
            cpu.add("controlroom", self.controlroom.pid)
        if self.broker is not None:
            cpu.add("broker", self.broker.pid)
        import psutil

        if self.o.mqtt_url is not None:  # an external broker on this machine: other users too
            for proc in psutil.process_iter(["name"]):
                if proc.info["name"] == "mosquitto":
                    cpu.add("mosquitto (shared)", proc.pid)
                    break
        if self._embedded_pg is not None:
            pid_file = self.run_dir / "pg" / "postmaster.pid"
            try:
                cpu.add_tree("postgresql (embedded)", int(pid_file.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass

        h0 = self.health() or {}
        sys0 = psutil.cpu_times()
        cpu.start()
        t0 = time.monotonic()
        step_ms: list[float] = []
        stop = threading.Event()

        def watch_health() -> None:
            last_steps = -1
            while not stop.wait(max(0.5, self.o.plan_interval_s)):
                h = self.health() or {}
                tr = h.get("traffic") or {}
                if tr.get("plan_steps", -1) != last_steps and tr.get("last_step_ms") is not None:
                    step_ms.append(float(tr["last_step_ms"]))
                    last_steps = tr.get("plan_steps", -1)

        watcher = threading.Thread(target=watch_health, name="bench-health", daemon=True)
        watcher.start()
        try:
            samples = asyncio.run(self._sample_until(t0 + self.o.duration_s))
        finally:
            stop.set()
            watcher.join(5)
        remaining = t0 + self.o.duration_s - time.monotonic()
        if remaining > 0:
            self.say(f"latency samples done; measuring throughput {remaining:.0f} s more…")
            end = time.monotonic() + remaining
            while time.monotonic() < end:
                time.sleep(min(1.0, end - time.monotonic()))
                failed = self.failed_child()
                if failed:
                    raise BenchError(failed)
        wall = time.monotonic() - t0
        per_process = cpu.stop()
        sys1 = psutil.cpu_times()
        h1 = self.health() or {}
        busy = (sum(sys1) - sys1.idle - getattr(sys1, "iowait", 0)) - (
            sum(sys0) - sys0.idle - getattr(sys0, "iowait", 0))
        return {"wall_s": wall, "samples": samples, "cpu": per_process, "h0": h0, "h1": h1,
                "step_ms": step_ms,
                "machine_cpu_pct": round(100.0 * busy / wall, 1),
                "machine_cores": psutil.cpu_count()}

    async def _sample_until(self, deadline: float) -> list[dict[str, Any]]:
        from devices.controller.driver import ControllerClient

        rng = random.Random(self.o.seed)
        order = list(self.ids)
        rng.shuffle(order)
        busy: set[str] = set()
        last_used: dict[str, float] = {}
        results: list[dict[str, Any]] = []
        clients: dict[str, ControllerClient] = {}
        taken = 0
        cursor = 0

        def pick() -> str | None:
            nonlocal cursor
            now = time.monotonic()
            for _ in range(len(order)):
                iid = order[cursor % len(order)]
                cursor += 1
                if iid not in busy and now - last_used.get(iid, -math.inf) >= self.o.cooldown_s:
                    return iid
            return None

        async def sampler(k: int) -> None:
            nonlocal taken
            srng = random.Random(self.o.seed * 1000 + k)
            await asyncio.sleep(srng.uniform(0, self.o.poll_interval_s + self.o.plan_interval_s))
            while taken < self.o.samples and time.monotonic() < deadline:
                iid = pick()
                if iid is None:
                    await asyncio.sleep(0.2)
                    continue
                taken += 1
                busy.add(iid)
                try:
                    client = clients.get(iid)
                    if client is None:
                        port = self.worker_of[iid].ports[iid]
                        client = clients[iid] = ControllerClient("127.0.0.1", port,
                                                                 timeout_s=2.0)
                    results.append(await self._one_sample(iid, client, srng))
                finally:
                    busy.discard(iid)
                    last_used[iid] = time.monotonic()
                n = len(results)
                if n % 25 == 0:
                    ok = [r["latency_s"] for r in results if r["latency_s"] is not None]
                    self.say(f"  {n} samples, p50 {_pct(ok, 50)} ms, p99 {_pct(ok, 99)} ms")
                # A random gap as long as a poll plus a plan interval: without it the samplers
                # lock onto the plan steps (each sample ends just after one) and the latency
                # would show one phase of the plan cycle rather than all of them.
                await asyncio.sleep(srng.uniform(0, self.o.poll_interval_s
                                                 + self.o.plan_interval_s))

        async def guard() -> None:
            while time.monotonic() < deadline and taken < self.o.samples:
                await asyncio.sleep(1.0)
                failed = self.failed_child()
                if failed:
                    raise BenchError(failed)

        self.say(f"sampling latency: {self.o.samples} detector surges, {self.o.concurrency} at "
                 "a time on different intersections…")
        try:
            await asyncio.gather(guard(), *(sampler(k) for k in range(self.o.concurrency)))
        finally:
            for c in clients.values():
                c.close()
        return results

    async def _one_sample(self, iid: str, client: Any, rng: random.Random) -> dict[str, Any]:
        from devices.controller.errors import ControllerError
        from devices.controller.registers import CommandResult

        assert self.observer is not None
        worker = self.worker_of[iid]
        out: dict[str, Any] = {"intersection": iid, "latency_s": None, "telemetry_s": None,
                               "command_s": None, "applied_ack_s": None, "error": None}
        try:
            status = await client.status()
            base = await client.plan("shadow")
            if len(base.splits_ds) != PHASES or status.last_seq == 0:
                base = await client.plan("running")
        except ControllerError as exc:
            out["error"] = f"reading the controller: {exc}"
            return out
        # The phase with the least green: a surge there must win it more.
        phase = min(range(1, PHASES + 1), key=lambda p: (base.splits_ds[p - 1]
                                                          if len(base.splits_ds) == PHASES else 0,
                                                          rng.random()))
        base_split = base.splits_ds[phase - 1] if len(base.splits_ds) == PHASES else 0
        seq = status.last_seq
        detectors = phase_detectors(phase)
        t0 = time.monotonic()
        self.observer.watch(iid, detectors, t0)
        worker.send("surge", iid, detectors)
        out["phase"] = phase
        try:
            while time.monotonic() - t0 < self.o.sample_timeout_s:
                await asyncio.sleep(WATCH_POLL_S)
                try:
                    st = await client.status()
                except ControllerError:
                    continue
                seen = time.monotonic()
                if st.last_seq == seq or st.last_result not in (CommandResult.APPLIED,
                                                                CommandResult.PENDING):
                    continue
                seq = st.last_seq
                try:
                    shadow = await client.plan("shadow")
                except ControllerError:
                    continue
                if (len(shadow.splits_ds) == PHASES
                        and shadow.splits_ds[phase - 1] >= base_split + SPLIT_GAIN_DS):
                    out["latency_s"] = seen - t0
                    out["split_gain_s"] = (shadow.splits_ds[phase - 1] - base_split) / 10
                    out["pending"] = st.last_result is CommandResult.PENDING
                    break
        finally:
            worker.send("calm", iid)
            seen_on_broker = self.observer.unwatch(iid)
        tel = seen_on_broker.get("telemetry")
        if tel is not None:
            out["telemetry_s"] = tel - t0
            cmds = [(t, c) for t, c in seen_on_broker.get("commands", []) if t >= tel]
            if cmds:
                t_cmd, cmd_id = cmds[0]
                out["command_s"] = t_cmd - t0
                applied = seen_on_broker.get("applied", {}).get(cmd_id)
                if applied is not None:
                    out["applied_ack_s"] = applied - t0
        return out

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        if self.observer is not None:
            try:
                self.observer.close()
            except OSError:
                pass
            self.observer = None
        for _, _, child in self.edges:
            child.stop()
        if self.controlroom is not None:
            self.controlroom.stop()
        if self.broker is not None:
            self.broker.stop()
        self.edges, self.controlroom, self.broker = [], None, None
        for w in self.workers:
            w.stop()
        self.workers = []
        self._stop_database()
        if not self.o.keep_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)


# --------------------------------------------------------------------------- figures


def figures(bench: LoopBench, warmup_s: float, m: dict[str, Any]) -> dict[str, Any]:
    o = bench.o
    samples = m["samples"]
    ok = [s for s in samples if s["latency_s"] is not None]
    lat = [s["latency_s"] for s in ok]
    stage = {
        "surge_to_telemetry": [s["telemetry_s"] for s in ok if s["telemetry_s"] is not None],
        "telemetry_to_command": [s["command_s"] - s["telemetry_s"] for s in ok
                                 if s["command_s"] is not None and s["telemetry_s"] is not None],
        "command_to_commit": [s["latency_s"] - s["command_s"] for s in ok
                              if s["command_s"] is not None],
        "command_to_applied_ack": [s["applied_ack_s"] - s["command_s"] for s in ok
                                   if s["applied_ack_s"] is not None and s["command_s"] is not None],
    }
    stages = {k: _summary_ms(v) for k, v in stage.items()}
    means = {k: v["mean_ms"] or 0.0 for k, v in stages.items() if k != "command_to_applied_ack"}
    dominant = max(means, key=lambda k: means[k]) if ok else None
    h0, h1 = m["h0"], m["h1"]
    wall = m["wall_s"]

    def delta(section: str, key: str) -> float:
        a = (h0.get(section) or {}).get(key) or 0
        b = (h1.get(section) or {}).get(key) or 0
        return float(b) - float(a)

    received = delta("ingest", "received")  # every kind: telemetry, events, acks, states
    stored = delta("ingest", "stored")
    taken = delta("traffic", "telemetry_taken")  # telemetry only, into the control loop
    expected = len(bench.ids) / o.poll_interval_s
    tr = h1.get("traffic") or {}
    steps = m["step_ms"]
    cpu = m["cpu"]
    return {
        "benchmark": "loop", "intersections": len(bench.ids), "phases": PHASES,
        "detectors": DETECTORS, "emulator_processes": len(bench.workers) or None,
        "edge_agents": bench.edge_count,
        "broker": "external " + (o.mqtt_url or "") if o.mqtt_url else "embedded (kota broker)",
        "database": "external" if o.database_url else "embedded PostgreSQL",
        "edge_poll_interval_s": o.poll_interval_s,
        "edge_scan_interval_s": (o.scan_interval_s if o.scan_interval_s is not None
                                 else default_scan_s(o.poll_interval_s)),
        "plan_interval_s": o.plan_interval_s,
        "controlroom_tick_s": o.tick_s, "surge_replan": o.surge_replan,
        "background_traffic_level": o.traffic_level,
        "watch_poll_ms": WATCH_POLL_S * 1000, "warmup_s": round(warmup_s, 1),
        "measured_s": round(wall, 1),
        "latency": {"samples": len(samples), "committed": len(ok),
                    "timeouts": sum(1 for s in samples if s["latency_s"] is None
                                    and s["error"] is None),
                    "errors": sum(1 for s in samples if s["error"] is not None),
                    "timeout_s": o.sample_timeout_s,
                    "intersections_sampled": len({s["intersection"] for s in samples}),
                    "committed_pending": sum(1 for s in ok if s.get("pending")),
                    **_summary_ms(lat), "goal_p99_ms": 1000.0,
                    "stages": stages, "dominant_stage": dominant},
        "throughput": {
            "telemetry_expected_per_s": round(expected, 1),
            "telemetry_taken_per_s": round(taken / wall, 1),
            "messages_received_per_s": round(received / wall, 1),
            "messages_stored_per_s": round(stored / wall, 1),
            "keeps_up": bool(taken >= 0.95 * expected * wall),
            "ingest_backlog_end": (h1.get("ingest") or {}).get("backlog"),
            "ingest_overflow": delta("ingest", "overflow"),
            "ingest_last_lag_s": (h1.get("ingest") or {}).get("last_lag_s"),
            "traffic_inbox_end": tr.get("inbox"),
            "traffic_inbox_overflow": tr.get("inbox_overflow"),
            "plan_steps": delta("traffic", "plan_steps"),
            "surge_replans": delta("traffic", "surge_replans"),
            "plan_step_ms_p50": round(float(np.percentile(steps, 50)), 2) if steps else None,
            "plan_step_ms_max": round(max(steps), 2) if steps else None,
            "commands_sent": delta("traffic", "commands_sent"),
            "unanswered": delta("traffic", "unanswered"), "rejected": delta("traffic", "rejected"),
        },
        "cpu_pct": cpu, "controlroom_cpu_pct": cpu.get("controlroom"),
        "machine_cpu_pct": m["machine_cpu_pct"], "machine_cores": m["machine_cores"],
    }


def print_table(f: dict[str, Any]) -> None:
    lat, thr = f["latency"], f["throughput"]
    print(f"\nkota bench loop — {f['intersections']} intersections ({f['phases']} phases, "
          f"{f['detectors']} loops each), {f['edge_agents']} edge agents, "
          f"{f['emulator_processes']} emulator process(es), broker {f['broker']}, "
          f"{f['database']}")
    print(f"settings: edge telemetry every {f['edge_poll_interval_s']:g} s, controllers read "
          f"every {f['edge_scan_interval_s']:g} s, plan interval "
          f"{f['plan_interval_s']:g} s, surge re-plans {'on' if f['surge_replan'] else 'off'}, "
          f"control-room tick {f['controlroom_tick_s']:g} s; "
          f"warm-up {f['warmup_s']:g} s, measured {f['measured_s']:g} s")
    print("\nlatency: detector surge at the controller → new plan committed at the controller")
    print(f"  samples {lat['samples']} on {lat['intersections_sampled']} intersections: "
          f"{lat['committed']} committed, {lat['timeouts']} timeouts (> {lat['timeout_s']:g} s), "
          f"{lat['errors']} errors")
    print(f"  p50 {lat['p50_ms']} ms   p90 {lat['p90_ms']} ms   p99 {lat['p99_ms']} ms   "
          f"max {lat['max_ms']} ms   (goal p99 < 1000 ms)")
    print(f"  {'stage':<26}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, s in lat["stages"].items():
        print(f"  {name:<26}{s['p50_ms']!s:>10}{s['p99_ms']!s:>10}{s['mean_ms']!s:>10}")
    print(f"  dominant stage: {lat['dominant_stage']}")
    print("\nthroughput (control room)")
    print(f"  telemetry expected {thr['telemetry_expected_per_s']}/s, taken into the control "
          f"loop {thr['telemetry_taken_per_s']}/s "
          f"({'keeps up' if thr['keeps_up'] else 'FALLS BEHIND'}); messages of every kind "
          f"received {thr['messages_received_per_s']}/s, stored {thr['messages_stored_per_s']}/s; "
          f"ingest backlog {thr['ingest_backlog_end']}, traffic inbox {thr['traffic_inbox_end']}")
    print(f"  plan steps {thr['plan_steps']:g}, step p50 {thr['plan_step_ms_p50']} ms, max "
          f"{thr['plan_step_ms_max']} ms; surge re-plans {thr['surge_replans']:g}; commands {thr['commands_sent']:g}, unanswered "
          f"{thr['unanswered']:g}, rejected {thr['rejected']:g}")
    print(f"\nCPU (% of one core, over the measured window; machine {f['machine_cpu_pct']} % "
          f"of {f['machine_cores']} cores, other users included)")
    for name, pct in f["cpu_pct"].items():
        print(f"  {name:<28}{pct:>8}")


# --------------------------------------------------------------------------- command line


def bench_loop(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.intersections < 1 or args.samples < 0 or args.concurrency < 1:
        say("--intersections and --concurrency must be ≥ 1, --samples ≥ 0")
        return 2
    options = LoopOptions(
        intersections=args.intersections, samples=args.samples,
        concurrency=min(args.concurrency, args.intersections), duration_s=args.duration,
        warmup_max_s=args.warmup, poll_interval_s=args.poll_interval,
        scan_interval_s=args.scan_interval,
        plan_interval_s=args.plan_interval, tick_s=args.tick, sample_timeout_s=args.timeout,
        cooldown_s=args.cooldown, traffic_level=args.traffic, edges=args.edges,
        surge_replan=args.surge_replan,
        workers=args.emulator_processes, mqtt_url=args.mqtt, database_url=args.database,
        seed=args.seed, keep_dir=args.keep)

    bench = LoopBench(options, say)

    def measure() -> dict[str, Any]:
        warmup_s = bench.warm_up()
        return figures(bench, warmup_s, bench.measure())

    return run_bench(bench, "loop", "edge agents, control room, broker, controllers, database",
                     measure, print_table, keep=args.keep, as_json=args.json, say=say)



def add_parser(bench_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `loop` on the `kota bench` subparsers; returns its parser."""
    p = bench_subparsers.add_parser(
        "loop", help="detector change → new plan at the controller, over the full stack",
        description="Start N emulated four-phase controllers (in a few worker processes), the "
        "edge agents, the broker, PostgreSQL and the control room with a generated layout, all "
        "on loopback. Latency: push a surge of vehicles onto one phase's loops at one controller "
        "and watch that controller over Modbus until it holds a new plan giving that phase more "
        "green (committed: running, or pending for the next safe point); p50/p90/p99/max over "
        "--samples surges spread over the intersections, broken into stages seen on the broker. "
        "Throughput: telemetry taken into the control loop and messages received and stored per second, plan step "
        "time and CPU use of every process over --duration seconds. Goal: p99 < 1 s with ≥ 100 "
        "intersections; 1,000 intersections at 1 Hz.",
        epilog="Examples: `kota bench loop --json`; `kota bench loop --intersections 1000 "
        "--mqtt mqtt://127.0.0.1:1883 --json`; `kota bench loop --poll-interval 0.5 --json`; "
        "`kota bench loop --no-surge-replan --json` (plans only at plan steps, to compare). "
        "Exit codes: 0 done, 1 a part failed to start or died, 130 interrupted.")
    p.set_defaults(func=bench_loop)
    p.add_argument("--intersections", type=int, default=100,
                   help="emulated intersections (default 100)")
    p.add_argument("--samples", type=int, default=200, help="latency samples (default 200)")
    p.add_argument("--concurrency", type=int, default=10,
                   help="surges in flight at once, each on its own intersection (default 10)")
    p.add_argument("--duration", type=float, default=60.0,
                   help="seconds measured after the warm-up; sampling stops at its end "
                   "(default 60)")
    p.add_argument("--warmup", type=float, default=180.0,
                   help="longest wait for the controllers to run their first adaptive plans "
                   "(each switches at the end of its local cycle) and for those to settle "
                   "(default 180 s)")
    p.add_argument("--poll-interval", type=float, default=1.0,
                   help="edge telemetry interval of every controller, s (default 1: the 1 Hz "
                   "of the design)")
    p.add_argument("--scan-interval", type=float,
                   help="how often the edges read each controller between telemetry messages, "
                   "s (default: the edge's own, a quarter second; a demand jump seen on a scan "
                   "is sent at once). Equal to --poll-interval: read once per message, no "
                   "early reports"),
    p.add_argument("--plan-interval", type=float, default=2.0,
                   help="control room plan_interval_s (default 2). With surge re-plans a surge "
                   "reaches the controller within a tick, whatever the interval; the edge scan "
                   "then bounds the latency (surge → telemetry is up to one scan)")
    p.add_argument("--no-surge-replan", dest="surge_replan", action="store_false",
                   help="control room surge_replan = false: a surge waits for the next plan step "
                   "(to compare)")
    p.add_argument("--tick", type=float, default=0.1,
                   help="control room traffic tick_s: how often it reads its inbox and sends "
                   "(default 0.1)")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="a surge with no new plan after this long is a timeout (default 15 s)")
    p.add_argument("--cooldown", type=float, default=8.0,
                   help="an intersection is surged again only after this long (default 8 s)")
    p.add_argument("--traffic", type=float, default=0.0,
                   help="background traffic level of the emulators' built-in generator (default "
                   "0: none, so that a new plan is the surge's doing)")
    p.add_argument("--edges", type=int, help="edge agent processes (default: ≥ 2, ≤ 250 "
                   "controllers each)")
    p.add_argument("--emulator-processes", type=int,
                   help="controller emulator processes (default: ≤ 250 controllers each)")
    p.add_argument("--mqtt", metavar="URL", help="an external broker, e.g. "
                   "mqtt://127.0.0.1:1883 (default: the embedded `kota broker`)")
    p.add_argument("--database", metavar="URL", help="a PostgreSQL server; a scratch database is "
                   "created on it and dropped (default: the embedded PostgreSQL)")
    p.add_argument("--seed", type=int, default=1, help="seed of the sampling order (default 1)")
    p.add_argument("--keep", action="store_true",
                   help="keep the run directory (settings files and logs)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    return p
