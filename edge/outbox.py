"""The edge agent's store-and-forward outbox and its epoch counter, in one SQLite file (WAL).

Every message the agent sends is written here first and deleted only once the broker has it
(PUBACK for QoS 1, handed to a connected client for QoS 0), so a broker outage or a crash of
the agent (kill -9) loses nothing that must arrive. Telemetry rows are *droppable*: under the
configured cap the oldest are deleted first; events and command acks never are. This module
knows nothing of MQTT beyond storing a topic, a QoS and a retain flag.

Durability: WAL mode. A commit in WAL mode with ``synchronous=NORMAL`` survives the death of
the process (the WAL pages are in the OS cache) but not a power cut — and edge boxes on poles
lose power. So rows that must arrive (non-droppable) commit with ``synchronous=FULL`` (one
fsync of the WAL per put, ~ms); the WAL is sequential, so that fsync also persists any
telemetry committed before it. Droppable puts and deletes commit with NORMAL: losing one of
those to a power cut costs a telemetry sample or a duplicate resend, both harmless.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the drain's cursor relies on it
    topic       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    qos         INTEGER NOT NULL CHECK (qos IN (0, 1)),
    retain      INTEGER NOT NULL CHECK (retain IN (0, 1)),
    droppable   INTEGER NOT NULL CHECK (droppable IN (0, 1)),
    created_at  REAL    NOT NULL                    -- Unix time, seconds
);
CREATE INDEX IF NOT EXISTS outbox_droppable ON outbox (droppable, id);
CREATE TABLE IF NOT EXISTS meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
"""


class OutboxError(Exception):
    """The outbox file cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    droppable: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    droppable: int  # telemetry waiting
    reliable: int  # events, acks and other rows that are never dropped
    dropped_total: int  # telemetry rows deleted by the cap since this outbox was opened

    @property
    def total(self) -> int:
        return self.droppable + self.reliable


class Outbox:
    """One SQLite connection shared by the agent's threads, serialised by a lock."""

    def __init__(self, path: Path, telemetry_cap: int) -> None:
        if telemetry_cap < 1:
            raise ValueError("telemetry_cap must be at least 1")
        self._path = path
        self._cap = telemetry_cap
        self._lock = threading.Lock()
        self._sync: str | None = None
        self._dropped_total = 0
        self._dropping = False  # inside a run of cap drops: warned once, not per row
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE).
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"outbox {path}: SQLite refused WAL mode (got {mode!r}); "
                                  "put the state_dir on a local file system")
            self._db.executescript(_SCHEMA)
            self._droppable = self._count(droppable=True)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}; check that state_dir is "
                              "writable and the file is not corrupt (move it aside to start empty)") from exc

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ writes

    def put(self, topic: str, payload: bytes, qos: int, retain: bool, droppable: bool) -> int:
        """Store one message; returns its id. A droppable put may delete the oldest droppable rows."""
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos}")
        with self._lock:
            self._set_sync("NORMAL" if droppable else "FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain, droppable, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (topic, payload, qos, int(retain), int(droppable), time.time()),
                )
                row_id = cur.lastrowid
                dropped = 0
                if droppable and self._droppable + 1 > self._cap:
                    dropped = self._db.execute(
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE droppable = 1 "
                        "ORDER BY id LIMIT ?)",
                        (self._droppable + 1 - self._cap,),
                    ).rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxError(f"outbox {self._path}: cannot store a message for {topic}: {exc}") from exc
            if droppable:
                self._droppable += 1 - dropped
            if dropped:
                self._note_dropped(dropped)
            assert row_id is not None
            return row_id

    def remove(self, ids: Iterable[int]) -> int:
        """Delete rows the broker has; unknown ids (already dropped) are ignored. Returns rows deleted."""
        id_list = list(ids)
        if not id_list:
            return 0
        with self._lock:
            self._set_sync("NORMAL")
            removed = removed_droppable = 0
            try:
                self._db.execute("BEGIN IMMEDIATE")
                # Chunks stay under SQLite's host-parameter limit.
                for start in range(0, len(id_list), 500):
                    chunk = id_list[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    flags = self._db.execute(
                        f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING droppable", chunk
                    ).fetchall()
                    removed += len(flags)
                    removed_droppable += sum(f[0] for f in flags)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxError(f"outbox {self._path}: cannot delete sent rows: {exc}") from exc
            self._droppable -= removed_droppable
            if self._dropping and self._droppable < self._cap:
                self._dropping = False
                log.info("outbox %s is below its telemetry cap again; %d telemetry messages were "
                         "dropped so far", self._path, self._dropped_total)
            return removed

    def next_epoch(self) -> int:
        """Bump and return the persisted epoch counter (1 on a new outbox). Call once per agent run."""
        with self._lock:
            self._set_sync("FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('epoch', 1) "
                    "ON CONFLICT (key) DO UPDATE SET value = value + 1"
                )
                epoch = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxError(f"outbox {self._path}: cannot bump the epoch: {exc}") from exc
            return int(epoch)

    # ------------------------------------------------------------------ reads

    def peek(self, limit: int, after_id: int = 0) -> list[OutboxRow]:
        """Up to ``limit`` rows with id > ``after_id``, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, topic, payload, qos, retain, droppable, created_at FROM outbox "
                    "WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self._path}: cannot read: {exc}") from exc
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), bool(r[5]), r[6]) for r in rows]

    def counts(self) -> OutboxCounts:
        with self._lock:
            try:
                droppable = self._count(droppable=True)
                reliable = self._count(droppable=False)
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self._path}: cannot count rows: {exc}") from exc
            return OutboxCounts(droppable, reliable, self._dropped_total)

    # ------------------------------------------------------------------ internals (lock held)

    def _count(self, droppable: bool) -> int:
        return int(self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE droppable = ?", (int(droppable),)).fetchone()[0])

    def _set_sync(self, level: str) -> None:
        if self._sync != level:
            self._db.execute(f"PRAGMA synchronous={level}")
            self._sync = level

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _note_dropped(self, dropped: int) -> None:
        self._dropped_total += dropped
        if not self._dropping:
            self._dropping = True
            log.warning("outbox %s holds its cap of %d telemetry messages (broker unreachable?); "
                        "dropping the oldest telemetry from now on — events and acks are kept",
                        self._path, self._cap)
