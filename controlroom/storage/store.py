"""Writes validated contract messages to PostgreSQL in batches and answers the API's reads.

Telemetry goes in with binary COPY (one row per message, one row per detector); the
low-volume kinds (events, acks, edge state) are inserted with ON CONFLICT DO NOTHING on
(edge_id, epoch, seq), which is where QoS 1 redeliveries and outbox resends die.

The traffic service's records (plans, commands and their status, alarms, overrides, the audit
log) are written in one transaction per service tick (`write_traffic`) or per operator action
(`operator_action`); command status only moves forward and rows are closed, never deleted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from edge.contract import CommandAck, EdgeState, TrafficEvent, TrafficTelemetry

log = logging.getLogger(__name__)


class StorageError(Exception):
    """A batch could not be written; nothing of it was committed."""


@dataclass(slots=True)
class Batch:
    """One write: messages grouped by kind, in arrival order."""

    telemetry: list[TrafficTelemetry] = field(default_factory=list)
    events: list[TrafficEvent] = field(default_factory=list)
    acks: list[tuple[str, CommandAck]] = field(default_factory=list)  # (domain, ack)
    edge_states: list[EdgeState] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.telemetry) + len(self.events) + len(self.acks) + len(self.edge_states)


@dataclass(frozen=True, slots=True)
class WriteResult:
    telemetry_rows: int
    detector_rows: int
    events_new: int
    acks_new: int
    edge_states_applied: int


# Edge state is ordered by (epoch, conn) and, for the same connection, offline wins: a will
# that follows its own birth is honoured, a late will of an older session is not. A second
# birth of the same connection only brings a new inventory.
_UPSERT_EDGE = """
INSERT INTO edge AS e (edge_id, epoch, conn, online, status_since, last_seen, inventory, versions, reason)
VALUES (%(edge_id)s, %(epoch)s, %(conn)s, %(online)s, %(ts)s, %(ts)s, %(inventory)s, %(versions)s, %(reason)s)
ON CONFLICT (edge_id) DO UPDATE SET
    epoch = excluded.epoch, conn = excluded.conn, online = excluded.online,
    status_since = CASE WHEN e.online = excluded.online THEN e.status_since ELSE excluded.status_since END,
    last_seen = greatest(e.last_seen, excluded.last_seen),
    inventory = CASE WHEN excluded.online THEN excluded.inventory ELSE e.inventory END,
    versions = CASE WHEN excluded.online THEN excluded.versions ELSE e.versions END,
    reason = excluded.reason
WHERE (excluded.epoch, excluded.conn, NOT excluded.online) > (e.epoch, e.conn, NOT e.online)
   -- a birth announced again in the same connection with what the edge learnt since (a
   -- controller's model and firmware, a camera found): the inventory is replaced
   OR ((excluded.epoch, excluded.conn) = (e.epoch, e.conn) AND excluded.online AND e.online
       AND (excluded.inventory, excluded.versions) IS DISTINCT FROM (e.inventory, e.versions))
RETURNING edge_id
"""

_LOG_EDGE = """
INSERT INTO edge_state_log (edge_id, epoch, conn, seq, ts, status, applied, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""

_INSERT_EVENT = """
INSERT INTO traffic_event (edge_id, epoch, seq, ts, intersection_id, kind, severity, detail, data)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (edge_id, epoch, seq) DO NOTHING
"""

_INSERT_ACK = """
INSERT INTO command_ack (edge_id, epoch, seq, ts, domain, target_id, cmd_id, status, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (edge_id, epoch, seq) DO NOTHING
"""

_LATEST = """
UPDATE intersection AS i SET
    edge_id = u.edge_id, last_ts = u.ts, mode = u.mode, plan = u.plan, cycle_timer_s = u.cycle_timer_s,
    signal = u.signal, det_count = u.det_count, det_occupancy_pct = u.det_occupancy_pct,
    det_fault = u.det_fault
FROM (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(
        id integer, edge_id text, ts timestamptz, mode text, plan smallint, cycle_timer_s real,
        signal text, det_count integer[], det_occupancy_pct real[], det_fault boolean[])) AS u
WHERE i.id = u.id AND (i.last_ts IS NULL OR i.last_ts < u.ts)
"""


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command as sent: the contract's fields plus where it came from."""

    cmd_id: str
    intersection_id: str
    issued_at: datetime
    expires_at: datetime
    issuer: str
    source: str  # adaptive | operator | system
    kind: str  # plan | override
    body: dict[str, Any]
    override_id: int | None = None


@dataclass(frozen=True, slots=True)
class PlanRecord:
    computed_at: datetime
    intersection_id: str
    source: str
    plan: int
    cycle_s: float
    offset_s: float
    splits_s: tuple[float, ...]
    green_s: tuple[float, ...] | None
    ds_max: float | None
    cmd_id: str


@dataclass(frozen=True, slots=True)
class AlarmKey:
    code: str
    intersection_id: str
    subject: str = ""


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    key: AlarmKey
    severity: str
    text: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    user_name: str
    role: str
    action: str
    target: str
    outcome: str  # done | denied | failed
    before: Any = None
    after: Any = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    intersection_id: str
    action: str  # hold | force | flash | plan
    phase: int | None
    plan: dict[str, Any] | None
    user_name: str
    role: str
    reason: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OverrideEnd:
    override_id: int
    at: datetime
    reason: str  # released | expired | replaced
    by: str


@dataclass(slots=True)
class TrafficWrites:
    """What one tick of the traffic service changed; written in one transaction."""

    plans: list[PlanRecord] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)
    # (cmd_id, status, at, reason): applied only if it moves the status forward
    statuses: list[tuple[str, str, datetime, str]] = field(default_factory=list)
    # (cmd_id, attempts, last_sent_at)
    resends: list[tuple[str, int, datetime]] = field(default_factory=list)
    alarms_opened: list[AlarmRecord] = field(default_factory=list)
    alarms_cleared: list[tuple[AlarmKey, datetime]] = field(default_factory=list)
    overrides_ended: list[OverrideEnd] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.plans) + len(self.commands) + len(self.statuses) + len(self.resends)
                + len(self.alarms_opened) + len(self.alarms_cleared) + len(self.overrides_ended)
                + len(self.audit))


# sent < unanswered < accepted < applied = rejected: a late "accepted" never undoes "applied".
_STATUS_RANK = "array_position(ARRAY['sent','unanswered','accepted','applied','rejected'], {})"
_UPDATE_STATUS = f"""
UPDATE traffic_command SET status = %(status)s, status_at = %(at)s, reason = %(reason)s
WHERE cmd_id = %(cmd_id)s
  AND least({_STATUS_RANK.format('status')}, 4) < least({_STATUS_RANK.format('%(status)s')}, 4)
"""

_INSERT_COMMAND = """
INSERT INTO traffic_command (cmd_id, intersection_id, issued_at, expires_at, issuer, source, kind,
                             body, last_sent_at, status_at, override_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (cmd_id) DO NOTHING
"""

_INSERT_PLAN = """
INSERT INTO traffic_plan (computed_at, intersection_id, source, plan, cycle_s, offset_s, splits_s,
                          green_s, ds_max, cmd_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

_OPEN_ALARM = """
INSERT INTO traffic_alarm (code, intersection_id, subject, severity, text, data, opened_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (code, intersection_id, subject) WHERE cleared_at IS NULL DO NOTHING
"""

_CLEAR_ALARM = """
UPDATE traffic_alarm SET cleared_at = %s
WHERE code = %s AND intersection_id = %s AND subject = %s AND cleared_at IS NULL
"""

_END_OVERRIDE = """
UPDATE traffic_override SET ended_at = %s, end_reason = %s, ended_by = %s
WHERE id = %s AND ended_at IS NULL
"""

_INSERT_AUDIT = """
INSERT INTO audit_log (user_name, role, action, target, outcome, before, after, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

_OVERRIDE_COLUMNS = ("id, intersection_id, action, phase, plan, user_name, role, reason, created_at, "
                     "expires_at, ended_at, end_reason, ended_by")


class Store:
    """The control room's storage; one instance per process, sharing a connection pool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._intersection_ids: dict[str, int] = {}

    # ------------------------------------------------------------------ writes

    def write(self, batch: Batch) -> WriteResult:
        try:
            with self._pool.connection() as conn, conn.transaction():
                ids = self._resolve_intersections(conn, batch.telemetry)
                det_rows = self._copy_telemetry(conn, batch.telemetry, ids)
                self._update_latest(conn, batch.telemetry, ids)
                events_new = self._insert_many(conn, _INSERT_EVENT, [
                    (e.edge_id, e.epoch, e.seq, e.ts, e.intersection_id, e.kind.value, e.severity,
                     e.detail, json.dumps(e.data)) for e in batch.events])
                acks_new = self._insert_many(conn, _INSERT_ACK, [
                    (a.edge_id, a.epoch, a.seq, a.ts, domain, a.target_id, a.cmd_id, a.status, a.reason)
                    for domain, a in batch.acks])
                states = sum(self._apply_edge_state(conn, s) for s in batch.edge_states)
        except psycopg.Error as exc:
            # The cached ids may name rows of the rolled-back transaction.
            self._intersection_ids.clear()
            raise StorageError(f"batch of {len(batch)} messages not stored: {exc}") from exc
        return WriteResult(len(batch.telemetry), det_rows, events_new, acks_new, states)

    def _resolve_intersections(self, conn: psycopg.Connection,
                               telemetry: Sequence[TrafficTelemetry]) -> dict[str, int]:
        missing: dict[str, str] = {}
        for t in telemetry:
            if t.intersection_id not in self._intersection_ids:
                missing[t.intersection_id] = t.edge_id
        if missing:
            rows = conn.execute(
                "INSERT INTO intersection (intersection_id, edge_id) "
                "SELECT * FROM unnest(%s::text[], %s::text[]) "
                "ON CONFLICT (intersection_id) DO UPDATE SET edge_id = excluded.edge_id "
                "RETURNING intersection_id, id",
                (list(missing), list(missing.values())),
            ).fetchall()
            self._intersection_ids.update(dict(rows))
        return self._intersection_ids

    @staticmethod
    def _copy_telemetry(conn: psycopg.Connection, telemetry: Sequence[TrafficTelemetry],
                        ids: dict[str, int]) -> int:
        if not telemetry:
            return 0
        detector_rows = 0
        with conn.cursor() as cur:
            with cur.copy("COPY traffic_telemetry (ts, intersection, edge_id, epoch, seq, mode, plan, "
                          "cycle_timer_s, signal) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["timestamptz", "int4", "text", "int8", "int8", "text", "int2",
                                "float4", "text"])
                for t in telemetry:
                    copy.write_row((t.ts, ids[t.intersection_id], t.edge_id, t.epoch, t.seq,
                                    t.mode.value, t.plan, t.cycle_timer_s, "".join(t.signal)))
            with cur.copy("COPY detector_sample (ts, intersection, detector, count, occupancy_pct, "
                          "fault) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["timestamptz", "int4", "int2", "int4", "float4", "bool"])
                write_row = copy.write_row
                for t in telemetry:
                    iid = ids[t.intersection_id]
                    for detector, (count, occ, fault) in enumerate(
                            zip(t.det_count, t.det_occupancy_pct, t.det_fault, strict=True)):
                        write_row((t.ts, iid, detector, count, occ, fault))
                    detector_rows += len(t.det_count)
        return detector_rows

    @staticmethod
    def _update_latest(conn: psycopg.Connection, telemetry: Sequence[TrafficTelemetry],
                       ids: dict[str, int]) -> None:
        latest: dict[str, TrafficTelemetry] = {}
        for t in telemetry:
            seen = latest.get(t.intersection_id)
            if seen is None or seen.ts < t.ts:
                latest[t.intersection_id] = t
        if not latest:
            return
        rows = [{
            "id": ids[t.intersection_id], "edge_id": t.edge_id, "ts": t.ts.isoformat(),
            "mode": t.mode.value, "plan": t.plan, "cycle_timer_s": t.cycle_timer_s,
            "signal": "".join(t.signal), "det_count": list(t.det_count),
            "det_occupancy_pct": list(t.det_occupancy_pct), "det_fault": list(t.det_fault),
        } for t in latest.values()]
        conn.execute(_LATEST, (json.dumps(rows),))

    @staticmethod
    def _insert_many(conn: psycopg.Connection, sql: str, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        with conn.cursor() as cur:
            cur.executemany(sql, rows)
            return max(cur.rowcount, 0)

    @staticmethod
    def _apply_edge_state(conn: psycopg.Connection, s: EdgeState) -> int:
        applied = conn.execute(_UPSERT_EDGE, {
            "edge_id": s.edge_id, "epoch": s.epoch, "conn": s.conn, "online": s.status == "online",
            "ts": s.ts, "inventory": json.dumps([d.model_dump() for d in s.inventory]),
            "versions": json.dumps(s.versions), "reason": s.reason,
        }).fetchone() is not None
        conn.execute(_LOG_EDGE, (s.edge_id, s.epoch, s.conn, s.seq, s.ts, s.status, applied, s.reason))
        if not applied:
            log.info("ignored stale %s state of edge %s (epoch %d, conn %d)",
                     s.status, s.edge_id, s.epoch, s.conn)
        return int(applied)

    # ------------------------------------------------------------------ traffic control writes

    def write_traffic(self, *batches: TrafficWrites) -> None:
        """What service ticks changed, tick after tick in their order, in one transaction (all
        or nothing); the order keeps an alarm that cleared and opened again in two rows."""
        total = sum(len(w) for w in batches)
        if not total:
            return
        try:
            with self._pool.connection() as conn, conn.transaction():
                for writes in batches:
                    self._write_traffic(conn, writes)
        except psycopg.Error as exc:
            raise StorageError(f"traffic records ({total}) not stored: {exc}") from exc

    def _write_traffic(self, conn: psycopg.Connection, writes: TrafficWrites) -> None:
        self._insert_many(conn, _INSERT_COMMAND, [_command_row(c) for c in writes.commands])
        self._insert_many(conn, _INSERT_PLAN, [
            (p.computed_at, p.intersection_id, p.source, p.plan, p.cycle_s, p.offset_s,
             list(p.splits_s), list(p.green_s) if p.green_s is not None else None,
             p.ds_max, p.cmd_id) for p in writes.plans])
        if writes.resends:
            with conn.cursor() as cur:
                cur.executemany("UPDATE traffic_command SET attempts = %s, last_sent_at = %s "
                                "WHERE cmd_id = %s",
                                [(n, at, cmd_id) for cmd_id, n, at in writes.resends])
        if writes.statuses:
            with conn.cursor() as cur:
                cur.executemany(_UPDATE_STATUS, [
                    {"cmd_id": cmd_id, "status": status, "at": at, "reason": reason}
                    for cmd_id, status, at, reason in writes.statuses])
        self._insert_many(conn, _OPEN_ALARM, [
            (a.key.code, a.key.intersection_id, a.key.subject, a.severity, a.text,
             json.dumps(a.data), a.at) for a in writes.alarms_opened])
        self._insert_many(conn, _CLEAR_ALARM, [
            (at, k.code, k.intersection_id, k.subject) for k, at in writes.alarms_cleared])
        self._insert_many(conn, _END_OVERRIDE, [
            (e.at, e.reason, e.by, e.override_id) for e in writes.overrides_ended])
        self._insert_many(conn, _INSERT_AUDIT, [_audit_row(a) for a in writes.audit])

    def operator_action(self, audit: AuditRecord, *, end: OverrideEnd | None = None,
                        start: OverrideRecord | None = None,
                        command: CommandRecord | None = None) -> int | None:
        """One operator action in one transaction: end the active override, start a new one,
        record the command that carries it and the audit row. Returns the new override's id."""
        new_id: int | None = None
        try:
            with self._pool.connection() as conn, conn.transaction():
                if end is not None:
                    conn.execute(_END_OVERRIDE, (end.at, end.reason, end.by, end.override_id))
                if start is not None:
                    row = conn.execute(
                        "INSERT INTO traffic_override (intersection_id, action, phase, plan, user_name, "
                        "role, reason, created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "RETURNING id",
                        (start.intersection_id, start.action, start.phase,
                         json.dumps(start.plan) if start.plan is not None else None, start.user_name,
                         start.role, start.reason, start.created_at, start.expires_at)).fetchone()
                    assert row is not None  # RETURNING of an INSERT that did not raise
                    new_id = int(row[0])
                if command is not None:
                    if start is not None:
                        command = dataclasses.replace(command, override_id=new_id)
                    conn.execute(_INSERT_COMMAND, _command_row(command))
                conn.execute(_INSERT_AUDIT, _audit_row(audit))
        except psycopg.Error as exc:
            raise StorageError(f"operator action {audit.action} on {audit.target} not stored: {exc}") from exc
        return new_id

    def audit(self, record: AuditRecord) -> None:
        try:
            with self._pool.connection() as conn:
                conn.execute(_INSERT_AUDIT, _audit_row(record))
        except psycopg.Error as exc:
            raise StorageError(f"audit row not stored: {exc}") from exc

    # ------------------------------------------------------------------ traffic control reads

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                return cur.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise StorageError(f"read failed: {exc}") from exc

    def alarms(self, *, open_only: bool = True, intersection_id: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        where = ["cleared_at IS NULL"] if open_only else []
        params: list[Any] = []
        if intersection_id is not None:
            where.append("intersection_id = %s")
            params.append(intersection_id)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        return self._rows(
            "SELECT id, code, intersection_id, subject, severity, text, data, opened_at, cleared_at "
            f"FROM traffic_alarm {clause}ORDER BY opened_at DESC, id DESC LIMIT %s", [*params, limit])

    def open_alarm_counts(self) -> dict[str, int]:
        """Open traffic alarms per intersection (the wall map reads this twice a second)."""
        rows = self._rows("SELECT intersection_id, count(*) AS n FROM traffic_alarm "
                          "WHERE cleared_at IS NULL GROUP BY intersection_id")
        return {r["intersection_id"]: int(r["n"]) for r in rows}

    def active_overrides(self) -> list[dict[str, Any]]:
        return self._rows(f"SELECT {_OVERRIDE_COLUMNS} FROM traffic_override WHERE ended_at IS NULL "
                          "ORDER BY id")

    def overrides(self, intersection_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows(f"SELECT {_OVERRIDE_COLUMNS} FROM traffic_override WHERE intersection_id = %s "
                          "ORDER BY id DESC LIMIT %s", (intersection_id, limit))

    def last_command(self, intersection_id: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT cmd_id, issued_at, expires_at, issuer, source, kind, body, attempts, last_sent_at, "
            "status, status_at, reason, override_id FROM traffic_command WHERE intersection_id = %s "
            "ORDER BY issued_at DESC LIMIT 1", (intersection_id,))
        return rows[0] if rows else None

    def command(self, cmd_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM traffic_command WHERE cmd_id = %s", (cmd_id,))
        return rows[0] if rows else None

    def acks(self, cmd_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT edge_id, ts, status, reason FROM command_ack WHERE cmd_id = %s "
                          "ORDER BY ts, seq", (cmd_id,))

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM audit_log ORDER BY id DESC LIMIT %s", (limit,))

    def intersection(self, intersection_id: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT i.intersection_id, i.edge_id, coalesce(e.online, false) AS edge_online, "
            "i.last_ts, i.mode, i.plan, i.cycle_timer_s, i.signal, i.det_count, "
            "i.det_occupancy_pct, i.det_fault "
            "FROM intersection i LEFT JOIN edge e USING (edge_id) WHERE i.intersection_id = %s",
            (intersection_id,))
        return rows[0] if rows else None

    # ------------------------------------------------------------------ reads

    def edges(self) -> list[dict[str, Any]]:
        with self._pool.connection() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(
                "SELECT edge_id, online, epoch, conn, status_since, last_seen, inventory, versions, reason "
                "FROM edge ORDER BY edge_id").fetchall()

    def intersections(self) -> list[dict[str, Any]]:
        with self._pool.connection() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(
                "SELECT i.intersection_id, i.edge_id, coalesce(e.online, false) AS edge_online, "
                "i.last_ts, i.mode, i.plan, i.cycle_timer_s, i.signal, i.det_count, "
                "i.det_occupancy_pct, i.det_fault "
                "FROM intersection i LEFT JOIN edge e USING (edge_id) ORDER BY i.intersection_id"
            ).fetchall()

    def ping(self) -> datetime:
        with self._pool.connection() as conn:
            return conn.execute("SELECT now()").fetchone()[0]

    # ------------------------------------------------------------------ alarm acknowledgement

    def alarm_board(self, *, open_only: bool = True, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Traffic alarms with their acknowledgement (migration 0008) and the intersection's
        edge, newest first; ``since``/``until``: alarms active at some time in between."""
        return self._rows(
            f"SELECT {BOARD_COLUMNS}, a.intersection_id, a.subject, i.edge_id "
            "FROM traffic_alarm a LEFT JOIN intersection i USING (intersection_id) "
            f"WHERE {BOARD_WHERE} ORDER BY a.opened_at DESC, a.id DESC LIMIT %(limit)s",
            board_params(open_only, since, until, limit))

    def acknowledge_alarm(self, alarm_id: int, *, user: str, role: str, comment: str,
                          target: str) -> AlarmAck:
        """Acknowledge one traffic alarm and audit it, in one transaction (see
        `acknowledge_in`)."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                return acknowledge_in(conn, "traffic_alarm", alarm_id, user=user, role=role,
                                      comment=comment, target=target)
        except psycopg.Error as exc:
            raise StorageError(f"acknowledgement of alarm {target} not stored: {exc}") from exc

    # ------------------------------------------------------------------ traffic history

    def traffic_history(self, intersection_id: str, since: datetime, until: datetime,
                        bucket_s: int) -> dict[str, Any] | None:
        """One intersection's stored telemetry in [since, until), in buckets of ``bucket_s``
        seconds aligned to 2000-01-01 UTC (as the detector_15min rollup). None: no such
        intersection stored.

        ``period_s``: the median gap between its telemetry messages (the edge's poll period).
        ``detectors``: per bucket and detector the vehicles counted, the samples and the mean
        occupancy. ``phases``: per bucket and phase the samples shown green, yellow, red and
        flashing, and ``wait_s``, the sum over the samples of the signal wait of a vehicle
        arriving then: during red or yellow, the time to the end of that red/yellow run (the
        run's last sample + one period), else 0 — Webster's uniform (D/D/1) wait with the queue
        discharge left out, a lower bound. A gap of more than 2.5 periods ends a run; the run
        still going at ``until`` counts only up to then. ``served``: per detector and phase
        the vehicles it counted while that phase alone showed green. Duplicated messages (QoS redeliveries
        keep their ts) count once. Plain SQL (date_bin, window functions): the same on
        TimescaleDB hypertables and on plain tables.
        """
        rows = self._rows("SELECT id FROM intersection WHERE intersection_id = %s",
                          (intersection_id,))
        if not rows:
            return None
        window = {"id": rows[0]["id"], "since": since, "until": until,
                  "bucket": timedelta(seconds=bucket_s)}
        period = self._rows(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS period_s FROM ("
            "  SELECT extract(epoch FROM ts - lag(ts) OVER (ORDER BY ts))::float8 AS gap FROM ("
            "    SELECT DISTINCT ts FROM traffic_telemetry WHERE intersection = %(id)s"
            "    AND ts >= %(since)s AND ts < %(until)s) t) g WHERE gap > 0", window)
        period_s = period[0]["period_s"] if period and period[0]["period_s"] else None
        detectors = self._rows(
            "SELECT date_bin(%(bucket)s, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, "
            "detector, sum(count)::bigint AS vehicles, count(*) AS samples, "
            "avg(occupancy_pct)::float8 AS occupancy_pct, bool_or(fault) AS fault FROM ("
            "  SELECT DISTINCT ON (ts, detector) ts, detector, count, occupancy_pct, fault"
            "  FROM detector_sample WHERE intersection = %(id)s AND ts >= %(since)s"
            "  AND ts < %(until)s ORDER BY ts, detector) d "
            "GROUP BY 1, 2 ORDER BY 1, 2", window)
        step_s = period_s or 1.0
        phases = self._rows(
            "WITH t AS ("
            "  SELECT DISTINCT ON (ts) ts, signal FROM traffic_telemetry WHERE intersection = %(id)s"
            "  AND ts >= %(since)s AND ts < %(until)s ORDER BY ts),"
            " g AS (SELECT ts, signal, extract(epoch FROM ts - lag(ts) OVER (ORDER BY ts)) AS gap"
            "  FROM t),"
            " s AS (SELECT g.ts, g.gap, p.phase, substr(g.signal, p.phase, 1) AS lamp,"
            "  substr(g.signal, p.phase, 1) IN ('R', 'Y') AS waiting"
            "  FROM g CROSS JOIN LATERAL generate_series(1, length(g.signal)) AS p(phase)),"
            " b AS (SELECT ts, phase, lamp, waiting, CASE WHEN lag(waiting) OVER w IS DISTINCT FROM"
            "  waiting OR gap > %(max_gap)s THEN 1 ELSE 0 END AS brk FROM s"
            "  WINDOW w AS (PARTITION BY phase ORDER BY ts)),"
            " r AS (SELECT ts, phase, lamp, waiting,"
            "  sum(brk) OVER (PARTITION BY phase ORDER BY ts) AS run FROM b),"
            " e AS (SELECT ts, phase, lamp, waiting,"
            "  max(ts) OVER (PARTITION BY phase, run) AS run_end FROM r) "
            "SELECT date_bin(%(bucket)s, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, "
            "phase, count(*) AS samples, count(*) FILTER (WHERE lamp = 'G') AS green, "
            "count(*) FILTER (WHERE lamp = 'Y') AS yellow, count(*) FILTER (WHERE lamp = 'R') AS red, "
            "count(*) FILTER (WHERE lamp IN ('y', 'r')) AS flashing, "
            "coalesce(sum(extract(epoch FROM run_end - ts) + %(step)s) FILTER (WHERE waiting), 0)"
            "::float8 AS wait_s "
            "FROM e GROUP BY 1, 2 ORDER BY 1, 2",
            {**window, "step": step_s, "max_gap": 2.5 * step_s})
        # Stop-line loops count while their phase is green: the phase that was green when a
        # detector counted its vehicles is the phase it belongs to (learned, not configured).
        served = self._rows(
            "SELECT d.detector, p.phase, sum(d.count)::bigint AS vehicles FROM detector_sample d "
            "JOIN traffic_telemetry t ON t.intersection = d.intersection AND t.ts = d.ts "
            "CROSS JOIN LATERAL generate_series(1, length(t.signal)) AS p(phase) "
            "WHERE d.intersection = %(id)s AND d.ts >= %(since)s AND d.ts < %(until)s "
            "AND d.count > 0 AND NOT d.fault AND substr(t.signal, p.phase, 1) = 'G' "
            "GROUP BY 1, 2 ORDER BY 1, 2", window)
        return {"period_s": period_s, "detectors": detectors, "phases": phases,
                "served": served}


def _command_row(c: CommandRecord) -> tuple[Any, ...]:
    return (c.cmd_id, c.intersection_id, c.issued_at, c.expires_at, c.issuer, c.source, c.kind,
            json.dumps(c.body), c.issued_at, c.issued_at, c.override_id)


def _audit_row(a: AuditRecord) -> tuple[Any, ...]:
    return (a.user_name, a.role, a.action, a.target, a.outcome,
            json.dumps(a.before, default=str) if a.before is not None else None,
            json.dumps(a.after, default=str) if a.after is not None else None, a.detail)


def open_pool(conninfo: str, min_size: int = 1, max_size: int = 4, name: str = "kota") -> ConnectionPool:
    pool = ConnectionPool(conninfo, min_size=min_size, max_size=max_size, name=name, open=False)
    pool.open(wait=True, timeout=15)
    return pool


# ---------------------------------------------------------------------- alarm acknowledgement
# Shared by the three alarm tables (traffic_alarm here, cctv_alarm, attendance_alarm), which
# migration 0008 gave the same ack columns; each store calls it in its own transaction.

BOARD_COLUMNS = ("a.id, a.code, a.severity, a.text, a.data, a.opened_at, a.cleared_at, "
                  "a.acked_at, a.acked_by, a.acked_role, a.ack_comment")
# Open only, or every alarm active at some time between since and until (either may be NULL).
BOARD_WHERE = ("(NOT %(open_only)s OR a.cleared_at IS NULL) "
                "AND (%(since)s::timestamptz IS NULL OR a.cleared_at IS NULL "
                "OR a.cleared_at >= %(since)s) "
                "AND (%(until)s::timestamptz IS NULL OR a.opened_at < %(until)s)")
_ACK_STATE = "id, code, severity, opened_at, cleared_at, acked_at, acked_by, acked_role, ack_comment"


def board_params(open_only: bool, since: datetime | None, until: datetime | None,
                  limit: int) -> dict[str, Any]:
    return {"open_only": open_only, "since": since, "until": until, "limit": limit}


@dataclass(frozen=True, slots=True)
class AlarmAck:
    """What an acknowledgement did: ``acked`` (row: the alarm after), ``already`` (nothing
    changed; row: the alarm as it stands, with who acknowledged it) or ``missing``."""

    outcome: str  # acked | already | missing
    row: dict[str, Any] | None = None


def acknowledge_in(conn: psycopg.Connection, table: str, alarm_id: int, *, user: str, role: str,
                   comment: str, target: str) -> AlarmAck:
    """In the caller's transaction: set the alarm's ack columns if it is not acknowledged yet
    (the row is locked first, so two operators acknowledging at once get one ``acked`` and one
    ``already``) and write the audit row with the state before and after."""
    if table not in ("traffic_alarm", "cctv_alarm", "attendance_alarm"):
        raise ValueError(f"not an alarm table: {table}")
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        before = cur.execute(f"SELECT {_ACK_STATE} FROM {table} WHERE id = %s FOR UPDATE",
                             (alarm_id,)).fetchone()
        if before is None:
            return AlarmAck("missing")
        if before["acked_at"] is not None:
            return AlarmAck("already", before)
        after = cur.execute(
            f"UPDATE {table} SET acked_at = now(), acked_by = %s, acked_role = %s, "
            f"ack_comment = %s WHERE id = %s RETURNING {_ACK_STATE}",
            (user, role, comment, alarm_id)).fetchone()
        assert after is not None  # the row is locked by this transaction
        fields = ("acked_at", "acked_by", "acked_role", "ack_comment")
        alarm = {"code": before["code"], "severity": before["severity"],
                 "opened_at": before["opened_at"], "cleared_at": before["cleared_at"]}
        cur.execute(_INSERT_AUDIT, _audit_row(AuditRecord(
            user, role, "alarm_ack", target, "done",
            before={**alarm, **{k: before[k] for k in fields}},
            after={**alarm, **{k: after[k] for k in fields}}, detail=comment)))
    return AlarmAck("acked", after)
