"""The controller's register codec, safety rules and generated map, against hand-made vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.controller import codec
from devices.controller.codec import Command, DetectorReading, Identity, PhaseTiming, Plan
from devices.controller.docs import render_markdown
from devices.controller.errors import CodecError
from devices.controller.registers import (
    BLOCKS,
    DETECTORS,
    DETECTORS_IN_STATUS_READ,
    REASON_TEXT,
    STATUS,
    CommandCode,
    CommandResult,
    DetectorStatus,
    Interval,
    ModeReason,
    Override,
    Reason,
    UnitMode,
)
from devices.controller.safety import check_phase_timing, check_plan, stage_greens_ds

FOUR = Identity("Kota Pintar", "SIM-ATCS", "1.0.0", "KP0001", 4, 8,
                conflicts=Identity.all_conflicting(4))
TIMING4 = (PhaseTiming(min_green_ds=70, max_green_ds=600, yellow_ds=30, all_red_ds=20),) * 4


# --------------------------------------------------------------------------- vectors


def test_plan_vector() -> None:
    plan = Plan.one_phase_per_stage(3, [250, 250, 200, 200], offset_ds=100)
    regs = codec.encode_plan(plan)
    assert regs == ([3, 900, 100, 4, 0x0001, 0x0002, 0x0004, 0x0008] + [0] * 12
                    + [250, 250, 200, 200] + [0] * 12)
    assert codec.decode_plan(regs) == plan


def test_plan_with_overlapping_stages_vector() -> None:
    # Stage 1: phases 1+5, stage 2: phases 2+5 (5 keeps its green), stage 3: phases 3+4.
    plan = Plan(7, 1000, 0, (0b1_0001, 0b1_0010, 0b0_1100), (400, 300, 300))
    regs = codec.encode_plan(plan)
    assert regs[:7] == [7, 1000, 0, 3, 0x11, 0x12, 0x0C]
    assert regs[20:23] == [400, 300, 300]
    assert codec.decode_plan(regs) == plan


def test_identity_vector() -> None:
    blocks = codec.encode_identity(FOUR)
    head = blocks["identity"]
    assert head[0] == 1  # map version
    assert head[1:3] == [0x4B6F, 0x7461]  # "Ko" "ta"
    assert head[27:29] == [4, 8]  # phases, detectors
    assert head[29:32] == [50, 30, 10]  # floors: min green 5 s, yellow 3 s, all-red 1 s
    assert blocks["conflicts"][:5] == [0b1110, 0b1101, 0b1011, 0b0111, 0]
    back = codec.decode_identity(head, blocks["conflicts"], blocks["detector_config"])
    assert back == FOUR
    assert back.conflicts_with(1, 3) and not back.conflicts_with(1, 1)


def _status(**over: object) -> codec.Status:
    values = dict(mode=UnitMode.CENTRAL, mode_reason=ModeReason.NORMAL, plan=3, cycle_ds=900,
                  cycle_timer_ds=123, offset_ds=100, heartbeat=65535, red_mask=0b1110,
                  yellow_mask=0, green_mask=0b0001, flash_mask=0, walk_mask=0b0001,
                  ped_clear_mask=0, interval=Interval.GREEN, stage=1, time_left_ds=77,
                  override=Override.NONE, override_phase=0, override_left_ds=0,
                  watchdog_left_ds=250, alarms=0b10000, uptime_s=70_000, pending_plan=0,
                  last_seq=42, last_result=CommandResult.APPLIED, last_reason=Reason.OK,
                  local_plan=1, cycle_count=9)
    values.update(over)
    return codec.Status(**values)  # type: ignore[arg-type]


def test_status_vector() -> None:
    status = _status()
    regs = codec.encode_status(status)
    assert len(regs) == STATUS.size == 32
    assert regs[:10] == [4, 0, 3, 900, 123, 100, 65535, 0b1110, 0, 0b0001]
    assert regs[21:23] == [1, 4464]  # uptime 70 000 s = 0x0001_1170, high word first
    assert regs[23:28] == [0, 42, 1, 0, 1]
    assert codec.decode_status(regs) == status
    assert status.lamps(4) == ("G", "R", "R", "R")


def test_lamps_letters() -> None:
    assert _status(green_mask=0, red_mask=0b0100, yellow_mask=0b0001, flash_mask=0b0010
                   ).lamps(5) == ("Y", "y", "R", "X", "X")


def test_snapshot_vector_and_wrapping_volume() -> None:
    dets = (DetectorReading(65535, 1000, DetectorStatus.STUCK_ON),
            DetectorReading(12, 85, DetectorStatus.OK))
    regs = codec.encode_status(_status()) + codec.encode_detectors(dets)
    assert regs[32:38] == [65535, 1000, 1, 12, 85, 0]
    snap = codec.decode_snapshot(regs, 2)
    assert snap.detectors == dets
    assert snap.detectors[0].faulty and not snap.detectors[1].faulty
    assert snap.detectors[1].occupancy_pct == 8.5
    assert codec.volume_delta(65530, 4) == 10


def test_timing_and_command_vectors() -> None:
    t = PhaseTiming(min_green_ds=70, max_green_ds=450, yellow_ds=30, all_red_ds=20,
                    ped_walk_ds=70, ped_clear_ds=100)
    assert codec.encode_timing([t, t])[:6] == [70, 450, 30, 20, 70, 100]
    assert codec.decode_timing(codec.encode_timing([t, t]), 2) == (t, t)
    cmd = Command(513, CommandCode.HOLD, 2, 600)
    assert codec.encode_command(cmd) == [513, 3, 2, 600]
    assert codec.decode_command([513, 3, 2, 600]) == cmd


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("regs, match", [
    ([0] * 31, "expected 32 registers"),
    ([0] * 31 + [70000], "16-bit"),
    ([9] + [0] * 31, "not a valid UnitMode"),
])
def test_bad_status_registers(regs: list[int], match: str) -> None:
    with pytest.raises(CodecError, match=match):
        codec.decode_status(regs)


def test_bad_values_do_not_encode() -> None:
    with pytest.raises(CodecError, match="longer than"):
        codec.encode_identity(Identity("x" * 17, "m", "f", "s", 2, 0,
                                       conflicts=Identity.all_conflicting(2)))
    with pytest.raises(CodecError, match="stages"):
        codec.encode_plan(Plan(1, 100, 0, (1, 2), (50,)))
    with pytest.raises(CodecError, match="not a valid CommandCode"):
        codec.decode_command([1, 99, 0, 0])
    with pytest.raises(CodecError, match="above 1000"):
        codec.decode_detectors([0, 1001, 0], 1)
    with pytest.raises(CodecError, match="not symmetric"):
        Identity("v", "m", "f", "s", 2, 0, conflicts=(0b10, 0b00))


def test_identity_of_another_map_version_is_refused() -> None:
    blocks = codec.encode_identity(FOUR)
    head = [2] + blocks["identity"][1:]
    with pytest.raises(CodecError, match="version 2"):
        codec.decode_identity(head, blocks["conflicts"], blocks["detector_config"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=300), st.integers(0, 40))
def test_garbage_registers_decode_or_raise_codec_error(regs: list[int], dets: int) -> None:
    for decode in (lambda: codec.decode_snapshot(regs, dets), lambda: codec.decode_plan(regs),
                   lambda: codec.decode_status(regs), lambda: codec.decode_command(regs)):
        try:
            decode()
        except CodecError:
            pass


@given(st.lists(st.integers(1, 0b1111), min_size=2, max_size=16),
       st.lists(st.integers(1, 2000), min_size=16, max_size=16), st.integers(0, 5000))
def test_plan_round_trip(stages: list[int], splits: list[int], offset: int) -> None:
    plan = Plan(9, sum(splits[:len(stages)]), offset, tuple(stages), tuple(splits[:len(stages)]))
    assert codec.decode_plan(codec.encode_plan(plan)) == plan


# --------------------------------------------------------------------------- safety


def test_stage_greens_subtract_the_clearance_into_the_next_stage() -> None:
    plan = Plan.one_phase_per_stage(1, [250, 250, 200, 200])
    assert stage_greens_ds(plan, TIMING4) == (200, 200, 150, 150)
    # Phase 5 stays green from stage 1 into stage 2: only phase 1 clears (yellow 4 s, all-red 3 s).
    five = Identity("v", "m", "f", "s", 5, 0, conflicts=(0b01110, 0b01101, 0b10011, 0b10011,
                                                         0b01100))
    timing = (PhaseTiming(yellow_ds=40, all_red_ds=30),) + (PhaseTiming(),) * 4
    plan = Plan(2, 900, 0, (0b10001, 0b10010, 0b01100), (300, 300, 300))
    assert stage_greens_ds(plan, timing) == (300 - 70, 300 - 50, 300 - 50)
    assert check_plan(plan, timing, five).ok


@pytest.mark.parametrize("plan, reason", [
    (Plan.one_phase_per_stage(1, [250, 250, 200, 200]), Reason.OK),
    (Plan.one_phase_per_stage(1, [100, 250, 200, 350]), Reason.MIN_GREEN),  # 100-50 < 70
    (Plan(1, 900, 0, (0b0011, 0b0100, 0b1000), (300, 300, 300)), Reason.CONFLICTING_STAGE),
    (Plan(1, 900, 0, (1, 2, 4, 8), (250, 250, 200, 199)), Reason.SPLITS_NOT_CYCLE),
    (Plan(1, 900, 0, (1, 2, 4), (300, 300, 300)), Reason.PHASE_NOT_SERVED),
    (Plan(1, 900, 0, (1, 2, 4, 16), (250, 250, 200, 200)), Reason.UNKNOWN_PHASE),
    (Plan(1, 900, 900, (1, 2, 4, 8), (250, 250, 200, 200)), Reason.OFFSET_OUT_OF_RANGE),
    (Plan(0, 900, 0, (1, 2, 4, 8), (250, 250, 200, 200)), Reason.BAD_PLAN_NUMBER),
    (Plan(1, 200, 0, (1, 2, 4, 8), (50, 50, 50, 50)), Reason.CYCLE_OUT_OF_RANGE),
    (Plan(1, 900, 0, (1, 1, 2, 4, 8), (100, 150, 250, 200, 200)), Reason.BAD_SEQUENCE),
    (Plan.one_phase_per_stage(1, [700, 250, 200, 200]), Reason.MAX_GREEN),  # 650 > 600
])
def test_plan_rules(plan: Plan, reason: Reason) -> None:
    assert check_plan(plan, TIMING4, FOUR).reason is reason


def test_pedestrian_minimum() -> None:
    timing = (PhaseTiming(ped_walk_ds=100, ped_clear_ds=120),) + TIMING4[1:]
    plan = Plan.one_phase_per_stage(1, [250, 250, 200, 200])  # stage 1 green 200 < 220
    assert check_plan(plan, timing, FOUR).reason is Reason.PED_MINIMUM


@pytest.mark.parametrize("timing, reason", [
    (PhaseTiming(yellow_ds=29), Reason.YELLOW_TOO_SHORT),
    (PhaseTiming(all_red_ds=5), Reason.ALL_RED_TOO_SHORT),
    (PhaseTiming(min_green_ds=40), Reason.MIN_GREEN),
    (PhaseTiming(min_green_ds=300, max_green_ds=200), Reason.MAX_BELOW_MIN),
    (PhaseTiming(yellow_ds=101), Reason.OUT_OF_RANGE),
    (PhaseTiming(max_green_ds=1500), Reason.OUT_OF_RANGE),  # above the 120 s ceiling
    (PhaseTiming(), Reason.OK),
])
def test_timing_rules(timing: PhaseTiming, reason: Reason) -> None:
    assert check_phase_timing(1, timing, FOUR).reason is reason


# --------------------------------------------------------------------------- the map


def test_map_layout_serves_one_read_polls() -> None:
    assert STATUS.end == DETECTORS.address
    assert STATUS.size + DETECTORS.stride * DETECTORS_IN_STATUS_READ <= 125
    assert set(REASON_TEXT) == set(Reason)


def test_generated_documentation_covers_every_field() -> None:
    doc = render_markdown()
    for block in BLOCKS:
        assert f"## {block.name} —" in doc
        for f in block.fields:
            assert f"| {f.name}" in doc, f.name
    assert "| 128–159 |" not in doc  # fields, not blocks, carry addresses
    assert "| 128 | 30129 | mode | UnitMode |" in doc
    assert "| 17 | TIMING_BREAKS_PLAN |" in doc
