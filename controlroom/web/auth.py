"""The log-in part of the control room's API: log in (sets the session cookie), log out, who am
I, change my password.

Goes through `Authenticator` only; it never reads the user tables itself. The cookie is
HttpOnly and SameSite=Strict (Secure when [controlroom.auth] cookie_secure); the CSRF token a
log-in returns must accompany every change made with that cookie (`X-CSRF-Token`), log-out and
password change included.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from controlroom.auth.passwords import MAX_PASSWORD_CHARS, WeakPasswordError
from controlroom.auth.service import Authenticator, LoginRefused, PasswordChangeRefused, Session
from controlroom.web.keys import CHALLENGE, Gate


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


class PasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


def auth_router(auth: Authenticator, gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/api/auth", tags=["log-in"])
    settings = auth.settings

    def own_session(request: Request) -> Session:
        """The request's session, CSRF-checked; API keys have no session nor password."""
        if request.headers.get("x-api-key"):
            raise HTTPException(400, "an X-API-Key has no session or password: log in instead")
        session = gate.session(request)
        if session is None:
            raise HTTPException(401, "not logged in (or the session expired)", headers=CHALLENGE)
        gate.check_csrf(request, session)
        return session

    @router.post("/login", summary="Log in with name and password: sets the session cookie "
                 "and returns the CSRF token every change must send as X-CSRF-Token")
    def post_login(body: LoginRequest, request: Request) -> JSONResponse:
        ip = request.client.host if request.client is not None else ""
        try:
            done = auth.login(body.name, body.password, ip=ip,
                              user_agent=request.headers.get("user-agent", ""))
        except LoginRefused as exc:
            raise HTTPException(401, str(exc)) from exc
        s = done.session
        response = JSONResponse({"user": s.user, "role": s.role, "csrf_token": s.csrf_token,
                                 "expires_at": s.expires_at.isoformat(),
                                 "idle_s": settings.session_idle_s})
        response.set_cookie(settings.cookie_name, done.token, max_age=int(settings.session_max_s),
                            path="/", httponly=True, samesite="strict",
                            secure=settings.cookie_secure)
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.post("/logout", summary="End this session (X-CSRF-Token required)")
    def post_logout(request: Request) -> JSONResponse:
        session = own_session(request)
        auth.logout(session)
        response = JSONResponse({"logged_out": True})
        response.delete_cookie(settings.cookie_name, path="/", httponly=True, samesite="strict",
                               secure=settings.cookie_secure)
        return response

    @router.get("/me", summary="Who is asking: user, role, and for a session its CSRF token "
                "and absolute expiry")
    def get_me(request: Request) -> dict[str, Any]:
        operator = gate.require(request)
        session = None if request.headers.get("x-api-key") else gate.session(request)
        if session is None:
            return {"user": operator.user, "role": operator.role, "via": "api_key"}
        return {"user": session.user, "role": session.role, "via": "session",
                "csrf_token": session.csrf_token, "expires_at": session.expires_at.isoformat()}

    @router.post("/password", summary="Change my password (current one, then the new one; "
                 "X-CSRF-Token required); my other sessions end")
    def post_password(body: PasswordRequest, request: Request) -> dict[str, Any]:
        session = own_session(request)
        try:
            auth.change_password(session, body.current_password, body.new_password)
        except PasswordChangeRefused as exc:
            raise HTTPException(403, str(exc)) from exc
        except WeakPasswordError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"changed": True}

    return router
