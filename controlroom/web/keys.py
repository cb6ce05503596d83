"""Who is asking: the one way every protected endpoint authenticates a request.

A request carries either an `X-API-Key` (machines and scripts; `[[controlroom.api_keys]]`) or
the session cookie of a logged-in user. A presented key decides alone (a wrong key is not
rescued by a cookie). A cookie-authenticated request that changes something (POST, PUT, PATCH,
DELETE) must also carry the session's token in `X-CSRF-Token`, or it is refused with 403
before anything runs. Owns the 401 and CSRF answers; role checks stay with the endpoints.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request

from controlroom.auth.service import Authenticator, Session
from controlroom.auth.store import AuthStorageError
from controlroom.traffic.access import KeyRing, Operator

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = {"WWW-Authenticate": 'X-API-Key, Cookie realm="kota"'}


class Gate:
    """API keys and, when the control room has users, sessions: request → Operator."""

    def __init__(self, keyring: KeyRing, auth: Authenticator | None = None) -> None:
        self.keyring = keyring
        self.auth = auth

    @property
    def cookie_name(self) -> str | None:
        return self.auth.settings.cookie_name if self.auth is not None else None

    def session(self, request: Request) -> Session | None:
        """The request's live session (no CSRF check), or None."""
        if self.auth is None:
            return None
        token = request.cookies.get(self.auth.settings.cookie_name)
        if not token:
            return None
        try:
            return self.auth.session(token)
        except AuthStorageError as exc:
            raise HTTPException(503, f"database unavailable: {exc}") from exc

    def identify(self, request: Request) -> Operator | None:
        """Who sent the request, or None; HTTPException 403 for a cookie-authenticated change
        without the session's CSRF token."""
        key = request.headers.get("x-api-key")
        if key:
            return self.keyring.lookup(key)
        session = self.session(request)
        if session is None:
            return None
        self.check_csrf(request, session)
        return Operator(session.user, session.role)

    @staticmethod
    def check_csrf(request: Request, session: Session) -> None:
        """403 for a change (not GET, HEAD, OPTIONS) without the session's X-CSRF-Token."""
        if request.method in SAFE_METHODS:
            return
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise HTTPException(403, "missing or wrong X-CSRF-Token: a change made with the "
                                "session cookie needs the token the log-in returned")

    def require(self, request: Request, why: str = "") -> Operator:
        """The request's operator, or HTTPException 401 saying `why` a log-in is needed."""
        operator = self.identify(request)
        if operator is None:
            reason = f"{why}: " if why else ""
            raise HTTPException(401, f"{reason}log in or send a known X-API-Key",
                                headers=CHALLENGE)
        return operator

    def reader(self, why: str) -> Callable[[Request], Operator]:
        """A FastAPI dependency: who is asking, any role, or 401 saying `why`."""

        def reader(request: Request) -> Operator:
            return self.require(request, why)

        return reader
