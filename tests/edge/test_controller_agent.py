"""The edge agent with real controllers: our pymodbus driver against the emulated controller on
loopback, a real broker (amqtt in-process, and the machine's Mosquitto), a paho recorder standing
in for the control room.

The emulator runs ×40 (a 40 s cycle passes in 1 s); the agent's watchdog timeout is set in the
controller's time (40 s there, 1 s here). The emulator lives in an asyncio loop of its own thread,
as the agent under test is threaded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from devices.controller.codec import Identity, PhaseTiming, Plan
from devices.controller.driver import ControllerClient
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
from edge.settings import ControllerSettings, EdgeSettings
from firmware_sim.controller.clock import RealClock
from firmware_sim.controller.host import ControllerHost, host_config_for
from firmware_sim.controller.program import ControllerConfig, DetectorDiagnostics, DetectorFault
from firmware_sim.controller.server import ControllerEmulator
from kota.cli import main as kota_main

if TYPE_CHECKING:
    from tests.edge.conftest import Received, Recorder

T = TypeVar("T")

SCALE = 40.0
# Unique per run: on a shared Mosquitto an earlier run's retained birth must not match.
EDGE_ID = f"edge-ctl-{uuid.uuid4().hex[:8]}"
IID = "simpang-modbus"
ALL = [("kota/v1/#", 1)]
TIMING = (PhaseTiming(min_green_ds=50, max_green_ds=600, yellow_ds=30, all_red_ds=10),) * 4
LOCAL = Plan.one_phase_per_stage(1, [100, 100, 100, 100])  # 40 s
WATCHDOG_S = 40.0  # controller time: 1 s real at ×40
CYCLE_S = 40.0


def controller_config() -> ControllerConfig:
    ident = Identity("Kota Pintar", "SIM-ATCS", "1.0.0", "KP-EDGE-1", 4, 8,
                     conflicts=Identity.all_conflicting(4),
                     detector_phase=tuple(d % 4 + 1 for d in range(8)))
    # Stuck-on after 2 s of presence (controller time), so a fault shows within a test.
    return ControllerConfig(identity=ident, timing=TIMING, local_plan=LOCAL, watchdog_timeout_ds=300,
                            diagnostics=DetectorDiagnostics(max_presence_ds=20),
                            startup_flash_ds=20, startup_all_red_ds=10)


class EmulatorThread:
    """An asyncio loop in a thread, hosting emulated controllers for a threaded test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="emulators")
        self._thread.start()
        self.emulators: list[ControllerEmulator] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the emulators' loop (the emulator is not thread-safe)."""
        async def wrapper() -> T:
            return fn()
        return self.run(wrapper())

    def start(self) -> ControllerEmulator:
        emu = ControllerEmulator(controller_config(), clock=RealClock(SCALE), name="KP-EDGE-1")
        self.run(emu.start())
        self.emulators.append(emu)
        return emu

    def read(self, what: Callable[[ControllerClient], Coroutine[Any, Any, T]], port: int) -> T:
        """Read the emulator through a separate driver connection (a technician's laptop)."""
        async def go() -> T:
            async with ControllerClient("127.0.0.1", port) as client:
                return await what(client)
        return self.run(go())

    def close(self) -> None:
        for emu in self.emulators:
            self.run(emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture
def emulators() -> Iterator[EmulatorThread]:
    host = EmulatorThread()
    yield host
    host.close()


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[..., EdgeAgent]]:
    agents: list[EdgeAgent] = []

    def make(url: str, port: int, **extra: Any) -> EdgeAgent:
        settings = EdgeSettings(
            edge_id=EDGE_ID,
            mqtt=Endpoint(url=url, keepalive_s=2, reconnect_min_s=0.1, reconnect_max_s=0.5),
            poll_interval_s=0.2,
            state_dir=tmp_path / "edge",
            controllers=[ControllerSettings(intersection_id=IID, host="127.0.0.1", port=port,
                                            timeout_s=0.3, poll_interval_s=0.1,
                                            watchdog_timeout_s=WATCHDOG_S, reconnect_max_s=0.5,
                                            location="Jl. Pemuda x Jl. Pandanaran")],
            **extra,
        )
        agent = EdgeAgent(settings, tmp_path)
        agents.append(agent)
        agent.start()
        return agent

    yield make
    for agent in agents:
        agent.stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or 'condition'}")
        time.sleep(0.02)


def is_event(kind: EventKind, **data: Any) -> Callable[[Received], bool]:
    return lambda m: (isinstance(m.payload, TrafficEvent) and m.payload.kind is kind
                      and m.payload.edge_id == EDGE_ID
                      and all(m.payload.data.get(k) == v for k, v in data.items()))


def is_ack(cmd_id: str, status: str | None = None) -> Callable[[Received], bool]:
    return lambda m: (isinstance(m.payload, CommandAck) and m.payload.cmd_id == cmd_id
                      and m.payload.edge_id == EDGE_ID
                      and (status is None or m.payload.status == status))


def is_telemetry(predicate: Callable[[TrafficTelemetry], bool] = lambda t: True) -> Callable[[Received], bool]:
    return lambda m: (isinstance(m.payload, TrafficTelemetry) and m.payload.edge_id == EDGE_ID
                      and predicate(m.payload))


def command(cmd_id: str, body: PlanBody | OverrideBody, *, expires_in_s: float = 30,
            issuer: str = "controlroom") -> bytes:
    now = utc_now()
    return encode(TrafficCommand(ts=now - timedelta(seconds=1), cmd_id=cmd_id, issuer=issuer,
                                 intersection_id=IID, expires_at=now + timedelta(seconds=expires_in_s),
                                 body=body))


def send(recorder: Recorder, payload: bytes) -> None:
    recorder.publish(command_topic(IID), payload)


def controlroom(recorder: Recorder, status: str) -> None:
    recorder.publish(controlroom_state_topic(),
                     encode(ControlRoomState(ts=utc_now(), status=status, epoch=1)), retain=True)


CENTRAL = PlanBody(plan=7, cycle_s=40, offset_s=0, splits_s=(12, 10, 9, 9))


def test_telemetry_inventory_detectors_and_an_override(
        mqtt_url: str, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
        make_agent: Callable[..., EdgeAgent]) -> None:
    emu = emulators.start()
    port = int(mqtt_url.rsplit(":", 1)[1])
    recorder = make_recorder(port, ALL, client_id=f"rec-{time.monotonic_ns()}")
    agent = make_agent(mqtt_url, emu.port)

    # The birth names the controller, with model and firmware once it has answered.
    births = recorder.wait_for(lambda m: isinstance(m.payload, EdgeState) and m.payload.edge_id == EDGE_ID
                               and any(d.firmware for d in m.payload.inventory))
    [device] = births[0].payload.inventory
    assert (device.kind, device.model, device.firmware, device.intersection_id) == (
        "controller", "Kota Pintar SIM-ATCS", "1.0.0", IID)

    # After the start-up flash the controller runs its local plan, and telemetry says so.
    first = recorder.wait_for(is_telemetry(lambda t: t.epoch == agent.epoch and t.mode == "local_fixed"))[0]
    t = first.payload
    assert t.plan == 1 and len(t.signal) == 4 and len(t.det_count) == 8
    assert [s.value for s in t.signal].count("G") <= 1 and 0 <= (t.cycle_timer_s or 0) < 40

    # Three vehicles over detector 2 are counted once each, across the telemetry messages.
    for _ in range(3):
        emulators.call(lambda: emu.set_presence(2, True))
        time.sleep(0.05)
        emulators.call(lambda: emu.set_presence(2, False))
        time.sleep(0.05)
    wait_until(lambda: sum(m.payload.det_count[1] for m in recorder.where(
        is_telemetry(lambda t: t.epoch == agent.epoch))) >= 3, what="three vehicles counted")
    time.sleep(0.3)
    total = sum(m.payload.det_count[1] for m in recorder.wait_for(
        is_telemetry(lambda t: t.epoch == agent.epoch)))
    assert total == 3

    # A loop stuck on: the controller's diagnostics flag it, the agent reports fault and recovery.
    emulators.call(lambda: emu.set_detector_fault(3, DetectorFault.STUCK_ON))
    recorder.wait_for(is_event(EventKind.DETECTOR_FAULT, detector=3))
    recorder.wait_for(is_telemetry(lambda t: t.det_fault[2]))
    emulators.call(lambda: emu.set_detector_fault(3, DetectorFault.NONE))
    recorder.wait_for(is_event(EventKind.DETECTOR_RECOVERED, detector=3))

    # Hold phase 2: the street (and the telemetry) shows phase 2 green and nothing else.
    send(recorder, command("hold-0000001", OverrideBody(action="hold", phase=2)))
    recorder.wait_for(is_ack("hold-0000001", "applied"))
    assert recorder.where(is_ack("hold-0000001", "accepted"))
    recorder.wait_for(is_telemetry(lambda t: [s.value for s in t.signal] == ["R", "G", "R", "R"]))
    send(recorder, command("release-0000001", OverrideBody(action="release")))
    recorder.wait_for(is_ack("release-0000001", "applied"))


def test_a_vehicle_on_an_idle_loop_is_reported_within_a_scan_and_telemetry_stays_at_its_interval(
        mqtt_url: str, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
        tmp_path: Path) -> None:
    """Telemetry every 2 s, scans every 0.25 s: a vehicle on an idle loop goes out in an early
    report, not with the next regular one; a second jump within early_report_gap_s waits for
    the regular report; every vehicle is counted once across the messages."""
    emu = emulators.start()
    port = int(mqtt_url.rsplit(":", 1)[1])
    recorder = make_recorder(port, ALL, client_id=f"rec-{time.monotonic_ns()}")
    settings = EdgeSettings(
        edge_id=EDGE_ID, mqtt=Endpoint(url=mqtt_url, keepalive_s=2), state_dir=tmp_path / "edge",
        controllers=[ControllerSettings(intersection_id=IID, host="127.0.0.1", port=emu.port,
                                        poll_interval_s=2.0, scan_interval_s=0.25,
                                        early_report_gap_s=30, watchdog_timeout_s=WATCHDOG_S)])
    agent = EdgeAgent(settings, tmp_path)
    agent.start()
    try:
        def mine(t: TrafficTelemetry) -> bool:
            return t.epoch == agent.epoch

        def vehicle(detector: int) -> datetime:
            at = utc_now()
            emulators.call(lambda: emu.set_presence(detector, True))
            time.sleep(0.02)
            emulators.call(lambda: emu.set_presence(detector, False))
            return at

        # Steady state: one message per 2 s, not one per scan.
        recorder.wait_for(is_telemetry(lambda t: mine(t) and t.mode == "local_fixed"))
        before = len(recorder.wait_for(is_telemetry(mine)))
        time.sleep(4.0)
        regular = len(recorder.wait_for(is_telemetry(mine))) - before
        assert 1 <= regular <= 3, f"{regular} telemetry messages in 4 s at a 2 s interval"

        # Just after a regular report, a vehicle on idle loop 2: reported within about a scan.
        last = len(recorder.wait_for(is_telemetry(mine)))
        recorder.wait_for(is_telemetry(mine), count=last + 1)
        sent = vehicle(2)
        [early] = recorder.wait_for(is_telemetry(lambda t: mine(t) and t.det_count[1] > 0))
        assert (early.payload.ts - sent).total_seconds() < 1.2, "not reported early"

        # A second jump within the early-report budget waits for the regular report.
        time.sleep(0.05)
        sent = vehicle(3)
        [later] = recorder.wait_for(is_telemetry(lambda t: mine(t) and t.det_count[2] > 0))
        assert (later.payload.ts - early.payload.ts).total_seconds() >= 1.5, "a second early report"

        time.sleep(2.1)
        counted = [sum(m.payload.det_count[d] for m in recorder.wait_for(is_telemetry(mine)))
                   for d in range(8)]
        assert counted == [0, 1, 1, 0, 0, 0, 0, 0]
    finally:
        agent.stop()


def test_plans_are_applied_and_bad_commands_change_nothing(
        mqtt_url: str, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
        make_agent: Callable[..., EdgeAgent]) -> None:
    emu = emulators.start()
    port = int(mqtt_url.rsplit(":", 1)[1])
    recorder = make_recorder(port, ALL, client_id=f"rec-{time.monotonic_ns()}")
    agent = make_agent(mqtt_url, emu.port, command_issuers=["controlroom", "operator-*"])
    recorder.wait_for(is_telemetry(lambda t: t.epoch == agent.epoch and t.mode == "local_fixed"))

    send(recorder, command("plan-0000007", CENTRAL))
    [accepted] = recorder.wait_for(is_ack("plan-0000007", "accepted"))
    [applied] = recorder.wait_for(is_ack("plan-0000007", "applied"))
    assert accepted.payload.seq < applied.payload.seq
    # Committed now, in force from the controller's next cycle boundary (≤ 1 s here).
    recorder.wait_for(is_telemetry(lambda t: t.mode == "central" and t.plan == 7), timeout_s=5)
    running = emulators.call(lambda: emu.program.running_plan)
    assert (running.number, running.splits_ds) == (7, (120, 100, 90, 90))
    last_seq = emulators.call(lambda: emu.program.status(emu.clock.now_ds()).last_seq)

    # Unsafe (a 8 s split leaves 4 s of green, below the 5 s minimum): refused before anything
    # is written, with the controller's own reason; no "accepted".
    unsafe = PlanBody(plan=8, cycle_s=40, offset_s=0, splits_s=(8, 12, 10, 10))
    send(recorder, command("plan-unsafe-8", unsafe))
    [rejected] = recorder.wait_for(is_ack("plan-unsafe-8", "rejected"))
    assert "MIN_GREEN" in rejected.payload.reason and "minimum green" in rejected.payload.reason
    # Expired, forged issuer, unknown shape: rejected with a reason.
    send(recorder, command("plan-expired", CENTRAL.model_copy(update={"plan": 9}), expires_in_s=-0.5))
    assert "expired" in recorder.wait_for(is_ack("plan-expired", "rejected"))[0].payload.reason
    send(recorder, command("plan-forged", CENTRAL.model_copy(update={"plan": 10}), issuer="mallory"))
    assert "not allowed" in recorder.wait_for(is_ack("plan-forged", "rejected"))[0].payload.reason
    three = PlanBody(plan=11, cycle_s=40, offset_s=0, splits_s=(14, 13, 13))
    send(recorder, command("plan-3-splits", three, issuer="operator-2"))
    assert "3 splits for a 4-phase" in recorder.wait_for(is_ack("plan-3-splits", "rejected"))[0].payload.reason
    for cmd_id in ("plan-unsafe-8", "plan-expired", "plan-forged", "plan-3-splits"):
        assert not recorder.where(is_ack(cmd_id, "accepted")), cmd_id
    # Nothing reached the controller: no command, the shadow block still holds plan 7.
    assert emulators.call(lambda: emu.program.status(emu.clock.now_ds()).last_seq) == last_seq
    shadow = emulators.read(lambda c: c.plan("shadow"), emu.port)
    assert shadow.number == 7

    # A redelivered command is answered again and not applied twice.
    send(recorder, command("plan-0000007", CENTRAL))
    recorder.wait_for(is_ack("plan-0000007", "applied"), count=2)
    assert emulators.call(lambda: emu.program.status(emu.clock.now_ds()).last_seq) == last_seq
    assert emulators.call(lambda: emu.program.running_plan.number) == 7


class Heartbeat:
    """The control room's liveness signal: its retained online state, re-published every 0.4 s."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self.beating = threading.Event()
        self._lock = threading.Lock()  # held while a beat is on its way
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop_beating(self) -> None:
        """No beat after this returns (one already on its way has reached the broker)."""
        with self._lock:
            self.beating.clear()

    def _run(self) -> None:
        while not self._stop.wait(0.4):
            with self._lock:
                if self.beating.is_set():
                    controlroom(self._recorder, "online")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def central(broker: Any, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
            make_agent: Callable[..., EdgeAgent]) -> Iterator[tuple[ControllerEmulator, Recorder, EdgeAgent, Heartbeat]]:
    """A controller under central plan 7, its agent (liveness window 1.5 s) and a beating heart.

    On the test's own broker only: ``controlroom/state`` is one topic per broker, and on a shared
    Mosquitto any other session's control room announcing itself would keep the agent feeding.
    """
    emu = emulators.start()
    recorder = make_recorder(broker.port, ALL)
    heart = Heartbeat(recorder)
    heart.beating.set()
    agent = make_agent(broker.url, emu.port, controlroom_liveness_s=LIVENESS_S)
    recorder.wait_for(is_telemetry(lambda t: t.epoch == agent.epoch and t.mode == "local_fixed"))
    send(recorder, command("plan-0000007", CENTRAL))
    recorder.wait_for(is_telemetry(lambda t: t.mode == "central" and t.plan == 7), timeout_s=5)
    yield emu, recorder, agent, heart
    heart.close()


LIVENESS_S = 1.5


def test_a_silent_control_room_lets_the_controller_fall_back_and_its_return_resumes_central(
        emulators: EmulatorThread,
        central: tuple[ControllerEmulator, Recorder, EdgeAgent, Heartbeat]) -> None:
    emu, recorder, agent, heart = central
    kicks = agent.controllers[IID].watchdog.kicks
    requests = agent.controllers[IID].client.requests
    time.sleep(WATCHDOG_S / SCALE + 0.3)  # longer than the watchdog: the kicks keep it central
    assert emulators.call(lambda: emu.program.running_plan.number) == 7
    assert agent.controllers[IID].watchdog.feeding
    # Kicked when under two thirds of the watchdog is left, not on every poll (10 a second).
    kicked = agent.controllers[IID].watchdog.kicks - kicks
    assert 1 <= kicked <= 0.5 * (agent.controllers[IID].client.requests - requests - kicked)

    # The control room hangs: still "online", but silent. After the liveness window the agent
    # stops feeding; the watchdog expires 1 s later; the controller takes its local plan at the
    # next cycle boundary, and the agent reports the fallback.
    heart.stop_beating()
    hung = time.monotonic()
    [fallback] = recorder.wait_for(is_event(EventKind.FALLBACK, active=True), timeout_s=8)
    took_s = time.monotonic() - hung
    assert took_s < LIVENESS_S + WATCHDOG_S / SCALE + 1.0, took_s
    assert not agent.controllers[IID].watchdog.feeding
    assert "silent" in agent.controllers[IID].watchdog.reason
    recorder.wait_for(is_telemetry(lambda t: t.mode == "local_fixed" and t.plan == 1
                                   and t.seq > fallback.payload.seq), timeout_s=5)
    assert emulators.call(lambda: emu.program.running_plan.number) == 1
    assert agent.status()["devices"][IID]["watchdog"]["expired"]

    # It speaks again: feeding resumes and central control comes back at the next boundary.
    heart.beating.set()
    recorder.wait_for(is_event(EventKind.FALLBACK, active=False), timeout_s=5)
    recorder.wait_for(is_telemetry(lambda t: t.mode == "central" and t.plan == 7
                                   and t.seq > fallback.payload.seq), timeout_s=5)
    assert agent.controllers[IID].watchdog.feeding


def test_a_dead_control_room_lets_the_controller_fall_back_and_no_event_is_lost(
        emulators: EmulatorThread,
        central: tuple[ControllerEmulator, Recorder, EdgeAgent, Heartbeat]) -> None:
    emu, recorder, agent, heart = central
    # The control room dies: its will sets the retained state offline. Feeding stops at once.
    heart.stop_beating()
    controlroom(recorder, "offline")
    died = time.monotonic()
    wait_until(lambda: emulators.call(lambda: emu.program.running_plan.number) == 1, timeout_s=5,
               what="local plan in force")
    # Watchdog plus at most one cycle (offset correction may stretch it by 20 %) to the safe point.
    assert time.monotonic() - died < (WATCHDOG_S + 1.2 * CYCLE_S) / SCALE + 1.0
    assert not agent.controllers[IID].watchdog.feeding
    assert agent.controllers[IID].watchdog.reason == "control room offline"

    # The edge holds its messages while the control room is away; on its return the fallback
    # event arrives, and central control resumes.
    controlroom(recorder, "online")
    recorder.wait_for(is_event(EventKind.FALLBACK, active=True), timeout_s=5)
    recorder.wait_for(is_event(EventKind.FALLBACK, active=False), timeout_s=5)
    wait_until(lambda: emulators.call(lambda: emu.program.running_plan.number) == 7, timeout_s=5,
               what="central plan again")


def test_an_unreachable_controller_is_reported_and_shown_by_kota_edge_status(
        broker: Any, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
        make_agent: Callable[..., EdgeAgent], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emu = emulators.start()
    recorder = make_recorder(broker.port, ALL)
    agent = make_agent(broker.url, emu.port)
    state_dir = str(tmp_path / "edge")
    recorder.wait_for(is_telemetry(lambda t: t.mode == "local_fixed"))
    status_file = tmp_path / "edge" / "status.json"

    def shown_available() -> bool:  # the file is rewritten every 0.2 s: it may lag the telemetry
        try:
            device = json.loads(status_file.read_text())["devices"][IID]
        except FileNotFoundError:
            return False
        return device["available"] and device["mode"] == "local_fixed"
    wait_until(shown_available, what="status file showing the controller on its local plan")
    assert kota_main(["edge", "status", "--state-dir", state_dir]) == 0
    table = capsys.readouterr().out
    assert IID in table and "127.0.0.1:" in table and "Kota Pintar SIM-ATCS 1.0.0" in table
    assert "local_fixed" in table and "feeding" in table

    # The cable is cut: requests vanish, the driver times out.
    emulators.call(lambda: emu.drop_comms())
    [offline] = recorder.wait_for(is_event(EventKind.DEVICE_OFFLINE), timeout_s=5)
    assert "ControllerTimeout" in offline.payload.detail or "controller" in offline.payload.detail
    wait_until(lambda: agent.status()["devices"][IID]["consecutive_errors"] >= 2)
    time.sleep(0.5)  # the status file catches up (rewritten every 0.2 s)
    assert kota_main(["edge", "status", "--state-dir", state_dir, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    device = shown["devices"][IID]
    assert shown["running"] and not device["available"] and device["consecutive_errors"] >= 2
    assert device["last_error"] and device["address"].startswith("127.0.0.1:")
    assert device["model"] == "Kota Pintar SIM-ATCS" and device["watchdog"]["timeout_s"] == WATCHDOG_S
    assert kota_main(["edge", "status", "--state-dir", state_dir]) == 0
    table = capsys.readouterr().out
    assert "OFFLINE" in table and "last errors:" in table

    emulators.call(lambda: emu.restore_comms())
    recorder.wait_for(is_event(EventKind.DEVICE_ONLINE), timeout_s=5)
    wait_until(lambda: agent.status()["devices"][IID]["consecutive_errors"] == 0)

    agent.stop()
    assert kota_main(["edge", "status", "--state-dir", state_dir]) == 1
    assert "not running" in capsys.readouterr().err


def test_a_controller_in_fail_safe_flash_refuses_in_its_own_words(
        broker: Any, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
        make_agent: Callable[..., EdgeAgent]) -> None:
    emu = emulators.start()
    recorder = make_recorder(broker.port, ALL)
    make_agent(broker.url, emu.port)
    recorder.wait_for(is_telemetry(lambda t: t.mode == "local_fixed"))

    # A green lamp driver sticks on: the conflict monitor puts the controller into fail-safe
    # flash, and the agent reports the alarm and the mode.
    emulators.call(lambda: emu.inject_lamp_fault(3))
    alarms = recorder.wait_for(lambda m: is_event(EventKind.CONFLICT, active=True)(m)
                               or is_event(EventKind.CONTROLLER_ALARM, alarm="internal_fault")(m))
    assert all(a.payload.severity == "critical" for a in alarms)
    recorder.wait_for(is_telemetry(lambda t: t.mode == "flash"))

    # The plan is safe by the controller's limits, so the agent accepts it; the controller then
    # refuses it (only CLEAR_FAULT in fault flash), and the ack carries its reason.
    send(recorder, command("plan-in-flash", CENTRAL))
    recorder.wait_for(is_ack("plan-in-flash", "accepted"))
    [rejected] = recorder.wait_for(is_ack("plan-in-flash", "rejected"))
    assert "NOT_PERMITTED" in rejected.payload.reason
    assert "not allowed in the controller's current state" in rejected.payload.reason
    assert emulators.call(lambda: emu.program.running_plan.number) == 1


def test_one_agent_polls_fifty_controllers_over_one_event_loop(
        broker: Any, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
        tmp_path: Path) -> None:
    host = ControllerHost(host_config_for(50, time_scale=SCALE, detectors=8, traffic_level=2.0))
    emulators.run(host.start())
    try:
        recorder = make_recorder(broker.port, ALL)
        settings = EdgeSettings(
            edge_id=EDGE_ID, mqtt=Endpoint(url=broker.url, keepalive_s=2), poll_interval_s=0.5,
            state_dir=tmp_path / "fleet",
            controllers=[ControllerSettings(intersection_id=f"simpang-{name}", host="127.0.0.1",
                                            port=port, poll_interval_s=0.25, watchdog_timeout_s=60)
                         for name, port in host.ports.items()])
        agent = EdgeAgent(settings, tmp_path)
        agent.start()
        try:
            ids = {c.intersection_id for c in settings.controllers}
            wait_until(lambda: {m.payload.intersection_id for m in recorder.where(
                is_telemetry(lambda t: t.mode == "local_fixed"))} == ids, timeout_s=8,
                what="telemetry from every controller")
            before = agent.status()["devices"]
            time.sleep(3.0)
            after = agent.status()["devices"]
            assert all(d["available"] and d["consecutive_errors"] == 0 for d in after.values())
            # Every controller polled about four times a second (a poll is a read and a kick),
            # none starved by the others on the shared loop: over three seconds each gets at
            # least half its share even on a busy two-core machine (one poll in a second was
            # seen there; a starved one gets none).
            done = [after[i]["requests"] - before[i]["requests"] for i in ids]
            assert min(done) >= 6, done
            recorder.wait_for(lambda m: isinstance(m.payload, EdgeState) and m.payload.edge_id == EDGE_ID
                              and len([d for d in m.payload.inventory if d.firmware]) == 50)
            # Counts flow: the built-in traffic crossed some detectors.
            assert sum(sum(m.payload.det_count) for m in recorder.where(is_telemetry())) > 0
        finally:
            agent.stop()
    finally:
        emulators.run(host.stop())


def test_a_lost_broker_link_stops_the_feeding_and_the_fallback_is_reported_after_it(
        broker: Any, gate: Any, emulators: EmulatorThread, make_recorder: Callable[..., Recorder],
        make_agent: Callable[..., EdgeAgent]) -> None:
    emu = emulators.start()
    recorder = make_recorder(broker.port, ALL)
    agent = make_agent(gate.url, emu.port)  # the agent reaches the broker through a cuttable gate
    recorder.wait_for(is_telemetry(lambda t: t.mode == "local_fixed"))
    send(recorder, command("plan-0000007", CENTRAL))
    recorder.wait_for(is_telemetry(lambda t: t.mode == "central" and t.plan == 7), timeout_s=5)

    gate.close()  # the edge box loses its uplink; the controller is still on the local network
    cut = time.monotonic()
    wait_until(lambda: emulators.call(lambda: emu.program.running_plan.number) == 1, timeout_s=5,
               what="local plan in force")
    assert time.monotonic() - cut < (WATCHDOG_S + 1.2 * CYCLE_S) / SCALE + 1.0
    assert agent.controllers[IID].watchdog.reason == "broker link down"

    # Back online: the retained control-room state on the new connection resumes the feeding,
    # the buffered fallback event arrives, and central control returns.
    gate.open()
    recorder.wait_for(is_event(EventKind.FALLBACK, active=True), timeout_s=8)
    recorder.wait_for(is_event(EventKind.FALLBACK, active=False), timeout_s=5)
    wait_until(lambda: emulators.call(lambda: emu.program.running_plan.number) == 7, timeout_s=5,
               what="central plan again")
