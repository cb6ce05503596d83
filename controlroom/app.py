"""The control room's composition root: builds storage, ingest, the MQTT link, the traffic
service (when a city layout is configured) and the web API, starts them in order and stops
them in reverse. Nothing else wires components together.

Start order: city layout and attendance rules (validated first, so a bad file stops nothing
half-started) →
database pool → ingest → traffic service (restores open alarms and active overrides) → MQTT
link (announces the control room online, retained, with an offline will) → web API (API keys
and users' log-in sessions)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from controlroom.attendance.alarms import AlarmThresholds
from controlroom.attendance.payroll import Payroll
from controlroom.attendance.payroll_job import PayrollJob
from controlroom.attendance.payroll_store import PayrollStore
from controlroom.attendance.rules import load_rules
from controlroom.attendance.service import AttendanceService
from controlroom.attendance.simpeg import SimpegClient
from controlroom.attendance.store import AttendanceStore
from controlroom.attendance.sync import SimpegSync
from controlroom.auth.service import Authenticator
from controlroom.auth.store import UserStore
from controlroom.cctv.alarms import AlarmThresholds as CameraThresholds
from controlroom.cctv.service import CctvService
from controlroom.cctv.store import CctvStore
from controlroom.ingest import Inbound, Ingest
from controlroom.link import ControlRoomLink
from controlroom.settings import ControlRoomSettings, DatabaseSettings
from controlroom.storage.store import Store, open_pool
from controlroom.traffic.access import KeyRing
from controlroom.traffic.layout import load_layout
from controlroom.traffic.service import TrafficService
from controlroom.web.api import create_api

log = logging.getLogger(__name__)


class ControlRoom:
    """One control-room worker. `start()` returns once it serves; `stop()` is graceful."""

    def __init__(self, settings: ControlRoomSettings, database: DatabaseSettings, conninfo: str,
                 *, city: str, timezone: str) -> None:
        self._settings = settings
        self._database = database
        self._conninfo = conninfo
        self._city = city
        self._timezone = timezone
        self._pool: Any = None
        self._server: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self.store: Store | None = None
        self.ingest: Ingest | None = None
        self.link: ControlRoomLink | None = None
        self.traffic: TrafficService | None = None
        self.attendance: AttendanceService | None = None
        self.cctv: CctvService | None = None
        self.payroll_job: PayrollJob | None = None
        self._simpeg: SimpegClient | None = None
        self.started_at = time.time()

    @property
    def http_port(self) -> int:
        if self._server is not None and self._server.servers:
            return self._server.servers[0].sockets[0].getsockname()[1]
        return self._settings.http_port

    @property
    def url(self) -> str:
        return f"http://{self._settings.http_host}:{self.http_port}/"

    def start(self) -> None:
        """Start everything, or — if any part fails — stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        traffic = self._settings.traffic
        layout = load_layout(traffic.layout) if traffic.layout is not None else None
        # The region's attendance rules, validated before anything starts (RulesError names
        # the file and key).
        rules = load_rules(self._settings.attendance.rules_file)
        self._pool = open_pool(self._conninfo, self._database.pool_min, self._database.pool_max)
        self.store = Store(self._pool)
        self.link = ControlRoomLink(self._settings.mqtt, self._settings.client_id, self._on_message,
                                    shared_group=self._settings.ingest.shared_group,
                                    state_interval_s=self._settings.state_interval_s)
        att = self._settings.attendance
        attendance_store = AttendanceStore(self._pool)
        self.attendance = AttendanceService(
            attendance_store, self.link.publish,
            thresholds=AlarmThresholds(att.stale_after_s, att.capacity_share, att.clock_drift_s),
            alarm_interval_s=att.alarm_interval_s)
        cam = self._settings.cctv
        cctv_store = CctvStore(self._pool)
        self.cctv = CctvService(
            cctv_store, self.link.publish, connected=self.link.connected.is_set,
            thresholds=CameraThresholds(cam.stale_after_s, cam.clock_drift_s),
            alarm_interval_s=cam.alarm_interval_s, command_expiry_s=cam.command_expiry_s,
            ptz_rate_per_s=cam.ptz_rate_per_s)
        self.ingest = Ingest(self._settings.ingest, self.store, attendance=self.attendance,
                             cctv=self.cctv)
        self.ingest.set_ack(self.link.ack)
        if layout is not None:
            if self._settings.ingest.shared_group:
                log.warning("the traffic service runs in a worker that shares the MQTT load "
                            "(shared_group %s): it sees only part of the telemetry",
                            self._settings.ingest.shared_group)
            self.traffic = TrafficService(traffic, *layout, self.store, self.link.publish,
                                          self.link.connected.is_set)
            # Edges keep their controllers on central plans only while they hear us; a stalled
            # control loop must therefore fall silent (a few ticks late is still alive).
            alive_within_s = max(2.0, 10 * traffic.tick_s)
            service = self.traffic
            self.link.set_healthy(lambda: service.alive(alive_within_s))
        payroll = Payroll(PayrollStore(self._pool), rules)
        if att.payroll_interval_s > 0:
            sync = None
            if att.simpeg is not None:
                self._simpeg = SimpegClient(att.simpeg.base_url, att.simpeg.client_id,
                                            att.simpeg.client_secret,
                                            timeout_s=att.simpeg.timeout_s,
                                            retries=att.simpeg.retries)
                sync = SimpegSync(self._simpeg, payroll)
            self.payroll_job = PayrollJob(payroll, sync, interval_s=att.payroll_interval_s,
                                          previous_until_day=att.previous_month_until_day)
        self.ingest.start()
        self.attendance.start()
        self.cctv.start()
        if self.payroll_job is not None:
            self.payroll_job.start()
        if self.traffic is not None:
            self.traffic.start()
        self.link.start()
        app = create_api(self.store, self.health, city=self._city, timezone=self._timezone,
                         stale_after_s=self._settings.edge_stale_s, traffic=self.traffic,
                         keys=KeyRing(self._settings.api_keys), attendance=attendance_store,
                         machine_stale_after_s=att.stale_after_s,
                         payroll=payroll, payroll_job=self.payroll_job, cctv=self.cctv,
                         cctv_store=cctv_store,
                         signer=(att.signer_title, att.signer_name, att.signer_nip),
                         auth=Authenticator(UserStore(self._pool), self._settings.auth),
                         layout=layout[0] if layout is not None else None)
        config = uvicorn.Config(app, host=self._settings.http_host, port=self._settings.http_port,
                                log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._http_thread = threading.Thread(target=self._server.run, name="kota-http", daemon=True)
        self._http_thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._http_thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"web API could not start on {self._settings.http_host}:"
                                   f"{self._settings.http_port} — is the port taken? set "
                                   "[controlroom] http_port (KOTA_CONTROLROOM__HTTP_PORT)")
            time.sleep(0.05)
        log.info("control room serving %s", self.url)

    def _on_message(self, topic: str, payload: bytes, qos: int, mid: int) -> None:
        assert self.ingest is not None
        self.ingest.offer(Inbound(topic, payload, qos, mid, time.monotonic()))
        # The traffic service reads its own copy, so control never waits for storage.
        if self.traffic is not None:
            self.traffic.offer(topic, payload)

    def health(self) -> dict[str, Any]:
        assert self.ingest is not None and self.link is not None
        return {
            "uptime_s": round(time.time() - self.started_at, 1),
            "mqtt": {"connected": self.link.connected.is_set(), "url": self._settings.mqtt.url},
            "ingest": {**self.ingest.stats.as_dict(), "backlog": self.ingest.backlog()},
            "traffic": self.traffic.health() if self.traffic is not None else None,
            "attendance": self.attendance.health() if self.attendance is not None else None,
            "cctv": self.cctv.health() if self.cctv is not None else None,
            "payroll": self.payroll_job.health() if self.payroll_job is not None else None,
        }

    def stop(self) -> None:
        if self._server is not None:
            # Open live-feed streams would keep the web server waiting for them to finish.
            self._server.config.app.state.live_feed.close()
            self._server.should_exit = True
        if self._http_thread is not None:
            self._http_thread.join(10)
        # Stop sending commands, then disconnect, then store what is queued. Its QoS 1 messages
        # stay unacknowledged, so the broker redelivers them to the persistent session and
        # storage drops the copies.
        if self.payroll_job is not None:
            self.payroll_job.stop()
        if self._simpeg is not None:
            self._simpeg.close()
        if self.traffic is not None:
            self.traffic.stop()
        if self.link is not None:
            self.link.stop()
        if self.ingest is not None:
            self.ingest.stop()
        if self.attendance is not None:
            self.attendance.stop()
        if self.cctv is not None:
            self.cctv.stop()
        if self._pool is not None:
            self._pool.close()
        log.info("control room stopped")
