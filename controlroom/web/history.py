"""An intersection's recent past for its dashboard page: flow per detector and signal wait per
phase over the last minutes, in time buckets, from the stored telemetry.

Reads `Store.traffic_history` only (the buckets are computed in SQL); it turns the bucket sums
into rates and fills the buckets without data with null, so a chart shows a gap where the
intersection was silent rather than a drop to zero. Any logged-in role (or API key) may read it.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from controlroom.storage.store import Store
from controlroom.traffic.access import Operator
from controlroom.web.keys import Gate

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # the buckets' origin (Store.traffic_history)
MAX_BUCKETS = 1440
# A bucket whose samples cover less than this share of it gives no rate (too little seen).
MIN_COVERAGE = 0.25
# A detector belongs to the phase during whose green it counted at least this share of its
# vehicles, and at least this many (stop-line loops count while their phase is green).
SERVED_SHARE = 0.6
SERVED_MIN_VEH = 5

DEFINITIONS = {
    "flow_veh_h": "vehicles counted by the detector in the bucket, per hour of telemetry seen "
                  "(samples x period, at most the bucket)",
    "wait_s": "mean signal wait of a vehicle arriving evenly over the bucket on the phase: the "
              "time from its arrival during red or yellow to the phase's next green (uniform "
              "D/D/1 delay without the queue discharge: a lower bound)",
    "wait_mean_s": "wait_s averaged over the phases",
    "green_pct": "share of the bucket's samples the phase showed green",
    "phase": "the phase during whose green the detector counted most of its vehicles in the "
             "window (at least 60 % and 5 vehicles), null when unclear",
}


def history_router(store: Store, gate: Gate) -> APIRouter:
    router = APIRouter(tags=["traffic"])
    reader = gate.reader("traffic history")

    @router.get("/api/intersections/{intersection_id}/history",
                summary="The last minutes of one intersection: flow per detector (veh/h) and "
                "signal wait per phase (s) in time buckets (any role)")
    def get_history(intersection_id: str, operator: Annotated[Operator, Depends(reader)],
                    minutes: Annotated[int, Query(ge=1, le=1440)] = 60,
                    bucket_s: Annotated[int, Query(ge=10, le=3600)] = 60) -> dict[str, Any]:
        if minutes * 60 // bucket_s > MAX_BUCKETS:
            raise HTTPException(422, f"{minutes} min in {bucket_s} s buckets is over "
                                f"{MAX_BUCKETS} buckets: choose larger buckets")
        until = datetime.now(UTC)
        first = _bucket_start(until - timedelta(minutes=minutes), bucket_s)
        raw = store.traffic_history(intersection_id, first, until, bucket_s)
        if raw is None:
            raise HTTPException(404, f"no telemetry stored for intersection {intersection_id!r}")
        return shape(raw, first, until, bucket_s) | {"intersection_id": intersection_id,
                                                      "minutes": minutes}

    return router


def _bucket_start(at: datetime, bucket_s: int) -> datetime:
    return at - timedelta(seconds=(at - EPOCH).total_seconds() % bucket_s)


def shape(raw: dict[str, Any], first: datetime, until: datetime, bucket_s: int) -> dict[str, Any]:
    """Bucket rows → one series per detector and per phase over every bucket (null: no data)."""
    starts: list[datetime] = []
    at = first
    while at < until:
        starts.append(at)
        at += timedelta(seconds=bucket_s)
    slot = {s: k for k, s in enumerate(starts)}
    n = len(starts)
    period_s = raw["period_s"]
    step_s = period_s or 1.0

    def seen_s(k: int, samples: int) -> float:
        # The bucket's time seen: its samples' periods, at most the bucket (the last one only
        # up to now).
        end = min(starts[k] + timedelta(seconds=bucket_s), until)
        return min(samples * step_s, (end - starts[k]).total_seconds())

    detectors: dict[int, dict[str, list[Any]]] = {}
    for row in raw["detectors"]:
        k = slot.get(row["bucket"])
        if k is None:
            continue
        d = detectors.setdefault(row["detector"], {
            "flow_veh_h": [None] * n, "vehicles": [None] * n, "occupancy_pct": [None] * n,
            "fault": [None] * n})
        seen = seen_s(k, row["samples"])
        d["vehicles"][k] = row["vehicles"]
        d["fault"][k] = row["fault"]
        d["occupancy_pct"][k] = round(row["occupancy_pct"], 1)
        if seen >= MIN_COVERAGE * bucket_s or k == n - 1 and seen > 0:
            d["flow_veh_h"][k] = round(row["vehicles"] * 3600.0 / seen, 1)

    phases: dict[int, dict[str, list[Any]]] = {}
    for row in raw["phases"]:
        k = slot.get(row["bucket"])
        if k is None:
            continue
        p = phases.setdefault(row["phase"], {"wait_s": [None] * n, "green_pct": [None] * n})
        p["wait_s"][k] = round(row["wait_s"] / row["samples"], 1)
        p["green_pct"][k] = round(100.0 * row["green"] / row["samples"], 1)

    by_detector: dict[int, dict[int, int]] = {}
    for row in raw["served"]:
        by_detector.setdefault(row["detector"], {})[row["phase"]] = row["vehicles"]
    phase_of: dict[int, int] = {}
    for d, counted in by_detector.items():
        phase, most = max(counted.items(), key=lambda item: item[1])
        if most >= SERVED_MIN_VEH and most >= SERVED_SHARE * sum(counted.values()):
            phase_of[d] = phase

    total: list[float | None] = [None] * n
    wait_mean: list[float | None] = [None] * n
    for k in range(n):
        flows = [d["flow_veh_h"][k] for d in detectors.values() if d["flow_veh_h"][k] is not None]
        total[k] = round(sum(flows), 1) if flows else None
        waits = [p["wait_s"][k] for p in phases.values() if p["wait_s"][k] is not None]
        wait_mean[k] = round(sum(waits) / len(waits), 1) if waits else None
    return {
        "from": first.isoformat(), "to": until.isoformat(), "bucket_s": bucket_s,
        "period_s": round(period_s, 3) if period_s else None,
        "buckets": [s.isoformat() for s in starts],
        "detectors": [{"detector": d, "phase": phase_of.get(d), **series}
                      for d, series in sorted(detectors.items())],
        "flow_total_veh_h": total,
        "phases": [{"phase": p, **series} for p, series in sorted(phases.items())],
        "wait_mean_s": wait_mean,
        "definitions": DEFINITIONS,
    }
