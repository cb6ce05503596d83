"""Takes every edge message off the broker, validates it against the contract, stores it.

The paho network thread only enqueues; one writer thread decodes, de-duplicates, writes a
batch in one transaction and only then acknowledges the batch's QoS 1 messages
(`manual_ack`), so a message the broker handed over is never lost by a crash or a database
outage. Rejected messages are counted by reason, logged and dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from controlroom.attendance.service import AttendanceService
from controlroom.attendance.store import AttendanceStorageError
from controlroom.cctv.service import CctvService
from controlroom.cctv.store import CctvStorageError
from controlroom.settings import IngestSettings
from controlroom.storage.store import Batch, StorageError, Store
from edge.contract import (
    AttendanceBatch,
    AttendanceStatus,
    CctvAnalytics,
    CctvSnapshot,
    CctvStatus,
    CommandAck,
    ContractError,
    EdgeMessage,
    EdgeState,
    Kind,
    TrafficEvent,
    TrafficTelemetry,
    decode,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    qos: int
    mid: int
    received_at: float  # time.monotonic() on the network thread


class SeqWindow:
    """Recently seen (epoch, seq) of one edge: a duplicate within the window is dropped."""

    def __init__(self, size: int = 8192) -> None:
        self._order: deque[tuple[int, int]] = deque()
        self._seen: set[tuple[int, int]] = set()
        self._size = size

    def first_time(self, epoch: int, seq: int) -> bool:
        key = (epoch, seq)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())
        return True


class IngestStats:
    """Counters the health API shows; updated only by the writer thread."""

    def __init__(self) -> None:
        self.received = 0
        self.stored = 0
        self.duplicates = 0
        self.overflow = 0
        self.rejected: Counter[str] = Counter()
        self.batches = 0
        self.storage_failures = 0
        self.last_lag_s = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received, "stored": self.stored, "duplicates": self.duplicates,
            "overflow": self.overflow, "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()), "batches": self.batches,
            "storage_failures": self.storage_failures, "last_lag_s": round(self.last_lag_s, 3),
        }


class Ingest:
    """The writer side: a bounded queue fed by the MQTT link, drained in batches into a Store."""

    def __init__(self, settings: IngestSettings, store: Store,
                 ack: Callable[[int, int], None] | None = None,
                 attendance: AttendanceService | None = None,
                 cctv: CctvService | None = None) -> None:
        self._settings = settings
        self._store = store
        self._attendance = attendance
        self._cctv = cctv
        self._ack = ack
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=settings.queue_max)
        self._windows: dict[str, SeqWindow] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = IngestStats()
        self.on_stored: Callable[[Batch, list[float]], None] | None = None

    def set_ack(self, ack: Callable[[int, int], None]) -> None:
        self._ack = ack

    # Called on the paho network thread: enqueue and return, never block.
    def offer(self, item: Inbound) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.overflow += 1
            if self.stats.overflow == 1 or self.stats.overflow % 10_000 == 0:
                log.error("ingest queue full (%d messages): dropping %s; the database is too slow or "
                          "down — raise [controlroom.ingest] queue_max or add workers",
                          self._settings.queue_max, item.topic)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kota-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def backlog(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            items = self._take_batch()
            if items:
                self._process(items)

    def _take_batch(self) -> list[Inbound]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        items = [first]
        deadline = time.monotonic() + self._settings.flush_interval_ms / 1000
        while len(items) < self._settings.batch_max:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    break
                time.sleep(min(remaining, 0.005))
        return items

    def _process(self, items: list[Inbound]) -> None:
        batch = Batch()
        punches: list[AttendanceBatch] = []
        machines: list[AttendanceStatus] = []
        cameras: list[CctvStatus] = []
        analytics: list[CctvAnalytics] = []
        snapshots: list[CctvSnapshot] = []
        camera_acks: list[CommandAck] = []
        received_at: list[float] = []
        for item in items:
            self.stats.received += 1
            try:
                message = decode(item.topic, item.payload)
            except ContractError as exc:
                self.stats.rejected[exc.reason] += 1
                log.warning("rejected message on %s: %s (%s)", item.topic[:200], exc.detail[:300], exc.reason)
                continue
            payload = message.payload
            kind = message.kind
            # A punch batch seen before is stored again all the same (the store makes that a
            # no-op) so that its "stored" reply goes out again: the edge resends a batch only
            # when it never heard that reply.
            if (isinstance(payload, EdgeMessage) and kind is not Kind.ATTENDANCE_LOGS
                    and not self._first_time(payload)):
                self.stats.duplicates += 1
                continue
            if kind is Kind.ATTENDANCE_LOGS and self._attendance is not None:
                assert isinstance(payload, AttendanceBatch)
                punches.append(payload)
            elif kind is Kind.ATTENDANCE_STATUS and self._attendance is not None:
                assert isinstance(payload, AttendanceStatus)
                machines.append(payload)
            elif kind is Kind.TELEMETRY:
                assert isinstance(payload, TrafficTelemetry)
                batch.telemetry.append(payload)
            elif kind is Kind.EVENT:
                assert isinstance(payload, TrafficEvent)
                batch.events.append(payload)
            elif kind is Kind.COMMAND_ACK:
                assert isinstance(payload, CommandAck)
                # Every ack is kept in command_ack; a camera's also moves its command's status.
                batch.acks.append((message.route.spec.domain, payload))
                if message.route.spec.domain == "cctv" and self._cctv is not None:
                    camera_acks.append(payload)
            elif kind is Kind.EDGE_STATE:
                assert isinstance(payload, EdgeState)
                batch.edge_states.append(payload)
            elif kind is Kind.CCTV_STATUS and self._cctv is not None:
                assert isinstance(payload, CctvStatus)
                cameras.append(payload)
            elif kind is Kind.CCTV_ANALYTICS and self._cctv is not None:
                assert isinstance(payload, CctvAnalytics)
                analytics.append(payload)
            elif kind is Kind.CCTV_SNAPSHOT and self._cctv is not None:
                assert isinstance(payload, CctvSnapshot)
                snapshots.append(payload)
            else:
                # Camera messages of a control room built without the camera service.
                self.stats.rejected["not_handled_yet"] += 1
                continue
            received_at.append(item.received_at)
        if len(batch):
            self._until_stored(lambda: self._store.write(batch), len(batch))
        if (punches or machines) and self._attendance is not None:
            attendance = self._attendance
            self._until_stored(lambda: attendance.write(punches, machines),
                               len(punches) + len(machines))
        camera_count = len(cameras) + len(analytics) + len(snapshots)
        if self._cctv is not None and (camera_count or camera_acks or batch.edge_states):
            # After the edge states are stored: a camera's online state joins its edge's.
            cctv = self._cctv
            self._until_stored(lambda: cctv.write(cameras, batch.edge_states, analytics,
                                                  snapshots, camera_acks), camera_count)
        self.stats.batches += 1
        self.stats.stored += len(batch) + len(punches) + len(machines) + camera_count
        now = time.monotonic()
        if received_at:
            self.stats.last_lag_s = now - received_at[0]
        if self.on_stored is not None:
            self.on_stored(batch, received_at)
        if self._ack is not None:
            for item in items:
                if item.qos > 0:
                    self._ack(item.mid, item.qos)

    def _first_time(self, payload: EdgeMessage) -> bool:
        window = self._windows.get(payload.edge_id)
        if window is None:
            window = self._windows[payload.edge_id] = SeqWindow()
        return window.first_time(payload.epoch, payload.seq)

    def _until_stored(self, write: Callable[[], object], count: int) -> None:
        """Retry with back-off: the messages are not acknowledged until they are stored."""
        delay_s = 0.5
        failing = False
        while True:
            try:
                write()
            except (StorageError, AttendanceStorageError, CctvStorageError) as exc:
                self.stats.storage_failures += 1
                if not failing:
                    log.error("%s; retrying until the database is back (messages stay "
                              "unacknowledged meanwhile)", exc)
                    failing = True
                if self._stop.wait(delay_s) and self._stop.is_set() and delay_s >= 8:
                    log.error("stopping with %d unstored messages; the broker redelivers QoS 1 "
                              "ones to the next run", count)
                    return
                delay_s = min(delay_s * 2, 10.0)
                continue
            if failing:
                log.info("database is back; storing resumed")
            return
