"""Writes validated contract messages to PostgreSQL in batches and answers the API's reads.

Telemetry goes in with binary COPY (one row per message, one row per detector); the
low-volume kinds (events, acks, edge state) are inserted with ON CONFLICT DO NOTHING on
(edge_id, epoch, seq), which is where QoS 1 redeliveries and outbox resends die.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
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
# that follows its own birth is honoured, a late will of an older session is not.
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


def open_pool(conninfo: str, min_size: int = 1, max_size: int = 4, name: str = "kota") -> ConnectionPool:
    pool = ConnectionPool(conninfo, min_size=min_size, max_size=max_size, name=name, open=False)
    pool.open(wait=True, timeout=15)
    return pool
