"""The emulated traffic controller on the wire: one pymodbus 3.16 Modbus TCP server per controller.

It owns the register image (built from ``devices.controller.registers`` with ``SimDevice`` /
``SimData``), the judgement of each write through the signal program, the pacing of the program
and its traffic, and faults on demand (silent link, slow answers, reboot, detector and lamp
faults). It must not hold signal logic (``program`` does) nor encode registers by hand (``codec``
does), so the emulator and the driver cannot disagree about the map. Real clients — pymodbus,
``kota device controller``, the edge agent — talk to it unmodified.

Every read, from the wire or from ``server.async_getValues``, passes through the ``action``
callback, which first brings the program up to the clock and rewrites the registers it covers;
so a read is always fresh to the decisecond, and the tick (10 Hz of emulated time) only keeps
the program and the traffic moving — it does not re-encode registers nobody reads, which is
what keeps hundreds of controllers in one process cheap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.controller import codec
from devices.controller.codec import Command, Plan
from devices.controller.errors import CodecError
from devices.controller.registers import (
    CONFLICTS,
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
    Block,
    CommandCode,
    Reason,
)
from firmware_sim.controller.clock import Clock, RealClock
from firmware_sim.controller.program import (
    ControllerConfig,
    DetectorFault,
    LampState,
    SignalProgram,
)
from firmware_sim.controller.traffic import TrafficSource

log = logging.getLogger(__name__)

TICK_DS = 1  # the program and the traffic advance every 0.1 s of emulated time
MIN_TICK_REAL_S = 0.01  # … but a scaled clock is not ticked faster than 100 Hz of real time
MBAP_MAX_LENGTH = 254  # unit id + a PDU of at most 253 bytes (Modbus TCP v1.0b, 3.1.3)

# Function codes the controller serves; coils, discrete inputs, mask-write and read/write
# multiple are refused as a real register-only controller does (exception 1).
READ_HOLDING, READ_INPUT, WRITE_SINGLE, WRITE_MULTIPLE = 3, 4, 6, 16
SERVED_FUNCTIONS = frozenset({READ_HOLDING, READ_INPUT, WRITE_SINGLE, WRITE_MULTIPLE})

HOLDING_BLOCKS: tuple[Block, ...] = (CONTROL, MAILBOX, TIMING, SHADOW_PLAN, RUNNING_PLAN,
                                     LOCAL_PLAN)
READ_ONLY_HOLDING = (RUNNING_PLAN, LOCAL_PLAN)


class EmulatorError(Exception):
    """Root of the emulator's own errors (bad use of the emulator, not a refused Modbus write)."""


class EmulatorStartError(EmulatorError):
    """The emulator could not listen (port taken, address not local)."""


async def run_ticks(clock: Clock, tick: Callable[[], None]) -> None:
    """Call ``tick`` every TICK_DS of emulated time (at most 100 Hz of real time) until cancelled."""
    period_s = max(MIN_TICK_REAL_S, clock.real_s(TICK_DS))
    while True:
        tick()
        await asyncio.sleep(period_s)


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def _overlaps(block: Block, address: int, count: int) -> bool:
    return address < block.end and block.address < address + count


def _mbap_problem(buffer: bytes) -> str | None:
    """Why the bytes at the start of a connection's buffer cannot be a Modbus TCP frame, if so.

    pymodbus waits for more data after a header with a wrong protocol id or an impossible
    length, and every later request on that connection would queue behind the garbage; a
    controller resynchronises by dropping the connection instead.
    """
    if len(buffer) >= 4 and buffer[2:4] != b"\0\0":
        return f"protocol id {int.from_bytes(buffer[2:4], 'big')} (Modbus is 0)"
    if len(buffer) >= 6:
        length = int.from_bytes(buffer[4:6], "big")
        if not 2 <= length <= MBAP_MAX_LENGTH:
            return f"MBAP length {length} outside 2..{MBAP_MAX_LENGTH}"
    return None


class _ControllerConnection(ServerRequestHandler):
    """One client connection: pymodbus' handler plus the link faults and frame hygiene."""

    server: _ControllerModbusServer

    def callback_data(self, data: bytes, addr: tuple | None = None) -> int:
        emulator = self.server.emulator
        if not emulator.answering:
            return len(data)  # the link is down: requests vanish, the client times out
        problem = _mbap_problem(data)
        if problem is not None:
            emulator.garbled_frames += 1
            log.warning("controller %s: garbled frame from a client (%s); closing that "
                        "connection — the client must reconnect", emulator.name, problem)
            self.close()
            return len(data)
        used = super().callback_data(data, addr)
        pdu = self.last_pdu
        if pdu is not None:
            refusal = self._refusal(pdu)
            if refusal is not None:
                self.last_pdu = None  # handle_request (already scheduled) then does nothing
                self.server_send(ExceptionResponse(pdu.function_code & 0x7F, refusal,
                                                   device_id=pdu.dev_id,
                                                   transaction=pdu.transaction_id), addr)
        return used

    def _refusal(self, pdu: ModbusPDU) -> ExcCodes | None:
        emulator = self.server.emulator
        if isinstance(pdu, ExceptionResponse):  # a client cannot send an exception response
            emulator.garbled_frames += 1
            return ExcCodes.ILLEGAL_FUNCTION
        if pdu.dev_id != emulator.unit_id:
            # What a gateway answers for a unit it does not reach; without it pymodbus fails a
            # lookup and answers "device failure" with a traceback in the log.
            return ExcCodes.GATEWAY_NO_RESPONSE
        if pdu.function_code not in SERVED_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        return None

    def server_send(self, pdu: ModbusPDU | None, addr: tuple | None) -> None:
        emulator = self.server.emulator
        if pdu is None or not emulator.answering:
            return
        if emulator.reply_delay_s > 0:
            self.loop.call_later(emulator.reply_delay_s, self._send_late, pdu, addr)
        else:
            super().server_send(pdu, addr)

    def _send_late(self, pdu: ModbusPDU, addr: tuple | None) -> None:
        if self.transport is not None and self.server.emulator.answering:
            super().server_send(pdu, addr)


class _ControllerModbusServer(ModbusTcpServer):
    """ModbusTcpServer whose connections are ``_ControllerConnection``s."""

    def __init__(self, emulator: ControllerEmulator, device: SimDevice,
                 address: tuple[str, int]) -> None:
        super().__init__(device, address=address)
        self.emulator = emulator

    def callback_new_connection(self) -> _ControllerConnection:
        return _ControllerConnection(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class ControllerEmulator:
    """One emulated traffic controller: a SignalProgram behind a Modbus TCP server.

    ``async with ControllerEmulator(config, clock=RealClock(50)) as emu: emu.port`` — port 0
    (the default) binds a free port, read back from ``port``. Started with ``tick=False`` the
    emulator does not pace itself: a ``ControllerHost`` ticks many from one task.
    """

    def __init__(
        self,
        config: ControllerConfig,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int = 1,
        traffic: TrafficSource | None = None,
        name: str = "",
    ) -> None:
        if not 1 <= unit_id <= 247:
            raise ValueError(f"unit id {unit_id} outside 1..247 (Modbus serial/TCP unit range)")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} outside 0..65535")
        self.config = config
        self.clock: Clock = clock or RealClock()
        self.host = host
        self.requested_port = port
        self.unit_id = unit_id
        self.traffic = traffic
        self.name = name or config.identity.serial or "controller"
        self._program: SignalProgram | None = None
        self._server: _ControllerModbusServer | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._inputs: list[int] | None = None  # the device's input-register list (pymodbus')
        self._holding: list[int] | None = None
        self._input_start = 0
        self._holding_start = 0
        self._program_ds = 0  # emulated time the program and its traffic have reached
        self._green_mask = 0
        self._comms_down_until: float | None = None  # monotonic s; inf: until restored
        self.reply_delay_s = 0.0
        self.garbled_frames = 0  # frames dropped or refused as garbage (for tests and logs)

    # ------------------------------------------------------------------ life cycle

    @property
    def program(self) -> SignalProgram:
        if self._program is None:
            raise EmulatorError(f"controller {self.name} is not started")
        return self._program

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when started on port 0)."""
        if self._server is None or self._server.transport is None:
            raise EmulatorError(f"controller {self.name} is not listening")
        sockets = getattr(self._server.transport, "sockets", ())
        return int(sockets[0].getsockname()[1])

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self, *, tick: bool = True) -> None:
        """Build the program and the register image, listen, and (with ``tick``) pace itself."""
        if self._server is not None:
            raise EmulatorError(f"controller {self.name} is already started")
        now = self.clock.now_ds()
        self._program = SignalProgram(self.config, now, on_lamps=self._on_lamps)
        self._program_ds = now
        lamps = self._program.lamps
        self._green_mask = lamps.green_mask if lamps is not None else 0
        address = (self.host, self.requested_port)
        server = _ControllerModbusServer(self, self._build_device(), address)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            server.close()
            raise EmulatorStartError(
                f"controller {self.name}: cannot listen on {self.host}:{self.requested_port} — "
                "is the port taken or the address not local?") from exc
        self._server = server
        # One read through pymodbus hands the action the device's register lists; from then on
        # the emulator writes into them directly, as the action is documented to do.
        await server.async_getValues(self.unit_id, READ_INPUT, IDENTITY.address, 1)
        await server.async_getValues(self.unit_id, READ_HOLDING, CONTROL.address, 1)
        self._fill_static()
        if tick:
            self._tick_task = asyncio.create_task(run_ticks(self.clock, self.tick),
                                                  name=f"controller {self.name} tick")
        log.info("controller %s listening on %s:%d unit %d", self.name, self.host, self.port,
                 self.unit_id)

    async def stop(self) -> None:
        await cancel_task(self._tick_task)
        self._tick_task = None
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def __aenter__(self) -> ControllerEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def tick(self, now_ds: int | None = None) -> None:
        """Bring the traffic and the program up to ``now_ds`` (default: the clock's now)."""
        self._catch_up(self.clock.now_ds() if now_ds is None else now_ds)

    # ------------------------------------------------------------------ faults on demand

    @property
    def answering(self) -> bool:
        until = self._comms_down_until
        if until is None:
            return True
        if time.monotonic() >= until:
            self._comms_down_until = None
            log.info("controller %s: link restored", self.name)
            return True
        return False

    def drop_comms(self, duration_s: float | None = None) -> None:
        """Stop answering (requests vanish, clients time out) for ``duration_s`` real s or until
        ``restore_comms``. Connections stay open, as with a cut cable behind a switch."""
        self._comms_down_until = (float("inf") if duration_s is None
                                  else time.monotonic() + duration_s)
        log.info("controller %s: link dropped %s", self.name,
                 "until restored" if duration_s is None else f"for {duration_s:g} s")

    def restore_comms(self) -> None:
        if self._comms_down_until is not None:
            log.info("controller %s: link restored", self.name)
        self._comms_down_until = None

    def slow_answers(self, delay_ms: float) -> None:
        """Delay every reply by ``delay_ms`` (0 restores prompt answers)."""
        if delay_ms < 0:
            raise ValueError("a delay is not negative")
        self.reply_delay_s = delay_ms / 1000.0

    def reboot(self, *, drop_connections: bool = False) -> None:
        """Power-cycle the controller: the program restarts (start-up flash, uptime 0)."""
        now = self.clock.now_ds()
        self._catch_up(now)
        self.program.reboot(now)
        self._fill_static()
        if drop_connections and self._server is not None:
            for connection in list(self._server.active_connections.values()):
                connection.close()
        log.info("controller %s rebooted", self.name)

    def set_detector_fault(self, detector: int, fault: DetectorFault) -> None:
        """Detector ``detector`` (1-based) goes stuck-on, stuck-off, chatters, or heals."""
        now = self.clock.now_ds()
        self._catch_up(now)
        self.program.set_detector_fault(now, detector, fault)

    def inject_lamp_fault(self, phase: int) -> None:
        """A lamp of ``phase`` fails: the controller goes to fail-safe flash."""
        now = self.clock.now_ds()
        self._catch_up(now)
        self.program.inject_lamp_fault(now, phase)

    def set_presence(self, detector: int, present: bool) -> None:
        """Put a vehicle on (or off) a loop by hand; best with ``traffic=None``."""
        now = self.clock.now_ds()
        self._catch_up(now)
        self.program.set_presence(now, detector, present)

    # ------------------------------------------------------------------ program pacing

    def _on_lamps(self, lamps: LampState) -> None:
        """The program put out new lamps: the traffic needs only which phases are green."""
        self._green_mask = lamps.green_mask

    def _catch_up(self, now_ds: int) -> None:
        program = self.program
        # The host's tick reads the clock once for all controllers; a request in between may
        # already have brought this one further. The program's time never goes back.
        now_ds = max(now_ds, self._program_ds)
        if self.traffic is not None and now_ds > self._program_ds:
            # The lamps are taken as they are at the start of the step (a tick, 0.1 s of
            # emulated time); each presence change then lands at its own decisecond.
            for at_ds, detector, present in self.traffic.step(self._program_ds, now_ds,
                                                              self._green_mask):
                program.set_presence(at_ds, detector, present)
        self._program_ds = now_ds
        program.advance(now_ds)

    # ------------------------------------------------------------------ the register image

    def _build_device(self) -> SimDevice:
        def regs(block: Block, *, readonly: bool = False) -> SimData:
            return SimData(block.address, count=block.size, values=0,
                           datatype=DataType.REGISTERS, readonly=readonly)

        coil = [SimData(0, count=1, values=False, datatype=DataType.BITS, readonly=True)]
        holding = [regs(b, readonly=b in READ_ONLY_HOLDING) for b in HOLDING_BLOCKS]
        # Identity, conflicts and detector config are one contiguous run (the driver reads them
        # in one request), as are status and detectors; the gaps between runs are invalid
        # addresses (exception 2), as on the real map.
        inputs = [SimData(IDENTITY.address, count=DETECTOR_CONFIG.end - IDENTITY.address,
                          values=0, datatype=DataType.REGISTERS),
                  SimData(STATUS.address, count=DETECTORS.end - STATUS.address, values=0,
                          datatype=DataType.REGISTERS)]
        return SimDevice(id=self.unit_id, simdata=(coil, list(coil), holding, inputs),
                         action=self._action)

    def _put(self, table: list[int] | None, start: int, address: int,
             values: Sequence[int]) -> None:
        if table is None:
            raise EmulatorError("register image not captured yet")
        at = address - start
        table[at:at + len(values)] = values

    def _fill_static(self) -> None:
        """Identity, conflicts, detector config, watchdog timeout, timing and plans."""
        program = self.program
        for name, values in codec.encode_identity(program.identity).items():
            block = {IDENTITY.name: IDENTITY, CONFLICTS.name: CONFLICTS,
                     DETECTOR_CONFIG.name: DETECTOR_CONFIG}[name]
            self._put(self._inputs, self._input_start, block.address, values)
        self._refresh_holding(0, 0xFFFF)
        self._refresh_inputs(STATUS.address, STATUS.size + DETECTORS.size, self.clock.now_ds())

    def _refresh_inputs(self, address: int, count: int, now_ds: int) -> None:
        program = self.program
        if _overlaps(STATUS, address, count):
            self._put(self._inputs, self._input_start, STATUS.address,
                      codec.encode_status(program.status(now_ds)))
        if _overlaps(DETECTORS, address, count):
            self._put(self._inputs, self._input_start, DETECTORS.address,
                      codec.encode_detectors(program.detectors(now_ds)))

    def _refresh_holding(self, address: int, count: int) -> None:
        program = self.program
        timeout_at = CONTROL.address_of("watchdog_timeout_ds")
        if address <= timeout_at < address + count:
            self._put(self._holding, self._holding_start, timeout_at,
                      [program.watchdog_timeout_ds])
        if _overlaps(TIMING, address, count):
            regs = codec.encode_timing(program.timing)
            self._put(self._holding, self._holding_start, TIMING.address,
                      regs + [0] * (TIMING.size - len(regs)))
        for block, plan in ((RUNNING_PLAN, program.running_plan),
                            (LOCAL_PLAN, program.local_plan)):
            if _overlaps(block, address, count):
                self._put(self._holding, self._holding_start, block.address,
                          codec.encode_plan(plan))

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], values: list[int] | list[bool] | None
                      ) -> ExcCodes | None:
        """pymodbus calls this on every access of the device, before it reads or writes."""
        if function_code == READ_INPUT:
            self._inputs, self._input_start = registers, start_address
        elif function_code in (READ_HOLDING, WRITE_SINGLE, WRITE_MULTIPLE):
            self._holding, self._holding_start = registers, start_address
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        now = self.clock.now_ds()
        self._catch_up(now)
        if values is None:
            if function_code == READ_INPUT:
                self._refresh_inputs(address, count, now)
            else:
                self._refresh_holding(address, count)
            return None
        return self._judge_write(now, address, [int(v) for v in values])

    # ------------------------------------------------------------------ writes

    def _judge_write(self, now_ds: int, address: int, values: list[int]) -> ExcCodes | None:
        """Accept (None: pymodbus stores the values) or refuse a holding-register write."""
        count = len(values)
        if _overlaps(SHADOW_PLAN, address, count):
            return None  # scratch: stored as written, judged only when committed
        if _overlaps(MAILBOX, address, count):
            return self._mailbox(now_ds, address, values)
        if _overlaps(TIMING, address, count):
            return self._timing(now_ds, address, values)
        if _overlaps(CONTROL, address, count):
            return self._control(now_ds, address, values)
        return ExcCodes.ILLEGAL_ADDRESS  # not reached: the map's gaps are invalid addresses

    def _refuse(self, now_ds: int, reason: Reason, detail: str) -> ExcCodes:
        self.program.record_rejection(now_ds, reason)
        log.info("controller %s refused a write: %s (%s)", self.name, reason.name, detail)
        return ExcCodes.ILLEGAL_VALUE

    def _control(self, now_ds: int, address: int, values: list[int]) -> ExcCodes | None:
        timeout_at = CONTROL.address_of("watchdog_timeout_ds")
        kick_at = CONTROL.address_of("watchdog_kick")
        written = dict(zip(range(address, address + len(values)), values, strict=True))
        if timeout_at in written:
            verdict = self.program.set_watchdog_timeout(now_ds, written[timeout_at])
            if not verdict.ok:
                log.info("controller %s refused watchdog timeout %d ds: %s", self.name,
                         written[timeout_at], verdict.reason.name)
                return ExcCodes.ILLEGAL_VALUE
        if kick_at in written:
            self.program.kick_watchdog(now_ds)
        return None

    def _timing(self, now_ds: int, address: int, values: list[int]) -> ExcCodes | None:
        program = self.program
        phases = program.identity.phase_count
        first = (address - TIMING.address) // TIMING.stride + 1
        last = (address + len(values) - 1 - TIMING.address) // TIMING.stride + 1
        if last > phases:
            return self._refuse(now_ds, Reason.UNKNOWN_PHASE, f"timing of phase {last} on a "
                                f"{phases}-phase controller")
        # A write of some registers is merged with the timing in force and judged as a whole.
        merged = codec.encode_timing(program.timing)
        at = address - TIMING.address
        merged[at:at + len(values)] = values
        try:
            timing = codec.decode_timing(merged, phases)
        except CodecError as exc:
            return self._refuse(now_ds, Reason.OUT_OF_RANGE, str(exc))
        verdict = program.set_timing(now_ds, timing)
        if not verdict.ok:
            log.info("controller %s refused timing of phases %d..%d: %s %s", self.name, first,
                     last, verdict.reason.name, verdict.detail)
            return ExcCodes.ILLEGAL_VALUE
        return None

    def _mailbox(self, now_ds: int, address: int, values: list[int]) -> ExcCodes | None:
        if address != MAILBOX.address or len(values) != MAILBOX.size:
            return self._refuse(now_ds, Reason.BAD_COMMAND, f"{len(values)} mailbox registers "
                                f"at {address}; a command is all {MAILBOX.size} in one write")
        try:
            command = codec.decode_command(values)
        except CodecError as exc:
            return self._refuse_command(now_ds, values, str(exc))
        shadow: Plan | None = None
        if command.code in (CommandCode.COMMIT_CENTRAL, CommandCode.COMMIT_LOCAL):
            if self._holding is None:
                raise EmulatorError("register image not captured yet")
            at = SHADOW_PLAN.address - self._holding_start
            try:
                shadow = codec.decode_plan(self._holding[at:at + SHADOW_PLAN.size])
            except CodecError as exc:
                # A shadow block that does not even decode (stage count above 16): judged as a
                # plan with a bad stage sequence, under the command's sequence number.
                self.program.execute(now_ds, command, None)
                self.program.record_rejection(now_ds, Reason.BAD_SEQUENCE)
                log.info("controller %s refused %s seq %d: shadow plan does not decode (%s)",
                         self.name, command.code.name, command.seq, exc)
                return ExcCodes.ILLEGAL_VALUE
        verdict = self.program.execute(now_ds, command, shadow)
        self._refresh_holding(RUNNING_PLAN.address, LOCAL_PLAN.end - RUNNING_PLAN.address)
        if not verdict.ok:
            log.info("controller %s refused command %s seq %d: %s %s", self.name,
                     command.code.name, command.seq, verdict.reason.name, verdict.detail)
            return ExcCodes.ILLEGAL_VALUE
        return None

    def _refuse_command(self, now_ds: int, values: list[int], detail: str) -> ExcCodes:
        """A mailbox write whose code does not decode still answers its sequence number.

        The program judges the raw code itself (BAD_COMMAND) and records seq, result and reason.
        """
        raw = Command(values[0], values[1], values[2], values[3])  # type: ignore[arg-type]
        verdict = self.program.execute(now_ds, raw, None)
        log.info("controller %s refused command seq %d: %s (%s)", self.name, values[0],
                 verdict.reason.name, detail)
        return ExcCodes.ILLEGAL_VALUE
