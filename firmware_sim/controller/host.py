"""Many emulated traffic controllers in one asyncio loop, configured from a typed TOML file.

It owns the host configuration (a pydantic tree, unknown keys forbidden, every field described
and bounded; errors name the key path), turning each entry into a ``ControllerConfig`` and a
traffic generator, and the one shared tick task that paces every emulator — a city simulation
runs hundreds, and 200 tick tasks would cost more than the controllers. It must not contain
signal logic or register handling: ``program`` and ``server`` do.

A host file (``kota sim controller --config city.toml``)::

    time_scale = 1            # emulated seconds per real second
    base_port = 21000         # controllers listen on 21000, 21001, … in file order
    count = 50                # plus 50 generated ones, ids ctl-0001…, from [template]

    [template]
    detectors = 16
    traffic_level = 1.5

    [[controllers]]
    id = "SMG-TUGU-MUDA"
    compatible_pairs = [[1, 3], [2, 4]]   # opposite approaches may run together
    local_actuated = true
    [controllers.local_plan]
    stages = [[1, 3], [2, 4]]
    splits_s = [45, 45]

Programmatic use (tests, benchmarks)::

    config = HostConfig(count=20)                       # 20 four-phase controllers, free ports
    async with ControllerHost(config, clock=RealClock(50)) as host:
        for controller_id, port in host.ports.items(): ...
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.controller.codec import Identity, PhaseTiming, Plan, mask_of
from devices.controller.registers import MAX_DETECTORS, MAX_PHASES, MAX_STAGES
from devices.controller.safety import check_plan, check_timing
from firmware_sim.controller.clock import Clock, RealClock
from firmware_sim.controller.program import ControllerConfig
from firmware_sim.controller.server import (
    ControllerEmulator,
    EmulatorError,
    cancel_task,
    run_ticks,
)
from firmware_sim.controller.traffic import TrafficGenerator

log = logging.getLogger(__name__)

VENDOR = "Kota Pintar"
MODEL = "KP-ATCS emulator"
FIRMWARE = "1.0.0"
MAX_CONTROLLERS = 5000
DEFAULT_GREEN_S = 20.0
MAX_DEFAULT_CYCLE_S = 180.0  # a default local plan stays inside the usual Indonesian cycle band


def _ds(seconds: float) -> int:
    return int(round(seconds * 10))


class HostConfigError(EmulatorError):
    """The host configuration cannot be used; ``problems`` lists (key path, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        super().__init__(f"invalid controller host configuration ({source}):\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimingSettings(_Strict):
    """NTCIP 1202 phase timing in seconds (stored by the controller in deciseconds)."""

    min_green_s: float = Field(7.0, ge=0, le=120, description="minimum green")
    max_green_s: float = Field(60.0, ge=0, le=300, description="maximum green")
    yellow_s: float = Field(3.0, ge=0, le=10, description="yellow change (≥ 3 s in Indonesia)")
    all_red_s: float = Field(2.0, ge=0, le=10, description="red clearance after the yellow")
    ped_walk_s: float = Field(0.0, ge=0, le=60, description="pedestrian walk (0: no signal)")
    ped_clear_s: float = Field(0.0, ge=0, le=60, description="pedestrian clearance")

    def to_phase_timing(self) -> PhaseTiming:
        return PhaseTiming(_ds(self.min_green_s), _ds(self.max_green_s), _ds(self.yellow_s),
                           _ds(self.all_red_s), _ds(self.ped_walk_s), _ds(self.ped_clear_s))


class LocalPlanSettings(_Strict):
    """The controller's own fixed-time plan, run until the control room commits one."""

    number: int = Field(1, ge=1, le=255, description="plan number")
    stages: list[list[int]] | None = Field(
        None, min_length=2, max_length=MAX_STAGES,
        description="phases green together in each stage, in order (default: one phase per "
                    "stage, phase 1 first — the usual Indonesian sequence)")
    splits_s: list[float] | None = Field(
        None, min_length=2, max_length=MAX_STAGES,
        description="per stage: green plus the clearance to the next stage, seconds; they add "
                    "up to the cycle (default: equal greens of up to 20 s)")
    offset_s: float = Field(0.0, ge=0, le=600, description="offset of stage 1 from the common "
                            "time reference")


class ControllerSettings(_Strict):
    """One intersection's controller; also the template for ``count`` controllers."""

    unit_id: int = Field(1, ge=1, le=247, description="Modbus unit id the controller answers")
    phases: int = Field(4, ge=2, le=MAX_PHASES, description="signal phases wired")
    detectors: int = Field(8, ge=0, le=MAX_DETECTORS, description="vehicle detectors (loops)")
    detector_phases: list[int] | None = Field(
        None, max_length=MAX_DETECTORS,
        description="phase each detector calls, in detector order (0: a counting loop; default: "
                    "detector d calls phase ((d-1) mod phases) + 1)")
    compatible_pairs: list[tuple[int, int]] = Field(
        default_factory=list, max_length=120,
        description="phase pairs that may be green together; every other pair conflicts "
                    "(default: none — one phase per approach)")
    timing: TimingSettings = Field(default_factory=TimingSettings,
                                   description="timing of every phase")
    phase_timing: list[TimingSettings] | None = Field(
        None, max_length=MAX_PHASES, description="per-phase timing, one entry per phase "
        "(overrides `timing`)")
    local_plan: LocalPlanSettings = Field(default_factory=LocalPlanSettings,
                                          description="the local fixed-time fallback plan")
    local_actuated: bool = Field(False, description="run the local plan actuated (greens extend "
                                 "on detector calls, up to max green)")
    watchdog_timeout_s: float = Field(30.0, ge=1, le=600, description="central watchdog: fall "
                                      "back to the local plan after this long without a kick")
    traffic_level: float = Field(1.0, ge=0, le=5, description="built-in traffic: 0 none, 1 a "
                                 "busy street (300 veh/h per lane at the 07:00 peak)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="traffic random seed "
                             "(default: the controller's position in the file)")

    @model_validator(mode="after")
    def _consistent(self) -> ControllerSettings:
        if self.detector_phases is not None:
            if len(self.detector_phases) != self.detectors:
                raise ValueError(f"detector_phases has {len(self.detector_phases)} entries for "
                                 f"{self.detectors} detectors")
            for d, p in enumerate(self.detector_phases):
                if not 0 <= p <= self.phases:
                    raise ValueError(f"detector {d + 1} calls phase {p}, not 0..{self.phases}")
        for a, b in self.compatible_pairs:
            if not (1 <= a <= self.phases and 1 <= b <= self.phases) or a == b:
                raise ValueError(f"compatible pair ({a}, {b}) must name two different phases "
                                 f"of 1..{self.phases}")
        if self.phase_timing is not None and len(self.phase_timing) != self.phases:
            raise ValueError(f"phase_timing has {len(self.phase_timing)} entries for "
                             f"{self.phases} phases")
        ident = self.identity("check")
        verdict = check_timing(self.phase_timings(), ident)
        if not verdict.ok:
            raise ValueError(f"unsafe timing: {verdict.reason.name} {verdict.detail}")
        try:
            plan = self.plan()
        except ValueError as exc:
            raise ValueError(f"local_plan: {exc}") from exc
        verdict = check_plan(plan, self.phase_timings(), ident)
        if not verdict.ok:
            raise ValueError(f"local_plan is unsafe: {verdict.reason.name} {verdict.detail}")
        return self

    # -- derived values

    def phase_timings(self) -> tuple[PhaseTiming, ...]:
        entries = self.phase_timing or [self.timing] * self.phases
        return tuple(t.to_phase_timing() for t in entries)

    def conflicts(self) -> tuple[int, ...]:
        rows = list(Identity.all_conflicting(self.phases))
        for a, b in self.compatible_pairs:
            rows[a - 1] &= ~(1 << (b - 1))
            rows[b - 1] &= ~(1 << (a - 1))
        return tuple(rows)

    def call_phases(self) -> tuple[int, ...]:
        if self.detector_phases is not None:
            return tuple(self.detector_phases)
        return tuple(d % self.phases + 1 for d in range(self.detectors))

    def identity(self, serial: str) -> Identity:
        return Identity(vendor=VENDOR, model=MODEL, firmware=FIRMWARE, serial=serial[-12:],
                        phase_count=self.phases, detector_count=self.detectors,
                        local_actuated=self.local_actuated, conflicts=self.conflicts(),
                        detector_phase=self.call_phases())

    def plan(self) -> Plan:
        lp = self.local_plan
        stages = ([mask_of(s) for s in lp.stages] if lp.stages is not None
                  else [1 << k for k in range(self.phases)])
        if lp.splits_s is not None:
            splits = [_ds(s) for s in lp.splits_s]
        else:
            timing = self.phase_timings()
            clearance_s = max(t.yellow_ds + t.all_red_ds for t in timing) / 10
            min_green_s = max(t.min_green_ds for t in timing) / 10
            green_s = min(DEFAULT_GREEN_S, MAX_DEFAULT_CYCLE_S / len(stages) - clearance_s)
            green_s = max(green_s, min_green_s)
            splits = [_ds(green_s + clearance_s)] * len(stages)
        if len(splits) != len(stages):
            raise ValueError(f"{len(stages)} stages but {len(splits)} splits")
        return Plan(lp.number, sum(splits), _ds(lp.offset_s), tuple(stages), tuple(splits))

    def controller_config(self, serial: str) -> ControllerConfig:
        return ControllerConfig(identity=self.identity(serial), timing=self.phase_timings(),
                                local_plan=self.plan(),
                                watchdog_timeout_ds=_ds(self.watchdog_timeout_s))


class ControllerEntry(ControllerSettings):
    """A controller listed in the file: the settings plus who it is and where it listens."""

    id: str = Field(..., min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$",
                    description="controller id (its last 12 characters are the serial number)")
    port: int | None = Field(None, ge=0, le=65535, description="TCP port (0: any free port; "
                             "default: base_port + position, else any free port)")


class HostConfig(_Strict):
    """Top level of the host file: where to listen and which controllers to run."""

    host: str = Field("127.0.0.1", min_length=1, max_length=255,
                      description="address every controller listens on")
    base_port: int | None = Field(None, ge=1, le=65535, description="port of the first "
                                  "controller; the others follow consecutively")
    time_scale: float = Field(1.0, gt=0, le=1000, description="emulated seconds per real second")
    count: int = Field(0, ge=0, le=MAX_CONTROLLERS, description="generate this many identical "
                       "controllers from `template`, after the listed ones")
    id_prefix: str = Field("ctl-", max_length=24, pattern=r"^[A-Za-z0-9_.:-]*$",
                           description="id of generated controllers: prefix + 4-digit number")
    template: ControllerSettings = Field(default_factory=ControllerSettings,
                                         description="settings of the generated controllers "
                                         "(default: four phases, eight detectors)")
    controllers: list[ControllerEntry] = Field(default_factory=list, max_length=MAX_CONTROLLERS,
                                               description="controllers listed one by one")

    @model_validator(mode="after")
    def _some(self) -> HostConfig:
        if self.count + len(self.controllers) == 0:
            raise ValueError("no controllers: give `count` or at least one [[controllers]]")
        if self.count + len(self.controllers) > MAX_CONTROLLERS:
            raise ValueError(f"more than {MAX_CONTROLLERS} controllers")
        return self

    def entries(self) -> list[ControllerEntry]:
        """Every controller, listed ones first, each with its port resolved."""
        out: list[ControllerEntry] = []
        generated = [
            ControllerEntry(id=f"{self.id_prefix}{i + 1:04d}", **self.template.model_dump())
            for i in range(self.count)
        ]
        for index, entry in enumerate([*self.controllers, *generated]):
            port = entry.port
            if port is None:
                port = self.base_port + index if self.base_port is not None else 0
            out.append(entry.model_copy(update={"port": port}))
        return out


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]) or "(root)",
             "unknown key" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors(include_url=False)]


def validate_host_config(raw: Mapping[str, Any], source: str = "host config") -> HostConfig:
    """Validate a raw tree; raise HostConfigError naming each bad key path."""
    try:
        config = HostConfig.model_validate(raw)
    except ValidationError as exc:
        raise HostConfigError(source, _problems(exc)) from exc
    problems: list[tuple[str, str]] = []
    seen_ids: dict[str, int] = {}
    seen_ports: dict[int, int] = {}
    for index, entry in enumerate(config.entries()):
        where = (f"controllers.{index}" if index < len(config.controllers)
                 else f"count (generated controller {entry.id})")
        if entry.id in seen_ids:
            problems.append((f"{where}.id", f"{entry.id!r} is also controller "
                             f"{seen_ids[entry.id]}"))
        seen_ids.setdefault(entry.id, index)
        assert entry.port is not None
        if entry.port > 65535:
            problems.append((f"{where}.port" if index < len(config.controllers) else "base_port",
                             f"port {entry.port} beyond 65535"))
        elif entry.port:
            if entry.port in seen_ports:
                problems.append((f"{where}.port", f"port {entry.port} is also used by "
                                 f"controller {seen_ports[entry.port]}"))
            seen_ports.setdefault(entry.port, index)
    if problems:
        raise HostConfigError(source, problems)
    return config


def load_host_config(path: Path) -> HostConfig:
    """Read and validate a host TOML file."""
    source = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise HostConfigError(source, [("(file)", "no such file")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise HostConfigError(source, [("(file)", f"not valid TOML: {exc}")]) from exc
    return validate_host_config(raw, source)


class ControllerHost:
    """Every controller of a ``HostConfig`` in this process's event loop, one tick task for all."""

    def __init__(self, config: HostConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or RealClock(config.time_scale)
        self.emulators: list[ControllerEmulator] = []
        for index, entry in enumerate(config.entries()):
            seed = entry.seed if entry.seed is not None else index
            traffic = None
            if entry.traffic_level > 0 and entry.detectors:
                traffic = TrafficGenerator(entry.call_phases(), level=entry.traffic_level,
                                           seed=seed, wall_s=self.clock.wall_s,
                                           start_ds=self.clock.now_ds())
            assert entry.port is not None
            self.emulators.append(ControllerEmulator(
                entry.controller_config(entry.id), clock=self.clock, host=config.host,
                port=entry.port, unit_id=entry.unit_id, traffic=traffic, name=entry.id))
        self._by_id = {e.name: e for e in self.emulators}
        self._tick_task: asyncio.Task[None] | None = None

    def __getitem__(self, controller_id: str) -> ControllerEmulator:
        return self._by_id[controller_id]

    def __len__(self) -> int:
        return len(self.emulators)

    @property
    def ports(self) -> dict[str, int]:
        """Controller id → bound port (after ``start``)."""
        return {e.name: e.port for e in self.emulators}

    async def start(self) -> None:
        """Listen on every port; if one cannot, stop those already started and raise."""
        try:
            for emulator in self.emulators:
                await emulator.start(tick=False)
        except BaseException:
            await self.stop()
            raise
        self._tick_task = asyncio.create_task(run_ticks(self.clock, self.tick),
                                              name="controller host tick")
        log.info("%d controllers listening on %s", len(self.emulators), self.config.host)

    async def stop(self) -> None:
        await cancel_task(self._tick_task)
        self._tick_task = None
        for emulator in self.emulators:
            if emulator.running:
                await emulator.stop()

    async def __aenter__(self) -> ControllerHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def tick(self) -> None:
        now = self.clock.now_ds()
        for emulator in self.emulators:
            emulator.tick(now)



def host_config_for(count: int, *, base_port: int | None = None, host: str = "127.0.0.1",
                    time_scale: float = 1.0, **template: Any) -> HostConfig:
    """``count`` identical controllers (template fields as keywords), validated."""
    raw: dict[str, Any] = {"count": count, "host": host, "time_scale": time_scale,
                           "template": template}
    if base_port is not None:
        raw["base_port"] = base_port
    return validate_host_config(raw, "arguments")


def describe(entries: Sequence[ControllerEmulator]) -> list[str]:
    """One line per controller: what listens where."""
    return [f"{e.name}: {e.host}:{e.port} unit {e.unit_id}, {e.config.identity.phase_count} "
            f"phases, {e.config.identity.detector_count} detectors" for e in entries]
