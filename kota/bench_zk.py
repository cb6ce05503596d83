"""`kota bench zk`: punches pulled from emulated attendance machines, our driver vs plain pyzk.

The machines run in their own process exactly as a technician starts them (`kota sim zk`), so
the CPU this process uses is the client's alone. Two measurements:

* one machine holding N punches (default 100,000) read whole by our driver
  (``devices.zk.driver.ZkDriver.punches``), by plain pyzk 0.9 (``ZK.get_attendance``, on the
  colour-screen profile it can read), and incrementally by our driver with a watermark at the
  newest punch (nothing new): wall time, CPU, punches/s, best of --repeat;
* an office edge agent syncing M machines (default 40) with K new punches each (default 5,000):
  the office agent does not exist yet, so this runs the function it is to use,
  ``devices.zk.driver.pull_punches`` (one thread per machine, at most --parallel at a time).

A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from devices.zk.driver import MachineTarget, ZkDriver, office_zone, pull_punches

CLK_TCK = os.sysconf("SC_CLK_TCK")
WIB = office_zone("WIB")
TIMEOUT_S = 30.0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def emulators(args: list[str], timeout_s: float = 300.0
              ) -> Iterator[tuple[subprocess.Popen[str], list[dict[str, Any]]]]:
    """`kota sim zk ARGS --json` as a child process; yields it and its machines when ready."""
    proc = subprocess.Popen([sys.executable, "-m", "kota", "--log-level", "WARNING", "sim",
                             "zk", *args, "--json"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise RuntimeError(f"`kota sim zk {' '.join(args)}` did not start "
                               f"(exit {proc.poll()})")
        yield proc, json.loads(line)["machines"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _timed(read: Callable[[], int], emulator_pid: int) -> dict[str, Any]:
    wall, cpu, emu = time.perf_counter(), _own_cpu_s(), _cpu_s(emulator_pid)
    count = read()
    wall = time.perf_counter() - wall
    cpu = _own_cpu_s() - cpu
    return {"punches": count, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "emulator_cpu_s": round(_cpu_s(emulator_pid) - emu, 3),
            "punches_per_s": round(count / wall) if wall else None}


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: r["wall_s"])
    return {**best, "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 3),
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "runs": len(runs)}


def one_machine(punches: int, repeat: int) -> dict[str, Any]:
    from zk import ZK  # pyzk 0.9: the baseline, unmodified

    with emulators(["--port", "0", "--users", "200", "--punches", str(punches),
                    "--capacity", str(max(punches, 1))]) as (proc, machines):
        port = machines[0]["port"]

        def ours() -> int:
            with ZkDriver("127.0.0.1", port, timeout_s=TIMEOUT_S, tz=WIB) as zk:
                return len(zk.punches())

        def ours_incremental() -> int:
            with ZkDriver("127.0.0.1", port, timeout_s=TIMEOUT_S, tz=WIB) as zk:
                return len(zk.punches(newest))

        def pyzk() -> int:
            conn = ZK("127.0.0.1", port, timeout=TIMEOUT_S, ommit_ping=True).connect()
            try:
                return len(conn.get_attendance())
            finally:
                conn.disconnect()

        with ZkDriver("127.0.0.1", port, timeout_s=TIMEOUT_S, tz=WIB) as zk:
            newest = zk.punches()[-1].timestamp  # also warms the emulator's table cache
        figures: dict[str, Any] = {"punches_on_machine": punches, "profile": "colour"}
        for name, read in (("driver", ours), ("pyzk", pyzk),
                           ("driver_incremental", ours_incremental)):
            runs = [_timed(read, proc.pid) for _ in range(repeat)]
            figures[name] = _best(runs)
            r = figures[name]
            print(f"  {name:<19} {r['punches']:>7} punches  {r['wall_s']:6.2f} s wall  "
                  f"{r['cpu_s']:6.2f} s CPU  {r['punches_per_s'] or 0:>9,} punches/s",
                  flush=True)
    d, p = figures["driver"], figures["pyzk"]
    figures["driver_vs_pyzk_wall"] = round(p["wall_s"] / d["wall_s"], 2) if d["wall_s"] else None
    figures["driver_vs_pyzk_cpu"] = round(p["cpu_s"] / d["cpu_s"], 2) if d["cpu_s"] else None
    figures["same_count"] = d["punches"] == p["punches"] == punches
    return figures


def agent_sync(machines: int, punches: int, parallel: int) -> dict[str, Any]:
    with emulators(["--count", str(machines), "--users", "100", "--punches", str(punches),
                    "--capacity", str(max(punches, 1))]) as (proc, rows):
        targets = [MachineTarget("127.0.0.1", r["port"], timeout_s=TIMEOUT_S) for r in rows]
        wall, cpu, emu = time.perf_counter(), _own_cpu_s(), _cpu_s(proc.pid)
        results = pull_punches(targets, tz=WIB, max_parallel=parallel)
        wall, cpu = time.perf_counter() - wall, _own_cpu_s() - cpu
        emu_cpu = _cpu_s(proc.pid) - emu
        pulled = sum(len(r.punches) for r in results)
        failed = [str(r.error) for r in results if not r.ok]
        again = [MachineTarget(t.host, t.port, timeout_s=TIMEOUT_S, since=r.watermark)
                 for t, r in zip(targets, results, strict=True)]
        wall2, cpu2 = time.perf_counter(), _own_cpu_s()
        second = pull_punches(again, tz=WIB, max_parallel=parallel)
        wall2, cpu2 = time.perf_counter() - wall2, _own_cpu_s() - cpu2
    figures = {
        "label": "office edge agent stand-in: devices.zk.driver.pull_punches, one thread per "
                 "machine (the office edge agent is not built yet)",
        "machines": machines, "new_punches_each": punches, "parallel": parallel,
        "punches": pulled, "failed": len(failed), "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3), "emulator_cpu_s": round(emu_cpu, 3),
        "punches_per_s": round(pulled / wall) if wall else None,
        "per_machine_wall_s_max": round(max(r.wall_s for r in results), 3),
        "next_sync_nothing_new": {"wall_s": round(wall2, 3), "cpu_s": round(cpu2, 3),
                                  "punches": sum(len(r.punches) for r in second)},
    }
    if failed:
        figures["errors"] = failed[:5]
    print(f"  {machines} machines × {punches} punches, {parallel} at a time: {pulled} punches "
          f"in {wall:.2f} s wall, {cpu:.2f} s CPU ({figures['failed']} failed); next sync "
          f"(nothing new) {wall2:.2f} s", flush=True)
    return figures


def bench_zk(args: argparse.Namespace) -> int:
    if min(args.punches, args.repeat, args.machines, args.machine_punches, args.parallel) < 1:
        print("--punches, --repeat, --machines, --machine-punches and --parallel must be at "
              "least 1", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    print(f"one machine, {args.punches} punches (best of {args.repeat}):", flush=True)
    results["one_machine"] = one_machine(args.punches, args.repeat)
    print(f"agent sync, {args.machines} machines:", flush=True)
    results["agent_sync"] = agent_sync(args.machines, args.machine_punches, args.parallel)
    if args.json:
        print(json.dumps(results))
    ok = results["one_machine"]["same_count"] and not results["agent_sync"]["failed"]
    return 0 if ok else 1


def add_parser(bench_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `zk` on the `kota bench` subparsers; returns its parser."""
    p = bench_subparsers.add_parser(
        "zk", help="attendance punches pulled from emulated ZKTeco machines, driver vs pyzk",
        description="Start emulated attendance machines as their own process (`kota sim zk`) "
        "and pull their punches over loopback TCP. (1) One colour-screen machine holding "
        "--punches punches, read whole by our driver, by plain pyzk 0.9 in the same run, and "
        "incrementally by our driver (watermark at the newest punch): wall time, this "
        "process's CPU, the emulator's CPU, punches/s (best of --repeat, medians too). "
        "(2) An office edge agent syncing --machines machines with --machine-punches new "
        "punches each: as the office agent is not built yet, the function it is to use "
        "(devices.zk.driver.pull_punches: one thread per machine, --parallel at a time), "
        "then the next sync with nothing new.",
        epilog="Example: `kota bench zk --json` (100,000 punches; 40 machines × 5,000). Exit "
        "codes: 0 done, 1 a client read a wrong count or a machine failed, 2 bad arguments.")
    p.set_defaults(func=bench_zk)
    p.add_argument("--punches", type=int, default=100_000, metavar="N",
                   help="punches on the single machine (default 100000)")
    p.add_argument("--repeat", type=int, default=3, metavar="R",
                   help="reads per client of the single machine; the best is reported "
                   "(default 3)")
    p.add_argument("--machines", type=int, default=40, metavar="M",
                   help="machines the agent syncs (default 40)")
    p.add_argument("--machine-punches", type=int, default=5000, metavar="K",
                   help="new punches on each of those machines (default 5000)")
    p.add_argument("--parallel", type=int, default=8, metavar="P",
                   help="machines pulled at the same time (default 8)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    return p
