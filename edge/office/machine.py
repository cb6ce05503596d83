"""The ZK driver behind the office sync's `MachineClient`: one adapter, errors made MachineError.

Owns the mapping between the driver's types and the sync's (punches → records, the contract's
users → machine slots) and the one place that opens a driver from settings. It must not decide
anything about watermarks, batches or clearing (``sync`` does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from devices.zk.driver import ZkDriver, ZkLogChanged, office_zone
from devices.zk.errors import ZkError
from devices.zk.records import User, UserFormat, user_fits
from edge.contract import MachineUser
from edge.office.sync import LogChanged, MachineError, MachineFacts, MachineRecord

ADMIN_PRIVILEGE = 14  # ZKTeco: 0 user, 14 administrator


@dataclass(frozen=True)
class MachineAddress:
    host: str
    port: int = 4370
    comm_key: int = 0
    udp: bool = False
    timeout_s: float = 10.0
    tz: str = "Asia/Jakarta"


class ZkMachineClient:
    """`edge.office.sync.MachineClient` over a connected `ZkDriver`."""

    def __init__(self, driver: ZkDriver) -> None:
        self._zk = driver

    def facts(self) -> MachineFacts:
        i = self._zk.info()
        return MachineFacts(i.serial, i.name, i.platform, i.firmware, i.users, i.users_cap,
                            i.punches, i.punches_cap)

    def records(self) -> list[MachineRecord]:
        return [MachineRecord(p.user_id, p.timestamp, p.punch, p.status, p.workcode)
                for p in self._zk.punches()]

    def record_count(self) -> int:
        return self._zk.sizes().records

    def machine_time(self) -> datetime:
        return self._zk.get_time()

    def set_time(self, when: datetime) -> None:
        self._zk.set_time(when)

    def clear_records(self, expect_count: int) -> None:
        try:
            self._zk.clear_punches(expect_count=expect_count)
        except ZkLogChanged as exc:
            raise LogChanged(str(exc)) from exc

    def set_user(self, user: MachineUser) -> None:
        users = self._zk.users()
        slot = next((u.uid for u in users if u.user_id == user.user_id), None)
        if slot is None:
            slot = max((u.uid for u in users), default=0) + 1
        record = User(slot, user.user_id, user.name,
                      ADMIN_PRIVILEGE if user.privilege == "admin" else 0, card=user.card)
        size = self._zk.info().user_size
        self._zk.set_user(user_fits(record, UserFormat(size) if size else UserFormat.ZK8))

    def delete_user(self, user_id: str) -> None:
        for u in self._zk.users():
            if u.user_id == user_id:
                self._zk.delete_user(u.uid)


def live_punches(address: MachineAddress, stop: threading.Event) -> Iterator[str]:
    """The user id of each punch as it happens, until ``stop``; MachineError when the link
    breaks (the caller retries)."""
    try:
        with ZkDriver(address.host, address.port, comm_key=address.comm_key, udp=address.udp,
                      timeout_s=address.timeout_s, tz=office_zone(address.tz)) as driver:
            for punch in driver.live(stop):
                yield punch.user_id
    except ZkError as exc:
        raise MachineError(f"{address.host}:{address.port}: {exc}") from exc


@contextmanager
def open_machine(address: MachineAddress) -> Iterator[ZkMachineClient]:
    """A connected machine for one sync round; driver errors come out as MachineError."""
    driver = ZkDriver(address.host, address.port, comm_key=address.comm_key, udp=address.udp,
                      timeout_s=address.timeout_s, tz=office_zone(address.tz))
    try:
        with driver:
            yield ZkMachineClient(driver)
    except ZkError as exc:
        raise MachineError(f"{address.host}:{address.port}: {exc}") from exc
