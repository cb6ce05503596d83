"""The control room's MQTT connection: subscribes to everything edges send, announces itself.

paho-mqtt 2.x, callback API v2. The network thread only hands messages to the ingest queue.
The session is persistent (fixed client id, clean_session off / session expiry on MQTT 5) and
QoS 1 messages are acknowledged by the ingest after they are committed.

Liveness: the retained ``controlroom/state`` says ``online`` on every connect and ``offline``
by the will (or on a clean stop). Edges also want to *hear* it within their liveness window
(`edge.liveness`: a process that hangs while paho's keep-alive thread still runs must fall
silent), so a heartbeat thread re-publishes the online state every ``state_interval_s`` — but
only while ``healthy()`` says the control loop itself is running.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.contract import (
    CONTROLROOM_SUBSCRIPTIONS,
    ControlRoomState,
    MqttEndpoint,
    controlroom_state_topic,
    encode,
    shared,
    utc_now,
)

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600


def build_client(endpoint: MqttEndpoint, client_id: str, *, persistent: bool,
                 manual_ack: bool = False) -> mqtt.Client:
    """A paho client set up from an endpoint: protocol, TLS, credentials, back-off."""
    v5 = endpoint.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set(ca_certs=endpoint.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.reconnect_delay_set(int(max(1, endpoint.reconnect_min_s)), int(endpoint.reconnect_max_s))
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    return client


def connect_properties(endpoint: MqttEndpoint, persistent: bool) -> Properties | None:
    if endpoint.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
    return props


class ControlRoomLink:
    """Connects, subscribes, forwards messages to ``on_message``; logs loss and recovery once."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str,
                 on_message: Callable[[str, bytes, int, int], None],
                 shared_group: str | None = None, *, state_interval_s: float = 10.0,
                 healthy: Callable[[], bool] | None = None) -> None:
        self._endpoint = endpoint
        self._on_message = on_message
        self._shared_group = shared_group
        self._client_id = client_id
        self.epoch = int(time.time() * 1000)
        self._client = build_client(endpoint, client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._message
        self._client.will_set(controlroom_state_topic(), self._state("offline"), qos=1, retain=True)
        self.connected = threading.Event()
        self._was_connected = False
        self._stopping = False
        self._state_interval_s = state_interval_s
        self._healthy = healthy
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.heartbeats = 0

    def _state(self, status: str) -> bytes:
        return encode(ControlRoomState(ts=utc_now(), status=status, epoch=self.epoch))

    def start(self) -> None:
        log.info("connecting to MQTT broker %s as %s", self._endpoint.url, self._client_id)
        self._client.connect_async(self._endpoint.host, self._endpoint.port,
                                   keepalive=self._endpoint.keepalive_s,
                                   clean_start=False,  # MQTT 5 only; 3.1.1 uses clean_session
                                   properties=connect_properties(self._endpoint, True))
        self._client.loop_start()
        self._heartbeat = threading.Thread(target=self._beat, name="kota-heartbeat", daemon=True)
        self._heartbeat.start()

    def set_healthy(self, healthy: Callable[[], bool]) -> None:
        self._healthy = healthy

    def _beat(self) -> None:
        silent = False
        while not self._heartbeat_stop.wait(self._state_interval_s):
            if not self._client.is_connected():
                continue
            if self._healthy is not None and not self._healthy():
                if not silent:
                    log.error("control loop not running: no longer announcing the control room "
                              "online, so edges let controllers fall back to their local plans")
                    silent = True
                continue
            if silent:
                log.info("control loop running again: announcing the control room online")
                silent = False
            self._client.publish(controlroom_state_topic(), self._state("online"), qos=1, retain=True)
            self.heartbeats += 1

    def stop(self) -> None:
        self._stopping = True
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(5)
        if self._client.is_connected():
            info = self._client.publish(controlroom_state_topic(), self._state("offline"), qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        self._client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain)

    # ------------------------------------------------------------------ callbacks (network thread)

    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if reason.is_failure:
            log.error("broker %s refused the connection: %s — check [controlroom.mqtt] credentials",
                      self._endpoint.url, reason)
            return
        filters = [(shared(f, self._shared_group) if self._shared_group else f, qos)
                   for f, qos in CONTROLROOM_SUBSCRIPTIONS]
        client.subscribe(filters)
        client.publish(controlroom_state_topic(), self._state("online"), qos=1, retain=True)
        if self._was_connected:
            log.info("reconnected to MQTT broker %s", self._endpoint.url)
        else:
            log.info("connected to MQTT broker %s (epoch %d)", self._endpoint.url, self.epoch)
        self._was_connected = True
        self.connected.set()

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                      properties: Any) -> None:
        if self.connected.is_set() and not self._stopping:
            log.warning("lost the MQTT broker %s (%s); reconnecting with back-off", self._endpoint.url, reason)
        self.connected.clear()

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._on_message(message.topic, message.payload, message.qos, message.mid)
