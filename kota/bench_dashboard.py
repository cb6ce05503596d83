"""`kota bench dashboard`: the wall map with a city of N intersections live, in a real browser.

Owns one benchmark run on loopback: PostgreSQL (embedded, or --database), the broker (`kota
broker`, or --mqtt), the control room (`kota controlroom run`, production code, configured only
through its settings file) with a generated grid layout of N intersections, a publisher process
playing the intersections' edge agents over MQTT (one telemetry message per intersection per
second into the real ingest and traffic service; the control room's plans acknowledged as
applied), and Chromium (Playwright) logged in as an operator on the wall map. Figures: latency
from each telemetry message's timestamp to the frame in which the map shows it (read from the
page's ``window.kotaMapStats``), p50/p95/max; the page's long tasks (PerformanceObserver
'longtask'); the time from a click on an intersection to the navigation to its page; CPU of
every process. Goal: updates on the page within 2 s with 1,000 intersections. It must not
contain control-room or page logic. A script, not a test.
"""

from __future__ import annotations

import argparse
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from kota.bench_loop import CpuMeter
from kota.bench_stack import BenchError, StackParts, run_bench
from kota.city import Child, wait_ready

PHASES = 2
SIGNALS = ("GR", "YR", "RG", "RY")  # the two-phase sequence the publisher plays
READY_TIMEOUT_S = 120.0
PER_EDGE = 250  # intersections per simulated edge agent
GOAL_MS = 2000.0
CHROMIUM = "/usr/bin/chromium"
# As tests/dashboard: headless, as root, no calls home.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# Collected in the page from its first script on: every long task (> 50 ms of main thread).
LONGTASK_PROBE = """
window.__kotaLongTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__kotaLongTasks.push(e.duration);
  }).observe({ type: "longtask", buffered: true });
} catch (err) { window.__kotaLongTasks = null; }
"""
# Arms a one-shot measurement: pointer down on the map → the route changed → the next frame.
CLICK_PROBE = """() => {
  window.__kotaClick = null;
  let t0 = null;
  addEventListener("pointerdown", (e) => { t0 = performance.now(); }, { capture: true, once: true });
  addEventListener("hashchange", () => {
    const hash = performance.now() - t0;
    requestAnimationFrame(() => { window.__kotaClick = { hash_ms: hash,
      frame_ms: performance.now() - t0, to: location.hash }; });
  }, { once: true });
}"""


def intersection_ids(count: int, tag: str) -> list[str]:
    return [f"BD{tag}-{k + 1:04d}" for k in range(count)]


def layout_document(ids: Sequence[str]) -> dict[str, Any]:
    """A grid city 250 m apart: two phases, one movement and loop each; each row is a corridor
    (every intersection's upstream is its western neighbour), so the map draws the links."""
    side = max(1, math.ceil(math.sqrt(len(ids))))
    phases = [{"movements": [p], "min_green_s": 7.0, "max_green_s": 60.0, "yellow_s": 3.0,
               "all_red_s": 1.0} for p in range(PHASES)]
    out = []
    for k, iid in enumerate(ids):
        col, row = k % side, k // side
        out.append({"id": iid, "name": f"Simpang {row + 1}-{col + 1}",
                    "x": 250.0 * col, "y": -250.0 * row, "phases": phases,
                    "movements": [{"width_m": 3.5}, {"width_m": 3.5}],
                    "detectors": [{"movement": 0}, {"movement": 1}],
                    "upstream": ids[k - 1] if col > 0 else None,
                    "travel_time_s": 20.0 if col > 0 else 0.0})
    return {"city": "Kota Bench", "intersections": out}


# --------------------------------------------------------------------------- the publisher


def _publisher_main(conn: Connection, url: str, ids: list[str], change_s: float,
                    seed: int) -> None:  # pragma: no cover - runs in its own process
    """Every intersection's edge: one telemetry message per second each (spread over the
    second), its signal stepping through ``SIGNALS`` every ``change_s``; commands acked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops it through the pipe
    from datetime import UTC, datetime

    import paho.mqtt.client as mqtt

    from edge import contract as c

    rng = random.Random(seed)
    edges = [f"bench-edge-{k // PER_EDGE + 1:03d}" for k in range(len(ids))]
    seqs: dict[str, int] = {}

    def seq(edge_id: str) -> int:
        seqs[edge_id] = seqs.get(edge_id, 0) + 1
        return seqs[edge_id]

    endpoint = c.MqttEndpoint(url=url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"kota-bench-dash-{os.getpid()}")
    client.max_queued_messages_set(0)
    acks: list[tuple[str, str, str]] = []

    def on_message(cl: Any, userdata: Any, msg: Any) -> None:
        try:
            command = c.decode(msg.topic, msg.payload).payload
        except c.ContractError:
            return
        if isinstance(command, c.TrafficCommand):
            acks.append((command.cmd_id, command.intersection_id,
                         edges[index[command.intersection_id]]))

    index = {iid: k for k, iid in enumerate(ids)}
    client.on_message = on_message
    client.connect(endpoint.host, endpoint.port, keepalive=30)
    client.subscribe(f"{c.TOPIC_ROOT}/traffic/+/cmd", qos=1)
    client.loop_start()
    for edge_id in sorted(set(edges)):
        state = c.EdgeState(ts=datetime.now(UTC), edge_id=edge_id, epoch=1, seq=seq(edge_id),
                            status="online", conn=1)
        client.publish(c.edge_state_topic(edge_id), c.encode(state), qos=1).wait_for_publish(10)
    offsets = [rng.uniform(0, change_s * len(SIGNALS)) for _ in ids]
    topics = [c.telemetry_topic(iid) for iid in ids]
    conn.send(("ready",))
    sent = 0
    start = time.monotonic()
    n = len(ids)
    k = 0
    due = 0
    while True:
        elapsed = time.monotonic() - start
        target = int(elapsed * n)  # n messages per second, evenly spread
        if target - due > 5 * n:
            due = target - n  # fell far behind (machine busy): skip rather than burst
        now = datetime.now(UTC)
        while due < target:
            i = k % n
            step = int((elapsed + offsets[i]) / change_s) % len(SIGNALS)
            t = c.TrafficTelemetry(
                ts=now, edge_id=edges[i], epoch=1, seq=seq(edges[i]), intersection_id=ids[i],
                mode="central", plan=1, cycle_timer_s=round(elapsed % 60, 1),
                signal=list(SIGNALS[step]), det_count=[rng.randint(0, 3), rng.randint(0, 3)],
                det_occupancy_pct=[round(rng.uniform(5, 60), 1), round(rng.uniform(5, 60), 1)],
                det_fault=[False, False])
            client.publish(topics[i], c.encode(t), qos=0)
            sent += 1
            due += 1
            k += 1
        while acks:
            cmd_id, iid, edge_id = acks.pop()
            for status in ("accepted", "applied"):
                ack = c.CommandAck(ts=datetime.now(UTC), edge_id=edge_id, epoch=1,
                                   seq=seq(edge_id), cmd_id=cmd_id, target_id=iid, status=status)
                client.publish(c.command_ack_topic("traffic", iid), c.encode(ack), qos=1)
        if conn.poll(0):
            break
        time.sleep(0.02)
        if int(elapsed) != int(time.monotonic() - start):
            conn.send(("sent", sent))  # once a second: the bench reads the rate
    client.loop_stop()
    client.disconnect()
    conn.send(("sent", sent))


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class DashboardOptions:
    intersections: int = 1000
    seconds: float = 60.0
    warmup_s: float = 5.0
    clicks: int = 5
    change_s: float = 1.0
    plan_interval_s: float = 10.0
    viewport: tuple[int, int] = (1920, 1080)
    chromium: str = CHROMIUM
    mqtt_url: str | None = None
    database_url: str | None = None
    seed: int = 1
    keep_dir: bool = False
    screenshot: Path | None = None


def _summary(values: Sequence[float]) -> dict[str, Any]:
    if not len(values):
        return {"samples": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    a = np.asarray(values, float)
    return {"samples": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1), "max_ms": round(float(a.max()), 1),
            "mean_ms": round(float(a.mean()), 1)}


class DashboardBench(StackParts):
    """Start, measure, stop. ``stop`` leaves no process behind and may be called twice."""

    def __init__(self, options: DashboardOptions, say: Callable[[str], None]) -> None:
        self.o = options
        self.say = say
        self.tag = secrets.token_hex(2)
        self.db_prefix = "kota_bench_dash"
        self.ids = intersection_ids(options.intersections, self.tag)
        self.run_dir = Path(tempfile.mkdtemp(prefix="kota-bench-dashboard-"))
        self.children: list[Child] = []
        self.broker: Child | None = None
        self.controlroom: Child | None = None
        self.publisher: Any = None
        self._pub_conn: Connection | None = None
        self._embedded_pg: Any = None
        self._server_url: str | None = None
        self.db_url: str | None = None
        self.mqtt_url = ""
        self.api_url = ""
        self.password = secrets.token_urlsafe(12)
        self._pw: Any = None
        self.browser: Any = None
        self.page: Any = None
        self.sent = 0

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        if not Path(self.o.chromium).exists():
            raise BenchError(f"no Chromium at {self.o.chromium} (apt-get install chromium, or "
                             "--chromium PATH)")
        layout = self.run_dir / "layout.json"
        layout.write_text(json.dumps(layout_document(self.ids)), encoding="utf-8")
        self._start_database()
        self._make_user()
        self._start_broker()
        self._start_controlroom(layout)
        self._start_publisher()
        self._open_map()

    def _make_user(self) -> None:
        """The operator who watches the map, with this run's random password."""
        from controlroom.auth.passwords import Passwords
        from controlroom.auth.service import Authenticator
        from controlroom.auth.store import UserStore
        from controlroom.settings import AuthSettings
        from controlroom.storage.store import open_pool

        assert self.db_url is not None
        pool = open_pool(self.db_url, 1, 1, name="kota-bench-dash-users")
        try:
            auth = Authenticator(UserStore(pool), AuthSettings(),
                                 Passwords(time_cost=1, memory_kib=64, parallelism=1))
            auth.add_user("operator", "operator", self.password, actor="kota-bench")
        finally:
            pool.close()

    def _start_controlroom(self, layout: Path) -> None:  # type: ignore[override]
        self.say(f"starting the control room with {len(self.ids)} intersections…")
        super()._start_controlroom(layout, {"plan_interval_s": self.o.plan_interval_s,
                                            "telemetry_period_s": 1.0}, "kota-bench-dash")

    def _start_publisher(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_publisher_main, name="bench-dashboard-edges",
                           args=(child, self.mqtt_url, self.ids, self.o.change_s, self.o.seed),
                           daemon=True)
        proc.start()
        child.close()
        self.publisher, self._pub_conn = proc, parent
        try:
            if not parent.poll(READY_TIMEOUT_S):
                raise BenchError("the publisher did not start")
            parent.recv()
        except EOFError as exc:
            raise BenchError("the publisher died while starting (its error is above)") from exc
        self.say(f"publishing {len(self.ids)} intersections' telemetry at 1 Hz over MQTT…")

        def live() -> bool:
            taken = ((self.health() or {}).get("traffic") or {}).get("telemetry_taken") or 0
            return taken >= 2 * len(self.ids)

        wait_ready(live, self.controlroom, "telemetry taken in by the control room",
                   READY_TIMEOUT_S, error=BenchError)

    def _open_map(self) -> None:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        self.say("opening the wall map in Chromium…")
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=self.o.chromium,
                                                args=CHROMIUM_ARGS, headless=True)
        w, h = self.o.viewport
        ctx = self.browser.new_context(viewport={"width": w, "height": h},
                                       base_url=self.api_url.rstrip("/"))
        ctx.add_init_script(LONGTASK_PROBE)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto("/")
            page.fill("#login input[name=name]", "operator")
            page.fill("#login input[name=password]", self.password)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#whoami")
            page.goto("/#/map")
        except PlaywrightError as exc:
            raise BenchError(f"the wall map did not open: {exc}") from exc
        self.page = page
        self._until(self._all_drawn(), READY_TIMEOUT_S)
        self._until("document.querySelector('#map-conn[data-conn=open]')")
        if self.o.screenshot is not None:
            time.sleep(2.0)
            page.screenshot(path=str(self.o.screenshot))
            self.say(f"screenshot of the map: {self.o.screenshot}")

    def failed_child(self) -> str | None:
        for child in self.children:
            if child.exited():
                return f"{child.name} exited: {child.exited()}\n{child.tail()}"
        return None

    # ------------------------------------------------------------------ measure

    def _until(self, expression: str, timeout_s: float = 60.0) -> Any:
        """Poll a page expression until truthy (page.evaluate is not subject to the page's
        strict CSP, which refuses Playwright's own polling of a string predicate)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.page.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BenchError(f"the page never satisfied {expression!r} in {timeout_s:g} s")
            time.sleep(0.05)

    def _all_drawn(self) -> str:
        return (f"document.querySelectorAll('#map-svg g.node[data-state]').length === "
                f"{len(self.ids)}")

    def published(self) -> int:
        """Messages the publisher sent so far (it reports once a second)."""
        conn = self._pub_conn
        while conn is not None and conn.poll(0):
            kind, value = conn.recv()
            if kind == "sent":
                self.sent = value
        return self.sent

    def _take(self, into: dict[str, list[float]] | None = None) -> None:
        got = self.page.evaluate("window.kotaMapStats ? window.kotaMapStats.take() : null")
        if got is not None and into is not None:
            into["total"] += got["total"]
            into["server"] += got["server"]

    def _click(self, rng: random.Random) -> dict[str, Any] | None:
        """Click a random intersection on the map; back to the map afterwards."""
        page = self.page
        iid = rng.choice(self.ids)
        dot = page.locator(f"#map-svg g.node[data-id='{iid}'] .dot")
        box = dot.bounding_box()
        if box is None:
            return None
        page.evaluate(CLICK_PROBE)
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        result = self._until("window.__kotaClick", 10.0)
        result["intersection"] = iid
        result["navigated"] = result.pop("to") == f"#/intersection/{iid}"
        page.evaluate("location.hash = '#/map'")
        self._until(self._all_drawn())
        return result

    def measure(self) -> dict[str, Any]:
        import psutil

        page = self.page
        time.sleep(self.o.warmup_s)
        self._take()
        page.evaluate("window.__kotaLongTasks && (window.__kotaLongTasks.length = 0)")
        cpu = CpuMeter()
        cpu.add("controlroom", self.controlroom.pid if self.controlroom else None)
        cpu.add("broker", self.broker.pid if self.broker else None)
        cpu.add("publisher", self.publisher.pid if self.publisher else None)
        for proc in psutil.Process().children(recursive=True):
            try:
                if "chrom" in proc.name() and "chrom" not in proc.parent().name():
                    cpu.add_tree("chromium", proc.pid)
            except psutil.Error:
                continue
        if self._embedded_pg is not None:
            cpu.add_tree("postgresql", self._embedded_pg.status().pid)
        h0 = self.health() or {}
        sent0 = self.published()
        psutil.cpu_percent(None)
        cpu.start()
        latencies: dict[str, list[float]] = {"total": [], "server": []}
        clicks: list[dict[str, Any]] = []
        rng = random.Random(self.o.seed)
        started = time.monotonic()
        click_every = self.o.seconds / (self.o.clicks + 1) if self.o.clicks else math.inf
        next_click = started + click_every
        applied0 = page.evaluate("window.kotaMapStats.applied")
        applied = 0
        while (now := time.monotonic()) - started < self.o.seconds:
            failed = self.failed_child()
            if failed:
                raise BenchError(failed)
            if now >= next_click and len(clicks) < self.o.clicks:
                applied += page.evaluate("window.kotaMapStats.applied") - applied0
                self._take(latencies)
                result = self._click(rng)
                if result is not None:
                    clicks.append(result)
                applied0 = page.evaluate("window.kotaMapStats.applied")
                next_click += click_every
            else:
                time.sleep(0.5)
                self._take(latencies)
        self._take(latencies)
        applied += page.evaluate("window.kotaMapStats.applied") - applied0
        wall = time.monotonic() - started
        cpu_pct = cpu.stop()
        long_tasks = page.evaluate("window.__kotaLongTasks")
        h1 = self.health() or {}
        published = self.published() - sent0
        return {"wall_s": wall, "latencies": latencies, "clicks": clicks, "cpu": cpu_pct,
                "long_tasks": long_tasks, "applied": applied, "h0": h0, "h1": h1,
                "published": published,
                "machine_cpu_pct": psutil.cpu_percent(None),
                "machine_cores": psutil.cpu_count()}

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        if self.browser is not None:
            from playwright.sync_api import Error as PlaywrightError

            try:
                self.browser.close()
            except PlaywrightError as exc:  # gone already: stopping goes on
                self.say(f"browser: {exc}")
            self.browser = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None
        if self._pub_conn is not None and self.publisher is not None:
            try:
                self._pub_conn.send(("stop",))
            except OSError:
                pass
            self.publisher.join(5)
            if self.publisher.is_alive():
                self.publisher.kill()
            self.publisher, self._pub_conn = None, None
        if self.controlroom is not None:
            self.controlroom.stop()
        if self.broker is not None:
            self.broker.stop()
        self.controlroom, self.broker = None, None
        self._stop_database()
        if not self.o.keep_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)


# --------------------------------------------------------------------------- figures


def figures(bench: DashboardBench, m: dict[str, Any]) -> dict[str, Any]:
    o = bench.o
    lat = m["latencies"]["total"]
    server = m["latencies"]["server"]
    wall = m["wall_s"]
    tasks = m["long_tasks"]
    clicks = m["clicks"]
    within = sum(1 for x in lat if x <= GOAL_MS)

    def delta(section: str, key: str) -> float:
        a = (m["h0"].get(section) or {}).get(key) or 0
        b = (m["h1"].get(section) or {}).get(key) or 0
        return float(b) - float(a)

    long_total = float(sum(tasks)) if tasks else 0.0
    return {
        "benchmark": "dashboard", "intersections": len(bench.ids), "measured_s": round(wall, 1),
        "path": "publisher → MQTT (" + ("external " + o.mqtt_url if o.mqtt_url else
                                        "embedded kota broker") + ") → control-room ingest and "
        "traffic service → /api/live (SSE) → Chromium, wall map",
        "database": "external" if o.database_url else "embedded PostgreSQL",
        "viewport": f"{o.viewport[0]}x{o.viewport[1]}", "signal_change_s": o.change_s,
        "plan_interval_s": o.plan_interval_s,
        "latency": {**_summary(lat), "goal_ms": GOAL_MS,
                    "within_goal_pct": round(100.0 * within / len(lat), 2) if lat else None,
                    "meets_goal": bool(lat) and within == len(lat),
                    "what": "telemetry timestamp → the frame in which the map shows it"},
        "latency_server": {**_summary(server), "what": "telemetry timestamp → the live feed's "
                           "event carrying it (MQTT, ingest, traffic service, feed period)"},
        "updates_applied_per_s": round(m["applied"] / wall, 1),
        "telemetry_published_per_s": round(m["published"] / wall, 1),
        "telemetry_taken_per_s": round(delta("traffic", "telemetry_taken") / wall, 1),
        "telemetry_too_late_per_s": round(delta("traffic", "replayed_telemetry") / wall, 1),
        "ingest_lag_s": (m["h1"].get("ingest") or {}).get("last_lag_s"),
        "long_tasks": None if tasks is None else {
            "count": len(tasks), "total_ms": round(long_total, 1),
            "max_ms": round(max(tasks), 1) if tasks else 0.0,
            "busy_pct": round(100.0 * long_total / (wall * 1000.0), 2)},
        "click_to_navigate": {
            "clicks": len(clicks), "navigated": sum(1 for c in clicks if c["navigated"]),
            **{f"hash_{k}": v for k, v in _summary([c["hash_ms"] for c in clicks]).items()
               if k != "samples"},
            **{f"frame_{k}": v for k, v in _summary([c["frame_ms"] for c in clicks]).items()
               if k != "samples"}},
        "cpu_pct": m["cpu"], "controlroom_cpu_pct": m["cpu"].get("controlroom"),
        "machine_cpu_pct": m["machine_cpu_pct"], "machine_cores": m["machine_cores"],
    }


def print_table(f: dict[str, Any]) -> None:
    lat, lt, ck = f["latency"], f["long_tasks"], f["click_to_navigate"]
    print(f"\nkota bench dashboard — {f['intersections']} intersections, measured "
          f"{f['measured_s']:g} s at {f['viewport']}")
    print(f"path: {f['path']}; {f['database']}")
    print(f"\nlatency ({lat['what']}): {lat['samples']} updates")
    print(f"  p50 {lat['p50_ms']} ms   p95 {lat['p95_ms']} ms   max {lat['max_ms']} ms   "
          f"({lat['within_goal_pct']} % within the goal of {lat['goal_ms']:g} ms)")
    sv = f["latency_server"]
    print(f"  of which before the server sent it ({sv['samples']} samples): p50 {sv['p50_ms']} ms"
          f"   p95 {sv['p95_ms']} ms   max {sv['max_ms']} ms")
    print(f"  updates applied {f['updates_applied_per_s']}/s; telemetry published "
          f"{f['telemetry_published_per_s']}/s, taken live by the control room "
          f"{f['telemetry_taken_per_s']}/s, arrived too late to be live (> 30 s) "
          f"{f['telemetry_too_late_per_s']}/s; ingest lag {f['ingest_lag_s']} s "
          f"(signals change every {f['signal_change_s']:g} s)")
    if lt is not None:
        print(f"\npage: {lt['count']} long tasks, {lt['total_ms']} ms in all (max {lt['max_ms']} "
              f"ms, main thread busy {lt['busy_pct']} % in long tasks)")
    print(f"click → navigation: {ck['navigated']}/{ck['clicks']} navigated; to the new route "
          f"p50 {ck['hash_p50_ms']} ms, max {ck['hash_max_ms']} ms; to its first frame p50 "
          f"{ck['frame_p50_ms']} ms, max {ck['frame_max_ms']} ms")
    print(f"\nCPU (% of one core; machine {f['machine_cpu_pct']} % of {f['machine_cores']} cores, "
          "other users included)")
    for name, pct in f["cpu_pct"].items():
        print(f"  {name:<16}{pct:>8}")


# --------------------------------------------------------------------------- command line


def bench_dashboard(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.intersections < 1 or args.seconds <= 0 or args.clicks < 0 or args.signal_change <= 0:
        say("--intersections must be ≥ 1, --seconds and --signal-change > 0, --clicks ≥ 0")
        return 2
    options = DashboardOptions(
        intersections=args.intersections, seconds=args.seconds, warmup_s=args.warmup,
        clicks=args.clicks, change_s=args.signal_change, plan_interval_s=args.plan_interval,
        viewport=(args.width, args.height), chromium=args.chromium, mqtt_url=args.mqtt,
        database_url=args.database, seed=args.seed, keep_dir=args.keep,
        screenshot=args.screenshot)

    bench = DashboardBench(options, say)

    def measure() -> dict[str, Any]:
        say(f"measuring for {options.seconds:g} s…")
        return figures(bench, bench.measure())

    return run_bench(bench, "dashboard", "browser, publisher, control room, broker, database",
                     measure, print_table, keep=args.keep, as_json=args.json, say=say)


def add_parser(bench_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `dashboard` on the `kota bench` subparsers; returns its parser."""
    p = bench_subparsers.add_parser(
        "dashboard", help="the wall map with N intersections live, in Chromium",
        description="Start PostgreSQL, the broker and the control room with a generated grid "
        "city of N intersections, publish every intersection's telemetry once a second over "
        "MQTT into the control room's real ingest and traffic service (the control room's plans "
        "are acknowledged as applied), and open the wall map in Chromium (Playwright) as a "
        "logged-in operator. Measured over --seconds: latency from each telemetry message's "
        "timestamp to the frame in which the map shows it (p50/p95/max; the page's "
        "window.kotaMapStats), the page's long tasks (PerformanceObserver 'longtask'), the "
        "time from a click on an intersection to the navigation to its page, and CPU of every "
        "process. Goal: updates on the page within 2 s with 1,000 intersections.",
        epilog="Examples: `kota bench dashboard --json`; `kota bench dashboard --intersections "
        "50 --seconds 5 --json` (a quick check); `kota bench dashboard --mqtt "
        "mqtt://127.0.0.1:1883` (Mosquitto). The embedded broker (amqtt) may not carry 1,000 "
        "messages a second on a busy machine: then the control room takes in less than is "
        "published (see telemetry taken vs published) and the latency is the broker's; use "
        "Mosquitto for the full-size run. Exit codes: 0 done, 1 a part failed to start or "
        "died, 2 bad arguments, 130 interrupted.")
    p.set_defaults(func=bench_dashboard)
    p.add_argument("--intersections", type=int, default=1000,
                   help="intersections in the generated grid city (default 1000)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="seconds measured once the map shows the city (default 60)")
    p.add_argument("--warmup", type=float, default=5.0,
                   help="seconds the map runs before measuring (default 5)")
    p.add_argument("--clicks", type=int, default=5,
                   help="clicks on random intersections during the run, each followed by the "
                   "way back to the map (default 5; 0: none)")
    p.add_argument("--signal-change", type=float, default=1.0,
                   help="seconds between an intersection's signal changes (default 1: every "
                   "telemetry message changes what the map shows, the worst case)")
    p.add_argument("--plan-interval", type=float, default=10.0,
                   help="control room plan_interval_s: how often the degree of saturation the "
                   "map shows is recomputed (default 10)")
    p.add_argument("--width", type=int, default=1920, help="browser viewport width (default 1920)")
    p.add_argument("--height", type=int, default=1080,
                   help="browser viewport height (default 1080)")
    p.add_argument("--chromium", default=CHROMIUM, metavar="PATH",
                   help=f"the Chromium executable (default {CHROMIUM})")
    p.add_argument("--mqtt", metavar="URL", help="an external broker, e.g. "
                   "mqtt://127.0.0.1:1883 (default: the embedded `kota broker`)")
    p.add_argument("--database", metavar="URL", help="a PostgreSQL server; a scratch database is "
                   "created on it and dropped (default: the embedded PostgreSQL)")
    p.add_argument("--seed", type=int, default=1, help="seed of the publisher and the clicks "
                   "(default 1)")
    p.add_argument("--keep", action="store_true",
                   help="keep the run directory (settings files and logs)")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save a screenshot of the map once it shows the city")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    return p
