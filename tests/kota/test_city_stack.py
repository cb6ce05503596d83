"""The closed loop as deployed, on loopback: SUMO and the emulated controllers in this process,
and as real processes the broker (`kota broker`, or the machine's Mosquitto), the control room
(`kota controlroom run`) and two edge agents (`kota edge run`), with PostgreSQL (the embedded
server, or the machine's). The tests run in order on one stack per backend:

1. the control room's adaptive plans reach the controllers (central mode, the plan sent) and
   SUMO's lamps follow their greens;
2. forged, expired and unsafe commands are rejected with a reason and change nothing;
3. a detector stuck on is detected by the controller, reported by the edge, raised as an alarm
   and no longer trusted by the core;
4. the control room killed (SIGKILL): every controller falls back to its local plan within the
   will delay plus its watchdog, and the edges report it;
5. the control room back: adaptive control resumes and the fallback events are stored.

SUMO runs at ×10 (a 60 s SUMO cycle in 6 real seconds); see `kota.city` on time scales.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as mqtt
import psycopg
import pytest

from devices.controller.registers import ALARM_BITS, UnitMode
from edge.contract import PlanBody, TrafficCommand, command_topic, encode, utc_now
from edge.status import read_status
from firmware_sim.controller.program import DetectorFault
from kota.city import CityStack, StackOptions, _http_json
from kota.settings import Settings
from simulators.city import CityOptions, CityWorld, DemoCity, write_demo_city
from tests.conftest import SYSTEM_MQTT, SYSTEM_PG, _system_or_skip

pytestmark = pytest.mark.slow

SCALE = 10.0
WATCHDOG_S = 60.0  # SUMO seconds: 6 real seconds at ×10, a few edge polls of margin
KEEPALIVE_S = 2  # a killed control room's will comes 1.5 × 2 s later
BEGIN_S = 6 * 3600.0
LOCAL_GREEN_S = 30.0  # the demo city's own program: every light's local plan

BACKENDS = [
    pytest.param(("embedded", "embedded"), id="embedded-broker+embedded-pg"),
    pytest.param(("mosquitto", "system"), id="mosquitto+system-pg", marks=pytest.mark.system),
]


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


class Watcher:
    """An MQTT client of the test's own: every event and ack the edges publish."""

    def __init__(self, url: str) -> None:
        from edge.contract import MqttEndpoint

        ep = MqttEndpoint(url=url)
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-watch-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe([("kota/v1/traffic/+/event", 1),
                                                            ("kota/v1/traffic/+/cmd_ack", 1)])
        self.client.connect(ep.host, ep.port, 10)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, {**json.loads(msg.payload),
                                                                   "_at": time.monotonic()}))

    def of(self, leaf: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for t, m in self.messages if t.endswith("/" + leaf)]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@contextlib.contextmanager
def running_stack(server: str, root: Path, tag: str, *, seed: int, duration_s: float,
                  time_scale: float, mqtt_url: str | None = None, watchdog_s: float,
                  keepalive_s: int) -> Iterator[CityStack]:
    """The demo city's closed loop in a scratch database on ``server``, stopped and dropped
    after; no child may survive the stop."""
    name = f"kota_city_{tag}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    files = write_demo_city(root / "city", seed=seed, city=DemoCity(duration_s=duration_s))
    world = CityWorld.of_city(files, CityOptions(time_scale=time_scale, seed=seed,
                                                 end_s=BEGIN_S + duration_s))
    options = StackOptions(
        run_dir=root / "run", mqtt_url=mqtt_url, database_url=url, edges=2,
        edge_prefix=f"edge-{tag}", controlroom_client_id=f"cr-{tag}", watchdog_s=watchdog_s,
        keepalive_s=keepalive_s, ready_timeout_s=60)
    world.start()
    city_stack = CityStack(world, options, Settings())
    try:
        city_stack.start()
        yield city_stack
    finally:
        city_stack.stop()
        assert not [c.name for c in city_stack.children() if c.running], "a child survived"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[CityStack]:
    broker, db = request.param
    tag = uuid.uuid4().hex[:6]
    if broker == "mosquitto":
        _system_or_skip("Mosquitto", "127.0.0.1", 1883)
    if db == "system":
        _system_or_skip("PostgreSQL", "127.0.0.1", 5432)
        server = SYSTEM_PG
    else:
        server = request.getfixturevalue("embedded_pg_server")
    with running_stack(server, tmp_path_factory.mktemp(f"city-{tag}"), tag, seed=2,
                       duration_s=1800.0, time_scale=SCALE,
                       mqtt_url=SYSTEM_MQTT if broker == "mosquitto" else None,
                       watchdog_s=WATCHDOG_S, keepalive_s=KEEPALIVE_S) as city_stack:
        yield city_stack


@pytest.fixture(scope="module")
def watcher(stack: CityStack) -> Iterator[Watcher]:
    assert stack.mqtt_url is not None
    w = Watcher(stack.mqtt_url)
    yield w
    w.close()


# --------------------------------------------------------------------------- helpers


def ids(stack: CityStack) -> list[str]:
    return [e.intersection_id for e in stack.world.endpoints]


def controller(stack: CityStack, iid: str) -> dict[str, Any]:
    def read(emu: Any) -> dict[str, Any]:
        program = emu.program
        status = program.status(program.now_ds)
        return {"mode": status.mode, "plan": program.running_plan,
                "central": program.central_plan,
                "watchdog_expired": bool(status.alarms >> ALARM_BITS["watchdog_expired"] & 1)}
    return stack.world.on_controller(iid, read)


def view(stack: CityStack, iid: str) -> dict[str, Any]:
    return _http_json(f"{stack.api_url}api/intersections/{iid}")


def all_adaptive_and_central(stack: CityStack) -> bool:
    for iid in ids(stack):
        sent = view(stack, iid)["plan"]
        if sent["source"] != "adaptive" or controller(stack, iid)["mode"] is not UnitMode.CENTRAL:
            return False
    return True


def events(stack: CityStack, kind: str) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(stack.database_url) as conn:
        return conn.execute("SELECT intersection_id, data FROM traffic_event WHERE kind = %s",
                            (kind,)).fetchall()


# --------------------------------------------------------------------------- the tests, in order


def sumo_greens(stack: CityStack, k: int, cycles: float,
                done: Callable[[list[list[float]]], bool] | None = None) -> list[list[float]]:
    """Per phase of intersection k, the green lengths SUMO showed (complete greens only) over
    ``cycles`` cycles of the plan its controller runs now, or until ``done(greens)``."""
    world = stack.world
    sm = world.maps[k]
    always = frozenset.intersection(*(frozenset(g.green_links) for g in sm.greens))
    phase_link = [min(set(g.green_links) - always) for g in sm.greens]
    seen: list[tuple[float, str]] = []

    def hook(api: Any, t_s: float) -> None:
        seen.append((t_s, api.trafficlight.getRedYellowGreenState(sm.tls_id)))

    def measured() -> list[list[float]]:
        greens: list[list[float]] = [[] for _ in sm.greens]
        steps = list(seen)
        for p, link in enumerate(phase_link):
            start = None
            for t_s, state in steps:
                on = state[link] in "Gg"
                if on and start is None:
                    start = t_s
                elif not on and start is not None:
                    if start != steps[0][0]:
                        greens[p].append(t_s - start)
                    start = None
        return greens

    plan = controller(stack, sm.intersection_id)["plan"]
    world.step_hook = hook
    try:
        wait_for(lambda: len(seen) > cycles * plan.cycle_ds / 10
                 or (done is not None and done(measured())), cycles * plan.cycle_ds / 10 / SCALE
                 + 30, f"{cycles:g} cycles")
    finally:
        world.step_hook = None
    return measured()


def test_adaptive_plans_reach_the_controllers_and_change_sumos_signals(
        stack: CityStack, watcher: Watcher) -> None:
    wait_for(lambda: all_adaptive_and_central(stack), 60,
             "every controller in central mode on an adaptive plan")
    # The plan the control room sent last is the one the controller holds as its committed
    # central plan (a surge re-plan between plan steps may have replaced the running one,
    # which then hands over at the next safe point); a command in flight gets a moment.
    def committed_is_sent(iid: str) -> bool:
        sent = view(stack, iid)["plan"]["sent"]
        committed = controller(stack, iid)["central"]
        return committed is not None and committed.cycle_ds == round(sent["cycle_s"] * 10) and (
            list(committed.splits_ds) == [round(x * 10) for x in sent["splits_s"]])
    for iid in ids(stack):
        wait_for(lambda iid=iid: committed_is_sent(iid), 10,
                 f"{iid} holding the plan the control room sent last")
        assert controller(stack, iid)["plan"].number == view(stack, iid)["plan"]["sent"]["plan"]
    def retimed(greens: list[list[float]]) -> bool:
        return any(abs(g - LOCAL_GREEN_S) > 2 for phase in greens for g in phase)

    # Up to 2.2 cycles of the adaptive plan; the first complete green off the local plan's
    # length settles it.
    greens = sumo_greens(stack, 0, 2.2, retimed)
    shown = [g for phase in greens for g in phase]
    assert shown and retimed(greens), (
        f"SUMO still shows the local plan's {LOCAL_GREEN_S:g} s greens: {greens}")


def test_an_operators_plan_runs_exactly_in_sumo(stack: CityStack,
                                                request: pytest.FixtureRequest) -> None:
    """A plan that the core does not change under us: SUMO's greens are its splits minus the
    city's 3 s yellow and 1 s all-red, through API → MQTT → edge → Modbus → controller → SUMO.
    On one backend only (it waits for the controller to walk onto the plan's offset)."""
    if stack.broker is None:
        pytest.skip("shown on the embedded backend; the path does not depend on the broker")
    iid = ids(stack)[0]
    key = {"X-API-Key": stack.operator_key, "Content-Type": "application/json"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(f"{stack.api_url}api/intersections/{iid}/{path}",
                                     json.dumps(body).encode(), key, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    post("plan", {"plan": 9, "cycle_s": 60, "offset_s": 0, "splits_s": [20, 40],
                  "duration_s": 600, "reason": "test"})
    try:
        wait_for(lambda: controller(stack, iid)["plan"].number == 9, 30,
                 "the operator's plan running on the controller")
        # The controller first walks its cycle onto the plan's offset (greens shortened by up
        # to 20 % a cycle), then runs the plan as written.
        def exact(greens: list[list[float]]) -> bool:
            return all(g and abs(g[-1] - want) <= 1.0 for g, want in zip(greens, (16, 36),
                                                                         strict=True))

        greens = sumo_greens(stack, 0, 8, exact)
        assert exact(greens), greens
    finally:
        post("release", {"reason": "test done"})
    wait_for(lambda: view(stack, iid)["plan"]["source"] == "adaptive", 40,
             "adaptive control again after the release")


def test_forged_expired_and_unsafe_commands_are_rejected_and_change_nothing(
        stack: CityStack, watcher: Watcher) -> None:
    iid, other = ids(stack)[1], ids(stack)[4]
    now = utc_now()
    safe = PlanBody(plan=77, cycle_s=80, offset_s=0, splits_s=(40, 40))

    def command(**over: Any) -> TrafficCommand:
        fields = {"ts": now, "cmd_id": uuid.uuid4().hex, "issuer": "controlroom",
                  "intersection_id": iid, "expires_at": now + timedelta(seconds=60),
                  "body": safe, **over}
        return TrafficCommand(**fields)

    cases = {
        "issuer 'intruder' is not allowed": command(issuer="intruder"),
        "expired at": command(ts=now - timedelta(seconds=300),
                              expires_at=now - timedelta(seconds=60)),
        "unsafe for this controller": command(body=PlanBody(plan=77, cycle_s=20, offset_s=0,
                                                            splits_s=(10, 10))),
    }
    for c in cases.values():
        watcher.publish(command_topic(iid), encode(c))
    misrouted = command(intersection_id=other)  # a forged topic: J5's command on J2's topic
    watcher.publish(command_topic(iid), encode(misrouted))
    cases["topic_mismatch"] = misrouted

    def answered() -> dict[str, dict[str, Any]]:
        acks = {a["cmd_id"]: a for a in watcher.of("cmd_ack")}
        return {k: acks[c.cmd_id] for k, c in cases.items() if c.cmd_id in acks}

    got = wait_for(lambda: answered() if len(answered()) == len(cases) else None, 15,
                   "an ack for every bad command")
    for expect, ack in got.items():
        assert ack["status"] == "rejected" and expect in ack["reason"], (expect, ack)
    time.sleep(1.0)
    state = controller(stack, iid)
    assert state["plan"].number != 77 and (state["central"] is None
                                           or state["central"].number != 77), state
    assert not [a for a in watcher.of("cmd_ack")
                if a["cmd_id"] in {c.cmd_id for c in cases.values()} and a["status"] != "rejected"]


def test_a_detector_stuck_on_is_flagged_and_no_longer_trusted(stack: CityStack) -> None:
    iid = ids(stack)[3]
    stack.world.on_controller(iid, lambda e: e.set_detector_fault(1, DetectorFault.STUCK_ON))
    try:
        # The controller judges a loop stuck after 120 SUMO s of presence (12 s here).
        wait_for(lambda: any(i == iid and d.get("detector") == 1
                             for i, d in events(stack, "detector_fault")), 40,
                 "the edge's detector_fault event, stored")
        alarm = wait_for(lambda: [a for a in _http_json(f"{stack.api_url}api/alarms")
                                  if a["intersection_id"] == iid and a["code"] == "detector_fault"],
                         20, "the control room's detector_fault alarm")
        assert alarm[0]["subject"] == "0" and "no longer trusts" in alarm[0]["text"], alarm
        assert view(stack, iid)["live"]["det_fault"][0] is True
    finally:
        stack.world.on_controller(iid, lambda e: e.set_detector_fault(1, DetectorFault.NONE))


def test_control_room_killed_every_controller_falls_back_within_its_watchdog(
        stack: CityStack, watcher: Watcher) -> None:
    assert stack.controlroom is not None
    wait_for(lambda: all(controller(stack, i)["mode"] is UnitMode.CENTRAL for i in ids(stack)),
             40, "central mode everywhere before the kill")
    killed = time.monotonic()
    stack.controlroom.kill()

    def edge_devices() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in stack.edges:
            out.update(read_status(part.state_dir, utc_now())["devices"])
        return out

    # The edges stop feeding the watchdogs when the broker sends the control room's will
    # (at once on a closed socket, else after 1.5 × keep-alive). On a shared Mosquitto another
    # control room's retained "online" (another test run) can keep them feeding until their
    # liveness window (30 s) ends: the contract has one control room per broker.
    stopped = wait_for(lambda: (time.monotonic() - killed) if not any(
        d["watchdog"]["feeding"] for d in edge_devices().values()) else None, 45,
        "every edge to stop feeding its controllers' watchdogs")
    if stack.broker is not None:
        assert stopped <= 1.5 * KEEPALIVE_S + 2.0, f"edges fed the watchdogs {stopped:.1f} s on"
    # Each controller's watchdog expires one watchdog time after the edge's last kick, in
    # controller (SUMO) time — so a loaded machine where SUMO lags its ×10 does not matter.
    # The last kick is followed through the edges' status (kick counters), not assumed: an
    # edge that hears a stray "online" after the will feeds once more (seen on both brokers).
    # The watchdog runs while a central plan is in force: one committed just before the kill
    # starts at the next safe point and re-arms it then (NTCIP backup time), so the reference
    # is the later of the last kick and the last central plan coming into force.
    kicks: dict[str, tuple[int, float]] = {}
    plans: dict[str, tuple[Any, float]] = {}
    expired_at: dict[str, float] = {}

    def all_expired() -> bool:
        now_s = stack.world.t_s
        for i, d in edge_devices().items():
            n = d["watchdog"]["kicks"]
            if i not in kicks or kicks[i][0] != n:
                kicks[i] = (n, now_s)
        for i in ids(stack):
            if i in expired_at:
                continue
            state = controller(stack, i)
            if i not in plans or (plans[i][0] is not state["plan"]
                                  and state["mode"] is UnitMode.CENTRAL):
                plans[i] = (state["plan"], now_s)
            if state["watchdog_expired"]:
                expired_at[i] = stack.world.t_s
        return len(expired_at) == len(ids(stack))

    wait_for(all_expired, 60, "every controller's central watchdog expired")
    budget_s = WATCHDOG_S + 2 * SCALE  # + the status file's lag (one poll), a margin
    since = {i: max(kicks[i][1], plans[i][1]) for i in expired_at}
    late = {i: t - since[i] for i, t in expired_at.items() if t - since[i] > budget_s}
    assert not late, f"watchdogs expired later than {budget_s:g} SUMO s after the last kick: {late}"
    # The local plan takes over at the next safe point (the end of the running cycle).
    wait_for(lambda: all(controller(stack, i)["mode"] in (UnitMode.LOCAL_FIXED,
                                                          UnitMode.LOCAL_ACTUATED)
                         for i in ids(stack)), 20, "every controller on its local plan")
    # The edges report it: to technicians at once (`kota edge status`), to the control room
    # when it is back (the outbox holds events while it is offline; see the next test).
    devices = wait_for(lambda: (v := edge_devices()) and all(
        d["mode"] in ("local_fixed", "local_actuated") and d["watchdog"]["expired"]
        and not d["watchdog"]["feeding"] for d in v.values()) and v, 10,
        "every edge's status showing the fallback")
    assert set(devices) == set(ids(stack))


def test_control_room_back_adaptive_control_resumes_and_fallbacks_are_stored(
        stack: CityStack) -> None:
    stack.restart_controlroom()
    wait_for(lambda: all_adaptive_and_central(stack), 60,
             "adaptive control everywhere after the restart")
    # Events the edges sent while the control room was down reached storage (outbox + the
    # control room's persistent session).
    stored = wait_for(lambda: {i for i, d in events(stack, "fallback") if d.get("active")}
                      >= set(ids(stack)) or None, 15, "every fallback event stored")
    assert stored
    wait_for(lambda: not [a for a in _http_json(f"{stack.api_url}api/alarms")
                          if a["code"] == "local_fallback"], 15, "the fallback alarms cleared")
    assert all(c.running for c in stack.children())
