"""`kota sim city` as an orchestrator runs it: the whole loop from one command, a `ready` JSON line
saying where everything is, SIGTERM stopping every process it started, a `stopped` line with the
RESCO delay; and its usage errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from kota import sim
from kota.city import _http_json, port_open
from kota.cli import main

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours would still answer; the orchestrator reaps its children
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().split()[2] != "Z"


def test_sim_city_runs_the_loop_and_sigterm_stops_every_process(
        embedded_pg_server: str, scratch_dir: Path) -> None:
    name = f"kota_cli_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(embedded_pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(embedded_pg_server)._replace(path=f"/{name}"))
    env = {**os.environ, "XDG_DATA_HOME": str(scratch_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kota", "sim", "city", "--generate", str(scratch_dir / "city"),
         "--hours", "0.5", "--time-scale", "5", "--json", "--database", url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready", ready
        assert ready["broker_embedded"] and ready["database"] == url
        assert [c["intersection_id"] for c in ready["controllers"]] == [f"J{k}" for k in
                                                                          range(1, 7)]
        pids = [ready["controlroom_pid"], ready["broker_pid"],
                *(e["pid"] for e in ready["edges"])]
        assert len(ready["edges"]) == 2 and all(_alive(p) for p in pids)
        assert _http_json(ready["api"] + "api/health")["status"] == "ok"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = _http_json(ready["api"] + "api/intersections")
            if len([r for r in rows if r["online"]]) == 6:
                break
            time.sleep(0.5)
        assert len([r for r in rows if r["online"]]) == 6, rows
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        with psycopg.connect(embedded_pg_server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert proc.returncode == 0, err[-3000:]
    stopped = json.loads(out.strip().splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["vehicles"] > 0 and "avg_delay_s" in stopped
    assert not [p for p in pids if _alive(p)], "a child process outlived the orchestrator"
    broker_port = int(ready["broker"].rsplit(":", 1)[1])
    assert not port_open("127.0.0.1", broker_port)
    assert not port_open("127.0.0.1", int(urlsplit(ready["api"]).port or 0))


def test_usage_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    # The first as the command runs (`python -m kota`, its exit status); the others in this
    # process, where a Python start-up apiece is not paid and a city that a usage error lets
    # start fails at once instead of running.
    bad = subprocess.run([sys.executable, "-m", "kota", "sim", "city", "--generate",
                          str(tmp_path / "c"), "--world-only", "--edges", "2"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "leave out --world-only" in bad.stderr

    def started(args: object) -> int:
        raise AssertionError(f"a usage error went on to start the city: {args}")

    monkeypatch.setattr(sim, "_closed_loop", started)
    monkeypatch.setattr(sim, "_city_world", started)

    def run(*args: str) -> tuple[int, str]:
        code = main(["sim", "city", "--generate", str(tmp_path / "c"), *args])
        return code, capsys.readouterr().err

    assert run("--edges", "0")[0] == 2
    assert run("--plan-interval", "0")[0] == 2
    assert run("--offices", "-1")[0] == 2
    code, err = run("--world-only", "--offices", "2")
    assert code == 2 and "leave out --world-only" in err


def test_a_missing_broker_is_named_with_what_to_do(embedded_pg_server: str,
                                                   scratch_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kota", "sim", "city", "--generate", str(scratch_dir / "c"),
         "--mqtt", "mqtt://127.0.0.1:9", "--hours", "0.2", "--database",
         embedded_pg_server], env={**os.environ, "XDG_DATA_HOME": str(scratch_dir)},
        capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1
    assert "no MQTT broker answers at mqtt://127.0.0.1:9" in proc.stdout + proc.stderr
