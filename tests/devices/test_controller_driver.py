"""The Modbus driver and the technician CLI against the emulated controller, on loopback.

Real peers: our driver (pymodbus' async client underneath) and `kota device controller` as a
subprocess, talking Modbus TCP to `firmware_sim.controller` on a free port. The emulator runs
on a scaled clock (×50), so a 90 s cycle passes in under two seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from devices.controller.codec import Identity, PhaseTiming, Plan, encode_timing
from devices.controller.driver import ControllerClient, PlanTarget
from devices.controller.errors import (
    CommandRejected,
    ControllerConnectionError,
    ControllerProtocolError,
    ControllerTimeout,
)
from devices.controller.registers import (
    ALARM_BITS,
    TIMING,
    CommandResult,
    ModeReason,
    Override,
    Reason,
    UnitMode,
)
from firmware_sim.controller.clock import RealClock
from firmware_sim.controller.program import ControllerConfig, DetectorFault
from firmware_sim.controller.server import ControllerEmulator

SCALE = 50.0
TIMING4 = (PhaseTiming(min_green_ds=70, max_green_ds=600, yellow_ds=30, all_red_ds=20),) * 4
LOCAL = Plan.one_phase_per_stage(1, [250, 250, 200, 200])  # 90 s
CENTRAL = Plan.one_phase_per_stage(3, [300, 200, 200, 200], offset_ds=0)  # 90 s, longer stage 1


def config(detectors: int = 8) -> ControllerConfig:
    ident = Identity("Kota Pintar", "SIM-ATCS", "1.0.0", "KP-TEST", 4, detectors,
                     conflicts=Identity.all_conflicting(4),
                     detector_phase=tuple(d % 4 + 1 for d in range(detectors)))
    return ControllerConfig(identity=ident, timing=TIMING4, local_plan=LOCAL,
                            watchdog_timeout_ds=300)


@asynccontextmanager
async def controller(detectors: int = 8, scale: float = SCALE,
                     timeout_s: float = 1.0) -> AsyncIterator[tuple[ControllerEmulator, ControllerClient]]:
    emu = ControllerEmulator(config(detectors), clock=RealClock(scale))
    await emu.start()
    client = ControllerClient("127.0.0.1", emu.port, timeout_s=timeout_s, backoff_initial_s=0.2)
    try:
        await client.connect()
        yield emu, client
    finally:
        client.close()
        await emu.stop()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- reads


def test_identity_and_poll_take_one_request_each() -> None:
    async def go() -> None:
        async with controller(detectors=8) as (_, c):
            before = c.requests
            ident = await c.identity()
            assert (ident.vendor, ident.phase_count, ident.detector_count) == ("Kota Pintar", 4, 8)
            assert ident.conflicts_with(1, 2) and ident.detector_phase[:5] == (1, 2, 3, 4, 1)
            snap = await c.snapshot()
            assert c.requests - before == 2
            assert snap.status.mode is UnitMode.LOCAL_FIXED or snap.status.mode is UnitMode.FLASH
            assert len(snap.detectors) == 8
            lamps = snap.status.lamps(4)
            assert lamps.count("G") <= 1  # every phase conflicts with every other
    run(go)


def test_forty_detectors_take_two_requests() -> None:
    async def go() -> None:
        async with controller(detectors=40) as (_, c):
            await c.identity()
            before = c.requests
            snap = await c.snapshot()
            assert c.requests - before == 2 and len(snap.detectors) == 40
    run(go)


def test_heartbeat_and_cycle_run_on_the_emulated_clock() -> None:
    async def go() -> None:
        async with controller() as (_, c):
            first = await c.status()
            await asyncio.sleep(0.2)  # 10 s emulated
            later = await c.status()
            assert 8 <= (later.heartbeat - first.heartbeat) & 0xFFFF <= 14
            assert later.uptime_s > first.uptime_s
    run(go)


# --------------------------------------------------------------------------- plans


def test_plan_commits_at_the_safe_point_and_is_confirmed() -> None:
    async def go() -> None:
        async with controller() as (_, c):
            await c.kick_watchdog()
            outcome = await c.write_plan(CENTRAL)
            assert outcome.result in (CommandResult.PENDING, CommandResult.APPLIED)
            assert outcome.status.last_seq == outcome.seq
            if outcome.result is CommandResult.PENDING:
                assert outcome.status.pending_plan == CENTRAL.number
                assert outcome.status.plan == LOCAL.number  # the running plan goes on until then
            status = await c.wait_applied(CENTRAL.number, timeout_s=5.0, poll_s=0.05)
            assert status.mode is UnitMode.CENTRAL
            assert status.cycle_ds == 900
            assert await c.plan("running") == CENTRAL
            assert status.last_result is CommandResult.APPLIED
    run(go)


def test_local_plan_replaced() -> None:
    async def go() -> None:
        async with controller() as (_, c):
            new_local = Plan.one_phase_per_stage(2, [200, 200, 200, 200])
            await c.write_plan(new_local, PlanTarget.LOCAL)
            assert await c.plan("local") == new_local
    run(go)


UNSAFE = [
    (Plan.one_phase_per_stage(4, [100, 300, 250, 250]), Reason.MIN_GREEN),
    (Plan(4, 900, 0, (0b0011, 0b0100, 0b1000), (300, 300, 300)), Reason.CONFLICTING_STAGE),
    (Plan(4, 900, 0, (1, 2, 4, 8), (300, 200, 200, 190)), Reason.SPLITS_NOT_CYCLE),
    (Plan(4, 3000, 0, (1, 2, 4, 8), (750, 750, 750, 750)), Reason.CYCLE_OUT_OF_RANGE),
    (Plan(4, 900, 0, (1, 2, 4, 32), (300, 200, 200, 200)), Reason.UNKNOWN_PHASE),
    (Plan(4, 900, 950, (1, 2, 4, 8), (300, 200, 200, 200)), Reason.OFFSET_OUT_OF_RANGE),
    (Plan(4, 900, 0, (1, 2, 4), (300, 300, 300)), Reason.PHASE_NOT_SERVED),
]


@pytest.mark.parametrize("plan, reason", UNSAFE, ids=[r.name for _, r in UNSAFE])
def test_unsafe_plan_refused_with_reason_and_running_plan_unchanged(plan: Plan, reason: Reason) -> None:
    async def go() -> None:
        async with controller() as (_, c):
            running = await c.plan("running")
            # The driver's pre-check refuses it before anything is written …
            writes_before = c.requests
            with pytest.raises(CommandRejected) as pre:
                await c.write_plan(plan)
            assert pre.value.reason is reason
            assert c.requests - writes_before == 2  # identity and timing read, nothing written
            # … and the controller itself refuses it (Modbus exception 3 + reason code).
            with pytest.raises(CommandRejected) as own:
                await c.write_plan(plan, precheck=False)
            assert own.value.reason is reason
            status = await c.status()
            assert status.last_result is CommandResult.REJECTED and status.last_reason is reason
            assert status.pending_plan == 0
            assert await c.plan("running") == running
            assert status.plan == running.number
    run(go)


def test_unsafe_timing_write_refused_by_the_controller() -> None:
    async def go() -> None:
        async with controller() as (_, c):
            short_yellow = (PhaseTiming(yellow_ds=25),) + TIMING4[1:]
            with pytest.raises(CommandRejected) as pre:
                await c.write_timing(short_yellow)
            assert pre.value.reason is Reason.YELLOW_TOO_SHORT
            # A client that skips the pre-check gets exception 3 and the reason in the status.
            with pytest.raises(ControllerProtocolError) as raw:
                await c.write(TIMING.address, encode_timing(short_yellow))
            assert raw.value.exception_code == 3
            assert (await c.status()).last_reason is Reason.YELLOW_TOO_SHORT
            with pytest.raises(ControllerProtocolError):
                await c.write(TIMING.address, encode_timing((PhaseTiming(min_green_ds=20),) * 4))
            assert (await c.status()).last_reason is Reason.MIN_GREEN
            assert await c.timing() == TIMING4
            # A safe change is taken.
            longer = (PhaseTiming(min_green_ds=80, max_green_ds=600, yellow_ds=40, all_red_ds=20),) * 4
            await c.write_timing(longer)
            assert await c.timing() == longer
    run(go)


# --------------------------------------------------------------------------- overrides


def test_every_override_confirmed_and_followed() -> None:
    async def go() -> None:
        async with controller() as (_, c):
            async def green_is(phase: int) -> bool:
                st = await c.status()
                return st.green_mask == 1 << (phase - 1)

            outcome = await c.hold(2)
            assert outcome.result in (CommandResult.APPLIED, CommandResult.PENDING)
            await until(lambda: green_is(2), 3, "phase 2 green under hold")
            st = await c.status()
            assert st.override is Override.HOLD and st.override_phase == 2 and st.held
            await asyncio.sleep(0.5)  # 25 s emulated: still held
            assert await green_is(2)

            await c.release()
            await until(lambda: green_is(3), 3, "plan continues to phase 3 after release")
            assert (await c.status()).override is Override.NONE

            await c.force(1)
            await until(lambda: green_is(1), 3, "forced to phase 1")

            await c.flash()
            async def flashing() -> bool:
                st = await c.status()
                return st.mode is UnitMode.FLASH and st.flash_mask == 0b1111 and st.green_mask == 0
            await until(flashing, 3, "flash override")
            assert (await c.status()).mode_reason is ModeReason.OVERRIDE
            await c.release()
            await until(lambda: _not_flash(c), 3, "leaves flash")

            with pytest.raises(CommandRejected) as bad:
                await c.hold(9)
            assert bad.value.reason is Reason.UNKNOWN_PHASE
    run(go)


async def _not_flash(c: ControllerClient) -> bool:
    return (await c.status()).mode is not UnitMode.FLASH


def test_conflict_monitor_flash_and_technician_reset() -> None:
    async def go() -> None:
        async with controller() as (emu, c):
            await until(lambda: _not_flash(c), 3, "start-up over")
            emu.inject_lamp_fault(3)
            async def fault_flash() -> bool:
                st = await c.status()
                return st.mode is UnitMode.FLASH and st.mode_reason is ModeReason.INTERNAL_FAULT
            await until(fault_flash, 3, "conflict monitor flash")
            st = await c.status()
            # A green driver stuck on a red phase is a dual indication (lamp fault); once another
            # phase turns green it would be a conflict: either way the monitor flashes.
            assert st.alarms >> ALARM_BITS["internal_fault"] & 1
            with pytest.raises(CommandRejected) as refused:
                await c.hold(1)
            assert refused.value.reason is Reason.NOT_PERMITTED
            await c.clear_fault()
            await until(lambda: _not_flash(c), 3, "back to the plan after clear-fault")
    run(go)


# --------------------------------------------------------------------------- watchdog


def test_watchdog_fallback_and_recovery() -> None:
    async def go() -> None:
        async with controller() as (_, c):
            await c.set_watchdog_timeout(300)  # 30 s emulated = 0.6 s real
            assert await c.watchdog_timeout_ds() == 300
            kicking = True

            async def kicker() -> None:
                while True:
                    if kicking:
                        await c.kick_watchdog()
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(kicker())
            try:
                await c.write_plan(CENTRAL)
                await c.wait_applied(CENTRAL.number, timeout_s=5, poll_s=0.05)
                kicking = False  # the control room is gone

                async def fell_back() -> bool:
                    st = await c.status()
                    return (st.mode is UnitMode.LOCAL_FIXED and st.mode_reason is ModeReason.WATCHDOG
                            and st.plan == LOCAL.number)
                await until(fell_back, 6, "fallback to the local plan")
                assert (await c.status()).alarms >> ALARM_BITS["watchdog_expired"] & 1

                kicking = True  # the control room is back

                async def recovered() -> bool:
                    st = await c.status()
                    return st.mode is UnitMode.CENTRAL and st.plan == CENTRAL.number
                await until(recovered, 6, "central plan resumed")
            finally:
                task.cancel()
    run(go)


# --------------------------------------------------------------------------- failures


def test_silent_controller_times_out_then_recovers() -> None:
    async def go() -> None:
        async with controller(timeout_s=0.3) as (emu, c):
            await c.snapshot()
            emu.drop_comms()
            with pytest.raises(ControllerTimeout):
                await c.snapshot()
            emu.restore_comms()
            await until(lambda: _answers(c), 5, "answers again")
    run(go)


async def _answers(c: ControllerClient) -> bool:
    try:
        await c.snapshot()
    except (ControllerConnectionError, ControllerTimeout):
        return False
    return True


def test_unreachable_controller_backs_off() -> None:
    async def go() -> None:
        async with controller() as (emu, c):
            port = emu.port
        client = ControllerClient("127.0.0.1", port, timeout_s=0.3, backoff_initial_s=1.0)
        with pytest.raises(ControllerConnectionError, match="cannot connect"):
            await client.status()
        started = time.monotonic()
        with pytest.raises(ControllerConnectionError, match="next attempt in"):
            await client.status()  # within the back-off: no new connection attempt
        assert time.monotonic() - started < 0.1
    run(go)


def test_slow_answers_still_within_timeout() -> None:
    async def go() -> None:
        async with controller(timeout_s=1.0) as (emu, c):
            emu.slow_answers(200)
            started = time.monotonic()
            await c.status()
            assert 0.2 <= time.monotonic() - started < 1.0
    run(go)


def test_detector_fault_reported_in_the_poll() -> None:
    async def go() -> None:
        async with controller() as (emu, c):
            emu.set_detector_fault(2, DetectorFault.STUCK_ON)

            async def flagged() -> bool:
                snap = await c.snapshot()
                return snap.detectors[1].faulty and bool(
                    snap.status.alarms >> ALARM_BITS["detector_fault"] & 1)
            # max presence 120 s emulated = 2.4 s real
            await until(flagged, 6, "stuck-on detector flagged")
            snap = await c.snapshot()
            assert snap.detectors[1].occupancy_permille == 1000
    run(go)


# --------------------------------------------------------------------------- the technician CLI


async def kota(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kota", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_cli_status_plan_override_and_errors() -> None:
    async def go() -> None:
        async with controller() as (emu, c):
            # Each `kota` call starts a Python process (~0.5 s real, 25 s emulated): the
            # default 30 s watchdog would lapse between calls and drop plan 5 for the local plan.
            await c.set_watchdog_timeout(6000)
            port = str(emu.port)
            rc, out, _ = await kota("device", "controller", "status", "--port", port)
            assert rc == 0 and "Kota Pintar SIM-ATCS" in out and "signals" in out

            rc, out, _ = await kota("device", "controller", "status", "--port", port, "--json")
            data = json.loads(out)
            assert rc == 0 and data["identity"]["phase_count"] == 4
            assert len(data["status"]["signal"]) == 4

            rc, out, _ = await kota("device", "controller", "detectors", "--port", port, "--json")
            assert rc == 0 and len(json.loads(out)) == 8

            rc, out, _ = await kota("device", "controller", "plan", "write", "--port", port,
                                    "--number", "5", "--splits", "30,20,20,20", "--wait", "10")
            assert rc == 0 and "plan 5 is running" in out, out

            rc, out, _ = await kota("device", "controller", "plan", "show", "--port", port, "--json")
            assert rc == 0 and json.loads(out)["splits_ds"] == [300, 200, 200, 200]

            rc, out, _ = await kota("device", "controller", "plan", "write", "--port", port,
                                    "--number", "6", "--splits", "5,35,25,25", "--json")
            assert rc == 4 and json.loads(out)["reason"] == "MIN_GREEN"
            assert (await c.plan("running")).number == 5

            rc, out, _ = await kota("device", "controller", "override", "hold", "--phase", "2",
                                    "--port", port)
            assert rc == 0 and "hold:" in out
            await until(lambda: _held(c, 2), 3, "hold from the CLI")

            rc, out, _ = await kota("device", "controller", "watch", "--port", port, "--count", "2",
                                    "--interval", "0.1")
            assert rc == 0 and len(out.strip().splitlines()) == 2

            rc, _, err = await kota("device", "controller", "override", "hold", "--port", port)
            assert rc == 2 and "--phase" in err
        rc, _, err = await kota("device", "controller", "status", "--port", port, "--timeout", "0.5")
        assert rc == 1 and "cannot connect" in err
    run(go)


async def _held(c: ControllerClient, phase: int) -> bool:
    st = await c.status()
    return st.override is Override.HOLD and st.green_mask == 1 << (phase - 1)


def test_cli_map_is_generated_from_the_table() -> None:
    async def go() -> None:
        rc, out, _ = await kota("device", "controller", "map")
        assert rc == 0 and "| 128 | 30129 | mode | UnitMode |" in out
    run(go)
