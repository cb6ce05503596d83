"""The control room's attendance side: punch batches in, "stored" replies out, machine alarms.

Owns the order that makes the punch pipeline lossless: a batch is committed first, then the
`kota/v1/attendance/{sn}/stored` reply naming it is published, and only then is the MQTT
message acknowledged (by ingest). A crash anywhere in between means a redelivery or an
outbox resend, which the store answers as already stored, and the reply goes out again. It
must not decode MQTT (ingest does) nor decide alarm conditions (alarms.py does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from controlroom.attendance.alarms import AlarmThresholds, machine_conditions
from controlroom.attendance.store import (
    AttendanceStorageError,
    AttendanceStore,
    InvalidPunchBatch,
    MachineStatus,
    Punch,
    PunchBatch,
)
from controlroom.periodic import Periodic
from edge.contract import (
    SPEC_BY_KIND,
    AttendanceBatch,
    AttendanceStatus,
    AttendanceStored,
    Kind,
    attendance_stored_topic,
    encode,
)

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int, bool], None]  # topic, payload, qos, retain


def punch_batch(message: AttendanceBatch) -> PunchBatch:
    """The contract's batch as the store's record."""
    return PunchBatch(message.device_sn, message.batch_id, message.edge_id, message.tz,
                      [Punch(p.user_id, p.at, p.state, p.verify, p.work_code)
                       for p in message.punches])


def machine_status(message: AttendanceStatus) -> MachineStatus:
    return MachineStatus(
        message.device_sn, message.edge_id, message.ts, message.online, message.tz,
        message.office, message.name, message.platform, message.firmware, message.users,
        message.users_capacity, message.punches, message.punches_capacity,
        message.clock_drift_s, message.error)


class AttendanceService:
    """Called by the ingest writer thread for attendance messages; runs the alarm check on its
    own thread every ``alarm_interval_s``."""

    def __init__(self, store: AttendanceStore, publish: Publish, *,
                 thresholds: AlarmThresholds | None = None,
                 alarm_interval_s: float = 30.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._publish = publish
        self._thresholds = thresholds or AlarmThresholds()
        self._clock = clock
        self._rounds = Periodic("kota-attendance", "attendance alarm check", self.check_alarms,
                                alarm_interval_s, (AttendanceStorageError,))
        self.batches_stored = 0
        self.punches_new = 0
        self.batches_rejected = 0

    def write(self, batches: Sequence[AttendanceBatch], statuses: Sequence[AttendanceStatus]) -> None:
        """Store and answer; AttendanceStorageError (retry all: every step is idempotent) when
        the database fails. A batch the store refuses as invalid is logged and not answered,
        so the edge keeps it and the technician sees why in the log."""
        if statuses:
            try:
                self._store.update_machines(machine_status(s) for s in statuses)
            except InvalidPunchBatch as exc:  # the contract checks zones; say so if one slips by
                log.error("machine status refused, not stored: %s", exc)
        stored: dict[str, list[str]] = {}
        for message in batches:
            try:
                receipt = self._store.store_batch(punch_batch(message))
            except InvalidPunchBatch as exc:
                self.batches_rejected += 1
                log.error("batch %s from machine %s (edge %s) refused, not answered: %s",
                          message.batch_id, message.device_sn, message.edge_id, exc)
                continue
            self.batches_stored += 1
            self.punches_new += receipt.new_punches
            stored.setdefault(message.device_sn, []).append(message.batch_id)
        spec = SPEC_BY_KIND[Kind.ATTENDANCE_STORED]
        now = self._clock()
        for device_sn, batch_ids in stored.items():
            for k in range(0, len(batch_ids), 1000):  # the contract's longest list
                reply = AttendanceStored(ts=now, device_sn=device_sn,
                                         batch_ids=tuple(dict.fromkeys(batch_ids[k:k + 1000])))
                self._publish(attendance_stored_topic(device_sn), encode(reply), spec.qos,
                              spec.retain)

    # ------------------------------------------------------------------ alarms

    def check_alarms(self) -> tuple[int, int]:
        """Open and clear machine alarms now; returns (opened, cleared)."""
        now = self._clock()
        conditions = machine_conditions(self._store.machines(), self._store.unknown_users(),
                                        now, self._thresholds)
        opened, cleared = self._store.reconcile_alarms(conditions, now)
        if opened or cleared:
            log.info("attendance alarms: %d opened, %d cleared", opened, cleared)
        return opened, cleared

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()

    def health(self) -> dict[str, int]:
        return {"batches_stored": self.batches_stored, "punches_new": self.punches_new,
                "batches_rejected": self.batches_rejected}
