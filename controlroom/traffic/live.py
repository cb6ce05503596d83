"""Live state of every intersection in the layout, kept as the timing core's [I, D] arrays.

Owns the turning of telemetry into one plan interval's `Measurements` and the last known
signal state, mode and edge/controller availability. It must not run the core, send anything
or touch storage; callers hold one lock around it.

Detector counts. The edge agent sends in ``det_count`` the vehicles counted since its previous
message (`edge.controllers.CountTracker` differences the controller's wrapping 16-bit volume
registers on every scan and `edge.traffic.ReportGate` sums the scans; the simulated intersection
counts per poll): ``det_count = "interval"``, the default. Each message then covers the time
since the previous one (an early message for a demand jump covers less), but at most the edges'
telemetry period, so a lost QoS 0 message is time not seen rather than time with no traffic.
``det_count = "cumulative"`` reads the raw wrapping counter instead: an interval's vehicles
are the differences of consecutive readings modulo 65536, which also survives lost messages;
a difference no lane can produce (over ``MAX_LANE_VEH_S`` vehicles per second) is a counter
reset (power cycle, swapped controller): the baseline restarts and that detector is not
trusted for the interval.

Each interval's counts are scaled to the whole interval from the time the readings covered,
and a detector is valid for the core only when its readings covered at least half of the
interval, it reported no fault, and its intersection's telemetry is fresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from controlroom.timing import Measurements, Structure
from edge.contract import (
    EdgeState,
    EventKind,
    TrafficEvent,
    TrafficTelemetry,
    UnitMode,
)

COUNTER_MODULO = 1 << 16
# More than this per lane per second is not traffic (saturation flow is ~0.5 veh/s per lane).
MAX_LANE_VEH_S = 3.0
# A gap in cumulative readings longer than this is not bridged: the counter may have wrapped.
MAX_BRIDGED_GAP_S = 600.0
# Share of the interval the readings must cover for a detector to count as measured.
MIN_COVERAGE = 0.5
# Telemetry older than this when it arrives is history (an edge's outbox replaying an outage):
# stored by ingest, but neither the live signal state nor this interval's traffic. Edge clocks
# are NTP-synchronised well within this.
REPLAY_AGE_S = 30.0


@dataclass
class IntersectionLive:
    """What the last telemetry and events said about one intersection."""

    intersection_id: str
    index: int
    n_phases: int
    n_detectors: int
    edge_id: str | None = None
    epoch: int | None = None
    ts: datetime | None = None
    received_at: float | None = None  # time.monotonic() when the telemetry was taken in
    mode: UnitMode | None = None
    plan: int | None = None
    cycle_timer_s: float | None = None
    signal: tuple[str, ...] = ()
    det_count: tuple[int, ...] = ()
    det_occupancy_pct: tuple[float, ...] = ()
    det_fault: tuple[bool, ...] = ()
    controller_offline_since: datetime | None = None  # a device_offline event not yet undone
    controller_offline_detail: str = ""
    mismatch: str = ""  # telemetry that does not fit the layout
    messages: int = 0

    def fresh(self, now: float, stale_after_s: float) -> bool:
        return self.received_at is not None and now - self.received_at <= stale_after_s


@dataclass
class EdgeLive:
    epoch: int
    conn: int
    online: bool
    reason: str = ""
    ts: datetime | None = None


@dataclass(frozen=True)
class Interval:
    """One plan interval's measurements and how much of it the readings covered."""

    measurements: Measurements
    covered_s: np.ndarray  # [I]
    valid: np.ndarray  # [I,D]


@dataclass
class LiveState:
    """Per-intersection live state and the running interval's detector accumulators."""

    structure: Structure
    ids: tuple[str, ...]
    n_phases: tuple[int, ...]
    n_detectors: tuple[int, ...]
    cumulative: bool = False
    message_period_s: float = 1.0  # interval mode: one message covers at most this long
    intersections: list[IntersectionLive] = field(init=False)
    index: dict[str, int] = field(init=False)
    edges: dict[str, EdgeLive] = field(init=False, default_factory=dict)
    unknown: int = 0  # telemetry of intersections not in the layout
    replayed: int = 0  # telemetry too old to be live (see REPLAY_AGE_S)
    taken: int = 0  # telemetry taken into the live state (the control loop's intake)

    def __post_init__(self) -> None:
        n, _, _, d = self.structure.shape
        self.index = {iid: i for i, iid in enumerate(self.ids)}
        self.intersections = [IntersectionLive(iid, i, self.n_phases[i], self.n_detectors[i])
                              for i, iid in enumerate(self.ids)]
        self._count = np.zeros((n, d))
        self._occupancy_sum = np.zeros((n, d))
        self._occupancy_n = np.zeros((n, d))
        self._bad = np.zeros((n, d), bool)  # a fault or a counter reset during the interval
        self._covered_s = np.zeros(n)
        self._baseline = np.zeros((n, d), np.int64)
        self._has_baseline = np.zeros(n, bool)

    # ------------------------------------------------------------------ telemetry in

    def telemetry(self, t: TrafficTelemetry, received_at: float, wall: datetime | None = None) -> None:
        i = self.index.get(t.intersection_id)
        if i is None:
            self.unknown += 1
            return
        if wall is not None and (wall - t.ts).total_seconds() > REPLAY_AGE_S:
            self.replayed += 1
            return
        live = self.intersections[i]
        if live.ts is not None and t.ts <= live.ts:
            return  # older than what we have (reordered QoS 0, a resend from an outbox)
        dt_s = (t.ts - live.ts).total_seconds() if live.ts is not None else None
        same_source = live.edge_id == t.edge_id
        live.edge_id, live.epoch, live.ts, live.received_at = t.edge_id, t.epoch, t.ts, received_at
        live.mode, live.plan, live.cycle_timer_s = t.mode, t.plan, t.cycle_timer_s
        live.signal = tuple(s.value for s in t.signal)
        live.messages += 1
        self.taken += 1
        if (live.controller_offline_since is not None and t.ts > live.controller_offline_since):
            live.controller_offline_since = None  # it answers again
        n_det = live.n_detectors
        problems = []
        if len(t.signal) != live.n_phases:
            problems.append(f"signal has {len(t.signal)} phases, the layout {live.n_phases}")
        if len(t.det_count) != n_det:
            problems.append(f"telemetry has {len(t.det_count)} detectors, the layout {n_det}")
        live.mismatch = "; ".join(problems)
        if len(t.det_count) != n_det:
            live.det_count, live.det_occupancy_pct, live.det_fault = (), (), ()
            self._has_baseline[i] = False
            return
        live.det_count, live.det_occupancy_pct, live.det_fault = (
            t.det_count, t.det_occupancy_pct, t.det_fault)
        raw = np.asarray(t.det_count, np.int64)
        self._occupancy_sum[i, :n_det] += t.det_occupancy_pct
        self._occupancy_n[i, :n_det] += 1
        self._bad[i, :n_det] |= np.asarray(t.det_fault, bool)
        if self.cumulative:
            bridged = (same_source and self._has_baseline[i] and dt_s is not None
                       and 0 < dt_s <= MAX_BRIDGED_GAP_S)
            if bridged:
                assert dt_s is not None
                delta = (raw - self._baseline[i, :n_det]) % COUNTER_MODULO
                reset = delta > MAX_LANE_VEH_S * dt_s + 2
                self._bad[i, :n_det] |= reset
                self._count[i, :n_det] += np.where(reset, 0, delta)
                self._covered_s[i] += dt_s
            self._baseline[i, :n_det] = raw
            self._has_baseline[i] = True
        else:
            self._count[i, :n_det] += raw
            period = self.message_period_s
            self._covered_s[i] += min(dt_s, period) if dt_s is not None and same_source else period

    def event(self, e: TrafficEvent) -> None:
        i = self.index.get(e.intersection_id)
        if i is None:
            return
        live = self.intersections[i]
        if e.kind is EventKind.DEVICE_OFFLINE:
            live.controller_offline_since = e.ts
            live.controller_offline_detail = e.detail
        elif e.kind is EventKind.DEVICE_ONLINE:
            if live.controller_offline_since is None or e.ts >= live.controller_offline_since:
                live.controller_offline_since = None

    def edge_state(self, s: EdgeState) -> None:
        """Ordered like storage: by (epoch, conn), and offline wins for the same pair."""
        known = self.edges.get(s.edge_id)
        online = s.status == "online"
        if known is not None and (s.epoch, s.conn, not online) <= (known.epoch, known.conn,
                                                                    not known.online):
            return
        self.edges[s.edge_id] = EdgeLive(s.epoch, s.conn, online, s.reason, s.ts)

    def edge_online(self, edge_id: str | None) -> bool | None:
        """True/False when the edge's state is known, None when it never announced itself."""
        if edge_id is None or edge_id not in self.edges:
            return None
        return self.edges[edge_id].online

    # ------------------------------------------------------------------ interval out

    def take_interval(self, interval_s: float, now: float, stale_after_s: float) -> Interval:
        """The measurements of the interval just ended; the accumulators start over."""
        interval = self.peek_interval(interval_s, now, stale_after_s)
        self._count[:] = 0.0
        self._occupancy_sum[:] = 0.0
        self._occupancy_n[:] = 0.0
        self._bad[:] = False
        self._covered_s[:] = 0.0
        return interval

    def running(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The running interval so far, read only: vehicles per detector [I,D], seconds the
        readings covered [I], and detectors that reported a fault or a counter reset [I,D]."""
        return self._count, self._covered_s, self._bad

    def peek_interval(self, interval_s: float, now: float, stale_after_s: float) -> Interval:
        """The measurements of the running interval as if it ended now; nothing starts over
        (a surge re-plan looks ahead, the plan step still takes the whole interval)."""
        s = self.structure
        covered = self._covered_s.copy()
        fresh = np.array([x.fresh(now, stale_after_s) and not x.mismatch
                          for x in self.intersections], bool)
        enough = covered >= MIN_COVERAGE * interval_s
        valid = s.detector_valid & ~self._bad & (fresh & enough)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(covered > 0, interval_s / np.where(covered > 0, covered, 1.0), 0.0)
            occupancy = np.where(self._occupancy_n > 0,
                                 self._occupancy_sum / np.maximum(self._occupancy_n, 1) / 100.0, 0.0)
        count = self._count * scale[:, None]
        # Loops give no queue; the core's queue term stays 0 until camera zones report one.
        queue = np.zeros_like(count)
        interval = Interval(Measurements(count=count, occupancy=occupancy, queue_veh=queue,
                                         valid=valid, interval_s=interval_s if math.isfinite(interval_s)
                                         else float("nan")), covered, valid)
        return interval

