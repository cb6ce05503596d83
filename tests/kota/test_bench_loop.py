"""`kota bench loop` still runs the whole loop end to end on a tiny city and prints its figures.

Not a speed test: the latency and throughput figures are the benchmark's job (run it as
`kota bench loop --json`); this keeps the script working — every process started and stopped,
surges committed as new plans, the JSON object as the last line. Embedded broker and embedded
PostgreSQL, all on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys

from kota.bench_loop import SURGE_HEADWAY_DS, SURGE_ON_DS, SurgeTraffic, layout_document


def test_surge_puts_a_vehicle_on_the_loops_every_headway() -> None:
    source = SurgeTraffic()
    source.surge([1, 5], now_ds=100)
    changes = source.step(99, 100 + 2 * SURGE_HEADWAY_DS, 0)
    on = [(t, d) for t, d, present in changes if present]
    off = [(t, d) for t, d, present in changes if not present]
    assert on == [(100, 1), (100, 5), (120, 1), (120, 5), (140, 1), (140, 5)]
    assert off[:2] == [(100 + SURGE_ON_DS, 1), (100 + SURGE_ON_DS, 5)]
    source.calm()
    later = source.step(140, 400, 0)
    assert all(not present for _, _, present in later)  # the last vehicles leave, none come


def test_layout_is_what_the_control_room_accepts() -> None:
    from controlroom.traffic.layout import parse_layout

    layout, _ = parse_layout(layout_document(["A-1", "A-2", "A-3"]))
    assert [len(x.detectors) for x in layout.intersections] == [8, 8, 8]


def test_bench_loop_commits_plans_for_surges_on_a_tiny_city() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kota", "bench", "loop", "--intersections", "3", "--samples", "4",
         "--concurrency", "2", "--duration", "10", "--cooldown", "3", "--json"],
        capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    lat, thr = figures["latency"], figures["throughput"]
    assert figures["intersections"] == 3 and figures["edge_agents"] == 2
    assert lat["samples"] >= 2 and lat["committed"] >= 1, lat
    assert lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert thr["telemetry_taken_per_s"] > 0 and thr["plan_steps"] > 0
    assert thr["messages_received_per_s"] >= thr["telemetry_taken_per_s"] * 0.9
    # The surges reach the controllers between plan steps (surge re-plans).
    assert thr["surge_replans"] >= 1
    assert figures["controlroom_cpu_pct"] is not None
