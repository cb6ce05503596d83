"""The benchmark scripts still run end to end on tiny sizes and print their JSON last line.

Not a speed test: the figures are the benchmark's job; this only keeps the scripts working.
"""

from __future__ import annotations

import json
import subprocess
import sys


def _last_json(args: list[str], timeout_s: float) -> dict:
    proc = subprocess.run([sys.executable, "-m", "kota", *args], capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bench_controller_polls_every_emulated_controller() -> None:
    figures = _last_json(["bench", "controller", "--controllers", "5", "--detectors", "40",
                          "--duration", "2", "--warmup", "1", "--json"], 120)
    assert figures["controllers"] == 5
    assert figures["polls"] >= 5 * 2 - 1 and figures["failed"] == 0
    assert figures["requests_per_poll"] == 2.0  # 40 detectors do not fit one read with the status
    assert figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_bench_core_compares_with_the_loop() -> None:
    figures = _last_json(["bench", "core", "--sizes", "20,50", "--repeat", "3",
                          "--loop-repeat", "1", "--json"], 120)
    assert [s["intersections"] for s in figures["sizes"]] == [20, 50]
    assert figures["all_plans_equal"] is True
    assert all(s["speedup"] > 0 and s["vector_ms_median"] > 0 for s in figures["sizes"])


def test_bench_zk_driver_and_pyzk_read_the_same_punches() -> None:
    figures = _last_json(["bench", "zk", "--punches", "3000", "--repeat", "1", "--machines", "3",
                          "--machine-punches", "200", "--json"], 120)
    one = figures["one_machine"]
    assert one["same_count"] is True
    assert one["driver"]["punches"] == one["pyzk"]["punches"] == 3000
    assert one["driver"]["wall_s"] > 0 and one["pyzk"]["cpu_s"] >= 0
    sync = figures["agent_sync"]
    assert (sync["machines"], sync["punches"], sync["failed"]) == (3, 600, 0)
    assert sync["outbox_messages"] >= 3  # at least a batch per machine, in the real outbox
    assert sync["next_round_nothing_new"]["punches"] == 0
