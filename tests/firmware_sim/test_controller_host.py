"""Many emulated controllers in one process: the host's TOML config, its errors, real clients.

Every controller listens on its own free port (port 0); the real pymodbus client and the
production driver talk to them over loopback.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from devices.controller import codec
from devices.controller.driver import ControllerClient
from devices.controller.registers import DETECTOR_CONFIG, IDENTITY
from firmware_sim.controller.clock import ManualClock, RealClock
from firmware_sim.controller.host import (
    ControllerHost,
    HostConfigError,
    host_config_for,
    load_host_config,
    validate_host_config,
)
from firmware_sim.controller.server import EmulatorStartError
from firmware_sim.controller.traffic import TrafficGenerator

ROOT = Path(__file__).resolve().parents[2]

TWENTY = textwrap.dedent("""
    time_scale = 20
    count = 16
    id_prefix = "smg-"

    [template]
    detectors = 4
    traffic_level = 2.0

    [[controllers]]
    id = "SMG-SIMPANG-LIMA"
    phases = 3
    detectors = 6
    local_actuated = true
    [controllers.local_plan]
    splits_s = [30, 25, 25]

    [[controllers]]
    id = "SMG-TUGU-MUDA"
    phases = 4
    detectors = 8
    compatible_pairs = [[1, 3], [2, 4]]
    [controllers.local_plan]
    stages = [[1, 3], [2, 4]]
    splits_s = [45, 45]

    [[controllers]]
    id = "SMG-KALIBANTENG"
    phases = 2
    detectors = 2
    seed = 7
    [controllers.timing]
    min_green_s = 10
    yellow_s = 3
    all_red_s = 3

    [[controllers]]
    id = "SMG-JATINGALEH"
    unit_id = 5
    phases = 5
""")


async def _identity(port: int, unit: int = 1) -> codec.Identity:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    try:
        reply = await client.read_input_registers(IDENTITY.address, count=DETECTOR_CONFIG.end,
                                                  device_id=unit)
        assert not reply.isError(), reply
        regs = reply.registers
        a, b = IDENTITY.size, IDENTITY.size + 16
        return codec.decode_identity(regs[:a], regs[a:b], regs[b:])
    finally:
        client.close()


def test_twenty_controllers_from_a_toml_file_all_answer(tmp_path: Path) -> None:
    path = tmp_path / "city.toml"
    path.write_text(TWENTY, encoding="utf-8")
    config = load_host_config(path)

    async def scenario() -> None:
        async with ControllerHost(config) as host:
            assert len(host) == 20
            ports = host.ports
            assert len(set(ports.values())) == 20 and all(ports.values())
            identities = await asyncio.gather(*(
                _identity(port, host[cid].unit_id) for cid, port in ports.items()))
            by_id = dict(zip(ports, identities, strict=True))
            assert by_id["SMG-SIMPANG-LIMA"].phase_count == 3
            assert by_id["SMG-SIMPANG-LIMA"].local_actuated
            assert by_id["SMG-JATINGALEH"].phase_count == 5
            tugu = by_id["SMG-TUGU-MUDA"]
            assert not tugu.conflicts_with(1, 3) and tugu.conflicts_with(1, 2)
            assert by_id["smg-0016"].detector_count == 4
            assert by_id["SMG-KALIBANTENG"].serial == "SMG-KALIBANTENG"[-12:]
            # The production driver polls them all; the built-in traffic makes detectors live.
            await asyncio.sleep(1.0)
            clients = [ControllerClient("127.0.0.1", port, host[cid].unit_id, timeout_s=2)
                       for cid, port in ports.items()]
            try:
                snaps = await asyncio.gather(*(c.snapshot() for c in clients))
            finally:
                for c in clients:
                    c.close()
            assert all(s.status.uptime_s >= 10 for s in snaps)  # ×20 for ≥ 1 s
            assert sum(d.volume for s in snaps for d in s.detectors) > 0

    asyncio.run(scenario())


def test_consecutive_ports_from_base_port() -> None:
    with socket.socket() as s:  # find a free run: bind 0, then use the next few ports
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
    config = host_config_for(3, base_port=base + 1, detectors=2, traffic_level=0)

    async def scenario() -> None:
        async with ControllerHost(config, clock=ManualClock()) as host:
            assert list(host.ports.values()) == [base + 1, base + 2, base + 3]

    try:
        asyncio.run(scenario())
    except EmulatorStartError as exc:  # pragma: no cover - another process took one of them
        pytest.skip(f"port run taken: {exc}")


@pytest.mark.parametrize(("raw", "path", "words"), [
    ({"controllers": [{"id": "a", "phases": 4}, {"id": "b", "phases": 40}]},
     "controllers.1.phases", "less than or equal to 16"),
    ({"controllers": [{"id": "a", "colour": "red"}]}, "controllers.0.colour", "unknown key"),
    ({"count": 2, "template": {"timing": {"yellow_s": 2}}}, "template", "YELLOW_TOO_SHORT"),
    ({"controllers": [{"id": "a", "local_plan": {"splits_s": [30, 30, 30]}}]},
     "controllers.0", "3 splits"),
    ({"controllers": [{"id": "a", "compatible_pairs": [[1, 2]],
                       "local_plan": {"stages": [[1, 2], [3], [4], [1, 2]],
                                      "splits_s": [30, 30, 30, 30]}}]},
     "controllers.0", "BAD_SEQUENCE"),
    ({"controllers": [{"id": "a", "local_plan": {"stages": [[1, 2], [3, 4]],
                                                  "splits_s": [40, 40]}}]},
     "controllers.0", "CONFLICTING_STAGE"),
    ({"controllers": [{"id": "a", "detectors": 2, "detector_phases": [1, 9]}]},
     "controllers.0", "calls phase 9"),
    ({"controllers": [{"id": "a", "port": 15020}, {"id": "b", "port": 15020}]},
     "controllers.1.port", "also used"),
    ({"controllers": [{"id": "a"}, {"id": "a"}]}, "controllers.1.id", "also controller"),
    ({"count": 3, "base_port": 65534}, "base_port", "beyond 65535"),
    ({"time_scale": 0, "count": 1}, "time_scale", "greater than 0"),
    ({}, "(root)", "no controllers"),
])
def test_bad_host_config_names_the_key_path(raw: dict, path: str, words: str) -> None:
    with pytest.raises(HostConfigError) as info:
        validate_host_config(raw, "test")
    problems = dict(info.value.problems)
    assert path in problems, info.value.problems
    assert words in problems[path], problems[path]
    assert path in str(info.value)


def test_bad_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("count = [", encoding="utf-8")
    with pytest.raises(HostConfigError, match="not valid TOML"):
        load_host_config(path)
    with pytest.raises(HostConfigError, match="no such file"):
        load_host_config(tmp_path / "missing.toml")


def test_traffic_is_seeded_and_follows_the_signal() -> None:
    def run(seed: int) -> tuple[list[tuple[int, int, bool]], tuple[int, ...]]:
        # 07:00 WIB (00:00 UTC): the morning peak; phase 1 green for 30 s of every 60 s.
        gen = TrafficGenerator([1, 2, 0], level=1.0, seed=seed, wall_s=lambda ds: ds / 10)
        changes = []
        for t in range(6000):
            changes += gen.step(t, t + 1, 0b01 if (t // 300) % 2 == 0 else 0b10)
        return changes, gen.queues_veh

    first, queues = run(3)
    assert run(3) == (first, queues)
    assert run(4)[0] != first
    # Detector 2 (phase 2) sits occupied for long stretches on red: one on-edge per vehicle
    # discharged, and the longest presence is far beyond one crossing.
    on = {d: sum(1 for _, det, p in first if det == d and p) for d in (1, 2, 3)}
    assert all(v > 10 for v in on.values()), on
    longest = 0
    since: dict[int, int] = {}
    for at, det, present in first:
        if present:
            since[det] = at
        elif det in since:
            longest = max(longest, at - since.pop(det))
    assert longest > 50  # > 5 s: a vehicle waiting on red


def test_no_traffic_at_level_zero() -> None:
    gen = TrafficGenerator([1, 2], level=0.0, seed=1)
    assert gen.step(0, 36000, 0b11) == []


def test_cli_runs_one_controller_and_stops_by_itself() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import argparse,sys; from kota.sim import add_sim_parser; "
            "p=argparse.ArgumentParser(); s=p.add_subparsers(dest='c'); add_sim_parser(s); "
            "a=p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")
    proc = subprocess.Popen([sys.executable, "-c", code, "sim", "controller", "--port", str(port),
                             "--duration", "3", "--time-scale", "10"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 5
        identity = None
        while identity is None:
            try:
                identity = asyncio.run(_identity(port))
            except (ModbusException, OSError):  # not listening yet: retry until the deadline
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert identity.phase_count == 4
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"127.0.0.1:{port} unit 1" in out


def test_cli_rejects_bad_arguments() -> None:
    import argparse

    from kota.sim import add_sim_parser

    parser = argparse.ArgumentParser()
    add_sim_parser(parser.add_subparsers(dest="c"))
    args = parser.parse_args(["sim", "controller", "--count", "2", "--phases", "30"])
    assert args.func(args) == 2
    args = parser.parse_args(["sim", "controller"])
    assert args.func(args) == 2


def test_real_clock_scales() -> None:
    clock = RealClock(50)
    t0 = clock.now_ds()
    time.sleep(0.1)
    assert 40 <= clock.now_ds() - t0 <= 150  # 0.1 s × 50, with room for a busy machine
    assert clock.real_s(50) == pytest.approx(0.1)
