"""CCTV storage: the camera registry, camera alarms, commands and their status, the latest
snapshot per camera and the zone analytics.

Owns the SQL of the cctv tables (migration 0006). One ingest batch is written in one
transaction; a camera status older than the one stored is ignored, a command's status only
moves forward, and an ack counts only when it names the command's camera and comes from that
camera's edge. It must not decide when an alarm holds (alarms.py does) nor talk MQTT.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from controlroom.storage.alarm_table import reconcile
from controlroom.storage.store import (
    BOARD_COLUMNS,
    BOARD_WHERE,
    AlarmAck,
    AuditRecord,
    acknowledge_in,
    board_params,
)
from edge.contract import CctvAnalytics, CctvStatus, CommandAck, DeviceInfo


class CctvStorageError(Exception):
    """A write or read of the cctv tables failed; nothing of the write was committed."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A decoded, checked JPEG (the service checks it; the store keeps the newest)."""

    camera_id: str
    edge_id: str
    taken_at: datetime
    jpeg: bytes
    cmd_id: str | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    """The cameras one edge birth lists."""

    edge_id: str
    at: datetime
    cameras: Sequence[DeviceInfo]


@dataclass(slots=True)
class CctvWrites:
    """One ingest batch of camera messages, in arrival order."""

    statuses: list[CctvStatus] = field(default_factory=list)
    inventories: list[Inventory] = field(default_factory=list)
    analytics: list[CctvAnalytics] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    acks: list[CommandAck] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.statuses) + len(self.inventories) + len(self.analytics)
                + len(self.snapshots) + len(self.acks))


@dataclass(frozen=True, slots=True)
class WriteCounts:
    statuses_applied: int
    cameras_listed: int
    analytics_rows: int
    snapshots_stored: int
    acks_applied: int


@dataclass(frozen=True, slots=True)
class CommandRecord:
    cmd_id: str
    camera_id: str
    issued_at: datetime
    expires_at: datetime
    user_name: str
    role: str
    kind: str  # the body's type: ptz_move, ptz_stop, ptz_goto, preset_goto, preset_set, snapshot
    body: dict[str, Any]
    reason_given: str = ""


@dataclass(frozen=True, slots=True)
class AlarmCondition:
    """A camera alarm condition that holds now (alarms.py decides which hold)."""

    code: str
    camera_id: str
    severity: str  # info | warning | critical
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.camera_id)


FINAL_STATUSES = frozenset({"applied", "rejected", "unanswered"})

_UPSERT_STATUS = """
INSERT INTO cctv_camera AS c (camera_id, edge_id, intersection_id, name, model, firmware, ptz,
    reachable, fps, tamper, tampers, position, presets, clock_offset_s, zones, error,
    status_since, last_status_at)
VALUES (%(camera_id)s, %(edge_id)s, %(intersection_id)s, %(name)s, %(model)s, %(firmware)s,
    %(ptz)s, %(reachable)s, %(fps)s, %(tamper)s, %(tampers)s, %(position)s, %(presets)s,
    %(clock_offset_s)s, %(zones)s, %(error)s, %(ts)s, %(ts)s)
ON CONFLICT (camera_id) DO UPDATE SET
    edge_id = excluded.edge_id, reachable = excluded.reachable, fps = excluded.fps,
    tamper = excluded.tamper, tampers = excluded.tampers, error = excluded.error,
    status_since = CASE WHEN c.reachable IS NOT DISTINCT FROM excluded.reachable
                        THEN coalesce(c.status_since, excluded.status_since)
                        ELSE excluded.status_since END,
    last_status_at = excluded.last_status_at,
    -- an unreachable camera's report keeps what was last known of it
    intersection_id = coalesce(excluded.intersection_id, c.intersection_id),
    name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE c.name END,
    model = CASE WHEN excluded.model <> '' THEN excluded.model ELSE c.model END,
    firmware = CASE WHEN excluded.firmware <> '' THEN excluded.firmware ELSE c.firmware END,
    ptz = CASE WHEN excluded.reachable THEN excluded.ptz ELSE c.ptz END,
    position = CASE WHEN excluded.reachable THEN excluded.position ELSE c.position END,
    presets = CASE WHEN excluded.reachable THEN excluded.presets ELSE c.presets END,
    clock_offset_s = coalesce(excluded.clock_offset_s, c.clock_offset_s),
    zones = excluded.zones, updated_at = now()
WHERE c.last_status_at IS NULL OR excluded.last_status_at >= c.last_status_at
RETURNING camera_id
"""

_UPSERT_LISTED = """
INSERT INTO cctv_camera AS c (camera_id, edge_id, intersection_id, model, firmware, inventory_at)
VALUES (%(camera_id)s, %(edge_id)s, %(intersection_id)s, %(model)s, %(firmware)s, %(at)s)
ON CONFLICT (camera_id) DO UPDATE SET
    edge_id = excluded.edge_id, inventory_at = excluded.inventory_at,
    intersection_id = coalesce(excluded.intersection_id, c.intersection_id),
    model = CASE WHEN excluded.model <> '' THEN excluded.model ELSE c.model END,
    firmware = CASE WHEN excluded.firmware <> '' THEN excluded.firmware ELSE c.firmware END,
    updated_at = now()
WHERE c.inventory_at IS NULL OR excluded.inventory_at >= c.inventory_at
RETURNING camera_id
"""

# Only for a known camera, and only a newer picture replaces the stored one.
_UPSERT_SNAPSHOT = """
INSERT INTO cctv_snapshot AS s (camera_id, edge_id, taken_at, jpeg, cmd_id)
SELECT %(camera_id)s, %(edge_id)s, %(taken_at)s, %(jpeg)s, %(cmd_id)s
WHERE EXISTS (SELECT 1 FROM cctv_camera WHERE camera_id = %(camera_id)s)
ON CONFLICT (camera_id) DO UPDATE SET
    edge_id = excluded.edge_id, taken_at = excluded.taken_at, jpeg = excluded.jpeg,
    cmd_id = excluded.cmd_id, received_at = now()
WHERE excluded.taken_at >= s.taken_at
RETURNING camera_id
"""

_INSERT_ANALYTICS = """
INSERT INTO cctv_analytics (ts, camera_id, edge_id, zone_ids, count, occupancy_pct, presence, queue_m)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

# sent < accepted < unanswered < applied = rejected: a late "accepted" never undoes an end, a
# late "applied" or "rejected" still tells what became of an unanswered command.
_RANK = "array_position(ARRAY['sent','accepted','unanswered','applied','rejected'], {})"
_APPLY_ACK = f"""
UPDATE cctv_command AS k SET status = %(status)s, status_at = %(at)s, reason = %(reason)s
WHERE k.cmd_id = %(cmd_id)s AND k.camera_id = %(camera_id)s
  AND least({_RANK.format('k.status')}, 4) < least({_RANK.format('%(status)s')}, 4)
  AND EXISTS (SELECT 1 FROM cctv_camera c WHERE c.camera_id = k.camera_id
              AND c.edge_id = %(edge_id)s)
RETURNING cmd_id
"""

_EXPIRE = """
UPDATE cctv_command SET status = 'unanswered', status_at = %(now)s,
    reason = 'no final answer from the edge before expires_at'
WHERE status IN ('sent', 'accepted') AND expires_at <= %(now)s
  AND (%(cmd_id)s::text IS NULL OR cmd_id = %(cmd_id)s)
"""

_INSERT_COMMAND = """
INSERT INTO cctv_command (cmd_id, camera_id, issued_at, expires_at, user_name, role, kind, body,
                          reason_given, status_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

_INSERT_AUDIT = """
INSERT INTO audit_log (user_name, role, action, target, outcome, before, after, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

_CAMERA_COLUMNS = (
    "c.camera_id, c.edge_id, c.intersection_id, c.name, c.model, c.firmware, c.ptz, c.reachable, "
    "c.fps, c.tamper, c.tampers, c.position, c.presets, c.clock_offset_s, c.zones, c.error, "
    "c.status_since, c.last_status_at, c.inventory_at, c.first_seen_at, "
    "e.online AS edge_online, e.status_since AS edge_since")

_COMMAND_COLUMNS = ("cmd_id, camera_id, issued_at, expires_at, user_name, role, kind, body, "
                    "reason_given, status, status_at, reason")


def _audit_row(a: AuditRecord) -> tuple[Any, ...]:
    return (a.user_name, a.role, a.action, a.target, a.outcome,
            json.dumps(a.before, default=str) if a.before is not None else None,
            json.dumps(a.after, default=str) if a.after is not None else None, a.detail)


class CctvStore:
    """Camera reads and writes over one connection pool (migrations applied)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    # ------------------------------------------------------------------ writes

    def write(self, w: CctvWrites) -> WriteCounts:
        """One ingest batch in one transaction: inventories, then statuses (a status of a
        camera an edge just listed refines its row), analytics, snapshots, acks."""
        listed = applied = snaps = acks = 0
        try:
            with self._pool.connection() as conn, conn.transaction():
                for inv in w.inventories:
                    for d in inv.cameras:
                        row = conn.execute(_UPSERT_LISTED, {
                            "camera_id": d.device_id, "edge_id": inv.edge_id,
                            "intersection_id": d.intersection_id, "model": d.model,
                            "firmware": d.firmware, "at": inv.at}).fetchone()
                        listed += row is not None
                for s in w.statuses:
                    row = conn.execute(_UPSERT_STATUS, {
                        "camera_id": s.camera_id, "edge_id": s.edge_id,
                        "intersection_id": s.intersection_id, "name": s.name, "model": s.model,
                        "firmware": s.firmware, "ptz": s.ptz, "reachable": s.reachable,
                        "fps": s.fps, "tamper": s.tamper, "tampers": list(s.tampers),
                        "position": (json.dumps(s.position.model_dump())
                                     if s.position is not None else None),
                        "presets": json.dumps([p.model_dump() for p in s.presets]),
                        "clock_offset_s": s.clock_offset_s, "zones": s.zones, "error": s.error,
                        "ts": s.ts}).fetchone()
                    applied += row is not None
                if w.analytics:
                    with conn.cursor() as cur:
                        cur.executemany(_INSERT_ANALYTICS, [
                            (a.ts, a.camera_id, a.edge_id, list(a.zone_ids), list(a.count),
                             list(a.occupancy_pct), list(a.presence), list(a.queue_m))
                            for a in w.analytics])
                for p in w.snapshots:
                    row = conn.execute(_UPSERT_SNAPSHOT, {
                        "camera_id": p.camera_id, "edge_id": p.edge_id, "taken_at": p.taken_at,
                        "jpeg": p.jpeg, "cmd_id": p.cmd_id}).fetchone()
                    snaps += row is not None
                for a in w.acks:
                    row = conn.execute(_APPLY_ACK, {
                        "cmd_id": a.cmd_id, "camera_id": a.target_id, "edge_id": a.edge_id,
                        "status": a.status, "at": a.ts, "reason": a.reason}).fetchone()
                    acks += row is not None
        except psycopg.Error as exc:
            raise CctvStorageError(f"batch of {len(w)} camera messages not stored: {exc}") from exc
        return WriteCounts(applied, listed, len(w.analytics), snaps, acks)

    def record_command(self, command: CommandRecord, audit: AuditRecord) -> None:
        """The command and its audit row in one transaction: nothing is sent unless both are."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute(_INSERT_COMMAND, (
                    command.cmd_id, command.camera_id, command.issued_at, command.expires_at,
                    command.user_name, command.role, command.kind, json.dumps(command.body),
                    command.reason_given, command.issued_at))
                conn.execute(_INSERT_AUDIT, _audit_row(audit))
        except psycopg.Error as exc:
            raise CctvStorageError(f"command {command.cmd_id} to camera {command.camera_id} not "
                                   f"stored: {exc}") from exc

    def audit(self, record: AuditRecord) -> None:
        try:
            with self._pool.connection() as conn:
                conn.execute(_INSERT_AUDIT, _audit_row(record))
        except psycopg.Error as exc:
            raise CctvStorageError(f"audit row not stored: {exc}") from exc

    def expire_commands(self, now: datetime, cmd_id: str | None = None) -> int:
        """Commands past expires_at with no final ack become unanswered; returns how many."""
        try:
            with self._pool.connection() as conn:
                return max(conn.execute(_EXPIRE, {"now": now, "cmd_id": cmd_id}).rowcount, 0)
        except psycopg.Error as exc:
            raise CctvStorageError(f"command expiry not stored: {exc}") from exc

    def reconcile_alarms(self, conditions: Sequence[AlarmCondition], at: datetime,
                         camera_ids: Iterable[str] | None = None) -> tuple[int, int]:
        """Open the conditions not yet open, clear the open alarms that no longer hold (for
        ``camera_ids``, default every camera). Returns (opened, cleared)."""
        holding = {c.key: c for c in conditions}
        scope = None if camera_ids is None else sorted(set(camera_ids))
        try:
            with self._pool.connection() as conn, conn.transaction():
                opened, cleared = reconcile(conn, "cctv_alarm", ("code", "camera_id"), holding,
                                            at, "camera_id", scope)
        except psycopg.Error as exc:
            raise CctvStorageError(f"camera alarms not stored: {exc}") from exc
        return opened, cleared

    # ------------------------------------------------------------------ reads

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                return cur.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise CctvStorageError(f"read failed: {exc}") from exc

    def cameras(self) -> list[dict[str, Any]]:
        """Every camera with its edge's online state (None: the edge never announced itself)."""
        return self._rows(f"SELECT {_CAMERA_COLUMNS} FROM cctv_camera c "
                          "LEFT JOIN edge e USING (edge_id) ORDER BY c.camera_id")

    def camera(self, camera_id: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {_CAMERA_COLUMNS} FROM cctv_camera c "
                          "LEFT JOIN edge e USING (edge_id) WHERE c.camera_id = %s", (camera_id,))
        return rows[0] if rows else None

    def alarms(self, *, open_only: bool = True, camera_id: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        where = ["cleared_at IS NULL"] if open_only else []
        params: list[Any] = []
        if camera_id is not None:
            where.append("camera_id = %s")
            params.append(camera_id)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        return self._rows(
            "SELECT id, code, camera_id, severity, text, data, opened_at, cleared_at "
            f"FROM cctv_alarm {clause}ORDER BY opened_at DESC, id DESC LIMIT %s", [*params, limit])

    def open_alarm_counts(self) -> dict[str, int]:
        rows = self._rows("SELECT camera_id, count(*) AS n FROM cctv_alarm WHERE cleared_at IS NULL "
                          "GROUP BY camera_id")
        return {r["camera_id"]: int(r["n"]) for r in rows}

    def commands(self, camera_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows(f"SELECT {_COMMAND_COLUMNS} FROM cctv_command WHERE camera_id = %s "
                          "ORDER BY issued_at DESC, cmd_id LIMIT %s", (camera_id, limit))

    def command(self, cmd_id: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {_COMMAND_COLUMNS} FROM cctv_command WHERE cmd_id = %s",
                          (cmd_id,))
        return rows[0] if rows else None

    def snapshot_times(self) -> dict[str, datetime]:
        """When each camera's latest stored snapshot was taken (cameras without one: absent)."""
        rows = self._rows("SELECT camera_id, taken_at FROM cctv_snapshot")
        return {r["camera_id"]: r["taken_at"] for r in rows}

    def snapshot(self, camera_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT camera_id, edge_id, taken_at, received_at, jpeg, cmd_id "
                          "FROM cctv_snapshot WHERE camera_id = %s", (camera_id,))
        return rows[0] if rows else None

    def analytics(self, camera_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows("SELECT ts, camera_id, edge_id, zone_ids, count, occupancy_pct, presence, "
                          "queue_m FROM cctv_analytics WHERE camera_id = %s ORDER BY ts DESC "
                          "LIMIT %s", (camera_id, limit))

    # ------------------------------------------------------------------ alarm acknowledgement

    def alarm_board(self, *, open_only: bool = True, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Camera alarms with their acknowledgement (migration 0008) and the camera's name,
        intersection and edge, newest first; ``since``/``until``: active in between."""
        return self._rows(
            f"SELECT {BOARD_COLUMNS}, a.camera_id, c.name AS camera_name, c.intersection_id, "
            "c.edge_id FROM cctv_alarm a LEFT JOIN cctv_camera c USING (camera_id) "
            f"WHERE {BOARD_WHERE} ORDER BY a.opened_at DESC, a.id DESC LIMIT %(limit)s",
            board_params(open_only, since, until, limit))

    def acknowledge_alarm(self, alarm_id: int, *, user: str, role: str, comment: str,
                          target: str) -> AlarmAck:
        """Acknowledge one camera alarm and audit it, in one transaction."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                return acknowledge_in(conn, "cctv_alarm", alarm_id, user=user, role=role,
                                      comment=comment, target=target)
        except psycopg.Error as exc:
            raise CctvStorageError(f"acknowledgement of alarm {target} not stored: {exc}") from exc
