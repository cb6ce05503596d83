"""The MQTT contract between edge agents and the control room: topics, payload models, codec.

This is the one definition of every topic and payload (DESIGN.md, "MQTT contract"); nothing
else builds a topic string or parses a payload. It is pure: no sockets, no MQTT client.

Refinements of the DESIGN.md starting point, and why:

* Every edge-sent payload carries ``epoch`` as well as ``seq``. ``seq`` restarts when an
  agent restarts, so de-duplication (outbox resends, QoS 1 redelivery) keys on
  ``(edge_id, epoch, seq)``; the epoch is a counter the agent persists and bumps per start.
* Edge state carries ``conn`` (connection number within the epoch). A will is registered per
  connection, so the control room orders state messages by ``(epoch, conn)`` and, for the
  same pair, lets ``offline`` win: a late will of an old session is ignored and a will that
  follows its own birth is honoured.
* Topic ids and payload ids must agree (``intersection_id`` in a telemetry payload equals the
  topic's id); a mismatch is a forged or misrouted message and is rejected.
* Cameras take commands too: ``kota/v1/cctv/{camera_id}/cmd`` (PTZ moves, presets, a
  snapshot on request), shaped like traffic commands (``cmd_id``, ``issuer``, ``expires_at``)
  and answered on ``cctv/{camera_id}/cmd_ack``. A requested snapshot names its ``cmd_id``.
* Payloads are capped (``MAX_PAYLOAD_BYTES``) before any parsing, so an oversize message
  costs nothing but a counter.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
TOPIC_ROOT = "kota/v1"
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_SNAPSHOT_BYTES = 512 * 1024
MAX_PHASES = 16
MAX_DETECTORS = 128

# Ids travel in topics, so they may not hold MQTT wildcards or separators.
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a zone (UTC, e.g. 2026-11-22T10:00:00Z)")
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- errors


class ContractError(ValueError):
    """A message that does not follow the contract; ``reason`` is a short stable label."""

    reason = "invalid"

    def __init__(self, detail: str, topic: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.topic = topic


class ForeignTopicError(ContractError):
    reason = "foreign_topic"


class OversizeError(ContractError):
    reason = "oversize"


class InvalidJsonError(ContractError):
    reason = "invalid_json"


class UnknownVersionError(ContractError):
    reason = "unknown_version"


class SchemaError(ContractError):
    reason = "schema"


class TopicMismatchError(ContractError):
    reason = "topic_mismatch"


# --------------------------------------------------------------------------- broker endpoint


class MqttEndpoint(BaseModel):
    """How a process reaches the broker; both sides of the contract use it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="Broker URL: mqtt://host:port or mqtts://host:port (TLS).",
    )
    username: str | None = Field(None, description="Broker user name, if the broker wants one.")
    password: str | None = Field(None, description="Broker password.")
    ca_file: str | None = Field(None, description="CA bundle for mqtts:// (system CAs if unset).")
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1",
        description="MQTT protocol version. Use 5 with Mosquitto/EMQX (shared subscriptions, "
        "ACL errors reported); the embedded broker speaks only 3.1.1.",
    )
    keepalive_s: int = Field(
        10, ge=2, le=600, description="Keep-alive; the broker sends the will after 1.5x this."
    )
    reconnect_min_s: float = Field(0.5, gt=0, le=60, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="Longest reconnect delay.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("URL names no host")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from exc
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


# --------------------------------------------------------------------------- topics


class Kind(enum.StrEnum):
    """Every message kind of the contract, named after its topic's last level."""

    EDGE_STATE = "edge_state"
    TELEMETRY = "telemetry"
    EVENT = "event"
    COMMAND = "cmd"
    COMMAND_ACK = "cmd_ack"
    CCTV_STATUS = "cctv_status"
    CCTV_ANALYTICS = "cctv_analytics"
    CCTV_SNAPSHOT = "cctv_snapshot"
    CCTV_COMMAND = "cctv_cmd"
    ATTENDANCE_LOGS = "attendance_logs"
    ATTENDANCE_STORED = "attendance_stored"
    ATTENDANCE_STATUS = "attendance_status"
    ATTENDANCE_COMMAND = "attendance_cmd"
    CONTROLROOM_STATE = "controlroom_state"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    kind: Kind
    domain: str
    leaf: str
    qos: int
    retain: bool


# (domain, leaf) -> spec; DESIGN.md's table as data.
_SPECS = {
    ("edge", "state"): TopicSpec(Kind.EDGE_STATE, "edge", "state", 1, True),
    ("traffic", "telemetry"): TopicSpec(Kind.TELEMETRY, "traffic", "telemetry", 0, False),
    ("traffic", "event"): TopicSpec(Kind.EVENT, "traffic", "event", 1, False),
    ("traffic", "cmd"): TopicSpec(Kind.COMMAND, "traffic", "cmd", 1, False),
    ("traffic", "cmd_ack"): TopicSpec(Kind.COMMAND_ACK, "traffic", "cmd_ack", 1, False),
    ("cctv", "cmd_ack"): TopicSpec(Kind.COMMAND_ACK, "cctv", "cmd_ack", 1, False),
    ("attendance", "cmd_ack"): TopicSpec(Kind.COMMAND_ACK, "attendance", "cmd_ack", 1, False),
    ("cctv", "status"): TopicSpec(Kind.CCTV_STATUS, "cctv", "status", 1, True),
    ("cctv", "analytics"): TopicSpec(Kind.CCTV_ANALYTICS, "cctv", "analytics", 0, False),
    ("cctv", "snapshot"): TopicSpec(Kind.CCTV_SNAPSHOT, "cctv", "snapshot", 0, False),
    ("cctv", "cmd"): TopicSpec(Kind.CCTV_COMMAND, "cctv", "cmd", 1, False),
    ("attendance", "logs"): TopicSpec(Kind.ATTENDANCE_LOGS, "attendance", "logs", 1, False),
    ("attendance", "stored"): TopicSpec(Kind.ATTENDANCE_STORED, "attendance", "stored", 1, False),
    ("attendance", "status"): TopicSpec(Kind.ATTENDANCE_STATUS, "attendance", "status", 1, True),
    ("attendance", "cmd"): TopicSpec(Kind.ATTENDANCE_COMMAND, "attendance", "cmd", 1, False),
}
SPEC_BY_KIND: dict[Kind, TopicSpec] = {s.kind: s for s in _SPECS.values()}
SPEC_BY_KIND[Kind.CONTROLROOM_STATE] = TopicSpec(
    Kind.CONTROLROOM_STATE, "controlroom", "state", 1, True
)


def _topic(domain: str, key: str, leaf: str) -> str:
    _check_ident(key)
    return f"{TOPIC_ROOT}/{domain}/{key}/{leaf}"


_ID_RE = re.compile(_ID_PATTERN)


def _check_ident(key: str) -> None:
    if not _ID_RE.match(key):
        raise ValueError(f"not a valid id for a topic: {key!r}")


def edge_state_topic(edge_id: str) -> str:
    return _topic("edge", edge_id, "state")


def telemetry_topic(intersection_id: str) -> str:
    return _topic("traffic", intersection_id, "telemetry")


def event_topic(intersection_id: str) -> str:
    return _topic("traffic", intersection_id, "event")


def command_topic(intersection_id: str) -> str:
    return _topic("traffic", intersection_id, "cmd")


def command_ack_topic(domain: Literal["traffic", "cctv", "attendance"], key: str) -> str:
    return _topic(domain, key, "cmd_ack")


def cctv_status_topic(camera_id: str) -> str:
    return _topic("cctv", camera_id, "status")


def cctv_analytics_topic(camera_id: str) -> str:
    return _topic("cctv", camera_id, "analytics")


def cctv_snapshot_topic(camera_id: str) -> str:
    return _topic("cctv", camera_id, "snapshot")


def cctv_command_topic(camera_id: str) -> str:
    return _topic("cctv", camera_id, "cmd")


def attendance_logs_topic(device_sn: str) -> str:
    return _topic("attendance", device_sn, "logs")


def attendance_stored_topic(device_sn: str) -> str:
    return _topic("attendance", device_sn, "stored")


def attendance_status_topic(device_sn: str) -> str:
    return _topic("attendance", device_sn, "status")


def attendance_command_topic(device_sn: str) -> str:
    return _topic("attendance", device_sn, "cmd")


def controlroom_state_topic() -> str:
    return f"{TOPIC_ROOT}/controlroom/state"


# What the control room subscribes to (everything edges send) and what an edge subscribes to.
CONTROLROOM_SUBSCRIPTIONS: tuple[tuple[str, int], ...] = (
    (f"{TOPIC_ROOT}/edge/+/state", 1),
    (f"{TOPIC_ROOT}/traffic/+/telemetry", 0),
    (f"{TOPIC_ROOT}/traffic/+/event", 1),
    (f"{TOPIC_ROOT}/+/+/cmd_ack", 1),
    (f"{TOPIC_ROOT}/cctv/+/status", 1),
    (f"{TOPIC_ROOT}/cctv/+/analytics", 0),
    (f"{TOPIC_ROOT}/cctv/+/snapshot", 0),
    (f"{TOPIC_ROOT}/attendance/+/logs", 1),
    (f"{TOPIC_ROOT}/attendance/+/status", 1),
)


def shared(filter_: str, group: str) -> str:
    """A shared-subscription filter, so several control-room workers split the load."""
    return f"$share/{group}/{filter_}"


@dataclass(frozen=True, slots=True)
class Route:
    spec: TopicSpec
    key: str  # the id in the topic: edge, intersection, camera or device serial


def parse_topic(topic: str) -> Route:
    """Map a topic to its spec and id, or raise ForeignTopicError."""
    if topic == controlroom_state_topic():
        return Route(SPEC_BY_KIND[Kind.CONTROLROOM_STATE], "controlroom")
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise ForeignTopicError(f"topic is not part of the {TOPIC_ROOT} contract", topic)
    spec = _SPECS.get((parts[2], parts[4]))
    if spec is None:
        raise ForeignTopicError(f"no such message: {parts[2]}/…/{parts[4]}", topic)
    if not _ID_RE.match(parts[3]):
        raise ForeignTopicError(f"bad id in topic: {parts[3]!r}", topic)
    return Route(spec, parts[3])


# --------------------------------------------------------------------------- payloads


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    ts: UtcTime


class EdgeMessage(Payload):
    """Anything an edge agent sends: who, which run of the agent, which message of that run."""

    edge_id: Ident
    epoch: int = Field(ge=1, le=2**62)
    seq: int = Field(ge=0, le=2**62)


class DeviceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: Ident
    kind: Literal["controller", "detector", "camera", "attendance", "simulated"]
    model: str = Field("", max_length=120)
    firmware: str = Field("", max_length=120)
    intersection_id: Ident | None = None


class EdgeState(EdgeMessage):
    status: Literal["online", "offline"]
    conn: int = Field(ge=1, le=2**31)
    inventory: tuple[DeviceInfo, ...] = Field((), max_length=512)
    versions: dict[str, Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=dict, max_length=32
    )
    reason: str = Field("", max_length=200)


class SignalState(enum.StrEnum):
    RED = "R"
    YELLOW = "Y"
    GREEN = "G"
    FLASH_YELLOW = "y"
    FLASH_RED = "r"
    DARK = "X"


class UnitMode(enum.StrEnum):
    OFF = "off"
    FLASH = "flash"
    LOCAL_FIXED = "local_fixed"
    LOCAL_ACTUATED = "local_actuated"
    CENTRAL = "central"


def _finite_pct(values: tuple[float, ...]) -> tuple[float, ...]:
    for value in values:
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise ValueError("occupancy must be a finite percentage 0..100")
    return values


class TrafficTelemetry(EdgeMessage):
    """One second of one intersection: signal state per phase and detectors as arrays."""

    intersection_id: Ident
    mode: UnitMode
    plan: int | None = Field(None, ge=0, le=255)
    cycle_timer_s: float | None = Field(None, ge=0, le=600)
    signal: tuple[SignalState, ...] = Field(max_length=MAX_PHASES)
    det_count: tuple[Annotated[int, Field(ge=0, le=65535)], ...] = Field(max_length=MAX_DETECTORS)
    det_occupancy_pct: Annotated[tuple[float, ...], AfterValidator(_finite_pct)] = Field(
        max_length=MAX_DETECTORS
    )
    det_fault: tuple[bool, ...] = Field(max_length=MAX_DETECTORS)

    @model_validator(mode="after")
    def _same_length(self) -> TrafficTelemetry:
        n = len(self.det_count)
        if len(self.det_occupancy_pct) != n or len(self.det_fault) != n:
            raise ValueError("det_count, det_occupancy_pct and det_fault must have one entry per detector")
        return self


class EventKind(enum.StrEnum):
    MODE_CHANGE = "mode_change"
    FALLBACK = "fallback"
    DETECTOR_FAULT = "detector_fault"
    DETECTOR_RECOVERED = "detector_recovered"
    CONTROLLER_ALARM = "controller_alarm"
    CONFLICT = "conflict"
    DEVICE_OFFLINE = "device_offline"
    DEVICE_ONLINE = "device_online"


class TrafficEvent(EdgeMessage):
    intersection_id: Ident
    kind: EventKind
    severity: Literal["info", "warning", "critical"] = "info"
    detail: str = Field("", max_length=500)
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=32)


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["plan"] = "plan"
    plan: int = Field(ge=1, le=255)
    cycle_s: float = Field(gt=0, le=300)
    offset_s: float = Field(ge=0, le=300)
    splits_s: tuple[Annotated[float, Field(ge=0, le=300)], ...] = Field(min_length=1, max_length=MAX_PHASES)


class OverrideBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["override"] = "override"
    action: Literal["hold", "force", "flash", "release"]
    phase: int | None = Field(None, ge=1, le=MAX_PHASES)


class TrafficCommand(Payload):
    """A command to an intersection. It is void after ``expires_at``."""

    cmd_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    issuer: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    intersection_id: Ident
    expires_at: UtcTime
    body: Annotated[PlanBody | OverrideBody, Field(discriminator="type")]

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> TrafficCommand:
        if self.expires_at <= self.ts:
            raise ValueError("expires_at must be after ts")
        return self


class CommandAck(EdgeMessage):
    cmd_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    target_id: Ident
    status: Literal["accepted", "applied", "rejected"]
    reason: str = Field("", max_length=300)


Tamper = Literal["blur", "blackout", "moved", "frozen"]


class PtzPosition(BaseModel):
    """A PTZ position in ONVIF's generic spaces: pan and tilt −1..1, zoom 0..1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pan: float = Field(ge=-1, le=1)
    tilt: float = Field(ge=-1, le=1)
    zoom: float = Field(ge=0, le=1)


PresetToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class PresetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token: PresetToken
    name: str = Field("", max_length=64)


class CctvStatus(EdgeMessage):
    """What the edge knows of one camera; retained, so it is the current state.

    ``tamper`` is the most serious tamper condition now ("none" when the picture is sound),
    ``tampers`` all of them. ``fps`` is the rate the video detectors analyse (0: no video).
    """

    camera_id: Ident
    reachable: bool
    fps: float = Field(0.0, ge=0, le=240)
    tamper: Literal["none", "blur", "blackout", "moved", "frozen"] = "none"
    tampers: tuple[Tamper, ...] = Field((), max_length=4)
    intersection_id: Ident | None = None
    name: str = Field("", max_length=120)
    model: str = Field("", max_length=120)
    firmware: str = Field("", max_length=120)
    ptz: bool = False
    position: PtzPosition | None = None
    presets: tuple[PresetInfo, ...] = Field((), max_length=64)
    clock_offset_s: float | None = Field(None, ge=-1e9, le=1e9)  # camera clock − edge clock
    zones: int = Field(0, ge=0, le=MAX_DETECTORS)
    error: str = Field("", max_length=300)


class PtzMoveBody(BaseModel):
    """Move continuously at these speeds (−1..1) until stopped, at most ``timeout_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ptz_move"] = "ptz_move"
    pan: float = Field(0.0, ge=-1, le=1)
    tilt: float = Field(0.0, ge=-1, le=1)
    zoom: float = Field(0.0, ge=-1, le=1)
    timeout_s: float = Field(1.0, ge=0.1, le=10)

    @model_validator(mode="after")
    def _moves(self) -> PtzMoveBody:
        if self.pan == 0 and self.tilt == 0 and self.zoom == 0:
            raise ValueError("a move needs a pan, tilt or zoom speed (use ptz_stop to stop)")
        return self


class PtzStopBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ptz_stop"] = "ptz_stop"


class PtzGotoBody(BaseModel):
    """Go to an absolute position."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ptz_goto"] = "ptz_goto"
    position: PtzPosition


class PresetGotoBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["preset_goto"] = "preset_goto"
    preset_token: PresetToken


class PresetSetBody(BaseModel):
    """Store the current position as a preset of this name (replacing one of the same name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["preset_set"] = "preset_set"
    name: Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f]{1,64}$", strip_whitespace=True)]


class SnapshotBody(BaseModel):
    """Publish a snapshot now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["snapshot"] = "snapshot"


CctvBody = Annotated[PtzMoveBody | PtzStopBody | PtzGotoBody | PresetGotoBody | PresetSetBody
                     | SnapshotBody, Field(discriminator="type")]


class CctvCommand(Payload):
    """A command to one camera through its edge; void after ``expires_at``."""

    cmd_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    issuer: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    camera_id: Ident
    expires_at: UtcTime
    body: CctvBody

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> CctvCommand:
        if self.expires_at <= self.ts:
            raise ValueError("expires_at must be after ts")
        return self


class CctvAnalytics(EdgeMessage):
    camera_id: Ident
    zone_ids: tuple[Ident, ...] = Field(max_length=MAX_DETECTORS)
    presence: tuple[bool, ...] = Field(max_length=MAX_DETECTORS)
    count: tuple[Annotated[int, Field(ge=0, le=65535)], ...] = Field(max_length=MAX_DETECTORS)
    occupancy_pct: Annotated[tuple[float, ...], AfterValidator(_finite_pct)] = Field(
        max_length=MAX_DETECTORS
    )
    queue_m: tuple[Annotated[float, Field(ge=0, le=2000)], ...] = Field(max_length=MAX_DETECTORS)

    @model_validator(mode="after")
    def _same_length(self) -> CctvAnalytics:
        n = len(self.zone_ids)
        if any(len(a) != n for a in (self.presence, self.count, self.occupancy_pct, self.queue_m)):
            raise ValueError("every zone array must have one entry per zone")
        return self


class CctvSnapshot(EdgeMessage):
    camera_id: Ident
    jpeg_b64: str = Field(max_length=MAX_SNAPSHOT_BYTES)
    cmd_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = None


def _zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Jakarta "
                         "(WIB), Asia/Makassar (WITA) or Asia/Jayapura (WIT)") from None
    return value


# The office's IANA zone: attendance rules work on the office's local day.
ZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone_name)]
BatchId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=24)]  # the 72-byte record's field


class Punch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: UserId
    # Machine time is local wall time; the edge attaches the office's zone (WIB/WITA/WIT).
    at: datetime
    state: int = Field(0, ge=0, le=255)  # punch state: 0 in, 1 out, 2 break out, 3 break in, 4/5 overtime
    verify: int = Field(0, ge=0, le=255)  # verify type: 0 password, 1 fingerprint, 2 card, 15 face
    work_code: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("at")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("punch time must carry the office's UTC offset")
        return value


class AttendanceBatch(EdgeMessage):
    """Punches pulled from one machine, in the order the machine keeps them."""

    device_sn: Ident
    batch_id: BatchId
    tz: ZoneName = "Asia/Jakarta"
    punches: tuple[Punch, ...] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _offsets_match_the_zone(self) -> AttendanceBatch:
        zone = ZoneInfo(self.tz)
        for k, p in enumerate(self.punches):
            if p.at.utcoffset() != p.at.astimezone(zone).utcoffset():
                raise ValueError(f"punch {k}: time {p.at.isoformat()} is not in the office zone {self.tz}")
        return self


class AttendanceStored(Payload):
    device_sn: Ident
    batch_ids: tuple[BatchId, ...] = Field(min_length=1, max_length=1000)


class AttendanceStatus(EdgeMessage):
    """What the office edge knows of one machine; retained, so it is the current state."""

    device_sn: Ident
    online: bool
    tz: ZoneName = "Asia/Jakarta"
    office: str = Field("", max_length=120)
    name: str = Field("", max_length=120)
    platform: str = Field("", max_length=120)
    firmware: str = Field("", max_length=120)
    users: int | None = Field(None, ge=0, le=10_000_000)
    users_capacity: int | None = Field(None, ge=0, le=10_000_000)
    punches: int | None = Field(None, ge=0, le=100_000_000)
    punches_capacity: int | None = Field(None, ge=0, le=100_000_000)
    clock_drift_s: float | None = Field(None, ge=-1e9, le=1e9)  # machine clock − true time
    last_punch_at: datetime | None = None  # the edge's watermark: newest punch pulled
    unstored: int = Field(0, ge=0)  # punches pulled and not yet confirmed stored
    error: str = Field("", max_length=300)


class MachineUser(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: UserId
    name: str = Field("", max_length=24)
    privilege: Literal["user", "admin"] = "user"
    card: int = Field(0, ge=0, le=2**32 - 1)


class UsersBody(BaseModel):
    """Add or update these users on the machine and remove those; the rest stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["users"] = "users"
    upsert: tuple[MachineUser, ...] = Field((), max_length=500)
    remove: tuple[UserId, ...] = Field((), max_length=500)


class SyncTimeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sync_time"] = "sync_time"


class AttendanceCommand(Payload):
    """A command to one attendance machine through its office edge; void after ``expires_at``."""

    cmd_id: BatchId
    issuer: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    device_sn: Ident
    expires_at: UtcTime
    body: Annotated[UsersBody | SyncTimeBody, Field(discriminator="type")]

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> AttendanceCommand:
        if self.expires_at <= self.ts:
            raise ValueError("expires_at must be after ts")
        return self


class ControlRoomState(Payload):
    status: Literal["online", "offline"]
    epoch: int = Field(ge=1)


MODEL_BY_KIND: dict[Kind, type[Payload]] = {
    Kind.EDGE_STATE: EdgeState,
    Kind.TELEMETRY: TrafficTelemetry,
    Kind.EVENT: TrafficEvent,
    Kind.COMMAND: TrafficCommand,
    Kind.COMMAND_ACK: CommandAck,
    Kind.CCTV_STATUS: CctvStatus,
    Kind.CCTV_ANALYTICS: CctvAnalytics,
    Kind.CCTV_SNAPSHOT: CctvSnapshot,
    Kind.CCTV_COMMAND: CctvCommand,
    Kind.ATTENDANCE_LOGS: AttendanceBatch,
    Kind.ATTENDANCE_STORED: AttendanceStored,
    Kind.ATTENDANCE_STATUS: AttendanceStatus,
    Kind.ATTENDANCE_COMMAND: AttendanceCommand,
    Kind.CONTROLROOM_STATE: ControlRoomState,
}

# Which payload field must equal the id in the topic.
_TOPIC_KEY_FIELD: dict[Kind, str] = {
    Kind.EDGE_STATE: "edge_id",
    Kind.TELEMETRY: "intersection_id",
    Kind.EVENT: "intersection_id",
    Kind.COMMAND: "intersection_id",
    Kind.COMMAND_ACK: "target_id",
    Kind.CCTV_STATUS: "camera_id",
    Kind.CCTV_ANALYTICS: "camera_id",
    Kind.CCTV_SNAPSHOT: "camera_id",
    Kind.CCTV_COMMAND: "camera_id",
    Kind.ATTENDANCE_LOGS: "device_sn",
    Kind.ATTENDANCE_STORED: "device_sn",
    Kind.ATTENDANCE_STATUS: "device_sn",
    Kind.ATTENDANCE_COMMAND: "device_sn",
}


# --------------------------------------------------------------------------- codec


@dataclass(frozen=True, slots=True)
class Message:
    route: Route
    payload: Any  # the model of route.spec.kind

    @property
    def kind(self) -> Kind:
        return self.route.spec.kind


def encode(payload: Payload) -> bytes:
    return payload.model_dump_json(exclude_none=False).encode()


def decode(topic: str, raw: bytes) -> Message:
    """Validate one message against the contract; raise a ContractError subclass if it fails."""
    route = parse_topic(topic)
    limit = MAX_SNAPSHOT_BYTES + 4096 if route.spec.kind is Kind.CCTV_SNAPSHOT else MAX_PAYLOAD_BYTES
    if len(raw) > limit:
        raise OversizeError(f"payload of {len(raw)} bytes exceeds the {limit}-byte limit", topic)
    model = MODEL_BY_KIND[route.spec.kind]
    try:
        payload = model.model_validate_json(raw)
    except ValidationError as exc:
        raise _classify(exc, topic) from exc
    field = _TOPIC_KEY_FIELD.get(route.spec.kind)
    if field is not None and getattr(payload, field) != route.key:
        raise TopicMismatchError(
            f"payload {field}={getattr(payload, field)!r} does not match topic id {route.key!r}", topic
        )
    return Message(route, payload)


def salvage_cmd_id(raw: bytes) -> str | None:
    """The cmd_id of a command that failed validation, if it has one, so the sender gets an ack."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    cmd_id = value.get("cmd_id") if isinstance(value, dict) else None
    return cmd_id if isinstance(cmd_id, str) else None


def _classify(exc: ValidationError, topic: str) -> ContractError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return InvalidJsonError(f"not JSON: {first['msg']}", topic)
    if first["type"] in ("model_type", "model_attributes_type"):
        return SchemaError("payload must be a JSON object", topic)
    for err in errors:
        if err["loc"] == ("v",):
            return UnknownVersionError(
                f"schema version {err.get('input')!r} is not supported (expected {SCHEMA_VERSION})", topic
            )
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return SchemaError(f"{where}: {first['msg']}{more}", topic)
