"""SUMO in the loop: a city in SUMO whose traffic lights are emulated controllers on Modbus TCP.

Owns one run: start SUMO (libsumo) on a ``.sumocfg``, discover its lights, reload it with a
stop-line loop on every signalised lane, start one ``ControllerEmulator`` per light (its own
loopback port, all in one asyncio loop on a thread of their own, on a ``ManualClock`` this
world advances), then every 1 s SUMO step: SUMO shows each controller's lamps, steps, and the
vehicles that crossed each loop are pushed into that controller's ``PresenceFeed``. The
controllers' lamps are the truth — SUMO never runs its own program. It also writes the layout
and the edge config, and at the end the RESCO trip metrics. It must not control the signals
itself (edge agents and the control room do, through Modbus) nor import edge, control room
service or CLI code.

libsumo is one simulation per process: one CityWorld at a time. SUMO is only ever called from
one thread at a time (``start``/``stop`` on the caller's, steps on the stepping thread between).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from firmware_sim.controller.clock import ManualClock
from firmware_sim.controller.program import LampState
from firmware_sim.controller.server import ControllerEmulator
from firmware_sim.controller.traffic import PresenceFeed
from simulators.city.layout import (
    ControllerEndpoint,
    LaneGeometry,
    build_layout,
    edge_config,
    write_json,
)
from simulators.city.mapping import DS_PER_S, SignalMap, map_lights
from simulators.city.network import CityFiles, DemoCity, write_demo_city
from simulators.traffic.detectors import LOOP_SETBACK_M, NEVER_RESET_S
from simulators.traffic.discovery import discover
from simulators.traffic.errors import ScenarioError, TrafficSimError
from simulators.traffic.metrics import TripMetrics, trip_metrics
from simulators.traffic.runner import sumo_api
from simulators.traffic.scenario import Scenario

log = logging.getLogger(__name__)

T = TypeVar("T")
StepHook = Callable[[Any, float], None]  # (api, sim time s) after every step; for tests


class CityWorldError(TrafficSimError):
    """The city world cannot start or was used out of order."""


@dataclass(frozen=True)
class CityOptions:
    """How a city world runs."""

    time_scale: float | None = None  # simulated s per real s; None: as fast as it goes
    seed: int = 1
    end_s: float | None = None  # SUMO time to stop at (default: the scenario's, ≤ 1 h)
    host: str = "127.0.0.1"
    base_port: int | None = None  # controller k on base_port + k; None or 0: free ports
    unit_id: int = 1
    local_actuated: bool = False
    watchdog_timeout_s: float = 30.0
    city: str = "Demo"
    names: dict[str, str] = field(default_factory=dict)  # tls id → intersection name
    corridors: tuple[tuple[str, ...], ...] = ()  # chains of tls ids, upstream first
    tripinfo: Path | None = None  # default: in the run directory

    def __post_init__(self) -> None:
        if self.time_scale is not None and not self.time_scale > 0:
            raise CityWorldError(f"time scale {self.time_scale}: positive, or None for "
                                 "as fast as possible")
        if not 1 <= self.unit_id <= 247:
            raise CityWorldError(f"unit id {self.unit_id} outside 1..247")
        if self.base_port is not None and not 0 <= self.base_port <= 65535:
            raise CityWorldError(f"base port {self.base_port} outside 1..65535 (0: free ports)")


@dataclass(frozen=True)
class CityResult:
    """What a finished run measured."""

    begin_s: float
    end_s: float  # where the simulation stopped
    steps: int
    wall_s: float
    tripinfo: Path | None  # None: written in the run directory, gone with it
    metrics: TripMetrics


@dataclass
class _Loop:
    """One stop-line loop: which vehicles are on it now."""

    loop_id: str
    detector: int  # 1-based
    on: set[str] = field(default_factory=set)


class _LoopReader:
    """Turns SUMO's per-step loop data into presence changes at decisecond resolution."""

    def __init__(self, api: Any, loops: Sequence[Sequence[_Loop]], begin_s: float) -> None:
        self._api = api
        self._loops = loops
        self._begin_s = begin_s

    def _ds(self, t_s: float) -> int:
        return int(round((t_s - self._begin_s) * DS_PER_S))

    def read(self, t0_s: float) -> list[list[tuple[int, int, bool]]]:
        """Per controller, the presence changes of the step that began at ``t0_s``."""
        out: list[list[tuple[int, int, bool]]] = []
        get = self._api.inductionloop.getVehicleData
        for loops in self._loops:
            changes: list[tuple[int, int, bool]] = []
            for loop in loops:
                events: list[tuple[float, int, str]] = []
                seen: set[str] = set()
                for vid, _length, entry, leave, _type in get(loop.loop_id):
                    seen.add(vid)
                    old = vid in loop.on
                    if not old:
                        events.append((max(entry, t0_s), 1, vid))
                    if leave >= 0:
                        # Order at equal times: a vehicle already on leaves before one enters
                        # (a new rising edge), one that enters leaves after its own entry.
                        events.append((max(leave, t0_s), 0 if old else 2, vid))
                for vid in loop.on - seen:  # gone without leaving (teleported, removed)
                    events.append((t0_s, 0, vid))
                if not events:
                    continue
                events.sort()
                before = bool(loop.on)
                for at_s, kind, vid in events:
                    if kind == 1:
                        loop.on.add(vid)
                    else:
                        loop.on.discard(vid)
                    now = bool(loop.on)
                    if now != before:
                        changes.append((self._ds(at_s), loop.detector, now))
                        before = now
            changes.sort(key=lambda c: c[0])
            out.append(changes)
        return out


def _write_loops(maps: Sequence[SignalMap], lengths: dict[str, float], path: Path
                 ) -> list[list[_Loop]]:
    rows = ["<additional>"]
    loops: list[list[_Loop]] = []
    for i, sm in enumerate(maps):
        mine = []
        for d, lane in enumerate(sm.lanes):
            loop_id = f"kp_city_{i}_{d + 1}"
            pos = max(0.0, lengths[lane] - LOOP_SETBACK_M)
            rows.append(f'  <inductionLoop id="{loop_id}" lane="{lane}" pos="{pos:.2f}" '
                        f'period="{NEVER_RESET_S}" file="/dev/null"/>')
            mine.append(_Loop(loop_id, d + 1))
        loops.append(mine)
    rows.append("</additional>")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return loops


class CityWorld:
    """SUMO plus one emulated controller per traffic light; see the module docstring.

    ``world = CityWorld(sumocfg, CityOptions(time_scale=1.0)); world.start()`` — then
    ``world.endpoints`` (Modbus addresses) and ``world.layout`` are ready; ``world.run()``
    steps on a thread until the end or ``world.stop()``, which returns the ``CityResult``.
    Tests step synchronously with ``world.advance(n)`` instead of ``run``.
    """

    def __init__(self, sumocfg: str | Path, options: CityOptions | None = None) -> None:
        self.options = options or CityOptions()
        self.scenario = Scenario.from_sumocfg(sumocfg)
        self.end_s = self.scenario.horizon_s(self.options.end_s)
        self.maps: tuple[SignalMap, ...] = ()
        self.emulators: list[ControllerEmulator] = []
        self.layout: dict[str, Any] = {}
        self.endpoints: list[ControllerEndpoint] = []
        self.t_s = self.scenario.begin_s
        self.steps = 0
        self.step_hook: StepHook | None = None
        self._api: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tripinfo: Path | None = None
        self._clock = ManualClock()
        self._feeds: list[PresenceFeed] = []
        self._reader: _LoopReader | None = None
        self._pending: list[list[tuple[int, int, bool]]] = []
        self._shown: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._step_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._wall0 = 0.0
        self._result: CityResult | None = None

    @classmethod
    def generated(cls, directory: str | Path, options: CityOptions | None = None, *,
                  city: DemoCity | None = None) -> CityWorld:
        """A world on the demo city, written into ``directory`` for ``options.seed``."""
        options = options or CityOptions()
        return cls.of_city(write_demo_city(directory, seed=options.seed, city=city), options)

    @classmethod
    def of_city(cls, files: CityFiles, options: CityOptions | None = None) -> CityWorld:
        """A world on a demo city already written: its names and its corridor."""
        return cls(files.sumocfg, _with_city(options or CityOptions(), files))

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Load SUMO, start the controllers; ``endpoints`` and ``layout`` are then ready."""
        if self._api is not None:
            raise CityWorldError("this city world is already started")
        api = sumo_api()
        self._tmp = tempfile.TemporaryDirectory(prefix="kota-city-")
        run_dir = Path(self._tmp.name)
        opts = self.options
        self._tripinfo = (Path(opts.tripinfo).resolve() if opts.tripinfo is not None
                          else run_dir / "tripinfo.xml")
        self._tripinfo.parent.mkdir(parents=True, exist_ok=True)
        errors = (api.TraCIException, api.FatalTraCIError)
        probe = self.scenario.command(seed=opts.seed, end_s=self.end_s, run_dir=run_dir)
        try:
            api.start(probe)
        except errors as e:
            self._cleanup()
            raise ScenarioError(f"SUMO could not load {self.scenario.sumocfg}: {e}; run the "
                                f"same command by hand to see why: {' '.join(probe)}") from e
        self._api = api
        try:
            lights = discover(api)
            if not lights:
                raise CityWorldError(f"{self.scenario.sumocfg}: no traffic light with two or "
                                     "more green phases; nothing for a controller to run")
            self.maps = map_lights(lights, local_actuated=opts.local_actuated,
                                   watchdog_timeout_ds=int(round(opts.watchdog_timeout_s * 10)))
            if not self.maps:
                raise CityWorldError(f"{self.scenario.sumocfg}: no traffic light an emulated "
                                     "controller can run (see the warnings above)")
            lanes = {ln: LaneGeometry(float(api.lane.getWidth(ln)),
                                      float(api.lane.getLength(ln)),
                                      float(api.lane.getMaxSpeed(ln)))
                     for tl in lights for ln in (*tl.incoming_lanes, *tl.outgoing_lanes)}
            positions = {tl.tls_id: _position(api, tl.tls_id, tl.incoming_lanes)
                         for tl in lights}
            loops = _write_loops(self.maps, {ln: g.length_m for ln, g in lanes.items()},
                                 run_dir / "kota-city-loops.add.xml")
            cmd = self.scenario.command(seed=opts.seed, end_s=self.end_s, run_dir=run_dir,
                                        tripinfo=self._tripinfo,
                                        extra_additional=(run_dir / "kota-city-loops.add.xml",))
            api.load(cmd[1:])
            self.t_s = float(api.simulation.getTime())
            self._reader = _LoopReader(api, loops, self.scenario.begin_s)
            self._pending = [[] for _ in self.maps]
            self._shown = [""] * len(self.maps)
            self._start_controllers()
            self.layout = build_layout(self.maps, city=opts.city, positions=positions,
                                       lanes=lanes, names=opts.names, corridors=opts.corridors)
        except BaseException:
            self._shutdown_sumo()
            self._stop_controllers()
            self._cleanup()
            raise
        self._wall0 = time.monotonic()
        self._show()  # the controllers' start-up lamps, before the first step
        log.info("city world: %d intersections on %s, SUMO %g..%g s", len(self.maps),
                 opts.host, self.t_s, self.end_s)

    def run(self) -> None:
        """Step on a thread of its own until the end or ``stop``."""
        if self._api is None:
            raise CityWorldError("start the city world before running it")
        if self._step_thread is not None:
            raise CityWorldError("the city world is already running")
        self._step_thread = threading.Thread(target=self._run, name="city world steps",
                                             daemon=True)
        self._step_thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the run to reach its end; True when it has (or failed: see ``stop``)."""
        return self._done.wait(timeout_s)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def stop(self) -> CityResult:
        """Stop stepping, close SUMO (writing the tripinfo), stop the controllers; the metrics.

        Raises the stepping thread's error, if it failed."""
        if self._result is not None:
            return self._result
        if self._api is None:
            raise CityWorldError("the city world was never started")
        self._stop.set()
        if self._step_thread is not None:
            self._step_thread.join()
        try:
            self._shutdown_sumo()
            self._stop_controllers()
            if self._error is not None:
                raise CityWorldError(f"the city world failed at {self.t_s:g} s: "
                                     f"{self._error}") from self._error
            assert self._tripinfo is not None
            metrics = trip_metrics(self._tripinfo, self.scenario.route_files, self.t_s,
                                   self.scenario.begin_s)
            kept = self._tripinfo if self.options.tripinfo is not None else None
            self._result = CityResult(self.scenario.begin_s, self.t_s, self.steps,
                                      time.monotonic() - self._wall0, kept, metrics)
        finally:
            self._cleanup()
        return self._result

    def __enter__(self) -> CityWorld:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._api is not None or self._loop is not None:
            try:
                self.stop()
            except TrafficSimError:
                if exc[0] is None:
                    raise
                log.exception("city world: stopping after an error failed too")

    # ------------------------------------------------------------------ stepping

    def advance(self, steps: int = 1) -> None:
        """Run ``steps`` SUMO steps now, on the calling thread (tests; not while ``run``s)."""
        if self._api is None:
            raise CityWorldError("start the city world before stepping it")
        if self._step_thread is not None:
            raise CityWorldError("the city world is running on its own thread")
        for _ in range(steps):
            if self.t_s >= self.end_s:
                break
            self._step()

    def _run(self) -> None:
        scale = self.options.time_scale
        real0 = time.monotonic()
        sim0 = self.t_s
        try:
            while not self._stop.is_set() and self.t_s < self.end_s:
                self._step()
                if scale is not None:
                    due = real0 + (self.t_s - sim0) / scale
                    wait = due - time.monotonic()
                    if wait > 0:
                        self._stop.wait(wait)
        except BaseException as e:  # reported by stop(); the thread must not die silently
            self._error = e
            log.exception("city world: stepping failed at %g s", self.t_s)
        finally:
            self._done.set()

    def _step(self) -> None:
        api = self._api
        api.simulationStep()
        t0, self.t_s = self.t_s, float(api.simulation.getTime())
        self.steps += 1
        assert self._reader is not None
        self._pending = self._reader.read(t0)
        self._show()
        if self.step_hook is not None:
            self.step_hook(api, self.t_s)
        if self.t_s >= self.end_s:
            self._done.set()

    def _show(self) -> None:
        """Bring the controllers to now (with the loop changes of the last step) and show their
        lamps in SUMO for the next step."""
        now_ds = int(round((self.t_s - self.scenario.begin_s) * DS_PER_S))
        states = self._on_loop(self._controllers_at(now_ds, self._pending))
        self._pending = [[] for _ in self.maps]
        for i, (sm, state) in enumerate(zip(self.maps, states, strict=True)):
            if state != self._shown[i]:
                self._api.trafficlight.setRedYellowGreenState(sm.tls_id, state)
                self._shown[i] = state

    async def _controllers_at(self, now_ds: int, changes: list[list[tuple[int, int, bool]]]
                              ) -> list[str]:
        for feed, mine in zip(self._feeds, changes, strict=True):
            for at_ds, detector, present in mine:
                feed.push(at_ds, detector, present)
        self._clock.set(max(now_ds, self._clock.now_ds()))
        states = []
        for sm, emu in zip(self.maps, self.emulators, strict=True):
            emu.tick(now_ds)
            states.append(sm.sumo_state(emu.program.lamps))
        return states

    # ------------------------------------------------------------------ controllers

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            raise CityWorldError("the controllers are not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _start_controllers(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._loop_thread = threading.Thread(target=serve, name="city controllers",
                                             daemon=True)
        self._loop_thread.start()
        ready.wait()
        opts = self.options
        self._feeds = [PresenceFeed(len(sm.lanes)) for sm in self.maps]
        base = opts.base_port or None
        if base is not None and base + len(self.maps) - 1 > 65535:
            raise CityWorldError(f"base port {base}: {len(self.maps)} controllers do not fit "
                                 "below 65536")
        self.emulators = [
            ControllerEmulator(sm.config, clock=self._clock, host=opts.host,
                               port=base + k if base is not None else 0,
                               unit_id=opts.unit_id, traffic=feed, name=sm.intersection_id)
            for k, (sm, feed) in enumerate(zip(self.maps, self._feeds, strict=True))]

        async def start_all() -> None:
            for emu in self.emulators:
                await emu.start(tick=False)  # this world paces them, step by step

        self._on_loop(start_all())
        self.endpoints = [
            ControllerEndpoint(sm.intersection_id, sm.tls_id,
                               opts.names.get(sm.tls_id, sm.tls_id), opts.host, emu.port,
                               emu.unit_id, sm.phase_count, len(sm.lanes))
            for sm, emu in zip(self.maps, self.emulators, strict=True)]

    def _stop_controllers(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def stop_all() -> None:
            for emu in self.emulators:
                if emu.running:
                    await emu.stop()

        try:
            self._on_loop(stop_all())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join()
            loop.close()
            self._loop = None
            self._loop_thread = None

    # ------------------------------------------------------------------ the controllers, safely

    def on_controller(self, intersection_id: str, action: Callable[[ControllerEmulator], T]) -> T:
        """Run ``action(emulator)`` on the controllers' loop (their only thread) and return its
        result: faults on demand for tests and demos, e.g.
        ``world.on_controller("J1", lambda e: e.set_detector_fault(2, DetectorFault.STUCK_ON))``.
        """
        index = {sm.intersection_id: k for k, sm in enumerate(self.maps)}
        if intersection_id not in index:
            raise CityWorldError(f"no controller for intersection {intersection_id!r}; "
                                 f"known: {', '.join(index) or 'none'}")
        emulator = self.emulators[index[intersection_id]]

        async def call() -> T:
            return action(emulator)

        return self._on_loop(call())

    def lamps(self, intersection_id: str) -> LampState | None:
        """What the intersection's controller shows now."""
        return self.on_controller(intersection_id, lambda e: e.program.lamps)

    # ------------------------------------------------------------------ helpers

    def _shutdown_sumo(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            try:
                api.close()
            except (api.TraCIException, api.FatalTraCIError) as e:
                log.warning("city world: closing SUMO: %s", e)

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def run_dir(self) -> Path | None:
        return Path(self._tmp.name) if self._tmp is not None else None

    def sumo_states(self) -> dict[str, str]:
        """The red-yellow-green string each light shows now (tls id → string)."""
        return {sm.tls_id: shown for sm, shown in zip(self.maps, self._shown, strict=True)}

    def edge_config(self) -> dict[str, Any]:
        return edge_config(self.endpoints, city=self.options.city)

    def write_layout(self, path: str | Path) -> Path:
        return write_json(self.layout, path)

    def write_edge_config(self, path: str | Path) -> Path:
        return write_json(self.edge_config(), path)


def _with_city(options: CityOptions, files: CityFiles) -> CityOptions:
    from dataclasses import replace

    return replace(options, names={**files.names, **options.names},
                   corridors=options.corridors or (files.corridor,))


def _position(api: Any, tls_id: str, lanes: Sequence[str]) -> tuple[float, float]:
    """Where the intersection is: its (first) junction, else the mean of its stop lines."""
    try:
        junctions = api.trafficlight.getControlledJunctions(tls_id)
    except (api.TraCIException, AttributeError):
        junctions = ()
    if junctions:
        x, y = api.junction.getPosition(junctions[0])
        return float(x), float(y)
    ends = [api.lane.getShape(ln)[-1] for ln in lanes]
    if not ends:
        return 0.0, 0.0
    return (sum(p[0] for p in ends) / len(ends), sum(p[1] for p in ends) / len(ends))
