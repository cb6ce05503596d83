"""GET /api/intersections/{id}/history against a real PostgreSQL (embedded and system): flow
per detector and signal wait per phase in time buckets, worked out by hand for a fixed-time
signal; gaps stay gaps, redelivered messages count once; log-in and bad queries refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from controlroom.settings import ApiKey
from controlroom.storage.migrate import migrate
from controlroom.storage.store import Batch, Store, open_pool
from controlroom.traffic.access import KeyRing
from controlroom.web.api import create_api
from edge import contract as c

KEY = "technician-key-0123456789"
CYCLE_S = 60
PHASE_1 = "G" * 30 + "Y" * 3 + "R" * 27  # per second of the cycle
PHASE_2 = "R" * 33 + "G" * 24 + "Y" * 3


def signal_at(second: int) -> list[str]:
    k = second % CYCLE_S
    return [PHASE_1[k], PHASE_2[k]]


def telemetry(start: datetime, seconds: range, iid: str = "J9", seq0: int = 0) -> list[c.TrafficTelemetry]:
    """A fixed-time intersection at 1 Hz: detector 1 counts one vehicle a second while phase 1
    is green, detector 2 while phase 2 is green (stop-line loops)."""
    out = []
    for s in seconds:
        lamps = signal_at(s)
        out.append(c.TrafficTelemetry(
            ts=start + timedelta(seconds=s), edge_id="e1", epoch=1, seq=seq0 + s, intersection_id=iid,
            mode="central", plan=1, cycle_timer_s=float(s % CYCLE_S), signal=lamps,
            det_count=[int(lamps[0] == "G"), int(lamps[1] == "G")],
            det_occupancy_pct=[20.0 if lamps[0] == "G" else 0.0, 10.0], det_fault=[False, False]))
    return out


@pytest.fixture
def store(pg_url: str):
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 2)
    yield Store(pool)
    pool.close()


@pytest.fixture
def client(store: Store):
    app = create_api(store, dict, city="Kota Contoh", timezone="Asia/Jakarta",
                     stale_after_s=5,
                     keys=KeyRing([ApiKey(user="tari", role="technician", key=KEY)]))
    with TestClient(app) as http:
        yield http


def bucket_start(at: datetime) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return at - timedelta(seconds=(at - epoch).total_seconds() % 60)


def history(client: TestClient, iid: str = "J9", **params) -> dict:
    r = client.get(f"/api/intersections/{iid}/history", params=params, headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    return r.json()


def test_flow_and_signal_wait_per_bucket_as_worked_out_by_hand(store: Store, client: TestClient) -> None:
    base = bucket_start(datetime.now(UTC)) - timedelta(minutes=6)
    messages = telemetry(base, range(240))  # four whole cycles = four whole buckets
    store.write(Batch(telemetry=messages))
    store.write(Batch(telemetry=messages[60:120]))  # QoS redeliveries of the second minute

    body = history(client, minutes=10)
    assert body["bucket_s"] == 60 and body["period_s"] == 1.0
    index = {datetime.fromisoformat(b): k for k, b in enumerate(body["buckets"])}
    full = [index[base + timedelta(minutes=m)] for m in range(3)]
    last = index[base + timedelta(minutes=3)]
    det1, det2 = body["detectors"]
    # 30 vehicles in the 60 s of a bucket: 1800 veh/h; phase 2's 24 s of green: 1440 veh/h.
    assert [det1["flow_veh_h"][k] for k in full] == [1800.0] * 3
    assert [det2["flow_veh_h"][k] for k in full] == [1440.0] * 3
    assert [body["flow_total_veh_h"][k] for k in full] == [3240.0] * 3
    assert det1["vehicles"][full[1]] == 30  # the redelivered minute counts once
    assert det1["occupancy_pct"][full[0]] == 10.0 and det2["occupancy_pct"][full[0]] == 10.0
    # Each detector counted only during one phase's green: that is its phase.
    assert (det1["phase"], det2["phase"]) == (1, 2)

    ph1, ph2 = body["phases"]
    # Phase 1 waits (yellow + red) over seconds 30..59 of each minute, one run ending at 59:
    # a vehicle arriving at second s waits 60 - s, so the minute sums 1 + … + 30 = 465 s.
    assert [ph1["wait_s"][k] for k in full] == [round(465 / 60, 1)] * 3
    # Phase 2 waits 0..32 (a run ending at 32: 33 + … + 1 = 561) and 57..59, whose run goes on
    # to second 32 of the next minute (36 + 35 + 34 = 105) — except in the last minute stored,
    # where it ends with the data (3 + 2 + 1).
    assert [ph2["wait_s"][k] for k in full] == [round(666 / 60, 1)] * 3
    assert ph2["wait_s"][last] == round((561 + 6) / 60, 1)
    assert ph1["green_pct"][full[0]] == 50.0 and ph2["green_pct"][full[0]] == 40.0
    assert body["wait_mean_s"][full[0]] == round((7.8 + 11.1) / 2, 1)
    # Before and after the data: no value rather than zero.
    assert det1["flow_veh_h"][full[0] - 1] is None and det1["flow_veh_h"][last + 1] is None
    assert body["wait_mean_s"][last + 1] is None
    assert set(body["definitions"]) >= {"flow_veh_h", "wait_s", "phase"}


def test_a_silent_stretch_is_a_gap_and_ends_the_wait(store: Store, client: TestClient) -> None:
    base = bucket_start(datetime.now(UTC)) - timedelta(minutes=8)
    # Minute 0 stored, minute 1 silent (edge offline), minute 2 stored again.
    store.write(Batch(telemetry=telemetry(base, range(60)) + telemetry(base, range(120, 180))))
    body = history(client, minutes=10)
    index = {datetime.fromisoformat(b): k for k, b in enumerate(body["buckets"])}
    k0, k1, k2 = (index[base + timedelta(minutes=m)] for m in range(3))
    (det1, _), (_, ph2) = body["detectors"], body["phases"]
    assert det1["flow_veh_h"][k1] is None and ph2["wait_s"][k1] is None
    assert det1["flow_veh_h"][k0] == det1["flow_veh_h"][k2] == 1800.0
    # Phase 2's last yellow before the silence is not bridged into the next red.
    assert ph2["wait_s"][k0] == round((561 + 6) / 60, 1)


def test_a_young_bucket_rates_the_time_seen_and_larger_buckets_add_up(store: Store,
                                                                       client: TestClient) -> None:
    now = datetime.now(UTC)
    start = now - timedelta(minutes=30)
    store.write(Batch(telemetry=telemetry(start, range(1800), iid="J8")))
    body = history(client, "J8", minutes=60, bucket_s=600)
    assert len(body["buckets"]) in (6, 7) and body["bucket_s"] == 600
    flows = [v for v in body["detectors"][0]["flow_veh_h"] if v is not None]
    # Every bucket holds whole cycles of 30 green seconds but the ones cut by the data's edges:
    # half an hour of green → 1800 veh/h wherever a bucket is whole.
    assert 1800.0 in flows
    assert all(0 < v <= 3600 for v in flows)


def test_log_in_bad_queries_and_unknown_intersections_are_refused(store: Store,
                                                                  client: TestClient) -> None:
    store.write(Batch(telemetry=telemetry(datetime.now(UTC) - timedelta(minutes=1), range(10))))
    url = "/api/intersections/J9/history"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401
    for params in ({"minutes": 0}, {"minutes": 1441}, {"minutes": "hour"}, {"bucket_s": 5},
                   {"bucket_s": 3601}, {"minutes": 1440, "bucket_s": 10}):
        r = client.get(url, params=params, headers={"X-API-Key": KEY})
        assert r.status_code == 422, (params, r.text)
    r = client.get("/api/intersections/NOPE/history", headers={"X-API-Key": KEY})
    assert r.status_code == 404 and "NOPE" in r.json()["detail"]
