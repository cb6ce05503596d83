"""Live state: telemetry → one interval's core measurements, hand-computed small cases for
both count semantics, lost and reordered messages, faults, stale and mismatched telemetry,
edge state ordering and controller offline events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from controlroom.timing import (
    DetectorSpec,
    IntersectionSpec,
    MovementSpec,
    PhaseSpec,
    build_structure,
)
from controlroom.traffic.live import LiveState
from edge import contract as c

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def state(cumulative: bool = False, detectors: int = 2) -> LiveState:
    spec = IntersectionSpec(phases=[PhaseSpec([0]), PhaseSpec([1])],
                            movements=[MovementSpec(3.2), MovementSpec(3.2)],
                            detectors=[DetectorSpec(d % 2) for d in range(detectors)])
    return LiveState(build_structure([spec, spec]), ("A", "B"), (2, 2), (detectors, detectors),
                     cumulative=cumulative, message_period_s=1.0)


seq = iter(range(1, 10**6))


def tel(iid: str, t_s: float, counts: list[int], fault: list[bool] | None = None, edge: str = "e1",
        mode: str = "central") -> c.TrafficTelemetry:
    return c.TrafficTelemetry(ts=T0 + timedelta(seconds=t_s), edge_id=edge, epoch=1, seq=next(seq),
                              intersection_id=iid, mode=mode, plan=1, signal=["G", "R"],
                              det_count=counts, det_occupancy_pct=[10.0] * len(counts),
                              det_fault=fault or [False] * len(counts))


def test_interval_counts_add_up_and_lost_messages_are_time_not_seen() -> None:
    live = state()
    for k, counts in enumerate([[1, 0], [2, 1], [0, 1], [1, 0]]):
        live.telemetry(tel("A", k, counts), received_at=100.0 + k)
    # B: messages at 0, 1, then 4 (two lost): 1 + 1 + 1 s covered of 4
    for t_s, counts in [(0, [1, 1]), (1, [1, 1]), (4, [2, 2])]:
        live.telemetry(tel("B", t_s, counts), received_at=100.0 + t_s)
    out = live.take_interval(4.0, now=104.0, stale_after_s=5.0)
    m = out.measurements
    assert list(out.covered_s) == [4.0, 3.0]
    np.testing.assert_allclose(m.count[0], [4, 2])
    np.testing.assert_allclose(m.count[1], np.array([4, 4]) * 4 / 3)  # scaled to the interval
    assert m.valid.all() and m.interval_s == 4.0
    np.testing.assert_allclose(m.occupancy, 0.1)
    assert not m.queue_veh.any()
    # The accumulators start over.
    again = live.take_interval(4.0, now=104.5, stale_after_s=5.0)
    assert not again.measurements.count.any() and not again.measurements.valid.any()


def test_cumulative_counters_wrap_and_resets_are_not_traffic() -> None:
    live = state(cumulative=True)
    live.telemetry(tel("A", 0, [65_530, 100]), 0.0)  # baseline only
    live.telemetry(tel("A", 4, [4, 103]), 4.0)  # 10 across the wrap, 3; messages lost between
    live.telemetry(tel("A", 5, [5, 104]), 5.0)
    out = live.take_interval(5.0, now=5.0, stale_after_s=5.0)
    np.testing.assert_allclose(out.measurements.count[0], [11, 4])
    assert out.covered_s[0] == 5.0 and out.valid[0].all()

    live.telemetry(tel("A", 6, [6, 9_000]), 6.0)  # detector 1 jumped: a power cycle, not cars
    live.telemetry(tel("A", 7, [7, 9_001]), 7.0)
    out = live.take_interval(2.0, now=7.0, stale_after_s=5.0)
    assert list(out.valid[0]) == [True, False]
    np.testing.assert_allclose(out.measurements.count[0], [2, 1])


def test_faults_stale_and_mismatched_telemetry_are_not_valid() -> None:
    live = state()
    live.telemetry(tel("A", 0, [1, 1], fault=[False, True]), 0.0)
    live.telemetry(tel("A", 1, [1, 1]), 1.0)  # the fault counts for the whole interval
    live.telemetry(tel("B", 0, [1, 1, 1]), 1.0)  # three detectors, the layout has two
    out = live.take_interval(2.0, now=1.5, stale_after_s=5.0)
    assert list(out.valid[0]) == [True, False] and not out.valid[1].any()
    assert "3 detectors" in live.intersections[1].mismatch
    live.telemetry(tel("A", 2, [1, 1]), 2.0)
    live.telemetry(tel("A", 3, [1, 1]), 3.0)
    stale = live.take_interval(2.0, now=20.0, stale_after_s=5.0)
    assert not stale.valid.any()


def test_old_and_reordered_messages_change_nothing() -> None:
    live = state()
    live.telemetry(tel("A", 5, [1, 1], mode="central"), 0.0)
    live.telemetry(tel("A", 4, [9, 9], mode="flash"), 0.1)
    live.telemetry(tel("Z", 6, [9, 9]), 0.1)  # not in the layout
    assert live.intersections[0].mode is c.UnitMode.CENTRAL and live.unknown == 1
    out = live.take_interval(1.0, now=0.2, stale_after_s=5.0)
    np.testing.assert_allclose(out.measurements.count[0], [1, 1])


def test_replayed_telemetry_is_history_not_live() -> None:
    live = state()
    live.telemetry(tel("A", 0, [5, 5], mode="flash"), 0.0, wall=T0 + timedelta(seconds=120))
    assert live.intersections[0].mode is None and live.replayed == 1
    live.telemetry(tel("A", 100, [1, 1]), 0.0, wall=T0 + timedelta(seconds=101))
    assert live.intersections[0].mode is c.UnitMode.CENTRAL


def test_edge_state_is_ordered_and_offline_wins() -> None:
    live = state()

    def edge(status: str, epoch: int, conn: int) -> c.EdgeState:
        return c.EdgeState(ts=T0, edge_id="e1", epoch=epoch, seq=next(seq), status=status, conn=conn)

    assert live.edge_online("e1") is None
    live.edge_state(edge("online", 2, 1))
    live.edge_state(edge("offline", 1, 5))  # a late will of the previous run
    assert live.edge_online("e1") is True
    live.edge_state(edge("offline", 2, 1))  # the will of this connection
    assert live.edge_online("e1") is False
    live.edge_state(edge("online", 2, 1))  # a duplicate birth does not undo it
    assert live.edge_online("e1") is False
    live.edge_state(edge("online", 2, 2))
    assert live.edge_online("e1") is True


@pytest.mark.parametrize("back", ["event", "telemetry"])
def test_controller_offline_until_it_answers_again(back: str) -> None:
    live = state()
    live.telemetry(tel("A", 0, [0, 0]), 0.0)
    live.event(c.TrafficEvent(ts=T0 + timedelta(seconds=1), edge_id="e1", epoch=1, seq=next(seq),
                              intersection_id="A", kind="device_offline", detail="no Modbus answer"))
    assert live.intersections[0].controller_offline_detail == "no Modbus answer"
    assert live.intersections[0].controller_offline_since is not None
    if back == "event":
        live.event(c.TrafficEvent(ts=T0 + timedelta(seconds=2), edge_id="e1", epoch=1, seq=next(seq),
                                  intersection_id="A", kind="device_online"))
    else:
        live.telemetry(tel("A", 2, [0, 0]), 2.0)
    assert live.intersections[0].controller_offline_since is None
