"""The office side of the edge agent: one sync thread per attendance machine, and the inbound
"stored" replies and commands routed to them.

Owns the schedule (a round every ``pull_interval_s``, at once when a command or a live punch
asks, with back-off while a machine is unreachable) and the checks on inbound messages
(contract, issuer, expiry) before a command reaches a machine. The per-machine logic is in
``sync``, the ledger in ``state``; it must not talk the ZK protocol itself.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.contract import (
    AttendanceCommand,
    AttendanceStored,
    ContractError,
    Kind,
    attendance_command_topic,
    attendance_stored_topic,
    decode,
    parse_topic,
    utc_now,
)
from edge.office.state import OfficeState, OfficeStateError
from edge.office.sync import MachineClient, MachineError, MachineSync, Send, SyncPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MachinePlan:
    """One machine as the agent runs it: who, how to reach it, how often, what policy."""

    device_sn: str
    connect: Callable[[], AbstractContextManager[MachineClient]]
    policy: SyncPolicy
    pull_interval_s: float = 60.0
    retry_max_s: float = 300.0
    # Live capture: iterate the machine's punches as they happen until the event is set (None:
    # the machine is only pulled). Each live punch starts a round at once; the round, not the
    # event, carries the punch, so a missed or duplicated event changes nothing.
    live: Callable[[threading.Event], Iterable[object]] | None = None


class OfficeAgent:
    def __init__(self, machines: Sequence[MachinePlan], state: OfficeState, send: Send, *,
                 issuers: Sequence[str] = (),
                 may_ask_again: Callable[[], bool] = lambda: True) -> None:
        self._plans = {m.device_sn: m for m in machines}
        self._state = state
        self._issuers = tuple(issuers)
        self.syncs = {m.device_sn: MachineSync(m.device_sn, m.connect, state, send, m.policy,
                                               may_ask_again=may_ask_again)
                      for m in machines}
        self._wake = {sn: threading.Event() for sn in self._plans}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.rounds = dict.fromkeys(self._plans, 0)
        self.live_punches = dict.fromkeys(self._plans, 0)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topics the link must subscribe to for these machines (QoS 1)."""
        return [(t, 1) for sn in sorted(self._plans)
                for t in (attendance_stored_topic(sn), attendance_command_topic(sn))]

    def start(self) -> None:
        for sn, plan in self._plans.items():
            thread = threading.Thread(target=self._run, args=(sn,), name=f"office-{sn}", daemon=True)
            thread.start()
            self._threads.append(thread)
            if plan.live is not None:
                thread = threading.Thread(target=self._listen, args=(plan,),
                                          name=f"office-live-{sn}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for event in self._wake.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()
        self._state.close()

    def wake(self, device_sn: str) -> None:
        """Run a round now (a live punch, a command)."""
        event = self._wake.get(device_sn)
        if event is not None:
            event.set()

    # ------------------------------------------------------------------ inbound (link thread)

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Handle a stored reply or a command; False when the topic is not an office one."""
        try:
            route = parse_topic(topic)
        except ContractError:
            return False
        if route.spec.domain != "attendance" or route.key not in self.syncs:
            return False
        try:
            message = decode(topic, payload)
        except ContractError as exc:
            log.warning("ignored a message on %s that breaks the contract (%s): %s", topic[:200],
                        exc.reason, exc.detail[:300])
            return True
        sync = self.syncs.get(message.route.key)
        if sync is None:
            return False
        if message.kind is Kind.ATTENDANCE_STORED:
            assert isinstance(message.payload, AttendanceStored)
            sync.on_stored(message.payload.batch_ids)
            return True
        if message.kind is Kind.ATTENDANCE_COMMAND:
            command = message.payload
            assert isinstance(command, AttendanceCommand)
            if self._issuers and not any(fnmatch.fnmatchcase(command.issuer, p)
                                         for p in self._issuers):
                log.warning("refused command %s for machine %s: issuer %r is not allowed "
                            "([edge] command_issuers)", command.cmd_id, sync.device_sn,
                            command.issuer)
                sync.reject(command.cmd_id, f"issuer {command.issuer!r} not allowed")
                return True
            if command.expires_at <= utc_now():
                sync.reject(command.cmd_id, "expired before it arrived")
                return True
            sync.queue_command(command)
            self.wake(sync.device_sn)
            return True
        return False

    # ------------------------------------------------------------------ machine threads

    def _run(self, device_sn: str) -> None:
        plan = self._plans[device_sn]
        sync = self.syncs[device_sn]
        delay_s = plan.pull_interval_s
        failing_s = 1.0
        while not self._stop.is_set():
            try:
                report = sync.sync_once()
            except (MachineError, OSError):
                # sync logged it once and published the machine offline; back off
                delay_s = failing_s
                failing_s = min(failing_s * 2, plan.retry_max_s)
            except OfficeStateError as exc:
                log.error("machine %s: the office state could not be written (%s); nothing is "
                          "lost, the next round reads the same records again", device_sn, exc)
                delay_s = min(plan.pull_interval_s, 10.0)
            else:
                failing_s = 1.0
                delay_s = plan.pull_interval_s
                if report.new_punches:
                    log.info("machine %s: %d new punch(es) in %d batch(es)", device_sn,
                             report.new_punches, report.batches)
            self.rounds[device_sn] += 1
            wake = self._wake[device_sn]
            wake.wait(delay_s)
            wake.clear()

    def _listen(self, plan: MachinePlan) -> None:
        """Live punches wake the machine's round; a lost live link is retried with back-off
        (the pull goes on meanwhile, so nothing waits on it)."""
        assert plan.live is not None
        delay_s = 1.0
        failing = False
        while not self._stop.is_set():
            try:
                for _ in plan.live(self._stop):
                    self.live_punches[plan.device_sn] += 1
                    self.wake(plan.device_sn)
                    delay_s = 1.0
                    if failing:
                        log.info("machine %s: live punches again", plan.device_sn)
                        failing = False
            except (MachineError, OSError) as exc:
                if not failing:
                    log.warning("machine %s: live capture lost (%s); punches are still pulled "
                                "every %.0f s, live capture retried", plan.device_sn, exc,
                                plan.pull_interval_s)
                failing = True
            if self._stop.wait(delay_s):
                return
            delay_s = min(delay_s * 2, plan.retry_max_s)

    def status(self) -> list[dict[str, Any]]:
        """For `kota edge status`: each machine, its last contact and error, its ledger."""
        out = []
        for sn, sync in sorted(self.syncs.items()):
            ledger = self._state.ledger(sn)
            facts = sync.facts
            out.append({
                "device_sn": sn, "kind": "attendance", "online": bool(sync.last_ok) and not sync.last_error,
                "last_contact": (datetime.fromtimestamp(sync.last_ok, UTC).isoformat()
                                 if sync.last_ok else None),
                "error": sync.last_error, "name": facts.name if facts else "",
                "firmware": facts.firmware if facts else "",
                "punches_on_machine": facts.records if facts else None,
                "capacity": facts.records_capacity if facts else None,
                "clock_drift_s": sync.last_drift_s, "unstored_punches": ledger.unstored_punches,
                "unstored_batches": ledger.unstored_batches, "newest_punch": ledger.newest_punch,
                "live_punches": self.live_punches[sn],
            })
        return out
