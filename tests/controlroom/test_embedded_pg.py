"""The embedded PostgreSQL: idempotent start, data kept across restarts and a kill -9, clear errors."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psycopg
import pytest

from controlroom.storage.embedded import EmbeddedPostgres, EmbeddedPostgresError
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def test_lifecycle_keeps_data_and_survives_kill(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", port=free_port(), database="kota")
    assert not server.status().running
    url = server.start()
    pid = server.status().pid
    assert server.start() == url and server.status().pid == pid  # idempotent
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE punch (nip text)")
        conn.execute("INSERT INTO punch VALUES ('198001012005011001')")
    assert server.stop() is True and not server.status().running
    assert server.stop() is False
    server.start()
    assert pid is not None
    os.kill(server.status().pid, signal.SIGKILL)  # the postmaster dies hard
    deadline = time.monotonic() + 10
    while server.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    server.start()  # recovers from the stale postmaster.pid
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT nip FROM punch").fetchall() == [("198001012005011001",)]
    server.stop()


def test_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedPostgres(tmp_path / "pg", port=port)
        with pytest.raises(EmbeddedPostgresError, match=f"port 127.0.0.1:{port} is in use"):
            server.start()


def test_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "notes.txt").write_text("not a database")
    with pytest.raises(EmbeddedPostgresError, match="not empty"):
        EmbeddedPostgres(tmp_path / "pg", port=free_port()).start()
