"""The closed loop across a broker outage: the embedded broker process killed for 60 s while
SUMO, the controllers, two edge agents and the control room run on (processes as in
`test_city_stack`). No event or ack is lost (the edges' outboxes hold them), the control room
reports the telemetry gap (controller_offline alarms opened during the outage, cleared after),
and adaptive control resumes. Embedded broker only: the machine's Mosquitto is shared and is not
ours to stop. About 100 s."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest

from edge.contract import utc_now
from kota.city import CityStack, _http_json
from tests.kota.test_city_stack import (
    all_adaptive_and_central,
    ids,
    running_stack,
    wait_for,
)

pytestmark = pytest.mark.slow

OUTAGE_S = 60.0
EVENT_LINE = re.compile(r"^\S+ \S+ \S+\s+edge\.app: intersection (\S+): (\w+) \(")


@pytest.fixture
def stack(embedded_pg_server: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[CityStack]:
    tag = uuid.uuid4().hex[:6]
    with running_stack(embedded_pg_server, tmp_path_factory.mktemp(f"outage-{tag}"), tag,
                       seed=3, duration_s=2400.0, time_scale=10.0, watchdog_s=60.0,
                       keepalive_s=2) as city_stack:
        yield city_stack


def logged_events(stack: CityStack) -> dict[str, Counter[tuple[str, str]]]:
    """Per edge, the events it logged as it sent them (every event is logged once)."""
    out: dict[str, Counter[tuple[str, str]]] = {}
    for part in stack.edges:
        lines = part.child.output().splitlines()
        out[part.edge_id] = Counter(m.groups() for m in map(EVENT_LINE.match, lines) if m)
    return out


def stored_events(stack: CityStack) -> dict[str, Counter[tuple[str, str]]]:
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT edge_id, intersection_id, kind FROM traffic_event").fetchall()
    out: dict[str, Counter[tuple[str, str]]] = {p.edge_id: Counter() for p in stack.edges}
    for edge_id, iid, kind in rows:
        out.setdefault(edge_id, Counter())[(iid, kind)] += 1
    return out


def command_statuses(stack: CityStack) -> Counter[str]:
    with psycopg.connect(stack.database_url) as conn:
        return Counter(s for (s,) in conn.execute("SELECT status FROM traffic_command"))


def test_a_60_s_broker_outage_loses_no_event_or_ack_and_reports_the_gap(stack: CityStack
                                                                       ) -> None:
    assert stack.broker is not None
    wait_for(lambda: all_adaptive_and_central(stack), 60, "adaptive control everywhere")
    down_at = utc_now()
    stack.broker.kill()
    time.sleep(OUTAGE_S)
    stack.restart_broker()
    up_at = utc_now()
    # While the broker was away the edges stopped feeding the watchdogs: the controllers fell
    # back (fallback and mode-change events, held in the outboxes); now they come back.
    wait_for(lambda: all_adaptive_and_central(stack), 90, "adaptive control again")
    logged = logged_events(stack)
    assert sum(c[(i, "fallback")] for c in logged.values() for i in ids(stack)) >= 2 * len(
        ids(stack)), logged  # expired and fed again, at every intersection
    # No event lost: every event an edge logged is stored, once.
    wait_for(lambda: stored_events(stack) == logged_events(stack) or None, 30,
             "every event each edge sent, stored")
    # No ack lost: every command the control room sent has its final answer.
    def answered() -> Counter[str] | None:
        c = command_statuses(stack)
        return None if c["sent"] or c["accepted"] else c

    statuses = wait_for(answered, 30, "a final ack for every command")
    assert statuses["applied"] > 0 and not statuses["unanswered"], statuses
    # The gap is reported: no telemetry for the outage → controller_offline alarms, cleared.
    alarms = _http_json(f"{stack.api_url}api/alarms?state=all")
    gap = {a["intersection_id"] for a in alarms if a["code"] == "controller_offline"
           and down_at <= datetime.fromisoformat(a["opened_at"]) <= up_at
           and a["cleared_at"] is not None}
    assert gap == set(ids(stack)), alarms
