"""One attendance machine kept in sync by the office edge: pull, publish, clock, clear, users.

Owns the order that makes the punch pipeline lossless at the edge: new records are read after
the watermark, each batch is written to the outbox (fsync'd) *before* the watermark moves past
it, a batch unanswered for a while is asked again with the same id, and the machine's log is
cleared only when configured to, with the machine disabled, after checking that the log holds
exactly the records of batches the control room confirmed stored. It talks to the machine
through `MachineClient` (the driver behind an adapter) and to MQTT through ``send``; it must
not open sockets itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from edge.contract import (
    AttendanceBatch,
    AttendanceCommand,
    AttendanceStatus,
    CommandAck,
    EdgeMessage,
    MachineUser,
    Punch,
    SyncTimeBody,
    UsersBody,
    attendance_logs_topic,
    attendance_status_topic,
    command_ack_topic,
)
from edge.office.state import OfficeState, Watermark

log = logging.getLogger(__name__)

BATCH_MAX = 500  # the contract's most punches per batch (one MQTT message under 64 KiB)
FULL_READ_EVERY = 10  # rounds: read the log even when its record count did not change


@dataclass(frozen=True, slots=True)
class MachineRecord:
    """One attendance record as the machine keeps it (time made aware with the office zone)."""

    user_id: str
    ts: datetime
    state: int = 0
    verify: int = 0
    work_code: int = 0

    @property
    def key(self) -> str:
        return f"{self.user_id}|{self.ts.isoformat()}|{self.state}"


@dataclass(frozen=True, slots=True)
class MachineFacts:
    serial: str
    name: str = ""
    platform: str = ""
    firmware: str = ""
    users: int | None = None
    users_capacity: int | None = None
    records: int | None = None
    records_capacity: int | None = None


class MachineClient(Protocol):
    """What the sync needs of a connected machine (an adapter over the ZK driver, raising
    MachineError for whatever the machine or the network did wrong)."""

    def facts(self) -> MachineFacts: ...
    def records(self) -> Sequence[MachineRecord]: ...  # the whole log, oldest first
    def machine_time(self) -> datetime: ...  # aware, the office zone
    def set_time(self, when: datetime) -> None: ...
    def record_count(self) -> int: ...  # records in the log as the machine counts them
    # Erase the log only if it still holds exactly ``expect_count`` records, checked with the
    # machine disabled so that no punch lands in between; LogChanged (nothing erased) if not.
    def clear_records(self, expect_count: int) -> None: ...
    def set_user(self, user: MachineUser) -> None: ...
    def delete_user(self, user_id: str) -> None: ...


Send = Callable[[str, Callable[..., EdgeMessage]], int]  # EdgeLink.send(topic, build)


@dataclass(frozen=True)
class SyncPolicy:
    tz: str = "Asia/Jakarta"
    office: str = ""
    max_drift_s: float = 30.0  # set the machine's clock when it is off by more
    clear_when_stored: bool = False  # clear the log once every record on it is stored ...
    clear_at_share: float = 0.5  # ... and it is at least this full
    resend_after_s: float = 600.0  # ask again for a batch unanswered this long


@dataclass(frozen=True, slots=True)
class SyncReport:
    new_punches: int
    batches: int
    drift_s: float | None
    clock_set: bool
    cleared: bool
    restarted_log: bool


def _chunks(items: Sequence[MachineRecord], size: int) -> Iterator[Sequence[MachineRecord]]:
    for k in range(0, len(items), size):
        yield items[k:k + size]


class MachineSync:
    """One machine's sync, run from one thread (its poller); commands queue into it."""

    def __init__(self, device_sn: str, connect: Callable[[], AbstractContextManager[MachineClient]],
                 state: OfficeState, send: Send, policy: SyncPolicy,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 may_ask_again: Callable[[], bool] = lambda: True) -> None:
        self.device_sn = device_sn
        self._connect = connect
        self._state = state
        self._send = send
        self._policy = policy
        self._zone = ZoneInfo(policy.tz)
        self._clock = clock
        self._may_ask_again = may_ask_again
        self._commands: list[AttendanceCommand] = []
        self._commands_lock = threading.Lock()
        self.facts: MachineFacts | None = None
        self.last_error = ""
        self.last_ok: float | None = None
        self.last_drift_s: float | None = None
        self._rounds = 0

    # ------------------------------------------------------------------ inbound (link thread)

    def on_stored(self, batch_ids: Sequence[str]) -> None:
        news = self._state.mark_stored(self.device_sn, batch_ids)
        if news:
            log.debug("machine %s: %d batch(es) confirmed stored", self.device_sn, news)

    def reject(self, cmd_id: str, reason: str) -> None:
        """A command refused before it reached the machine (issuer, expiry)."""
        self._ack(cmd_id, "rejected", reason)

    def queue_command(self, command: AttendanceCommand) -> None:
        """A validated, unexpired command for this machine; acked accepted now, applied or
        rejected after the next sync round ran it."""
        self._ack(command.cmd_id, "accepted", "")
        with self._commands_lock:
            self._commands.append(command)

    # ------------------------------------------------------------------ one round (poller thread)

    def sync_once(self) -> SyncReport:
        """Connect, run queued commands, keep the clock, pull new records, maybe clear, report.
        Raises the driver's errors after publishing an offline status; the caller retries."""
        try:
            with self._connect() as machine:
                report = self._round(machine)
        except (MachineError, OSError) as exc:
            self._failed(exc)
            raise
        if self.last_error:
            log.info("machine %s answers again", self.device_sn)
        self.last_error = ""
        self.last_ok = time.time()
        self.publish_status(online=True)
        return report

    def _round(self, machine: MachineClient) -> SyncReport:
        facts = machine.facts()
        if facts.serial and facts.serial != self.device_sn:
            raise MachineMismatch(f"the machine at this address reports serial {facts.serial}, "
                                  f"not {self.device_sn}: fix [edge.attendance] or the cabling")
        self.facts = facts
        self._run_commands(machine)
        self._ask_again()  # before this round's batches, which are not due yet
        drift_s, clock_set = self._keep_clock(machine)
        wm = self._state.watermark(self.device_sn)
        new = batches = 0
        restarted = False
        self._rounds += 1
        # The record count says whether anything changed, except on a full machine that
        # overwrites its oldest records; and every so often the log is read to check anyway.
        full = bool(facts.records_capacity) and facts.records == facts.records_capacity
        if (facts.records is None or facts.records != wm.position or full
                or self._rounds % FULL_READ_EVERY == 0):
            records = machine.records() if facts.records != 0 or wm.position else []
            wm, restarted = self._check_log(records, wm)
            for chunk in _chunks(records[wm.position:], BATCH_MAX):
                wm = self._publish_batch(chunk, wm)
                new += len(chunk)
                batches += 1
        cleared = self._maybe_clear(machine, facts)
        return SyncReport(new, batches, drift_s, clock_set, cleared, restarted)

    def _check_log(self, records: Sequence[MachineRecord], wm: Watermark) -> tuple[Watermark, bool]:
        if wm.position == 0:
            return wm, False
        if len(records) >= wm.position and records[wm.position - 1].key == wm.last_key:
            return wm, False
        log.warning("machine %s: its log no longer holds what was read before (%d records now, "
                    "%d read; cleared, overwritten when full, or restored by someone else); "
                    "sending every record on it again — the control room stores each punch once",
                    self.device_sn, len(records), wm.position)
        return self._state.start_over(self.device_sn, cleared=False), True

    def _publish_batch(self, chunk: Sequence[MachineRecord], wm: Watermark) -> Watermark:
        batch_id = uuid.uuid4().hex
        punches = tuple(Punch(user_id=r.user_id, at=r.ts.astimezone(self._zone), state=r.state,
                              verify=r.verify, work_code=r.work_code) for r in chunk)
        body = json.dumps([p.model_dump(mode="json") for p in punches]).encode()
        self._send_batch(batch_id, punches)
        # Only now, with the batch in the outbox, may the watermark move past it.
        return self._state.add_batch(self.device_sn, batch_id, wm, wm.position + len(chunk),
                                     chunk[-1].key, len(chunk), max(r.ts for r in chunk).isoformat(),
                                     body)

    def _send_batch(self, batch_id: str, punches: tuple[Punch, ...]) -> None:
        self._send(attendance_logs_topic(self.device_sn), lambda stamp: AttendanceBatch(
            edge_id=stamp.edge_id, epoch=stamp.epoch, seq=stamp.seq, ts=stamp.ts,
            device_sn=self.device_sn, batch_id=batch_id, tz=self._policy.tz, punches=punches))

    def _ask_again(self) -> None:
        # While the earlier copies still wait in the outbox or at a broker the control room is
        # not reading, a resend only adds duplicates (thousands after a long outage): the
        # batches' clocks wait too.
        if not self._may_ask_again():
            return
        for batch_id, body in self._state.unanswered(self.device_sn, self._policy.resend_after_s):
            punches = tuple(Punch.model_validate(p) for p in json.loads(body))
            log.warning("machine %s: batch %s not confirmed stored after %.0f s; sending it again",
                        self.device_sn, batch_id, self._policy.resend_after_s)
            self._send_batch(batch_id, punches)

    def _keep_clock(self, machine: MachineClient) -> tuple[float | None, bool]:
        before = self._clock()
        machine_now = machine.machine_time()
        after = self._clock()
        true_now = before + (after - before) / 2
        drift_s = (machine_now - true_now).total_seconds()
        self.last_drift_s = drift_s
        if abs(drift_s) <= self._policy.max_drift_s:
            return drift_s, False
        machine.set_time(self._clock().astimezone(self._zone))
        log.warning("machine %s: clock was %+.0f s off; set to %s", self.device_sn, drift_s,
                    self._policy.tz)
        self.last_drift_s = 0.0
        return drift_s, True

    def _maybe_clear(self, machine: MachineClient, facts: MachineFacts) -> bool:
        p = self._policy
        if not p.clear_when_stored or not facts.records or not facts.records_capacity:
            return False
        if facts.records / facts.records_capacity < p.clear_at_share:
            return False
        wm = self._state.watermark(self.device_sn)
        if not self._state.all_stored_up_to(self.device_sn, wm):
            return False  # not yet: some punch on it is not confirmed stored
        # The log must hold exactly the records confirmed stored: read it between two counts
        # (a punch landing meanwhile changes the count), then erase it only if the machine
        # still counts that many, which it checks with punches held off.
        before = machine.record_count()
        records = machine.records()
        after = machine.record_count()
        if (before != after or len(records) != wm.position
                or (wm.position and records[-1].key != wm.last_key)):
            log.info("machine %s: new punches arrived; clearing waits for them to be stored",
                     self.device_sn)
            return False
        try:
            machine.clear_records(expect_count=after)
        except LogChanged:
            log.info("machine %s: a punch arrived as the log was to be cleared; clearing waits "
                     "for it to be stored", self.device_sn)
            return False
        self._state.start_over(self.device_sn, cleared=True)
        self._state.prune(self.device_sn)
        log.info("machine %s: log cleared after all %d records were confirmed stored",
                 self.device_sn, wm.position)
        return True

    # ------------------------------------------------------------------ commands

    def _run_commands(self, machine: MachineClient) -> None:
        with self._commands_lock:
            commands, self._commands = self._commands, []
        for command in commands:
            if command.expires_at <= self._clock():
                self._ack(command.cmd_id, "rejected", "expired before the machine could run it")
                continue
            try:
                body = command.body
                if isinstance(body, UsersBody):
                    for user in body.upsert:
                        machine.set_user(user)
                    for user_id in body.remove:
                        machine.delete_user(user_id)
                elif isinstance(body, SyncTimeBody):
                    machine.set_time(self._clock().astimezone(self._zone))
            except MachineError as exc:  # the machine refused: say so in the ack
                self._ack(command.cmd_id, "rejected", f"machine error: {exc}"[:300])
                continue
            self._ack(command.cmd_id, "applied", "")

    def _ack(self, cmd_id: str, status: str, reason: str) -> None:
        self._send(command_ack_topic("attendance", self.device_sn), lambda stamp: CommandAck(
            edge_id=stamp.edge_id, epoch=stamp.epoch, seq=stamp.seq, ts=stamp.ts, cmd_id=cmd_id,
            target_id=self.device_sn, status=status, reason=reason))

    # ------------------------------------------------------------------ status

    def _failed(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"[:300]
        if not self.last_error:
            log.error("machine %s: %s — retrying; punches stay safe on the machine meanwhile",
                      self.device_sn, text)
        self.last_error = text
        self.publish_status(online=False)

    def publish_status(self, *, online: bool) -> None:
        f = self.facts or MachineFacts(self.device_sn)
        ledger = self._state.ledger(self.device_sn)
        last = datetime.fromisoformat(ledger.newest_punch) if ledger.newest_punch else None
        self._send(attendance_status_topic(self.device_sn), lambda stamp: AttendanceStatus(
            edge_id=stamp.edge_id, epoch=stamp.epoch, seq=stamp.seq, ts=stamp.ts,
            device_sn=self.device_sn, online=online, tz=self._policy.tz, office=self._policy.office,
            name=f.name, platform=f.platform, firmware=f.firmware, users=f.users,
            users_capacity=f.users_capacity, punches=f.records, punches_capacity=f.records_capacity,
            clock_drift_s=self.last_drift_s if online else None, last_punch_at=last,
            unstored=ledger.unstored_punches, error=self.last_error))


class MachineError(Exception):
    """A machine could not be reached or refused a request; adapters raise it for driver errors."""


class LogChanged(MachineError):
    """The log did not hold what clearing expected; nothing was erased."""


class MachineMismatch(MachineError):
    """The machine at the configured address is another machine."""
