"""Storage of attendance for payroll: employees and units, machine-id mappings, leave, rosters,
the daily results, the audit log and the SIMPEG upload log (migration 0005).

Owns their SQL. Raw punches are only read (in binary COPY, straight into arrays). Every change
a person or SIMPEG makes is written with an audit row in the same transaction; a recompute
replaces a period's daily rows and audits each row that changed, before and after. It must not
apply rules (engine.py does) nor talk HTTP.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from controlroom.storage import pgbinary

log = logging.getLogger(__name__)

_DAY_COLUMNS = ("nip", "day", "status", "sched_start", "sched_end", "in_at", "out_at",
                "in_device", "out_device", "late_min", "early_min", "tl", "psw", "cut_pct",
                "flags", "punches", "holiday", "rules_version", "content_hash", "computed_at")
_MONTH_ROW = np.dtype([("employee", ">i4"), ("day", ">i2"), ("status", ">i2"), ("tl", ">i2"),
                       ("psw", ">i2"), ("cut_pct", ">f8"), ("version", ">i2"),
                       ("late_min", ">i4"), ("early_min", ">i4"), ("sched_start", ">i4"),
                       ("sched_end", ">i4"), ("in_s", ">i4"), ("out_s", ">i4")])
_MIX = np.uint64(0x9E3779B97F4A7C15)


_PUNCH_ROW = np.dtype([("employee", ">i4"), ("t_s", ">i8"), ("machine", ">i4"), ("own", "u1")])


def _tune(cur: psycopg.Cursor[Any]) -> None:
    """For the month-sized statements: JIT compiles for longer than these queries run, and
    the default work_mem spills their sorts and hashes to disk."""
    cur.execute("SET LOCAL jit = off")
    cur.execute("SET LOCAL work_mem = '256MB'")


class PayrollStorageError(Exception):
    """A write failed; nothing of it was committed."""


@dataclass(frozen=True, slots=True)
class EmployeeRow:
    nip: str
    name: str
    skpd: str = ""
    unit: str = ""
    position: str = ""
    schedule_group: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class UnitRow:
    code: str
    name: str
    skpd: str
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class LeaveRow:
    nip: str
    code: str
    first_day: date
    last_day: date
    doc_ref: str
    source: str  # simpeg | bkpsdm
    source_id: str


@dataclass(frozen=True)
class PunchArrays:
    """Punches of a period as arrays (see engine.Punches) and the machine serials indexed."""

    employee: np.ndarray
    t_s: np.ndarray
    machine: np.ndarray
    own_office: np.ndarray
    machines: tuple[str, ...]


@dataclass(frozen=True)
class DayRows:
    """A period's daily results as columns, ready for binary COPY (see engine.DayResults)."""

    nips: Sequence[str]  # employee index -> NIP
    employee: np.ndarray  # int [N]
    day: np.ndarray  # datetime64[D] [N]
    status: np.ndarray  # int [N] index into status_vocabulary
    status_vocabulary: Sequence[str]
    sched_start: np.ndarray  # datetime64[s], NaT for none
    sched_end: np.ndarray
    in_at: np.ndarray
    out_at: np.ndarray
    in_device: np.ndarray  # int index into devices, -1 none
    out_device: np.ndarray
    devices: Sequence[str]
    late_min: np.ndarray  # int, -1 none
    early_min: np.ndarray
    tl: np.ndarray
    psw: np.ndarray
    cut_pct: np.ndarray
    flags: np.ndarray
    punches: np.ndarray
    holiday: np.ndarray  # int index into holidays, -1 none
    holidays: Sequence[str]
    rules_version: np.ndarray  # int index into versions
    versions: Sequence[str]


def _timestamp_column(values: np.ndarray) -> pgbinary.Column:
    null = np.isnat(values)
    micro = (values.astype("datetime64[us]").astype(np.int64)
             - pgbinary.PG_EPOCH_DAYS * 86_400_000_000)
    return pgbinary.Column("timestamp", np.where(null, 0, micro), null)


def _vocabularies(rows: DayRows) -> dict[str, pgbinary.TextVocabulary]:
    return {"nip": pgbinary.TextVocabulary(list(rows.nips)),
            "status": pgbinary.TextVocabulary(list(rows.status_vocabulary)),
            "device": pgbinary.TextVocabulary([*rows.devices, None]),
            "holiday": pgbinary.TextVocabulary([*rows.holidays, None]),
            "version": pgbinary.TextVocabulary(list(rows.versions))}


def _string_hashes(values: Sequence[str | None]) -> np.ndarray:
    """A stable 64-bit hash per text (None included), the same in every process and run."""
    return np.array([int.from_bytes(hashlib.blake2b(b"\x00" if v is None else b"\x01" + v.encode(),
                                                    digest_size=8).digest(), "little")
                     for v in values], np.uint64)


def content_hash(rows: DayRows) -> np.ndarray:
    """A 64-bit hash of everything a day row says (all columns but the key and computed_at):
    a recompute compares it with the stored one and writes and audits only the rows that
    differ (a false match is a 2^-64 chance per row)."""
    def nat(values: np.ndarray) -> np.ndarray:
        return np.where(np.isnat(values), np.iinfo(np.int64).min,
                        values.astype("datetime64[s]").astype(np.int64)).astype(np.uint64)

    def text(index: np.ndarray, vocabulary: Sequence[str | None]) -> np.ndarray:
        table = _string_hashes([*vocabulary, None])
        return table[np.where(index < 0, len(vocabulary), index)]

    parts = [
        text(rows.status, rows.status_vocabulary), nat(rows.sched_start), nat(rows.sched_end),
        nat(rows.in_at), nat(rows.out_at), text(rows.in_device, rows.devices),
        text(rows.out_device, rows.devices), rows.late_min.astype(np.int64).astype(np.uint64),
        rows.early_min.astype(np.int64).astype(np.uint64), rows.tl.astype(np.uint64),
        rows.psw.astype(np.uint64), np.round(rows.cut_pct, 6).astype(np.float64).view(np.uint64),
        rows.flags.astype(np.uint64), rows.punches.astype(np.uint64),
        text(rows.holiday, rows.holidays), text(rows.rules_version, rows.versions)]
    h = np.zeros(rows.employee.shape[0], np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:  # splitmix64-style mixing of each column into the running hash
            h = (h ^ part) * _MIX
            h ^= h >> np.uint64(31)
    return h.view(np.int64)


def _encode_days(rows: DayRows, vocab: dict[str, pgbinary.TextVocabulary], hashes: np.ndarray,
                 computed_at: datetime, take: np.ndarray) -> bytes:
    n = take.shape[0]
    days = rows.day[take].astype("datetime64[D]").astype(np.int64) - pgbinary.PG_EPOCH_DAYS
    # computed_at is timestamptz: microseconds since 2000-01-01 UTC.
    computed = np.datetime64(computed_at.astimezone(UTC).replace(tzinfo=None), "us")

    def indexed(index: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
        return np.where(index < 0, len(vocabulary), index)  # -1: the trailing None (NULL)

    columns = [
        pgbinary.Column("text", rows.employee[take], vocabulary=vocab["nip"]),
        pgbinary.Column("date", days),
        pgbinary.Column("text", rows.status[take], vocabulary=vocab["status"]),
        _timestamp_column(rows.sched_start[take]), _timestamp_column(rows.sched_end[take]),
        _timestamp_column(rows.in_at[take]), _timestamp_column(rows.out_at[take]),
        pgbinary.Column("text", indexed(rows.in_device[take], rows.devices),
                        vocabulary=vocab["device"]),
        pgbinary.Column("text", indexed(rows.out_device[take], rows.devices),
                        vocabulary=vocab["device"]),
        pgbinary.Column("int4", rows.late_min[take], rows.late_min[take] < 0),
        pgbinary.Column("int4", rows.early_min[take], rows.early_min[take] < 0),
        pgbinary.Column("int2", rows.tl[take]), pgbinary.Column("int2", rows.psw[take]),
        pgbinary.Column("float8", rows.cut_pct[take]), pgbinary.Column("int4", rows.flags[take]),
        pgbinary.Column("int2", rows.punches[take]),
        pgbinary.Column("text", indexed(rows.holiday[take], rows.holidays),
                        vocabulary=vocab["holiday"]),
        pgbinary.Column("text", rows.rules_version[take], vocabulary=vocab["version"]),
        pgbinary.Column("int8", hashes[take]),
        _timestamp_column(np.full(n, computed)),
    ]
    return pgbinary.encode(columns, header=False, trailer=False)


class PayrollStore:
    """The payroll tables over a connection pool. Methods are thread-safe."""

    COPY_CHUNK = 100_000

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    # --- reads -------------------------------------------------------------------------------

    def _rows(self, query: str | sql.Composed, params: Sequence[Any] | dict[str, Any] = ()
              ) -> list[dict[str, Any]]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            _tune(cur)
            cur.execute(query, params)
            return cur.fetchall()

    def employees(self, *, skpd: str | None = None, nips: Sequence[str] | None = None,
                  include_inactive: bool = False) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT e.*, coalesce(u.name, e.skpd) AS skpd_name, coalesce(uu.name, e.unit) "
            "AS unit_name FROM employee e LEFT JOIN attendance_unit u ON u.code = e.skpd "
            "LEFT JOIN attendance_unit uu ON uu.code = e.unit "
            "WHERE (%(skpd)s::text IS NULL OR e.skpd = %(skpd)s) "
            "AND (%(nips)s::text[] IS NULL OR e.nip = ANY(%(nips)s)) "
            "AND (e.active OR %(all)s) ORDER BY e.nip",
            {"skpd": skpd, "nips": list(nips) if nips is not None else None,
             "all": include_inactive})

    def employee(self, nip: str) -> dict[str, Any] | None:
        rows = self.employees(nips=[nip], include_inactive=True)
        return rows[0] if rows else None

    def units(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM attendance_unit ORDER BY code")

    def leave(self, first_day: date, last_day: date, *, nips: Sequence[str] | None = None,
              include_revoked: bool = False) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM attendance_leave WHERE first_day <= %(last)s AND last_day >= %(first)s "
            "AND (%(nips)s::text[] IS NULL OR nip = ANY(%(nips)s)) "
            "AND (revoked_at IS NULL OR %(all)s) ORDER BY nip, first_day, id",
            {"first": first_day, "last": last_day, "all": include_revoked,
             "nips": list(nips) if nips is not None else None})

    def roster(self, first_day: date, last_day: date) -> list[dict[str, Any]]:
        return self._rows("SELECT nip, day, shift FROM attendance_roster WHERE day BETWEEN %s "
                          "AND %s ORDER BY nip, day", (first_day, last_day))

    def days(self, first_day: date, last_day: date, *, nip: str | None = None,
             skpd: str | None = None) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT d.* FROM attendance_day d JOIN employee e USING (nip) "
            "WHERE d.day BETWEEN %(first)s AND %(last)s "
            "AND (%(nip)s::text IS NULL OR d.nip = %(nip)s) "
            "AND (%(skpd)s::text IS NULL OR e.skpd = %(skpd)s) ORDER BY d.nip, d.day",
            {"first": first_day, "last": last_day, "nip": nip, "skpd": skpd})

    def month_arrays(self, first_day: date, last_day: date, nips: Sequence[str],
                     statuses: Sequence[str], versions: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored days of these employees as arrays, packed by the server into one value:
        employee index, day offset, status index (into `statuses`; -1 another), TL, PSW, cut,
        rule version index (into `versions`), and for the lines behind a cut the minutes late
        and early and the scheduled and punched times in seconds after the day's midnight
        (-1: none)."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            _tune(cur)
            cur.execute("CREATE TEMP TABLE scope_nip (nip text PRIMARY KEY, idx int4 NOT NULL) "
                        "ON COMMIT DROP")
            with cur.copy("COPY scope_nip FROM STDIN") as copy:
                for i, nip in enumerate(nips):
                    copy.write_row((nip, i))
            cur.execute("ANALYZE scope_nip")
            cur.execute("""
SELECT string_agg(int4send(s.idx) || int2send((o.day - %(first)s)::int2)
    || int2send(coalesce(array_position(%(statuses)s::text[], o.status) - 1, -1)::int2)
    || int2send(o.tl) || int2send(o.psw) || float8send(o.cut_pct)
    || int2send(coalesce(array_position(%(versions)s::text[], o.rules_version) - 1, -1)::int2)
    || int4send(coalesce(o.late_min, -1)) || int4send(coalesce(o.early_min, -1))
    || int4send(coalesce(date_part('epoch', o.sched_start - o.day)::int4, -1))
    || int4send(coalesce(date_part('epoch', o.sched_end - o.day)::int4, -1))
    || int4send(coalesce(date_part('epoch', o.in_at - o.day)::int4, -1))
    || int4send(coalesce(date_part('epoch', o.out_at - o.day)::int4, -1)), ''::bytea)
FROM attendance_day o JOIN scope_nip s USING (nip)
WHERE o.day BETWEEN %(first)s AND %(last)s""", {"first": first_day, "last": last_day,
                                                 "statuses": list(statuses),
                                                 "versions": list(versions)}, binary=True)
            packed = cur.fetchone()[0] or b""  # type: ignore[index]
            conn.rollback()
        rows = np.frombuffer(packed, _MONTH_ROW)
        return {name: rows[name].astype(rows.dtype[name].newbyteorder("=")) for name in
                rows.dtype.names or ()}

    def audit_log(self, *, subject: str | None = None, action: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM attendance_audit WHERE (%(s)s::text IS NULL OR subject = %(s)s) "
            "AND (%(a)s::text IS NULL OR action = %(a)s) ORDER BY id DESC LIMIT %(n)s",
            {"s": subject, "a": action, "n": limit})

    def uploads(self, period: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM attendance_recap_upload WHERE period = %s ORDER BY nip",
                          (period,))

    def load_punches(self, first_day: date, last_day: date, nips: Sequence[str],
                     skpds: Sequence[str]) -> PunchArrays:
        """Every raw punch from midnight before first_day to midnight after the day after
        last_day (overnight shifts), resolved to employee indices through the machine-id map:
        a machine's own id first, then an id valid on any machine, then a NIP held as the id.

        The server packs each row into 17 bytes (employee index, seconds, machine index, own
        office) and aggregates them into one bytea: one value to fetch instead of a message per
        row, read straight into arrays."""
        day0 = datetime.combine(first_day - timedelta(days=1), datetime.min.time())
        hi = datetime.combine(last_day + timedelta(days=2), datetime.min.time())
        with self._pool.connection() as conn, conn.cursor() as cur:
            _tune(cur)
            machines = tuple(r[0] for r in cur.execute(
                "SELECT device_sn FROM attendance_machine UNION "
                "SELECT DISTINCT device_sn FROM attendance_batch ORDER BY 1").fetchall())
            cur.execute("CREATE TEMP TABLE scope_employee (nip text PRIMARY KEY, skpd text NOT "
                        "NULL, idx int4 NOT NULL) ON COMMIT DROP")
            cur.execute("CREATE TEMP TABLE scope_machine (device_sn text PRIMARY KEY, idx int4 "
                        "NOT NULL) ON COMMIT DROP")
            with cur.copy("COPY scope_employee FROM STDIN") as copy:
                for i, (nip, skpd) in enumerate(zip(nips, skpds, strict=True)):
                    copy.write_row((nip, skpd, i))
            with cur.copy("COPY scope_machine FROM STDIN") as copy:
                for i, sn in enumerate(machines):
                    copy.write_row((sn, i))
            cur.execute("ANALYZE scope_employee")
            cur.execute("ANALYZE scope_machine")
            cur.execute("""
SELECT string_agg(int4send(e.idx)
                  || int8send(floor(date_part('epoch', p.local_ts - %(day0)s))::int8)
                  || int4send(coalesce(m.idx, -1))
                  || boolsend(coalesce(am.office, '') = '' OR e.skpd = '' OR am.office = e.skpd),
                  ''::bytea)
FROM attendance_punch p
LEFT JOIN attendance_user_map u1 ON u1.device_sn = p.device_sn AND u1.user_id = p.user_id
LEFT JOIN attendance_user_map u2 ON u2.device_sn = '' AND u2.user_id = p.user_id
JOIN scope_employee e ON e.nip = coalesce(u1.nip, u2.nip, p.user_id)
LEFT JOIN attendance_machine am ON am.device_sn = p.device_sn
LEFT JOIN scope_machine m ON m.device_sn = p.device_sn
WHERE p.local_ts >= %(day0)s AND p.local_ts < %(hi)s""", {"day0": day0, "hi": hi},
                        binary=True)
            packed = cur.fetchone()[0] or b""  # type: ignore[index]
            conn.rollback()  # drops the scope tables
        rows = np.frombuffer(packed, _PUNCH_ROW)
        return PunchArrays(rows["employee"].astype(np.int32), rows["t_s"].astype(np.int64),
                           rows["machine"].astype(np.int32), rows["own"].astype(bool), machines)

    # --- writes ------------------------------------------------------------------------------

    @staticmethod
    def _audit(cur: psycopg.Cursor[Any], actor: str, action: str, subject: str,
               detail: dict[str, Any]) -> None:
        cur.execute("INSERT INTO attendance_audit (actor, action, subject, detail) "
                    "VALUES (%s, %s, %s, %s)", (actor, action, subject,
                                                json.dumps(detail, default=str)))

    def audit(self, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        with self._pool.connection() as conn, conn.cursor() as cur:
            self._audit(cur, actor, action, subject, detail)

    def upsert_units(self, units: Iterable[UnitRow], *, actor: str) -> int:
        rows = [(u.code, u.name, u.parent, u.skpd) for u in units]
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO attendance_unit (code, name, parent, skpd) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, parent = EXCLUDED.parent, "
                "skpd = EXCLUDED.skpd, updated_at = now() WHERE (attendance_unit.name, "
                "attendance_unit.parent, attendance_unit.skpd) IS DISTINCT FROM "
                "(EXCLUDED.name, EXCLUDED.parent, EXCLUDED.skpd)", rows)
            if rows:
                self._audit(cur, actor, "units_synced", "", {"units": len(rows)})
        return len(rows)

    def upsert_employees(self, employees: Iterable[EmployeeRow], *, source: str, actor: str
                         ) -> tuple[int, int]:
        """Insert or update employees; returns (new, changed). Each change is audited with its
        before and after values."""
        rows = list(employees)
        new = changed = 0
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT nip, name, skpd, unit, position, schedule_group, active "
                        "FROM employee WHERE nip = ANY(%s)", ([r.nip for r in rows],))
            before = {r["nip"]: r for r in cur.fetchall()}
            for r in rows:
                after = {"nip": r.nip, "name": r.name, "skpd": r.skpd, "unit": r.unit,
                         "position": r.position, "schedule_group": r.schedule_group,
                         "active": r.active}
                old = before.get(r.nip)
                if old == after:
                    continue
                cur.execute(
                    "INSERT INTO employee (nip, name, skpd, unit, position, schedule_group, "
                    "active, source) VALUES (%(nip)s, %(name)s, %(skpd)s, %(unit)s, %(position)s, "
                    "%(schedule_group)s, %(active)s, %(source)s) ON CONFLICT (nip) DO UPDATE SET "
                    "name = EXCLUDED.name, skpd = EXCLUDED.skpd, unit = EXCLUDED.unit, "
                    "position = EXCLUDED.position, schedule_group = EXCLUDED.schedule_group, "
                    "active = EXCLUDED.active, source = EXCLUDED.source, updated_at = now()",
                    {**after, "source": source})
                if old is None:
                    new += 1
                else:
                    changed += 1
                    diff = {k: [old[k], v] for k, v in after.items() if old[k] != v}
                    self._audit(cur, actor, "employee_changed", r.nip, {"changes": diff,
                                                                         "source": source})
            if new:
                self._audit(cur, actor, "employees_added", "", {"count": new, "source": source})
        return new, changed

    def replace_user_map(self, entries: Iterable[tuple[str, str, str]], nips: Sequence[str], *,
                         actor: str) -> int:
        """Set the machine ids of these employees to exactly `entries` (device_sn, user_id,
        nip); an id another employee held moves to the new one (audited)."""
        rows = list(entries)
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM attendance_user_map WHERE nip = ANY(%s)", (list(nips),))
            cur.executemany(
                "INSERT INTO attendance_user_map (device_sn, user_id, nip) VALUES (%s, %s, %s) "
                "ON CONFLICT (device_sn, user_id) DO UPDATE SET nip = EXCLUDED.nip", rows)
            # The machine-facing list the unknown-user alarm and the user push read (0004).
            cur.executemany(
                "INSERT INTO attendance_employee (user_id, name, nip, office, active) "
                "SELECT %s, e.name, e.nip, e.skpd, e.active FROM employee e WHERE e.nip = %s "
                "ON CONFLICT (user_id) DO UPDATE SET name = EXCLUDED.name, nip = EXCLUDED.nip, "
                "office = EXCLUDED.office, active = EXCLUDED.active, updated_at = now()",
                [(user_id, nip) for _, user_id, nip in rows])
            self._audit(cur, actor, "user_map_set", "", {"employees": len(nips),
                                                         "ids": len(rows)})
        return len(rows)

    def add_leave(self, leave: LeaveRow, *, actor: str) -> tuple[int, bool]:
        """Store a leave record; the same (source, source_id) again updates it if it changed.
        Returns (id, changed)."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT * FROM attendance_leave WHERE source = %s AND source_id = %s "
                        "FOR UPDATE", (leave.source, leave.source_id))
            old = cur.fetchone()
            fields = {"nip": leave.nip, "code": leave.code, "first_day": leave.first_day,
                      "last_day": leave.last_day, "doc_ref": leave.doc_ref}
            if old is not None:
                if all(old[k] == v for k, v in fields.items()) and old["revoked_at"] is None:
                    return old["id"], False
                cur.execute("UPDATE attendance_leave SET nip = %(nip)s, code = %(code)s, "
                            "first_day = %(first_day)s, last_day = %(last_day)s, doc_ref = "
                            "%(doc_ref)s, revoked_at = NULL, revoked_by = NULL, entered_by = "
                            "%(actor)s, entered_at = now() WHERE id = %(id)s",
                            {**fields, "actor": actor, "id": old["id"]})
                self._audit(cur, actor, "leave_changed", leave.nip, {
                    "leave_id": old["id"], "before": {k: old[k] for k in fields},
                    "after": fields, "source": leave.source})
                return old["id"], True
            cur.execute("INSERT INTO attendance_leave (nip, code, first_day, last_day, doc_ref, "
                        "source, source_id, entered_by) VALUES (%(nip)s, %(code)s, %(first_day)s, "
                        "%(last_day)s, %(doc_ref)s, %(source)s, %(source_id)s, %(actor)s) "
                        "RETURNING id", {**fields, "source": leave.source,
                                         "source_id": leave.source_id, "actor": actor})
            leave_id = cur.fetchone()["id"]  # type: ignore[index]
            self._audit(cur, actor, "leave_added", leave.nip, {
                "leave_id": leave_id, **fields, "source": leave.source,
                "source_id": leave.source_id})
            return leave_id, True

    def revoke_leave(self, leave_id: int, *, actor: str, reason: str) -> dict[str, Any] | None:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("UPDATE attendance_leave SET revoked_at = now(), revoked_by = %s "
                        "WHERE id = %s AND revoked_at IS NULL RETURNING *", (actor, leave_id))
            row = cur.fetchone()
            if row is not None:
                self._audit(cur, actor, "leave_revoked", row["nip"], {
                    "leave_id": leave_id, "code": row["code"], "first_day": row["first_day"],
                    "last_day": row["last_day"], "reason": reason})
            return row

    def set_roster(self, entries: Iterable[tuple[str, date, str]], *, actor: str) -> int:
        rows = list(entries)
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO attendance_roster (nip, day, shift, entered_by) VALUES (%s, %s, %s, "
                "%s) ON CONFLICT (nip, day) DO UPDATE SET shift = EXCLUDED.shift, entered_by = "
                "EXCLUDED.entered_by, entered_at = now()", [(*r, actor) for r in rows])
            if rows:
                self._audit(cur, actor, "roster_set", "", {
                    "entries": len(rows), "first_day": min(r[1] for r in rows),
                    "last_day": max(r[1] for r in rows)})
        return len(rows)

    def _copy_days(self, cur: psycopg.Cursor[Any], table: str, rows: DayRows,
                   hashes: np.ndarray, take: np.ndarray, computed_at: datetime) -> None:
        vocab = _vocabularies(rows)
        columns = sql.SQL(", ").join(map(sql.Identifier, _DAY_COLUMNS))
        # The queued writer sends from its own thread, so the next chunk is encoded while the
        # server takes the last one.
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(table), columns), writer=QueuedLibpqWriter(cur)) as copy:
            copy.write(pgbinary.HEADER)
            for lo in range(0, take.shape[0], self.COPY_CHUNK):
                copy.write(_encode_days(rows, vocab, hashes, computed_at,
                                        take[lo:lo + self.COPY_CHUNK]))
            copy.write(pgbinary.TRAILER)

    def replace_days(self, rows: DayRows, first_day: date, last_day: date, *, actor: str,
                     reason: str, computed_at: datetime) -> dict[str, int]:
        """Make the stored days of `rows`' employees over the period equal `rows` (a complete
        employees × days grid), in one transaction. Each row's content hash is compared with
        the stored one: only new and changed rows are written, and every changed row is
        audited with its before and after. Returns counts: rows given, changed, new."""
        n_days = (last_day - first_day).days + 1
        total = rows.employee.shape[0]
        if total != len(rows.nips) * n_days:
            raise ValueError("day rows must cover every employee on every day of the period")
        hashes = content_hash(rows)
        key = rows.employee.astype(np.int64) * n_days + (
            rows.day.astype("datetime64[D]") - np.datetime64(first_day, "D")).astype(np.int64)
        with self._pool.connection() as conn, conn.cursor() as cur:
            _tune(cur)
            cur.execute("CREATE TEMP TABLE scope_nip (nip text PRIMARY KEY, idx int4 NOT NULL) "
                        "ON COMMIT DROP")
            with cur.copy("COPY scope_nip FROM STDIN") as copy:
                for i, nip in enumerate(rows.nips):
                    copy.write_row((nip, i))
            cur.execute("ANALYZE scope_nip")
            cur.execute(
                "SELECT string_agg(int4send(s.idx * %(days)s + (o.day - %(first)s)) "
                "|| int8send(o.content_hash), ''::bytea) FROM attendance_day o "
                "JOIN scope_nip s USING (nip) WHERE o.day BETWEEN %(first)s AND %(last)s",
                {"days": n_days, "first": first_day, "last": last_day}, binary=True)
            packed = cur.fetchone()[0] or b""  # type: ignore[index]
            old = np.frombuffer(packed, np.dtype([("key", ">i4"), ("hash", ">i8")]))
            stored = np.zeros(len(rows.nips) * n_days, bool)
            stored_hash = np.zeros(len(rows.nips) * n_days, np.int64)
            stored[old["key"]] = True
            stored_hash[old["key"]] = old["hash"]
            is_new = ~stored[key]
            is_changed = stored[key] & (stored_hash[key] != hashes)
            changed = np.flatnonzero(is_changed)
            if changed.size:
                cur.execute("CREATE TEMP TABLE new_day (LIKE attendance_day) ON COMMIT DROP")
                self._copy_days(cur, "new_day", rows, hashes, changed, computed_at)
                cur.execute(
                    "INSERT INTO attendance_audit (actor, action, subject, detail) "
                    "SELECT %(actor)s, 'day_changed', n.nip, jsonb_build_object('day', n.day, "
                    "'reason', %(reason)s::text, "
                    "'before', to_jsonb(o) - 'computed_at' - 'content_hash', "
                    "'after', to_jsonb(n) - 'computed_at' - 'content_hash') "
                    "FROM new_day n JOIN attendance_day o USING (nip, day) ORDER BY n.nip, n.day",
                    {"actor": actor, "reason": reason})
                cur.execute("DELETE FROM attendance_day o USING new_day n "
                            "WHERE o.day = n.day AND o.nip = n.nip")
            # In the primary key's order (day, then NIP as the grid's employees are sorted):
            # the index grows at its end instead of splitting pages all over.
            write = np.flatnonzero(is_new | is_changed)
            write = write[np.lexsort((rows.employee[write], rows.day[write]))]
            if write.size:
                self._copy_days(cur, "attendance_day", rows, hashes, write, computed_at)
        return {"rows": total, "changed": int(changed.size), "new": int(is_new.sum())}

    def record_uploads(self, period: str, results: Iterable[tuple[str, str, str, int | None, str]],
                       *, actor: str) -> None:
        """(nip, content_hash, status, revision, reason) per employee, as SIMPEG answered."""
        rows = [(period, *r) for r in results]
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO attendance_recap_upload (period, nip, content_hash, status, revision, "
                "reason) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (period, nip) DO UPDATE SET "
                "content_hash = EXCLUDED.content_hash, status = EXCLUDED.status, revision = "
                "EXCLUDED.revision, reason = EXCLUDED.reason, uploaded_at = now()", rows)
            self._audit(cur, actor, "recap_uploaded", period, {
                "records": len(rows),
                "rejected": sum(1 for r in rows if r[3] == "rejected")})
