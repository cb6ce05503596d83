"""The control room's camera side: registry, snapshots, analytics and acks in; PTZ and
snapshot commands out; camera alarms.

Ingest's writer thread hands it the decoded camera messages (`write`); the alarm check and
command expiry run on its own thread every ``alarm_interval_s``; the web API calls `command`.
A command is refused unless its audit row and command row are stored first, then it is
published (QoS 1) and its acks move its status. It must not decode MQTT (ingest does) nor
decide alarm conditions (alarms.py does).
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from controlroom.cctv.alarms import AlarmThresholds, camera_conditions
from controlroom.cctv.store import (
    FINAL_STATUSES,
    CctvStorageError,
    CctvStore,
    CctvWrites,
    CommandRecord,
    Inventory,
    Snapshot,
)
from controlroom.periodic import Periodic
from controlroom.storage.store import AuditRecord
from controlroom.traffic.access import Operator
from edge.contract import (
    SPEC_BY_KIND,
    CctvAnalytics,
    CctvCommand,
    CctvSnapshot,
    CctvStatus,
    CommandAck,
    EdgeState,
    Kind,
    PresetGotoBody,
    PresetSetBody,
    PtzGotoBody,
    PtzMoveBody,
    PtzStopBody,
    SnapshotBody,
    cctv_command_topic,
    encode,
)

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int, bool], None]  # topic, payload, qos, retain
CommandBody = PtzMoveBody | PtzStopBody | PtzGotoBody | PresetGotoBody | PresetSetBody | SnapshotBody

# The audit log's action per command body (the API's action names, prefixed).
AUDIT_ACTION: dict[str, str] = {
    "ptz_move": "ptz_move", "ptz_stop": "ptz_stop", "ptz_goto": "ptz_goto",
    "preset_goto": "ptz_preset_goto", "preset_set": "ptz_preset_set",
    "snapshot": "snapshot_request",
}

_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"


class CctvActionError(Exception):
    """An operator's command refused before anything was stored or sent; ``status`` is the
    HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class InvalidSnapshot(ValueError):
    """A snapshot whose bytes are not a JPEG: logged and dropped, nothing stored."""


def decode_jpeg(jpeg_b64: str) -> bytes:
    """The snapshot's JPEG bytes, or InvalidSnapshot (bad base64, not a JPEG)."""
    try:
        jpeg = base64.b64decode(jpeg_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSnapshot(f"jpeg_b64 is not base64: {exc}") from exc
    # JPEG (ITU-T T.81 B.2.1): starts with SOI FFD8 and a marker, ends with EOI FFD9.
    if not jpeg.startswith(_JPEG_START) or not jpeg.rstrip(b"\x00").endswith(_JPEG_END):
        raise InvalidSnapshot(f"not a JPEG ({len(jpeg)} bytes, starting {jpeg[:4].hex()})")
    return jpeg


class CctvStats:
    """Counters the health API shows; written by the ingest thread."""

    def __init__(self) -> None:
        self.statuses = 0
        self.cameras_listed = 0
        self.analytics = 0
        self.snapshots_stored = 0
        self.snapshots_rejected = 0
        self.acks_applied = 0
        self.acks_ignored = 0
        self.commands_sent = 0
        self.commands_refused = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class CctvService:
    """Camera messages in (ingest's writer thread), commands out (API threads), alarms on
    its own thread."""

    def __init__(self, store: CctvStore, publish: Publish, *,
                 connected: Callable[[], bool] = lambda: True,
                 thresholds: AlarmThresholds | None = None,
                 alarm_interval_s: float = 10.0, command_expiry_s: float = 30.0,
                 ptz_rate_per_s: int = 10,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._publish = publish
        self._connected = connected
        self.thresholds = thresholds or AlarmThresholds()
        self._expiry = timedelta(seconds=command_expiry_s)
        self._rate = ptz_rate_per_s
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._rate_lock = threading.Lock()
        self._rounds = Periodic("kota-cctv", "camera alarm check", self.check_alarms,
                                alarm_interval_s, (CctvStorageError,))
        self.stats = CctvStats()

    # ------------------------------------------------------------------ ingest side

    def write(self, statuses: Sequence[CctvStatus], edge_states: Sequence[EdgeState] = (),
              analytics: Sequence[CctvAnalytics] = (), snapshots: Sequence[CctvSnapshot] = (),
              acks: Sequence[CommandAck] = ()) -> None:
        """Store one ingest batch; CctvStorageError (retry all: every step is idempotent or
        ordered by time) when the database fails. A snapshot that is no JPEG is dropped."""
        w = CctvWrites(statuses=list(statuses), analytics=list(analytics), acks=list(acks))
        for s in edge_states:
            cameras = [d for d in s.inventory if d.kind == "camera"]
            # An offline will keeps the inventory the birth gave (as the edge table does).
            if s.status == "online" and cameras:
                w.inventories.append(Inventory(s.edge_id, s.ts, cameras))
        for p in snapshots:
            try:
                jpeg = decode_jpeg(p.jpeg_b64)
            except InvalidSnapshot as exc:
                self.stats.snapshots_rejected += 1
                log.warning("snapshot of camera %s from edge %s dropped: %s", p.camera_id,
                            p.edge_id, exc)
                continue
            w.snapshots.append(Snapshot(p.camera_id, p.edge_id, p.ts, jpeg, p.cmd_id))
        if not len(w):
            return
        counts = self._store.write(w)
        self.stats.statuses += counts.statuses_applied
        self.stats.cameras_listed += counts.cameras_listed
        self.stats.analytics += counts.analytics_rows
        self.stats.snapshots_stored += counts.snapshots_stored
        self.stats.acks_applied += counts.acks_applied
        # An ack that moves nothing: a repeat, a late "accepted", another worker's command or
        # one naming a camera or edge that is not the command's (forged or misrouted).
        self.stats.acks_ignored += len(w.acks) - counts.acks_applied

    # ------------------------------------------------------------------ commands

    def online(self, row: dict[str, Any], now: datetime | None = None) -> bool:
        """The camera reported reachable within stale_after_s and its edge is not offline."""
        now = now or self._clock()
        last = row.get("last_status_at")
        return (row.get("reachable") is True and row.get("edge_online") is not False
                and last is not None
                and (now - last).total_seconds() <= self.thresholds.stale_after_s)

    def command(self, camera_id: str, operator: Operator, body: CommandBody,
                reason: str = "") -> dict[str, Any]:
        """Audit, store and send one command; CctvActionError (nothing stored or sent) when
        the camera is unknown (404), cannot take it (409), is sent too many (429) or the
        broker is away (503)."""
        row = self._store.camera(camera_id)
        if row is None:
            raise CctvActionError(404, f"no camera {camera_id!r}")
        now = self._clock()
        if body.type != "snapshot" and not row["ptz"]:
            raise CctvActionError(409, f"camera {camera_id} has no PTZ")
        if not self.online(row, now):
            why = ("its edge is offline" if row.get("edge_online") is False else
                   "it never reported" if row.get("reachable") is None else
                   f"it is unreachable: {row['error'] or 'no reason given'}"
                   if row.get("reachable") is False else "its status is stale")
            raise CctvActionError(409, f"camera {camera_id} is not reachable ({why})")
        if isinstance(body, PresetGotoBody):
            tokens = [p.get("token") for p in row.get("presets") or ()]
            if body.preset_token not in tokens:
                raise CctvActionError(422, f"camera {camera_id} has no preset "
                                      f"{body.preset_token!r} (known: {', '.join(tokens) or 'none'})")
        if not self._connected():
            raise CctvActionError(503, "the broker is not connected: the command cannot be sent")
        if not self._take_rate(camera_id):
            self.stats.commands_refused += 1
            raise CctvActionError(429, f"more than {self._rate} commands a second to camera "
                                  f"{camera_id}; slow down")
        cmd_id = uuid.uuid4().hex
        expires_at = now + self._expiry
        message = CctvCommand(ts=now, cmd_id=cmd_id, issuer=operator.user, camera_id=camera_id,
                              expires_at=expires_at, body=body)
        requested = body.model_dump()
        record = CommandRecord(cmd_id, camera_id, now, expires_at, operator.user, operator.role,
                               body.type, requested, reason)
        audit = AuditRecord(operator.user, operator.role, AUDIT_ACTION[body.type], camera_id,
                            "done", before={"position": row.get("position")},
                            after={**requested, "cmd_id": cmd_id}, detail=reason)
        try:
            self._store.record_command(record, audit)
        except CctvStorageError as exc:
            raise CctvActionError(503, f"command not recorded, not sent: {exc}") from exc
        spec = SPEC_BY_KIND[Kind.CCTV_COMMAND]
        self._publish(cctv_command_topic(camera_id), encode(message), spec.qos, spec.retain)
        self.stats.commands_sent += 1
        log.info("%s (%s) sent %s to camera %s (cmd %s)", operator.user, operator.role,
                 body.type, camera_id, cmd_id)
        return {"cmd_id": cmd_id, "camera_id": camera_id, "kind": body.type, "status": "sent",
                "expires_at": expires_at.isoformat()}

    def _take_rate(self, camera_id: str) -> bool:
        now = time.monotonic()
        with self._rate_lock:
            window = self._sent.setdefault(camera_id, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self._rate:
                return False
            window.append(now)
            return True

    def command_status(self, cmd_id: str, wait_s: float = 0.0) -> dict[str, Any] | None:
        """The command's row (None: unknown), waiting up to ``wait_s`` for a final status;
        one past its expiry with no final ack is marked unanswered first."""
        deadline = time.monotonic() + wait_s
        expired = False
        while True:
            row = self._store.command(cmd_id)
            if row is None:
                return None
            if (row["status"] not in FINAL_STATUSES and not expired
                    and self._clock() >= row["expires_at"]):
                self._store.expire_commands(self._clock(), cmd_id)
                expired = True
                continue
            if row["status"] in FINAL_STATUSES or time.monotonic() >= deadline:
                return row
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # ------------------------------------------------------------------ alarms

    def check_alarms(self) -> tuple[int, int]:
        """Expire unanswered commands, open and clear camera alarms now; (opened, cleared)."""
        now = self._clock()
        expired = self._store.expire_commands(now)
        if expired:
            log.info("%d camera commands unanswered before they expired", expired)
        conditions = camera_conditions(self._store.cameras(), now, self.thresholds)
        opened, cleared = self._store.reconcile_alarms(conditions, now)
        if opened or cleared:
            log.info("camera alarms: %d opened, %d cleared", opened, cleared)
        return opened, cleared

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()

    def health(self) -> dict[str, int]:
        return self.stats.as_dict()
