"""The edge agent's composition root: builds outbox, link, devices and pollers, in start order.

One ``EdgeAgent`` is one run of the agent and one epoch. Devices are polled by one ``Poller``
each; after every poll the intersection's snapshot becomes one TrafficTelemetry (none while
the device is unavailable) and any change becomes a TrafficEvent. Commands arrive through the
link's inbound worker, are checked against the contract and answered with acks. This module
wires; the logic lives in ``traffic``, ``pollers``, ``link`` and ``outbox``.
"""

from __future__ import annotations

import json
import logging
import platform
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import paho.mqtt
from pydantic import ValidationError

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
    telemetry_topic,
    utc_now,
)
from edge.link import EdgeLink, LinkError, display_url
from edge.outbox import Outbox, OutboxError
from edge.pollers import Poller
from edge.settings import EdgeSettings, SimulatedIntersectionSettings
from edge.traffic import EventDraft, IntersectionWatch, ReadingError, Stamp, telemetry
from firmware_sim.simple_intersection import (
    CommandRejected,
    DeviceUnavailable,
    IntersectionSnapshot,
    SimpleIntersection,
    SimulatedDeviceError,
)

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"
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


def build_simulated(spec: SimulatedIntersectionSettings, clock: Callable[[], float] | None) -> SimpleIntersection:
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return SimpleIntersection(spec.intersection_id, phases=spec.phases, detectors=spec.detectors,
                              cycle_s=spec.cycle_s, peak_veh_per_h=spec.peak_veh_per_h,
                              seed=spec.seed, fault_every_s=spec.detector_fault_every_s, **extra)


@dataclass
class _Intersection:
    """One intersection's device, its poller and what was last reported about it."""

    device: SimpleIntersection
    poller: Poller[IntersectionSnapshot]
    watch: IntersectionWatch
    reading_failed: bool = False  # a reading out of contract was logged; log once per streak


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
        # 1. the outbox, and this run's epoch from it
        self.outbox = Outbox(self.state_dir / OUTBOX_FILE, settings.telemetry_cap)
        self.epoch = self.outbox.next_epoch()
        # 2. devices and their pollers
        self._intersections: dict[str, _Intersection] = {}
        for spec in settings.simulated:
            device = build_simulated(spec, device_clock)
            poller: Poller[IntersectionSnapshot] = Poller(
                f"sim-{spec.intersection_id}", device.fetch, interval_s=settings.poll_interval_s,
                errors=(SimulatedDeviceError,),
                hint="a simulated device is offline only when a test or technician sets it so")
            poller.add_listener(lambda p, iid=spec.intersection_id: self._polled(iid, p))
            self._intersections[spec.intersection_id] = _Intersection(
                device, poller, IntersectionWatch(spec.intersection_id))
        # 3. the MQTT link, announcing the inventory
        inventory = [DeviceInfo(device_id=f"sim-{iid}", kind="simulated", model=i.device.model,
                                firmware=i.device.firmware, intersection_id=iid)
                     for iid, i in self._intersections.items()]
        try:
            self.link = EdgeLink(settings.mqtt, edge_id=self.edge_id, epoch=self.epoch, outbox=self.outbox,
                                 inventory=inventory, versions=_versions(),
                                 intersections=list(self._intersections), on_command=self._command,
                                 publish_batch=settings.publish_batch, inflight_max=settings.inflight_max)
        except LinkError:
            self.outbox.close()
            raise

    @property
    def devices(self) -> dict[str, SimpleIntersection]:
        """The simulated devices by intersection id (technicians and tests inject faults here)."""
        return {iid: i.device for iid, i in self._intersections.items()}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        counts = self.outbox.counts()
        log.info("edge agent %s starting: epoch %d, broker %s, %d intersection(s), outbox %s "
                 "(%d waiting)", self.edge_id, self.epoch, display_url(self.settings.mqtt),
                 len(self._intersections), self.outbox.path, counts.total)
        self.link.start()
        for intersection in self._intersections.values():
            intersection.poller.start()
        self._started = True

    def stop(self) -> None:
        """Stop polling, give queued messages a moment, announce offline, close the outbox."""
        if not self._started:
            self.outbox.close()
            return
        for intersection in self._intersections.values():
            intersection.poller.stop()
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
        """A snapshot for ``kota edge status``: identity, link, outbox, devices."""
        counts = self.outbox.counts()
        return {
            "edge_id": self.edge_id,
            "epoch": self.epoch,
            "broker": display_url(self.settings.mqtt),
            "connected": self.link.connected,
            "conn": self.link.conn,
            "outbox": {"telemetry": counts.droppable, "reliable": counts.reliable,
                       "inflight": self.link.inflight, "dropped_telemetry": counts.dropped_total},
            "devices": {
                iid: {"available": i.poller.available,
                      "last_ok_at": _iso(i.poller.last_ok_at),
                      "last_error": i.poller.last_error}
                for iid, i in self._intersections.items()
            },
        }

    # ------------------------------------------------------------------ after each poll (poller thread)

    def _polled(self, iid: str, poller: Poller[IntersectionSnapshot]) -> None:
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

    def _publish_poll(self, iid: str, poller: Poller[IntersectionSnapshot]) -> None:
        snapshot = poller.snapshot if poller.available else None
        intersection = self._intersections[iid]
        drafts = intersection.watch.availability(poller.available, poller.last_error)
        if snapshot is not None:
            drafts += intersection.watch.reading(snapshot)
        # Events first: "device online" or "mode change" precede the telemetry that shows them.
        for draft in drafts:
            self._event(iid, draft)
        if snapshot is None:
            return  # unavailable: no telemetry, the control room shows the device offline
        try:
            self.link.send(telemetry_topic(iid), lambda stamp: telemetry(iid, snapshot, stamp))
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
        answered = self._answered.get(command.cmd_id)
        if answered is not None:
            # A QoS 1 redelivery or a control-room retry: answer again, never act twice.
            log.info("command %s seen before; repeating its ack (%s)", command.cmd_id, answered[0])
            self._ack(iid, command.cmd_id, *answered)
            return
        intersection = self._intersections.get(iid)
        if intersection is None:
            self._ack(iid, command.cmd_id, "rejected", f"intersection {iid} is not served by {self.edge_id}")
            return
        now = utc_now()
        if command.expires_at <= now:
            self._ack(iid, command.cmd_id, "rejected",
                      f"expired at {command.expires_at.isoformat()} (edge clock {now.isoformat()})")
            return
        log.info("command %s from %s for %s: %s", command.cmd_id, command.issuer, iid,
                 command.body.model_dump_json())
        self._ack(iid, command.cmd_id, "accepted")
        try:
            _apply(intersection.device, command.body)
        except CommandRejected as exc:
            self._ack(iid, command.cmd_id, "rejected", exc.reason)
        except DeviceUnavailable as exc:
            self._ack(iid, command.cmd_id, "rejected", f"device unavailable: {exc}")
        else:
            self._ack(iid, command.cmd_id, "applied")

    def _reject_unreadable(self, topic: str, raw: bytes, exc: ContractError) -> None:
        cmd_id = _salvage_cmd_id(raw)
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
        if status != "accepted":
            self._answered[cmd_id] = (status, reason)
            while len(self._answered) > ANSWERED_MEMORY:
                self._answered.popitem(last=False)
        if status == "rejected":
            log.warning("command %s for %s rejected: %s", cmd_id, target_id, reason)

        def build(stamp: Stamp) -> CommandAck:
            return CommandAck(**stamp.fields(), cmd_id=cmd_id, target_id=target_id, status=status,
                              reason=reason[:300])

        self.link.send(command_ack_topic("traffic", target_id), build)


def _apply(device: SimpleIntersection, body: PlanBody | OverrideBody) -> None:
    if isinstance(body, PlanBody):
        device.apply_plan(body.plan, body.cycle_s, body.offset_s, body.splits_s)
    else:
        device.override(body.action, body.phase)


def _salvage_cmd_id(raw: bytes) -> str | None:
    """The cmd_id of a command that failed validation, if it has one, so the sender gets an ack."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    cmd_id = value.get("cmd_id") if isinstance(value, dict) else None
    return cmd_id if isinstance(cmd_id, str) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_agent(settings: EdgeSettings, data_dir: Path, stop: threading.Event) -> None:
    """Run one edge agent until ``stop`` is set (the CLI's and the demo's entry point)."""
    EdgeAgent(settings, data_dir).run(stop)

