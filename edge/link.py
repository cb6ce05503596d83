"""The edge agent's MQTT connection: birth and will, the outbox drain, commands in.

paho-mqtt 2.x, callback API v2. Callbacks run on paho's network thread and only hand work
over (a queue for incoming messages, a queue of acknowledged message ids); the drain and the
inbound handling run in their own worker threads. Every payload is built from a ``Stamp``
(edge id, epoch, seq) taken here, so every message of the run is numbered by one counter.
It knows the contract and the outbox, not the devices: commands go to ``on_command``.

Birth and will: a will is fixed per CONNECT, so ``on_pre_connect`` (called by paho before
every connection attempt) numbers the attempt (``conn``) and registers an offline will with
that number; the birth after CONNACK carries the same number. The control room orders state
by ``(epoch, conn)`` and lets offline win a tie (see ``edge.contract``). Attempts that fail
still use up a number, so ``conn`` may skip values; it never goes back.

Delivery: the drain publishes outbox rows in id order while connected. A QoS 0 row is deleted
once handed to the client; a QoS 1 row when its PUBACK arrives. paho keeps unacknowledged
QoS 1 messages in memory and resends them itself after a reconnect, so within one run the
drain does not republish them; after a restart the drain starts from the oldest row again
(a row keeps its original payload, so its original epoch and seq: the control room's
de-duplication on ``(edge, epoch, seq)`` absorbs the repeats).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.contract import (
    ContractError,
    ControlRoomState,
    DeviceInfo,
    EdgeMessage,
    EdgeState,
    MqttEndpoint,
    command_topic,
    controlroom_state_topic,
    decode,
    edge_state_topic,
    encode,
    parse_topic,
    utc_now,
)
from edge.outbox import Outbox, OutboxError
from edge.traffic import Stamp

log = logging.getLogger(__name__)

# MQTT 5: the broker keeps the session (subscriptions, queued commands) this long offline.
SESSION_EXPIRY_S = 3600
IDLE_WAKE_S = 0.5  # the drain looks at the outbox at least this often
# ... and at most this often: every message wakes the drain twice (stored, then handed to the
# broker), so an agent with hundreds of controllers would read and delete one row per step.
# A busy agent drains in batches this far apart; an idle one at once.
DRAIN_MIN_GAP_S = 0.02


def display_url(endpoint: MqttEndpoint) -> str:
    """The broker's address for logs, without any user:password@ a URL might carry."""
    return f"{'mqtts' if endpoint.tls else 'mqtt'}://{endpoint.host}:{endpoint.port}"


class LinkError(Exception):
    """The MQTT client cannot be set up (bad TLS files, bad endpoint)."""


def build_client(endpoint: MqttEndpoint, client_id: str, inflight_max: int) -> mqtt.Client:
    """A paho client from an endpoint: protocol, TLS, credentials, reconnect back-off."""
    v5 = endpoint.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # Persistent session on 3.1.1, so QoS 1 commands sent while the edge is away wait for it.
        clean_session=None if v5 else False,
    )
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        try:
            client.tls_set(ca_certs=endpoint.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (OSError, ssl.SSLError) as exc:
            raise LinkError(f"cannot set up TLS for {display_url(endpoint)} with ca_file={endpoint.ca_file!r}: "
                            f"{exc}; check the CA bundle path") from exc
    # paho doubles the delay after each failed attempt up to the maximum (exponential back-off).
    client.reconnect_delay_set(endpoint.reconnect_min_s, endpoint.reconnect_max_s)  # type: ignore[arg-type]
    client.max_queued_messages_set(0)  # unbounded: the drain already limits what it hands over
    # Room above the drain's own limit for births, the offline state and resends.
    client.max_inflight_messages_set(inflight_max + 16)
    return client


class EdgeLink:
    """One agent's connection to the broker. ``start`` connects in the background."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        edge_id: str,
        epoch: int,
        outbox: Outbox,
        inventory: Sequence[DeviceInfo],
        versions: Mapping[str, str],
        intersections: Sequence[str],
        on_command: Callable[[str, bytes], None],
        extra_topics: Sequence[str] = (),
        publish_batch: int = 200,
        inflight_max: int = 100,
    ) -> None:
        self.edge_id = edge_id
        self.epoch = epoch
        self._endpoint = endpoint
        self._url = display_url(endpoint)
        self._outbox = outbox
        self._inventory = tuple(inventory)
        self._versions = dict(versions)
        # Commands for the intersections, and what other parts of the agent listen to (the
        # office's stored replies and machine commands): all handed to ``on_command``.
        self._command_topics = (frozenset(command_topic(i) for i in intersections)
                                | frozenset(extra_topics))
        self._subscriptions = [(controlroom_state_topic(), 1)] + [(t, 1) for t in sorted(self._command_topics)]
        self._on_command = on_command
        self._publish_batch = publish_batch
        self._inflight_max = inflight_max

        self._seq_lock = threading.Lock()
        self._next_seq = 0
        self._send_lock = threading.Lock()  # keeps outbox order equal to seq order for sends
        self._conn_lock = threading.Lock()
        self._conn = 0
        self._connected = threading.Event()
        self._ever_connected = False
        self._failing = False  # inside a run of failed attempts: logged once
        self._refused_reason: str | None = None
        self._controlroom_epoch: int | None = None
        # Set while this connection has seen the control room online. The outbox drains only
        # then: a broker that restarted without persistence has no subscription of the control
        # room until it reconnects, and a message published before that would reach nobody.
        self._controlroom_online = threading.Event()

        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._inbound: queue.SimpleQueue[tuple[str, bytes, bool] | None] = queue.SimpleQueue()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id (drain thread only)
        self._cursor = 0  # highest outbox id handed to the client in this run (drain thread only)
        self._threads: list[threading.Thread] = []

        self._client = build_client(endpoint, edge_id, inflight_max)
        self._client.on_pre_connect = self._pre_connect
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def conn(self) -> int:
        with self._conn_lock:
            return self._conn

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def start(self) -> None:
        """Connect in the background; paho retries with back-off while the broker is away."""
        for name, target in (("edge-drain", self._drain_loop), ("edge-inbound", self._inbound_loop)):
            thread = threading.Thread(target=target, name=f"{name}-{self.edge_id}", daemon=True)
            thread.start()
            self._threads.append(thread)
        props = None
        if self._endpoint.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        log.info("connecting to MQTT broker %s as %s (MQTT %s)", self._url, self.edge_id,
                 self._endpoint.protocol)
        # connect_async + loop_start: the first attempt happens in paho's thread, so a broker
        # that is down at start is retried like any later outage instead of raising here.
        self._client.connect_async(self._endpoint.host, self._endpoint.port,
                                   keepalive=self._endpoint.keepalive_s,
                                   clean_start=False if props is not None else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                                   properties=props)
        self._client.loop_start()

    def send(self, topic: str, build: Callable[[Stamp], EdgeMessage]) -> int:
        """Stamp, build and store one message for delivery; returns its seq.

        QoS and retain come from the contract's spec for the topic; QoS 0 kinds (telemetry,
        analytics, snapshots) are droppable under the outbox cap, everything else is kept.
        """
        spec = parse_topic(topic).spec
        with self._send_lock:
            stamp = Stamp(self.edge_id, self.epoch, self._take_seq(), utc_now())
            payload = encode(build(stamp))
            self._outbox.put(topic, payload, spec.qos, spec.retain, droppable=spec.qos == 0)
        self._wake.set()
        return stamp.seq

    def flush(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (everything acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._outbox.counts().total == 0:
                return True
            self._wake.set()
            time.sleep(0.05)
        return self._outbox.counts().total == 0

    def stop(self, timeout_s: float = 2.0) -> None:
        """Announce offline (same epoch and conn), wait briefly for it, disconnect."""
        self._stopping.set()
        self._wake.set()
        self._inbound.put(None)
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()
        if self._connected.is_set():
            info = self._client.publish(edge_state_topic(self.edge_id),
                                        self._state_payload("offline", self.conn, "agent stopped"),
                                        qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                try:
                    info.wait_for_publish(timeout_s)
                except RuntimeError as exc:  # the connection went while waiting
                    log.warning("offline state not confirmed by the broker: %s", exc)
        self._connected.clear()
        self._client.disconnect()
        self._client.loop_stop()
        self._settle_acks()  # PUBACKs that came in after the drain stopped
        log.info("MQTT link of %s closed (epoch %d)", self.edge_id, self.epoch)

    # ------------------------------------------------------------------ state messages

    def _take_seq(self) -> int:
        with self._seq_lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def _state_payload(self, status: str, conn: int, reason: str = "") -> bytes:
        return encode(EdgeState(
            edge_id=self.edge_id, epoch=self.epoch, seq=self._take_seq(), ts=utc_now(),
            status=status, conn=conn, inventory=self._inventory if status == "online" else (),
            versions=self._versions, reason=reason,
        ))

    def _publish_birth(self, client: mqtt.Client, conn: int) -> None:
        client.publish(edge_state_topic(self.edge_id), self._state_payload("online", conn),
                       qos=1, retain=True)

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        with self._conn_lock:
            self._conn += 1
            conn = self._conn
        client.will_set(edge_state_topic(self.edge_id),
                        self._state_payload("offline", conn, "connection lost"), qos=1, retain=True)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            if str(reason) != self._refused_reason:
                self._refused_reason = str(reason)
                log.error("broker %s refused %s: %s — check [edge.mqtt] username/password and the "
                          "broker's ACL; retrying with back-off", self._url, self.edge_id, reason)
            return
        self._refused_reason = None
        self._failing = False
        conn = self.conn
        self._controlroom_online.clear()  # wait for the (retained) state on this connection
        client.subscribe(self._subscriptions)
        self._publish_birth(client, conn)
        if self._ever_connected:
            log.info("reconnected to MQTT broker %s (connection %d)", self._url, conn)
        else:
            log.info("connected to MQTT broker %s as %s (epoch %d, connection %d)",
                     self._url, self.edge_id, self.epoch, conn)
        self._ever_connected = True
        self._connected.set()
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        if not self._failing:
            self._failing = True
            log.warning("cannot reach MQTT broker %s; buffering in the outbox and retrying with "
                        "back-off (%g–%g s)", self._url, self._endpoint.reconnect_min_s,
                        self._endpoint.reconnect_max_s)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._stopping.is_set():
            self._failing = True  # the retries that follow are part of this outage: no more logs
            log.warning("lost MQTT broker %s (%s); buffering in the outbox and reconnecting with "
                        "back-off", self._url, reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        self._acks.put((mid, bool(reason.is_failure), str(reason)))
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbound.put((message.topic, bytes(message.payload), bool(message.retain)))

    # ------------------------------------------------------------------ drain (its own thread)

    def _drain_loop(self) -> None:
        failing = False
        last_step = -IDLE_WAKE_S
        while not self._stopping.is_set():
            self._wake.wait(IDLE_WAKE_S)
            gap_s = last_step + DRAIN_MIN_GAP_S - time.monotonic()
            if gap_s > 0:
                self._stopping.wait(gap_s)
            last_step = time.monotonic()
            self._wake.clear()
            try:
                self._settle_acks()
                if (self._connected.is_set() and self._controlroom_online.is_set()
                        and not self._stopping.is_set()):
                    self._drain_step()
            except OutboxError as exc:
                # Rows stay where they are; the next wake tries again.
                if not failing:
                    log.error("%s — the drain pauses until the outbox can be read again", exc)
                failing = True
            else:
                if failing:
                    log.info("outbox readable again; draining resumes")
                failing = False

    def _drain_step(self) -> None:
        rows = self._outbox.peek(self._publish_batch, after_id=self._cursor)
        handed_qos0: list[int] = []
        for row in rows:
            if not self._connected.is_set():
                break
            if row.qos == 1 and len(self._inflight) >= self._inflight_max:
                break
            info = self._client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
            if row.qos == 0:
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break  # not handed over; the row stays for the next connection
                handed_qos0.append(row.id)
            else:
                # paho holds a QoS 1 message until its PUBACK, even when rc says "no connection"
                # (it is sent after the reconnect); only a refusal to queue keeps it ours.
                if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                    break
                self._inflight[info.mid] = row.id
            self._cursor = row.id
        self._outbox.remove(handed_qos0)
        if len(rows) == self._publish_batch and rows[-1].id == self._cursor:
            self._wake.set()  # more may be waiting

    def _settle_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid, failed, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            row_id = self._inflight.pop(mid, None)
            if row_id is None:
                continue  # a state message or a QoS 0 publish: not from the outbox
            if failed:
                # MQTT 5 PUBACK with an error (e.g. not authorised): a resend would fail the
                # same way, so the row is dropped here, loudly.
                log.error("broker %s refused outbox message %d: %s — check the broker's ACL for %s",
                          self._url, row_id, reason, self.edge_id)
            done.append(row_id)
        if done:
            self._outbox.remove(done)
            self._wake.set()  # room in flight again

    # ------------------------------------------------------------------ inbound (its own thread)

    def _inbound_loop(self) -> None:
        while True:
            item = self._inbound.get()
            if item is None:
                return
            topic, payload, retained = item
            if topic == controlroom_state_topic():
                self._controlroom_state(payload, retained)
            elif topic in self._command_topics:
                try:
                    self._on_command(topic, payload)
                except OutboxError as exc:
                    log.error("command on %s handled, but its ack could not be stored: %s", topic, exc)
            else:
                log.warning("ignored a message on %s: this agent does not subscribe to it "
                            "(a broker misdelivery?)", topic)

    def _controlroom_state(self, payload: bytes, retained: bool) -> None:
        try:
            state = decode(controlroom_state_topic(), payload).payload
        except ContractError as exc:
            log.warning("ignored a control-room state message that breaks the contract (%s): %s",
                        exc.reason, exc.detail)
            return
        assert isinstance(state, ControlRoomState)
        if state.status == "online":
            if not self._controlroom_online.is_set():
                self._controlroom_online.set()
                self._wake.set()
        elif self._controlroom_online.is_set():
            self._controlroom_online.clear()
            log.warning("control room is offline; holding messages in the outbox until it returns")
        previous, self._controlroom_epoch = self._controlroom_epoch, state.epoch
        # A retained state arrives with every subscription, right after our own birth: no need
        # to repeat it. A live "online" of a new control-room run asks every edge to re-announce.
        if state.status == "online" and not retained and state.epoch != previous:
            conn = self.conn
            if self._connected.is_set():
                log.info("control room announced itself (epoch %d); re-publishing birth", state.epoch)
                self._publish_birth(self._client, conn)
