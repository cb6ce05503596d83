"""The embedded PostgreSQL against real servers: start, idempotence, restarts, kill -9, a port
taken by someone else, data dirs it must refuse, and a server that outlives its process."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from controlroom.storage.embedded import EmbeddedPostgres, EmbeddedPostgresError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_gone(pid: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z":
            return  # a zombie nobody reaps (PID 1 of this container); it is dead
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive after {timeout_s} s")


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A directory for data dirs, outside pytest's /tmp/pytest-of-<user>.

    Under root the server user must traverse every ancestor, and the module grants that; but
    any other pytest session starting meanwhile resets /tmp/pytest-of-<user> to 0700, which
    made initdb fail now and then on machines running several suites at once.
    """
    path = Path(tempfile.mkdtemp(prefix="kota-pg-test-"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def server(base_dir: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(base_dir / "pg", port=_free_port(), database="kota")
    yield pg
    pg.stop()


@pytest.mark.slow
def test_start_serves_the_database_on_loopback(server: EmbeddedPostgres,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="controlroom.storage.embedded"):
        url = server.start()
    assert url == f"postgresql://postgres@127.0.0.1:{server.port}/kota" == server.url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_database()").fetchone() == ("kota",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
    started = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO
               and r.name == "controlroom.storage.embedded" and "started" in r.getMessage()]
    assert len(started) == 1 and url in started[0] and str(server.data_dir) in started[0]
    assert server.status().log_file.exists()


@pytest.mark.slow
def test_start_again_is_idempotent(server: EmbeddedPostgres) -> None:
    url = server.start()
    pid = server.status().pid
    assert pid is not None
    assert server.start() == url
    assert server.status().pid == pid
    # Another handle on the same data dir (another `kota` process) finds it running too.
    other = EmbeddedPostgres(server.data_dir, port=server.port, database="kota")
    assert other.start() == url and other.status().pid == pid
    assert not other.launched


@pytest.mark.slow
def test_status_follows_the_server(server: EmbeddedPostgres) -> None:
    before = server.status()
    assert (before.running, before.pid, before.port) == (False, None, server.port)
    assert before.url == server.url and before.data_dir == server.data_dir
    assert server.stop() is False  # nothing to stop
    server.start()
    running = server.status()
    assert running.running and running.pid is not None
    assert server.stop() is True
    assert server.stop() is False
    assert not server.status().running and server.status().pid is None


@pytest.mark.slow
def test_data_survives_stop_and_start(server: EmbeddedPostgres) -> None:
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE punch (nip text, at_s integer)")
        conn.execute("INSERT INTO punch VALUES ('198001012005011001', 28800)")
    assert server.stop() is True
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()
    server.start()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT nip, at_s FROM punch").fetchall() == [
            ("198001012005011001", 28800)]


@pytest.mark.slow
def test_start_after_kill_9_recovers(server: EmbeddedPostgres) -> None:
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT 42 AS answer")
    pid = server.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_until_gone(pid)
    assert (server.data_dir / "postmaster.pid").exists()  # stale lock left behind
    assert not server.status().running
    server.start()
    new_pid = server.status().pid
    assert new_pid is not None and new_pid != pid
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT answer FROM t").fetchone() == (42,)


@pytest.mark.slow
def test_port_taken_by_another_program_is_named(base_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedPostgres(base_dir / "pg", port=port)
        with pytest.raises(EmbeddedPostgresError, match=f"127.0.0.1:{port}") as caught:
            server.start()
    assert "KOTA_DATABASE__EMBEDDED__PORT" in str(caught.value)
    assert not server.status().running


@pytest.mark.slow
def test_context_manager_stops_only_what_it_started(server: EmbeddedPostgres) -> None:
    with EmbeddedPostgres(server.data_dir, port=server.port) as inner:
        assert inner.launched and inner.status().running
    assert not server.status().running

    server.start()
    with EmbeddedPostgres(server.data_dir, port=server.port) as inner:
        assert not inner.launched
    assert server.status().running  # it was running before the block, so it stays


@pytest.mark.slow
def test_server_outlives_the_starting_process_with_a_long_path(base_dir: Path) -> None:
    # Too long for a socket inside the data dir: the socket moves to a short private dir.
    data_dir = base_dir / ("d" * 60) / ("e" * 60) / "pg"
    port = _free_port()
    code = ("import sys; from pathlib import Path; "
            "from controlroom.storage.embedded import EmbeddedPostgres; "
            "print(EmbeddedPostgres(Path(sys.argv[1]), port=int(sys.argv[2])).start())")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(data_dir), str(port)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    server = EmbeddedPostgres(data_dir, port=port)
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == server.url
        assert server.status().running
        with psycopg.connect(server.url) as conn:
            socket_dir = conn.execute("SHOW unix_socket_directories").fetchone()[0]
        assert str(data_dir) not in socket_dir
        assert list(Path(socket_dir.strip('"')).glob(f".s.PGSQL.{port}"))
    finally:
        server.stop()


def test_refuses_a_directory_that_is_not_a_cluster(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("not a database")
    with pytest.raises(EmbeddedPostgresError, match="not empty"):
        EmbeddedPostgres(data_dir, port=_free_port()).start()
    assert (data_dir / "notes.txt").exists()


def test_refuses_a_cluster_of_another_major_version(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("15\n")
    with pytest.raises(EmbeddedPostgresError, match=r"PostgreSQL 15 cluster.*PostgreSQL 18"):
        EmbeddedPostgres(data_dir, port=_free_port()).start()
