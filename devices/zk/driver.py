"""The ZKTeco attendance machine driver: typed, timezone-aware operations for the edge agent.

It owns what a caller of one machine needs — identity and memory use, users, punches read
incrementally above a watermark, the clock and its drift, user writes, clearing the log, live
punches, restart — and turns every failure into a ``devices.zk.errors`` type whose message
tells a technician what to do. It must not know about MQTT, outboxes or the edge agent's
settings; the agent decides *when* (and whether) to clear, sync or push.

pyzk or our protocol code, operation by operation. pyzk 0.9 (PyPI, 2019) is the client the
emulator is proven against (``tests/firmware_sim/test_zk_pyzk.py``) and the benchmark's
baseline; the driver runs on our protocol code (``devices.zk`` through ``client.ZkClient``):

============================  =====================================================  =====
operation                     pyzk 0.9                                               used
============================  =====================================================  =====
connect, comm key             works; but first opens a probe TCP connection, and a   ours
                              garbled or late answer is taken for the answer
info strings, sizes, version  work (one exact-size ``recv`` per answer)              ours
read users / punches          chunks sent in 1008-byte pieces time out; 49-byte      ours
                              records decode as garbage; whole log only, decoded
                              record by record after it is all in memory
get / set time                work; naive local time only                            ours
set / delete user             work once pyzk has learnt the user layout by a read    ours
clear attendance              ``clear_attendance`` works; ``clear_data`` fails       ours
                              under Python 3 (and would erase users too)
live capture                  reads all users first; one event per ``recv``          ours
restart                       works                                                  ours
============================  =====================================================  =====

The operations where pyzk works still cannot ride on it: every pyzk answer is one ``recv``
matched by nothing (no reply-id or checksum check), so after one slow answer (a timeout) or one
garbled packet every later answer on the session is the previous request's, and pyzk's session
state (socket, session and reply ids) is name-mangled private, so our chunked read cannot share
its session. One transport that matches answers by reply id serves every operation instead.

Time: a machine keeps naive local wall time. The driver attaches the office's zone (WIB
``Asia/Jakarta``, WITA ``Asia/Makassar``, WIT ``Asia/Jayapura``; none of them has daylight
saving, so the mapping is one to one) and converts aware times back before sending.

Disabling: reads of users and punches and the clearing of the log run with the machine
disabled (it shows "working" and takes no punch), as ZKTeco's SDK does, so the record count
and the table agree. The machine is always enabled again afterwards — on the same session, or,
if the failure took the session down, on a fresh one; a machine that restarted enables itself.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from devices.zk import info as zkinfo
from devices.zk import payloads, transfer
from devices.zk.client import Progress, ZkClient
from devices.zk.codes import DEFAULT_PORT, Command, EventFlag, Table
from devices.zk.errors import (
    ZkDeviceError,
    ZkError,
    ZkProtocolError,
    ZkUnauthorized,
)
from devices.zk.events import decode_event_packet, encode_reg_event
from devices.zk.records import (
    TABLE_SIZE_PREFIX,
    RecordFormat,
    User,
    UserFormat,
    decode_attendance,
    decode_user_table,
    encode_user,
    record_size_of,
)
from devices.zk.zktime import encode_time

log = logging.getLogger(__name__)

# The office zones of Indonesia by their everyday names (Permendagri: WIB, WITA, WIT).
OFFICE_ZONES: Mapping[str, str] = {"WIB": "Asia/Jakarta", "WITA": "Asia/Makassar",
                                   "WIT": "Asia/Jayapura"}
DEFAULT_TIMEOUT_S = 5.0
LIVE_POLL_S = 0.5  # how often ``live`` looks at its stop event while no punch arrives
_RECORD_TIME = {RecordFormat.R8: 3, RecordFormat.R16: 4, RecordFormat.R40: 27,
                RecordFormat.R49: 27}  # offset of the packed time in each record layout
_U32 = struct.Struct("<I")


def office_zone(name: str) -> ZoneInfo:
    """``WIB`` / ``WITA`` / ``WIT`` (any case) or an IANA name → ``ZoneInfo``."""
    key = OFFICE_ZONES.get(name.upper(), name)
    try:
        return ZoneInfo(key)
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}: use WIB, WITA, WIT or an IANA name "
                         f"such as Asia/Makassar") from exc


class ZkLogChanged(ZkError):
    """The attendance log no longer holds what the caller read: a clear was not done."""


@dataclass(frozen=True, slots=True)
class ZkInfo:
    """What a machine says about itself and its memory.

    ``record_size`` is the attendance record layout in bytes (8, 16, 40 or 49) and
    ``user_size`` the user layout (28 or 72); ``None`` when the machine holds no record (no
    user) to tell it by.
    """

    serial: str
    name: str
    platform: str
    firmware: str
    mac: str
    users: int
    users_cap: int
    punches: int
    punches_cap: int
    fingers: int
    faces: int | None
    record_size: int | None
    user_size: int | None

    @property
    def punches_used_pct(self) -> float:
        """How full the attendance log is (the control room alarms above 80 %)."""
        return 100.0 * self.punches / self.punches_cap if self.punches_cap else 0.0


@dataclass(frozen=True, slots=True)
class Punch:
    """One punch with an aware time in the office's zone.

    ``status`` is how the user verified (1 fingerprint, 15 face, 0 password, 4 card), ``punch``
    the state chosen (0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in,
    5 overtime-out); ``uid`` the machine's slot (0 when the record or event does not carry it).
    """

    user_id: str
    timestamp: datetime
    status: int = 1
    punch: int = 0
    uid: int = 0
    workcode: int = 0

    @property
    def key(self) -> tuple[str, datetime, int]:
        """What makes a punch one punch (the control room stores each key once)."""
        return self.user_id, self.timestamp, self.punch


@dataclass(slots=True)
class _Formats:
    """Record layouts learnt from this machine (they never change while it runs)."""

    users: UserFormat | None = None
    records: RecordFormat | None = None


class ZkDriver:
    """One attendance machine. ``with ZkDriver(host, tz=office_zone("WITA")) as zk: zk.info()``

    Not thread-safe: use one driver per machine and per thread. After a connection error the
    next call opens a fresh session, so a caller retries by calling again.
    """

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, comm_key: int = 0,
                 udp: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                 tz: ZoneInfo, disable_while_reading: bool = True) -> None:
        if not isinstance(tz, ZoneInfo):
            raise TypeError("tz must be a zoneinfo.ZoneInfo (office_zone('WIB'), …)")
        self.tz = tz
        self.disable_while_reading = disable_while_reading
        self._client = ZkClient(host, port, udp=udp, timeout_s=timeout_s, comm_key=comm_key)
        self._formats = _Formats()
        self._disabled_depth = 0
        self.duplicates_dropped = 0  # identical punches dropped by ``punches`` (all reads)

    @property
    def where(self) -> str:
        return self._client.where

    # ----------------------------------------------------------------- session

    def connect(self) -> ZkDriver:
        """Open the session (done by any call when needed; explicit for early errors)."""
        self._client.open()
        return self

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ZkDriver:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self) -> ZkClient:
        if not self._client.is_open:
            self._client.open()
        return self._client

    def _call(self, command: int, data: bytes = b"") -> bytes:
        return self._session().request(command, data).data

    # ----------------------------------------------------------------- identity and memory

    def _option(self, key: str) -> str:
        try:
            answer = self._call(Command.OPTIONS_RRQ, zkinfo.encode_option_request(key))
        except ZkDeviceError as exc:
            if isinstance(exc, ZkUnauthorized):
                raise
            return ""  # the machine does not know this option
        return zkinfo.decode_option(answer)[1] if answer else ""

    def sizes(self) -> zkinfo.FreeSizes:
        """Counts and capacities (one request)."""
        return zkinfo.decode_free_sizes(self._call(Command.GET_FREE_SIZES))

    def info(self) -> ZkInfo:
        """Identity, firmware, memory use and record layouts of the machine."""
        sizes = self.sizes()
        if (sizes.records and self._formats.records is None
                or sizes.users and self._formats.users is None):
            with self._disabled():  # the counts and the tables' sizes must agree
                sizes = self.sizes()
                self._probe_formats(sizes)
        return ZkInfo(
            serial=self._option(zkinfo.SERIAL_NUMBER), name=self._option(zkinfo.DEVICE_NAME),
            platform=self._option(zkinfo.PLATFORM),
            firmware=zkinfo.decode_version(self._call(Command.GET_VERSION)),
            mac=self._option(zkinfo.MAC), users=sizes.users, users_cap=sizes.users_cap,
            punches=sizes.records, punches_cap=sizes.records_cap, fingers=sizes.fingers,
            faces=sizes.faces,
            record_size=int(self._formats.records) if self._formats.records else None,
            user_size=int(self._formats.users) if self._formats.users else None)

    def _probe_formats(self, sizes: zkinfo.FreeSizes) -> None:
        """Learn the record layouts from the tables' sizes without reading them."""
        if sizes.records and self._formats.records is None:
            size = self._table_size(transfer.BufferRequest(Command.ATTLOG_RRQ))
            self._formats.records = _layout_of(size, sizes.records, RecordFormat)
        if sizes.users and self._formats.users is None:
            size = self._table_size(transfer.BufferRequest(Command.USERTEMP_RRQ, Table.USER))
            self._formats.users = _layout_of(size, sizes.users, UserFormat)

    def _table_size(self, request: transfer.BufferRequest) -> int:
        """Bytes of records a table read would bring (the machine prepares it, we free it)."""
        client = self._session()
        ready = client.request(Command.PREPARE_BUFFER, transfer.encode_prepare_buffer(request))
        if ready.command == Command.DATA:
            return len(ready.data) - TABLE_SIZE_PREFIX
        client.request(Command.FREE_DATA)
        return transfer.decode_buffer_ready(ready.data) - TABLE_SIZE_PREFIX

    def _user_ext_hint(self) -> UserFormat:
        """The user layout to write before one was read: ``~UserExtFmt`` 0 is the 28-byte
        layout of older firmware."""
        return UserFormat.ZK6 if self._option(zkinfo.USER_EXT_FMT) == "0" else UserFormat.ZK8

    # ----------------------------------------------------------------- disabled sections

    def _disabled(self) -> _DisabledSection:
        return _DisabledSection(self)

    def _reenable(self) -> None:
        """Enable the machine after a disabled section, whatever happened in it."""
        try:
            self._session().request(Command.ENABLEDEVICE)
            return
        except ZkError as exc:
            first = exc
        self._client.close()
        try:  # the session died with the failure: enable on a fresh one
            self._client.open()
            self._client.request(Command.ENABLEDEVICE)
            log.info("zk %s: enabled again on a new session after: %s", self.where, first)
        except ZkError as exc:
            self._client.close()
            log.warning("zk %s: could not enable the machine again (%s); if it did not "
                        "restart it shows 'working' and takes no punch until the next "
                        "connection enables it — run `kota device zk info` against it",
                        self.where, exc)

    # ----------------------------------------------------------------- users

    def users(self, *, progress: Progress | None = None) -> list[User]:
        """Every enrolled user, by uid."""
        with self._disabled():
            count = self.sizes().users
            parts: list[bytes] = []
            self._session().read_buffer(
                transfer.BufferRequest(Command.USERTEMP_RRQ, Table.USER),
                progress=progress, on_chunk=parts.append)
        table = b"".join(parts)
        body = len(table) - TABLE_SIZE_PREFIX
        if body <= 0:
            return []
        try:
            fmt = UserFormat(record_size_of(body, count, list(UserFormat)))
        except ZkProtocolError:
            fmt = self._formats.users or self._user_ext_hint()
            if body % fmt:
                raise ZkProtocolError(f"the user table of {self.where} ({body} bytes for "
                                      f"{count} users) fits no known layout") from None
        self._formats.users = fmt
        return decode_user_table(table, fmt)

    def set_user(self, user: User) -> None:
        """Enrol or update ``user`` by uid (name and password cut to the machine's fields
        by the caller: ``devices.zk.records.user_fits``)."""
        fmt = self._formats.users or self._user_ext_hint()
        try:
            self._call(Command.USER_WRQ, encode_user(user, fmt))
        except ZkDeviceError as exc:
            if isinstance(exc, ZkUnauthorized) or self._formats.users is not None:
                raise ZkDeviceError(f"the attendance machine at {self.where} refused user "
                                    f"{user.user_id} (uid {user.uid}): it may be full — see "
                                    f"`kota device zk info`", exc.reply_code) from exc
            other = UserFormat.ZK6 if fmt is UserFormat.ZK8 else UserFormat.ZK8
            try:
                self._call(Command.USER_WRQ, encode_user(user, other))
            except ZkDeviceError as exc2:
                raise ZkDeviceError(f"the attendance machine at {self.where} refused user "
                                    f"{user.user_id} (uid {user.uid}) in both layouts: it "
                                    f"may be full — see `kota device zk info`",
                                    exc2.reply_code) from exc2
            fmt = other
        self._formats.users = fmt
        self._call(Command.REFRESHDATA)

    def delete_user(self, uid: int) -> None:
        """Remove the user in slot ``uid`` (and their fingerprints); unknown uids are no error."""
        self._call(Command.DELETE_USER, payloads.encode_delete_user(uid))
        self._call(Command.REFRESHDATA)

    # ----------------------------------------------------------------- punches

    def punches(self, since: datetime | None = None, *,
                progress: Progress | None = None) -> list[Punch]:
        """Punches on the machine at or after ``since`` (aware), oldest first, without exact
        duplicates.

        The second of ``since`` is included: a machine may store another punch in that second
        after the previous read, and the control room stores each punch once, so a watermark
        taken from the newest punch read loses nothing. The ZK protocol reads the whole log
        (there is no "since" on the wire); records older than the watermark are skipped by
        their packed time while the next chunk travels, before any object is made.
        """
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be an aware datetime (the office's zone or UTC)")
        floor = encode_time(since.astimezone(self.tz).replace(tzinfo=None)) if since else -1
        with self._disabled():
            sizes = self.sizes()
            count = sizes.records
            if count and self._formats.records is None:
                self._probe_formats(sizes)  # 8-byte records need the users to name them
            user_ids = self._uid_map_if_needed()
            reader = _PunchReader(self, count, floor, user_ids)
            self._session().read_buffer(transfer.BufferRequest(Command.ATTLOG_RRQ),
                                        progress=progress, on_chunk=reader.feed)
        punches = reader.finish()
        self.duplicates_dropped += reader.duplicates
        if reader.fmt is not None:
            self._formats.records = reader.fmt
        return punches

    def _uid_map_if_needed(self) -> dict[int, str] | None:
        if self._formats.records is not RecordFormat.R8:
            return None
        return {u.uid: u.user_id for u in self.users()}

    def clear_punches(self, *, expect_count: int | None = None) -> int:
        """Erase the attendance log (users stay); returns how many punches it held.

        Irreversible: the caller must know that every punch on the machine is stored
        elsewhere. With ``expect_count`` the log is erased only if it holds exactly that many
        records (the machine is disabled from the count to the erase, so no punch slips in);
        otherwise ``ZkLogChanged`` and nothing is erased.
        """
        with self._disabled():
            held = self.sizes().records
            if expect_count is not None and held != expect_count:
                raise ZkLogChanged(f"the attendance machine at {self.where} holds {held} "
                                   f"punches, not the {expect_count} expected: nothing was "
                                   f"erased — read the log again first")
            self._call(Command.CLEAR_ATTLOG)
            self._call(Command.REFRESHDATA)
        return held

    # ----------------------------------------------------------------- clock

    def get_time(self) -> datetime:
        """The machine's clock, aware in the office's zone."""
        return payloads.decode_set_time(self._call(Command.GET_TIME)).replace(tzinfo=self.tz)

    def set_time(self, when: datetime | None = None) -> datetime:
        """Set the clock to ``when`` (aware; default: now); returns the local time sent."""
        if when is not None and when.tzinfo is None:
            raise ValueError("when must be an aware datetime")
        # The machine takes whole seconds: round to the nearest, not down.
        local = ((when or datetime.now(UTC)) + timedelta(milliseconds=500)).astimezone(
            self.tz).replace(tzinfo=None, microsecond=0)
        self._call(Command.SET_TIME, payloads.encode_set_time(local))
        self._call(Command.REFRESHDATA)
        return local.replace(tzinfo=self.tz)

    def clock_drift_s(self) -> float:
        """How far the machine's clock is ahead (+) of true time, in seconds (±1 s: the
        machine counts whole seconds; the round trip is halved)."""
        before = time.time()
        shown = self.get_time()
        after = time.time()
        # The machine shows whole seconds, cut down: on average it is half a second further on.
        return round(shown.timestamp() + 0.5 - (before + after) / 2, 1)

    # ----------------------------------------------------------------- live and power

    def live(self, stop: threading.Event | None = None) -> Iterator[Punch]:
        """Punches as users make them, until ``stop`` is set or the caller stops iterating.

        Registers for EF_ATTLOG events and acknowledges each one; the registration is dropped
        when the iteration ends. Connection errors end it with the usual error (reconnect and
        call again; read ``punches`` from the last watermark for what was missed).
        """
        client = self._session()
        client.request(Command.ENABLEDEVICE)  # a disabled machine takes no punch
        client.request(Command.REG_EVENT, encode_reg_event(EventFlag.ATTLOG))
        try:
            while stop is None or not stop.is_set():
                packet = client.next_event(LIVE_POLL_S)
                if packet is None:
                    continue
                client.ack_event()
                try:
                    event = decode_event_packet(packet)
                except ZkProtocolError as exc:
                    log.warning("zk %s: live event ignored: %s", self.where, exc)
                    continue
                yield Punch(event.user_id, event.timestamp.replace(tzinfo=self.tz),
                            event.status, event.punch)
        finally:
            if client.is_open:
                try:
                    client.request(Command.REG_EVENT, encode_reg_event(0))
                except ZkError as exc:
                    log.info("zk %s: could not stop live events (%s); closing the session",
                             self.where, exc)
                    client.close()

    def restart(self) -> None:
        """Restart the machine; it is unreachable for a few seconds and the session ends."""
        self._session().request(Command.RESTART, retries=0)
        self._client.close()


_Layout = TypeVar("_Layout", RecordFormat, UserFormat)


def _layout_of(table_bytes: int, count: int, layouts: type[_Layout]) -> _Layout | None:
    try:
        return layouts(record_size_of(table_bytes, count, [int(f) for f in layouts]))
    except ZkProtocolError:
        return None


class _DisabledSection:
    """``with driver._disabled():`` — CMD_DISABLEDEVICE in, CMD_ENABLEDEVICE out, always.

    Sections nest (a punch read of 8-byte records reads the users inside it): only the
    outermost disables and enables.
    """

    def __init__(self, driver: ZkDriver) -> None:
        self.driver = driver

    def __enter__(self) -> None:
        driver = self.driver
        if driver.disable_while_reading and driver._disabled_depth == 0:
            driver._call(Command.DISABLEDEVICE)
        driver._disabled_depth += 1

    def __exit__(self, *exc: object) -> None:
        driver = self.driver
        driver._disabled_depth -= 1
        if driver.disable_while_reading and driver._disabled_depth == 0:
            driver._reenable()


class _PunchReader:
    """Decodes the attendance table chunk by chunk, keeping records at or above ``floor``."""

    def __init__(self, driver: ZkDriver, count: int, floor: int,
                 user_ids: Mapping[int, str] | None) -> None:
        self.driver = driver
        self.count = count
        self.floor = floor
        self.user_ids = user_ids
        self.fmt: RecordFormat | None = None
        self._head = b""  # the size prefix and the first bytes until the layout is known
        self._carry = b""  # a record split over two chunks
        self._kept: list[Punch] = []
        self._seen: set[bytes] = set()
        self.duplicates = 0

    def feed(self, chunk: bytes) -> None:
        if self.fmt is None:
            self._head += chunk
            if len(self._head) < TABLE_SIZE_PREFIX:
                return
            (body,) = _U32.unpack_from(self._head)
            self.fmt = self._layout(body)
            chunk, self._head = self._head[TABLE_SIZE_PREFIX:], b""
            if self.fmt is None:
                return
        data = self._carry + chunk if self._carry else chunk
        size = int(self.fmt)
        whole = len(data) - len(data) % size
        self._carry = data[whole:]
        self._decode(memoryview(data)[:whole], size)

    def _layout(self, body: int) -> RecordFormat | None:
        if body == 0:
            return None
        try:
            return RecordFormat(record_size_of(body, self.count, list(RecordFormat)))
        except ZkProtocolError:
            known = self.driver._formats.records
            if known is not None and body % known == 0:
                return known
            raise ZkProtocolError(f"the attendance log of {self.driver.where} ({body} bytes "
                                  f"for {self.count} punches) fits no known record layout "
                                  f"(8, 16, 40, 49 bytes)") from None

    def _decode(self, data: memoryview, size: int) -> None:
        assert self.fmt is not None
        offset, floor, fmt, user_ids = _RECORD_TIME[self.fmt], self.floor, self.fmt, self.user_ids
        tz, seen, keep = self.driver.tz, self._seen, self._kept.append
        for start in range(0, len(data), size):
            if _U32.unpack_from(data, start + offset)[0] < floor:
                continue
            raw = bytes(data[start:start + size])
            if raw in seen:  # the same punch stored twice (a double press in one second)
                self.duplicates += 1
                continue
            seen.add(raw)
            r = decode_attendance(raw, fmt, user_ids)
            keep(Punch(r.user_id, r.timestamp.replace(tzinfo=tz), r.status, r.punch, r.uid,
                       r.workcode))

    def finish(self) -> list[Punch]:
        if self._carry or self._head:
            raise ZkProtocolError(f"the attendance log of {self.driver.where} ended inside a "
                                  f"record: retry the read")
        if self.duplicates:
            log.info("zk %s: %d duplicate punches dropped", self.driver.where, self.duplicates)
        return self._kept


# --------------------------------------------------------------------------- many machines


@dataclass(frozen=True, slots=True)
class MachineTarget:
    """Where one machine is and how to talk to it (what an office agent's settings give)."""

    host: str
    port: int = DEFAULT_PORT
    comm_key: int = 0
    udp: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    since: datetime | None = None  # the watermark: punches at or after it are pulled


@dataclass(frozen=True, slots=True)
class PullResult:
    """One machine's pull: its punches (or the error that stopped it) and what it took."""

    target: MachineTarget
    punches: list[Punch] = field(default_factory=list)
    error: ZkError | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def watermark(self) -> datetime | None:
        """The next ``since``: the newest punch pulled (else the old watermark)."""
        return max((p.timestamp for p in self.punches), default=self.target.since)


def pull_punches(targets: Sequence[MachineTarget], *, tz: ZoneInfo, max_parallel: int = 8,
                 on_done: Callable[[PullResult], None] | None = None) -> list[PullResult]:
    """Pull new punches from many machines at once, one thread per machine, at most
    ``max_parallel`` at a time (an office LAN and the machines' CPUs both like few).

    A failing machine does not stop the others: its ``PullResult.error`` says why. Results
    come back in the order of ``targets``; ``on_done`` sees each as it finishes.
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")

    def pull(target: MachineTarget) -> PullResult:
        started = time.monotonic()
        try:
            with ZkDriver(target.host, target.port, comm_key=target.comm_key, udp=target.udp,
                          timeout_s=target.timeout_s, tz=tz) as zk:
                result = PullResult(target, zk.punches(target.since),
                                    wall_s=time.monotonic() - started)
        except ZkError as exc:
            log.warning("zk %s:%d: pull failed: %s", target.host, target.port, exc)
            result = PullResult(target, error=exc, wall_s=time.monotonic() - started)
        if on_done is not None:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=min(max_parallel, max(1, len(targets))),
                            thread_name_prefix="zk-pull") as pool:
        return list(pool.map(pull, targets))


__all__ = ["OFFICE_ZONES", "MachineTarget", "Punch", "PullResult", "ZkDriver", "ZkInfo",
           "ZkLogChanged",
           "office_zone", "pull_punches"]
