"""The edge agent against Mosquitto over mqtts:// with MQTT 5 and a password: the production path.

Starts its own mosquitto process on free loopback ports (a TLS listener for the agent, a plain
one for the test's subscriber), with a throw-away CA made by the openssl CLI. Skipped where the
mosquitto or openssl binaries are missing.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from edge.app import EdgeAgent
from edge.contract import (
    CommandAck,
    EdgeState,
    OverrideBody,
    TrafficCommand,
    TrafficTelemetry,
    command_topic,
    encode,
    utc_now,
)
from edge.contract import MqttEndpoint as Endpoint
from edge.settings import EdgeSettings, SimulatedIntersectionSettings

if TYPE_CHECKING:
    from tests.edge.conftest import Received, Recorder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mosquitto") is None or shutil.which("openssl") is None,
                       reason="needs the mosquitto and openssl binaries"),
]

USER, PASSWORD = "edge-t2", "s3cret-pass"
IID = "simpang-9"


@dataclass(frozen=True)
class Mosquitto:
    plain_port: int
    tls_port: int
    ca_file: Path


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def _make_ca_and_server_cert(folder: Path) -> None:
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "1", "-subj", "/CN=kota-test-ca", cwd=folder)
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext", cwd=folder)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {port}")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    _make_ca_and_server_cert(folder)
    _run("mosquitto_passwd", "-b", "-c", "passwd", USER, PASSWORD, cwd=folder)
    plain, tls = _free_port(), _free_port()
    (folder / "mosquitto.conf").write_text(f"""
user root
persistence false
allow_anonymous false
password_file {folder / 'passwd'}
log_dest stderr
listener {plain} 127.0.0.1
listener {tls} 127.0.0.1
cafile {folder / 'ca.crt'}
certfile {folder / 'server.crt'}
keyfile {folder / 'server.key'}
""")
    proc = subprocess.Popen(["mosquitto", "-c", str(folder / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(plain, proc)
        _wait_listening(tls, proc)
        yield Mosquitto(plain, tls, folder / "ca.crt")
    finally:
        proc.terminate()
        proc.wait(10)


def settings(broker: Mosquitto, password: str = PASSWORD) -> EdgeSettings:
    return EdgeSettings(
        edge_id="edge-t2",
        mqtt=Endpoint(url=f"mqtts://127.0.0.1:{broker.tls_port}", username=USER, password=password,
                      ca_file=str(broker.ca_file), protocol="5", keepalive_s=2,
                      reconnect_min_s=0.1, reconnect_max_s=0.5),
        poll_interval_s=0.1,
        simulated=[SimulatedIntersectionSettings(intersection_id=IID, detectors=2)],
    )


def test_mqtts_mqtt5_with_password(mosquitto: Mosquitto, make_recorder: Callable[..., Recorder],
                                   tmp_path: Path) -> None:
    recorder = make_recorder(mosquitto.plain_port, [("kota/v1/#", 1)], username=USER, password=PASSWORD)
    agent = EdgeAgent(settings(mosquitto), tmp_path)
    agent.start()
    try:
        [birth] = recorder.wait_for(lambda m: isinstance(m.payload, EdgeState))
        assert (birth.payload.status, birth.payload.epoch) == ("online", agent.epoch)
        recorder.wait_for(lambda m: isinstance(m.payload, TrafficTelemetry), count=3)

        now = utc_now()
        recorder.publish(command_topic(IID), encode(TrafficCommand(
            ts=now, cmd_id="cmd-hold-0001", issuer="operator-1", intersection_id=IID,
            expires_at=now + timedelta(seconds=30), body=OverrideBody(action="hold"))))
        acks = recorder.wait_for(lambda m: isinstance(m.payload, CommandAck), count=2)
        assert [a.payload.status for a in acks] == ["accepted", "applied"]
    finally:
        agent.stop()
    states: list[Received] = recorder.wait_for(lambda m: isinstance(m.payload, EdgeState), count=2)
    assert (states[-1].payload.status, states[-1].payload.conn) == ("offline", birth.payload.conn)


def test_a_wrong_password_is_logged_once_and_retried(mosquitto: Mosquitto, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.link")
    agent = EdgeAgent(settings(mosquitto, password="wrong"), tmp_path)
    agent.start()
    try:
        time.sleep(1.5)  # several attempts with back-off 0.1–0.5 s
        assert not agent.link.connected
        assert agent.link.conn >= 3, "it keeps trying"
    finally:
        agent.stop()
    refused = [r for r in caplog.records if r.levelno == logging.ERROR and "refused" in r.getMessage()]
    assert len(refused) == 1
    assert "username/password" in refused[0].getMessage()
