"""`kota bench dashboard` on a tiny city, so that the script cannot rot: it starts the stack,
opens the wall map in Chromium, measures and prints its figures as the last line. Not a speed
test: the figures for 1,000 intersections are the benchmark's job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kota.bench_dashboard import layout_document
from tests.conftest import ON_CI

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"


def test_layout_is_a_grid_of_corridors_the_control_room_accepts() -> None:
    from controlroom.traffic.layout import parse_layout

    doc = layout_document([f"X{k}" for k in range(10)])
    layout, _ = parse_layout(doc)
    assert len(layout.intersections) == 10
    xs = {(x.x, x.y) for x in layout.intersections}
    assert len(xs) == 10  # every intersection has its own place on the map
    assert [x.upstream for x in layout.intersections[:4]] == [None, "X0", "X1", "X2"]
    assert layout.intersections[4].upstream is None  # a new row starts a new corridor


def test_bench_dashboard_measures_a_tiny_city() -> None:
    if not Path(CHROMIUM).exists():
        if ON_CI:
            pytest.fail(f"CI must provide Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    proc = subprocess.run(
        [sys.executable, "-m", "kota", "bench", "dashboard", "--intersections", "50",
         "--seconds", "5", "--warmup", "2", "--clicks", "1", "--json"],
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    f = json.loads(proc.stdout.strip().splitlines()[-1])
    lat = f["latency"]
    assert f["benchmark"] == "dashboard" and f["intersections"] == 50
    assert lat["samples"] > 50, lat  # the page showed live updates, measured
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["max_ms"]
    assert f["telemetry_taken_per_s"] > 25  # 50 intersections at 1 Hz went in over MQTT
    assert f["click_to_navigate"]["clicks"] == 1 and f["click_to_navigate"]["navigated"] == 1
    assert f["long_tasks"] is not None and f["cpu_pct"]["controlroom"] is not None
