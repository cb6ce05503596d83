"""The edge agent's section of the settings tree (`[edge]`); validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from edge.contract import Ident, MqttEndpoint, ZoneName
from firmware_sim.simple_intersection import MIN_SPLIT_S

# The controller's watchdog register holds 1..600 s (devices.controller.registers CONTROL).
WATCHDOG_MIN_S = 1.0
WATCHDOG_MAX_S = 600.0
DEFAULT_SCAN_S = 0.25  # how often a controller is read by default (ControllerSettings.scan_s)


def default_scan_s(poll_interval_s: float) -> float:
    """How often a controller is read when its settings name no scan_interval_s."""
    return min(DEFAULT_SCAN_S, poll_interval_s)


class SimulatedIntersectionSettings(BaseModel):
    """A stand-in intersection device: a fixed-time signal and detectors with synthetic traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intersection_id: Ident = Field(description="Id of the intersection this device serves.")
    phases: int = Field(4, ge=2, le=16, description="Number of signal phases.")
    detectors: int = Field(16, ge=0, le=128, description="Number of vehicle detectors.")
    cycle_s: float = Field(60.0, ge=20, le=240, description="Fixed-time cycle length.")
    peak_veh_per_h: float = Field(
        900.0, ge=0, le=5000, description="Synthetic flow per detector at the peak of the day."
    )
    seed: int = Field(0, description="Random seed, so a run can be repeated.")
    detector_fault_every_s: float | None = Field(
        None, ge=0.1, le=86_400,
        description="If set, detector 1 turns faulty and healthy again every this many seconds, "
        "so that fault and recovery events flow (demo, tests).",
    )

    @model_validator(mode="after")
    def _cycle_fits_phases(self) -> SimulatedIntersectionSettings:
        # Each phase needs its minimum green plus yellow and all-red within the cycle.
        need_s = self.phases * MIN_SPLIT_S
        if self.cycle_s < need_s:
            raise ValueError(f"cycle_s {self.cycle_s:g} is too short for {self.phases} phases "
                             f"(at least {need_s:g} s: {MIN_SPLIT_S:g} s per phase)")
        return self


class ControllerSettings(BaseModel):
    """A real traffic-signal controller reached over Modbus TCP (``devices.controller``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intersection_id: Ident = Field(description="Id of the intersection this controller runs.")
    host: Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)] = Field(
        description="IP address or host name of the controller (or of its Modbus TCP gateway).")
    port: int = Field(502, ge=1, le=65535, description="Modbus TCP port.")
    unit: int = Field(1, ge=0, le=255, description="Modbus unit id the controller answers to.")
    timeout_s: float = Field(1.0, ge=0.05, le=30, description="Time one Modbus request may take "
                             "before the controller counts as not answering.")
    poll_interval_s: float = Field(1.0, ge=0.05, le=60, description="How often the "
                                   "intersection's telemetry is sent (one message per interval, "
                                   "plus the early ones of early_report_gap_s).")
    scan_interval_s: float | None = Field(
        None, ge=0.05, le=60,
        description="How often status and detectors are read; at most poll_interval_s. The "
        "scans between two telemetry messages are summed into the next one, and a scan that "
        "shows a demand jump (a detector counting a vehicle or more above its recent rate) is "
        "sent at once. Default: a quarter of a second, or poll_interval_s if that is shorter.")
    early_report_gap_s: float | None = Field(
        5.0, ge=0.5, le=3600,
        description="At most one early telemetry message (a demand jump seen on a scan) per "
        "this long per intersection, so the extra messages stay bounded; null: never early.")
    watchdog_timeout_s: float = Field(
        30.0, ge=WATCHDOG_MIN_S, le=WATCHDOG_MAX_S,
        description="Central watchdog the agent sets on the controller: without a kick for this "
        "long (controller time) the controller falls back to its local plan. While the control "
        "room is alive the agent kicks it on a poll that finds less than two thirds of it left "
        "(every poll if the controller reports none).")
    reconnect_max_s: float = Field(30.0, ge=0.1, le=600, description="Longest wait between "
                                   "reconnect attempts to an unreachable controller.")
    location: str = Field("", max_length=120, description="Where the cabinet stands, for "
                          "technicians (shown by `kota edge status`).")

    @property
    def scan_s(self) -> float:
        """How often the controller is read (``scan_interval_s`` or its default)."""
        if self.scan_interval_s is not None:
            return self.scan_interval_s
        return default_scan_s(self.poll_interval_s)

    @model_validator(mode="after")
    def _scan_within_poll(self) -> ControllerSettings:
        if self.scan_interval_s is not None and self.scan_interval_s > self.poll_interval_s:
            raise ValueError(f"scan_interval_s {self.scan_interval_s:g} must not exceed "
                             f"poll_interval_s {self.poll_interval_s:g} (every telemetry "
                             "message needs a fresh reading)")
        return self

    @model_validator(mode="after")
    def _watchdog_outlasts_polls(self) -> ControllerSettings:
        # Kicks ride on polls: one late poll must not cost the central plan.
        if self.watchdog_timeout_s < 2 * self.poll_interval_s:
            raise ValueError(f"watchdog_timeout_s {self.watchdog_timeout_s:g} must be at least "
                             f"twice poll_interval_s {self.poll_interval_s:g}")
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port} unit {self.unit}"


class AttendanceMachineSettings(BaseModel):
    """A ZKTeco attendance machine in an office, reached over the ZK protocol (``devices.zk``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_sn: Ident = Field(description="The machine's serial number (`kota device zk info` "
                             "shows it); a machine at the address with another serial is refused.")
    host: Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)] = Field(
        description="IP address or host name of the machine.")
    port: int = Field(4370, ge=1, le=65535, description="ZK protocol port.")
    comm_key: int = Field(0, ge=0, le=999_999, description="The machine's communication key "
                          "(menu Comm. → Connection password); 0 when none is set.")
    udp: bool = Field(False, description="Talk UDP instead of TCP (older firmware).")
    tz: ZoneName = Field("Asia/Jakarta", description="The office's zone: Asia/Jakarta (WIB), "
                         "Asia/Makassar (WITA) or Asia/Jayapura (WIT); the machine keeps local "
                         "time.")
    office: str = Field("", max_length=120, description="The office (SKPD) the machine stands in.")
    timeout_s: float = Field(10.0, ge=0.5, le=120, description="Time one request may take.")
    pull_interval_s: float = Field(60.0, ge=1, le=86_400, description="How often new punches "
                                   "are read (at once, too, when a command or a live punch "
                                   "arrives).")
    live: bool = Field(True, description="Hold a live-event connection to the machine so a "
                       "punch is read within a second; punches are pulled every "
                       "pull_interval_s regardless. Turn off for a machine that allows one "
                       "connection only.")
    max_drift_s: float = Field(30.0, ge=1, le=86_400, description="The machine's clock is set "
                               "when it is off by more than this.")
    clear_when_stored: bool = Field(False, description="Clear the machine's log once every "
                                    "punch on it is confirmed stored by the control room (and "
                                    "it is clear_at_share full). Off: the log is never cleared.")
    clear_at_share: float = Field(0.5, gt=0, le=1, description="With clear_when_stored: clear "
                                  "only once the log is at least this share of its capacity.")
    resend_after_s: float = Field(600.0, ge=10, le=86_400, description="A batch the control "
                                  "room has not confirmed stored after this long is sent again.")


Point = tuple[float, float]
Host = Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]


class CameraZoneSettings(BaseModel):
    """One detection zone drawn on the camera picture: a virtual loop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone_id: Ident = Field(description="Id of the zone (unique within the camera).")
    polygon: list[Point] = Field(min_length=3, max_length=32, description="Corners in pixels "
                                 "of the picture at frame_size, e.g. [[420, 120], [452, 120], "
                                 "[452, 158], [420, 158]].")
    detector: int | None = Field(None, ge=1, le=128, description="The detector number (1-based, "
                                 "as in the city layout) this zone stands in for at the camera's "
                                 "intersection; its counts and occupancy go into that "
                                 "intersection's telemetry like a loop's.")
    length_m: float = Field(3.0, gt=0, le=200, description="Length of road the zone covers "
                            "(queue length = occupied zones of a queue chain × this).")


class CameraSettings(BaseModel):
    """An ONVIF camera (``devices.onvif``): health, PTZ, snapshots and video detectors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: Ident = Field(description="Id of the camera in the control room.")
    host: Host = Field(description="IP address or host name of the camera.")
    port: int = Field(80, ge=1, le=65535, description="HTTP port of the camera's ONVIF services.")
    user: str = Field("admin", min_length=1, max_length=64, description="ONVIF user.")
    password: SecretStr = Field(SecretStr(""), description="ONVIF password.")
    name: str = Field("", max_length=120, description="Where the camera looks, for operators.")
    intersection_id: Ident | None = Field(None, description="The intersection the camera "
                                          "watches; needed when zones stand in for detectors.")
    timeout_s: float = Field(5.0, ge=0.5, le=60, description="Time one ONVIF request may take.")
    profile: str | None = Field(None, max_length=64, description="Media profile token for video "
                                "and snapshots; default: the camera's first profile.")
    video: Literal["stream", "snapshot", "off"] = Field(
        "stream", description="How the video detectors get frames: the profile's stream "
        "(RTSP through FFmpeg, or video_url), repeated snapshots, or no video analysis.")
    video_url: str | None = Field(None, max_length=500, description="Read this stream instead "
                                  "of the profile's stream URI: an http(s) MJPEG or an rtsp URL.")
    fps: float = Field(5.0, ge=0.5, le=30, description="Frames analysed per second (extra "
                       "frames are skipped).")
    frame_size: tuple[int, int] = Field((640, 360), description="Width and height of the "
                                        "picture the zones are drawn on; frames are scaled to it.")
    zones: list[CameraZoneSettings] = Field(default_factory=list, max_length=128,
                                            description="Detection zones (virtual loops).")
    queues: list[list[Ident]] = Field(default_factory=list, max_length=32, description="Queue "
                                      "chains: zone ids from the stop line back.")
    tamper: bool = Field(True, description="Watch the picture for blur, blackout, a moved view "
                         "and a frozen stream.")
    analytics_interval_s: float = Field(1.0, ge=0.5, le=60, description="How often zone "
                                        "counts and occupancy are published.")
    snapshot_interval_s: float = Field(60.0, ge=0, le=86_400, description="How often a snapshot "
                                       "is published (0: only on request).")
    status_interval_s: float = Field(10.0, ge=1, le=600, description="How often the camera's "
                                     "health (clock, PTZ position) is read; status is published "
                                     "on change and at least every 3 × this.")
    ptz_min_interval_s: float = Field(0.2, ge=0, le=10, description="PTZ commands closer than "
                                      "this to the previous one are refused (rate limit).")
    return_after_s: float = Field(300.0, ge=0, le=86_400, description="After an operator moved "
                                  "the camera, return to the analysis position once no PTZ "
                                  "command came for this long (0: stay). While away, its "
                                  "zones report a fault.")
    home_preset: str | None = Field(None, max_length=64, description="Preset token of the "
                                    "analysis position; default: where the camera points when "
                                    "the agent starts.")

    @model_validator(mode="after")
    def _zones_fit(self) -> CameraSettings:
        width, height = self.frame_size
        if not (16 <= width <= 4096 and 16 <= height <= 4096):
            raise ValueError(f"frame_size {width}×{height} is out of range (16..4096)")
        ids = [z.zone_id for z in self.zones]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera {self.camera_id}: zone ids repeated: {', '.join(dupes)}")
        for z in self.zones:
            for x, y in z.polygon:
                if not (0 <= x <= width and 0 <= y <= height):
                    raise ValueError(f"camera {self.camera_id} zone {z.zone_id}: point "
                                     f"({x:g}, {y:g}) lies outside the {width}×{height} picture")
        for chain in self.queues:
            unknown = [i for i in chain if i not in ids]
            if unknown:
                raise ValueError(f"camera {self.camera_id}: queue chain names unknown zones: "
                                 f"{', '.join(unknown)}")
        detectors = [z.detector for z in self.zones if z.detector is not None]
        if detectors and self.intersection_id is None:
            raise ValueError(f"camera {self.camera_id}: zones stand in for detectors, so "
                             "intersection_id must say which intersection's")
        if self.video_url is not None and not self.video_url.lower().startswith(
                ("http://", "https://", "rtsp://", "rtsps://")):
            raise ValueError(f"camera {self.camera_id}: video_url must be http(s) or rtsp")
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class EdgeSettings(BaseModel):
    """One edge agent: who it is, where its broker is, its outbox and its devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    edge_id: Ident = Field("edge-demo-1", description="Unique id of this edge box.")
    mqtt: MqttEndpoint = Field(
        default_factory=lambda: MqttEndpoint(url="mqtt://127.0.0.1:11883"),
        description="Broker this agent publishes to.",
    )
    state_dir: Path | None = Field(
        None,
        description="Folder for the outbox (SQLite, WAL) and the epoch counter; "
        "default: <data_dir>/edge/<edge_id>.",
    )
    poll_interval_s: float = Field(1.0, ge=0.05, le=60, description="How often devices are polled.")
    telemetry_cap: int = Field(
        86_400,
        ge=10,
        le=10_000_000,
        description="Most telemetry messages kept in the outbox while the broker is unreachable; "
        "the oldest are dropped first. Events and acks are never dropped.",
    )
    publish_batch: int = Field(200, ge=1, le=10_000, description="Outbox rows read per drain step.")
    inflight_max: int = Field(100, ge=1, le=10_000, description="Most unacknowledged QoS 1 messages.")
    simulated: list[SimulatedIntersectionSettings] = Field(
        default_factory=lambda: [
            SimulatedIntersectionSettings(intersection_id="simpang-tugu", phases=4, cycle_s=90, seed=1),
            SimulatedIntersectionSettings(intersection_id="simpang-pasar", phases=3, cycle_s=75, seed=2),
            SimulatedIntersectionSettings(intersection_id="simpang-alun-alun", phases=4, cycle_s=100,
                                          seed=3),
        ],
        description="Simulated intersection devices this agent polls (demo and tests). Default: "
        "three demo intersections, or none when `controllers` are configured.",
    )
    controllers: list[ControllerSettings] = Field(
        default_factory=list, max_length=256,
        description="Real traffic-signal controllers this agent polls over Modbus TCP.",
    )
    attendance: list[AttendanceMachineSettings] = Field(
        default_factory=list, max_length=512,
        description="ZKTeco attendance machines this agent keeps in sync (an office edge).",
    )
    cameras: list[CameraSettings] = Field(
        default_factory=list, max_length=256,
        description="ONVIF cameras this agent watches, moves and runs video detectors on.",
    )
    controlroom_liveness_s: float = Field(
        30.0, ge=1, le=3600,
        description="The control room counts as alive (and controller watchdogs are fed) while "
        "its retained state says online and it was heard — a state message or a command for "
        "this edge — within this many seconds, on the current broker connection.",
    )
    command_issuers: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=64,
        description="Issuers whose commands this agent obeys, as shell patterns "
        "(e.g. 'controlroom', 'operator-*'); empty: any issuer the broker lets publish.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_demo_beside_controllers(cls, data: Any) -> Any:
        # A pole with real controllers, or an office box, must not also run the three demo
        # intersections.
        if (isinstance(data, dict) and (data.get("controllers") or data.get("attendance")
                                        or data.get("cameras"))
                and "simulated" not in data):
            data = {**data, "simulated": []}
        return data

    @model_validator(mode="after")
    def _unique_intersections(self) -> EdgeSettings:
        ids = [d.intersection_id for d in self.simulated] + [c.intersection_id for c in self.controllers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"intersection ids must be unique, repeated: {', '.join(dupes)}")
        addresses = [(c.host, c.port, c.unit) for c in self.controllers]
        twice = sorted({f"{h}:{p} unit {u}" for h, p, u in addresses if addresses.count((h, p, u)) > 1})
        if twice:
            raise ValueError(f"two controllers at one address: {', '.join(twice)}")
        serials = [m.device_sn for m in self.attendance]
        dupes = sorted({sn for sn in serials if serials.count(sn) > 1})
        if dupes:
            raise ValueError(f"attendance machine serials must be unique, repeated: {', '.join(dupes)}")
        places = [(m.host, m.port) for m in self.attendance]
        twice = sorted({f"{h}:{p}" for h, p in places if places.count((h, p)) > 1})
        if twice:
            raise ValueError(f"two attendance machines at one address: {', '.join(twice)}")
        cams = [c.camera_id for c in self.cameras]
        dupes = sorted({c for c in cams if cams.count(c) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique, repeated: {', '.join(dupes)}")
        fed: dict[tuple[str, int], str] = {}
        for cam in self.cameras:
            for z in cam.zones:
                if z.detector is None:
                    continue
                assert cam.intersection_id is not None
                if cam.intersection_id not in ids:
                    raise ValueError(f"camera {cam.camera_id} feeds detectors of intersection "
                                     f"{cam.intersection_id}, which this agent does not serve")
                key = (cam.intersection_id, z.detector)
                if key in fed:
                    raise ValueError(f"detector {z.detector} of {cam.intersection_id} is fed by "
                                     f"two zones: {fed[key]} and {cam.camera_id}/{z.zone_id}")
                fed[key] = f"{cam.camera_id}/{z.zone_id}"
        return self
