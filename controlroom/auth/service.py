"""Logging in and out, sessions with idle and absolute expiry, password changes and user
administration: the rules, over `UserStore` and `Passwords`.

Owns what a log-in may tell: every refusal has the same answer, whether the name is unknown,
the password wrong, the account disabled or locked, and an unknown name costs one hash
verification like a known one. A session token is 32 random bytes shown once to the client;
only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from controlroom.auth.passwords import Passwords
from controlroom.auth.store import ROLES, Audit, SessionRow, UnknownUserError, UserStore
from controlroom.settings import AuthSettings

log = logging.getLogger(__name__)

# A session's last use is written at most this often (plus on log-in), not on every request:
# idle expiry is measured in minutes, and a wall screen polls every second.
TOUCH_EVERY_S = 15.0


class LoginRefused(Exception):
    """Wrong name or password, or the account is locked or disabled: deliberately one error."""


class PasswordChangeRefused(Exception):
    """The current password given was wrong."""


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: bytes
    user: str
    role: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LoggedIn:
    token: str  # for the cookie; never stored
    session: Session


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def passwords_for(settings: AuthSettings) -> Passwords:
    return Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
                     parallelism=settings.argon2_parallelism,
                     min_length=settings.min_password_length)


class Authenticator:
    def __init__(self, store: UserStore, settings: AuthSettings,
                 passwords: Passwords | None = None) -> None:
        self.store = store
        self.settings = settings
        self.passwords = passwords if passwords is not None else passwords_for(settings)

    @property
    def refusal(self) -> str:
        """The one answer to every refused log-in; it names the lock-out rule, not the case."""
        s = self.settings
        return (f"wrong name or password, or the account is locked or disabled ("
                f"{s.max_failed_logins} failed log-ins within {s.failure_window_s / 60:g} min "
                f"lock an account for {s.lockout_s / 60:g} min)")

    def login(self, name: str, password: str, *, ip: str = "", user_agent: str = "") -> LoggedIn:
        s = self.settings
        user = self.store.user(name)
        if user is None:
            self.passwords.burn(password)
            self.store.audit(Audit(name, "", "login", name, "denied", detail="unknown user"))
            raise LoginRefused(self.refusal)
        ok = self.passwords.verify(user.password_hash, password)  # always: same time
        now = datetime.now(UTC)
        if user.disabled or (user.locked_until is not None and user.locked_until > now):
            why = "disabled" if user.disabled else f"locked until {user.locked_until:%H:%M:%S} UTC"
            self.store.audit(Audit(name, user.role, "login", name, "denied", detail=why))
            raise LoginRefused(self.refusal)
        if not ok:
            locked = self.store.login_failed(
                user, window_s=s.failure_window_s, max_failed=s.max_failed_logins,
                lockout_s=s.lockout_s,
                audit=Audit(name, user.role, "login", name, "denied", detail="wrong password"))
            if locked is not None:
                log.warning("user %s locked until %s after %d failed log-ins", name,
                            locked.isoformat(), s.max_failed_logins)
            raise LoginRefused(self.refusal)
        new_hash = (self.passwords.hash(password) if self.passwords.needs_rehash(user.password_hash)
                    else None)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        digest = token_hash(token)
        self.store.login_ok(user, digest, csrf, max_s=s.session_max_s, ip=ip,
                            user_agent=user_agent, new_hash=new_hash,
                            audit=Audit(name, user.role, "login", name, "done",
                                        detail=f"from {ip or 'unknown'}"
                                        + ("; password hash upgraded" if new_hash else "")))
        return LoggedIn(token, Session(digest, user.name, user.role, csrf,
                                       now + timedelta(seconds=s.session_max_s)))

    def session(self, token: str) -> Session | None:
        """The live session of a cookie's token, or None (unknown, expired, revoked, or its
        user disabled)."""
        if not token or len(token) > 200:
            return None
        digest = token_hash(token)
        row: SessionRow | None = self.store.session(digest, idle_s=self.settings.session_idle_s)
        if row is None:
            return None
        if (row.now - row.last_seen_at).total_seconds() >= TOUCH_EVERY_S:
            self.store.touch(digest)
        return Session(digest, row.user, row.role, row.csrf_token, row.expires_at)

    def logout(self, session: Session) -> None:
        self.store.revoke(session.token_hash, Audit(session.user, session.role, "logout",
                                                    session.user, "done"))

    def change_password(self, session: Session, current: str, new: str) -> None:
        """Raises PasswordChangeRefused (wrong current password, audited) or WeakPasswordError;
        a change ends the user's other sessions."""
        user = self.store.user(session.user)
        if user is None or not self.passwords.verify(user.password_hash, current):
            self.store.audit(Audit(session.user, session.role, "password_change", session.user,
                                   "denied", detail="current password wrong"))
            raise PasswordChangeRefused("the current password is wrong")
        self.passwords.check(new, name=session.user)
        self.store.set_password(session.user, self.passwords.hash(new),
                                Audit(session.user, session.role, "password_change",
                                      session.user, "done", detail="other sessions ended"),
                                keep_session=session.token_hash)

    # ------------------------------------------------------------------ administration

    def add_user(self, name: str, role: str, password: str, *, actor: str) -> int:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        self.passwords.check(password, name=name)
        return self.store.create(name, role, self.passwords.hash(password),
                                 Audit(actor, "cli", "user_add", name, "done",
                                       after={"role": role}))

    def set_password(self, name: str, password: str, *, actor: str) -> None:
        self.passwords.check(password, name=name)
        if self.store.user(name) is None:
            raise UnknownUserError(f"no user {name!r}")
        self.store.set_password(name, self.passwords.hash(password),
                                Audit(actor, "cli", "password_set", name, "done",
                                      detail="every session of the user ended"))

    def set_disabled(self, name: str, disabled: bool, *, actor: str) -> None:
        self.store.set_disabled(name, disabled, Audit(
            actor, "cli", "user_disable" if disabled else "user_enable", name, "done",
            detail="every session of the user ended" if disabled else ""))

    def unlock(self, name: str, *, actor: str) -> None:
        self.store.unlock(name, Audit(actor, "cli", "user_unlock", name, "done"))
