"""`kota device zk …` and `kota sim zk` end to end: emulated machines on loopback, JSON parsed.

The device commands run in-process (``kota.cli.main``) against a ``ZkEmulatorThread``; one test
starts `kota sim zk` as its own process, as a technician does, and reads it with the CLI.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from firmware_sim.zk.machine import ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from firmware_sim.zk.server import ZkEmulatorThread
from kota.cli import build_parser, main

USERS, PUNCHES = 12, 300


@pytest.fixture
def office() -> Iterator[dict[str, tuple[int, ZkMachine]]]:
    plain = ZkMachine(MachineConfig(serial="KPCLI01", utc_offset_h=8, clock_offset_s=-300))
    keyed = ZkMachine(MachineConfig(serial="KPCLI02", profile="older", comm_key=77))
    for m in (plain, keyed):
        seed_machine(m, users=USERS, punches=PUNCHES)
    with ZkEmulatorThread([plain, keyed]) as emu:
        yield {"plain": (emu.ports["KPCLI01"], plain), "keyed": (emu.ports["KPCLI02"], keyed)}


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main(["--log-level", "WARNING", "device", "zk", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_info_json(office, capsys) -> None:
    port, m = office["plain"]
    code, out, _ = run(capsys, "info", "--port", port, "--tz", "WITA", "--json")
    info = last_json(out)
    assert code == 0
    assert (info["serial"], info["users"], info["punches"], info["record_size"],
            info["user_size"]) == ("KPCLI01", USERS, PUNCHES, 40, 72)
    assert info["clock"].endswith("+08:00") and -302 <= info["clock_drift_s"] <= -298


def test_info_text(office, capsys) -> None:
    port, _ = office["plain"]
    code, out, _ = run(capsys, "info", "--port", port, "--tz", "WITA")
    assert code == 0
    assert "s/n KPCLI01" in out and f"{PUNCHES} of 100000" in out and "300 s slow" in out


def test_users_and_logs_json(office, capsys) -> None:
    port, m = office["plain"]
    code, out, _ = run(capsys, "users", "--port", port, "--json")
    users = json.loads(out)
    assert code == 0 and [u["user_id"] for u in users] == [u.user_id for u in m.users]
    assert all("password" not in u for u in users)

    code, out, _ = run(capsys, "logs", "--port", port, "--tz", "WITA", "--json")
    logs = json.loads(out)
    assert code == 0 and logs["count"] == PUNCHES == len(logs["punches"])
    assert logs["punches"][0]["time"] == m.attendance[0].timestamp.isoformat() + "+08:00"

    since = m.attendance[-10].timestamp.isoformat()
    code, out, err = run(capsys, "logs", "--port", port, "--tz", "WITA", "--since", since,
                         "--last", 3, "--json", "--progress")
    logs = json.loads(out)
    newer = [r for r in m.attendance if r.timestamp >= m.attendance[-10].timestamp]
    assert logs["count"] == len(newer) and len(logs["punches"]) == 3
    assert "100%" in err  # --progress draws the bar on stderr even without a terminal


def test_bad_since_and_zone(office, capsys) -> None:
    port, _ = office["plain"]
    assert run(capsys, "logs", "--port", port, "--since", "yesterday")[0] == 2
    code, _, err = run(capsys, "time", "--port", port, "--tz", "CET-ish")
    assert code == 2 and "WIB, WITA, WIT" in err


def test_time_and_sync_time(office, capsys) -> None:
    port, m = office["plain"]
    code, out, _ = run(capsys, "sync-time", "--port", port, "--tz", "WITA", "--max-drift", 600,
                       "--json")
    assert code == 0 and last_json(out)["set"] is False
    code, out, _ = run(capsys, "sync-time", "--port", port, "--tz", "WITA", "--max-drift", 5,
                       "--json")
    result = last_json(out)
    assert code == 0 and result["set"] is True and abs(result["drift_after_s"]) <= 1.5
    assert abs(m.clock.error_s()) <= 1.5
    code, out, _ = run(capsys, "time", "--port", port, "--tz", "WITA", "--json")
    assert code == 0 and abs(last_json(out)["clock_drift_s"]) <= 1.5


def test_live_prints_a_punch(office, capsys) -> None:
    port, m = office["plain"]
    user = m.users[0]

    def punch_soon() -> None:
        time.sleep(0.4)
        m.punch(user.user_id)

    threading.Thread(target=punch_soon, daemon=True).start()
    code, out, _ = run(capsys, "live", "--port", port, "--tz", "WITA", "--count", 1,
                       "--duration", 10, "--json")
    event = last_json(out)
    assert code == 0 and event["user_id"] == user.user_id and event["time"].endswith("+08:00")


def test_clear_refuses_without_yes_and_backs_up_with_it(office, capsys, tmp_path: Path) -> None:
    port, m = office["plain"]
    code, out, err = run(capsys, "clear", "--port", port)
    assert code == 2 and "cannot be undone" in err and "--yes" in err
    assert m.record_count == PUNCHES
    backup = tmp_path / "backup.json"
    code, out, _ = run(capsys, "clear", "--port", port, "--backup", backup, "--yes", "--json")
    assert code == 0 and last_json(out)["cleared"] == PUNCHES
    assert len(json.loads(backup.read_text())["punches"]) == PUNCHES
    assert m.record_count == 0 and len(m.users) == USERS and m.enabled


def test_comm_key_wrong_and_right(office, capsys) -> None:
    port, _ = office["keyed"]
    code, out, _ = run(capsys, "info", "--port", port, "--comm-key", 78, "--json")
    error = last_json(out)
    assert code == 4 and error["kind"] == "ZkUnauthorized" and "--comm-key" in error["error"]
    code, out, _ = run(capsys, "info", "--port", port, "--comm-key", 77, "--udp", "--json")
    assert code == 0 and last_json(out)["record_size"] == 16


def test_unreachable(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run(capsys, "info", "--port", port, "--timeout", 1)
    assert code == 1 and "cannot reach" in err


def test_sim_zk_serves_what_device_zk_reads(capsys) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kota", "sim", "zk", "--port", "0", "--profile", "newer",
         "--users", "7", "--punches", "90", "--comm-key", "5", "--drift", "86400",
         "--duration", "60", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        machine = ready["machines"][0]
        assert ready["event"] == "ready" and machine["punches"] == 90
        code, out, _ = run(capsys, "logs", "--port", machine["port"], "--comm-key", 5, "--json")
        logs = json.loads(out)
        assert code == 0 and logs["count"] == 90
        code, out, _ = run(capsys, "info", "--port", machine["port"], "--comm-key", 5, "--json")
        info = last_json(out)
        assert (info["record_size"], info["users"], info["name"]) == (49, 7, "SpeedFace-V5L")
    finally:
        proc.terminate()
        stopped = json.loads(proc.communicate(timeout=20)[0].strip().splitlines()[-1])
    assert proc.returncode == 0 and stopped["event"] == "stopped"


def test_sim_zk_rejects_bad_arguments(capsys) -> None:
    assert main(["sim", "zk", "--port", "1", "--count", "2"]) == 2
    assert "--base-port" in capsys.readouterr().err
    assert main(["sim", "zk", "--users", "0", "--punches", "5"]) == 2


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_help_describes_every_option() -> None:
    for path, parser in _parsers(build_parser(), ()):
        if path[:2] not in (("device", "zk"), ("sim", "zk"), ("bench", "zk")):
            continue
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue  # its choices carry the help
            assert action.help, f"kota {' '.join(path)} {action.option_strings} has no help"
        if len(path) == 2:
            assert parser.epilog and "Example" in parser.epilog, f"kota {' '.join(path)}"


def test_watermark_round_trip_through_the_cli(office, capsys) -> None:
    port, m = office["plain"]
    code, out, _ = run(capsys, "logs", "--port", port, "--tz", "WITA", "--json")
    watermark = json.loads(out)["watermark"]
    m.punch(m.users[1].user_id, when=datetime.fromisoformat(watermark).replace(tzinfo=None)
            + timedelta(hours=1))
    code, out, _ = run(capsys, "logs", "--port", port, "--tz", "WITA", "--since", watermark,
                       "--json")
    logs = json.loads(out)
    assert code == 0 and logs["punches"][-1]["user_id"] == m.users[1].user_id
    assert all(p["time"] >= watermark for p in logs["punches"])
