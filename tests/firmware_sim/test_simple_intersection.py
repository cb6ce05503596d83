"""The simple simulated intersection: cycle timing, safety invariants, synthetic counts, faults, commands."""

from __future__ import annotations

import pytest

from firmware_sim.simple_intersection import (
    ALL_RED_S,
    YELLOW_S,
    CommandRejected,
    DeviceUnavailable,
    SimpleIntersection,
)

# 2026-11-23 00:00 WIB as Unix time: local hour h is MIDNIGHT_WIB + h * 3600.
MIDNIGHT_WIB = 1_795_366_800.0


class FakeClock:
    def __init__(self, start_s: float = MIDNIGHT_WIB + 7 * 3600) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def device(clock: FakeClock, **kwargs: object) -> SimpleIntersection:
    options: dict = {"phases": 4, "detectors": 4, "cycle_s": 60.0, "seed": 7, "clock": clock}
    options.update(kwargs)
    return SimpleIntersection("simpang-1", **options)


def signals_at(clock: FakeClock, dev: SimpleIntersection, times_s: list[float]) -> list[str]:
    start = clock.now_s
    out = []
    for t in times_s:
        clock.now_s = start + t
        out.append("".join(dev.fetch().signal))
    return out


def test_fixed_time_cycle_runs_green_yellow_all_red_per_phase() -> None:
    clock = FakeClock()
    dev = device(clock)
    # Power-up all-red 2 s, then each phase: green 10 s (15 s split - 3 s yellow - 2 s all-red).
    green_s = 60.0 / 4 - YELLOW_S - ALL_RED_S
    start_s = ALL_RED_S
    got = signals_at(clock, dev, [0.5, start_s + 0.1, start_s + green_s + 0.1, start_s + green_s + YELLOW_S + 0.1,
                                  start_s + 15.1, start_s + 45.1, start_s + 60.1])
    assert got == ["RRRR", "GRRR", "YRRR", "RRRR", "RGRR", "RRRG", "GRRR"]


def test_never_two_phases_off_red_and_the_cycle_timer_wraps() -> None:
    clock = FakeClock()
    dev = device(clock, phases=3, cycle_s=45.0)
    for _ in range(2000):
        clock.advance(0.1)
        snap = dev.fetch()
        assert sum(lamp != "R" for lamp in snap.signal) <= 1
        assert snap.cycle_timer_s is not None and 0 <= snap.cycle_timer_s < 45.0
        assert snap.mode == "local_fixed" and snap.plan is None


def test_counts_repeat_with_the_seed_and_follow_the_morning_peak() -> None:
    def run(seed: int, hour: int) -> list[tuple[int, ...]]:
        clock = FakeClock(MIDNIGHT_WIB + hour * 3600)
        dev = device(clock, seed=seed, peak_veh_per_h=900.0)
        out = []
        for _ in range(20):
            clock.advance(60)
            out.append(dev.fetch().det_count)
        return out

    assert run(7, 7) == run(7, 7)
    assert run(7, 7) != run(8, 7)
    peak = sum(map(sum, run(7, 7)))
    night = sum(map(sum, run(7, 2)))
    # 900 veh/h at the peak: 4 detectors x 20 min = 1200 expected; at 02:00 only 4 % of that.
    assert 1000 < peak < 1400
    assert night < peak / 10


def test_counts_cover_the_interval_since_the_previous_fetch() -> None:
    clock = FakeClock()
    dev = device(clock)
    clock.advance(5)
    assert dev.fetch().interval_s == pytest.approx(5)
    clock.advance(1.5)
    snap = dev.fetch()
    assert snap.interval_s == pytest.approx(1.5)
    assert all(0 <= o <= 100 for o in snap.det_occupancy_pct)


def test_detector_fault_and_offline_injection() -> None:
    clock = FakeClock()
    dev = device(clock, peak_veh_per_h=5000.0)
    dev.set_detector_fault(2, True)
    clock.advance(60)
    snap = dev.fetch()
    assert snap.det_fault == (False, False, True, False)
    assert snap.det_count[2] == 0 and snap.det_occupancy_pct[2] == 0.0
    assert snap.det_count[0] > 0

    dev.set_offline(True)
    with pytest.raises(DeviceUnavailable):
        dev.fetch()
    with pytest.raises(DeviceUnavailable):
        dev.override("flash")
    dev.set_offline(False)
    clock.advance(1)
    assert dev.fetch().interval_s == pytest.approx(1)


@pytest.mark.parametrize(("splits", "cycle", "why"), [
    ((20.0, 20.0, 20.0), 60.0, "3 splits"),
    ((30.0, 20.0, 5.0, 5.0), 60.0, "under"),
    ((20.0, 20.0, 20.0, 20.0), 60.0, "add up"),
])
def test_unsafe_plans_are_rejected(splits: tuple[float, ...], cycle: float, why: str) -> None:
    dev = device(FakeClock())
    with pytest.raises(CommandRejected, match=why):
        dev.apply_plan(3, cycle, 0.0, splits)


def test_a_plan_takes_effect_at_the_next_cycle_start() -> None:
    clock = FakeClock()
    dev = device(clock)
    clock.advance(20)  # phase 2 green
    dev.apply_plan(5, 80.0, 0.0, (35.0, 15.0, 15.0, 15.0))
    assert dev.fetch().plan is None, "not before the safe point"
    clock.now_s = clock.now_s - 20 + ALL_RED_S + 60 + 0.1  # just after the next cycle started
    snap = dev.fetch()
    assert (snap.plan, snap.mode, "".join(snap.signal)) == (5, "central", "GRRR")
    clock.advance(29)  # new green of phase 1 is 30 s
    assert "".join(dev.fetch().signal) == "GRRR"
    clock.advance(1)
    assert "".join(dev.fetch().signal) == "YRRR"


def test_hold_force_flash_and_release() -> None:
    clock = FakeClock()
    dev = device(clock)
    clock.advance(ALL_RED_S + 1)
    dev.override("hold")
    clock.advance(300)
    snap = dev.fetch()
    assert "".join(snap.signal) == "GRRR" and snap.mode == "central" and snap.cycle_timer_s is None

    dev.override("force", 3)  # leaves phase 1 (min green long served), clearance, then phase 3
    clock.advance(YELLOW_S + ALL_RED_S + 0.1)
    assert "".join(dev.fetch().signal) == "RRGR"
    clock.advance(300)
    assert "".join(dev.fetch().signal) == "RRGR"

    dev.override("flash")
    snap = dev.fetch()
    assert snap.signal == ("y",) * 4 and snap.mode == "flash"
    with pytest.raises(CommandRejected):
        dev.override("force", 2)

    dev.override("release")
    assert "".join(dev.fetch().signal) == "RRRR"  # start-up all-red
    clock.advance(ALL_RED_S)
    snap = dev.fetch()
    assert "".join(snap.signal) == "GRRR" and snap.mode == "local_fixed" and snap.cycle_timer_s == 0


def test_force_needs_a_valid_phase() -> None:
    dev = device(FakeClock())
    with pytest.raises(CommandRejected, match="phase"):
        dev.override("force", 9)
    with pytest.raises(CommandRejected, match="phase"):
        dev.override("force", None)


def test_scheduled_detector_fault_toggles_every_period() -> None:
    now = [1000.0]
    device = SimpleIntersection("s1", phases=2, detectors=3, cycle_s=40, fault_every_s=2.0,
                                clock=lambda: now[0])
    seen = []
    for t in (0.5, 1.9, 2.1, 3.9, 4.1, 6.5):
        now[0] = 1000.0 + t
        seen.append(device.fetch().det_fault)
    assert [f[0] for f in seen] == [False, False, True, True, False, True]
    assert all(f[1:] == (False, False) for f in seen)
