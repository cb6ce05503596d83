"""The traffic service: live state in, the timing core every plan interval, plans out as
commands, acks tracked, alarms raised and cleared, operator overrides in force.

Threads: the MQTT network thread only `offer`s traffic and edge-state messages to a bounded
inbox (ingest gets its own copy to store); the service's thread (`kota-traffic`) decodes them
and does the rest every `tick_s`; a writer thread (`kota-traffic-store`) stores each tick's
records in order; the web API calls the operator methods. The control loop never waits for
the database: it sees the street through its own copy of the messages, and while the database
is down its records wait in memory and control carries on (the street matters more than its
paperwork) — except operator actions, which are refused unless their audit row is stored first.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from controlroom.settings import TrafficSettings
from controlroom.storage.store import (
    AlarmKey,
    AuditRecord,
    Batch,
    CommandRecord,
    OverrideEnd,
    OverrideRecord,
    PlanRecord,
    StorageError,
    Store,
    TrafficWrites,
)
from controlroom.timing import Params, PlanOutput, State, Structure, initial_state, plan_step
from controlroom.traffic.access import Operator
from controlroom.traffic.alarms import AlarmBook, AlarmCode, Condition, alarm_text
from controlroom.traffic.layout import CityLayout
from controlroom.traffic.live import LiveState
from edge.contract import (
    TOPIC_ROOT,
    CommandAck,
    ContractError,
    EdgeState,
    Kind,
    OverrideBody,
    PlanBody,
    SignalState,
    TrafficCommand,
    TrafficEvent,
    TrafficTelemetry,
    UnitMode,
    command_topic,
    decode,
    encode,
    utc_now,
)

log = logging.getLogger(__name__)

ISSUER = "controlroom"
SYSTEM = Operator("system", "system")
LOCAL_MODES = frozenset({UnitMode.LOCAL_FIXED, UnitMode.LOCAL_ACTUATED})
DARK_MODES = frozenset({UnitMode.FLASH, UnitMode.OFF})
RECENT_COMMANDS = 20_000  # cmd_id → intersection, for acks that arrive after we gave up
BACKLOG_MAX = 500_000  # records kept in memory while the database is down
INBOX_MAX = 200_000  # messages between the network thread and the loop
SEEN_ACKS = 20_000  # (cmd_id, status) already handled: QoS 1 redeliveries change nothing
# What the service reads of the edges' messages (ingest stores everything).
_TRAFFIC_PREFIXES = (f"{TOPIC_ROOT}/traffic/", f"{TOPIC_ROOT}/edge/")
PLAN_SPLIT_TOLERANCE_S = 0.5

OverrideAction = Literal["hold", "force", "flash", "plan"]
PlanSource = Literal["adaptive", "operator", "system"]


class OperatorActionError(Exception):
    """An operator request that changes nothing; ``status`` is the HTTP status to answer."""

    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownIntersectionError(OperatorActionError):
    status = 404


class NoOverrideError(OperatorActionError):
    status = 409


class NotRecordedError(OperatorActionError):
    status = 503


@dataclass
class ActiveOverride:
    id: int
    intersection_id: str
    action: str
    phase: int | None
    plan: dict[str, Any] | None
    user: str
    role: str
    reason: str
    created_at: datetime
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "phase": self.phase, "plan": self.plan,
                "user": self.user, "role": self.role, "reason": self.reason,
                "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat()}


@dataclass
class Pending:
    """A command sent and not yet finally answered."""

    command: TrafficCommand
    payload: bytes
    index: int
    source: str
    sent_mono: float
    attempts: int = 1
    status: str = "sent"  # sent | accepted


@dataclass
class Control:
    """What the control room did and decided for one intersection."""

    computed: PlanBody | None = None
    computed_at: datetime | None = None
    computed_green_s: tuple[float, ...] = ()
    computed_ds: tuple[float, ...] = ()
    ds_max: float = 0.0
    ds_high_steps: int = 0
    sent: PlanBody | OverrideBody | None = None
    sent_source: str | None = None
    sent_at: datetime | None = None
    sent_mono: float = -math.inf
    sent_cmd_id: str | None = None
    force_send: bool = True
    rejects: int = 0
    reject_reason: str = ""
    rejected_alarm: bool = False
    unanswered_alarm: bool = False
    unanswered_detail: str = ""
    override: ActiveOverride | None = None
    # An operator's override is being recorded: the core sends nothing to this intersection
    # meanwhile, so no adaptive plan goes out after the operator asked and before the override.
    recording: bool = False
    central_seen: bool = False  # its controller ran a central plan since the service started
    local_since: float | None = None  # time.monotonic() since it reports a local mode


@dataclass
class ServiceStats:
    plan_steps: int = 0
    commands_sent: int = 0
    resends: int = 0
    acks: int = 0
    rejected: int = 0
    unanswered: int = 0
    storage_failures: int = 0
    last_step_ms: float = 0.0
    last_plan_at: datetime | None = None
    not_sent: dict[str, int] = field(default_factory=dict)
    inbox_overflow: int = 0
    surge_replans: int = 0


class TrafficService:
    """One per control room (one worker of a cluster): it must see every intersection."""

    def __init__(self, settings: TrafficSettings, layout: CityLayout, structure: Structure,
                 store: Store, publish: Callable[[str, bytes, int], None],
                 connected: Callable[[], bool], params: Params | None = None) -> None:
        self._settings = settings
        self._layout = layout
        self._structure = structure
        self._store = store
        self._publish = publish
        self._connected = connected
        self._params = params or Params()
        self.ids = tuple(x.id for x in layout.intersections)
        self._index = {iid: i for i, iid in enumerate(self.ids)}
        self._n_phases = tuple(len(x.phases) for x in layout.intersections)
        self._live = LiveState(structure, self.ids, self._n_phases,
                               tuple(len(x.detectors) for x in layout.intersections),
                               cumulative=settings.det_count == "cumulative",
                               message_period_s=settings.telemetry_period_s)
        self._control = [Control() for _ in self.ids]
        self._core: State = initial_state(structure)
        self._lock = threading.RLock()
        self._acks: list[tuple[str, CommandAck]] = []
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=INBOX_MAX)
        self._seen_acks: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._pending: dict[str, Pending] = {}
        self._recent: OrderedDict[str, int] = OrderedDict()
        self._send_soon: set[int] = set()
        self._alarms = AlarmBook()
        self._backlog: list[TrafficWrites] = []  # one entry per tick, written in order
        self._backlog_records = 0
        self._storage_failing = False
        self._write_wake = threading.Event()
        self._writer_stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._operator_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_mono = time.monotonic()
        self._last_tick = -math.inf
        self._interval_started = self._started_mono
        self._next_plan = self._started_mono + settings.plan_interval_s
        # Surge re-plans: each detector's flow in the interval the last plan step measured
        # (veh/h; inf until a step measured it, so nothing counts as a surge before that),
        # and when each intersection was last re-planned for a surge.
        n, _, _, d = structure.shape
        self._step_rate_veh_h = np.full((n, d), np.inf)
        self._surge_mono = np.full(n, -np.inf)
        self.stats = ServiceStats()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Restore open alarms and active overrides from storage, then run the loop."""
        open_alarms = self._store.alarms(open_only=True, limit=1_000_000)
        self._alarms = AlarmBook({AlarmKey(a["code"], a["intersection_id"], a["subject"])
                                  for a in open_alarms})
        for a in open_alarms:
            i = self._index.get(a["intersection_id"])
            if i is None:
                continue
            c = self._control[i]
            if a["code"] == AlarmCode.COMMAND_REJECTED:
                c.rejected_alarm, c.reject_reason = True, a["text"]
                c.rejects = self._settings.reject_alarm_after
            elif a["code"] == AlarmCode.COMMAND_UNANSWERED:
                c.unanswered_alarm, c.unanswered_detail = True, a["text"]
            elif a["code"] == AlarmCode.SATURATION:
                c.ds_high_steps = self._settings.ds_alarm_cycles
        for row in self._store.active_overrides():
            i = self._index.get(row["intersection_id"])
            if i is None:
                log.warning("override %d of %s: the intersection is not in the layout; it stays "
                            "recorded as active until released", row["id"], row["intersection_id"])
                continue
            self._control[i].override = ActiveOverride(
                row["id"], row["intersection_id"], row["action"], row["phase"], row["plan"],
                row["user_name"], row["role"], row["reason"], row["created_at"], row["expires_at"])
        now = time.monotonic()
        self._started_mono = self._interval_started = now
        self._next_plan = now + self._settings.plan_interval_s
        self._writer = threading.Thread(target=self._write_loop, name="kota-traffic-store", daemon=True)
        self._writer.start()
        self._thread = threading.Thread(target=self._run, name="kota-traffic", daemon=True)
        self._thread.start()
        log.info("traffic service running for %d intersections of %s (plan every %g s)",
                 len(self.ids), self._layout.city, self._settings.plan_interval_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._writer_stop.set()
        self._write_wake.set()
        if self._writer is not None:
            self._writer.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.tick_s):
            self.tick()

    def alive(self, within_s: float) -> bool:
        """The loop runs and finished a tick within ``within_s`` (the heartbeat asks)."""
        running = self._thread is not None and self._thread.is_alive() and not self._stop.is_set()
        return running and time.monotonic() - self._last_tick <= within_s

    # ------------------------------------------------------------------ ingest side

    def offer(self, topic: str, payload: bytes) -> None:
        """Called on the MQTT network thread for every message: enqueue what matters, return."""
        if not topic.startswith(_TRAFFIC_PREFIXES):
            return
        try:
            self._inbox.put_nowait((topic, payload))
        except queue.Full:
            self.stats.inbox_overflow += 1
            if self.stats.inbox_overflow == 1 or self.stats.inbox_overflow % 10_000 == 0:
                log.error("traffic service inbox full (%d messages): the control loop is too slow",
                          INBOX_MAX)

    def _drain_inbox(self) -> None:
        """Decode what arrived since the last tick (invalid messages are ingest's to count)."""
        batch = Batch()
        while True:
            try:
                topic, payload = self._inbox.get_nowait()
            except queue.Empty:
                break
            try:
                message = decode(topic, payload)
            except ContractError:
                continue
            p = message.payload
            if message.kind is Kind.TELEMETRY:
                assert isinstance(p, TrafficTelemetry)
                batch.telemetry.append(p)
            elif message.kind is Kind.EVENT:
                assert isinstance(p, TrafficEvent)
                batch.events.append(p)
            elif message.kind is Kind.COMMAND_ACK:
                assert isinstance(p, CommandAck)
                batch.acks.append((message.route.spec.domain, p))
            elif message.kind is Kind.EDGE_STATE:
                assert isinstance(p, EdgeState)
                batch.edge_states.append(p)
        if len(batch):
            self.observe(batch)

    def observe(self, batch: Batch) -> None:
        """Take decoded edge messages into the live state; acks wait for the tick."""
        now = time.monotonic()
        wall = utc_now()
        with self._lock:
            for s in batch.edge_states:
                self._live.edge_state(s)
            for e in batch.events:
                self._live.event(e)
            for t in batch.telemetry:
                self._live.telemetry(t, now, wall)
            self._acks.extend(a for a in batch.acks if a[0] == "traffic")

    # ------------------------------------------------------------------ the loop

    def tick(self) -> None:
        self._drain_inbox()
        now = time.monotonic()
        wall = utc_now()
        writes = TrafficWrites()
        with self._lock:
            acks, self._acks = self._acks, []
            self._take_acks(acks, writes)
            self._expire_overrides(wall, writes)
        if now >= self._next_plan:
            self._plan(now, wall, writes)
            self._next_plan = max(self._next_plan + self._settings.plan_interval_s, now + 0.01)
        elif self._settings.surge_replan:
            self._surge_replan(now, wall, writes)
        with self._lock:
            for i in sorted(self._send_soon):
                self._send_computed(i, now, wall, writes)
            self._send_soon.clear()
            self._retry(now, wall, writes)
            self._track_modes(now)
            if now - self._started_mono >= self._settings.stale_after_s:
                self._alarms.update(self._conditions(now), wall, writes)
        self._flush(writes)
        self._last_tick = time.monotonic()

    def _plan(self, now: float, wall: datetime, writes: TrafficWrites) -> None:
        started = time.perf_counter()
        with self._lock:
            interval_s = now - self._interval_started
            self._interval_started = now
            interval = self._live.take_interval(interval_s, now, self._settings.stale_after_s)
        m = interval.measurements
        if interval_s > 0:
            # What the next surge check compares with; a detector the step could not use has
            # no reference, so it raises no surge until a step measured it.
            self._step_rate_veh_h = np.where(m.valid, m.count * (3600.0 / interval_s), np.inf)
        out, self._core = plan_step(self._structure, m, self._core, self._params)
        with self._lock:
            for i in range(len(self.ids)):
                c = self._control[i]
                if not self._take_computed(i, out, wall):
                    continue
                if self._live.intersections[i].fresh(now, self._settings.stale_after_s):
                    # Hysteresis: counts up above ds_alarm, starts over only below ds_clear.
                    if c.ds_max > self._settings.ds_alarm:
                        c.ds_high_steps += 1
                    elif c.ds_max < self._settings.ds_clear:
                        c.ds_high_steps = 0
                self._send_computed(i, now, wall, writes)
        self.stats.plan_steps += 1
        self.stats.last_plan_at = wall
        self.stats.last_step_ms = (time.perf_counter() - started) * 1000

    def _take_computed(self, i: int, out: PlanOutput, wall: datetime) -> bool:
        """Intersection i's plan from the core's output into its Control; False if unusable."""
        c = self._control[i]
        n = self._n_phases[i]
        try:
            c.computed = PlanBody(plan=self._settings.plan_number,
                                  cycle_s=int(out.cycle_ds[i]) / 10,
                                  offset_s=int(out.offset_ds[i]) / 10,
                                  splits_s=tuple(int(v) / 10 for v in out.split_ds[i, :n]))
        except ValidationError as exc:  # the layout bounds make this unreachable
            log.error("intersection %s: the core's plan breaks the contract, not sent: %s",
                      self.ids[i], exc.errors(include_url=False)[0]["msg"])
            c.computed = None
            return False
        c.computed_at = wall
        c.computed_green_s = tuple(int(v) / 10 for v in out.green_ds[i, :n])
        ds = out.ds[i][self._structure.movement_valid[i]]
        c.computed_ds = tuple(round(float(v), 3) for v in ds)
        c.ds_max = float(ds.max()) if ds.size else 0.0
        return True

    def _surge_candidates(self, now: float) -> list[int]:
        """Intersections whose detectors count a surge in the running interval (see
        ``surge_veh_h`` and ``surge_min_veh``), not re-planned for one within ``surge_gap_s``,
        under adaptive control and reachable. Only a rise counts: a queue that grows needs
        green now, while green a fallen demand no longer uses can wait for the plan step."""
        st = self._settings
        count, covered_s, bad = self._live.running()
        seen_s = covered_s[:, None]
        with np.errstate(invalid="ignore"):  # inf × 0 s seen: no reading, no surge
            expected = self._step_rate_veh_h * (seen_s / 3600.0)
            surge = ((count - expected >= st.surge_min_veh)
                     & (count - expected >= st.surge_veh_h * seen_s / 3600.0)
                     & self._structure.detector_valid & ~bad)
        rows = np.flatnonzero(surge.any(axis=1) & (now - self._surge_mono >= st.surge_gap_s))
        out = []
        for i in rows.tolist():
            c = self._control[i]
            if (isinstance(c.sent, PlanBody) and c.sent_source == "adaptive"
                    and self._live.intersections[i].mode is UnitMode.CENTRAL
                    and self._not_sendable(i, now) is None):
                out.append(i)
        return out

    def _surge_replan(self, now: float, wall: datetime, writes: TrafficWrites) -> None:
        """Re-plan intersections with a detector surge now rather than at the next plan step.

        The core runs on the running interval as if it ended now, for every intersection
        (one vectorised step costs about as much as one intersection); only the surging
        intersections' plans are taken, and only sent when they moved by change_threshold_s.
        The core's state is not advanced: the plan step still takes the whole interval, so
        the flow smoothing and detector history move once per interval as before.
        """
        with self._lock:
            candidates = self._surge_candidates(now)
            if not candidates:
                return
            interval = self._live.peek_interval(now - self._interval_started, now,
                                                self._settings.stale_after_s)
        out, _ = plan_step(self._structure, interval.measurements, self._core, self._params)
        with self._lock:
            for i in candidates:
                c = self._control[i]
                if self._not_sendable(i, now) is not None or not isinstance(c.sent, PlanBody):
                    continue  # changed while the core ran
                sent = c.sent
                if not self._take_computed(i, out, wall):
                    continue
                assert c.computed is not None
                if not _differs(sent, c.computed, self._settings.change_threshold_s):
                    continue  # not enough yet; the next tick looks again
                self._surge_mono[i] = now
                self.stats.surge_replans += 1
                log.debug("intersection %s: detector surge, re-planned before the plan step",
                          self.ids[i])
                self._send_computed(i, now, wall, writes)

    def _send_computed(self, i: int, now: float, wall: datetime, writes: TrafficWrites) -> None:
        """Send intersection i's computed adaptive plan if it should go out now."""
        c = self._control[i]
        if c.computed is None:
            return
        reason = self._not_sendable(i, now)
        if reason is None and not self._due(i, now):
            reason = "unchanged"
        if reason is not None:
            self.stats.not_sent[reason] = self.stats.not_sent.get(reason, 0) + 1
            return
        cmd_id = self._send(i, c.computed, "adaptive", wall, now, writes)
        if cmd_id is not None:
            writes.plans.append(PlanRecord(
                wall, self.ids[i], "adaptive", c.computed.plan, c.computed.cycle_s,
                c.computed.offset_s, c.computed.splits_s, c.computed_green_s, c.ds_max, cmd_id))

    def _not_sendable(self, i: int, now: float) -> str | None:
        c = self._control[i]
        live = self._live.intersections[i]
        if c.override is not None or c.recording:
            return "operator_override"
        if self._live.edge_online(live.edge_id) is False:
            return "edge_offline"
        if not live.fresh(now, self._settings.stale_after_s) or live.controller_offline_since:
            return "controller_offline"
        if live.mismatch:
            return "layout_mismatch"
        if not self._connected():
            return "broker_unreachable"
        return None

    def _due(self, i: int, now: float) -> bool:
        c = self._control[i]
        live = self._live.intersections[i]
        if c.force_send or not isinstance(c.sent, PlanBody) or c.sent_source != "adaptive":
            return True
        if live.mode is not UnitMode.CENTRAL:  # fell back to local: win it back, once at a time
            if c.sent_cmd_id in self._pending:
                return False  # the last command is still on its way (retries cover it)
            # An applied plan starts at the controller's next safe point, up to a cycle away:
            # only when that has passed with the controller still local is it sent again.
            wait_s = self._settings.win_back_s
            if wait_s is None:
                wait_s = c.sent.cycle_s + self._settings.stale_after_s
            return now - c.sent_mono >= wait_s
        # Less a tick: plan steps land on ticks, so "one refresh_s later" may be a hair short.
        if now - c.sent_mono >= self._settings.refresh_s - self._settings.tick_s:
            return True
        assert c.computed is not None
        return _differs(c.sent, c.computed, self._settings.change_threshold_s)

    def _send(self, i: int, body: PlanBody | OverrideBody, source: PlanSource, wall: datetime,
              now: float, writes: TrafficWrites | None, override_id: int | None = None,
              cmd_id: str | None = None) -> str | None:
        """Publish one command and track it; with ``writes`` its record is stored this tick."""
        iid = self.ids[i]
        try:
            command = TrafficCommand(
                ts=wall, cmd_id=cmd_id or uuid.uuid4().hex, issuer=ISSUER, intersection_id=iid,
                expires_at=wall + timedelta(seconds=self._settings.command_ttl_s), body=body)
        except ValidationError as exc:
            log.error("intersection %s: command not sent, it breaks the contract: %s", iid,
                      exc.errors(include_url=False)[0]["msg"])
            return None
        payload = encode(command)
        if writes is not None:
            writes.commands.append(_record(command, source, override_id))
        self._publish(command_topic(iid), payload, 1)
        self._pending[command.cmd_id] = Pending(command, payload, i, source, now)
        self._recent[command.cmd_id] = i
        while len(self._recent) > RECENT_COMMANDS:
            self._recent.popitem(last=False)
        c = self._control[i]
        c.sent, c.sent_source, c.sent_at, c.sent_mono = body, source, wall, now
        c.sent_cmd_id = command.cmd_id
        c.force_send = False
        self.stats.commands_sent += 1
        return command.cmd_id

    # ------------------------------------------------------------------ acks and retries

    def _take_acks(self, acks: list[tuple[str, CommandAck]], writes: TrafficWrites) -> None:
        for _, ack in acks:
            seen = (ack.cmd_id, ack.status)
            if seen in self._seen_acks:
                continue  # a redelivery or an edge repeating itself
            self._seen_acks[seen] = None
            while len(self._seen_acks) > SEEN_ACKS:
                self._seen_acks.popitem(last=False)
            self.stats.acks += 1
            i = self._recent.get(ack.cmd_id)
            if i is None:
                # Not one of this run's commands: maybe one of the previous run's; storage
                # moves its status forward if it is ours at all.
                writes.statuses.append((ack.cmd_id, ack.status, ack.ts, ack.reason))
                continue
            writes.statuses.append((ack.cmd_id, ack.status, ack.ts, ack.reason))
            c = self._control[i]
            pending = self._pending.get(ack.cmd_id)
            if ack.status == "accepted":
                if pending is not None:
                    pending.status = "accepted"
                continue
            self._pending.pop(ack.cmd_id, None)
            if ack.status == "applied":
                c.rejects, c.rejected_alarm, c.unanswered_alarm = 0, False, False
                continue
            self.stats.rejected += 1
            c.rejects += 1
            c.reject_reason = ack.reason or "no reason given"
            operator = pending is not None and pending.source == "operator"
            log.warning("intersection %s rejected command %s: %s", self.ids[i], ack.cmd_id,
                        c.reject_reason)
            if operator or c.rejects >= self._settings.reject_alarm_after:
                c.rejected_alarm = True
            c.force_send = True

    def _retry(self, now: float, wall: datetime, writes: TrafficWrites) -> None:
        timeout = self._settings.ack_timeout_s
        for cmd_id, p in list(self._pending.items()):
            c = self._control[p.index]
            expired = wall >= p.command.expires_at
            if p.status == "sent" and now - p.sent_mono >= timeout:
                if p.attempts <= self._settings.max_retries and not expired:
                    if not self._connected():
                        continue  # the broker is away; the attempt would not count
                    self._publish(command_topic(self.ids[p.index]), p.payload, 1)
                    p.attempts += 1
                    p.sent_mono = now
                    writes.resends.append((cmd_id, p.attempts, wall))
                    self.stats.resends += 1
                    continue
                del self._pending[cmd_id]
                detail = f"command {cmd_id} got no answer after {p.attempts} attempts"
                alarm = alarm_text("command_unanswered", cmd_id=cmd_id, attempts=p.attempts)
                writes.statuses.append((cmd_id, "unanswered", wall, detail))
            elif p.status == "accepted" and wall >= p.command.expires_at + timedelta(seconds=timeout):
                del self._pending[cmd_id]
                detail = f"command {cmd_id} was accepted but never confirmed applied"
                alarm = alarm_text("command_unconfirmed", cmd_id=cmd_id)
            else:
                continue
            self.stats.unanswered += 1
            c.force_send = True
            if self._not_sendable(p.index, now) in ("edge_offline", "controller_offline"):
                # Its edge or controller went away meanwhile; that alarm says why already.
                log.info("intersection %s: %s (offline)", self.ids[p.index], detail)
                continue
            log.warning("intersection %s: %s", self.ids[p.index], detail)
            c.unanswered_alarm, c.unanswered_detail = True, alarm

    # ------------------------------------------------------------------ alarms

    def _conditions(self, now: float) -> list[Condition]:
        out: list[Condition] = []
        stale_s = self._settings.stale_after_s
        for i, iid in enumerate(self.ids):
            live = self._live.intersections[i]
            c = self._control[i]
            edge_online = self._live.edge_online(live.edge_id)
            if edge_online is False:
                assert live.edge_id is not None
                reason = self._live.edges[live.edge_id].reason
                out.append(Condition(AlarmCode.EDGE_OFFLINE, iid,
                                     alarm_text("edge_offline", edge=live.edge_id,
                                                why=f" ({reason})" if reason else ""),
                                     live.edge_id))
            elif live.controller_offline_since is not None:
                out.append(Condition(AlarmCode.CONTROLLER_OFFLINE, iid, alarm_text(
                    "controller_offline",
                    detail=live.controller_offline_detail or "device offline")))
            elif not live.fresh(now, stale_s):
                text = (alarm_text("no_telemetry", seconds=f"{stale_s:g}")
                        if live.received_at is not None else alarm_text("no_telemetry_yet"))
                out.append(Condition(AlarmCode.CONTROLLER_OFFLINE, iid, text))
            else:
                if live.mode in LOCAL_MODES and c.override is None and (
                        c.central_seen or now - (c.local_since or now) > self._first_plan_grace_s(i)):
                    out.append(Condition(AlarmCode.LOCAL_FALLBACK, iid,
                                         alarm_text("local_fallback", mode=live.mode.value),
                                         data={"mode": live.mode.value}))
                if live.mode in DARK_MODES and not (c.override is not None and c.override.action == "flash"):
                    assert live.mode is not None
                    out.append(Condition(AlarmCode.SIGNAL_FLASH, iid,
                                         alarm_text("signal_flash", mode=live.mode.value),
                                         data={"mode": live.mode.value}))
                for d, fault in enumerate(live.det_fault):
                    if fault:
                        out.append(Condition(AlarmCode.DETECTOR_FAULT, iid,
                                             alarm_text("detector_fault", detector=d), str(d)))
                if live.mismatch:
                    out.append(Condition(AlarmCode.LAYOUT_MISMATCH, iid,
                                         alarm_text("layout_mismatch", detail=live.mismatch)))
            if c.rejected_alarm:
                out.append(Condition(AlarmCode.COMMAND_REJECTED, iid, alarm_text(
                    "command_rejected", n=c.rejects, reason=c.reject_reason)))
            if c.unanswered_alarm:
                out.append(Condition(AlarmCode.COMMAND_UNANSWERED, iid, c.unanswered_detail))
            if c.ds_high_steps >= self._settings.ds_alarm_cycles:
                out.append(Condition(AlarmCode.SATURATION, iid, alarm_text(
                    "saturation", ds=f"{c.ds_max:.2f}", limit=f"{self._settings.ds_alarm:g}",
                    steps=c.ds_high_steps), data={"ds_max": round(c.ds_max, 3)}))
        return out

    def _track_modes(self, now: float) -> None:
        for live, c in zip(self._live.intersections, self._control, strict=True):
            if not live.fresh(now, self._settings.stale_after_s):
                continue
            if live.mode is UnitMode.CENTRAL:
                c.central_seen, c.local_since = True, None
            elif live.mode in LOCAL_MODES and c.local_since is None:
                c.local_since = now

    def _first_plan_grace_s(self, i: int) -> float:
        """How long a controller may stay local before it first takes a central plan: the
        first plan step, then the rest of its cycle (it switches only at a safe point)."""
        cycle_s = self._structure.cycle_max_ds[i] / 10
        return self._settings.plan_interval_s + cycle_s + self._settings.stale_after_s

    # ------------------------------------------------------------------ overrides

    def _expire_overrides(self, wall: datetime, writes: TrafficWrites) -> None:
        now = time.monotonic()
        for i, c in enumerate(self._control):
            ov = c.override
            if ov is None or wall < ov.expires_at:
                continue
            writes.overrides_ended.append(OverrideEnd(ov.id, wall, "expired", SYSTEM.user))
            writes.audit.append(AuditRecord(SYSTEM.user, SYSTEM.role, "override_expired", ov.intersection_id,
                                            "done", before={"override": ov.as_dict()}, after=None,
                                            detail="expired; adaptive control resumes"))
            c.override = None
            if ov.action in ("hold", "force", "flash"):
                self._send(i, OverrideBody(action="release", phase=None), "system", wall, now, writes)
            c.force_send = True
            self._send_soon.add(i)
            log.info("override %d of %s expired; adaptive control resumes", ov.id, ov.intersection_id)

    def override(self, intersection_id: str, operator: Operator, action: OverrideAction, *,
                 phase: int | None = None, plan: PlanBody | None = None,
                 duration_s: float | None = None, reason: str = "") -> dict[str, Any]:
        """Start an operator override (replacing any active one); stored and audited first."""
        i = self._index_of(intersection_id)
        n = self._n_phases[i]
        duration = self._settings.override_default_s if duration_s is None else duration_s
        if not 0 < duration <= self._settings.override_max_s:
            raise OperatorActionError(f"duration_s must be within 0..{self._settings.override_max_s:g}")
        body: PlanBody | OverrideBody
        if action == "plan":
            if plan is None:
                raise OperatorActionError("a plan override needs a plan")
            self._check_plan(i, plan)
            body = plan
        else:
            if action == "force" and phase is None:
                raise OperatorActionError("force needs a phase")
            if action == "hold" and phase is None:
                phase = self._green_phase(i)
            if phase is not None and not 1 <= phase <= n:
                raise OperatorActionError(f"phase {phase} does not exist: {intersection_id} has phases 1..{n}")
            body = OverrideBody(action=action, phase=phase)
        wall = utc_now()
        expires = wall + timedelta(seconds=duration)
        cmd_id = uuid.uuid4().hex
        command = TrafficCommand(ts=wall, cmd_id=cmd_id, issuer=ISSUER, intersection_id=intersection_id,
                                 expires_at=wall + timedelta(seconds=self._settings.command_ttl_s),
                                 body=body)
        start = OverrideRecord(intersection_id, action, phase,
                               plan.model_dump() if plan is not None else None, operator.user,
                               operator.role, reason, wall, expires)
        # Operator actions are serialised among themselves; the database write runs outside
        # the main lock, so a slow or absent database never stalls telemetry or the loop.
        with self._operator_lock:
            with self._lock:
                c = self._control[i]
                before = self._state_for_audit(i)
                end = (OverrideEnd(c.override.id, wall, "replaced", operator.user)
                       if c.override is not None else None)
                c.recording = True
            after = {"override": {"action": action, "phase": phase, "plan": start.plan,
                                  "expires_at": expires.isoformat(), "reason": reason},
                     "cmd_id": cmd_id}
            try:
                new_id = self._store.operator_action(
                    AuditRecord(operator.user, operator.role, f"override_{action}", intersection_id,
                                "done", before=before, after=after, detail=reason),
                    end=end, start=start, command=_record(command, "operator", None))
            except StorageError as exc:
                with self._lock:
                    c.recording = False
                raise NotRecordedError(f"not done: the action could not be recorded ({exc})") from exc
            assert new_id is not None
            with self._lock:
                c.recording = False
                c.override = ActiveOverride(new_id, intersection_id, action, phase, start.plan,
                                            operator.user, operator.role, reason, wall, expires)
                self._send(i, body, "operator", wall, time.monotonic(), None, cmd_id=cmd_id)
                answer = {"override": c.override.as_dict(), "cmd_id": cmd_id,
                          "replaced": end is not None,
                          "edge_online": self._live.edge_online(self._live.intersections[i].edge_id)}
        if isinstance(body, PlanBody):
            self._flush(TrafficWrites(plans=[PlanRecord(wall, intersection_id, "operator", body.plan,
                                                        body.cycle_s, body.offset_s, body.splits_s,
                                                        None, None, cmd_id)]))
        log.info("%s (%s) %s on %s until %s: %s", operator.user, operator.role, action,
                 intersection_id, expires.isoformat(), reason or "no reason given")
        return answer

    def release(self, intersection_id: str, operator: Operator, reason: str = "") -> dict[str, Any]:
        """End the active override; adaptive control resumes at once."""
        i = self._index_of(intersection_id)
        with self._operator_lock:
            with self._lock:
                c = self._control[i]
                ov = c.override
                if ov is None:
                    raise NoOverrideError(f"{intersection_id} has no active override")
                before = self._state_for_audit(i)
            wall = utc_now()
            command = None
            cmd_id = None
            if ov.action in ("hold", "force", "flash"):
                cmd_id = uuid.uuid4().hex
                command = TrafficCommand(
                    ts=wall, cmd_id=cmd_id, issuer=ISSUER, intersection_id=intersection_id,
                    expires_at=wall + timedelta(seconds=self._settings.command_ttl_s),
                    body=OverrideBody(action="release", phase=None))
            try:
                self._store.operator_action(
                    AuditRecord(operator.user, operator.role, "override_release", intersection_id,
                                "done", before=before, after={"override": None, "cmd_id": cmd_id},
                                detail=reason),
                    end=OverrideEnd(ov.id, wall, "released", operator.user),
                    command=_record(command, "operator", ov.id) if command is not None else None)
            except StorageError as exc:
                raise NotRecordedError(f"not done: the action could not be recorded ({exc})") from exc
            with self._lock:
                if c.override is ov:  # not expired meanwhile (expiry sent its own release)
                    c.override = None
                    if command is not None:
                        self._send(i, command.body, "operator", wall, time.monotonic(), None,
                                   cmd_id=cmd_id)
                    c.force_send = True
                    self._send_soon.add(i)
        log.info("%s (%s) released the override of %s", operator.user, operator.role, intersection_id)
        return {"released": ov.as_dict(), "cmd_id": cmd_id}

    def _index_of(self, intersection_id: str) -> int:
        i = self._index.get(intersection_id)
        if i is None:
            raise UnknownIntersectionError(f"no intersection {intersection_id!r} in the layout")
        return i

    def _check_plan(self, i: int, plan: PlanBody) -> None:
        phases = self._layout.intersections[i].phases
        if len(plan.splits_s) != len(phases):
            raise OperatorActionError(f"the plan has {len(plan.splits_s)} splits, "
                                      f"{self.ids[i]} has {len(phases)} phases")
        for p, (split, ph) in enumerate(zip(plan.splits_s, phases, strict=True)):
            least = ph.min_green_s + ph.yellow_s + ph.all_red_s
            if split < least:
                raise OperatorActionError(f"split of phase {p + 1} is {split:g} s, under its min green + "
                                          f"yellow + all-red ({least:g} s)")
        if abs(sum(plan.splits_s) - plan.cycle_s) > PLAN_SPLIT_TOLERANCE_S:
            raise OperatorActionError(f"splits add up to {sum(plan.splits_s):g} s, not the cycle "
                                      f"of {plan.cycle_s:g} s")
        if plan.offset_s >= plan.cycle_s:
            raise OperatorActionError("offset_s must be below cycle_s")

    def _state_for_audit(self, i: int) -> dict[str, Any]:
        c = self._control[i]
        return {"override": c.override.as_dict() if c.override is not None else None,
                "source": self._source(i, time.monotonic()),
                "plan": c.sent.model_dump() if c.sent is not None else None}

    # ------------------------------------------------------------------ reads (API thread)

    def _source(self, i: int, now: float) -> str:
        c = self._control[i]
        live = self._live.intersections[i]
        if c.override is not None:
            return "operator_override"
        if live.mode is None or not live.fresh(now, self._settings.stale_after_s):
            return "unknown"
        if live.mode in LOCAL_MODES:
            return "local_fallback"
        if live.mode in DARK_MODES:
            return live.mode.value
        return "adaptive" if c.sent_source == "adaptive" else "central"

    def sources(self) -> dict[str, str]:
        """Where each intersection's signal timing comes from now (for the wall map)."""
        now = time.monotonic()
        with self._lock:
            return {iid: self._source(i, now) for i, iid in enumerate(self.ids)}

    def map_rows(self) -> list[dict[str, Any]]:
        """What the wall map shows of every intersection, read under one lock (snapshot() per
        intersection costs ~50 ms a read for 1,000 of them): online, mode, plan source, signal,
        telemetry time and the core's degree of saturation."""
        now = time.monotonic()
        stale_s = self._settings.stale_after_s
        rows = []
        with self._lock:
            for i, iid in enumerate(self.ids):
                live, c = self._live.intersections[i], self._control[i]
                fresh = live.fresh(now, stale_s)
                rows.append({
                    "id": iid,
                    "online": fresh and self._live.edge_online(live.edge_id) is not False
                    and live.controller_offline_since is None,
                    "mode": live.mode.value if live.mode is not None and fresh else None,
                    "source": self._source(i, now),
                    "signal": "".join(live.signal) if fresh and live.signal else None,
                    "ts": live.ts.isoformat() if live.ts else None,
                    "ds_max": round(c.ds_max, 3) if c.computed is not None else None,
                    "computed_at": c.computed_at.isoformat() if c.computed_at else None,
                })
        return rows

    def _green_phase(self, i: int) -> int:
        """The 1-based phase green at intersection ``i`` now, for a hold that names none: the
        controller holds a named phase, so "hold the current green" is resolved here."""
        with self._lock:
            live = self._live.intersections[i]
            fresh = live.fresh(time.monotonic(), self._settings.stale_after_s)
            signal = tuple(live.signal) if fresh else ()
        greens = [p + 1 for p, state in enumerate(signal) if state == SignalState.GREEN]
        if len(greens) != 1:
            now = "no fresh signal state" if not signal else f"signal {''.join(signal)}"
            error = OperatorActionError(f"hold without a phase holds the phase that is green, "
                                        f"and there is none now ({now}): name the phase")
            error.status = 409
            raise error
        return greens[0]

    def snapshot(self, intersection_id: str) -> dict[str, Any] | None:
        i = self._index.get(intersection_id)
        if i is None:
            return None
        now = time.monotonic()
        with self._lock:
            live = self._live.intersections[i]
            c = self._control[i]
            x = self._layout.intersections[i]
            fresh = live.fresh(now, self._settings.stale_after_s)
            edge_online = self._live.edge_online(live.edge_id)
            return {
                "name": x.name, "x": x.x, "y": x.y, "phases": len(x.phases),
                "detectors": len(x.detectors),
                "live": {
                    "online": fresh and edge_online is not False and live.controller_offline_since is None,
                    "edge_id": live.edge_id, "edge_online": edge_online,
                    "ts": live.ts.isoformat() if live.ts else None,
                    "age_s": round(now - live.received_at, 1) if live.received_at is not None else None,
                    # A stale signal state is not shown as if it were current.
                    "mode": live.mode.value if live.mode is not None and fresh else None,
                    "controller_plan": live.plan if fresh else None,
                    "cycle_timer_s": live.cycle_timer_s if fresh else None,
                    "signal": list(live.signal) if fresh else None,
                    "det_occupancy_pct": list(live.det_occupancy_pct) if fresh else None,
                    "det_fault": list(live.det_fault) if fresh else None,
                },
                "plan": {
                    "source": self._source(i, now),
                    "sent": c.sent.model_dump() if c.sent is not None else None,
                    "sent_source": c.sent_source,
                    "sent_at": c.sent_at.isoformat() if c.sent_at else None,
                    "cmd_id": c.sent_cmd_id,
                },
                "computed": None if c.computed is None else {
                    **c.computed.model_dump(exclude={"type"}), "green_s": list(c.computed_green_s),
                    "ds": list(c.computed_ds), "ds_max": round(c.ds_max, 3),
                    "at": c.computed_at.isoformat() if c.computed_at else None,
                },
                "override": c.override.as_dict() if c.override is not None else None,
            }

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "running": self._thread is not None and self._thread.is_alive(),
                "intersections": len(self.ids), "pending_commands": len(self._pending),
                "unstored_records": self._backlog_records, "plan_steps": self.stats.plan_steps,
                "commands_sent": self.stats.commands_sent, "resends": self.stats.resends,
                "acks": self.stats.acks, "rejected": self.stats.rejected,
                "unanswered": self.stats.unanswered, "last_step_ms": round(self.stats.last_step_ms, 2),
                "last_plan_at": self.stats.last_plan_at.isoformat() if self.stats.last_plan_at else None,
                "not_sent": dict(self.stats.not_sent), "unknown_telemetry": self._live.unknown,
                "replayed_telemetry": self._live.replayed, "telemetry_taken": self._live.taken,
                "inbox": self._inbox.qsize(),
                "inbox_overflow": self.stats.inbox_overflow,
                "open_alarms": len(self._alarms.open),
                "surge_replans": self.stats.surge_replans,
            }

    # ------------------------------------------------------------------ storage

    def _flush(self, writes: TrafficWrites) -> None:
        """Queue one tick's records for the writer thread (never blocks on the database)."""
        if not len(writes):
            return
        with self._lock:
            self._backlog.append(writes)
            self._backlog_records += len(writes)
            if self._backlog_records > BACKLOG_MAX:
                self._shed()
        self._write_wake.set()

    def _shed(self) -> None:
        """Drop the oldest plan records (commands, alarms and audit rows are kept)."""
        dropped = 0
        for w in self._backlog:
            if self._backlog_records <= BACKLOG_MAX // 2:
                break
            dropped += len(w.plans)
            self._backlog_records -= len(w.plans)
            w.plans.clear()
        if dropped:
            log.error("database down too long: dropped the %d oldest unstored plan records", dropped)

    def _write_loop(self) -> None:
        delay_s = 0.5
        while True:
            stopping = self._writer_stop.is_set()
            if not stopping:
                self._write_wake.wait(delay_s if self._storage_failing else 1.0)
                self._write_wake.clear()
            with self._lock:
                batches, self._backlog = self._backlog, []
                records, self._backlog_records = self._backlog_records, 0
            if batches:
                try:
                    self._store.write_traffic(*batches)
                except StorageError as exc:
                    self.stats.storage_failures += 1
                    if not self._storage_failing:
                        log.error("%s; kept in memory, retrying", exc)
                        self._storage_failing = True
                    with self._lock:
                        self._backlog[:0] = batches
                        self._backlog_records += records
                    delay_s = min(delay_s * 2, 10.0)
                    if stopping:
                        log.error("stopping with %d traffic records not stored", self._backlog_records)
                        return
                    continue
                if self._storage_failing:
                    log.info("database is back; traffic records stored again")
                    self._storage_failing = False
                    delay_s = 0.5
            if stopping:
                return


def _differs(a: PlanBody, b: PlanBody, threshold_s: float) -> bool:
    if a.plan != b.plan or len(a.splits_s) != len(b.splits_s):
        return True
    if abs(a.cycle_s - b.cycle_s) >= threshold_s:
        return True
    cycle = max(b.cycle_s, 1e-9)
    offset_gap = abs(a.offset_s - b.offset_s) % cycle
    if min(offset_gap, cycle - offset_gap) >= threshold_s:
        return True
    return any(abs(x - y) >= threshold_s for x, y in zip(a.splits_s, b.splits_s, strict=True))


def _record(command: TrafficCommand, source: str, override_id: int | None) -> CommandRecord:
    body = command.body
    return CommandRecord(command.cmd_id, command.intersection_id, command.ts, command.expires_at,
                         command.issuer, source, "plan" if isinstance(body, PlanBody) else "override",
                         body.model_dump(), override_id)
