"""Log-in, sessions and CSRF against a real PostgreSQL, through the API (TestClient): argon2id
hashes (re-hashed when the parameters change), one answer for every refused log-in, lock-out
and unlock, idle and absolute expiry, log-out and password change ending sessions, cookie
flags, and — on endpoints that change something — unauthenticated (401), wrong role (403),
missing CSRF token (403) and malformed input (422) refused with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from controlroom.attendance.payroll import Payroll
from controlroom.attendance.payroll_store import PayrollStore
from controlroom.attendance.rules import load_rules
from controlroom.auth.passwords import Passwords, WeakPasswordError
from controlroom.auth.service import Authenticator, passwords_for
from controlroom.auth.store import DuplicateUserError, UserStore
from controlroom.settings import ApiKey, AuthSettings
from controlroom.storage.migrate import migrate
from controlroom.storage.store import Store, open_pool
from controlroom.traffic.access import KeyRing
from controlroom.web.api import create_api


@pytest.fixture
def pg_server(embedded_pg_server: str) -> str:
    """The embedded server only: nothing here depends on which PostgreSQL it is."""
    return embedded_pg_server


# Cheap argon2 parameters: the tests check behaviour, not cost.
CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}
PASSWORD = "pintu-merah-2026"
KEY = "kunci-supervisor-0123456789"
USERS = {"budi": "operator", "rina": "bkpsdm", "tono": "technician", "sari": "supervisor"}


@dataclass
class World:
    app: FastAPI
    auth: Authenticator
    url: str

    def client(self, name: str | None = None, password: str = PASSWORD) -> TestClient:
        """A browser: logged in as `name` (its CSRF token in .csrf), or anonymous."""
        client = TestClient(self.app)
        client.csrf = ""  # type: ignore[attr-defined]
        if name is not None:
            got = client.post("/api/auth/login", json={"name": name, "password": password})
            assert got.status_code == 200, got.text
            client.csrf = got.json()["csrf_token"]  # type: ignore[attr-defined]
        return client

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def audit(self) -> list[tuple]:
        return self.rows("SELECT user_name, action, target, outcome, detail FROM audit_log "
                         "ORDER BY id")


def make_world(pg_url: str, **settings: Any) -> Iterator[World]:
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    auth = Authenticator(UserStore(pool), AuthSettings(**{**CHEAP, **settings}))
    for name, role in USERS.items():
        auth.add_user(name, role, PASSWORD, actor="test")
    payroll = Payroll(PayrollStore(pool), load_rules())
    app = create_api(Store(pool), dict, city="Kota Uji", timezone="Asia/Jakarta",
                     stale_after_s=5, keys=KeyRing([ApiKey(user="ops", role="supervisor",
                                                           key=KEY)]),
                     payroll=payroll, auth=auth)
    yield World(app, auth, pg_url)
    pool.close()


@pytest.fixture
def world(pg_url: str) -> Iterator[World]:
    yield from make_world(pg_url, max_failed_logins=3)


# --------------------------------------------------------------------------- hashing


def test_passwords_are_argon2id_and_the_policy_names_the_rule() -> None:
    p = Passwords(time_cost=1, memory_kib=64, parallelism=1)
    stored = p.hash(PASSWORD)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert p.verify(stored, PASSWORD) and not p.verify(stored, PASSWORD + "x")
    assert not p.verify("not-a-hash", PASSWORD) and p.needs_rehash("not-a-hash")
    assert not p.needs_rehash(stored)
    assert Passwords(time_cost=2, memory_kib=64, parallelism=1).needs_rehash(stored)
    for weak, rule in (("short-pw1", "10 characters"), ("aaaaabbbbbbb", "4 different"),
                       ("budi-2026-xyz", "user name"), ("x" * 2000, "at most")):
        with pytest.raises(WeakPasswordError, match=rule):
            p.check(weak, name="budi")
    p.check(PASSWORD, name="budi")


def test_a_login_rehashes_when_the_parameters_change(world: World) -> None:
    stronger = passwords_for(AuthSettings(**{**CHEAP, "argon2_time_cost": 2}))
    auth = Authenticator(world.auth.store, world.auth.settings, stronger)
    [(before,)] = world.rows("SELECT password_hash FROM app_user WHERE name = 'budi'")
    assert "t=1" in before
    auth.login("budi", PASSWORD)
    [(after,)] = world.rows("SELECT password_hash FROM app_user WHERE name = 'budi'")
    assert "t=2" in after and stronger.verify(after, PASSWORD)
    assert world.audit()[-1][4].endswith("password hash upgraded")


# --------------------------------------------------------------------------- log-in


def test_login_sets_a_strict_httponly_cookie_and_me_answers(world: World) -> None:
    client = world.client()
    got = client.post("/api/auth/login", json={"name": "budi", "password": PASSWORD},
                      headers={"User-Agent": "pytest-browser"})
    assert got.status_code == 200
    body = got.json()
    assert body["user"] == "budi" and body["role"] == "operator" and len(body["csrf_token"]) > 30
    cookie = got.headers["set-cookie"]
    assert cookie.startswith("kota_session=")
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags
    assert any(f.startswith("max-age=") for f in flags)
    me = client.get("/api/auth/me").json()
    assert me == {"user": "budi", "role": "operator", "via": "session",
                  "csrf_token": body["csrf_token"], "expires_at": me["expires_at"]}
    # only the token's hash is stored, with where the log-in came from
    token = client.cookies["kota_session"]
    [(sid, ua)] = world.rows("SELECT id, user_agent FROM app_session")
    assert len(sid) == 32 and token.encode() not in sid and ua == "pytest-browser"
    assert client.get("/api/auth/me", headers={"X-API-Key": KEY}).json() == {
        "user": "ops", "role": "supervisor", "via": "api_key"}


def test_secure_cookie_when_configured(pg_url: str) -> None:
    for w in make_world(pg_url, cookie_secure=True, cookie_name="kp"):
        got = TestClient(w.app).post("/api/auth/login", json={"name": "budi", "password": PASSWORD})
        assert got.headers["set-cookie"].startswith("kp=") and "Secure" in got.headers["set-cookie"]


def test_every_refusal_has_one_answer_and_lockout_until_unlocked(world: World) -> None:
    client = world.client()

    def login(name: str, password: str) -> Any:
        return client.post("/api/auth/login", json={"name": name, "password": password})

    answers = {login("budi", "salah-sekali-1").json()["detail"],
               login("nobody", "salah-sekali-1").json()["detail"]}
    assert len(answers) == 1
    (answer,) = answers
    assert "3 failed log-ins within 15 min lock an account for 15 min" in answer
    login("budi", "salah-sekali-2")
    third = login("budi", "salah-sekali-3")  # the third within the window locks
    assert third.status_code == 401 and third.json()["detail"] == answer
    locked = login("budi", PASSWORD)  # the right password, but locked: the same answer
    assert locked.status_code == 401 and locked.json()["detail"] == answer
    [(until,)] = world.rows("SELECT locked_until IS NOT NULL FROM app_user WHERE name = 'budi'")
    assert until
    world.auth.set_disabled("tono", True, actor="admin")
    assert login("tono", PASSWORD).json()["detail"] == answer
    assert "kota_session" not in client.cookies

    rows = world.audit()
    logins = [(r[0], r[1], r[3], r[4]) for r in rows if r[1] in ("login", "lockout")]
    assert logins[:2] == [("budi", "login", "denied", "wrong password"),
                          ("nobody", "login", "denied", "unknown user")]
    assert [r[1] for r in logins[2:5]] == ["login", "login", "lockout"]
    assert logins[5][3].startswith("locked until") and logins[6][3] == "disabled"
    assert not any(PASSWORD in str(r) or "salah" in str(r) for r in rows)  # never a password

    world.auth.unlock("budi", actor="admin")
    assert login("budi", PASSWORD).status_code == 200
    assert world.rows("SELECT failed_logins, locked_until FROM app_user WHERE name = 'budi'") \
        == [(0, None)]


def test_failures_outside_the_window_do_not_add_up(world: World) -> None:
    client = world.client()
    for _ in range(2):
        client.post("/api/auth/login", json={"name": "budi", "password": "salah-sekali-1"})
    world.rows("UPDATE app_user SET first_failed_at = now() - interval '16 minutes' "
               "RETURNING 1")
    client.post("/api/auth/login", json={"name": "budi", "password": "salah-sekali-1"})
    assert world.rows("SELECT failed_logins, locked_until FROM app_user WHERE name = 'budi'") \
        == [(1, None)]


def test_malformed_login_is_refused_unread(world: World) -> None:
    client = world.client()
    for body in ({"name": "budi"}, {"password": PASSWORD}, {"name": "", "password": PASSWORD},
                 {"name": "b" * 65, "password": PASSWORD}, ["budi", PASSWORD],
                 {"name": "budi", "password": PASSWORD, "role": "admin"},
                 {"name": ["budi"], "password": PASSWORD},
                 {"name": "budi", "password": "p" * 1025}):
        got = client.post("/api/auth/login", json=body)
        assert got.status_code == 422 and "set-cookie" not in got.headers, body
    form = client.post("/api/auth/login", content=b"name=budi&password=x",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 422
    assert world.rows("SELECT count(*) FROM app_session") == [(0,)]
    assert world.rows("SELECT count(*) FROM audit_log WHERE action = 'login'") == [(0,)]


# --------------------------------------------------------------------------- sessions


def test_sessions_expire_idle_and_absolutely(world: World) -> None:
    idle, absolute = world.client("budi"), world.client("sari")
    assert idle.get("/api/auth/me").status_code == 200
    world.rows("UPDATE app_session s SET last_seen_at = now() - interval '31 minutes' "
               "FROM app_user u WHERE u.id = s.user_id AND u.name = 'budi' RETURNING 1")
    assert idle.get("/api/auth/me").status_code == 401
    assert absolute.get("/api/audit").status_code == 200
    world.rows("UPDATE app_session s SET expires_at = now() - interval '1 second' "
               "FROM app_user u WHERE u.id = s.user_id AND u.name = 'sari' RETURNING 1")
    assert absolute.get("/api/audit").status_code == 401


def test_logout_revokes_the_session_and_needs_csrf(world: World) -> None:
    client = world.client("budi")
    token = client.cookies["kota_session"]
    assert client.post("/api/auth/logout").status_code == 403  # no CSRF token: still logged in
    assert client.get("/api/auth/me").status_code == 200
    out = client.post("/api/auth/logout", headers={"X-CSRF-Token": client.csrf})
    assert out.status_code == 200 and 'kota_session=""' in out.headers["set-cookie"]
    replay = world.client()
    replay.cookies.set("kota_session", token)
    assert replay.get("/api/auth/me").status_code == 401
    assert world.rows("SELECT revoked FROM app_session") == [(True,)]
    assert [r[:4] for r in world.audit()[-1:]] == [("budi", "logout", "budi", "done")]
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": client.csrf}).status_code == 401


def test_a_disabled_user_loses_their_sessions(world: World) -> None:
    client = world.client("sari")
    world.auth.set_disabled("sari", True, actor="admin")
    assert client.get("/api/audit").status_code == 401
    world.auth.set_disabled("sari", False, actor="admin")
    assert client.get("/api/audit").status_code == 401  # revoked, not just hidden
    assert world.client("sari").get("/api/audit").status_code == 200


def test_password_change_needs_csrf_and_the_current_password(world: World) -> None:
    phone, laptop = world.client("budi"), world.client("budi")
    new = "jalan-sudirman-77"
    body = {"current_password": PASSWORD, "new_password": new}
    assert phone.post("/api/auth/password", json=body).status_code == 403  # no CSRF
    assert world.auth.store.user("budi").password_changed_at == \
        world.auth.store.user("budi").created_at  # nothing changed
    h = {"X-CSRF-Token": phone.csrf}
    wrong = phone.post("/api/auth/password", json={**body, "current_password": "bukan-ini-123"},
                       headers=h)
    assert wrong.status_code == 403
    assert phone.post("/api/auth/password", json={**body, "new_password": "short"},
                      headers=h).status_code == 422
    assert phone.post("/api/auth/password", json={**body, "extra": 1}, headers=h).status_code == 422
    keyed = phone.post("/api/auth/password", json=body, headers={"X-API-Key": KEY})
    assert keyed.status_code == 400
    assert phone.post("/api/auth/password", json=body, headers=h).status_code == 200
    assert phone.get("/api/auth/me").status_code == 200  # this session stays
    assert laptop.get("/api/auth/me").status_code == 401  # the others end
    assert world.client("budi", new).get("/api/auth/me").status_code == 200
    actions = [(r[1], r[3], r[4]) for r in world.audit() if r[1] == "password_change"]
    assert actions == [("password_change", "denied", "current password wrong"),
                       ("password_change", "done", "other sessions ended")]


# --------------------------------------------------------------------------- protected endpoints


def test_cookie_changes_need_the_csrf_token_and_change_nothing_without(world: World) -> None:
    clerk, operator = world.client("rina"), world.client("budi")
    recompute = {"month": "2026-11", "reason": "test"}
    refused = clerk.post("/api/attendance/recompute", json=recompute)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    wrong = clerk.post("/api/attendance/recompute", json=recompute,
                       headers={"X-CSRF-Token": operator.csrf})  # another session's token
    assert wrong.status_code == 403
    assert world.rows("SELECT count(*) FROM attendance_audit") == [(0,)]
    # the override endpoint: refused before it learns that traffic control is off (503)
    assert operator.post("/api/intersections/A/override",
                         json={"action": "hold"}).status_code == 403
    assert operator.post("/api/intersections/A/override", json={"action": "hold"},
                         headers={"X-CSRF-Token": operator.csrf}).status_code == 503
    # reads need no token; a wrong role is still a wrong role
    assert clerk.get("/api/attendance/recap", params={"month": "2026-11"}).status_code == 200
    done = clerk.post("/api/attendance/recompute", json=recompute,
                      headers={"X-CSRF-Token": clerk.csrf})
    assert done.status_code == 200, done.text


def test_roles_hold_for_sessions_as_for_keys(world: World) -> None:
    tech, operator, anon = world.client("tono"), world.client("budi"), world.client()
    hold = {"action": "hold"}
    assert anon.post("/api/intersections/A/override", json=hold).status_code == 401
    assert anon.get("/api/audit").status_code == 401
    refused = tech.post("/api/intersections/A/override", json=hold,
                        headers={"X-CSRF-Token": tech.csrf})
    assert refused.status_code == 403 and "technician" in refused.json()["detail"]
    assert operator.get("/api/audit").status_code == 403
    clerk_only = operator.post("/api/attendance/recompute", json={"month": "2026-11", "reason": "x"},
                               headers={"X-CSRF-Token": operator.csrf})
    assert clerk_only.status_code == 403
    # malformed input after authentication: 422, nothing stored
    bad = operator.post("/api/intersections/A/override", json={"action": "dance"},
                        headers={"X-CSRF-Token": operator.csrf})
    assert bad.status_code == 422
    assert world.rows("SELECT count(*) FROM traffic_override") == [(0,)]
    assert [r[:4] for r in world.audit() if r[3] == "denied"] == [
        ("tono", "override", "A", "denied")]
    # a forged or stale cookie is nobody; a key wins over any cookie
    anon.cookies.set("kota_session", "forged-token")
    assert anon.get("/api/audit").status_code == 401
    assert operator.get("/api/audit", headers={"X-API-Key": KEY}).status_code == 200
    assert operator.get("/api/audit", headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401


def test_users_are_unique_and_roles_known(world: World) -> None:
    with pytest.raises(DuplicateUserError):
        world.auth.add_user("budi", "admin", PASSWORD, actor="test")
    with pytest.raises(ValueError, match="role must be one of"):
        world.auth.add_user("joko", "viewer", PASSWORD, actor="test")
    with pytest.raises(WeakPasswordError):
        world.auth.add_user("joko", "admin", "pendek", actor="test")
    assert [u.name for u in world.auth.store.users()] == sorted(USERS)
