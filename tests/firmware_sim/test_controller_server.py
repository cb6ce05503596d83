"""The emulated traffic controller as a real Modbus TCP server, probed by the real pymodbus client.

Each test starts a ``ControllerEmulator`` on 127.0.0.1 port 0 with a scaled clock (×50 unless
said otherwise: a 100 s cycle takes 2 s) and talks to it with ``AsyncModbusTcpClient`` exactly as
the driver does, decoding every reply with the shared codec.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from devices.controller import codec
from devices.controller.codec import Command, PhaseTiming, Plan, Status
from devices.controller.driver import ControllerClient
from devices.controller.registers import (
    ALARM_BITS,
    CONTROL,
    DETECTOR_CONFIG,
    DETECTORS,
    IDENTITY,
    LOCAL_PLAN,
    MAILBOX,
    RUNNING_PLAN,
    SHADOW_PLAN,
    STATUS,
    TIMING,
    CommandCode,
    CommandResult,
    DetectorStatus,
    ModeReason,
    Override,
    Reason,
    UnitMode,
)
from firmware_sim.controller.clock import ManualClock, RealClock
from firmware_sim.controller.host import ControllerSettings
from firmware_sim.controller.program import ControllerConfig, DetectorFault
from firmware_sim.controller.server import ControllerEmulator
from firmware_sim.controller.traffic import TrafficGenerator

UNIT = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
SCALE = 50.0


def four_phase(**settings: Any) -> ControllerConfig:
    return ControllerSettings(**settings).controller_config("KP-TEST-0001")


class Probe:
    """A real pymodbus client plus the codec: what the tests read and write."""

    def __init__(self, emulator: ControllerEmulator, client: AsyncModbusTcpClient) -> None:
        self.emulator = emulator
        self.client = client

    async def input(self, address: int, count: int) -> list[int]:
        reply = await self.client.read_input_registers(address, count=count, device_id=UNIT)
        assert not reply.isError(), reply
        return list(reply.registers)

    async def holding(self, address: int, count: int) -> list[int]:
        reply = await self.client.read_holding_registers(address, count=count, device_id=UNIT)
        assert not reply.isError(), reply
        return list(reply.registers)

    async def write(self, address: int, values: list[int]) -> int | None:
        """Write; the Modbus exception code, or None when accepted."""
        reply = await self.client.write_registers(address, values, device_id=UNIT)
        return reply.exception_code if reply.isError() else None

    async def status(self) -> Status:
        return codec.decode_status(await self.input(STATUS.address, STATUS.size))

    async def plan(self, block: Any = RUNNING_PLAN) -> Plan:
        return codec.decode_plan(await self.holding(block.address, block.size))

    async def timing(self) -> tuple[PhaseTiming, ...]:
        return codec.decode_timing(await self.holding(TIMING.address, TIMING.stride * 4), 4)

    async def command(self, seq: int, code: CommandCode, phase: int = 0,
                      duration_ds: int = 0) -> int | None:
        return await self.write(MAILBOX.address,
                                codec.encode_command(Command(seq, code, phase, duration_ds)))

    async def until(self, check: Callable[[Status], bool], timeout_s: float = 5.0,
                    what: str = "condition") -> Status:
        deadline = time.monotonic() + timeout_s
        while True:
            status = await self.status()
            if check(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {timeout_s} s: {status}")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running(config: ControllerConfig | None = None, *, scale: float = SCALE,
                  traffic: bool = False, timeout_s: float = 1.0) -> AsyncIterator[Probe]:
    config = config or four_phase()
    clock = RealClock(scale)
    generator = (TrafficGenerator(config.identity.detector_phase, level=3.0, seed=1,
                                  wall_s=lambda ds: ds / 10) if traffic else None)
    emulator = ControllerEmulator(config, clock=clock, traffic=generator)
    async with emulator:
        client = AsyncModbusTcpClient("127.0.0.1", port=emulator.port, timeout=timeout_s,
                                      retries=0, reconnect_delay=0)
        assert await client.connect()
        try:
            yield Probe(emulator, client)
        finally:
            client.close()


def run(scenario: Callable[..., Awaitable[None]], **kwargs: Any) -> None:
    async def main() -> None:
        async with running(**kwargs) as probe:
            await scenario(probe)

    asyncio.run(main())


def normal(status: Status) -> bool:
    return status.mode_reason is ModeReason.NORMAL and status.mode is UnitMode.LOCAL_FIXED


# --------------------------------------------------------------------------- reads


def test_identity_status_and_detectors_decode() -> None:
    async def scenario(p: Probe) -> None:
        regs = await p.input(IDENTITY.address, DETECTOR_CONFIG.end)
        a, b = IDENTITY.size, IDENTITY.size + 16
        ident = codec.decode_identity(regs[:a], regs[a:b], regs[b:])
        assert ident == p.emulator.config.identity
        assert ident.phase_count == 4 and ident.detector_count == 8
        assert ident.conflicts_with(1, 2) and ident.conflicts_with(3, 4)
        assert ident.detector_phase == (1, 2, 3, 4, 1, 2, 3, 4)
        first = await p.status()
        await asyncio.sleep(1.2)  # 60 s of emulated time
        regs = await p.input(STATUS.address, STATUS.size + DETECTORS.stride * 8)
        snap = codec.decode_snapshot(regs, 8)
        assert snap.status.uptime_s >= first.uptime_s + 40
        assert snap.status.heartbeat != first.heartbeat
        assert not snap.status.green_mask & snap.status.red_mask
        assert sum(d.volume for d in snap.detectors) > 0  # the built-in traffic feeds the loops
        assert all(d.status is DetectorStatus.OK for d in snap.detectors)
        # Timing and plans are holding registers, filled from the configuration.
        assert await p.timing() == p.emulator.config.timing
        assert await p.plan(LOCAL_PLAN) == p.emulator.config.local_plan
        watchdog = await p.holding(CONTROL.address, 1)
        assert watchdog == [p.emulator.config.watchdog_timeout_ds]

    run(scenario, traffic=True)


def test_the_production_driver_reads_a_snapshot() -> None:
    async def scenario(p: Probe) -> None:
        async with ControllerClient("127.0.0.1", p.emulator.port, UNIT, timeout_s=2) as c:
            snap = await c.snapshot()
            assert len(snap.detectors) == 8
            assert (await c.identity()).serial == "KP-TEST-0001"

    run(scenario)


# --------------------------------------------------------------------------- plans


def test_commit_a_central_plan_pending_then_applied_at_the_safe_point() -> None:
    plan = Plan.one_phase_per_stage(7, [300, 250, 250, 200])

    async def scenario(p: Probe) -> None:
        await p.until(normal, what="start-up done")
        assert await p.write(SHADOW_PLAN.address, codec.encode_plan(plan)) is None
        assert await p.plan(SHADOW_PLAN) == plan  # scratch: stored as written
        assert await p.command(11, CommandCode.COMMIT_CENTRAL) is None
        status = await p.status()
        assert status.last_seq == 11
        assert status.last_result in (CommandResult.PENDING, CommandResult.APPLIED)
        if status.last_result is CommandResult.PENDING:
            assert status.pending_plan == 7
        status = await p.until(lambda s: s.plan == 7 and s.pending_plan == 0, timeout_s=6,
                               what="plan 7 in force")
        assert status.mode is UnitMode.CENTRAL
        assert await p.plan(RUNNING_PLAN) == plan
        assert await p.plan(LOCAL_PLAN) == p.emulator.config.local_plan

    run(scenario)


def test_commit_a_local_plan() -> None:
    plan = Plan.one_phase_per_stage(9, [250, 250, 250, 250])

    async def scenario(p: Probe) -> None:
        assert await p.write(SHADOW_PLAN.address, codec.encode_plan(plan)) is None
        assert await p.command(3, CommandCode.COMMIT_LOCAL) is None
        assert (await p.status()).last_seq == 3
        assert await p.plan(LOCAL_PLAN) == plan

    run(scenario)


# --------------------------------------------------------------------------- refusals


def _phase(**change: int) -> PhaseTiming:
    base = PhaseTiming()
    values = {name: getattr(base, name) for name in codec.TIMING_FIELDS}
    values.update(change)
    return PhaseTiming(**values)


UNSAFE_TIMING = [
    pytest.param({"min_green_ds": 30}, Reason.MIN_GREEN, id="min-green-below-floor"),
    pytest.param({"yellow_ds": 20}, Reason.YELLOW_TOO_SHORT, id="yellow-under-3s"),
    pytest.param({"all_red_ds": 0}, Reason.ALL_RED_TOO_SHORT, id="no-all-red"),
    pytest.param({"max_green_ds": 5000}, Reason.OUT_OF_RANGE, id="max-green-out-of-range"),
    pytest.param({"max_green_ds": 60, "min_green_ds": 70}, Reason.MAX_BELOW_MIN, id="max-below-min"),
]


@pytest.mark.parametrize(("change", "reason"), UNSAFE_TIMING)
def test_unsafe_timing_is_refused_and_nothing_changes(change: dict, reason: Reason) -> None:
    async def scenario(p: Probe) -> None:
        before_timing = await p.timing()
        before_plan = await p.plan()
        regs = codec.encode_timing([_phase(**change)])
        assert await p.write(TIMING.address + TIMING.stride, regs) == ILLEGAL_VALUE  # phase 2
        status = await p.status()
        assert status.last_reason is reason
        assert await p.timing() == before_timing
        assert await p.plan() == before_plan

    run(scenario)


def test_a_single_register_timing_write_is_merged_and_judged() -> None:
    async def scenario(p: Probe) -> None:
        yellow_at = TIMING.address + TIMING.stride * 2 + TIMING.offset("yellow_ds")  # phase 3
        assert await p.write(yellow_at, [40]) is None
        assert (await p.timing())[2].yellow_ds == 40
        assert await p.write(yellow_at, [25]) == ILLEGAL_VALUE
        assert (await p.timing())[2].yellow_ds == 40
        assert (await p.status()).last_reason is Reason.YELLOW_TOO_SHORT
        beyond = TIMING.address + TIMING.stride * 4  # phase 5 on a four-phase controller
        assert await p.write(beyond, codec.encode_timing([_phase()])) == ILLEGAL_VALUE
        assert (await p.status()).last_reason is Reason.UNKNOWN_PHASE

    run(scenario)


UNSAFE_PLANS = [
    pytest.param(Plan(5, 1000, 0, (0b0011, 0b0100, 0b1000), (400, 300, 300)),
                 Reason.CONFLICTING_STAGE, id="conflicting-stage"),
    pytest.param(Plan(5, 1000, 0, (1, 2, 4, 8), (250, 250, 250, 200)),
                 Reason.SPLITS_NOT_CYCLE, id="splits-not-cycle"),
    pytest.param(Plan.one_phase_per_stage(5, [100, 300, 300, 300]), Reason.MIN_GREEN,
                 id="green-below-min"),
    pytest.param(Plan.one_phase_per_stage(5, [50, 50, 50, 50]), Reason.CYCLE_OUT_OF_RANGE,
                 id="cycle-too-short"),
    pytest.param(Plan(5, 900, 900, (1, 2, 4, 8), (250, 250, 200, 200)),
                 Reason.OFFSET_OUT_OF_RANGE, id="offset-not-below-cycle"),
    pytest.param(Plan(5, 750, 0, (1, 2, 4), (250, 250, 250)), Reason.PHASE_NOT_SERVED,
                 id="phase-not-served"),
    pytest.param(Plan.one_phase_per_stage(0, [250, 250, 250, 250]), Reason.BAD_PLAN_NUMBER,
                 id="plan-number-zero"),
]


@pytest.mark.parametrize(("plan", "reason"), UNSAFE_PLANS)
def test_unsafe_plan_is_refused_and_the_running_plan_continues(plan: Plan, reason: Reason) -> None:
    async def scenario(p: Probe) -> None:
        before = await p.plan()
        assert await p.write(SHADOW_PLAN.address, codec.encode_plan(plan)) is None
        assert await p.command(21, CommandCode.COMMIT_CENTRAL) == ILLEGAL_VALUE
        status = await p.status()
        assert (status.last_seq, status.last_result, status.last_reason) == (
            21, CommandResult.REJECTED, reason)
        assert status.pending_plan == 0
        assert await p.plan() == before

    run(scenario)


def test_bad_writes_outside_plans() -> None:
    async def scenario(p: Probe) -> None:
        before = await p.plan()
        # A command must be written whole: a partial mailbox write is refused.
        assert await p.write(MAILBOX.address, [5, int(CommandCode.FLASH)]) == ILLEGAL_VALUE
        assert (await p.status()).last_reason is Reason.BAD_COMMAND
        assert await p.write(MAILBOX.address + 1, [1, 0, 0]) == ILLEGAL_VALUE
        # An unknown command code is refused, and its sequence number still answered.
        assert await p.write(MAILBOX.address, [6, 99, 0, 0]) == ILLEGAL_VALUE
        status = await p.status()
        assert (status.last_seq, status.last_result, status.last_reason) == (
            6, CommandResult.REJECTED, Reason.BAD_COMMAND)
        # Watchdog timeout outside 1..600 s.
        assert await p.write(CONTROL.address, [5]) == ILLEGAL_VALUE
        assert (await p.status()).last_reason is Reason.OUT_OF_RANGE
        assert await p.holding(CONTROL.address, 1) == [p.emulator.config.watchdog_timeout_ds]
        # Read-only blocks and holes in the map: illegal address.
        plan_regs = codec.encode_plan(Plan.one_phase_per_stage(8, [250] * 4))
        assert await p.write(RUNNING_PLAN.address, plan_regs) == ILLEGAL_ADDRESS
        assert await p.write(LOCAL_PLAN.address, [8]) == ILLEGAL_ADDRESS
        assert await p.write(CONTROL.end, [1]) == ILLEGAL_ADDRESS
        reply = await p.client.read_input_registers(DETECTOR_CONFIG.end, count=2, device_id=UNIT)
        assert reply.isError() and reply.exception_code == ILLEGAL_ADDRESS
        reply = await p.client.read_coils(0, count=1, device_id=UNIT)
        assert reply.isError() and reply.exception_code == 1
        assert await p.plan() == before

    run(scenario)


# --------------------------------------------------------------------------- watchdog, overrides


def test_watchdog_falls_back_to_the_local_plan_and_recovers() -> None:
    central = Plan.one_phase_per_stage(12, [250, 250, 250, 250])

    async def scenario(p: Probe) -> None:
        await p.until(normal, what="start-up done")
        assert await p.write(CONTROL.address, [100]) is None  # 10 s = 0.1 s real
        assert await p.write(SHADOW_PLAN.address, codec.encode_plan(central)) is None
        assert await p.command(1, CommandCode.COMMIT_CENTRAL) is None
        # Kicked, the central plan comes into force …
        deadline = time.monotonic() + 6
        while True:
            assert await p.write(CONTROL.address_of("watchdog_kick"), [1]) is None
            status = await p.status()
            if status.plan == 12 and status.mode is UnitMode.CENTRAL:
                break
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.05)
        assert status.watchdog_left_ds > 0
        # … and without kicks the watchdog lapses: the local plan returns at the safe point.
        status = await p.until(lambda s: s.alarms >> ALARM_BITS["watchdog_expired"] & 1,
                               timeout_s=3, what="watchdog expiry")
        assert status.watchdog_left_ds == 0
        status = await p.until(lambda s: s.plan == p.emulator.config.local_plan.number,
                               timeout_s=6, what="local plan in force")
        assert status.mode is UnitMode.LOCAL_FIXED
        assert status.mode_reason is ModeReason.WATCHDOG
        # Kicks again: central control resumes with the committed plan.
        deadline = time.monotonic() + 6
        while True:
            assert await p.write(CONTROL.address_of("watchdog_kick"), [1]) is None
            status = await p.status()
            if status.mode is UnitMode.CENTRAL and status.plan == 12:
                break
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.05)

    run(scenario, scale=100.0)  # a 100 s cycle in 1 s


def test_overrides_hold_force_flash_release() -> None:
    async def scenario(p: Probe) -> None:
        await p.until(normal, what="start-up done")
        assert await p.command(1, CommandCode.HOLD, phase=3) is None
        status = await p.until(lambda s: s.green_mask == 0b0100, timeout_s=6,
                               what="phase 3 held green")
        assert status.override is Override.HOLD and status.override_phase == 3
        await asyncio.sleep(0.5)  # 25 s: still held
        assert (await p.status()).green_mask == 0b0100
        assert await p.command(2, CommandCode.FORCE, phase=1) is None
        status = await p.until(lambda s: s.green_mask == 0b0001, timeout_s=6,
                               what="forced to phase 1")
        assert await p.command(3, CommandCode.FLASH) is None
        status = await p.until(lambda s: s.mode is UnitMode.FLASH, timeout_s=6, what="flash")
        assert status.flash_mask and not status.green_mask
        assert status.override is Override.FLASH
        assert await p.command(4, CommandCode.RELEASE) is None
        status = await p.until(lambda s: s.override is Override.NONE and s.mode is not
                               UnitMode.FLASH, timeout_s=6, what="released")
        assert status.last_seq == 4 and status.last_result is CommandResult.APPLIED
        # HOLD of a phase the controller does not have is refused.
        assert await p.command(5, CommandCode.HOLD, phase=9) == ILLEGAL_VALUE
        assert (await p.status()).last_result is CommandResult.REJECTED

    run(scenario)


# --------------------------------------------------------------------------- faults


def test_comms_drop_then_recovery() -> None:
    async def scenario(p: Probe) -> None:
        await p.status()
        p.emulator.drop_comms()
        with pytest.raises(ModbusException):
            reply = await p.client.read_input_registers(STATUS.address, count=STATUS.size,
                                                        device_id=UNIT)
            if reply.isError():  # pragma: no cover - a reply is itself the failure
                raise AssertionError(f"answered while the link is down: {reply}")
        p.emulator.restore_comms()
        client = AsyncModbusTcpClient("127.0.0.1", port=p.emulator.port, timeout=1, retries=0)
        assert await client.connect()
        try:
            reply = await client.read_input_registers(STATUS.address, count=STATUS.size,
                                                      device_id=UNIT)
            assert not reply.isError()
        finally:
            client.close()
        # A timed drop ends by itself.
        p.emulator.drop_comms(duration_s=0.3)
        assert not p.emulator.answering
        await asyncio.sleep(0.35)
        assert p.emulator.answering

    run(scenario, timeout_s=0.5)


def test_slow_answers() -> None:
    async def scenario(p: Probe) -> None:
        p.emulator.slow_answers(300)
        started = time.monotonic()
        await p.status()
        assert time.monotonic() - started >= 0.3
        p.emulator.slow_answers(0)
        started = time.monotonic()
        await p.status()
        assert time.monotonic() - started < 0.2

    run(scenario)


def test_reboot_resets_uptime() -> None:
    async def scenario(p: Probe) -> None:
        await asyncio.sleep(0.6)  # 30 s
        before = await p.status()
        assert before.uptime_s >= 25
        p.emulator.reboot()
        after = await p.status()
        assert after.uptime_s < 5
        assert after.mode_reason is ModeReason.STARTUP
        assert after.alarms >> ALARM_BITS["power_up"] & 1
        # A power cycle can also cut the TCP connections, as a real one does.
        p.emulator.reboot(drop_connections=True)
        rebooted = time.monotonic()
        with pytest.raises(ModbusException):
            await p.status()
        client = AsyncModbusTcpClient("127.0.0.1", port=p.emulator.port, timeout=1, retries=0)
        assert await client.connect()
        try:
            reply = await client.read_input_registers(STATUS.address, count=STATUS.size,
                                                      device_id=UNIT)
            since_s = (time.monotonic() - rebooted) * SCALE
            assert codec.decode_status(reply.registers).uptime_s <= since_s + 1
        finally:
            client.close()

    run(scenario)


@pytest.mark.parametrize(("fault", "expected"), [
    (DetectorFault.STUCK_ON, DetectorStatus.STUCK_ON),
    (DetectorFault.STUCK_OFF, DetectorStatus.STUCK_OFF),
    (DetectorFault.CHATTER, DetectorStatus.CHATTER),
])
def test_detector_faults(fault: DetectorFault, expected: DetectorStatus) -> None:
    async def scenario(p: Probe) -> None:
        p.emulator.set_detector_fault(2, fault)
        deadline = time.monotonic() + 20
        while True:
            regs = await p.input(STATUS.address, STATUS.size + DETECTORS.stride * 8)
            snap = codec.decode_snapshot(regs, 8)
            if snap.detectors[1].status is expected:
                break
            assert time.monotonic() < deadline, snap.detectors[1]
            await asyncio.sleep(0.1)
        assert snap.status.alarms >> ALARM_BITS["detector_fault"] & 1
        assert snap.detectors[0].status is DetectorStatus.OK

    run(scenario, traffic=True, scale=200.0)


def test_lamp_fault_goes_to_fail_safe_flash() -> None:
    async def scenario(p: Probe) -> None:
        await p.until(normal, what="start-up done")
        p.emulator.inject_lamp_fault(2)
        status = await p.until(lambda s: s.mode is UnitMode.FLASH, timeout_s=3,
                               what="fail-safe flash")
        assert status.mode_reason is ModeReason.INTERNAL_FAULT
        assert status.alarms >> ALARM_BITS["internal_fault"] & 1
        assert not status.green_mask

    run(scenario)


# --------------------------------------------------------------------------- garbage on the wire


GARBAGE = [
    pytest.param(b"\x00\x01\xff\xff\x00\x06\x01\x04\x00\x80\x00\x20", id="bad-protocol-id"),
    pytest.param(b"\x00\x01\x00\x00\xff\xff\x01\x04\x00\x80", id="absurd-length"),
    pytest.param(b"\x00\x01\x00\x00\x00\x01\x01", id="length-one"),
    pytest.param(b"\xde\xad\xbe\xef" * 300, id="noise"),
    pytest.param(b"\x00\x01\x00\x00\x00\x03\x01\x04\x00", id="truncated-pdu"),
    pytest.param(b"\x00\x01\x00\x00\x00\x06\x01\x63\x00\x00\x00\x01", id="unknown-function"),
    pytest.param(b"\x00\x01\x00\x00\x00\x03\x01\x84\x02", id="exception-as-request"),
    pytest.param(b"\x00\x01\x00", id="short-header"),
]
VALID_READ = bytes.fromhex("0007 0000 0006 01 04 0080 0001".replace(" ", ""))


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbled_frames_do_not_wedge_the_server(garbage: bytes) -> None:
    async def scenario(p: Probe) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", p.emulator.port)
        writer.write(garbage)
        await writer.drain()
        # Another client is served meanwhile.
        await p.status()
        try:
            answer = await asyncio.wait_for(reader.read(300), 0.3)
        except TimeoutError:
            answer = None  # waiting for the rest of a frame that never comes
        if answer:  # an exception reply (function code | 0x80) to a frame it could parse
            assert answer[7] & 0x80, answer
        writer.close()
        # The same port answers a valid request on a new connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", p.emulator.port)
        writer.write(VALID_READ)
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(300), 2)
        assert reply[:2] == b"\x00\x07" and reply[7] == 4 and len(reply) == 9 + 2
        writer.close()
        await p.status()

    run(scenario)


def test_a_garbled_header_closes_only_that_connection() -> None:
    async def scenario(p: Probe) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", p.emulator.port)
        writer.write(b"\x00\x01\x12\x34\x00\x06\x01\x04\x00\x80\x00\x01")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(100), 2) == b""  # closed by the controller
        writer.close()
        assert p.emulator.garbled_frames == 1
        await p.status()

    run(scenario)


def test_unknown_unit_is_answered_with_gateway_no_response() -> None:
    async def scenario(p: Probe) -> None:
        reply = await p.client.read_input_registers(STATUS.address, count=1, device_id=9)
        assert reply.isError() and reply.exception_code == 0x0B

    run(scenario)


def test_a_manual_clock_moves_the_controller_only_when_told() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        async with ControllerEmulator(four_phase(), clock=clock) as emulator:
            client = AsyncModbusTcpClient("127.0.0.1", port=emulator.port, timeout=1, retries=0)
            assert await client.connect()
            probe = Probe(emulator, client)
            try:
                first = await probe.status()
                await asyncio.sleep(0.25)  # real time passes, emulated time does not
                assert await probe.status() == first
                clock.advance(95)  # start-up: 5 s flash, 3 s all-red, then stage 1 green
                status = await probe.status()
                assert status.uptime_s == 9 and status.green_mask == 0b0001
                clock.advance(250)  # stage 1's split: now in stage 2
                assert (await probe.status()).stage == 2
            finally:
                client.close()

    asyncio.run(scenario())
