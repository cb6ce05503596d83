"""SIMPEG sync: organisation units, employees with their machine ids, and leave pulled into the
payroll tables; a month's recap pushed back.

Owns what a sync means for our data: which SIMPEG records become which rows, which leave
changes touch which months (so that those months are recomputed), and what SIMPEG answered for
each employee's recap. A record SIMPEG sends malformed or that our rules cannot take (an
unknown leave type) is skipped and reported, never half-stored. It must not speak HTTP (the
SimpegClient does) nor judge days (payroll.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date

from controlroom.attendance.nip import InvalidNip, parse_nip
from controlroom.attendance.payroll import Payroll
from controlroom.attendance.payroll_store import EmployeeRow, LeaveRow, UnitRow
from controlroom.attendance.simpeg import SimpegClient, UploadReport, recap_record

log = logging.getLogger(__name__)


@dataclass
class PullReport:
    units: int = 0
    employees_new: int = 0
    employees_changed: int = 0
    machine_ids: int = 0
    leave_added: int = 0
    leave_changed: int = 0
    leave_revoked: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, key, problem)
    months: set[str] = field(default_factory=set)  # months whose days the changes touch

    def summary(self) -> str:
        return (f"{self.units} units, {self.employees_new} new and {self.employees_changed} "
                f"changed employees, {self.machine_ids} machine ids, leave: "
                f"{self.leave_added} added, {self.leave_changed} changed, {self.leave_revoked} "
                f"cancelled; {len(self.skipped)} records skipped")


@dataclass(frozen=True)
class PushReport:
    sent: UploadReport  # what SIMPEG answered for the recaps sent
    unchanged: int  # recaps SIMPEG already held with this content: not sent

    def summary(self) -> str:
        r = self.sent
        return (f"{r.accepted} accepted ({r.revised} as a new revision), {r.duplicate} already "
                f"held, {len(r.rejected)} rejected, {self.unchanged} unchanged and not sent")


def months_between(first: date, last: date) -> set[str]:
    out = set()
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.add(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def content_hash(record: dict[str, object]) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SimpegSync:
    """One SIMPEG and our payroll tables."""

    def __init__(self, client: SimpegClient, payroll: Payroll) -> None:
        self.client = client
        self.payroll = payroll
        self.store = payroll.store

    def pull(self, first_day: date, last_day: date, *, actor: str) -> PullReport:
        """Units, employees (with machine ids) and the leave overlapping the period."""
        report = PullReport()
        units = self.client.units()
        report.skipped += [(s.kind, s.key, s.problem) for s in units.skipped]
        report.units = self.store.upsert_units(
            [UnitRow(u.id, u.name, u.skpd_id, u.parent_id) for u in units], actor=actor)
        skpd_of = {u.id: u.skpd_id for u in units}

        employees = self.client.employees()
        report.skipped += [(s.kind, s.key, s.problem) for s in employees.skipped]
        rows = []
        for e in employees:
            try:
                parse_nip(e.nip)
            except InvalidNip as exc:
                # A PNS NIP encodes birth date, CPNS start, gender and sequence; a number that
                # breaks them is a data error in SIMPEG, not someone to pay from.
                report.skipped.append(("employee", e.nip, f"not a valid NIP: {exc}"))
                continue
            if e.unit_id not in skpd_of:
                report.skipped.append(("employee", e.nip, f"unit {e.unit_id!r} is not among "
                                       "SIMPEG's units"))
                continue
            rows.append(EmployeeRow(e.nip, e.name, skpd_of[e.unit_id], e.unit_id, e.position,
                                    e.schedule_group, e.active))
        report.employees_new, report.employees_changed = self.store.upsert_employees(
            rows, source="simpeg", actor=actor)
        kept = {r.nip for r in rows}
        ids = [(m.sn, m.user_id, e.nip) for e in employees if e.nip in kept
               for m in e.machine_ids]
        clash: dict[tuple[str, str], str] = {}
        for sn, user_id, nip in ids:
            other = clash.setdefault((sn, user_id), nip)
            if other != nip:
                report.skipped.append(("machine_id", f"{sn or '*'}/{user_id}",
                                       f"held by both {other} and {nip}; the last one kept"))
        report.machine_ids = self.store.replace_user_map(ids, sorted(kept), actor=actor)

        leave = self.client.leave(first_day, last_day)
        report.skipped += [(s.kind, s.key, s.problem) for s in leave.skipped]
        stored = {r["source_id"]: r for r in self.store.leave(
            first_day, last_day, include_revoked=True) if r["source"] == "simpeg"}
        for item in leave:
            if item.nip not in kept:
                report.skipped.append(("leave", item.id, f"employee {item.nip} is not synced"))
                continue
            known = self.payroll.rules.version_on(item.first_day).leave_types
            if item.kind not in known:
                report.skipped.append(("leave", item.id, f"leave type {item.kind!r} is not in "
                                       f"the rules ({', '.join(sorted(known))})"))
                continue
            old = stored.get(item.id)
            if item.cancelled:
                if old is not None and old["revoked_at"] is None:
                    self.store.revoke_leave(old["id"], actor=actor, reason="cancelled in SIMPEG")
                    report.leave_revoked += 1
                    report.months |= months_between(old["first_day"], old["last_day"])
                continue
            _, changed = self.store.add_leave(LeaveRow(
                item.nip, item.kind, item.first_day, item.last_day, item.reference or "-",
                "simpeg", item.id), actor=actor)
            if changed:
                if old is None:
                    report.leave_added += 1
                else:
                    report.leave_changed += 1
                    report.months |= months_between(old["first_day"], old["last_day"])
                report.months |= months_between(item.first_day, item.last_day)
        for kind, key, problem in report.skipped:
            log.warning("SIMPEG %s %s skipped: %s", kind, key, problem)
        self.store.audit(actor, "simpeg_pulled", f"{first_day}..{last_day}", {
            "summary": report.summary(), "skipped": report.skipped[:100]})
        return report

    def push(self, period: str, *, actor: str, resend: bool = False) -> PushReport:
        """Upload the month's recap (from the stored days) and keep what SIMPEG answered for
        each employee. Recaps SIMPEG already accepted with this exact content are not sent
        again (unless `resend`); a rejected one is, once its cause may be gone. Safe to repeat:
        the same recap is one record on SIMPEG, and a batch retried after a lost answer is
        recognised by its Idempotency-Key."""
        recaps, _ = self.payroll.recap(period)
        hashes = {r.nip: content_hash(recap_record(r)) for r in recaps}
        held = {u["nip"]: u["content_hash"] for u in self.store.uploads(period)
                if u["status"] == "accepted"}
        send = [r for r in recaps if resend or held.get(r.nip) != hashes[r.nip]]
        # A deliberate resend must be processed again, not answered from SIMPEG's memory of
        # the first upload (whose rejections may no longer hold).
        attempt = uuid.uuid4().hex if resend else ""
        report = (self.client.upload_recaps(period, send, attempt=attempt) if send
                  else UploadReport(0, 0, ()))
        rejected = dict(report.rejected)
        if send:
            self.store.record_uploads(period, [
                (r.nip, hashes[r.nip], "rejected" if r.nip in rejected else "accepted", None,
                 rejected.get(r.nip, "")) for r in send], actor=actor)
        return PushReport(report, unchanged=len(recaps) - len(send))
