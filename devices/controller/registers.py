"""The traffic signal controller's Modbus register map, as data: one table for driver and emulator.

Modelled on NTCIP 1202 (Actuated Signal Controller) objects — unit, phase, detector, pattern and
split tables — mapped onto Modbus registers. Status lives in input registers (function 4,
read-only), timing and control in holding registers (functions 3 and 16). Durations are
deciseconds (``_ds``), occupancy per mille (0.1 %), masks carry phase *n* in bit *n-1*.
Addresses are the wire addresses (0-based): input register 0 is "30001", holding 0 is "40001".

This module holds only the table and the enumerations its values use; ``codec`` turns registers
into frozen dataclasses and back, ``safety`` judges plans and timing, ``docs`` renders the table.
Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAP_VERSION = 1

MAX_PHASES = 16  # NTCIP 1202 maxPhases as most controllers on Indonesian streets build it
MAX_DETECTORS = 64
MAX_STAGES = 16
MODBUS_MAX_READ = 125  # registers per read request (Modbus application protocol v1.1b3, 6.3/6.4)
MODBUS_MAX_WRITE = 123  # registers per write-multiple request (6.12)
INDEFINITE_DS = 0xFFFF  # "until released" in a time-left register


class Table(enum.IntEnum):
    """Which Modbus register table a block lives in (the value is the read function code)."""

    INPUT = 4
    HOLDING = 3


class Kind(enum.StrEnum):
    """How a field's registers hold its value."""

    U16 = "u16"  # unsigned 16-bit
    U32 = "u32"  # unsigned 32-bit, high word first
    ASCII = "ascii"  # two characters per register, high byte first, NUL-padded
    MASK = "mask"  # 16-bit phase mask, phase n in bit n-1
    ENUM = "enum"  # a value of the field's enumeration
    DS = "ds"  # duration in deciseconds
    PERMILLE = "permille"  # 0..1000, tenths of a percent


# --------------------------------------------------------------------------- enumerations


class UnitMode(enum.IntEnum):
    """NTCIP 1202 unitControlStatus, reduced to what operators distinguish."""

    OFF = 0  # dark
    FLASH = 1
    LOCAL_FIXED = 2  # the controller's own fixed-time plan
    LOCAL_ACTUATED = 3  # its own plan, greens extended by detector calls
    CENTRAL = 4  # running the plan the control room committed


class ModeReason(enum.IntEnum):
    """Why the unit is in its mode."""

    NORMAL = 0
    STARTUP = 1  # start-up flash and all-red after power-on or reboot
    WATCHDOG = 2  # central watchdog expired: fell back to the local plan
    INTERNAL_FAULT = 3  # conflict monitor or lamp fault: fail-safe flash
    OVERRIDE = 4  # a manual override (hold, force, flash) is active
    NO_CENTRAL_PLAN = 5  # central control enabled but no plan committed yet


class Interval(enum.IntEnum):
    """Which interval of a stage the unit is timing."""

    GREEN = 0
    YELLOW = 1
    ALL_RED = 2
    FLASH = 3
    DARK = 4


class Override(enum.IntEnum):
    NONE = 0
    HOLD = 1
    FORCE = 2
    FLASH = 3


class DetectorStatus(enum.IntEnum):
    """NTCIP 1202 vehicleDetectorStatus diagnostics."""

    OK = 0
    STUCK_ON = 1  # max presence exceeded
    STUCK_OFF = 2  # no activity for too long
    CHATTER = 3  # erratic output
    DISABLED = 4


class CommandCode(enum.IntEnum):
    """Codes written to the command mailbox."""

    NONE = 0
    COMMIT_CENTRAL = 1  # shadow plan becomes the central plan, at the next safe point
    COMMIT_LOCAL = 2  # shadow plan becomes the local fallback plan
    HOLD = 3  # go to (or stay in) the stage serving `phase`, hold it green
    FORCE = 4  # end the current stage once its minimum green is served; jump to `phase`
    FLASH = 5  # go to flash through yellow and all-red
    RELEASE = 6  # end any override
    CLEAR_FAULT = 7  # technician reset after an internal fault (leaves fail-safe flash)


class CommandResult(enum.IntEnum):
    NONE = 0
    APPLIED = 1  # in force now
    PENDING = 2  # accepted, waits for the next safe point of the cycle
    REJECTED = 3  # refused; the reason register says why, the running plan continues


class Reason(enum.IntEnum):
    """Why a write or command was refused (the result register's reason code)."""

    OK = 0
    OUT_OF_RANGE = 1
    MIN_GREEN = 2  # a stage's green is below a phase's minimum green or the controller's floor
    YELLOW_TOO_SHORT = 3  # yellow below the floor (3 s, PKJI / Indonesian practice)
    ALL_RED_TOO_SHORT = 4
    CONFLICTING_STAGE = 5  # two conflicting phases green in the same stage
    SPLITS_NOT_CYCLE = 6  # the splits do not add up to the cycle
    CYCLE_OUT_OF_RANGE = 7
    PHASE_NOT_SERVED = 8  # a configured phase never turns green in the plan
    UNKNOWN_PHASE = 9  # a phase number beyond the controller's phase count, or an empty stage
    MAX_GREEN = 10  # a stage's green exceeds a phase's maximum green
    PED_MINIMUM = 11  # a stage's green cannot serve a phase's pedestrian walk and clearance
    BAD_SEQUENCE = 12  # no stages, too many, or the same stage twice in a row
    OFFSET_OUT_OF_RANGE = 13  # offset not below the cycle
    NOT_PERMITTED = 14  # not allowed in the unit's current state (e.g. in fault flash)
    BAD_COMMAND = 15  # unknown command code
    MAX_BELOW_MIN = 16  # max green below min green
    TIMING_BREAKS_PLAN = 17  # new timing would make the running or the local plan unsafe
    BAD_PLAN_NUMBER = 18  # plan number 0 or above 255


REASON_TEXT: dict[Reason, str] = {
    Reason.OK: "accepted",
    Reason.OUT_OF_RANGE: "a value is outside its allowed range",
    Reason.MIN_GREEN: "a green is shorter than the minimum green",
    Reason.YELLOW_TOO_SHORT: "yellow is shorter than the controller's floor (3 s)",
    Reason.ALL_RED_TOO_SHORT: "all-red is shorter than the controller's floor",
    Reason.CONFLICTING_STAGE: "two conflicting phases would be green together",
    Reason.SPLITS_NOT_CYCLE: "the splits do not add up to the cycle length",
    Reason.CYCLE_OUT_OF_RANGE: "the cycle length is outside the controller's bounds",
    Reason.PHASE_NOT_SERVED: "a phase of this intersection never gets green",
    Reason.UNKNOWN_PHASE: "a stage names a phase this controller does not have, or no phase",
    Reason.MAX_GREEN: "a green is longer than the maximum green",
    Reason.PED_MINIMUM: "a green is too short for the pedestrian walk and clearance",
    Reason.BAD_SEQUENCE: "the stage sequence is empty, too long or repeats a stage",
    Reason.OFFSET_OUT_OF_RANGE: "the offset must be below the cycle length",
    Reason.NOT_PERMITTED: "not allowed in the controller's current state",
    Reason.BAD_COMMAND: "unknown command code",
    Reason.MAX_BELOW_MIN: "maximum green is below minimum green",
    Reason.TIMING_BREAKS_PLAN: "the new timing would make the running or local plan unsafe",
    Reason.BAD_PLAN_NUMBER: "plan numbers run from 1 to 255",
}

ALARM_BITS: dict[str, int] = {
    # Status register `alarms`: latched until the condition clears (or CLEAR_FAULT for faults).
    "conflict": 0,  # conflict monitor saw conflicting greens: fail-safe flash
    "detector_fault": 1,  # at least one detector reports a diagnostic fault
    "watchdog_expired": 2,  # the central watchdog lapsed; local plan running
    "internal_fault": 3,  # lamp or processor fault: fail-safe flash
    "power_up": 4,  # restarted since the last CLEAR_FAULT
}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class Field:
    """One named value inside a block."""

    name: str
    kind: Kind
    description: str
    count: int = 1  # registers (for ASCII: characters / 2; for U32: 2)
    enum: type[enum.IntEnum] | None = None
    low: int = 0  # allowed range of a writable field's raw value
    high: int = 0xFFFF
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind is Kind.U32 and self.count != 2:
            raise ValueError(f"{self.name}: a u32 takes two registers")
        if self.kind is Kind.ENUM and self.enum is None:
            raise ValueError(f"{self.name}: an enum field names its enumeration")


@dataclass(frozen=True, slots=True)
class Block:
    """A run of registers: ``fields`` once, or repeated ``repeat`` times every ``stride`` registers."""

    name: str
    table: Table
    address: int
    fields: tuple[Field, ...]
    description: str
    repeat: int = 1
    writable: bool = False

    @property
    def stride(self) -> int:
        return sum(f.count for f in self.fields)

    @property
    def size(self) -> int:
        return self.stride * self.repeat

    @property
    def end(self) -> int:
        """First address after the block."""
        return self.address + self.size

    def offset(self, field_name: str) -> int:
        """Offset of a field from the start of one record."""
        at = 0
        for f in self.fields:
            if f.name == field_name:
                return at
            at += f.count
        raise KeyError(f"{self.name} has no field {field_name!r}")

    def address_of(self, field_name: str, index: int = 0) -> int:
        if not 0 <= index < self.repeat:
            raise IndexError(f"{self.name}[{index}] outside 0..{self.repeat - 1}")
        return self.address + index * self.stride + self.offset(field_name)

    def field(self, field_name: str) -> Field:
        for f in self.fields:
            if f.name == field_name:
                return f
        raise KeyError(f"{self.name} has no field {field_name!r}")


def _plan_fields() -> tuple[Field, ...]:
    return (
        Field("number", Kind.U16, "plan number (NTCIP patternNumber)", low=1, high=255),
        Field("cycle_ds", Kind.DS, "cycle length", low=1, high=6000, unit="ds"),
        Field("offset_ds", Kind.DS, "offset of stage 1's start from the common time reference",
              high=6000, unit="ds"),
        Field("stage_count", Kind.U16, "stages in the sequence", low=1, high=MAX_STAGES),
        Field("stages", Kind.MASK, "sequence: per stage, the mask of phases green together "
              "(a stage of one phase is the usual Indonesian phase)", count=MAX_STAGES),
        Field("splits_ds", Kind.DS, "per stage: its green plus the clearance (yellow, all-red) "
              "to the next stage; they add up to the cycle", count=MAX_STAGES, high=6000, unit="ds"),
    )


IDENTITY = Block("identity", Table.INPUT, 0, (
    Field("map_version", Kind.U16, "version of this register map"),
    Field("vendor", Kind.ASCII, "manufacturer (16 characters)", count=8),
    Field("model", Kind.ASCII, "model (16 characters)", count=8),
    Field("firmware", Kind.ASCII, "firmware version (8 characters)", count=4),
    Field("serial", Kind.ASCII, "serial number (12 characters)", count=6),
    Field("phase_count", Kind.U16, "phases wired at this intersection (NTCIP maxPhases in use)"),
    Field("detector_count", Kind.U16, "vehicle detectors wired"),
    Field("min_green_floor_ds", Kind.DS, "lowest minimum green the controller accepts", unit="ds"),
    Field("yellow_floor_ds", Kind.DS, "lowest yellow the controller accepts", unit="ds"),
    Field("all_red_floor_ds", Kind.DS, "lowest all-red the controller accepts", unit="ds"),
    Field("cycle_min_ds", Kind.DS, "shortest cycle the controller accepts", unit="ds"),
    Field("cycle_max_ds", Kind.DS, "longest cycle the controller accepts", unit="ds"),
    Field("max_green_ceiling_ds", Kind.DS, "longest maximum green the controller accepts", unit="ds"),
    Field("local_actuated", Kind.U16, "1 if the local plan runs actuated (greens extend on calls)"),
    Field("reserved", Kind.U16, "reserved", count=4),
), "who the controller is and the safety limits it enforces (fixed at installation)")

CONFLICTS = Block("conflicts", Table.INPUT, 40, (
    Field("conflict_mask", Kind.MASK, "phases that must never be green with this phase "
          "(NTCIP phaseConcurrency, inverted)"),
), "conflict matrix, one row per phase", repeat=MAX_PHASES)

DETECTOR_CONFIG = Block("detector_config", Table.INPUT, 56, (
    Field("call_phase", Kind.U16, "phase this detector calls and extends (0: none)"),
), "detector → phase assignment (NTCIP vehicleDetectorCallPhase)", repeat=MAX_DETECTORS)

STATUS = Block("status", Table.INPUT, 128, (
    Field("mode", Kind.ENUM, "unit mode", enum=UnitMode),
    Field("mode_reason", Kind.ENUM, "why the unit is in this mode", enum=ModeReason),
    Field("plan", Kind.U16, "number of the running plan (0: none)"),
    Field("cycle_ds", Kind.DS, "cycle length of the running plan", unit="ds"),
    Field("cycle_timer_ds", Kind.DS, "time since the start of the current cycle", unit="ds"),
    Field("offset_ds", Kind.DS, "offset of the running plan", unit="ds"),
    Field("heartbeat", Kind.U16, "counts seconds of the controller's clock, wraps at 65536"),
    Field("red_mask", Kind.MASK, "phases showing steady red"),
    Field("yellow_mask", Kind.MASK, "phases showing steady yellow"),
    Field("green_mask", Kind.MASK, "phases showing green"),
    Field("flash_mask", Kind.MASK, "phases flashing yellow (flash mode)"),
    Field("walk_mask", Kind.MASK, "phases showing pedestrian walk"),
    Field("ped_clear_mask", Kind.MASK, "phases showing flashing don't-walk"),
    Field("interval", Kind.ENUM, "interval being timed", enum=Interval),
    Field("stage", Kind.U16, "1-based index of the current stage in the sequence (0: none)"),
    Field("time_left_ds", Kind.DS, "time left in the current interval (65535: held)", unit="ds"),
    Field("override", Kind.ENUM, "active manual override", enum=Override),
    Field("override_phase", Kind.U16, "phase the override concerns (0: none)"),
    Field("override_left_ds", Kind.DS, "time until the override ends by itself (65535: until "
          "release)", unit="ds"),
    Field("watchdog_left_ds", Kind.DS, "time until the central watchdog expires", unit="ds"),
    Field("alarms", Kind.U16, "alarm bits: " + ", ".join(f"{bit} {name}" for name, bit in
                                                         ALARM_BITS.items())),
    Field("uptime_s", Kind.U32, "seconds since power-on", count=2, unit="s"),
    Field("pending_plan", Kind.U16, "central plan waiting for the next safe point (0: none)"),
    Field("last_seq", Kind.U16, "sequence number of the last command"),
    Field("last_result", Kind.ENUM, "result of the last command", enum=CommandResult),
    Field("last_reason", Kind.ENUM, "reason code of the last command or refused write",
          enum=Reason),
    Field("local_plan", Kind.U16, "number of the local fallback plan"),
    Field("cycle_count", Kind.U16, "cycles completed, wraps at 65536"),
    Field("reserved", Kind.U16, "reserved", count=3),
), "live state, one read with the detectors after it")

DETECTORS = Block("detectors", Table.INPUT, 160, (
    Field("volume", Kind.U16, "vehicles counted since power-on, wraps at 65536"),
    Field("occupancy_permille", Kind.PERMILLE, "share of the last second the loop was occupied",
          unit="0.1 %"),
    Field("status", Kind.ENUM, "diagnostics", enum=DetectorStatus),
), "vehicle detectors, right after the status block", repeat=MAX_DETECTORS)

CONTROL = Block("control", Table.HOLDING, 0, (
    Field("watchdog_timeout_ds", Kind.DS, "central watchdog: fall back to the local plan when no "
          "kick arrives for this long", low=10, high=6000, unit="ds"),
    Field("watchdog_kick", Kind.U16, "write any value to feed the watchdog"),
), "central watchdog", writable=True)

MAILBOX = Block("mailbox", Table.HOLDING, 8, (
    Field("seq", Kind.U16, "command sequence number, echoed in status last_seq"),
    Field("code", Kind.ENUM, "command", enum=CommandCode),
    Field("phase", Kind.U16, "phase for HOLD and FORCE (1-based)", high=MAX_PHASES),
    Field("duration_ds", Kind.DS, "override duration (0: until RELEASE)", unit="ds"),
), "command mailbox: write all four registers in one request; the command runs on that write",
    writable=True)

TIMING = Block("timing", Table.HOLDING, 16, (
    Field("min_green_ds", Kind.DS, "minimum green (NTCIP phaseMinimumGreen)", high=1200, unit="ds"),
    Field("max_green_ds", Kind.DS, "maximum green (phaseMaximum1)", high=3000, unit="ds"),
    Field("yellow_ds", Kind.DS, "yellow change (phaseYellowChange)", high=100, unit="ds"),
    Field("all_red_ds", Kind.DS, "red clearance (phaseRedClear)", high=100, unit="ds"),
    Field("ped_walk_ds", Kind.DS, "pedestrian walk (phaseWalk; 0: no pedestrian signal)",
          high=600, unit="ds"),
    Field("ped_clear_ds", Kind.DS, "pedestrian clearance (phasePedestrianClear)", high=600,
          unit="ds"),
), "per-phase timing, one record per phase", repeat=MAX_PHASES, writable=True)

SHADOW_PLAN = Block("shadow_plan", Table.HOLDING, 128, _plan_fields(),
                    "scratch plan: write it in one request, then commit through the mailbox",
                    writable=True)
RUNNING_PLAN = Block("running_plan", Table.HOLDING, 192, _plan_fields(),
                     "the plan in force (read-only)")
LOCAL_PLAN = Block("local_plan", Table.HOLDING, 256, _plan_fields(),
                   "the local fixed-time fallback plan (read-only; set by COMMIT_LOCAL)")

BLOCKS: tuple[Block, ...] = (IDENTITY, CONFLICTS, DETECTOR_CONFIG, STATUS, DETECTORS,
                             CONTROL, MAILBOX, TIMING, SHADOW_PLAN, RUNNING_PLAN, LOCAL_PLAN)

# The driver reads the status and as many detectors as fit into one request.
DETECTORS_IN_STATUS_READ = (MODBUS_MAX_READ - STATUS.size) // DETECTORS.stride


def _check_layout() -> None:
    """Blocks of one table must not overlap; status and detectors must be adjacent."""
    for table in Table:
        spans = sorted((b.address, b.end, b.name) for b in BLOCKS if b.table is table)
        for (_, end, name), (start, _, nxt) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise AssertionError(f"register blocks {name} and {nxt} overlap")
    if STATUS.end != DETECTORS.address:
        raise AssertionError("the detector block must follow the status block")
    for block in (SHADOW_PLAN, RUNNING_PLAN, LOCAL_PLAN):
        if block.size > MODBUS_MAX_WRITE:
            raise AssertionError(f"{block.name} does not fit one write request")


_check_layout()
