"""Shared fixtures: real peers on loopback.

PostgreSQL and MQTT tests run against the embedded servers (always) and against the machine's
PostgreSQL (127.0.0.1:5432, database `test`) and Mosquitto (127.0.0.1:1883): on CI those must
be there (the tests fail otherwise); elsewhere they are skipped when absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from controlroom.broker import EmbeddedBroker
from controlroom.settings import BrokerSettings

ON_CI = bool(os.environ.get("CI"))
SYSTEM_PG = os.environ.get("KOTA_TEST_SYSTEM_PG", "postgresql://127.0.0.1:5432/test")
SYSTEM_MQTT = os.environ.get("KOTA_TEST_SYSTEM_MQTT", "mqtt://127.0.0.1:1883")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _system_or_skip(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if ON_CI:
        pytest.fail(f"CI must provide the system {name} on {host}:{port}, and it is not reachable")
    pytest.skip(f"system {name} not running on {host}:{port} (runs on CI)")


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def embedded_pg_server() -> Iterator[str]:
    from controlroom.storage.embedded import EmbeddedPostgres

    # Not under pytest's tmp_path: a second pytest session resets that tree to 0700, which the
    # server's own user (as root: embedded_postgres) then cannot traverse.
    root = Path(tempfile.mkdtemp(prefix="kota-test-pg-"))
    server = EmbeddedPostgres(root / "data", port=free_port(), database="postgres")
    url = server.start()
    yield url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["embedded", pytest.param("system", marks=pytest.mark.system)])
def pg_server(request: pytest.FixtureRequest) -> str:
    if request.param == "system":
        _system_or_skip("PostgreSQL", "127.0.0.1", 5432)
        return SYSTEM_PG
    return request.getfixturevalue("embedded_pg_server")


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on each server, dropped afterwards."""
    name = f"kota_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield psycopg.conninfo.make_conninfo(pg_server, dbname=name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --------------------------------------------------------------------------- MQTT


@pytest.fixture
def embedded_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(BrokerSettings(port=free_port()))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.system)])
def mqtt_url(request: pytest.FixtureRequest) -> str:
    if request.param == "mosquitto":
        _system_or_skip("Mosquitto", "127.0.0.1", 1883)
        return SYSTEM_MQTT
    return request.getfixturevalue("embedded_broker").url


# A test that needs both a broker and a database runs on two pairs, each backend once: the
# embedded broker with the embedded PostgreSQL, the machine's Mosquitto with the machine's
# PostgreSQL. The two mixes in between proved nothing the pairs do not (what a broker does and
# what a server stores do not depend on each other; the control room in between is the same)
# and each cost a control room's start. Use as a decorator on such a test.
BACKEND_PAIRS = pytest.mark.parametrize(
    ("mqtt_url", "pg_server"),
    [("embedded", "embedded"), pytest.param("mosquitto", "system", marks=pytest.mark.system)],
    indirect=True)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A folder outside pytest's tmp tree, for data an embedded PostgreSQL must reach as its user."""
    root = Path(tempfile.mkdtemp(prefix="kota-test-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)
