"""What the office edge remembers per attendance machine, in one SQLite file (WAL, fsync'd).

Owns the pull watermark and the batch ledger. The watermark is a position in the machine's
log (records are only ever appended) with the key of the record just before it, so that a
log that was cleared, overwritten when full, or restored behind our back is noticed (the key
no longer matches) instead of silently skipping punches; a clock correction cannot move it.
The ledger lists every batch handed to the outbox with the log positions it covers and
whether the control room has confirmed it stored — the only thing that allows clearing a
machine. It must not talk to machines or MQTT.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS machine (
    device_sn   TEXT PRIMARY KEY,
    position    INTEGER NOT NULL DEFAULT 0,   -- records of the log already put in batches
    last_key    TEXT,                         -- key of record position-1, NULL at 0
    resets      INTEGER NOT NULL DEFAULT 0,   -- times the log was found changed behind us
    cleared     INTEGER NOT NULL DEFAULT 0    -- times this agent cleared the log
);
CREATE TABLE IF NOT EXISTS batch (
    batch_id    TEXT PRIMARY KEY,
    device_sn   TEXT    NOT NULL,
    generation  INTEGER NOT NULL,             -- machine.resets + machine.cleared when made
    first_pos   INTEGER NOT NULL,
    end_pos     INTEGER NOT NULL,             -- one past the last record
    punches     INTEGER NOT NULL,
    last_ts     TEXT    NOT NULL,             -- ISO time of its newest punch
    body        BLOB    NOT NULL,             -- its punches as sent, to ask again if unanswered
    created_at  REAL    NOT NULL,
    stored_at   REAL
);
CREATE INDEX IF NOT EXISTS batch_unstored ON batch (device_sn, stored_at);
"""


class OfficeStateError(Exception):
    """The state file cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class Watermark:
    position: int
    last_key: str | None
    generation: int  # changes whenever the log starts over (reset or clear)


@dataclass(frozen=True, slots=True)
class Ledger:
    unstored_batches: int
    unstored_punches: int
    stored_batches: int
    newest_punch: str | None  # ISO time of the newest punch put in a batch


class OfficeState:
    """One connection shared by the agent's machine threads, serialised by a lock."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # Every commit is fsync'd: a watermark that survived a power cut while its batch did
            # not would skip punches (the outbox row is written, and fsync'd, first).
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OfficeStateError(f"cannot open the office state {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise OfficeStateError(f"office state: {exc}") from exc

    def _change(self, sql: str, params: tuple = ()) -> int:
        """Run one UPDATE or DELETE; returns the rows it changed."""
        try:
            with self._lock:
                return self._db.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise OfficeStateError(f"office state: {exc}") from exc

    def watermark(self, device_sn: str) -> Watermark:
        self._run("INSERT OR IGNORE INTO machine (device_sn) VALUES (?)", (device_sn,))
        position, key, resets, cleared = self._run(
            "SELECT position, last_key, resets, cleared FROM machine WHERE device_sn = ?",
            (device_sn,))[0]
        return Watermark(position, key, resets + cleared)

    def add_batch(self, device_sn: str, batch_id: str, watermark: Watermark, end_pos: int,
                  end_key: str, punches: int, last_ts: str, body: bytes) -> Watermark:
        """Record a batch the outbox now holds and move the watermark past it, atomically."""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(
                        "INSERT INTO batch (batch_id, device_sn, generation, first_pos, end_pos, "
                        "punches, last_ts, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (batch_id, device_sn, watermark.generation, watermark.position, end_pos,
                         punches, last_ts, body, time.time()))
                    self._db.execute("UPDATE machine SET position = ?, last_key = ? "
                                     "WHERE device_sn = ?", (end_pos, end_key, device_sn))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise OfficeStateError(f"office state: {exc}") from exc
        return Watermark(end_pos, end_key, watermark.generation)

    def start_over(self, device_sn: str, *, cleared: bool) -> Watermark:
        """The log starts again from its first record: after our clear, or found changed."""
        column = "cleared" if cleared else "resets"
        self._run(f"UPDATE machine SET position = 0, last_key = NULL, {column} = {column} + 1 "
                  "WHERE device_sn = ?", (device_sn,))
        return self.watermark(device_sn)

    def mark_stored(self, device_sn: str, batch_ids: Iterable[str]) -> int:
        """The control room confirmed these batches stored; returns how many were news."""
        ids = list(batch_ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        return self._change(f"UPDATE batch SET stored_at = ? WHERE device_sn = ? AND stored_at IS "
                            f"NULL AND batch_id IN ({marks})", (time.time(), device_sn, *ids))

    def unanswered(self, device_sn: str, older_than_s: float) -> list[tuple[str, bytes]]:
        """(batch id, body) of unstored batches handed over more than this long ago; their
        clock restarts, so each is asked again at most once per that time."""
        now = time.time()
        rows = self._run("SELECT batch_id, body FROM batch WHERE device_sn = ? AND stored_at IS "
                         "NULL AND created_at < ? ORDER BY created_at",
                         (device_sn, now - older_than_s))
        if rows:
            marks = ",".join("?" * len(rows))
            self._change(f"UPDATE batch SET created_at = ? WHERE batch_id IN ({marks})",
                         (now, *(r[0] for r in rows)))
        return [(r[0], bytes(r[1])) for r in rows]

    def all_stored_up_to(self, device_sn: str, watermark: Watermark) -> bool:
        """Every record before the watermark, in its generation, is in a stored batch."""
        rows = self._run(
            "SELECT first_pos, end_pos, stored_at IS NOT NULL FROM batch WHERE device_sn = ? "
            "AND generation = ? ORDER BY first_pos", (device_sn, watermark.generation))
        covered = 0
        for first, end, stored in rows:
            if first != covered or not stored:
                return False
            covered = end
        return covered == watermark.position

    def ledger(self, device_sn: str) -> Ledger:
        (unstored_b, unstored_p, stored_b, newest), = self._run(
            "SELECT count(*) FILTER (WHERE stored_at IS NULL), "
            "coalesce(sum(punches) FILTER (WHERE stored_at IS NULL), 0), "
            "count(*) FILTER (WHERE stored_at IS NOT NULL), max(last_ts) "
            "FROM batch WHERE device_sn = ?", (device_sn,))
        return Ledger(unstored_b, unstored_p, stored_b, newest)

    def prune(self, device_sn: str) -> int:
        """Forget the stored batches of earlier generations of the log (the control room has
        them, and the machine no longer does); the current generation's prove what may be
        cleared, and unstored ones wait for their confirmation."""
        generation = self.watermark(device_sn).generation
        return self._change("DELETE FROM batch WHERE device_sn = ? AND generation < ? AND "
                            "stored_at IS NOT NULL", (device_sn, generation))
