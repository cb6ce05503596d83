"""Attendance storage: punches stored exactly once, the machine registry and its alarms.

Owns the SQL of the attendance tables (migration 0004). A batch of punches is written in one
transaction keyed on (device serial, batch id): a batch sent again (an outbox resend, a QoS 1
redelivery, an edge restarted mid-pull) is answered as stored without adding a row, and each
punch is stored once on (device serial, user id, timestamp, punch state) whichever batch
brings it. Raw punch rows are never updated or deleted (a trigger refuses it). It must not
decide when an alarm holds (alarms.py does) nor talk MQTT.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg_pool import ConnectionPool

from controlroom.storage.alarm_table import reconcile
from controlroom.storage.store import (
    BOARD_COLUMNS,
    BOARD_WHERE,
    AlarmAck,
    acknowledge_in,
    board_params,
)

log = logging.getLogger(__name__)

MAX_USER_ID_LEN = 24  # the longest user id a ZKTeco user record holds (72-byte record)
MAX_ID_LEN = 64  # device serials, batch ids, edge ids


class AttendanceStorageError(Exception):
    """A batch or status could not be stored; nothing of it was committed."""


class InvalidPunchBatch(ValueError):
    """Bad input: a batch or record breaks a rule of the attendance records (the message names
    the punch and the rule). Not a storage failure: retrying cannot help, nothing is written."""


@dataclass(frozen=True, slots=True)
class Punch:
    """One attendance record as the machine keeps it, its time made timezone-aware."""

    user_id: str
    ts: datetime  # aware: the machine's wall time in the office's zone
    punch_state: int  # 0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 OT-in, 5 OT-out
    verify_type: int = 0  # 0 password, 1 fingerprint, 2 card, 15 face, …
    work_code: int = 0


@dataclass(frozen=True, slots=True)
class PunchBatch:
    device_sn: str
    batch_id: str
    edge_id: str
    tz: str  # the office's IANA zone: Asia/Jakarta (WIB), Asia/Makassar (WITA), Asia/Jayapura (WIT)
    punches: Sequence[Punch]


@dataclass(frozen=True, slots=True)
class BatchReceipt:
    device_sn: str
    batch_id: str
    punches: int  # in the batch
    new_punches: int  # stored by this batch; the rest were stored before
    already_stored: bool  # the batch itself was stored before (a resend)


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """What the office edge last reported of one machine."""

    device_sn: str
    edge_id: str
    ts: datetime
    online: bool
    tz: str = "Asia/Jakarta"
    office: str = ""
    name: str = ""
    platform: str = ""
    firmware: str = ""
    users: int | None = None
    users_capacity: int | None = None
    punches: int | None = None
    punches_capacity: int | None = None
    clock_drift_s: float | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class AlarmCondition:
    """An alarm condition that holds now for one machine (alarms.py decides which hold)."""

    code: str
    device_sn: str
    severity: str  # info | warning | critical
    text: str
    subject: str = ""
    data: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.code, self.device_sn, self.subject)


def zone(tz: str) -> ZoneInfo:
    """The office's zone, or InvalidPunchBatch naming it."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidPunchBatch(f"unknown time zone {tz!r} (use an IANA name such as "
                                "Asia/Jakarta, Asia/Makassar or Asia/Jayapura)") from exc


def _check_id(value: str, what: str, max_len: int = MAX_ID_LEN) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len or not value.isprintable():
        raise InvalidPunchBatch(f"{what} {value!r} must be 1–{max_len} printable characters")


def validate_batch(batch: PunchBatch) -> ZoneInfo:
    """Check every rule before anything is written; returns the batch's zone."""
    _check_id(batch.device_sn, "device serial")
    _check_id(batch.batch_id, "batch id")
    _check_id(batch.edge_id, "edge id")
    tz = zone(batch.tz)
    for k, p in enumerate(batch.punches):
        where = f"punch {k} of batch {batch.batch_id}"
        _check_id(p.user_id, f"{where}: user id", MAX_USER_ID_LEN)
        if p.ts.tzinfo is None or p.ts.utcoffset() is None:
            raise InvalidPunchBatch(f"{where}: timestamp {p.ts.isoformat()} has no time zone")
        for name, value, hi in (("punch state", p.punch_state, 255),
                                ("verify type", p.verify_type, 255),
                                ("work code", p.work_code, 2**31 - 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
                raise InvalidPunchBatch(f"{where}: {name} {value!r} is not an integer 0–{hi}")
    return tz


_INSERT_BATCH = """
INSERT INTO attendance_batch (device_sn, batch_id, edge_id, punches, new_punches, first_ts, last_ts)
VALUES (%s, %s, %s, %s, 0, %s, %s) ON CONFLICT (device_sn, batch_id) DO NOTHING RETURNING batch_id
"""

_INSERT_PUNCHES = """
INSERT INTO attendance_punch (device_sn, user_id, ts, punch_state, local_ts, tz, verify_type,
                              work_code, batch_id, edge_id)
SELECT %s, u, t, s, l, %s, v, w, %s, %s
FROM unnest(%s::text[], %s::timestamptz[], %s::smallint[], %s::timestamp[], %s::smallint[],
            %s::integer[]) AS x(u, t, s, l, v, w)
ON CONFLICT (device_sn, user_id, ts, punch_state) DO NOTHING
"""

_UPSERT_MACHINE = """
INSERT INTO attendance_machine AS m (device_sn, edge_id, office, name, platform, firmware, tz, online,
    status_since, last_seen, users, users_capacity, punches, punches_capacity, clock_drift_s, last_error)
VALUES (%(device_sn)s, %(edge_id)s, %(office)s, %(name)s, %(platform)s, %(firmware)s, %(tz)s,
    %(online)s, %(ts)s, %(ts)s, %(users)s, %(users_capacity)s, %(punches)s, %(punches_capacity)s,
    %(clock_drift_s)s, %(error)s)
ON CONFLICT (device_sn) DO UPDATE SET
    edge_id = excluded.edge_id, online = excluded.online,
    status_since = CASE WHEN m.online = excluded.online THEN m.status_since ELSE excluded.status_since END,
    last_seen = excluded.last_seen, last_error = excluded.last_error,
    -- an offline report keeps what was last known of the machine
    office = CASE WHEN excluded.office <> '' THEN excluded.office ELSE m.office END,
    name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE m.name END,
    platform = CASE WHEN excluded.platform <> '' THEN excluded.platform ELSE m.platform END,
    firmware = CASE WHEN excluded.firmware <> '' THEN excluded.firmware ELSE m.firmware END,
    tz = excluded.tz,
    users = coalesce(excluded.users, m.users),
    users_capacity = coalesce(excluded.users_capacity, m.users_capacity),
    punches = coalesce(excluded.punches, m.punches),
    punches_capacity = coalesce(excluded.punches_capacity, m.punches_capacity),
    clock_drift_s = coalesce(excluded.clock_drift_s, m.clock_drift_s)
WHERE excluded.last_seen >= m.last_seen
RETURNING device_sn
"""

_MACHINE_COLUMNS = ("device_sn, edge_id, office, name, platform, firmware, tz, online, status_since, "
                    "last_seen, users, users_capacity, punches, punches_capacity, clock_drift_s, "
                    "last_error")


class AttendanceStore:
    """Attendance reads and writes over one connection pool (migrations applied)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    # ------------------------------------------------------------------ writes

    def store_batch(self, batch: PunchBatch) -> BatchReceipt:
        """Store a batch exactly once; InvalidPunchBatch (nothing written) for a bad one."""
        tz = validate_batch(batch)
        punches = list(batch.punches)
        first = min((p.ts for p in punches), default=None)
        last = max((p.ts for p in punches), default=None)
        try:
            with self._pool.connection() as conn, conn.transaction():
                fresh = conn.execute(_INSERT_BATCH, (batch.device_sn, batch.batch_id, batch.edge_id,
                                                     len(punches), first, last)).fetchone()
                # A known batch (a resend, or a concurrent worker's, now committed) is inserted
                # again all the same: it costs a conflict per punch, and a batch id reused for
                # other punches by a faulty edge still loses nothing.
                cur = conn.execute(_INSERT_PUNCHES, (
                    batch.device_sn, batch.tz, batch.batch_id, batch.edge_id,
                    [p.user_id for p in punches], [p.ts for p in punches],
                    [p.punch_state for p in punches],
                    [p.ts.astimezone(tz).replace(tzinfo=None) for p in punches],
                    [p.verify_type for p in punches], [p.work_code for p in punches]))
                new = max(cur.rowcount, 0)
                if new:
                    conn.execute("UPDATE attendance_batch SET new_punches = new_punches + %s "
                                 "WHERE device_sn = %s AND batch_id = %s",
                                 (new, batch.device_sn, batch.batch_id))
                if fresh is None and new:
                    log.warning("batch %s of machine %s came again with %d punches not in it "
                                "before; stored them (the edge should not reuse batch ids)",
                                batch.batch_id, batch.device_sn, new)
        except psycopg.Error as exc:
            raise AttendanceStorageError(
                f"batch {batch.batch_id} of machine {batch.device_sn} not stored: {exc}") from exc
        return BatchReceipt(batch.device_sn, batch.batch_id, len(punches), new, fresh is None)

    def update_machines(self, statuses: Iterable[MachineStatus]) -> int:
        """Apply machine status reports; an older report than the one stored is ignored.
        Returns how many were applied; InvalidPunchBatch (nothing written) for a bad zone."""
        statuses = list(statuses)
        for s in statuses:
            zone(s.tz)
        applied = 0
        try:
            with self._pool.connection() as conn, conn.transaction():
                for s in statuses:
                    row = conn.execute(_UPSERT_MACHINE, {
                        "device_sn": s.device_sn, "edge_id": s.edge_id, "office": s.office,
                        "name": s.name, "platform": s.platform, "firmware": s.firmware,
                        "tz": s.tz, "online": s.online, "ts": s.ts, "users": s.users,
                        "users_capacity": s.users_capacity, "punches": s.punches,
                        "punches_capacity": s.punches_capacity,
                        "clock_drift_s": s.clock_drift_s, "error": s.error}).fetchone()
                    applied += row is not None
        except psycopg.Error as exc:
            raise AttendanceStorageError(f"machine status not stored: {exc}") from exc
        return applied

    def reconcile_alarms(self, conditions: Sequence[AlarmCondition], at: datetime,
                         device_sns: Iterable[str] | None = None) -> tuple[int, int]:
        """Open the conditions not yet open, clear the open alarms that no longer hold (for
        ``device_sns``, default every machine). Returns (opened, cleared)."""
        holding = {c.key: c for c in conditions}
        scope = None if device_sns is None else sorted(set(device_sns))
        try:
            with self._pool.connection() as conn, conn.transaction():
                opened, cleared = reconcile(conn, "attendance_alarm",
                                            ("code", "device_sn", "subject"), holding, at,
                                            "device_sn", scope)
        except psycopg.Error as exc:
            raise AttendanceStorageError(f"alarms not stored: {exc}") from exc
        return opened, cleared

    def upsert_employees(self, employees: Iterable[tuple[str, str, str, str, bool]]) -> int:
        """(user_id, name, nip, office, active) rows; returns how many were written."""
        rows = list(employees)
        for user_id, *_ in rows:
            _check_id(user_id, "user id", MAX_USER_ID_LEN)
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO attendance_employee (user_id, name, nip, office, active) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET "
                    "name = excluded.name, nip = excluded.nip, office = excluded.office, "
                    "active = excluded.active, updated_at = now()", rows)
        except psycopg.Error as exc:
            raise AttendanceStorageError(f"employees not stored: {exc}") from exc
        return len(rows)

    # ------------------------------------------------------------------ reads

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                return cur.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise AttendanceStorageError(f"read failed: {exc}") from exc

    def stored_batches(self, device_sn: str, batch_ids: Sequence[str]) -> set[str]:
        """Which of these batch ids of the machine are stored."""
        rows = self._rows("SELECT batch_id FROM attendance_batch WHERE device_sn = %s "
                          "AND batch_id = ANY(%s)", (device_sn, list(batch_ids)))
        return {r["batch_id"] for r in rows}

    def punches(self, *, device_sn: str | None = None, user_id: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        for column, op, value in (("device_sn", "=", device_sn), ("user_id", "=", user_id),
                                  ("ts", ">=", since), ("ts", "<", until)):
            if value is not None:
                where.append(f"{column} {op} %s")
                params.append(value)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        tail = "LIMIT %s" if limit is not None else ""
        return self._rows(
            "SELECT device_sn, user_id, ts, punch_state, local_ts, tz, verify_type, work_code, "
            f"batch_id, edge_id, received_at FROM attendance_punch {clause}"
            f"ORDER BY ts, device_sn, user_id, punch_state {tail}",
            [*params, *([limit] if limit is not None else [])])

    def punch_count(self, device_sn: str | None = None) -> int:
        sql = "SELECT count(*) AS n FROM attendance_punch"
        rows = (self._rows(sql) if device_sn is None else
                self._rows(sql + " WHERE device_sn = %s", (device_sn,)))
        return int(rows[0]["n"])

    def machines(self) -> list[dict[str, Any]]:
        return self._rows(f"SELECT {_MACHINE_COLUMNS} FROM attendance_machine ORDER BY device_sn")

    def machine(self, device_sn: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {_MACHINE_COLUMNS} FROM attendance_machine WHERE device_sn = %s",
                          (device_sn,))
        return rows[0] if rows else None

    def unknown_users(self, since: datetime | None = None) -> dict[str, dict[str, Any]]:
        """Per machine: punches whose user id is no known employee (count, a few ids). Empty
        while no employee is known at all (before the first SIMPEG sync every id would be)."""
        if not self._rows("SELECT 1 AS x FROM attendance_employee LIMIT 1"):
            return {}
        rows = self._rows(
            "SELECT p.device_sn, count(*) AS punches, "
            "(array_agg(DISTINCT p.user_id ORDER BY p.user_id))[1:5] AS user_ids "
            "FROM attendance_punch p LEFT JOIN attendance_employee e USING (user_id) "
            "WHERE e.user_id IS NULL AND (%s::timestamptz IS NULL OR p.ts >= %s) "
            "GROUP BY p.device_sn", (since, since))
        return {r["device_sn"]: {"punches": r["punches"], "user_ids": r["user_ids"]} for r in rows}

    def alarms(self, *, open_only: bool = True, device_sn: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        where = ["cleared_at IS NULL"] if open_only else []
        params: list[Any] = []
        if device_sn is not None:
            where.append("device_sn = %s")
            params.append(device_sn)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        return self._rows(
            "SELECT id, code, device_sn, subject, severity, text, data, opened_at, cleared_at "
            f"FROM attendance_alarm {clause}ORDER BY opened_at DESC, id DESC LIMIT %s",
            [*params, limit])

    # ------------------------------------------------------------------ alarm acknowledgement

    def alarm_board(self, *, open_only: bool = True, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Machine alarms with their acknowledgement (migration 0008) and the machine's office,
        name and edge, newest first; ``since``/``until``: active in between."""
        return self._rows(
            f"SELECT {BOARD_COLUMNS}, a.device_sn, a.subject, m.name AS machine_name, m.office, "
            "m.edge_id FROM attendance_alarm a LEFT JOIN attendance_machine m USING (device_sn) "
            f"WHERE {BOARD_WHERE} ORDER BY a.opened_at DESC, a.id DESC LIMIT %(limit)s",
            board_params(open_only, since, until, limit))  # type: ignore[arg-type]

    def acknowledge_alarm(self, alarm_id: int, *, user: str, role: str, comment: str,
                          target: str) -> AlarmAck:
        """Acknowledge one machine alarm and audit it (audit_log), in one transaction."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                return acknowledge_in(conn, "attendance_alarm", alarm_id, user=user, role=role,
                                      comment=comment, target=target)
        except psycopg.Error as exc:
            raise AttendanceStorageError(f"acknowledgement of alarm {target} not stored: "
                                         f"{exc}") from exc
