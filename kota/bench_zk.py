"""`kota bench zk`: punches pulled from emulated attendance machines, our driver vs plain pyzk.

The machines run in their own process exactly as a technician starts them (`kota sim zk`), so
the CPU this process uses is the client's alone. Two measurements:

* one machine holding N punches (default 100,000) read whole by our driver
  (``devices.zk.driver.ZkDriver.punches``), by plain pyzk 0.9 (``ZK.get_attendance``, on the
  colour-screen profile it can read), and incrementally by our driver with a watermark at the
  newest punch (nothing new): wall time, CPU, punches/s, best of --repeat;
* the office edge agent syncing M machines (default 40) with K new punches each (default
  5,000): ``edge.office.OfficeAgent`` as the agent runs it, its batches written to a real
  outbox, until every punch is in a batch; then a round with nothing new.

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

from devices.zk.driver import ZkDriver, office_zone

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


def agent_sync(machines: int, punches: int) -> dict[str, Any]:
    """The office edge agent's own sync (``edge.office``: one thread per machine, the ledger,
    every batch written to a real outbox as ``EdgeLink.send`` does) until every machine's
    punches are in batches; then one more round of all machines with nothing new."""
    import tempfile
    import threading
    from functools import partial
    from pathlib import Path

    from edge.contract import encode, parse_topic, utc_now
    from edge.office.agent import MachinePlan, OfficeAgent
    from edge.office.machine import MachineAddress, open_machine
    from edge.office.state import OfficeState
    from edge.office.sync import SyncPolicy
    from edge.outbox import Outbox
    from edge.traffic import Stamp

    with (emulators(["--count", str(machines), "--users", "100", "--punches", str(punches),
                     "--capacity", str(max(punches, 1))]) as (proc, rows),
          tempfile.TemporaryDirectory(prefix="kota-bench-zk-") as tmp):
        outbox = Outbox(Path(tmp) / "outbox.sqlite3", telemetry_cap=10)
        lock = threading.Lock()
        seq = [0]

        def send(topic: str, build: Callable[[Stamp], Any]) -> int:  # EdgeLink.send, no broker
            spec = parse_topic(topic).spec
            with lock:
                seq[0] += 1
                stamp = Stamp("bench-office", 1, seq[0], utc_now())
                outbox.put(topic, encode(build(stamp)), spec.qos, spec.retain, spec.qos == 0)
            return stamp.seq

        plans = [MachinePlan(r["serial"], partial(open_machine, MachineAddress(
                     "127.0.0.1", r["port"], timeout_s=TIMEOUT_S)), SyncPolicy(),
                     pull_interval_s=3600.0) for r in rows]
        agent = OfficeAgent(plans, OfficeState(Path(tmp) / "office.sqlite3"), send)
        wall, cpu, emu = time.perf_counter(), _own_cpu_s(), _cpu_s(proc.pid)

        def rounds_done(n: int) -> bool:
            return all(v >= n for v in agent.rounds.values())

        agent.start()
        while not rounds_done(1):
            time.sleep(0.01)
        wall, cpu = time.perf_counter() - wall, _own_cpu_s() - cpu
        emu_cpu = _cpu_s(proc.pid) - emu
        ledgers = [agent.status()[k] for k in range(machines)]
        pulled = sum(s["unstored_punches"] for s in ledgers)
        failed = [f"{s['device_sn']}: {s['error']}" for s in ledgers if s["error"]]
        counts = outbox.counts()
        wall2, cpu2 = time.perf_counter(), _own_cpu_s()
        for plan in plans:
            agent.wake(plan.device_sn)
        while not rounds_done(2):
            time.sleep(0.01)
        wall2, cpu2 = time.perf_counter() - wall2, _own_cpu_s() - cpu2
        again = sum(s["unstored_punches"] for s in agent.status()) - pulled
        agent.stop()
        outbox.close()
    figures = {
        "label": "the office edge agent's sync (edge.office.OfficeAgent: a thread per machine, "
                 "batches written to a real outbox, fsync'd), no broker",
        "machines": machines, "new_punches_each": punches,
        "punches": pulled, "failed": len(failed), "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3), "emulator_cpu_s": round(emu_cpu, 3),
        "punches_per_s": round(pulled / wall) if wall else None,
        "outbox_messages": counts.total,
        "next_round_nothing_new": {"wall_s": round(wall2, 3), "cpu_s": round(cpu2, 3),
                                   "punches": again},
    }
    if failed:
        figures["errors"] = failed[:5]
    print(f"  {machines} machines × {punches} punches: {pulled} punches in batches in "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU ({figures['failed']} failed, "
          f"{counts.total} outbox messages); next round (nothing new) {wall2:.2f} s", flush=True)
    return figures


def bench_zk(args: argparse.Namespace) -> int:
    if min(args.punches, args.repeat, args.machines, args.machine_punches) < 1:
        print("--punches, --repeat, --machines and --machine-punches must be at least 1",
              file=sys.stderr)
        return 2
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    print(f"one machine, {args.punches} punches (best of {args.repeat}):", flush=True)
    results["one_machine"] = one_machine(args.punches, args.repeat)
    print(f"agent sync, {args.machines} machines:", flush=True)
    results["agent_sync"] = agent_sync(args.machines, args.machine_punches)
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
        "(2) The office edge agent's sync (edge.office: one thread per machine, the ledger, "
        "every batch written to a real fsync'd outbox; no broker) of --machines machines with "
        "--machine-punches new punches each, until all are in batches; then one more round "
        "with nothing new.",
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
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of figures as the last line")
    return p
