"""Edge test peers: an amqtt broker in its own thread that can be stopped and restarted on one port,
and a plain paho subscriber that records what arrives."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controlroom.broker import BrokerError, EmbeddedBroker
from controlroom.settings import BrokerSettings
from edge.contract import (
    ContractError,
    ControlRoomState,
    controlroom_state_topic,
    decode,
    encode,
    utc_now,
)


def _address_in_use(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedBroker:
    """The embedded broker on a fixed port, restartable on that port (for outage tests)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: EmbeddedBroker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start; retries while the port is still held by a broker just stopped on it."""
        deadline = time.monotonic() + timeout_s
        while True:
            failure = self._start_once(timeout_s)
            if failure is None:
                return
            if not _address_in_use(failure) or time.monotonic() > deadline:
                raise RuntimeError(f"amqtt did not start on port {self.port}: {failure}") from failure
            time.sleep(0.2)

    def _start_once(self, timeout_s: float) -> BaseException | None:
        server = EmbeddedBroker(BrokerSettings(port=self.port))
        try:
            server.start(timeout_s)
        except BrokerError as exc:
            return exc.__cause__ or exc
        self._server = server
        return None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is not None:
            self._server.stop(timeout_s)
            self._server = None


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    server = ThreadedBroker(free_tcp_port())
    server.start()
    yield server
    server.stop()


@dataclass
class Received:
    topic: str
    payload: Any  # the validated contract model, or the ContractError it raised
    retain: bool


def _distinct(messages: list[Received]) -> list[Received]:
    seen: set[object] = set()
    out = []
    for m in messages:
        seq = getattr(m.payload, "seq", None)
        key = (m.topic, m.payload.edge_id, m.payload.epoch, seq) if seq is not None else id(m)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


class Recorder:
    """A paho subscriber that validates every message with the contract and keeps it."""

    def __init__(self, port: int, filters: list[tuple[str, int]], client_id: str = "test-recorder",
                 username: str | None = None, password: str | None = None) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.subscribed = threading.Event()
        self._client.on_connect = lambda c, u, f, r, p: self._connected(c, filters)
        self._client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.set()
        self._client.on_disconnect = lambda c, u, f, r, p: self.subscribed.clear()
        self._client.on_message = self._message
        self._client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.connect_async("127.0.0.1", port, keepalive=10)
        self._client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError(f"test recorder could not subscribe on port {port}")

    def _connected(self, client: mqtt.Client, filters: list[tuple[str, int]]) -> None:
        # The recorder stands in for the control room: subscribe, then announce it is online,
        # as the control room does, since an edge drains its outbox only while it is.
        client.subscribe(filters)
        online = ControlRoomState(ts=utc_now(), status="online", epoch=1)
        client.publish(controlroom_state_topic(), encode(online), qos=1, retain=True)

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload: Any = decode(message.topic, message.payload).payload
        except ContractError as exc:  # kept: a test may have sent it on purpose, or the agent erred
            payload = exc
        with self._lock:
            self.messages.append(Received(message.topic, payload, bool(message.retain)))

    def where(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if predicate(m)]

    def wait_for(self, predicate: Callable[[Received], bool], count: int = 1,
                 timeout_s: float = 10.0) -> list[Received]:
        """Wait for ``count`` distinct matching messages; return them, first copies only.

        Distinct as the control room sees it: edge messages by (edge_id, epoch, seq). Duplicates
        are part of the contract (outbox resends, QoS 1 redelivery; amqtt 0.12 also delivers a
        retained message twice to a clean_session=False subscriber); ``where`` shows them all.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            found = _distinct(self.where(predicate))
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(found)} of {count} expected messages arrived "
                                     f"within {timeout_s} s")
            time.sleep(0.05)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class TcpGate:
    """A TCP forwarder the test can shut: the agent's way to the broker, cut on demand.

    Closing it drops the agent's connection without an MQTT DISCONNECT (so the broker sends the
    will) and refuses new ones, while test clients talk to the broker directly.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._replies = threading.Event()  # cleared: the broker's packets (PUBACKs…) are held back
        self._replies.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._stopped = False
        threading.Thread(target=self._accept, name=f"gate-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._open.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _shut(sock)
        self._replies.set()  # after the cut: held packets die with their connection

    def open(self) -> None:
        self._replies.set()
        self._open.set()

    def hold_replies(self) -> None:
        """Keep forwarding to the broker but hold back what it sends (PUBACKs stay unseen)."""
        self._replies.clear()

    def shutdown(self) -> None:
        self._stopped = True
        self.close()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                _shut(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self._upstream_port), timeout=2)
            except OSError:
                _shut(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=_pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, self._replies), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket, flowing: threading.Event | None) -> None:
    try:
        while data := src.recv(65536):
            while flowing is not None and not flowing.wait(0.05):
                if src.fileno() < 0:
                    return  # the gate closed the pair while holding
            dst.sendall(data)
    except OSError:
        pass  # the other side or the gate closed the pair
    _shut(src)
    _shut(dst)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed
    sock.close()


@pytest.fixture
def gate(broker: ThreadedBroker) -> Iterator[TcpGate]:
    forwarder = TcpGate(broker.port)
    yield forwarder
    forwarder.shutdown()


@pytest.fixture
def start_broker() -> Iterator[Callable[[int], ThreadedBroker]]:
    """Start another broker (e.g. on the port of one just stopped); stopped at teardown."""
    started: list[ThreadedBroker] = []

    def start(port: int) -> ThreadedBroker:
        server = ThreadedBroker(port)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def make_recorder() -> Iterator[Callable[..., Recorder]]:
    """Connect a subscriber (waits for its SUBACK); closed at teardown."""
    made: list[Recorder] = []

    def make(port: int, filters: list[tuple[str, int]], client_id: str = "test-recorder",
             **credentials: str) -> Recorder:
        rec = Recorder(port, filters, client_id, **credentials)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


@pytest.fixture
def recorder(broker: ThreadedBroker, make_recorder: Callable[..., Recorder]) -> Recorder:
    """A subscriber to everything under kota/v1, connected to ``broker`` directly."""
    return make_recorder(broker.port, [("kota/v1/#", 1)])
