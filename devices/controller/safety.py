"""Safety rules for timing and plans: the controller's own judgement, written once.

The emulator applies these to every write (and refuses with Modbus exception 3 and the reason
code); the driver and the edge apply the same functions before sending, so an unsafe plan is
refused early with the same reason. Pure: values in, a ``Verdict`` out.

Rules (deciseconds): yellow ≥ 3 s and the controller's floor (Indonesian practice, PKJI 2023
uses 3 s); all-red ≥ the floor; minimum green ≥ the floor; every stage's green (its split less
the clearance into the next stage) serves the minimum green and the pedestrian walk + clearance
of each phase in it and stays within their maximum greens; no two conflicting phases in one
stage; every phase served; splits add up to the cycle; cycle within the controller's bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from devices.controller.codec import Identity, PhaseTiming, Plan, phases_of
from devices.controller.registers import MAX_STAGES, TIMING, Reason

ABSOLUTE_YELLOW_FLOOR_DS = 30  # no configuration may take yellow below 3 s
ABSOLUTE_ALL_RED_FLOOR_DS = 10  # every change runs at least 1 s of all-red


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: Reason
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK


OK = Verdict(Reason.OK)


def clearance_ds(from_mask: int, to_mask: int, timing: Sequence[PhaseTiming]) -> tuple[int, int]:
    """(yellow, all-red) between two stages: the longest of the phases that lose their green.

    Phases in both stages stay green through the change; if no phase leaves there is no clearance.
    """
    leaving = phases_of(from_mask & ~to_mask)
    if not leaving:
        return 0, 0
    return (max(timing[p - 1].yellow_ds for p in leaving),
            max(timing[p - 1].all_red_ds for p in leaving))


def intergreen_ds(from_mask: int, to_mask: int, timing: Sequence[PhaseTiming]) -> int:
    yellow, all_red = clearance_ds(from_mask, to_mask, timing)
    return yellow + all_red


def stage_greens_ds(plan: Plan, timing: Sequence[PhaseTiming]) -> tuple[int, ...]:
    """Each stage's green: its split less the clearance into the next stage."""
    n = len(plan.stages)
    return tuple(plan.splits_ds[k] - intergreen_ds(plan.stages[k], plan.stages[(k + 1) % n], timing)
                 for k in range(n))


def check_phase_timing(phase: int, t: PhaseTiming, ident: Identity) -> Verdict:
    for f in TIMING.fields:
        value = getattr(t, f.name)
        if not f.low <= value <= f.high:
            return Verdict(Reason.OUT_OF_RANGE, f"phase {phase} {f.name} {value} outside "
                           f"{f.low}..{f.high}")
    if t.yellow_ds < max(ident.yellow_floor_ds, ABSOLUTE_YELLOW_FLOOR_DS):
        return Verdict(Reason.YELLOW_TOO_SHORT, f"phase {phase} yellow {t.yellow_ds} ds")
    if t.all_red_ds < max(ident.all_red_floor_ds, ABSOLUTE_ALL_RED_FLOOR_DS):
        return Verdict(Reason.ALL_RED_TOO_SHORT, f"phase {phase} all-red {t.all_red_ds} ds")
    if t.min_green_ds < ident.min_green_floor_ds:
        return Verdict(Reason.MIN_GREEN, f"phase {phase} min green {t.min_green_ds} ds below the "
                       f"floor {ident.min_green_floor_ds} ds")
    if t.max_green_ds < t.min_green_ds:
        return Verdict(Reason.MAX_BELOW_MIN, f"phase {phase} max green {t.max_green_ds} ds < "
                       f"min green {t.min_green_ds} ds")
    if t.max_green_ds > ident.max_green_ceiling_ds:
        return Verdict(Reason.OUT_OF_RANGE, f"phase {phase} max green {t.max_green_ds} ds above "
                       f"the ceiling {ident.max_green_ceiling_ds} ds")
    return OK


def check_timing(timing: Sequence[PhaseTiming], ident: Identity) -> Verdict:
    """Timing of every phase the controller has."""
    if len(timing) != ident.phase_count:
        return Verdict(Reason.OUT_OF_RANGE, f"{len(timing)} phase timings for "
                       f"{ident.phase_count} phases")
    for i, t in enumerate(timing):
        verdict = check_phase_timing(i + 1, t, ident)
        if not verdict.ok:
            return verdict
    return OK


def check_plan(plan: Plan, timing: Sequence[PhaseTiming], ident: Identity) -> Verdict:
    """Is ``plan`` safe to run on this controller with this timing? The first broken rule."""
    n_phases = ident.phase_count
    if not 1 <= plan.number <= 255:
        return Verdict(Reason.BAD_PLAN_NUMBER, f"plan number {plan.number}")
    n = len(plan.stages)
    if not 2 <= n <= MAX_STAGES or len(plan.splits_ds) != n:
        return Verdict(Reason.BAD_SEQUENCE, f"{n} stages and {len(plan.splits_ds)} splits "
                       f"(2..{MAX_STAGES} stages, one split each)")
    if not ident.cycle_min_ds <= plan.cycle_ds <= ident.cycle_max_ds:
        return Verdict(Reason.CYCLE_OUT_OF_RANGE, f"cycle {plan.cycle_ds} ds outside "
                       f"{ident.cycle_min_ds}..{ident.cycle_max_ds} ds")
    if not 0 <= plan.offset_ds < plan.cycle_ds:
        return Verdict(Reason.OFFSET_OUT_OF_RANGE, f"offset {plan.offset_ds} ds, cycle "
                       f"{plan.cycle_ds} ds")
    all_phases = (1 << n_phases) - 1
    for k, stage in enumerate(plan.stages):
        if stage == 0 or stage & ~all_phases:
            return Verdict(Reason.UNKNOWN_PHASE, f"stage {k + 1} mask {stage:#06x} for a "
                           f"{n_phases}-phase controller")
    for k in range(n):
        if plan.stages[k] == plan.stages[(k + 1) % n]:
            return Verdict(Reason.BAD_SEQUENCE, f"stage {k + 1} repeats in the next stage")
    for k, stage in enumerate(plan.stages):
        phases = phases_of(stage)
        for i, a in enumerate(phases):
            for b in phases[i + 1:]:
                if ident.conflicts_with(a, b) or ident.conflicts_with(b, a):
                    return Verdict(Reason.CONFLICTING_STAGE, f"stage {k + 1}: phases {a} and "
                                   f"{b} conflict")
    served = 0
    for stage in plan.stages:
        served |= stage
    if served != all_phases:
        missing = phases_of(all_phases & ~served)
        return Verdict(Reason.PHASE_NOT_SERVED, "phases never green: "
                       + ", ".join(str(p) for p in missing))
    for k, split in enumerate(plan.splits_ds):
        if not 0 < split <= plan.cycle_ds:
            return Verdict(Reason.OUT_OF_RANGE, f"stage {k + 1} split {split} ds")
    if sum(plan.splits_ds) != plan.cycle_ds:
        return Verdict(Reason.SPLITS_NOT_CYCLE, f"splits add up to {sum(plan.splits_ds)} ds, "
                       f"cycle is {plan.cycle_ds} ds")
    if len(timing) < n_phases:
        return Verdict(Reason.OUT_OF_RANGE, "timing missing for some phases")
    for k, green in enumerate(stage_greens_ds(plan, timing)):
        for p in phases_of(plan.stages[k]):
            t = timing[p - 1]
            need = max(t.min_green_ds, ident.min_green_floor_ds)
            if green < need:
                return Verdict(Reason.MIN_GREEN, f"stage {k + 1} green {green} ds < phase {p} "
                               f"minimum {need} ds")
            if green > t.max_green_ds:
                return Verdict(Reason.MAX_GREEN, f"stage {k + 1} green {green} ds > phase {p} "
                               f"maximum {t.max_green_ds} ds")
            if t.ped_walk_ds and green < t.ped_walk_ds + t.ped_clear_ds:
                return Verdict(Reason.PED_MINIMUM, f"stage {k + 1} green {green} ds < phase {p} "
                               f"walk + clearance {t.ped_walk_ds + t.ped_clear_ds} ds")
    return OK
