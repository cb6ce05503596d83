"""The edge's cameras: health and status, PTZ commands, snapshots and video detectors.

One ``CameraWorker`` per camera. Its ONVIF I/O (``devices.onvif``) runs as tasks on the agent's
shared event loop: a health task connects (with back-off), reads the camera clock and PTZ
position every ``status_interval_s``, publishes the retained status on change (and at least
every three intervals), publishes snapshots, and brings the camera back to its analysis
position after an operator's move. Its video runs in a thread of its own: frames from the
stream (or snapshots) go through ``ZoneDetector`` and ``TamperDetector``; every
``analytics_interval_s`` the zones are published as analytics and summed for the
intersection's telemetry (``feed``). Commands arrive from the link's inbound worker and are
checked (schema, camera, issuer, expiry, rate, PTZ present) before anything moves; every
command is answered with acks on ``cctv/{camera_id}/cmd_ack``, which the control room audits.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fnmatch
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import cv2
import numpy as np

from devices.onvif import CameraFacts, OnvifCamera, OnvifError
from edge.camera.detectors import (
    TamperConfig,
    TamperDetector,
    ZoneConfig,
    ZoneDetector,
    ZoneDetectorConfig,
    ZoneInterval,
)
from edge.camera.feed import TAMPER_NAMES, DetectorFeed, FeedAccumulator, contract_tampers
from edge.camera.source import FrameSource, SnapshotSource, SourceError, open_source
from edge.contract import (
    MAX_SNAPSHOT_BYTES,
    CctvAnalytics,
    CctvCommand,
    CctvSnapshot,
    CctvStatus,
    CommandAck,
    ContractError,
    DeviceInfo,
    PresetGotoBody,
    PresetInfo,
    PresetSetBody,
    PtzGotoBody,
    PtzMoveBody,
    PtzPosition,
    PtzStopBody,
    SnapshotBody,
    cctv_analytics_topic,
    cctv_command_topic,
    cctv_snapshot_topic,
    cctv_status_topic,
    command_ack_topic,
    decode,
    parse_topic,
    salvage_cmd_id,
    utc_now,
)
from edge.controllers import ModbusLoop
from edge.settings import CameraSettings
from edge.traffic import Stamp

log = logging.getLogger(__name__)

Send = Callable[[str, Callable[[Stamp], Any]], int]
AckStatus = Literal["accepted", "applied", "rejected"]
RETRY_MIN_S, RETRY_MAX_S = 1.0, 30.0
HEARTBEAT_INTERVALS = 3  # status is published at least every this many status intervals
SETTLE_S = 2.0  # after the camera is back at its analysis position, detectors relearn this long
ANSWERED_MEMORY = 256
STOP_WAIT_S = 3.0
TAMPER_ADVICE = {
    "blackout": "the picture is black: lens covered or sprayed, or the sensor failed; check on site",
    "blur": "the picture is blurred: dirty or fogged lens, or lost focus; clean or refocus",
    "moved": "the view has shifted: the camera was turned or knocked; check its mount",
    "frozen": "the picture does not change: the camera's encoder hangs; reboot the camera",
}


class CameraWorker:
    """One camera. ``start``/``stop`` from the agent; ``command`` from the inbound worker."""

    def __init__(self, spec: CameraSettings, loop: ModbusLoop, send: Send, *,
                 driver: OnvifCamera | None = None) -> None:
        self.spec = spec
        self.camera_id = spec.camera_id
        self._loop = loop
        self._send = send
        self._driver = driver or OnvifCamera(spec.host, spec.port, spec.user,
                                             spec.password.get_secret_value(),
                                             timeout_s=spec.timeout_s)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # what is known of the camera (guarded by _lock)
        self.facts: CameraFacts | None = None
        self.profile: str | None = None
        self.reachable = False
        self.error = ""
        self.position: PtzPosition | None = None
        self.presets: tuple[PresetInfo, ...] = ()
        self.clock_offset_s: float | None = None
        self.video_error = ""
        self.fps = 0.0
        self.tampers: tuple[str, ...] = ()
        self.last_ok_at: float | None = None
        self._home: PtzPosition | None = None
        self._away_until: float | None = None  # monotonic: an operator moved the camera
        self._settle_until = 0.0
        self._last_ptz_at = -1e9
        self._stop_task: asyncio.Task[None] | None = None
        self._last_status: tuple[Any, ...] | None = None
        self._last_status_at = 0.0
        self._answered: OrderedDict[str, tuple[AckStatus, str]] = OrderedDict()
        self._feed = FeedAccumulator([z.detector for z in spec.zones])
        self._futures: list[concurrent.futures.Future[Any]] = []
        self._video_thread: threading.Thread | None = None
        self.analytics_sent = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._stop.clear()
        self._futures.append(self._loop.spawn(self._health()))
        if self.spec.video != "off" and (self.spec.zones or self.spec.tamper):
            self._video_thread = threading.Thread(target=self._video, daemon=True,
                                                  name=f"edge-video-{self.camera_id}")
            self._video_thread.start()

    def stop(self) -> None:
        self._stop.set()
        for future in self._futures:
            future.cancel()
        if self._video_thread is not None:
            self._video_thread.join(STOP_WAIT_S + self.spec.timeout_s)
        try:
            self._loop.spawn(self._driver.close()).result(STOP_WAIT_S)
        except (RuntimeError, concurrent.futures.TimeoutError, OnvifError) as exc:
            log.debug("camera %s: closing the driver: %s", self.camera_id, exc)

    def _run(self, coro: Coroutine[Any, Any, Any], timeout_s: float | None = None) -> Any:
        """From a thread: run a driver call on the loop and wait for it."""
        future = self._loop.spawn(coro)
        try:
            return future.result(timeout_s or self.spec.timeout_s * 2)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise SourceError(f"camera {self.camera_id} did not answer in time") from exc

    # ------------------------------------------------------------------ health (on the loop)

    async def _health(self) -> None:
        spec = self.spec
        retry_s = RETRY_MIN_S
        heartbeat_s = HEARTBEAT_INTERVALS * spec.status_interval_s
        next_snapshot = time.monotonic() + min(5.0, spec.snapshot_interval_s)
        while not self._stop.is_set():
            try:
                if self.facts is None:
                    await self._connect()
                    retry_s = RETRY_MIN_S
                else:
                    await self._check()
                now = time.monotonic()
                if spec.snapshot_interval_s > 0 and now >= next_snapshot:
                    next_snapshot = now + spec.snapshot_interval_s
                    await self._publish_snapshot(None)
                await self._return_home_when_due()
                wait_s = spec.status_interval_s
            except OnvifError as exc:
                self._lost(str(exc))
                try:
                    await self._driver.close()
                except OnvifError:
                    pass
                wait_s, retry_s = retry_s, min(retry_s * 2, RETRY_MAX_S)
            self._publish_status(heartbeat_s)
            try:
                await asyncio.sleep(wait_s)
            except asyncio.CancelledError:
                return

    async def _connect(self) -> None:
        facts = await self._driver.connect()
        profile = self.spec.profile or (facts.profiles[0].token if facts.profiles else None)
        if profile is not None and facts.profiles and profile not in {p.token for p in facts.profiles}:
            raise _ConfigError(f"camera {self.camera_id} has no media profile {profile!r} "
                               f"(it has {', '.join(p.token for p in facts.profiles)})")
        with self._lock:
            self.facts, self.profile = facts, profile
            self.clock_offset_s = facts.clock_offset_s
        if facts.has_ptz and profile is not None:
            await self._read_ptz(presets=True)
            if self._home is None and self.spec.home_preset is None:
                self._home = self.position
        self._ok()
        log.info("camera %s (%s %s, firmware %s) at %s connected; clock offset %+.1f s%s",
                 self.camera_id, facts.manufacturer, facts.model, facts.firmware,
                 self.spec.address, facts.clock_offset_s, ", PTZ" if facts.has_ptz else "")

    async def _check(self) -> None:
        offset = await self._driver.clock_offset_s()
        with self._lock:
            self.clock_offset_s = offset
        if self.facts is not None and self.facts.has_ptz and self.profile is not None:
            await self._read_ptz(presets=False)
        self._ok()

    async def _read_ptz(self, *, presets: bool) -> None:
        assert self.profile is not None
        status = await self._driver.ptz_status(self.profile)
        position = PtzPosition(pan=_clip(status.pan, -1, 1), tilt=_clip(status.tilt, -1, 1),
                               zoom=_clip(status.zoom, 0, 1))
        listed = None
        if presets:
            listed = tuple(PresetInfo(token=p.token, name=p.name[:64])
                           for p in (await self._driver.presets(self.profile))[:64])
        with self._lock:
            self.position = position
            if listed is not None:
                self.presets = listed

    def _ok(self) -> None:
        with self._lock:
            if not self.reachable:
                if self.error:
                    log.info("camera %s reachable again", self.camera_id)
                self.reachable = True
            self.error = ""
            self.last_ok_at = time.time()

    def _lost(self, error: str) -> None:
        """A request failed: the camera counts as unreachable and is reconnected from scratch."""
        with self._lock:
            first = self.reachable or not self.error
            self.reachable = False
            self.error = error[:300]
            self.facts = None
        if first:
            log.warning("camera %s at %s: %s — its zones report a fault until it answers again",
                        self.camera_id, self.spec.address, error)

    async def _return_home_when_due(self) -> None:
        with self._lock:
            due = self._away_until is not None and time.monotonic() >= self._away_until
        if not due or self.profile is None:
            return
        log.info("camera %s: no PTZ command for %g s, returning to its analysis position",
                 self.camera_id, self.spec.return_after_s)
        await self._go_home()
        with self._lock:
            self._away_until = None
            self._settle_until = time.monotonic() + SETTLE_S

    async def _go_home(self) -> None:
        assert self.profile is not None
        if self.spec.home_preset is not None:
            await self._driver.goto_preset(self.profile, self.spec.home_preset)
        elif self._home is not None:
            h = self._home
            await self._driver.ptz_absolute(self.profile, h.pan, h.tilt, h.zoom)

    def _publish_status(self, heartbeat_s: float) -> None:
        with self._lock:
            facts = self.facts
            key = (self.reachable, self.error, self.tampers, self.position, self.presets,
                   round(self.fps), self.video_error, facts is not None)
            now = time.monotonic()
            if key == self._last_status and now - self._last_status_at < heartbeat_s:
                return
            self._last_status, self._last_status_at = key, now
        self._send(cctv_status_topic(self.camera_id), self._status_payload)

    def _status_payload(self, stamp: Stamp) -> CctvStatus:
        with self._lock:
            facts = self.facts
            error = self.error or self.video_error
            return CctvStatus(
                **stamp.fields(), camera_id=self.camera_id, reachable=self.reachable,
                fps=round(min(self.fps, 240.0), 1),
                tamper=self.tampers[0] if self.tampers else "none", tampers=self.tampers,
                intersection_id=self.spec.intersection_id, name=self.spec.name,
                model=(f"{facts.manufacturer} {facts.model}".strip()[:120] if facts else ""),
                firmware=(facts.firmware[:120] if facts else ""),
                ptz=bool(facts and facts.has_ptz), position=self.position,
                presets=self.presets,
                clock_offset_s=(round(self.clock_offset_s, 2)
                                if self.clock_offset_s is not None else None),
                zones=len(self.spec.zones), error=error[:300])

    async def _publish_snapshot(self, cmd_id: str | None) -> None:
        jpeg = await self._driver.snapshot(self.profile)
        jpeg = _fit_snapshot(jpeg)
        data = base64.b64encode(jpeg).decode()
        self._send(cctv_snapshot_topic(self.camera_id),
                   lambda stamp: CctvSnapshot(**stamp.fields(), camera_id=self.camera_id,
                                              jpeg_b64=data, cmd_id=cmd_id))

    # ------------------------------------------------------------------ commands

    def command(self, command: CctvCommand, issuer_allowed: bool) -> None:
        """Judge a command (inbound worker thread) and carry it out on the loop."""
        cmd_id = command.cmd_id
        with self._lock:
            answered = self._answered.get(cmd_id)
        if answered is not None:
            # A QoS 1 redelivery or a retry: answered again (with where it stands), never
            # carried out twice.
            log.info("camera command %s seen before; repeating its ack (%s)", cmd_id, answered[0])
            self._ack(cmd_id, *answered)
            return
        if not issuer_allowed:
            self._final(cmd_id, "rejected", f"issuer {command.issuer!r} may not command this edge")
            return
        now = utc_now()
        if command.expires_at <= now:
            self._final(cmd_id, "rejected", f"expired at {command.expires_at.isoformat()} "
                        f"(edge clock {now.isoformat()})")
            return
        body = command.body
        is_ptz = not isinstance(body, SnapshotBody)
        with self._lock:
            facts, profile, reachable = self.facts, self.profile, self.reachable
            since_s = time.monotonic() - self._last_ptz_at
        if not reachable or facts is None or profile is None:
            self._final(cmd_id, "rejected", f"camera unreachable: {self.error or 'not connected yet'}")
            return
        if is_ptz and not facts.has_ptz:
            self._final(cmd_id, "rejected", "this camera has no PTZ")
            return
        if is_ptz and not isinstance(body, PtzStopBody) and since_s < self.spec.ptz_min_interval_s:
            self._final(cmd_id, "rejected", f"too frequent: {since_s:.2f} s after the previous "
                        f"PTZ command (at least {self.spec.ptz_min_interval_s:g} s)")
            return
        if is_ptz:
            with self._lock:
                self._last_ptz_at = time.monotonic()
        log.info("camera command %s from %s for %s: %s", cmd_id, command.issuer, self.camera_id,
                 body.model_dump_json())
        self._remember(cmd_id, "accepted", "")
        self._ack(cmd_id, "accepted")
        try:
            future = self._loop.spawn(self._carry_out(cmd_id, body, profile))
        except RuntimeError:
            return  # stopping: no answer; the control room marks it unanswered
        future.add_done_callback(_log_crash)

    async def _carry_out(self, cmd_id: str, body: Any, profile: str) -> None:
        d = self._driver
        try:
            if isinstance(body, SnapshotBody):
                await self._publish_snapshot(cmd_id)
                self._final(cmd_id, "applied", "snapshot published")
                return
            self._moved_by_operator()
            if isinstance(body, PtzMoveBody):
                await d.ptz_continuous(profile, body.pan, body.tilt, body.zoom, body.timeout_s)
                self._stop_after(profile, body.timeout_s)
                note = f"moving for at most {body.timeout_s:g} s"
            elif isinstance(body, PtzStopBody):
                await d.ptz_stop(profile)
                note = "stopped"
            elif isinstance(body, PtzGotoBody):
                p = body.position
                await d.ptz_absolute(profile, p.pan, p.tilt, p.zoom)
                note = f"going to pan {p.pan:g}, tilt {p.tilt:g}, zoom {p.zoom:g}"
            elif isinstance(body, PresetGotoBody):
                await d.goto_preset(profile, body.preset_token)
                note = f"going to preset {body.preset_token}"
            elif isinstance(body, PresetSetBody):
                token = await d.set_preset(profile, body.name)
                await self._read_ptz(presets=True)
                note = f"preset {body.name!r} stored as {token}"
            else:  # pragma: no cover - the contract admits no other body
                raise TypeError(type(body).__name__)
        except (OnvifError, ValueError) as exc:
            self._final(cmd_id, "rejected", f"the camera refused: {exc}")
            return
        self._final(cmd_id, "applied", note)
        self._publish_status(0.0)

    def _moved_by_operator(self) -> None:
        with self._lock:
            if self.spec.return_after_s > 0 or self._away_until is None:
                self._away_until = time.monotonic() + (self.spec.return_after_s or 1e12)

    def _stop_after(self, profile: str, timeout_s: float) -> None:
        """The edge's own guarantee that a move ends, whatever the camera does with its timeout."""
        if self._stop_task is not None:
            self._stop_task.cancel()

        async def stop_later() -> None:
            await asyncio.sleep(timeout_s)
            try:
                await self._driver.ptz_stop(profile)
            except OnvifError as exc:
                log.warning("camera %s: stopping a move after its %g s timeout failed: %s",
                            self.camera_id, timeout_s, exc)

        self._stop_task = asyncio.get_running_loop().create_task(stop_later())

    def reject(self, cmd_id: str, reason: str) -> None:
        """Answer a command that could not be read (its cmd_id salvaged from the raw bytes)."""
        self._final(cmd_id, "rejected", reason)

    def _remember(self, cmd_id: str, status: AckStatus, reason: str) -> None:
        with self._lock:
            self._answered[cmd_id] = (status, reason)
            while len(self._answered) > ANSWERED_MEMORY:
                self._answered.popitem(last=False)

    def _final(self, cmd_id: str, status: AckStatus, reason: str) -> None:
        self._remember(cmd_id, status, reason)
        if status == "rejected":
            log.warning("camera command %s for %s rejected: %s", cmd_id, self.camera_id, reason)
        self._ack(cmd_id, status, reason)

    def _ack(self, cmd_id: str, status: AckStatus, reason: str = "") -> None:
        self._send(command_ack_topic("cctv", self.camera_id),
                   lambda stamp: CommandAck(**stamp.fields(), cmd_id=cmd_id,
                                            target_id=self.camera_id, status=status,
                                            reason=reason[:300]))

    # ------------------------------------------------------------------ video (own thread)

    def _video(self) -> None:
        retry_s = RETRY_MIN_S
        while not self._stop.is_set():
            source: FrameSource | None = None
            try:
                source = self._open_source()
                self._analyse(source)
                retry_s = RETRY_MIN_S
            except (SourceError, OnvifError) as exc:
                self._video_failed(str(exc))
            finally:
                if source is not None:
                    source.close()
            if self._stop.wait(retry_s):
                return
            retry_s = min(retry_s * 2, RETRY_MAX_S)

    def _open_source(self) -> FrameSource:
        while True:  # the health task connects first: the stream URI comes from the camera
            with self._lock:
                profile, facts = self.profile, self.facts
            if facts is not None or self._stop.is_set():
                break
            if self._stop.wait(0.5):
                raise SourceError("stopping")
        spec = self.spec
        password = spec.password.get_secret_value()
        if spec.video == "snapshot":
            return SnapshotSource(lambda: self._run(self._driver.snapshot(profile)), spec.fps,
                                  self._stop.is_set)
        url = spec.video_url
        if url is None:
            if profile is None:
                raise SourceError(f"camera {self.camera_id} has no media profile to stream")
            url = self._run(self._driver.stream_uri(profile))
        return open_source(url, spec.user, password, spec.timeout_s)

    def _analyse(self, source: FrameSource) -> None:
        spec = self.spec
        width, height = spec.frame_size
        zones_cfg = ZoneDetectorConfig(
            zones=tuple(ZoneConfig(z.zone_id, tuple(z.polygon)) for z in spec.zones),
            queues=tuple(tuple(q) for q in spec.queues), fps=spec.fps)
        zones = ZoneDetector(zones_cfg, (width, height))
        tamper = TamperDetector(TamperConfig(fps=spec.fps)) if spec.tamper else None
        period_s = 1.0 / spec.fps
        next_frame = time.monotonic()
        interval_started = time.monotonic()
        frames_in_window, window_started = 0, time.monotonic()
        away_seen = False
        for frame in source.frames():
            if self._stop.is_set():
                return
            now = time.monotonic()
            if now < next_frame - period_s / 2:
                continue  # the stream is faster than the analysis rate: skip
            next_frame = max(next_frame + period_s, now)
            if frame.shape[1] != width or frame.shape[0] != height:
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            with self._lock:
                away = self._away_until is not None or now < self._settle_until
                reachable = self.reachable
                if self.video_error:
                    log.info("camera %s: video back", self.camera_id)
                    self.video_error = ""
            if away:
                away_seen = True
            elif away_seen:
                # Back at the analysis position: the picture is new to the detectors.
                zones = ZoneDetector(zones_cfg, (width, height))
                tamper = TamperDetector(TamperConfig(fps=spec.fps)) if spec.tamper else None
                away_seen = False
                with self._lock:
                    self.tampers = ()
            small = zones.small(frame)
            if tamper is not None and not away:
                for event in tamper.update(small):
                    self._tamper_changed(event.kind, event.active, tamper.active)
            with self._lock:
                tampered = bool(self.tampers)
            zones.update(small, faulty=away or tampered or not reachable)
            frames_in_window += 1
            if now - window_started >= 5.0:
                with self._lock:
                    self.fps = frames_in_window / (now - window_started)
                frames_in_window, window_started = 0, now
            if now - interval_started >= spec.analytics_interval_s:
                interval_started = now
                self._interval(zones.interval(), zones.present, spec)

    def _tamper_changed(self, kind: str, active: bool, now_active: frozenset[str]) -> None:
        with self._lock:
            self.tampers = contract_tampers(now_active)
        name = TAMPER_NAMES.get(kind, kind)
        if active:
            log.warning("camera %s: tamper %s — %s; its zones report a fault meanwhile",
                        self.camera_id, name, TAMPER_ADVICE.get(name, "check the camera on site"))
        else:
            log.info("camera %s: tamper %s cleared, the picture is sound again", self.camera_id,
                     name)
        self._publish_status(0.0)

    def _interval(self, interval: ZoneInterval, present: np.ndarray, spec: CameraSettings) -> None:
        with self._lock:
            self._feed.add(interval)
        length = {z.zone_id: z.length_m for z in spec.zones}
        queue_m = [0.0] * len(spec.zones)
        ids = [z.zone_id for z in spec.zones]
        for chain, q in zip(spec.queues, interval.queue_zones, strict=False):
            # a chain's queue is reported on its stop-line zone
            queue_m[ids.index(chain[0])] = round(sum(length[i] for i in chain[:q]), 1)
        if not spec.zones:
            return
        self._send(cctv_analytics_topic(self.camera_id),
                   lambda stamp: CctvAnalytics(
                       **stamp.fields(), camera_id=self.camera_id, zone_ids=tuple(ids),
                       presence=tuple(bool(p) for p in present),
                       count=tuple(min(c, 65535) for c in interval.det_count),
                       occupancy_pct=interval.det_occupancy_pct,
                       queue_m=tuple(min(q, 2000.0) for q in queue_m)))
        self.analytics_sent += 1

    def _video_failed(self, error: str) -> None:
        with self._lock:
            first = not self.video_error
            self.video_error = f"video: {error}"[:300]
            self.fps = 0.0
            self._feed.fault_all()
        if first and not self._stop.is_set():
            log.warning("camera %s: %s — retrying; its zones report a fault meanwhile",
                        self.camera_id, error)

    # ------------------------------------------------------------------ telemetry feed

    def take_feed(self) -> dict[int, DetectorFeed]:
        """What the zones saw since the last take, by detector number (agent's poll thread)."""
        with self._lock:
            if not self.reachable or self.video_error or self.spec.video == "off":
                self._feed.fault_all()
            return self._feed.take()

    def status(self) -> dict[str, Any]:
        """For ``kota edge status``."""
        with self._lock:
            facts = self.facts
            return {
                "address": self.spec.address, "name": self.spec.name,
                "intersection_id": self.spec.intersection_id, "reachable": self.reachable,
                "error": self.error, "video_error": self.video_error,
                "model": f"{facts.manufacturer} {facts.model}".strip() if facts else None,
                "firmware": facts.firmware if facts else None,
                "clock_offset_s": self.clock_offset_s, "ptz": bool(facts and facts.has_ptz),
                "position": self.position.model_dump() if self.position else None,
                "fps": round(self.fps, 1), "tampers": list(self.tampers),
                "zones": len(self.spec.zones), "away": self._away_until is not None,
                "last_ok_at": (datetime.fromtimestamp(self.last_ok_at, UTC).isoformat()
                               if self.last_ok_at is not None else None),
            }

    def device_info(self) -> DeviceInfo:
        facts = self.facts
        return DeviceInfo(device_id=self.camera_id, kind="camera",
                          model=(f"{facts.manufacturer} {facts.model}".strip()[:120] if facts else ""),
                          firmware=(facts.firmware[:120] if facts else ""),
                          intersection_id=self.spec.intersection_id)


class _ConfigError(OnvifError):
    """The camera does not have what the settings name."""


class CameraAgent:
    """All cameras of one edge: routing of their commands, their feeds and status."""

    def __init__(self, specs: Sequence[CameraSettings], send: Send, *,
                 issuers: Sequence[str] = (), name: str = "edge-onvif") -> None:
        self._loop = ModbusLoop(name)
        self._issuers = tuple(issuers)
        self.workers = {s.camera_id: CameraWorker(s, self._loop, send) for s in specs}

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(cctv_command_topic(cid), 1) for cid in self.workers]

    def start(self) -> None:
        self._loop.start()
        for worker in self.workers.values():
            worker.start()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        self._loop.stop()

    def on_message(self, topic: str, raw: bytes) -> bool:
        """Handle a camera command; False when the topic is not one of ours."""
        try:
            route = parse_topic(topic)
        except ContractError:
            return False
        if route.spec.domain != "cctv" or route.key not in self.workers:
            return False
        worker = self.workers[route.key]
        try:
            message = decode(topic, raw)
        except ContractError as exc:
            cmd_id = salvage_cmd_id(raw)
            if cmd_id is not None:
                try:
                    worker.reject(cmd_id, f"{exc.reason}: {exc.detail}")
                    return True
                except ValueError:
                    pass
            log.warning("rejected a camera command on %s without an ack (no usable cmd_id): "
                        "%s: %s", topic, exc.reason, exc.detail)
            return True
        if not isinstance(message.payload, CctvCommand):
            log.warning("ignored a %s message on %s", message.kind.value, topic)
            return True
        worker.command(message.payload, self._issuer_allowed(message.payload.issuer))
        return True

    def _issuer_allowed(self, issuer: str) -> bool:
        return not self._issuers or any(fnmatch.fnmatchcase(issuer, p) for p in self._issuers)

    def feeds(self, intersection_id: str) -> dict[int, DetectorFeed]:
        """Camera zones standing in for this intersection's detectors, since the last call."""
        out: dict[int, DetectorFeed] = {}
        for worker in self.workers.values():
            if worker.spec.intersection_id == intersection_id and any(
                    z.detector is not None for z in worker.spec.zones):
                out.update(worker.take_feed())
        return out

    def inventory(self) -> list[DeviceInfo]:
        return [w.device_info() for w in self.workers.values()]

    def status(self) -> dict[str, Any]:
        return {cid: w.status() for cid, w in self.workers.items()}


def _clip(value: float, lo: float, hi: float) -> float:
    return min(max(float(value), lo), hi)


def _fit_snapshot(jpeg: bytes) -> bytes:
    """A snapshot small enough for its message (base64 grows it by a third)."""
    limit = MAX_SNAPSHOT_BYTES * 3 // 4 - 1024
    if len(jpeg) <= limit:
        return jpeg
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise _ConfigError(f"the camera's snapshot ({len(jpeg)} bytes) is not a JPEG picture")
    while True:
        frame = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok and (len(buf) <= limit or frame.shape[1] < 64):
            return buf.tobytes()


def _log_crash(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("carrying out a camera command failed", exc_info=future.exception())
