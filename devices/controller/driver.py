"""Async Modbus TCP driver for the traffic signal controller (pymodbus 3.16 client).

It reads and writes through the register map and the codec, checks plans and timing against
the controller's own limits before sending (the same ``safety`` rules the controller applies),
and confirms every command through the result registers. It owns one connection: timeouts,
reconnect with exponential back-off, typed errors from ``devices.controller.errors``. It knows
nothing of MQTT or the edge agent.

Request plan (Modbus reads carry at most 125 registers):
  identity + conflict matrix + detector call phases   1 read  (input 0..119)
  status + detectors                                  1 read up to 31 detectors, else 2–3
  plan write                                          shadow block (1 write), mailbox (1 write),
                                                      status (1 read) to confirm by sequence number
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from devices.controller import codec
from devices.controller.codec import (
    Command,
    Identity,
    PhaseTiming,
    Plan,
    Snapshot,
    Status,
)
from devices.controller.errors import (
    CodecError,
    CommandNotConfirmed,
    CommandRejected,
    ControllerConnectionError,
    ControllerProtocolError,
    ControllerTimeout,
)
from devices.controller.registers import (
    CONTROL,
    DETECTOR_CONFIG,
    DETECTORS,
    IDENTITY,
    LOCAL_PLAN,
    MAILBOX,
    MODBUS_MAX_READ,
    RUNNING_PLAN,
    SHADOW_PLAN,
    STATUS,
    TIMING,
    CommandCode,
    CommandResult,
    Reason,
    Table,
)
from devices.controller.safety import check_phase_timing, check_plan

log = logging.getLogger(__name__)

ILLEGAL_VALUE = 3  # Modbus exception code: the controller refused the value (reason in status)
ILLEGAL_ADDRESS = 2


class PlanTarget(enum.StrEnum):
    CENTRAL = "central"  # runs now (at the next safe point), under the central watchdog
    LOCAL = "local"  # becomes the controller's fallback plan


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What the result registers said about one command."""

    seq: int
    code: CommandCode
    result: CommandResult  # APPLIED or PENDING (a refusal raises CommandRejected)
    status: Status  # the status read that confirmed it


class ControllerClient:
    """One traffic controller reached over Modbus TCP.

    Use as ``async with ControllerClient(host, port) as c: snap = await c.snapshot()``. Calls
    are serialised on the connection, so a multi-step command never interleaves with a poll.
    """

    def __init__(
        self,
        host: str,
        port: int = 502,
        unit: int = 1,
        *,
        timeout_s: float = 1.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        if not 0 <= unit <= 255:
            raise ValueError(f"unit id {unit} outside 0..255")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.host, self.port, self.unit = host, port, unit
        self.timeout_s = timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._backoff_s = backoff_initial_s
        self._next_attempt = 0.0  # monotonic time before which no reconnect is tried
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._identity: Identity | None = None
        self._seq: int | None = None
        self.requests = 0  # Modbus requests sent (for the benchmark and the technician view)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} unit {self.unit}"

    # ------------------------------------------------------------------ connection

    async def __aenter__(self) -> ControllerClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        """Connect now (ignoring the back-off); raises ControllerConnectionError."""
        self._next_attempt = 0.0
        await self._ensure_connected()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _ensure_connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        now = time.monotonic()
        if now < self._next_attempt:
            raise ControllerConnectionError(
                f"controller {self.where} unreachable; next attempt in "
                f"{self._next_attempt - now:.1f} s")
        self.close()
        # pymodbus' own reconnect loop is off (reconnect_delay=0): the back-off is ours, so a
        # poller calling once a second does not hammer a controller that is down.
        client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s,
                                      retries=0, reconnect_delay=0, reconnect_delay_max=0)
        try:
            ok = await asyncio.wait_for(client.connect(), self.timeout_s + 0.5)
        except (TimeoutError, OSError) as exc:
            ok = False
            log.debug("connect to %s failed: %s", self.where, exc)
        if not ok:
            client.close()
            self._next_attempt = time.monotonic() + self._backoff_s
            delay, self._backoff_s = self._backoff_s, min(self._backoff_s * 2, self._backoff_max_s)
            raise ControllerConnectionError(
                f"cannot connect to controller {self.where}; next attempt after {delay:.1f} s — "
                "check the address, the cabling and that the controller is powered")
        self._backoff_s = self._backoff_initial_s
        self._client = client
        return client

    def _drop(self) -> None:
        """After a timeout the connection may deliver a stale reply later: start afresh."""
        self.close()

    # ------------------------------------------------------------------ raw register access

    async def _request(self, table: Table | None, address: int, count: int = 0,
                       values: Sequence[int] | None = None) -> list[int]:
        client = await self._ensure_connected()
        self.requests += 1
        try:
            if values is not None:
                reply = await client.write_registers(address, list(values), device_id=self.unit)
            elif table is Table.INPUT:
                reply = await client.read_input_registers(address, count=count, device_id=self.unit)
            else:
                reply = await client.read_holding_registers(address, count=count,
                                                            device_id=self.unit)
        except ModbusIOException as exc:
            self._drop()
            raise ControllerTimeout(f"controller {self.where} did not answer within "
                                    f"{self.timeout_s:g} s") from exc
        except (ConnectionException, OSError) as exc:
            self._drop()
            raise ControllerConnectionError(f"connection to controller {self.where} lost: "
                                            f"{exc}") from exc
        except ModbusException as exc:
            self._drop()
            raise ControllerProtocolError(f"controller {self.where}: {exc}") from exc
        if reply.isError():
            code = getattr(reply, "exception_code", None)
            raise ControllerProtocolError(
                f"controller {self.where} answered Modbus exception {code} "
                f"to {'a write' if values is not None else 'a read'} at {address}", code)
        if values is not None:
            return []
        regs = list(reply.registers)
        if len(regs) != count:
            self._drop()
            raise ControllerProtocolError(f"controller {self.where}: asked {count} registers, "
                                          f"got {len(regs)}")
        return regs

    async def read(self, table: Table, address: int, count: int) -> list[int]:
        """Registers ``address`` .. ``address+count-1``, split into requests of at most 125."""
        out: list[int] = []
        while count > 0:
            n = min(count, MODBUS_MAX_READ)
            out.extend(await self._request(table, address, n))
            address += n
            count -= n
        return out

    async def write(self, address: int, values: Sequence[int]) -> None:
        """Holding registers, one request (a block must be written whole to be judged whole)."""
        await self._request(None, address, values=values)

    # ------------------------------------------------------------------ reads

    async def identity(self, *, refresh: bool = False) -> Identity:
        """Identity, conflict matrix and detector call phases (one read; cached)."""
        async with self._lock:
            return await self._identity_locked(refresh)

    async def _identity_locked(self, refresh: bool = False) -> Identity:
        if self._identity is None or refresh:
            regs = await self.read(Table.INPUT, IDENTITY.address, DETECTOR_CONFIG.end)
            a, b = IDENTITY.size, IDENTITY.size + 16
            try:
                self._identity = codec.decode_identity(regs[:a], regs[a:b], regs[b:])
            except CodecError as exc:
                raise ControllerProtocolError(f"controller {self.where}: bad identity: "
                                              f"{exc}") from exc
        return self._identity

    async def snapshot(self) -> Snapshot:
        """Status and every detector, in as few reads as the map allows."""
        async with self._lock:
            ident = await self._identity_locked()
            count = STATUS.size + DETECTORS.stride * ident.detector_count
            regs = await self.read(Table.INPUT, STATUS.address, count)
            try:
                return codec.decode_snapshot(regs, ident.detector_count)
            except CodecError as exc:
                raise ControllerProtocolError(f"controller {self.where}: bad status: "
                                              f"{exc}") from exc

    async def status(self) -> Status:
        async with self._lock:
            return await self._status_locked()

    async def _status_locked(self) -> Status:
        regs = await self.read(Table.INPUT, STATUS.address, STATUS.size)
        try:
            return codec.decode_status(regs)
        except CodecError as exc:
            raise ControllerProtocolError(f"controller {self.where}: bad status: {exc}") from exc

    async def timing(self) -> tuple[PhaseTiming, ...]:
        async with self._lock:
            return await self._timing_locked()

    async def _timing_locked(self) -> tuple[PhaseTiming, ...]:
        ident = await self._identity_locked()
        regs = await self.read(Table.HOLDING, TIMING.address, TIMING.stride * ident.phase_count)
        try:
            return codec.decode_timing(regs, ident.phase_count)
        except CodecError as exc:
            raise ControllerProtocolError(f"controller {self.where}: bad timing: {exc}") from exc

    async def plan(self, which: str = "running") -> Plan:
        """The ``running``, ``local`` or ``shadow`` plan."""
        block = {"running": RUNNING_PLAN, "local": LOCAL_PLAN, "shadow": SHADOW_PLAN}[which]
        async with self._lock:
            regs = await self.read(Table.HOLDING, block.address, block.size)
        try:
            return codec.decode_plan(regs)
        except CodecError as exc:
            raise ControllerProtocolError(f"controller {self.where}: bad {which} plan: "
                                          f"{exc}") from exc

    async def watchdog_timeout_ds(self) -> int:
        async with self._lock:
            regs = await self.read(Table.HOLDING, CONTROL.address, 1)
        return regs[0]

    # ------------------------------------------------------------------ writes and commands

    async def kick_watchdog(self) -> None:
        """Feed the central watchdog (the edge does this only while the control room is alive)."""
        async with self._lock:
            await self.write(CONTROL.address_of("watchdog_kick"), [1])

    async def set_watchdog_timeout(self, timeout_ds: int) -> None:
        f = CONTROL.field("watchdog_timeout_ds")
        if not f.low <= timeout_ds <= f.high:
            raise CommandRejected(Reason.OUT_OF_RANGE, f"watchdog timeout {timeout_ds} ds outside "
                                  f"{f.low}..{f.high}")
        async with self._lock:
            await self._write_judged(CONTROL.address, [timeout_ds])

    async def write_timing(self, timing: Sequence[PhaseTiming]) -> None:
        """Replace the timing of phases 1..len(timing); refused as a whole if unsafe."""
        async with self._lock:
            ident = await self._identity_locked()
            if len(timing) != ident.phase_count:
                raise CommandRejected(Reason.OUT_OF_RANGE, f"{len(timing)} phase timings for a "
                                      f"{ident.phase_count}-phase controller")
            for i, t in enumerate(timing):
                verdict = check_phase_timing(i + 1, t, ident)
                if not verdict.ok:
                    raise CommandRejected(verdict.reason, verdict.detail)
            await self._write_judged(TIMING.address, codec.encode_timing(timing))

    async def write_plan(self, plan: Plan, target: PlanTarget = PlanTarget.CENTRAL, *,
                         precheck: bool = True) -> CommandOutcome:
        """Shadow block, commit, confirm: APPLIED, or PENDING until the next safe point.

        With ``precheck`` the plan is judged against the controller's identity and timing first,
        so an unsafe plan never leaves this machine; ``precheck=False`` lets a technician see the
        controller's own refusal.
        """
        try:
            regs = codec.encode_plan(plan)
        except CodecError as exc:
            raise CommandRejected(Reason.OUT_OF_RANGE, str(exc)) from exc
        async with self._lock:
            if precheck:
                ident = await self._identity_locked()
                verdict = check_plan(plan, await self._timing_locked(), ident)
                if not verdict.ok:
                    raise CommandRejected(verdict.reason, verdict.detail)
            await self.write(SHADOW_PLAN.address, regs)
            code = CommandCode.COMMIT_CENTRAL if target is PlanTarget.CENTRAL else CommandCode.COMMIT_LOCAL
            return await self._command_locked(code)

    async def command(self, code: CommandCode, phase: int = 0, duration_ds: int = 0) -> CommandOutcome:
        """One mailbox command (HOLD, FORCE, FLASH, RELEASE, CLEAR_FAULT), confirmed."""
        if code in (CommandCode.COMMIT_CENTRAL, CommandCode.COMMIT_LOCAL):
            raise ValueError("plans go through write_plan, which fills the shadow block first")
        async with self._lock:
            return await self._command_locked(code, phase, duration_ds)

    async def hold(self, phase: int, duration_ds: int = 0) -> CommandOutcome:
        return await self.command(CommandCode.HOLD, phase, duration_ds)

    async def force(self, phase: int) -> CommandOutcome:
        return await self.command(CommandCode.FORCE, phase)

    async def flash(self, duration_ds: int = 0) -> CommandOutcome:
        return await self.command(CommandCode.FLASH, 0, duration_ds)

    async def release(self) -> CommandOutcome:
        return await self.command(CommandCode.RELEASE)

    async def clear_fault(self) -> CommandOutcome:
        return await self.command(CommandCode.CLEAR_FAULT)

    async def wait_applied(self, plan_number: int, timeout_s: float, poll_s: float = 0.2) -> Status:
        """Poll until the running plan is ``plan_number`` (after a PENDING commit)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = await self.status()
            if status.plan == plan_number and status.pending_plan == 0:
                return status
            if time.monotonic() >= deadline:
                raise CommandNotConfirmed(f"controller {self.where}: plan {plan_number} not in force "
                                          f"after {timeout_s:g} s (running plan {status.plan}, "
                                          f"pending {status.pending_plan})")
            await asyncio.sleep(poll_s)

    async def _next_seq(self) -> int:
        if self._seq is None:
            # Continue after the controller's last sequence so a restarted driver never reuses one.
            self._seq = (await self._status_locked()).last_seq
        self._seq = self._seq % 0xFFFF + 1  # 1..65535; 0 means "no command yet"
        return self._seq

    async def _command_locked(self, code: CommandCode, phase: int = 0,
                              duration_ds: int = 0) -> CommandOutcome:
        seq = await self._next_seq()
        try:
            regs = codec.encode_command(Command(seq, code, phase, duration_ds))
        except CodecError as exc:
            raise CommandRejected(Reason.OUT_OF_RANGE, str(exc)) from exc
        refused = False
        try:
            await self.write(MAILBOX.address, regs)
        except ControllerProtocolError as exc:
            if exc.exception_code != ILLEGAL_VALUE:
                raise
            refused = True
        status = await self._status_locked()
        if status.last_seq != seq:
            raise CommandNotConfirmed(f"controller {self.where}: command {code.name} seq {seq} "
                                      f"not confirmed (result register shows seq {status.last_seq})")
        if refused or status.last_result is CommandResult.REJECTED:
            raise CommandRejected(status.last_reason, f"{code.name} refused by the controller")
        return CommandOutcome(seq, code, status.last_result, status)

    async def _write_judged(self, address: int, values: Sequence[int]) -> None:
        """A write the controller may refuse (exception 3): raise its reason code."""
        try:
            await self.write(address, values)
        except ControllerProtocolError as exc:
            if exc.exception_code != ILLEGAL_VALUE:
                raise
            status = await self._status_locked()
            raise CommandRejected(status.last_reason, "refused by the controller") from exc
