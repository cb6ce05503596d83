"""`kota bench controller`: one emulator process serving many controllers, polled by the driver.

The emulator runs as its own process exactly as a technician starts it (`kota sim controller
--count N --base-port P`); this process plays the edge agents: one production driver
(`ControllerClient`) per controller, each polling status and detectors once a second, spread
evenly over the second. Figures: response time of each poll (p50, p99, max), polls answered
and failed, and the CPU the emulator process used. A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import numpy as np

from devices.controller.driver import ControllerClient
from devices.controller.errors import ControllerError

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _free_base_port(count: int) -> int:
    """A run of ``count`` consecutive free ports on loopback, found by trying to bind them."""
    for base in range(21000, 60000 - count, count + 7):
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no run of {count} free ports on 127.0.0.1")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), children included."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / CLK_TCK


async def _wait_listening(host: str, ports: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(ports)
    while pending:
        port = pending[-1]
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            pending.pop()
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not listen on {host}:{port} within "
                                   f"{timeout_s:g} s") from None
            await asyncio.sleep(0.2)


async def _poll_all(host: str, ports: list[int], duration_s: float, warmup_s: float,
                    progress: bool) -> dict[str, Any]:
    clients = [ControllerClient(host, p, timeout_s=2.0) for p in ports]
    for c in clients:
        await c.connect()
        await c.identity()
    latencies: list[float] = []
    attempted = [0]
    identity_requests = sum(c.requests for c in clients)
    failures: dict[str, int] = {}
    t0 = time.monotonic()
    measure_from = t0 + warmup_s
    end = measure_from + duration_s
    n = len(clients)

    async def poller(i: int, client: ControllerClient) -> None:
        next_due = t0 + i / n  # spread the polls evenly over each second
        while next_due < end:
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
            started = time.monotonic()
            attempted[0] += 1
            try:
                await client.snapshot()
            except ControllerError as exc:
                if started >= measure_from:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            else:
                if started >= measure_from:
                    latencies.append(time.monotonic() - started)
            next_due += 1.0

    async def reporter() -> None:
        while time.monotonic() < end:
            await asyncio.sleep(5.0)
            done = time.monotonic() - t0
            if progress:
                print(f"  … {done:4.0f} s of {warmup_s + duration_s:.0f} s, {len(latencies)} polls "
                      f"measured", file=sys.stderr, flush=True)

    await asyncio.gather(reporter(), *(poller(i, c) for i, c in enumerate(clients)))
    for c in clients:
        c.close()
    lat = np.array(latencies) * 1000.0
    return {
        "polls": int(lat.size),
        "failed": sum(failures.values()),
        "failures": failures,
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
        "max_ms": round(float(lat.max()), 2) if lat.size else None,
        # Modbus requests per status+detector poll: 1 while the detectors fit one read.
        "requests_per_poll": round((sum(c.requests for c in clients) - identity_requests)
                                   / max(1, attempted[0]), 2),
    }


def bench_controller(args: argparse.Namespace) -> int:
    count = args.controllers
    base = args.base_port or _free_base_port(count)
    ports = list(range(base, base + count))
    cmd = [sys.executable, "-m", "kota", "--log-level", "WARNING", "sim", "controller",
           "--count", str(count), "--base-port", str(base), "--host", args.host,
           "--detectors", str(args.detectors)]
    print(f"starting {count} emulated controllers on {args.host}:{base}–{base + count - 1} "
          f"({args.detectors} detectors each)…", file=sys.stderr, flush=True)
    emulator = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        asyncio.run(_wait_listening(args.host, ports, timeout_s=60))
        cpu_before, wall_before = _cpu_s(emulator.pid), time.monotonic()
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        print(f"polling each once a second for {args.warmup:g} s warm-up + {args.duration:g} s…",
              file=sys.stderr, flush=True)
        figures = asyncio.run(_poll_all(args.host, ports, args.duration, args.warmup,
                                        progress=not args.json))
        wall = time.monotonic() - wall_before
        cpu = _cpu_s(emulator.pid) - cpu_before
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        if emulator.poll() is not None:
            raise RuntimeError(f"the emulator process exited early with code {emulator.returncode}")
    finally:
        if emulator.poll() is None:
            emulator.send_signal(signal.SIGINT)
            try:
                emulator.wait(15)
            except subprocess.TimeoutExpired:
                emulator.kill()
    poller_cpu = ((self_after.ru_utime + self_after.ru_stime)
                  - (self_before.ru_utime + self_before.ru_stime))
    result = {
        "benchmark": "controller",
        "controllers": count,
        "detectors": args.detectors,
        "poll_hz": 1.0,
        "duration_s": args.duration,
        **figures,
        "emulator_cpu_pct": round(100.0 * cpu / wall, 1),
        "poller_cpu_pct": round(100.0 * poller_cpu / wall, 1),
        "cores": os.cpu_count(),
        "goal_p99_ms": 50,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{count} controllers polled at 1 Hz for {args.duration:g} s: {result['polls']} polls, "
              f"{result['failed']} failed\n"
              f"  response time p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
              f"(goal < 50 ms), max {result['max_ms']} ms\n"
              f"  emulator process CPU {result['emulator_cpu_pct']} % of one core; "
              f"pollers {result['poller_cpu_pct']} %")
    return 0 if figures["polls"] and not figures["failed"] else 1
