"""`kota bench ingest`: intersections → broker → control-room ingest → PostgreSQL, measured.

A publisher process plays N intersections (one telemetry message each per second, ≥16
detectors), the control room's own ingest (the production classes) takes them off the broker
and stores them. Figures: sustained stored messages/s, detector rows/s, end-to-end lag
(payload timestamp → committed) p50/p99, and the storage path alone. A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from controlroom.broker import EmbeddedBroker
from controlroom.ingest import Inbound, Ingest
from controlroom.link import ControlRoomLink
from controlroom.settings import BrokerSettings, IngestSettings
from controlroom.storage.migrate import migrate
from controlroom.storage.store import Batch, Store, open_pool
from edge.contract import MqttEndpoint, TrafficTelemetry, telemetry_topic

log = logging.getLogger("kota.bench")
WARMUP_S = 3.0


def _publisher(url: str, intersections: int, detectors: int, rate_hz: float, duration_s: float,
               ready: Any, sent: Any) -> None:
    """Runs in its own process: many simulated edges over one client, paced in 50 ms ticks."""
    import paho.mqtt.client as mqtt

    endpoint = MqttEndpoint(url=url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect(endpoint.host, endpoint.port, keepalive=30)
    client.loop_start()
    rng = np.random.default_rng(1)
    topics = [telemetry_topic(f"bx-{i:05d}") for i in range(intersections)]
    edge_of = [i // 8 for i in range(intersections)]  # 8 intersections per edge, one seq per edge
    edges = [f"bench-edge-{e:04d}" for e in edge_of]
    occ = ",".join(f"{x:.1f}" for x in rng.uniform(0, 60, detectors))
    faults = ",".join(["false"] * detectors)
    template = ('{"v":1,"ts":"%s","edge_id":"%s","epoch":1,"seq":%d,"intersection_id":"bx-%05d",'
                '"mode":"central","plan":1,"cycle_timer_s":12.0,"signal":["G","R","R","R"],'
                '"det_count":[%s],"det_occupancy_pct":[' + occ + '],"det_fault":[' + faults + ']}')
    counts = ",".join(["1"] * detectors)
    ready.set()
    per_s = intersections * rate_hz
    start = time.monotonic()
    seq = [0] * (edge_of[-1] + 1)
    n = 0
    i = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= duration_s:
            break
        due = int(elapsed * per_s)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        while n < due:
            e = edge_of[i]
            seq[e] += 1
            client.publish(topics[i], (template % (now, edges[i], seq[e], i, counts)).encode(), qos=0)
            n += 1
            i = (i + 1) % intersections
        time.sleep(0.02)
    sent.value = n
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()


def _scratch_database(server_url: str) -> str:
    name = f"kota_bench_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)


def _drop_database(server_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate(url)


def run_through_broker(broker_url: str, db_url: str, *, intersections: int, detectors: int,
                       rate_hz: float, duration_s: float, label: str) -> dict[str, Any]:
    _reset(db_url)
    pool = open_pool(db_url, 1, 2, name=f"bench-{label}")
    store = Store(pool)
    ingest = Ingest(IngestSettings(batch_max=5000, flush_interval_ms=100, queue_max=2_000_000), store)
    # (payload ts, lag) of every stored telemetry message; the window is applied at the end
    stored: list[tuple[float, float]] = []
    lock = threading.Lock()

    def on_stored(batch: Batch, received_at: list[float]) -> None:
        now = time.time()
        with lock:
            stored.extend((t.ts.timestamp(), now - t.ts.timestamp()) for t in batch.telemetry)

    ingest.on_stored = on_stored
    link = ControlRoomLink(MqttEndpoint(url=broker_url), f"kota-bench-{label}-{os.getpid()}",
                           lambda topic, payload, qos, mid: ingest.offer(
                               Inbound(topic, payload, qos, mid, time.monotonic())))
    ingest.set_ack(link.ack)
    ingest.start()
    link.start()
    if not link.connected.wait(10):
        raise SystemExit(f"cannot reach the broker at {broker_url}")
    ctx = mp.get_context("spawn")
    ready, sent = ctx.Event(), ctx.Value("q", 0)
    proc = ctx.Process(target=_publisher, args=(broker_url, intersections, detectors, rate_hz,
                                                duration_s, ready, sent), daemon=True)
    proc.start()
    ready.wait(30)
    print(f"[{label}] publishing {intersections} intersections × {rate_hz:g} Hz × {detectors} "
          f"detectors for {duration_s:g} s…", flush=True)
    warm_wall = time.time() + WARMUP_S
    start = time.monotonic()
    next_report = start + 5
    while proc.is_alive():
        proc.join(0.25)
        if time.monotonic() >= next_report:
            print(f"[{label}]   {time.monotonic() - start:4.0f} s: stored {ingest.stats.stored}, "
                  f"backlog {ingest.backlog()}", flush=True)
            next_report += 5
    publish_end = time.monotonic()
    end_wall = time.time() - 0.6  # the publisher lingers 0.5 s after its last message
    # Let the backlog drain (bounded), so lag reflects every stored message.
    drain_deadline = publish_end + 15
    while time.monotonic() < drain_deadline and (ingest.backlog() or ingest.stats.received < sent.value):
        time.sleep(0.1)
    link.stop()
    ingest.stop()
    pool.close()
    with lock:
        data = np.asarray(stored) if stored else np.zeros((0, 2))
    # Messages published inside the window and stored: the rate that went all the way through.
    in_window = data[(data[:, 0] >= warm_wall) & (data[:, 0] < end_wall)]
    window = end_wall - warm_wall
    msgs = len(in_window)
    rows = msgs * detectors
    arr = in_window[:, 1] if msgs else np.asarray([float("nan")])
    return {
        "broker": label,
        "offered_msgs_per_s": round(intersections * rate_hz, 1),
        "published": int(sent.value),
        "received": ingest.stats.received,
        "lost": max(0, int(sent.value) - ingest.stats.received),
        "sustained_msgs_per_s": round(msgs / window, 1),
        "detector_rows_per_s": round(rows / window, 1),
        "lag_p50_s": round(float(np.percentile(arr, 50)), 3),
        "lag_p99_s": round(float(np.percentile(arr, 99)), 3),
        "rejected": ingest.stats.as_dict()["rejected_total"],
    }


def storage_path(db_url: str, *, detectors: int, messages: int = 50_000, batch: int = 5000) -> dict[str, Any]:
    """The storage path alone: validated messages → Store.write (binary COPY)."""
    _reset(db_url)
    pool = open_pool(db_url, 1, 2, name="bench-storage")
    store = Store(pool)
    now = datetime.now(UTC)
    rng = np.random.default_rng(2)
    counts = tuple(int(x) for x in rng.integers(0, 6, detectors))
    occ = tuple(float(x) for x in rng.uniform(0, 60, detectors))
    msgs = [TrafficTelemetry(ts=now + timedelta(seconds=k // 1000), edge_id=f"e{k % 1000 // 8}", epoch=1,
                             seq=k, intersection_id=f"s{k % 1000:04d}", mode="central", plan=1,
                             signal=("G", "R", "R", "R"), det_count=counts, det_occupancy_pct=occ,
                             det_fault=(False,) * detectors) for k in range(messages)]
    store.write(Batch(telemetry=msgs[:batch]))  # warm: intersection ids resolved
    start = time.perf_counter()
    rows = 0
    for k in range(batch, messages, batch):
        rows += store.write(Batch(telemetry=msgs[k:k + batch])).detector_rows
    elapsed = time.perf_counter() - start
    pool.close()
    return {"messages": messages - batch, "detector_rows": rows,
            "detector_rows_per_s": round(rows / elapsed, 1),
            "msgs_per_s": round((messages - batch) / elapsed, 1)}


def bench_ingest(args: argparse.Namespace) -> int:
    logging.getLogger("controlroom").setLevel(logging.WARNING)
    embedded_pg = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.database_url:
        server_url = args.database_url
    else:
        from controlroom.storage.embedded import EmbeddedPostgres

        tmp = tempfile.TemporaryDirectory(prefix="kota-bench-")
        port = _free_port()
        embedded_pg = EmbeddedPostgres(Path(tmp.name) / "pg", port=port, database="postgres")
        server_url = embedded_pg.start()
    db_url = _scratch_database(server_url)
    results: dict[str, Any] = {"intersections": args.intersections, "detectors": args.detectors,
                               "duration_s": args.duration, "database": _server_label(db_url)}
    try:
        print("storage path (Store.write, binary COPY)…", flush=True)
        results["storage"] = storage_path(db_url, detectors=args.detectors)
        print(f"  {results['storage']['detector_rows_per_s']:,.0f} detector rows/s", flush=True)
        if args.broker in ("mosquitto", "both"):
            results["mosquitto"] = run_through_broker(
                args.mosquitto_url, db_url, intersections=args.intersections, detectors=args.detectors,
                rate_hz=args.rate, duration_s=args.duration, label="mosquitto")
            _print_run(results["mosquitto"])
        if args.broker in ("embedded", "both"):
            port = _free_port()
            with EmbeddedBroker(BrokerSettings(port=port)) as broker:
                results["embedded"] = run_through_broker(
                    broker.url, db_url, intersections=args.embedded_intersections,
                    detectors=args.detectors, rate_hz=args.rate, duration_s=args.duration,
                    label="embedded")
            _print_run(results["embedded"])
    finally:
        _drop_database(server_url, db_url)
        if embedded_pg is not None:
            embedded_pg.stop()
        if tmp is not None:
            tmp.cleanup()
    if args.json:
        print(json.dumps(results))
    return 0


def _print_run(r: dict[str, Any]) -> None:
    print(f"[{r['broker']}] offered {r['offered_msgs_per_s']:,.0f} msg/s → sustained "
          f"{r['sustained_msgs_per_s']:,.0f} msg/s, {r['detector_rows_per_s']:,.0f} detector rows/s, "
          f"lag p50 {r['lag_p50_s']} s p99 {r['lag_p99_s']} s, lost {r['lost']}", flush=True)


def _server_label(url: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host', 'socket')}:{info.get('port', 5432)}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
