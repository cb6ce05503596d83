"""The edge agent's composition root: builds outbox, link, devices and pollers, in start order.

One ``EdgeAgent`` is one run of the agent and one epoch. Devices — simulated intersections and
real controllers over Modbus TCP — are polled by one ``Poller`` each; after every poll any
change becomes a TrafficEvent, and the intersection's ``ReportGate`` decides whether the polls
so far become a TrafficTelemetry (one per poll interval; a controller is read several times per
interval and a demand jump is reported at once; none while the device is unavailable).
Commands arrive through the link's inbound worker, are checked against the contract (schema,
intersection, issuer, expiry, then the controller's own safety limits) and answered with acks.
Controller watchdogs are fed only while the control room is alive (``liveness``). Attendance
machines are the office agent's (``office``), cameras the camera agent's (``camera.agent``);
camera zones that stand in for an intersection's detectors are laid over its readings before its
telemetry is built. A status file for ``kota edge status`` is rewritten every poll interval.
This module wires; the logic lives in ``traffic``, ``controllers``, ``liveness``, ``pollers``,
``link``, ``outbox`` and ``status``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import platform
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import paho.mqtt
from pydantic import ValidationError

from devices.controller.errors import ControllerError
from edge.camera.agent import CameraAgent
from edge.camera.feed import feed_reading
from edge.contract import (
    CommandAck,
    ContractError,
    DeviceInfo,
    OverrideBody,
    PlanBody,
    TrafficCommand,
    command_ack_topic,
    decode,
    event_topic,
    parse_topic,
    salvage_cmd_id,
    telemetry_topic,
    utc_now,
)
from edge.controllers import (
    CommandRefused,
    ControllerDevice,
    ControllerReading,
    ModbusLoop,
    TakenCounts,
    refusal_text,
)
from edge.link import LinkError, display_url
from edge.liveness import ControlRoomLiveness, Liveness, WatchedLink
from edge.office.agent import MachinePlan, OfficeAgent
from edge.office.machine import MachineAddress, live_punches, open_machine
from edge.office.state import OfficeState
from edge.office.sync import SyncPolicy
from edge.outbox import Outbox, OutboxError
from edge.pollers import AsyncPoller, ListenerWorker, Poller
from edge.settings import AttendanceMachineSettings, EdgeSettings, SimulatedIntersectionSettings
from edge.status import remove_status, write_status
from edge.traffic import (
    EventDraft,
    IntersectionWatch,
    ReadingError,
    Report,
    ReportGate,
    Stamp,
    telemetry,
)
from firmware_sim.simple_intersection import (
    CommandRejected,
    DeviceUnavailable,
    SimpleIntersection,
    SimulatedDeviceError,
)

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"
OFFICE_FILE = "office.sqlite3"  # the attendance machines' watermarks and batch ledger
STOP_FLUSH_S = 1.0  # on stop, give queued messages this long to reach the broker (the rest wait on disk)
ANSWERED_MEMORY = 1024  # command ids remembered for de-duplication
AckStatus = Literal["accepted", "applied", "rejected"]


def default_state_dir(data_dir: Path, edge_id: str) -> Path:
    return data_dir / "edge" / edge_id


def _versions() -> dict[str, str]:
    try:
        kota = metadata.version("kotapintar")
    except metadata.PackageNotFoundError:
        kota = "dev"  # running from a checkout
    return {"kota": kota, "paho-mqtt": paho.mqtt.__version__, "python": platform.python_version()}


def machine_plan(spec: AttendanceMachineSettings) -> MachinePlan:
    address = MachineAddress(spec.host, spec.port, spec.comm_key, spec.udp, spec.timeout_s, spec.tz)
    policy = SyncPolicy(tz=spec.tz, office=spec.office, max_drift_s=spec.max_drift_s,
                        clear_when_stored=spec.clear_when_stored,
                        clear_at_share=spec.clear_at_share, resend_after_s=spec.resend_after_s)
    return MachinePlan(spec.device_sn, lambda: open_machine(address), policy,
                       pull_interval_s=spec.pull_interval_s,
                       live=(lambda stop: live_punches(address, stop)) if spec.live else None)


def build_simulated(spec: SimulatedIntersectionSettings, clock: Callable[[], float] | None) -> SimpleIntersection:
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return SimpleIntersection(spec.intersection_id, phases=spec.phases, detectors=spec.detectors,
                              cycle_s=spec.cycle_s, peak_veh_per_h=spec.peak_veh_per_h,
                              seed=spec.seed, fault_every_s=spec.detector_fault_every_s, **extra)


STALE_AFTER_POLLS = 5  # `kota edge status` calls the file stale after this many missed rewrites
STALE_AFTER_MIN_S = 5.0


@dataclass
class _Intersection:
    """One intersection's device (simulated or a real controller), its poller and what was last
    reported about it."""

    poller: Poller[Any]
    watch: IntersectionWatch
    gate: ReportGate
    simulated: SimpleIntersection | None = None
    taken: TakenCounts = field(default_factory=TakenCounts)  # a controller's totals, taken
    controller: ControllerDevice | None = None
    reading_failed: bool = False  # a reading out of contract was logged; log once per streak

    @property
    def kind(self) -> str:
        return "controller" if self.controller is not None else "simulated"


class EdgeAgent:
    """Builds everything in ``__init__`` (opens the outbox, bumps the epoch); ``start`` connects."""

    def __init__(self, settings: EdgeSettings, data_dir: Path, *,
                 device_clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self.edge_id = settings.edge_id
        self.state_dir = settings.state_dir or default_state_dir(data_dir, settings.edge_id)
        self._started = False
        self._outbox_failing = False  # an outbox write failed: logged once per streak
        # Final answers to recent commands (inbound worker only), so a redelivered command is
        # answered again but not applied twice.
        self._answered: OrderedDict[str, tuple[AckStatus, str]] = OrderedDict()
        # Controller commands being carried out on the Modbus loop (a redelivery meanwhile is
        # not carried out twice); both guarded by _answer_lock.
        self._in_flight: set[str] = set()
        self._answer_lock = threading.Lock()
        # 1. the outbox, and this run's epoch from it
        self.outbox = Outbox(self.state_dir / OUTBOX_FILE, settings.telemetry_cap)
        self.epoch = self.outbox.next_epoch()
        # 2. what the agent knows of the control room (controller watchdogs are fed on it)
        self.liveness = ControlRoomLiveness(settings.controlroom_liveness_s)
        self._liveness_lock = threading.Lock()
        self._last_liveness: Liveness | None = None
        # 3. devices and their pollers: simulated intersections, then real controllers, whose
        # Modbus I/O shares one event loop thread
        self._intersections: dict[str, _Intersection] = {}
        for spec in settings.simulated:
            device = build_simulated(spec, device_clock)
            poller: Poller[Any] = Poller(
                f"sim-{spec.intersection_id}", device.fetch, interval_s=settings.poll_interval_s,
                errors=(SimulatedDeviceError,),
                hint="a simulated device is offline only when a test or technician sets it so")
            poller.add_listener(lambda p, iid=spec.intersection_id: self._polled(iid, p))
            self._intersections[spec.intersection_id] = _Intersection(
                poller, IntersectionWatch(spec.intersection_id),
                ReportGate(settings.poll_interval_s, settings.poll_interval_s, None),
                simulated=device)
        # Controllers are polled as tasks on that loop, not in a thread each (an agent may
        # serve hundreds); what each poll reports is published from one worker thread, so the
        # outbox's disk writes never hold up Modbus I/O. Their first polls are spread over the
        # scan interval. A controller is read every scan; its ReportGate picks the telemetry.
        self._modbus = ModbusLoop(f"edge-modbus-{self.edge_id}") if settings.controllers else None
        self._publisher = (ListenerWorker(f"edge-publish-{self.edge_id}")
                           if settings.controllers else None)
        for k, cspec in enumerate(settings.controllers):
            assert self._modbus is not None and self._publisher is not None
            controller = ControllerDevice(cspec, self._modbus, self._controlroom_alive)
            poller = AsyncPoller(
                controller.device_id, controller.poll, spawn=self._modbus.spawn,
                dispatch=self._publisher.submit, interval_s=cspec.scan_s,
                first_delay_s=cspec.scan_s * k / len(settings.controllers),
                errors=(ControllerError,),
                hint=f"check the controller at {cspec.address}: power, network cable, IP address "
                     "and Modbus unit id (`kota device controller status` probes it)")
            poller.add_listener(lambda p, iid=cspec.intersection_id: self._polled(iid, p))
            self._intersections[cspec.intersection_id] = _Intersection(
                poller, IntersectionWatch(cspec.intersection_id),
                ReportGate(cspec.poll_interval_s, cspec.scan_s, cspec.early_report_gap_s),
                controller=controller)
        # 4. attendance machines: one sync thread each, their ledger beside the outbox
        self.office: OfficeAgent | None = None
        if settings.attendance:
            self.office = OfficeAgent(
                [machine_plan(m) for m in settings.attendance],
                OfficeState(self.state_dir / OFFICE_FILE),
                lambda topic, build: self.link.send(topic, build),
                issuers=settings.command_issuers, may_ask_again=self._delivered_and_heard)
        # 5. cameras: ONVIF I/O on one event loop, a video thread each
        self.cameras: CameraAgent | None = None
        if settings.cameras:
            self.cameras = CameraAgent(settings.cameras,
                                       lambda topic, build: self.link.send(topic, build),
                                       issuers=settings.command_issuers,
                                       name=f"edge-onvif-{self.edge_id}")
        extra_topics = [t for t, _ in self.office.subscriptions()] if self.office is not None else []
        if self.cameras is not None:
            extra_topics += [t for t, _ in self.cameras.subscriptions()]
        # 6. the MQTT link, announcing the inventory
        try:
            self.link = WatchedLink(settings.mqtt, edge_id=self.edge_id, epoch=self.epoch,
                                    outbox=self.outbox, inventory=self._inventory(),
                                    versions=_versions(), intersections=list(self._intersections),
                                    on_command=self._command, publish_batch=settings.publish_batch,
                                    inflight_max=settings.inflight_max, liveness=self.liveness,
                                    extra_topics=extra_topics)
        except LinkError:
            self.outbox.close()
            if self.office is not None:
                self.office.stop()
            raise
        self._status_stop = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._status_failing = False

    @property
    def devices(self) -> dict[str, SimpleIntersection]:
        """The simulated devices by intersection id (technicians and tests inject faults here)."""
        return {iid: i.simulated for iid, i in self._intersections.items() if i.simulated is not None}

    @property
    def controllers(self) -> dict[str, ControllerDevice]:
        """The Modbus controllers by intersection id."""
        return {iid: i.controller for iid, i in self._intersections.items()
                if i.controller is not None}

    def _inventory(self) -> list[DeviceInfo]:
        """Every device for the birth; a controller's model and firmware once it has told them."""
        out = []
        for iid, i in self._intersections.items():
            if i.simulated is not None:
                out.append(DeviceInfo(device_id=f"sim-{iid}", kind="simulated", model=i.simulated.model,
                                      firmware=i.simulated.firmware, intersection_id=iid))
            elif i.controller is not None:
                ident = i.controller.identity
                model = f"{ident.vendor} {ident.model}".strip() if ident is not None else ""
                out.append(DeviceInfo(device_id=i.controller.device_id, kind="controller",
                                      model=model[:120], firmware=ident.firmware if ident else "",
                                      intersection_id=iid))
        if self.office is not None:
            for sn, sync in self.office.syncs.items():
                facts = sync.facts
                out.append(DeviceInfo(device_id=sn, kind="attendance",
                                      model=(facts.name if facts else "")[:120],
                                      firmware=(facts.firmware if facts else "")[:120]))
        if self.cameras is not None:
            out += self.cameras.inventory()
        return out

    def _delivered_and_heard(self) -> bool:
        """Whether an unanswered punch batch is worth sending again: every reliable message
        has left the outbox and the control room is alive, so its answer was due."""
        if not self.link.connected or self.outbox.counts().reliable:
            return False
        return self.liveness.verdict(self.link.connected, self.link.conn).alive

    def _controlroom_alive(self) -> Liveness:
        """The liveness verdict (asked before every watchdog kick); transitions logged once."""
        verdict = self.liveness.verdict(self.link.connected, self.link.conn)
        with self._liveness_lock:
            previous, self._last_liveness = self._last_liveness, verdict
        if previous is not None and previous.alive != verdict.alive and self.controllers:
            if verdict.alive:
                log.info("control room alive (%s): feeding controller watchdogs again", verdict.reason)
            else:
                log.warning("control room not alive (%s): controller watchdogs are no longer fed; "
                            "controllers fall back to their local plans when they expire",
                            verdict.reason)
        return verdict

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        counts = self.outbox.counts()
        log.info("edge agent %s starting: epoch %d, broker %s, %d intersection(s), outbox %s "
                 "(%d waiting)", self.edge_id, self.epoch, display_url(self.settings.mqtt),
                 len(self._intersections), self.outbox.path, counts.total)
        self.link.start()
        if self._modbus is not None:
            self._modbus.start()
        if self._publisher is not None:
            self._publisher.start()
        for intersection in self._intersections.values():
            intersection.poller.start()
        if self.office is not None:
            self.office.start()
        if self.cameras is not None:
            self.cameras.start()
        self._status_stop.clear()
        self._status_thread = threading.Thread(target=self._status_loop, daemon=True,
                                               name=f"edge-status-{self.edge_id}")
        self._status_thread.start()
        self._started = True

    def stop(self) -> None:
        """Stop polling, give queued messages a moment, announce offline, close the outbox."""
        if not self._started:
            self.outbox.close()
            if self.office is not None:
                self.office.stop()
            return
        self._status_stop.set()
        if self._status_thread is not None:
            self._status_thread.join(5)
            self._status_thread = None
        for intersection in self._intersections.values():
            intersection.poller.stop()
        if self.office is not None:
            self.office.stop()
        if self.cameras is not None:
            self.cameras.stop()
        if self._modbus is not None:
            for controller in self.controllers.values():
                try:
                    controller.close()
                except (RuntimeError, ControllerError) as exc:
                    log.warning("closing controller %s: %s", controller.intersection_id, exc)
            self._modbus.stop()
        if self._publisher is not None:
            self._publisher.stop()
        try:
            remove_status(self.state_dir)
        except OSError as exc:
            log.warning("cannot remove the status file in %s: %s", self.state_dir, exc)
        if self.link.connected:
            self.link.flush(STOP_FLUSH_S)
        self.link.stop()
        counts = self.outbox.counts()
        self.outbox.close()
        self._started = False
        log.info("edge agent %s stopped (epoch %d); %d message(s) wait in the outbox for the next run",
                 self.edge_id, self.epoch, counts.total)

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set, then shut down gracefully."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    def status(self) -> dict[str, Any]:
        """A snapshot for ``kota edge status``: identity, link, control room, outbox, devices."""
        counts = self.outbox.counts()
        room = self.liveness.verdict(self.link.connected, self.link.conn)
        return {
            "edge_id": self.edge_id,
            "epoch": self.epoch,
            "broker": display_url(self.settings.mqtt),
            "connected": self.link.connected,
            "conn": self.link.conn,
            "controlroom": {"alive": room.alive, "reason": room.reason,
                            "liveness_window_s": self.liveness.window_s},
            "outbox": {"telemetry": counts.droppable, "reliable": counts.reliable,
                       "inflight": self.link.inflight, "dropped_telemetry": counts.dropped_total},
            "devices": {iid: _device_status(i) for iid, i in self._intersections.items()},
            "attendance": self.office.status() if self.office is not None else [],
            "cameras": self.cameras.status() if self.cameras is not None else {},
        }

    def _status_loop(self) -> None:
        """Every poll interval until stopped: re-announce the inventory if a controller told (or
        changed) its model or firmware — one birth for all that changed — and rewrite the
        status file."""
        interval_s = self.settings.poll_interval_s
        stale_after_s = max(STALE_AFTER_MIN_S, STALE_AFTER_POLLS * interval_s)
        while True:
            self.link.update_inventory(self._inventory())
            try:
                write_status(self.state_dir, {**self.status(), "pid": os.getpid(),
                                              "host": platform.node(),
                                              "written_at": utc_now().isoformat(),
                                              "stale_after_s": stale_after_s})
            except (OSError, OutboxError) as exc:
                if not self._status_failing:
                    log.error("cannot write the status file in %s: %s — `kota edge status` will "
                              "report the agent as not running", self.state_dir, exc)
                self._status_failing = True
            else:
                self._status_failing = False
            if self._status_stop.wait(interval_s):
                return

    # ------------------------------------------------------------------ after each poll (poller or publisher thread)

    def _polled(self, iid: str, poller: Poller[Any]) -> None:
        try:
            self._publish_poll(iid, poller)
        except OutboxError as exc:
            # Nothing can be buffered: say so once, keep polling (availability stays current).
            if not self._outbox_failing:
                log.error("%s — messages are being lost until the outbox is writable again", exc)
            self._outbox_failing = True
        else:
            if self._outbox_failing:
                log.info("outbox writable again")
            self._outbox_failing = False

    def _publish_poll(self, iid: str, poller: Poller[Any]) -> None:
        snapshot = poller.snapshot if poller.available else None
        intersection = self._intersections[iid]
        alarms = None
        if isinstance(snapshot, ControllerReading):
            alarms = snapshot.alarms
            snapshot = intersection.taken.take(snapshot)  # a folded poll's vehicles too
        if snapshot is not None and self.cameras is not None:
            feeds = self.cameras.feeds(iid)
            if feeds:  # camera zones stand in for some of the detectors
                snapshot = feed_reading(snapshot, feeds)
        if snapshot is None:
            # What the scans since the last report counted goes out before "offline".
            self._send_telemetry(iid, intersection, intersection.gate.flush(time.monotonic()))
        drafts = intersection.watch.availability(poller.available, poller.last_error)
        if snapshot is not None:
            drafts += intersection.watch.reading(snapshot)
            if alarms is not None:
                drafts += intersection.watch.alarms(alarms)
        # Events first: "device online" or "mode change" precede the telemetry that shows them.
        for draft in drafts:
            self._event(iid, draft)
        if snapshot is None:
            return  # unavailable: no telemetry, the control room shows the device offline
        self._send_telemetry(iid, intersection, intersection.gate.scan(snapshot, time.monotonic()))

    def _send_telemetry(self, iid: str, intersection: _Intersection, report: Report | None) -> None:
        if report is None:
            return
        try:
            self.link.send(telemetry_topic(iid), lambda stamp: telemetry(iid, report, stamp))
        except ReadingError as exc:
            if not intersection.reading_failed:
                log.error("%s; no telemetry until the device reads sanely again", exc)
            intersection.reading_failed = True
        else:
            if intersection.reading_failed:
                log.info("intersection %s reads sanely again", iid)
            intersection.reading_failed = False

    def _event(self, iid: str, draft: EventDraft) -> None:
        level = logging.WARNING if draft.severity != "info" else logging.INFO
        log.log(level, "intersection %s: %s (%s)", iid, draft.kind.value, draft.detail)
        self.link.send(event_topic(iid), lambda stamp: draft.payload(iid, stamp))

    # ------------------------------------------------------------------ commands (link's inbound worker)

    def _command(self, topic: str, raw: bytes) -> None:
        if self.office is not None and self.office.on_message(topic, raw):
            return  # a stored reply or a command for one of the office's machines
        if self.cameras is not None and self.cameras.on_message(topic, raw):
            return  # a command for one of the cameras
        try:
            message = decode(topic, raw)
        except ContractError as exc:
            self._reject_unreadable(topic, raw, exc)
            return
        command = message.payload
        if not isinstance(command, TrafficCommand):
            log.warning("ignored a %s message on the command topic %s", message.kind.value, topic)
            return
        iid = command.intersection_id
        with self._answer_lock:
            answered = self._answered.get(command.cmd_id)
            in_flight = command.cmd_id in self._in_flight
        if answered is not None:
            # A QoS 1 redelivery or a control-room retry: answer again, never act twice.
            log.info("command %s seen before; repeating its ack (%s)", command.cmd_id, answered[0])
            self._ack(iid, command.cmd_id, *answered)
            return
        if in_flight:
            log.info("command %s seen before and still being carried out; its ack follows",
                     command.cmd_id)
            return
        intersection = self._intersections.get(iid)
        if intersection is None:
            self._ack(iid, command.cmd_id, "rejected", f"intersection {iid} is not served by {self.edge_id}")
            return
        if not self._issuer_allowed(command.issuer):
            self._ack(iid, command.cmd_id, "rejected",
                      f"issuer {command.issuer!r} is not allowed to command {self.edge_id}")
            return
        now = utc_now()
        if command.expires_at <= now:
            self._ack(iid, command.cmd_id, "rejected",
                      f"expired at {command.expires_at.isoformat()} (edge clock {now.isoformat()})")
            return
        self.liveness.heard()
        log.info("command %s from %s for %s: %s", command.cmd_id, command.issuer, iid,
                 command.body.model_dump_json())
        if intersection.controller is not None:
            self._command_controller(intersection.controller, command)
            return
        assert intersection.simulated is not None
        self._ack(iid, command.cmd_id, "accepted")
        try:
            _apply(intersection.simulated, command.body)
        except CommandRejected as exc:
            self._ack(iid, command.cmd_id, "rejected", exc.reason)
        except DeviceUnavailable as exc:
            self._ack(iid, command.cmd_id, "rejected", f"device unavailable: {exc}")
        else:
            self._ack(iid, command.cmd_id, "applied")

    def _issuer_allowed(self, issuer: str) -> bool:
        patterns = self.settings.command_issuers
        return not patterns or any(fnmatch.fnmatchcase(issuer, p) for p in patterns)

    def _command_controller(self, controller: ControllerDevice, command: TrafficCommand) -> None:
        """Hand the command to the Modbus loop and return: a burst of commands for many
        controllers (the control room's first plans for all of them) is carried out side by
        side, not one controller's round trips after another's."""
        assert self._modbus is not None
        with self._answer_lock:
            self._in_flight.add(command.cmd_id)
        try:
            future = self._modbus.spawn(self._carry_out(controller, command))
        except RuntimeError:  # the agent is stopping: no answer, the control room retries
            with self._answer_lock:
                self._in_flight.discard(command.cmd_id)
            return
        future.add_done_callback(_log_crash)

    async def _carry_out(self, controller: ControllerDevice, command: TrafficCommand) -> None:
        """On the loop, one command at a time per controller: judge against the controller's
        own limits (nothing written if unsafe), then accept, write, and answer with what the
        controller's result register says. Acks are stored from the publisher thread."""
        iid, cmd_id = command.intersection_id, command.cmd_id
        try:
            async with controller.command_turn:
                now = utc_now()
                if command.expires_at <= now:  # it waited for the controller past its expiry
                    self._ack_later(iid, cmd_id, "rejected", f"expired at "
                                    f"{command.expires_at.isoformat()} before the controller was "
                                    f"free (edge clock {now.isoformat()})")
                    return
                try:
                    prepared = await controller.prepare_async(command.body)
                except CommandRefused as exc:
                    self._ack_later(iid, cmd_id, "rejected",
                                    f"unsafe for this controller: {exc.reason}")
                    return
                except ControllerError as exc:
                    self._ack_later(iid, cmd_id, "rejected",
                                    f"controller unreachable, nothing written: {exc}")
                    return
                self._ack_later(iid, cmd_id, "accepted")
                try:
                    note = await controller.execute_async(prepared)
                except ControllerError as exc:
                    self._ack_later(iid, cmd_id, "rejected", refusal_text(exc))
                    return
                log.info("command %s for %s applied: %s — %s", cmd_id, iid, prepared.describe(),
                         note)
                self._ack_later(iid, cmd_id, "applied", note)
        finally:
            with self._answer_lock:
                self._in_flight.discard(cmd_id)

    def _reject_unreadable(self, topic: str, raw: bytes, exc: ContractError) -> None:
        cmd_id = salvage_cmd_id(raw)
        try:
            target = parse_topic(topic).key
        except ContractError:
            target = None  # not one of our topics at all: nobody to answer
        if cmd_id is not None and target is not None:
            try:
                self._ack(target, cmd_id, "rejected", f"{exc.reason}: {exc.detail}")
                return
            except ValidationError:
                pass  # the cmd_id itself breaks the contract: logged below, without an ack
        log.warning("rejected a command on %s without an ack (no usable cmd_id): %s: %s",
                    topic, exc.reason, exc.detail)

    def _ack(self, target_id: str, cmd_id: str, status: AckStatus, reason: str = "") -> None:
        self._remember(target_id, cmd_id, status, reason)
        self._send_ack(target_id, cmd_id, status, reason)

    def _ack_later(self, target_id: str, cmd_id: str, status: AckStatus, reason: str = "") -> None:
        """From the Modbus loop: remembered at once (a redelivery is answered, not carried out
        again), stored and sent from the publisher thread (the outbox syncs to disk for QoS 1;
        the loop must not wait for that). One publisher thread keeps an accepted before its
        applied."""
        assert self._publisher is not None
        self._remember(target_id, cmd_id, status, reason)
        self._publisher.submit(self._send_ack_logged, target_id, cmd_id, status, reason)

    def _remember(self, target_id: str, cmd_id: str, status: AckStatus, reason: str) -> None:
        if status != "accepted":
            with self._answer_lock:
                self._answered[cmd_id] = (status, reason)
                while len(self._answered) > ANSWERED_MEMORY:
                    self._answered.popitem(last=False)
        if status == "rejected":
            log.warning("command %s for %s rejected: %s", cmd_id, target_id, reason)

    def _send_ack_logged(self, target_id: str, cmd_id: str, status: AckStatus, reason: str) -> None:
        try:
            self._send_ack(target_id, cmd_id, status, reason)
        except OutboxError as exc:
            log.error("command %s for %s: its %s ack could not be stored: %s", cmd_id, target_id,
                      status, exc)

    def _send_ack(self, target_id: str, cmd_id: str, status: AckStatus, reason: str) -> None:
        def build(stamp: Stamp) -> CommandAck:
            return CommandAck(**stamp.fields(), cmd_id=cmd_id, target_id=target_id, status=status,
                              reason=reason[:300])

        self.link.send(command_ack_topic("traffic", target_id), build)


def _log_crash(future: Future[None]) -> None:
    """A task's programming error would otherwise stay in a future nobody reads."""
    if not future.cancelled() and future.exception() is not None:
        log.error("carrying out a command failed", exc_info=future.exception())


def _apply(device: SimpleIntersection, body: PlanBody | OverrideBody) -> None:
    if isinstance(body, PlanBody):
        device.apply_plan(body.plan, body.cycle_s, body.offset_s, body.splits_s)
    else:
        device.override(body.action, body.phase)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _device_status(i: _Intersection) -> dict[str, Any]:
    """One device for ``kota edge status``: who, where, how it reads, last contact, errors."""
    poller = i.poller
    snapshot = poller.snapshot
    out: dict[str, Any] = {
        "kind": i.kind,
        "available": poller.available,
        "mode": getattr(snapshot, "mode", None),
        "plan": getattr(snapshot, "plan", None),
        "last_ok_at": _iso(poller.last_ok_at),
        "consecutive_errors": poller.consecutive_failures,
        "failing_since": _iso(poller.failing_since),
        "first_error": poller.first_error,
        "last_error": poller.last_error,
        "reads_every_s": i.controller.spec.scan_s if i.controller is not None else None,
        "reports_every_s": (i.controller.spec.poll_interval_s if i.controller is not None
                            else None),
        "early_reports": i.gate.early_reports,
    }
    if i.simulated is not None:
        out.update(address=None, model=i.simulated.model, firmware=i.simulated.firmware)
    elif i.controller is not None:
        c = i.controller
        ident = c.identity
        wd = c.watchdog
        reading = snapshot if isinstance(snapshot, ControllerReading) else None
        out.update(
            address=c.spec.address, location=c.spec.location,
            model=f"{ident.vendor} {ident.model}".strip() if ident else None,
            firmware=ident.firmware if ident else None, serial=ident.serial if ident else None,
            phases=ident.phase_count if ident else None,
            detectors=ident.detector_count if ident else None,
            mode_reason=reading.mode_reason if reading else None,
            alarms=sorted(reading.alarms) if reading else [],
            requests=c.client.requests,
            watchdog={"feeding": wd.feeding, "reason": wd.reason, "kicks": wd.kicks,
                      "last_kick_at": _iso(wd.last_kick_at),
                      "timeout_s": c.spec.watchdog_timeout_s,
                      "left_s": reading.watchdog_left_s if reading else None,
                      "expired": bool(reading and "watchdog_expired" in reading.alarms)},
        )
    return out


def run_agent(settings: EdgeSettings, data_dir: Path, stop: threading.Event) -> None:
    """Run one edge agent until ``stop`` is set (the CLI's and the demo's entry point)."""
    EdgeAgent(settings, data_dir).run(stop)

