"""Every state-changing endpoint of the running demo, read from its own OpenAPI document:
unauthenticated (401), a role that may not (403), a session without its CSRF token (403) and
malformed input (422) are all refused, and nothing a user could rely on changed — overrides,
camera commands, leave, users and sessions, alarm acknowledgements and the audit log's "done"
rows are compared before and after. A new endpoint that is not declared here fails the test:
say who may call it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.dashboard.conftest import ROLES, Demo

ALL = frozenset(ROLES)
OPS = frozenset({"operator", "supervisor", "admin"})
CLERKS = frozenset({"bkpsdm", "admin"})
PUBLIC = {("POST", "/api/auth/login")}

# Who may call each state-changing endpoint, and a body that would be accepted, so that a
# refusal can only come from who is asking. Path parameters get real ids of the demo.
MAY: dict[tuple[str, str], tuple[frozenset[str], dict[str, Any] | None]] = {
    ("POST", "/api/auth/logout"): (ALL, None),
    ("POST", "/api/auth/password"): (ALL, {"current_password": "x" * 12,
                                           "new_password": "kata-sandi-baru-2026"}),
    ("POST", "/api/intersections/{intersection_id}/override"): (
        OPS, {"action": "flash", "duration_s": 30, "reason": "security test"}),
    ("POST", "/api/intersections/{intersection_id}/plan"): (
        OPS, {"plan": 7, "cycle_s": 90, "offset_s": 0, "splits_s": [45, 45],
              "duration_s": 30, "reason": "security test"}),
    ("POST", "/api/intersections/{intersection_id}/release"): (OPS, {"reason": "security test"}),
    ("POST", "/api/cameras/{camera_id}/ptz"): (OPS, {"action": "move", "pan": 0.5,
                                                     "timeout_s": 1, "reason": "security test"}),
    ("POST", "/api/cameras/{camera_id}/snapshot"): (OPS, {"reason": "security test"}),
    ("POST", "/api/attendance/leave"): (CLERKS, {
        "nip": "199001012015011001", "type": "CT", "first_day": "2026-12-01",
        "last_day": "2026-12-02", "doc_ref": "800/123/BKPSDM/2026"}),
    ("POST", "/api/attendance/leave/{leave_id}/revoke"): (CLERKS, {"reason": "security test"}),
    ("POST", "/api/attendance/recompute"): (CLERKS, {"month": "2026-12",
                                                     "reason": "security test"}),
    ("POST", "/api/attendance/simpeg/sync"): (CLERKS, {"reason": "security test"}),
    ("POST", "/api/alarms/{kind}/{alarm_id}/ack"): (OPS, {"comment": "security test"}),
}
PATH_IDS = {"intersection_id": "J1", "camera_id": "cam-J1", "leave_id": "1", "kind": "traffic",
            "alarm_id": "1"}
STATE_CHANGING = ("post", "put", "patch", "delete")


def _snapshot(url: str) -> dict[str, Any]:
    """What a refused request must not have changed."""
    queries = {
        "audit_done": "SELECT id, user_name, action, target FROM audit_log "
                      "WHERE outcome <> 'denied' ORDER BY id",
        "overrides": "SELECT * FROM traffic_override ORDER BY id",
        "camera_commands": "SELECT cmd_id, camera_id, user_name, kind FROM cctv_command "
                           "ORDER BY cmd_id",
        "leave": "SELECT * FROM attendance_leave ORDER BY 1",
        # users' changes (the payroll job's own rounds and audited refusals aside)
        "attendance_audit": "SELECT id, actor, action, subject FROM attendance_audit WHERE "
                            f"action <> 'refused' AND actor IN {tuple(ROLES)} ORDER BY id",
        "users": "SELECT name, role, password_hash, disabled FROM app_user ORDER BY name",
        "sessions": "SELECT id, revoked FROM app_session ORDER BY id",
    }
    out: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        for name, sql in queries.items():
            out[name] = conn.execute(sql).fetchall()
        # Acknowledgements, wherever an alarm table keeps them.
        for table, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_name LIKE '%alarm' AND column_name LIKE 'ack%' ORDER BY 1, 2"):
            out[f"{table}.{column}"] = conn.execute(
                f"SELECT {column} FROM {table} ORDER BY 1").fetchall()
    return out


class Browser:
    """A logged-in user's cookie jar and CSRF token, as the dashboard holds them."""

    def __init__(self, demo: Demo, role: str) -> None:
        self.client = httpx.Client(base_url=demo.base, timeout=15)
        got = self.client.post("/api/auth/login",
                               json={"name": role, "password": demo.users[role]})
        assert got.status_code == 200, got.text
        self.csrf = got.json()["csrf_token"]

    def post(self, path: str, csrf: bool = True, **kw: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        return self.client.post(path, headers=headers, **kw)


@pytest.fixture(scope="module")
def browsers(demo: Demo) -> Iterator[dict[str, Browser]]:
    made = {role: Browser(demo, role) for role in ROLES}
    yield made
    for b in made.values():
        b.client.close()


def _routes(demo: Demo) -> set[tuple[str, str]]:
    spec = httpx.get(demo.base + "/openapi.json", timeout=10).json()
    return {(method.upper(), path) for path, ops in spec["paths"].items()
            for method in ops if method in STATE_CHANGING}


def test_every_state_changing_endpoint_is_declared(demo: Demo) -> None:
    routes = _routes(demo)
    undeclared = routes - set(MAY) - PUBLIC
    assert not undeclared, f"declare who may call {sorted(undeclared)} in MAY"
    assert set(MAY) <= routes, f"gone from the app: {sorted(set(MAY) - routes)}"


@pytest.mark.parametrize("route", sorted(MAY), ids=lambda r: f"{r[0]} {r[1]}")
def test_refusals_change_nothing(route: tuple[str, str], demo: Demo,
                                 browsers: dict[str, Browser]) -> None:
    method, template = route
    allowed, body = MAY[route]
    path = re.sub(r"\{(\w+)\}", lambda m: PATH_IDS[m.group(1)], template)
    kw = {"json": body} if body is not None else {}
    before = _snapshot(demo.database_url)

    anonymous = httpx.post(demo.base + path, timeout=15, **kw)
    assert anonymous.status_code == 401, (path, anonymous.text)

    someone = browsers[sorted(allowed)[0]]
    no_csrf = someone.post(path, csrf=False, **kw)
    assert no_csrf.status_code == 403 and "X-CSRF-Token" in no_csrf.text, (path, no_csrf.text)
    forged = someone.client.post(path, headers={"X-CSRF-Token": "forged-" + someone.csrf[7:]},
                                 **kw)
    assert forged.status_code == 403, (path, forged.text)

    for role in sorted(ALL - allowed):
        refused = browsers[role].post(path, **kw)
        assert refused.status_code == 403, (path, role, refused.text)

    if body is not None:
        for bad in ({"json": {**body, "unexpected_field": 1}}, {"content": b"{not json",
                                                                "headers": {}}):
            headers = {"Content-Type": "application/json", "X-CSRF-Token": someone.csrf}
            got = someone.client.post(path, headers=headers, **{k: v for k, v in bad.items()
                                                               if k != "headers"})
            assert got.status_code == 422, (path, bad, got.text)

    assert _snapshot(demo.database_url) == before, f"a refused {method} {path} changed state"
    # The refused users are still logged in and their sessions intact.
    assert someone.client.get("/api/auth/me").status_code == 200
