"""Users and sessions in PostgreSQL (migration 0007), each change with its audit row in the
same transaction (table `audit_log`, shared with operator actions).

Owns the SQL of `app_user` and `app_session`; it never sees a password or a session token, only
their hashes. Decisions (is this log-in allowed, has this session expired) are the
authenticator's; this module counts and records them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

ROLES = ("operator", "supervisor", "bkpsdm", "technician", "admin")


class AuthStorageError(Exception):
    """The user or session tables could not be read or written; nothing was changed."""


class DuplicateUserError(AuthStorageError):
    """A user of that name exists (disabled users keep their name: the audit log names them)."""


class UnknownUserError(AuthStorageError):
    """No user of that name."""


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    name: str
    role: str
    password_hash: str
    disabled: bool
    failed_logins: int
    first_failed_at: datetime | None
    locked_until: datetime | None
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    user_id: int
    user: str
    role: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    now: datetime  # the database's clock, which every expiry is measured by


@dataclass(frozen=True, slots=True)
class Audit:
    """One audit_log row: who did what to whom; `detail` never holds a password."""

    user_name: str
    role: str
    action: str
    target: str
    outcome: str  # done | denied | failed
    detail: str = ""
    after: dict[str, Any] | None = None


_USER_COLUMNS = ("id, name, role, password_hash, disabled, failed_logins, first_failed_at, "
                 "locked_until, created_at, password_changed_at, last_login_at")

_INSERT_AUDIT = ("INSERT INTO audit_log (user_name, role, action, target, outcome, after, detail) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s)")

# A failure inside the window counts on; one after it starts a new count. Reaching the limit
# locks the account and starts counting afresh, so an unlocked account gets the full allowance.
_FAILED = """
UPDATE app_user SET
    failed_logins = CASE WHEN first_failed_at IS NULL
                              OR first_failed_at < now() - make_interval(secs => %(window_s)s)
                         THEN 1 ELSE failed_logins + 1 END,
    first_failed_at = CASE WHEN first_failed_at IS NULL
                                OR first_failed_at < now() - make_interval(secs => %(window_s)s)
                           THEN now() ELSE first_failed_at END
WHERE id = %(id)s
RETURNING failed_logins
"""


class UserStore:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @contextmanager
    def _tx(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateUserError(f"{what}: the name is taken") from exc
        except psycopg.Error as exc:
            raise AuthStorageError(f"{what} not stored: {exc}") from exc

    @staticmethod
    def _audit(conn: psycopg.Connection[Any], audit: Audit) -> None:
        conn.execute(_INSERT_AUDIT, (audit.user_name[:64], audit.role, audit.action,
                                     audit.target[:64], audit.outcome,
                                     json.dumps(audit.after) if audit.after is not None else None,
                                     audit.detail))

    def audit(self, audit: Audit) -> None:
        with self._tx("audit row") as conn:
            self._audit(conn, audit)

    # ------------------------------------------------------------------ users

    def user(self, name: str) -> UserRow | None:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=class_row(UserRow)) as cur:
                return cur.execute(f"SELECT {_USER_COLUMNS} FROM app_user WHERE name = %s",
                                   (name,)).fetchone()
        except psycopg.Error as exc:
            raise AuthStorageError(f"user not read: {exc}") from exc

    def users(self) -> list[UserRow]:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=class_row(UserRow)) as cur:
                return cur.execute(f"SELECT {_USER_COLUMNS} FROM app_user ORDER BY name").fetchall()
        except psycopg.Error as exc:
            raise AuthStorageError(f"users not read: {exc}") from exc

    def create(self, name: str, role: str, password_hash: str, audit: Audit) -> int:
        with self._tx(f"user {name}") as conn:
            row = conn.execute("INSERT INTO app_user (name, role, password_hash) "
                               "VALUES (%s, %s, %s) RETURNING id",
                               (name, role, password_hash)).fetchone()
            self._audit(conn, audit)
        assert row is not None  # RETURNING of an INSERT that did not raise
        return int(row[0])

    def _update(self, name: str, sql: str, params: tuple[Any, ...], audit: Audit, *,
                end_sessions: bool, keep_session: bytes | None = None) -> None:
        """Change one user by name (UnknownUserError if none), optionally ending their
        sessions (all, or all but `keep_session`), and audit it: one transaction."""
        with self._tx(f"user {name}") as conn:
            row = conn.execute(f"UPDATE app_user SET {sql} WHERE name = %s RETURNING id",
                               (*params, name)).fetchone()
            if row is None:
                raise UnknownUserError(f"no user {name!r}")
            if end_sessions:
                conn.execute("UPDATE app_session SET revoked = true WHERE user_id = %s "
                             "AND NOT revoked AND id IS DISTINCT FROM %s", (row[0], keep_session))
            self._audit(conn, audit)

    def set_password(self, name: str, password_hash: str, audit: Audit, *,
                     keep_session: bytes | None = None) -> None:
        """A new password ends every other session of the user."""
        self._update(name, "password_hash = %s, password_changed_at = now()", (password_hash,),
                     audit, end_sessions=True, keep_session=keep_session)

    def set_disabled(self, name: str, disabled: bool, audit: Audit) -> None:
        self._update(name, "disabled = %s", (disabled,), audit, end_sessions=disabled)

    def unlock(self, name: str, audit: Audit) -> None:
        self._update(name, "locked_until = NULL, failed_logins = 0, first_failed_at = NULL", (),
                     audit, end_sessions=False)

    # ------------------------------------------------------------------ log-in

    def login_failed(self, user: UserRow, *, window_s: float, max_failed: int,
                     lockout_s: float, audit: Audit) -> datetime | None:
        """Count a failed log-in; returns until when the account is now locked, if this
        failure locked it (the lock-out is audited too)."""
        with self._tx(f"failed log-in of {user.name}") as conn:
            row = conn.execute(_FAILED, {"id": user.id, "window_s": window_s}).fetchone()
            self._audit(conn, audit)
            if row is None or row[0] < max_failed:
                return None
            locked = conn.execute(
                "UPDATE app_user SET locked_until = now() + make_interval(secs => %s), "
                "failed_logins = 0, first_failed_at = NULL WHERE id = %s RETURNING locked_until",
                (lockout_s, user.id)).fetchone()
            assert locked is not None
            self._audit(conn, Audit(user.name, user.role, "lockout", user.name, "done",
                                    detail=f"{max_failed} failed log-ins within {window_s:g} s: "
                                    f"locked for {lockout_s:g} s",
                                    after={"locked_until": locked[0].isoformat()}))
            return locked[0]

    def login_ok(self, user: UserRow, session_id: bytes, csrf_token: str, *, max_s: float,
                 ip: str, user_agent: str, new_hash: str | None, audit: Audit) -> None:
        """Start a session: the failure count reset, the hash upgraded if asked, audited."""
        with self._tx(f"log-in of {user.name}") as conn:
            conn.execute("UPDATE app_user SET failed_logins = 0, first_failed_at = NULL, "
                         "locked_until = NULL, last_login_at = now(), "
                         "password_hash = coalesce(%s, password_hash) WHERE id = %s",
                         (new_hash, user.id))
            conn.execute("INSERT INTO app_session (id, user_id, csrf_token, expires_at, ip, "
                         "user_agent) VALUES (%s, %s, %s, now() + make_interval(secs => %s), "
                         "%s, %s)", (session_id, user.id, csrf_token, max_s, ip[:64],
                                     user_agent[:300]))
            self._audit(conn, audit)

    # ------------------------------------------------------------------ sessions

    def session(self, session_id: bytes, *, idle_s: float) -> SessionRow | None:
        """The live session of that id: not revoked, within its absolute and idle limits, of
        an enabled user."""
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=class_row(SessionRow)) as cur:
                return cur.execute(
                    "SELECT s.user_id, u.name AS user, u.role, s.csrf_token, s.created_at, "
                    "s.last_seen_at, s.expires_at, now() AS now FROM app_session s "
                    "JOIN app_user u ON u.id = s.user_id WHERE s.id = %s AND NOT s.revoked "
                    "AND NOT u.disabled AND s.expires_at > now() "
                    "AND s.last_seen_at > now() - make_interval(secs => %s)",
                    (session_id, idle_s)).fetchone()
        except psycopg.Error as exc:
            raise AuthStorageError(f"session not read: {exc}") from exc

    def touch(self, session_id: bytes) -> None:
        with self._tx("session use") as conn:
            conn.execute("UPDATE app_session SET last_seen_at = now() WHERE id = %s",
                         (session_id,))

    def revoke(self, session_id: bytes, audit: Audit) -> bool:
        with self._tx("log-out") as conn:
            row = conn.execute("UPDATE app_session SET revoked = true WHERE id = %s "
                               "AND NOT revoked RETURNING user_id", (session_id,)).fetchone()
            if row is not None:
                self._audit(conn, audit)
        return row is not None
