"""Registers ⇄ frozen dataclasses for the traffic controller, driven by the table in ``registers``.

Pure: lists of 16-bit integers in, typed values out, and back. A register list of the wrong
length or a value outside its field raises ``CodecError``; nothing here touches a socket.
Both the driver (decoding what it reads, encoding what it writes) and the emulator (encoding
its state, decoding what a client wrote) use these functions, so the two cannot disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from devices.controller.errors import CodecError
from devices.controller.registers import (
    CONFLICTS,
    DETECTOR_CONFIG,
    DETECTORS,
    IDENTITY,
    INDEFINITE_DS,
    MAILBOX,
    MAP_VERSION,
    MAX_DETECTORS,
    MAX_PHASES,
    MAX_STAGES,
    SHADOW_PLAN,
    STATUS,
    TIMING,
    Block,
    CommandCode,
    CommandResult,
    DetectorStatus,
    Interval,
    Kind,
    ModeReason,
    Override,
    Reason,
    UnitMode,
)

Registers = list[int]


# --------------------------------------------------------------------------- generic field codec


def _check_registers(regs: Sequence[int], need: int, what: str) -> None:
    if len(regs) != need:
        raise CodecError(f"{what}: expected {need} registers, got {len(regs)}")
    for r in regs:
        if not isinstance(r, int) or isinstance(r, bool) or not 0 <= r <= 0xFFFF:
            raise CodecError(f"{what}: {r!r} is not a 16-bit register value")


def decode_record(block: Block, regs: Sequence[int]) -> dict[str, Any]:
    """One record of ``block`` → {field: value}; lists for multi-register numeric fields."""
    _check_registers(regs, block.stride, block.name)
    out: dict[str, Any] = {}
    at = 0
    for f in block.fields:
        chunk = regs[at:at + f.count]
        at += f.count
        if f.name == "reserved":
            continue
        if f.kind is Kind.ASCII:
            raw = b"".join(r.to_bytes(2, "big") for r in chunk)
            text = raw.split(b"\0", 1)[0]
            try:
                out[f.name] = text.decode("ascii")
            except UnicodeDecodeError as exc:
                raise CodecError(f"{block.name}.{f.name}: not ASCII text: {raw!r}") from exc
        elif f.kind is Kind.U32:
            out[f.name] = (chunk[0] << 16) | chunk[1]
        elif f.kind is Kind.ENUM:
            assert f.enum is not None
            try:
                out[f.name] = f.enum(chunk[0])
            except ValueError as exc:
                raise CodecError(f"{block.name}.{f.name}: {chunk[0]} is not a valid "
                                 f"{f.enum.__name__}") from exc
        elif f.count == 1:
            out[f.name] = chunk[0]
        else:
            out[f.name] = list(chunk)
    return out


def encode_record(block: Block, values: dict[str, Any]) -> Registers:
    """{field: value} → one record of ``block``; missing fields (and ``reserved``) encode as 0."""
    regs: Registers = []
    for f in block.fields:
        value = values.get(f.name, 0)
        if f.kind is Kind.ASCII:
            if not isinstance(value, str) and value != 0:
                raise CodecError(f"{block.name}.{f.name}: text expected")
            raw = (value or "").encode("ascii", errors="strict")
            if len(raw) > 2 * f.count:
                raise CodecError(f"{block.name}.{f.name}: {value!r} is longer than "
                                 f"{2 * f.count} characters")
            raw = raw.ljust(2 * f.count, b"\0")
            regs.extend(int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2))
            continue
        if f.kind is Kind.U32:
            if not 0 <= int(value) <= 0xFFFFFFFF:
                raise CodecError(f"{block.name}.{f.name}: {value} does not fit 32 bits")
            regs.extend(((int(value) >> 16) & 0xFFFF, int(value) & 0xFFFF))
            continue
        items = list(value) if f.count > 1 and not isinstance(value, int) else [value]
        if f.count > 1 and isinstance(value, int):
            items = [value] * f.count
        if len(items) > f.count:
            raise CodecError(f"{block.name}.{f.name}: {len(items)} values for {f.count} registers")
        items = items + [0] * (f.count - len(items))
        for item in items:
            raw = int(item.value if isinstance(item, enum.Enum) else item)
            if not 0 <= raw <= 0xFFFF:
                raise CodecError(f"{block.name}.{f.name}: {raw} does not fit a register")
            regs.append(raw)
    return regs


def decode_records(block: Block, regs: Sequence[int], count: int) -> list[dict[str, Any]]:
    """``count`` consecutive records of a repeated block."""
    _check_registers(regs, block.stride * count, f"{block.name}[{count}]")
    s = block.stride
    return [decode_record(block, regs[i * s:(i + 1) * s]) for i in range(count)]


# --------------------------------------------------------------------------- masks


def mask_of(phases: Sequence[int]) -> int:
    """1-based phase numbers → mask (phase n in bit n-1)."""
    mask = 0
    for p in phases:
        if not 1 <= p <= MAX_PHASES:
            raise CodecError(f"phase {p} outside 1..{MAX_PHASES}")
        mask |= 1 << (p - 1)
    return mask


def phases_of(mask: int) -> tuple[int, ...]:
    """Mask → ascending 1-based phase numbers."""
    return tuple(i + 1 for i in range(MAX_PHASES) if mask >> i & 1)


# --------------------------------------------------------------------------- typed values


@dataclass(frozen=True, slots=True)
class Identity:
    vendor: str
    model: str
    firmware: str
    serial: str
    phase_count: int
    detector_count: int
    min_green_floor_ds: int = 50
    yellow_floor_ds: int = 30
    all_red_floor_ds: int = 10
    cycle_min_ds: int = 300
    cycle_max_ds: int = 2400
    max_green_ceiling_ds: int = 1200
    local_actuated: bool = False
    conflicts: tuple[int, ...] = ()  # mask per phase, phase_count entries
    detector_phase: tuple[int, ...] = ()  # call phase per detector, detector_count entries
    map_version: int = MAP_VERSION

    def __post_init__(self) -> None:
        if not self.detector_phase and self.detector_count:
            object.__setattr__(self, "detector_phase", (0,) * self.detector_count)
        if len(self.conflicts) != self.phase_count:
            raise CodecError(f"conflict matrix has {len(self.conflicts)} rows for "
                             f"{self.phase_count} phases")
        if len(self.detector_phase) != self.detector_count:
            raise CodecError(f"{len(self.detector_phase)} detector call phases for "
                             f"{self.detector_count} detectors")
        for a in range(1, self.phase_count + 1):
            if self.conflicts_with(a, a):
                raise CodecError(f"phase {a} conflicts with itself")
            for b in range(a + 1, self.phase_count + 1):
                if self.conflicts_with(a, b) != self.conflicts_with(b, a):
                    raise CodecError(f"conflict matrix not symmetric for phases {a} and {b}")
        for d, p in enumerate(self.detector_phase):
            if not 0 <= p <= self.phase_count:
                raise CodecError(f"detector {d + 1} calls phase {p}, not one of 1..{self.phase_count}")

    @classmethod
    def all_conflicting(cls, phase_count: int) -> tuple[int, ...]:
        """The usual Indonesian layout: each approach has its own phase, all mutually exclusive."""
        full = (1 << phase_count) - 1
        return tuple(full & ~(1 << i) for i in range(phase_count))

    def conflicts_with(self, a: int, b: int) -> bool:
        """Do 1-based phases ``a`` and ``b`` conflict?"""
        return bool(self.conflicts[a - 1] >> (b - 1) & 1)


def encode_identity(ident: Identity) -> dict[str, Registers]:
    """Identity → the three input-register blocks it fills, keyed by block name."""
    if not 1 <= ident.phase_count <= MAX_PHASES:
        raise CodecError(f"phase_count {ident.phase_count} outside 1..{MAX_PHASES}")
    if not 0 <= ident.detector_count <= MAX_DETECTORS:
        raise CodecError(f"detector_count {ident.detector_count} outside 0..{MAX_DETECTORS}")
    head = encode_record(IDENTITY, {
        "map_version": ident.map_version, "vendor": ident.vendor, "model": ident.model,
        "firmware": ident.firmware, "serial": ident.serial, "phase_count": ident.phase_count,
        "detector_count": ident.detector_count, "min_green_floor_ds": ident.min_green_floor_ds,
        "yellow_floor_ds": ident.yellow_floor_ds, "all_red_floor_ds": ident.all_red_floor_ds,
        "cycle_min_ds": ident.cycle_min_ds, "cycle_max_ds": ident.cycle_max_ds,
        "max_green_ceiling_ds": ident.max_green_ceiling_ds,
        "local_actuated": int(ident.local_actuated),
    })
    conflicts = list(ident.conflicts) + [0] * (MAX_PHASES - len(ident.conflicts))
    calls = list(ident.detector_phase) + [0] * (MAX_DETECTORS - len(ident.detector_phase))
    for reg in conflicts + calls:
        if not 0 <= reg <= 0xFFFF:
            raise CodecError(f"{reg} does not fit a register")
    return {IDENTITY.name: head, CONFLICTS.name: conflicts, DETECTOR_CONFIG.name: calls}


def decode_identity(head: Sequence[int], conflicts: Sequence[int],
                    calls: Sequence[int]) -> Identity:
    """The identity, conflict and detector-config blocks → Identity."""
    v = decode_record(IDENTITY, head)
    if v["map_version"] != MAP_VERSION:
        raise CodecError(f"register map version {v['map_version']} is not supported "
                         f"(this driver speaks version {MAP_VERSION})")
    n, d = v["phase_count"], v["detector_count"]
    if not 1 <= n <= MAX_PHASES or not 0 <= d <= MAX_DETECTORS:
        raise CodecError(f"implausible identity: {n} phases, {d} detectors")
    _check_registers(conflicts, CONFLICTS.size, CONFLICTS.name)
    _check_registers(calls, DETECTOR_CONFIG.size, DETECTOR_CONFIG.name)
    return Identity(
        vendor=v["vendor"], model=v["model"], firmware=v["firmware"], serial=v["serial"],
        phase_count=n, detector_count=d, min_green_floor_ds=v["min_green_floor_ds"],
        yellow_floor_ds=v["yellow_floor_ds"], all_red_floor_ds=v["all_red_floor_ds"],
        cycle_min_ds=v["cycle_min_ds"], cycle_max_ds=v["cycle_max_ds"],
        max_green_ceiling_ds=v["max_green_ceiling_ds"], local_actuated=bool(v["local_actuated"]),
        conflicts=tuple(conflicts[:n]), detector_phase=tuple(calls[:d]),
        map_version=v["map_version"],
    )


@dataclass(frozen=True, slots=True)
class Status:
    mode: UnitMode
    mode_reason: ModeReason
    plan: int
    cycle_ds: int
    cycle_timer_ds: int
    offset_ds: int
    heartbeat: int
    red_mask: int
    yellow_mask: int
    green_mask: int
    flash_mask: int
    walk_mask: int
    ped_clear_mask: int
    interval: Interval
    stage: int
    time_left_ds: int
    override: Override
    override_phase: int
    override_left_ds: int
    watchdog_left_ds: int
    alarms: int
    uptime_s: int
    pending_plan: int
    last_seq: int
    last_result: CommandResult
    last_reason: Reason
    local_plan: int
    cycle_count: int

    def lamps(self, phase_count: int) -> tuple[str, ...]:
        """Per phase, the contract's lamp letter: G, Y, R, y (flashing yellow) or X (dark)."""
        out = []
        for i in range(phase_count):
            bit = 1 << i
            if self.green_mask & bit:
                out.append("G")
            elif self.yellow_mask & bit:
                out.append("Y")
            elif self.flash_mask & bit:
                out.append("y")
            elif self.red_mask & bit:
                out.append("R")
            else:
                out.append("X")
        return tuple(out)

    @property
    def held(self) -> bool:
        return self.time_left_ds == INDEFINITE_DS


STATUS_FIELDS = tuple(f.name for f in STATUS.fields if f.name != "reserved")


def encode_status(status: Status) -> Registers:
    return encode_record(STATUS, {name: getattr(status, name) for name in STATUS_FIELDS})


def decode_status(regs: Sequence[int]) -> Status:
    return Status(**decode_record(STATUS, regs))


@dataclass(frozen=True, slots=True)
class DetectorReading:
    volume: int  # wrapping counter
    occupancy_permille: int
    status: DetectorStatus

    @property
    def occupancy_pct(self) -> float:
        return self.occupancy_permille / 10.0

    @property
    def faulty(self) -> bool:
        return self.status not in (DetectorStatus.OK, DetectorStatus.DISABLED)


def encode_detectors(readings: Sequence[DetectorReading]) -> Registers:
    regs: Registers = []
    for r in readings:
        regs.extend(encode_record(DETECTORS, {"volume": r.volume,
                                              "occupancy_permille": r.occupancy_permille,
                                              "status": r.status}))
    return regs


def decode_detectors(regs: Sequence[int], count: int) -> tuple[DetectorReading, ...]:
    out = []
    for rec in decode_records(DETECTORS, regs, count):
        if rec["occupancy_permille"] > 1000:
            raise CodecError(f"occupancy {rec['occupancy_permille']} ‰ is above 1000")
        out.append(DetectorReading(**rec))
    return tuple(out)


def volume_delta(before: int, after: int) -> int:
    """Vehicles counted between two readings of a wrapping 16-bit volume counter."""
    return (after - before) & 0xFFFF


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One poll: status and every detector, read together."""

    status: Status
    detectors: tuple[DetectorReading, ...]


def decode_snapshot(regs: Sequence[int], detector_count: int) -> Snapshot:
    """Registers read from the status address onward → Snapshot."""
    need = STATUS.size + DETECTORS.stride * detector_count
    _check_registers(regs, need, "status+detectors")
    return Snapshot(decode_status(regs[:STATUS.size]),
                    decode_detectors(regs[STATUS.size:], detector_count))


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    """NTCIP 1202 phase timing, deciseconds."""

    min_green_ds: int = 70
    max_green_ds: int = 600
    yellow_ds: int = 30
    all_red_ds: int = 20
    ped_walk_ds: int = 0
    ped_clear_ds: int = 0


TIMING_FIELDS = tuple(f.name for f in TIMING.fields)


def encode_timing(timings: Sequence[PhaseTiming]) -> Registers:
    """Timing of phases 1..len(timings) (a prefix of the timing block)."""
    if len(timings) > MAX_PHASES:
        raise CodecError(f"{len(timings)} phase timings, at most {MAX_PHASES}")
    regs: Registers = []
    for t in timings:
        regs.extend(encode_record(TIMING, {name: getattr(t, name) for name in TIMING_FIELDS}))
    return regs


def decode_timing(regs: Sequence[int], count: int) -> tuple[PhaseTiming, ...]:
    return tuple(PhaseTiming(**rec) for rec in decode_records(TIMING, regs, count))


@dataclass(frozen=True, slots=True)
class Plan:
    """A timing plan (NTCIP pattern + split table): stages in order, each with its split.

    ``stages[k]`` is the mask of phases green together in stage k; ``splits_ds[k]`` is stage k's
    green plus the clearance (yellow, all-red) into stage k+1. The splits add up to the cycle.
    """

    number: int
    cycle_ds: int
    offset_ds: int
    stages: tuple[int, ...]
    splits_ds: tuple[int, ...] = field(default=())

    @classmethod
    def one_phase_per_stage(cls, number: int, splits_ds: Sequence[int], offset_ds: int = 0) -> Plan:
        """The usual Indonesian plan: phase k alone in stage k, in order."""
        return cls(number, sum(splits_ds), offset_ds, tuple(1 << k for k in range(len(splits_ds))),
                   tuple(splits_ds))


def encode_plan(plan: Plan) -> Registers:
    if len(plan.stages) != len(plan.splits_ds):
        raise CodecError(f"plan {plan.number}: {len(plan.stages)} stages but "
                         f"{len(plan.splits_ds)} splits")
    if not 1 <= len(plan.stages) <= MAX_STAGES:
        raise CodecError(f"plan {plan.number}: {len(plan.stages)} stages, 1..{MAX_STAGES} allowed")
    return encode_record(SHADOW_PLAN, {
        "number": plan.number, "cycle_ds": plan.cycle_ds, "offset_ds": plan.offset_ds,
        "stage_count": len(plan.stages), "stages": list(plan.stages),
        "splits_ds": list(plan.splits_ds),
    })


def decode_plan(regs: Sequence[int]) -> Plan:
    """A plan block (shadow, running or local) → Plan; stage_count bounds the sequence."""
    v = decode_record(SHADOW_PLAN, regs)
    n = v["stage_count"]
    if not 0 <= n <= MAX_STAGES:
        raise CodecError(f"stage_count {n} outside 0..{MAX_STAGES}")
    return Plan(v["number"], v["cycle_ds"], v["offset_ds"], tuple(v["stages"][:n]),
                tuple(v["splits_ds"][:n]))


@dataclass(frozen=True, slots=True)
class Command:
    seq: int
    code: CommandCode
    phase: int = 0
    duration_ds: int = 0


def encode_command(cmd: Command) -> Registers:
    return encode_record(MAILBOX, {"seq": cmd.seq, "code": cmd.code, "phase": cmd.phase,
                                   "duration_ds": cmd.duration_ds})


def decode_command(regs: Sequence[int]) -> Command:
    """Mailbox registers → Command; an unknown code raises CodecError (reason BAD_COMMAND)."""
    return Command(**decode_record(MAILBOX, regs))
