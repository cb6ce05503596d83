"""The edge agent against a real broker (amqtt in-process): birth and will, telemetry, events,
commands, and delivery of every QoS 1 message across a broker outage and an agent restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from edge.app import EdgeAgent
from edge.contract import (
    CommandAck,
    ControlRoomState,
    EdgeState,
    EventKind,
    OverrideBody,
    PlanBody,
    TrafficCommand,
    TrafficEvent,
    TrafficTelemetry,
    command_topic,
    controlroom_state_topic,
    encode,
    utc_now,
)
from edge.contract import MqttEndpoint as Endpoint
from edge.settings import EdgeSettings, SimulatedIntersectionSettings

if TYPE_CHECKING:  # the peers come from tests/edge/conftest.py as fixtures
    from tests.edge.conftest import Received, Recorder, TcpGate, ThreadedBroker

EDGE_ID = "edge-t1"
IID = "simpang-1"
ALL = [("kota/v1/#", 1)]


def edge_settings(url: str) -> EdgeSettings:
    return EdgeSettings(
        edge_id=EDGE_ID,
        mqtt=Endpoint(url=url, keepalive_s=2, reconnect_min_s=0.1, reconnect_max_s=0.5),
        poll_interval_s=0.1,
        simulated=[SimulatedIntersectionSettings(intersection_id=IID, detectors=4)],
    )


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[[str], EdgeAgent]]:
    agents: list[EdgeAgent] = []

    def make(url: str) -> EdgeAgent:
        agent = EdgeAgent(edge_settings(url), tmp_path)
        agents.append(agent)
        agent.start()
        return agent

    yield make
    for agent in agents:
        agent.stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def is_state(m: Received) -> bool:
    return isinstance(m.payload, EdgeState)


def is_event(kind: EventKind) -> Callable[[Received], bool]:
    return lambda m: isinstance(m.payload, TrafficEvent) and m.payload.kind is kind


def is_ack(cmd_id: str) -> Callable[[Received], bool]:
    return lambda m: isinstance(m.payload, CommandAck) and m.payload.cmd_id == cmd_id


def command(cmd_id: str, body: PlanBody | OverrideBody, expires_in_s: float = 30) -> bytes:
    now = utc_now()
    return encode(TrafficCommand(ts=now, cmd_id=cmd_id, issuer="operator-1", intersection_id=IID,
                                 expires_at=now + timedelta(seconds=expires_in_s), body=body))


def test_birth_telemetry_and_events(broker: ThreadedBroker, make_recorder: Callable[..., Recorder],
                                    make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(broker.url)
    wait_until(lambda: agent.link.connected)
    # The recorder subscribes after the birth, so it gets it retained; its own "control room
    # online" then reaches the agent live and earns a second, live birth (same conn).
    recorder = make_recorder(broker.port, ALL)
    [birth] = recorder.wait_for(lambda m: is_state(m) and m.retain)
    assert (birth.payload.status, birth.payload.epoch, birth.payload.conn) == ("online", agent.epoch, agent.link.conn)
    assert [d.intersection_id for d in birth.payload.inventory] == [IID]

    telemetry = recorder.wait_for(lambda m: isinstance(m.payload, TrafficTelemetry), count=5)
    seqs = [m.payload.seq for m in telemetry]
    assert seqs == sorted(set(seqs))
    assert {(m.payload.edge_id, m.payload.epoch, m.payload.intersection_id) for m in telemetry} == {
        (EDGE_ID, agent.epoch, IID)}
    assert all(len(m.payload.signal) == 4 and len(m.payload.det_count) == 4 for m in telemetry)

    agent.devices[IID].set_detector_fault(0, True)
    [fault] = recorder.wait_for(is_event(EventKind.DETECTOR_FAULT))
    assert fault.payload.data == {"detector": 1} and not fault.retain

    agent.devices[IID].set_offline(True)
    [offline] = recorder.wait_for(is_event(EventKind.DEVICE_OFFLINE))
    time.sleep(0.5)
    agent.devices[IID].set_offline(False)
    [online] = recorder.wait_for(is_event(EventKind.DEVICE_ONLINE))
    between = [m.payload.seq for m in recorder.where(lambda m: isinstance(m.payload, TrafficTelemetry))
               if offline.payload.seq < m.payload.seq < online.payload.seq]
    assert between == [], "no telemetry while the device is unavailable"
    status = agent.status()
    assert status["connected"] and status["epoch"] == agent.epoch
    assert status["devices"][IID]["available"] and status["devices"][IID]["last_error"].startswith("DeviceUnavailable")


def test_every_event_of_a_broker_outage_arrives(broker: ThreadedBroker, gate: TcpGate, recorder: Recorder,
                                                start_broker: Callable[[int], ThreadedBroker],
                                                make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(gate.url)
    recorder.wait_for(is_state)
    device = agent.devices[IID]

    broker.stop()
    gate.close()  # the test holds the agent back until the recorder is subscribed to the new broker
    wait_until(lambda: not agent.link.connected)
    for n in range(6):
        device.set_detector_fault(1, n % 2 == 0)
        time.sleep(0.3)
    wait_until(lambda: agent.status()["outbox"]["reliable"] >= 6)
    assert agent.status()["outbox"]["telemetry"] > 0, "telemetry is buffered too"

    start_broker(broker.port)  # a new broker, knowing nothing of the old one's sessions
    assert recorder.subscribed.wait(10)
    gate.open()
    faults = recorder.wait_for(is_event(EventKind.DETECTOR_FAULT), count=3)
    recovered = recorder.wait_for(is_event(EventKind.DETECTOR_RECOVERED), count=3)
    assert {m.payload.data["detector"] for m in faults + recovered} == {2}
    assert len({m.payload.seq for m in faults + recovered}) == 6
    wait_until(lambda: agent.status()["outbox"]["reliable"] == 0 and agent.link.inflight == 0)


def test_will_on_connection_loss_and_birth_with_a_higher_conn(gate: TcpGate, recorder: Recorder,
                                                              make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(gate.url)
    [birth] = recorder.wait_for(is_state)
    gate.close()  # no DISCONNECT reaches the broker: it publishes the will
    [_, will] = recorder.wait_for(is_state, count=2)
    assert (will.payload.status, will.payload.epoch, will.payload.conn) == ("offline", agent.epoch, birth.payload.conn)
    gate.open()
    [_, _, rebirth] = recorder.wait_for(is_state, count=3)
    assert rebirth.payload.status == "online" and rebirth.payload.epoch == agent.epoch
    assert rebirth.payload.conn > will.payload.conn
    # Ordered by (epoch, conn) with offline winning ties, the latest state is "online".
    latest = max((m.payload for m in recorder.where(is_state)),
                 key=lambda s: (s.epoch, s.conn, s.status == "offline"))
    assert latest.status == "online"


def test_graceful_stop_leaves_offline_retained(broker: ThreadedBroker, recorder: Recorder,
                                              make_recorder: Callable[..., Recorder],
                                              make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(broker.url)
    [birth] = recorder.wait_for(is_state)
    agent.stop()
    late = make_recorder(broker.port, [("kota/v1/edge/+/state", 1)], "late-recorder")
    [retained] = late.wait_for(is_state)
    assert retained.retain
    assert (retained.payload.status, retained.payload.epoch, retained.payload.conn) == (
        "offline", birth.payload.epoch, birth.payload.conn)


def test_messages_of_a_run_that_never_connected_go_out_in_the_next_run(
        gate: TcpGate, recorder: Recorder, tmp_path: Path) -> None:
    gate.close()  # the broker is unreachable from the start
    first = EdgeAgent(edge_settings(gate.url), tmp_path)
    first.start()
    try:
        first.devices[IID].set_detector_fault(3, True)
        wait_until(lambda: first.status()["outbox"]["reliable"] >= 1)
        assert not first.link.connected
    finally:
        first.stop()

    second = EdgeAgent(edge_settings(gate.url), tmp_path)
    assert second.epoch == first.epoch + 1
    gate.open()
    second.start()
    try:
        [fault] = recorder.wait_for(is_event(EventKind.DETECTOR_FAULT))
        assert fault.payload.epoch == first.epoch, "the stored message keeps its epoch and seq"
        births = recorder.wait_for(lambda m: is_state(m) and m.payload.status == "online")
        assert births[-1].payload.epoch == second.epoch
    finally:
        second.stop()


def test_commands_are_acked_accepted_then_applied_or_rejected(
        broker: ThreadedBroker, recorder: Recorder, make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(broker.url)
    recorder.wait_for(is_state)
    topic = command_topic(IID)

    recorder.publish(topic, command("cmd-flash-0001", OverrideBody(action="flash")))
    acks = recorder.wait_for(is_ack("cmd-flash-0001"), count=2)
    assert [a.payload.status for a in acks] == ["accepted", "applied"]
    assert acks[0].payload.target_id == IID and acks[0].payload.epoch == agent.epoch
    recorder.wait_for(lambda m: isinstance(m.payload, TrafficTelemetry) and m.payload.mode == "flash")
    [change] = recorder.wait_for(is_event(EventKind.MODE_CHANGE))
    assert change.payload.data == {"from": "local_fixed", "to": "flash"}

    recorder.publish(topic, command("cmd-flash-0001", OverrideBody(action="flash")))  # redelivered
    acks = recorder.wait_for(is_ack("cmd-flash-0001"), count=3)
    assert [a.payload.status for a in acks] == ["accepted", "applied", "applied"], "answered, not redone"

    bad_plan = PlanBody(plan=2, cycle_s=60, offset_s=0, splits_s=(30, 30))
    recorder.publish(topic, command("cmd-plan-0002", bad_plan))
    acks = recorder.wait_for(is_ack("cmd-plan-0002"), count=2)
    assert [a.payload.status for a in acks] == ["accepted", "rejected"]
    assert "2 splits" in acks[1].payload.reason

    good_plan = PlanBody(plan=2, cycle_s=60, offset_s=0, splits_s=(20, 20, 10, 10))
    recorder.publish(topic, command("cmd-plan-0003", good_plan))
    assert [a.payload.status for a in recorder.wait_for(is_ack("cmd-plan-0003"), count=2)] == ["accepted", "applied"]

    recorder.publish(topic, _expired("cmd-late-0004"))
    [late] = recorder.wait_for(is_ack("cmd-late-0004"))
    assert late.payload.status == "rejected" and "expired" in late.payload.reason

    recorder.publish(topic, b'{"cmd_id": "cmd-junk-0005", "body": 3}')
    [junk] = recorder.wait_for(is_ack("cmd-junk-0005"))
    assert junk.payload.status == "rejected" and junk.payload.reason.startswith("schema")

    recorder.publish(topic, b"\xff not json")
    time.sleep(0.3)
    assert agent.status()["connected"], "garbage changes nothing"


def _expired(cmd_id: str) -> bytes:
    """A command that was valid when issued and is past its expiry on arrival."""
    issued = utc_now() - timedelta(seconds=60)
    return encode(TrafficCommand(ts=issued, cmd_id=cmd_id, issuer="operator-1", intersection_id=IID,
                                 expires_at=issued + timedelta(seconds=30), body=OverrideBody(action="release")))


def test_a_new_control_room_run_gets_a_fresh_birth(broker: ThreadedBroker, recorder: Recorder,
                                                   make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(broker.url)
    [birth] = recorder.wait_for(is_state)
    announce = encode(ControlRoomState(ts=utc_now(), status="online", epoch=1_800_000_000_000))
    recorder.publish(controlroom_state_topic(), announce)
    births = recorder.wait_for(is_state, count=2)
    assert births[1].payload.status == "online" and births[1].payload.conn == birth.payload.conn
    assert births[1].payload.seq > birth.payload.seq
    recorder.publish(controlroom_state_topic(), announce)  # the same run again: nothing new
    time.sleep(0.3)
    assert len(recorder.where(is_state)) == 2
    assert agent.link.connected


def test_unacknowledged_messages_are_resent_after_a_reconnect(
        gate: TcpGate, recorder: Recorder, make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(gate.url)
    recorder.wait_for(is_state)
    gate.hold_replies()  # the broker gets the events, the agent never sees their PUBACKs
    agent.devices[IID].set_detector_fault(2, True)
    recorder.wait_for(is_event(EventKind.DETECTOR_FAULT))
    wait_until(lambda: agent.link.inflight >= 1 and agent.status()["outbox"]["reliable"] >= 1)

    gate.close()
    gate.open()
    wait_until(lambda: agent.status()["outbox"]["reliable"] == 0 and agent.link.inflight == 0)
    wait_until(lambda: len(recorder.where(is_event(EventKind.DETECTOR_FAULT))) >= 2)
    copies = recorder.where(is_event(EventKind.DETECTOR_FAULT))
    assert len({(m.payload.epoch, m.payload.seq) for m in copies}) == 1, "a resend is the same message"
    assert len(recorder.wait_for(is_event(EventKind.DETECTOR_FAULT))) == 1


KILLED_AGENT = """
import sys, time
from pathlib import Path
from edge.app import EdgeAgent
from edge.settings import EdgeSettings

agent = EdgeAgent(EdgeSettings.model_validate_json(sys.argv[1]), Path(sys.argv[2]))
agent.start()
n = 0
while True:
    agent.devices[sys.argv[3]].set_detector_fault(0, n % 2 == 0)
    n += 1
    time.sleep(0.25)
    print(agent.status()["outbox"]["reliable"], flush=True)
"""


def test_events_stored_before_a_kill_9_are_sent_by_the_next_run(
        gate: TcpGate, recorder: Recorder, tmp_path: Path) -> None:
    gate.close()
    settings = edge_settings(gate.url)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_AGENT, settings.model_dump_json(), str(tmp_path), IID],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    stored = 0
    for line in proc.stdout:
        stored = int(line)
        if stored >= 4:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(10)
    assert stored >= 4

    agent = EdgeAgent(settings, tmp_path)
    assert agent.epoch == 2
    gate.open()
    agent.start()
    try:
        events = recorder.wait_for(lambda m: isinstance(m.payload, TrafficEvent) and m.payload.epoch == 1,
                                   count=stored)
        assert {m.payload.kind for m in events} <= {EventKind.DETECTOR_FAULT, EventKind.DETECTOR_RECOVERED}
        wait_until(lambda: agent.status()["outbox"]["reliable"] == 0)
    finally:
        agent.stop()


def test_outbox_is_held_while_the_control_room_is_offline(broker: ThreadedBroker, recorder: Recorder,
                                                          make_agent: Callable[[str], EdgeAgent]) -> None:
    agent = make_agent(broker.url)
    recorder.wait_for(lambda m: isinstance(m.payload, TrafficTelemetry), count=2)
    # the control room's will: it is gone, so nothing would be stored
    recorder.publish(controlroom_state_topic(),
                     encode(ControlRoomState(ts=utc_now(), status="offline", epoch=1)), retain=True)
    time.sleep(0.3)
    held_from = max(m.payload.seq for m in recorder.where(lambda m: isinstance(m.payload, TrafficTelemetry)))
    agent.devices[IID].set_detector_fault(1, True)
    time.sleep(1.0)
    later = [m for m in recorder.where(lambda m: isinstance(m.payload, (TrafficTelemetry, TrafficEvent)))
             if m.payload.seq > held_from + 1]
    assert later == [], "messages left the outbox while no control room listened"
    assert agent.status()["outbox"]["reliable"] >= 1
    # back online: the held event and telemetry go out, in order
    recorder.publish(controlroom_state_topic(),
                     encode(ControlRoomState(ts=utc_now(), status="online", epoch=2)), retain=True)
    [fault] = recorder.wait_for(is_event(EventKind.DETECTOR_FAULT))
    assert fault.payload.data == {"detector": 2}
