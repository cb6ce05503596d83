"""One emulated ZKTeco attendance machine: its memory, its clock and its answer to each packet.

It owns the users, the attendance log (with its capacity and behaviour when full), the device
state (enabled, down after a reboot), the fault set, and ``handle``: one decoded request and
its session in, the reply packets out — sans I/O, so it is tested without sockets. It must not
open sockets or encode bytes by hand: ``server`` carries packets, ``devices.zk`` encodes them.

Not emulated: fingerprint/face templates (the template table reads empty; uploads through
CMD_PREPARE_DATA are answered CMD_ACK_UNKNOWN), enrolment, door control beyond an ACK, the
operation log. A disabled machine (CMD_DISABLEDEVICE) stays disabled and refuses punches until
enabled or restarted — which is why a client must always re-enable it.

Thread safety: ``handle`` runs on the server's event loop while a test or simulator thread
calls ``punch``, ``add_user`` or sets faults; one lock guards the state.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from devices.zk import info, payloads, transfer
from devices.zk.auth import commkey_matches
from devices.zk.codes import (
    SMALL_DATA_PACKET,
    UDP_DATA_PACKET,
    Command,
    EventFlag,
    Reply,
    Table,
)
from devices.zk.errors import ZkProtocolError
from devices.zk.events import PunchEvent, decode_reg_event
from devices.zk.framing import Packet
from devices.zk.records import (
    AttendanceRecord,
    User,
    UserFormat,
    encode_attendance,
    encode_table,
    encode_user_table,
    user_fits,
)
from firmware_sim.zk.clock import MachineClock
from firmware_sim.zk.profiles import MachineConfig, WhenFull

log = logging.getLogger(__name__)


class Fault(enum.Enum):
    """Faults on demand: put them in ``ZkMachine.faults`` (a set; any thread may change it).

    One-shot faults remove themselves when they fire; the others stay until removed.
    """

    DROP_MID_TRANSFER = "drop_mid_transfer"  # one-shot: half a chunk, then a reset (RST)
    CLOSE_MID_TRANSFER = "close_mid_transfer"  # one-shot: half a chunk, then an orderly close
    REBOOT_MID_TRANSFER = "reboot_mid_transfer"  # one-shot: half a chunk, then a reboot
    GARBLED_REPLY = "garbled_reply"  # one-shot: the next reply's header and payload scrambled
    CHUNKS_1008 = "chunks_1008"  # TCP chunks as CMD_DATA packets of 1008 bytes
    SLOW_ANSWERS = "slow_answers"  # every answer delayed by ``config.slow_answer_s``
    DUPLICATE_PUNCHES = "duplicate_punches"  # each punch is stored twice, same second


ONE_SHOT = frozenset({Fault.DROP_MID_TRANSFER, Fault.CLOSE_MID_TRANSFER,
                      Fault.REBOOT_MID_TRANSFER, Fault.GARBLED_REPLY})


class Transport(enum.Enum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(slots=True, eq=False)  # identity: sessions key dicts
class Session:
    """One client session: a TCP connection, or a UDP peer after CMD_CONNECT."""

    session_id: int
    transport: Transport
    connected: bool = False
    authenticated: bool = False
    buffer: bytes | None = None  # snapshot of the table a 1503 prepared
    events: EventFlag = EventFlag(0)
    peer: object = None  # the server's handle to send unsolicited events (address / transport)


class Action(enum.Enum):
    """What the server must do after sending an answer."""

    NONE = "none"
    CLOSE = "close"  # CMD_EXIT: end the session
    REBOOT = "reboot"  # CMD_RESTART / CMD_POWEROFF
    DROP_HALFWAY = "drop_halfway"  # send half the answer, then reset the link
    CLOSE_HALFWAY = "close_halfway"  # send half the answer, then close the link (FIN)
    REBOOT_HALFWAY = "reboot_halfway"  # send half the answer, then reboot


@dataclass(slots=True)
class Answer:
    """The reply packets to one request and what to do after sending them."""

    packets: list[Packet] = field(default_factory=list)
    action: Action = Action.NONE
    garble: bool = False  # scramble the first packet (Fault.GARBLED_REPLY)
    delay_s: float = 0.0  # wait before answering (Fault.SLOW_ANSWERS)


PunchListener = Callable[[AttendanceRecord], None]
RebootListener = Callable[[], None]


class ZkMachine:
    """An emulated ZKTeco terminal. ``punch`` makes a user punch; the server serves ``handle``.

    ``ZkMachine(MachineConfig(serial="KPZK0001", profile="older", comm_key=1234))``
    """

    def __init__(self, config: MachineConfig | None = None, *,
                 clock: MachineClock | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config or MachineConfig()
        self.firmware = self.config.firmware
        self.clock = clock or MachineClock(utc_offset_h=self.config.utc_offset_h,
                                           offset_s=self.config.clock_offset_s,
                                           drift_s_per_day=self.config.drift_s_per_day)
        self.faults: set[Fault] = set()
        self.enabled = True
        self.refused_punches = 0  # punches lost to a full log (STOP) or a disabled/down machine
        self.overwritten_punches = 0  # oldest punches dropped to make room (OVERWRITE)
        self.garbled_packets = 0  # requests that did not decode or failed their checksum
        self.reboots = 0
        self._monotonic = monotonic
        self._down_until = 0.0
        self._lock = threading.RLock()
        self._users: dict[int, User] = {}
        self._log: deque[AttendanceRecord] = deque()
        self._log_version = 0
        self._table_cache: tuple[int, bytes] | None = None
        self._options: dict[str, str] = self._identity_options()
        self._punch_listeners: list[PunchListener] = []
        self._reboot_listeners: list[RebootListener] = []

    # ----------------------------------------------------------------- identity

    @property
    def serial(self) -> str:
        return self.config.serial

    def _identity_options(self) -> dict[str, str]:
        fw, cfg = self.firmware, self.config
        options = {
            info.SERIAL_NUMBER: cfg.serial,
            info.DEVICE_NAME: cfg.device_name or fw.device_name,
            info.PLATFORM: fw.platform,
            info.OEM_VENDOR: "ZKTeco Inc.",
            info.FP_VERSION: fw.fp_version,
            info.EXTEND_FMT: fw.extend_fmt,
            info.USER_EXT_FMT: fw.user_ext_fmt,
            info.MAC: cfg.mac,
            "~ProductTime": "2019-03-04 10:21:33",
            "IPAddress": "127.0.0.1",
            "NetMask": "255.0.0.0",
            "GATEIPAddress": "0.0.0.0",
            "CompatOldFirmware": "0",
            "FaceFunOn": "1" if fw.face_version else "0",
        }
        if fw.face_version:
            options[info.FACE_VERSION] = fw.face_version
        return options

    # ----------------------------------------------------------------- memory (any thread)

    @property
    def users(self) -> list[User]:
        with self._lock:
            return sorted(self._users.values(), key=lambda u: u.uid)

    @property
    def attendance(self) -> list[AttendanceRecord]:
        """The log, oldest first (a copy)."""
        with self._lock:
            return list(self._log)

    @property
    def record_count(self) -> int:
        with self._lock:
            return len(self._log)

    def add_user(self, user: User) -> None:
        """Store (or replace) a user by uid, as CMD_USER_WRQ does; refuses beyond capacity.

        Text longer than the firmware's fields is cut, as the terminal's own enrolment does.
        """
        user = user_fits(user, self.firmware.user_format)
        with self._lock:
            if user.uid not in self._users and len(self._users) >= self.config.users_cap:
                raise ValueError(f"machine {self.serial} holds {self.config.users_cap} users "
                                 f"already (its capacity)")
            if self.firmware.user_format is UserFormat.ZK6 and not user.user_id.isdigit():
                raise ValueError(f"{self.firmware.key} firmware stores numeric user ids only, "
                                 f"not {user.user_id!r}")
            self._users[user.uid] = user

    def delete_user(self, uid: int) -> bool:
        with self._lock:
            return self._users.pop(uid, None) is not None

    def user_by_id(self, user_id: str) -> User | None:
        with self._lock:
            return next((u for u in self._users.values() if u.user_id == user_id), None)

    def load_attendance(self, records: list[AttendanceRecord]) -> None:
        """Put historical punches straight into the log (seeding), oldest first."""
        with self._lock:
            for record in records:
                self._store(record)

    def punch(self, user_id: str, *, when: datetime | None = None, status: int = 1,
              punch: int = 0) -> AttendanceRecord | None:
        """A user punches now (or at ``when``). Returns the stored record, or ``None`` if the
        machine refused it (down, disabled, log full with STOP, unknown user)."""
        with self._lock:
            user = self.user_by_id(user_id)
            if user is None:
                log.info("zk %s: punch by unknown user %s refused (enrol the user first)",
                         self.serial, user_id)
                return None
            if self.is_down or not self.enabled:
                self.refused_punches += 1
                return None
            record = AttendanceRecord(user.user_id, when or self.clock.now(), status, punch,
                                      user.uid)
            copies = 2 if Fault.DUPLICATE_PUNCHES in self.faults else 1
            stored = [self._store(record) for _ in range(copies)]
            if not stored[0]:
                return None
            listeners = list(self._punch_listeners)
        for listener in listeners:
            listener(record)
        return record

    def _store(self, record: AttendanceRecord) -> bool:
        if len(self._log) >= self.config.records_cap:
            if self.config.when_full is WhenFull.STOP:
                self.refused_punches += 1
                log.warning("zk %s: attendance log full (%d punches); punch refused — read the "
                            "log and clear the machine", self.serial, self.config.records_cap)
                return False
            self._log.popleft()
            self.overwritten_punches += 1
        self._log.append(record)
        self._log_version += 1
        return True

    def clear_attendance(self) -> None:
        with self._lock:
            self._log.clear()
            self._log_version += 1

    # ----------------------------------------------------------------- power

    @property
    def is_down(self) -> bool:
        """Rebooting: no answers, no punches."""
        return self._monotonic() < self._down_until

    def reboot(self, down_s: float | None = None) -> None:
        """Restart: every connection drops, the machine is back after ``down_s`` (default:
        ``config.reboot_s``); users, punches and the clock are kept, the device re-enabled."""
        with self._lock:
            self._down_until = self._monotonic() + (self.config.reboot_s if down_s is None
                                                    else down_s)
            self.enabled = True
            self.reboots += 1
            listeners = list(self._reboot_listeners)
        log.info("zk %s: rebooting, back in %.1f s", self.serial,
                 self.config.reboot_s if down_s is None else down_s)
        for listener in listeners:
            listener()

    def on_punch(self, listener: PunchListener) -> None:
        """Call ``listener(record)`` after each stored punch (the server sends live events)."""
        self._punch_listeners.append(listener)

    def off_punch(self, listener: PunchListener) -> None:
        """Stop calling ``listener`` (a server that stopped)."""
        with contextlib.suppress(ValueError):
            self._punch_listeners.remove(listener)

    def off_reboot(self, listener: RebootListener) -> None:
        with contextlib.suppress(ValueError):
            self._reboot_listeners.remove(listener)

    def on_reboot(self, listener: RebootListener) -> None:
        """Call ``listener()`` when the machine reboots (the server drops its connections)."""
        self._reboot_listeners.append(listener)

    # ----------------------------------------------------------------- protocol

    def free_sizes(self) -> info.FreeSizes:
        with self._lock:
            users, records = len(self._users), len(self._log)
        fw, cfg = self.firmware, self.config
        return info.FreeSizes(
            users=users, fingers=0, records=records, cards=0,
            users_cap=cfg.users_cap, fingers_cap=cfg.users_cap * 3, records_cap=cfg.records_cap,
            users_av=cfg.users_cap - users, fingers_av=cfg.users_cap * 3,
            records_av=cfg.records_cap - records,
            faces=0 if fw.face_version else None, faces_cap=cfg.users_cap if fw.face_version
            else None)

    def attendance_table(self) -> bytes:
        """The attendance log as a table read returns it (cached until the log changes)."""
        with self._lock:
            if self._table_cache is None or self._table_cache[0] != self._log_version:
                fmt = self.firmware.record_format
                self._table_cache = (self._log_version,
                                     encode_table([encode_attendance(r, fmt) for r in self._log]))
            return self._table_cache[1]

    def handle(self, session: Session, packet: Packet) -> Answer:
        """One request on ``session`` → the answer. Never raises for bad client input."""
        if not packet.checksum_ok():
            self.garbled_packets += 1
            log.warning("zk %s: %s with a wrong checksum from session %d ignored (no answer, "
                        "as a terminal does) — check the client's packet builder",
                        self.serial, packet.name, session.session_id)
            return Answer()
        try:
            with self._lock:
                answer = self._dispatch(session, packet)
        except ZkProtocolError as exc:
            self.garbled_packets += 1
            log.warning("zk %s: %s payload does not decode (%s); answered CMD_ACK_ERROR",
                        self.serial, packet.name, exc)
            answer = Answer([self._reply(session, packet, Reply.ACK_ERROR)])
        if Fault.SLOW_ANSWERS in self.faults:
            answer.delay_s = self.config.slow_answer_s
        if answer.packets and Fault.GARBLED_REPLY in self.faults:
            self.faults.discard(Fault.GARBLED_REPLY)
            answer.garble = True
        return answer

    @staticmethod
    def _reply(session: Session, packet: Packet, code: int, data: bytes = b"") -> Packet:
        return Packet(code, session.session_id, packet.reply_id, data)

    def _dispatch(self, session: Session, packet: Packet) -> Answer:
        cmd, data = packet.command, packet.data

        def ok(payload: bytes = b"") -> Answer:
            return Answer([self._reply(session, packet, Reply.ACK_OK, payload)])

        def refuse(code: int = Reply.ACK_ERROR) -> Answer:
            return Answer([self._reply(session, packet, code)])

        if cmd == Reply.ACK_OK:
            return Answer()  # a client acknowledging a live event: nothing to answer
        if cmd == Command.CONNECT:
            session.connected = True
            session.authenticated = self.config.comm_key == 0
            return ok() if session.authenticated else refuse(Reply.ACK_UNAUTH)
        if cmd == Command.AUTH:
            session.authenticated = session.connected and commkey_matches(
                data, self.config.comm_key, session.session_id)
            if not session.authenticated:
                log.info("zk %s: wrong comm key on session %d (answered CMD_ACK_UNAUTH)",
                         self.serial, session.session_id)
            return ok() if session.authenticated else refuse(Reply.ACK_UNAUTH)
        if cmd == Command.EXIT:
            answer = ok()
            answer.action = Action.CLOSE
            return answer
        if not session.authenticated:
            return refuse(Reply.ACK_UNAUTH)

        if cmd == Command.GET_VERSION:
            return ok(info.encode_version(self.firmware.firmware_version))
        if cmd == Command.OPTIONS_RRQ:
            key = info.decode_option_request(data)
            value = self._options.get(key)
            return refuse() if value is None else ok(info.encode_option(key, value))
        if cmd == Command.OPTIONS_WRQ:
            key, value = info.decode_option(data)
            if key.startswith("~"):
                return refuse()  # read-only
            self._options[key] = value
            return ok()
        if cmd == Command.GET_FREE_SIZES:
            return ok(info.encode_free_sizes(self.free_sizes()))
        if cmd == Command.GET_PINWIDTH:
            return ok(bytes((9,)))
        if cmd == Command.GET_TIME:
            return ok(payloads.encode_set_time(self.clock.now()))
        if cmd == Command.SET_TIME:
            self.clock.set(payloads.decode_set_time(data))
            return ok()
        if cmd == Command.ENABLEDEVICE:
            self.enabled = True
            return ok()
        if cmd == Command.DISABLEDEVICE:
            self.enabled = False
            return ok()
        if cmd in (Command.REFRESHDATA, Command.REFRESHOPTION, Command.CANCELCAPTURE,
                   Command.STARTVERIFY, Command.ENABLE_CLOCK, Command.TESTVOICE,
                   Command.UNLOCK):
            return ok()
        if cmd == Command.USER_WRQ:
            user, fmt = payloads.decode_set_user(data)
            if fmt is not self.firmware.user_format:
                log.info("zk %s: %d-byte user write refused, this firmware takes %d-byte users",
                         self.serial, int(fmt), int(self.firmware.user_format))
                return refuse()
            if user.uid not in self._users and len(self._users) >= self.config.users_cap:
                return refuse()
            self._users[user.uid] = user
            return ok()
        if cmd == Command.DELETE_USER:
            self._users.pop(payloads.decode_delete_user(data), None)
            return ok()
        if cmd == Command.CLEAR_ATTLOG:
            self._log.clear()
            self._log_version += 1
            return ok()
        if cmd == Command.CLEAR_DATA:
            self._log.clear()
            self._users.clear()
            self._log_version += 1
            return ok()
        if cmd == Command.REG_EVENT:
            session.events = decode_reg_event(data)
            return ok()
        if cmd == Command.PREPARE_BUFFER:
            return self._prepare_buffer(session, packet, ok, refuse)
        if cmd == Command.READ_BUFFER:
            return self._read_chunk(session, packet, refuse)
        if cmd == Command.FREE_DATA:
            session.buffer = None
            return ok()
        if cmd in (Command.RESTART, Command.POWEROFF):
            answer = ok()
            answer.action = Action.REBOOT
            return answer
        return refuse(Reply.ACK_UNKNOWN)

    def _prepare_buffer(self, session: Session, packet: Packet,
                        ok: Callable[[bytes], Answer], refuse: Callable[[], Answer]) -> Answer:
        request = transfer.decode_prepare_buffer(packet.data)
        if request.command == Command.USERTEMP_RRQ and request.fct == Table.USER:
            table = encode_user_table(sorted(self._users.values(), key=lambda u: u.uid),
                                      self.firmware.user_format)
        elif request.command == Command.ATTLOG_RRQ:
            table = self.attendance_table()
        elif request.command == Command.DB_RRQ and request.fct == Table.FINGERTMP:
            table = encode_table([])  # the emulator enrols no fingerprint templates
        else:
            return refuse()
        session.buffer = table
        return ok(transfer.encode_buffer_ready(len(table)))

    def _read_chunk(self, session: Session, packet: Packet,
                    refuse: Callable[[], Answer]) -> Answer:
        start, size = transfer.decode_read_chunk(packet.data)
        if session.buffer is None or start + size > len(session.buffer):
            log.info("zk %s: chunk %d+%d outside the prepared buffer (%s bytes) refused",
                     self.serial, start, size,
                     "no" if session.buffer is None else len(session.buffer))
            return refuse()
        piece: int | None = None
        if session.transport is Transport.UDP:
            piece = UDP_DATA_PACKET
        elif Fault.CHUNKS_1008 in self.faults:
            piece = SMALL_DATA_PACKET
        packets = transfer.chunk_packets(session.buffer[start:start + size],
                                         session_id=session.session_id,
                                         reply_id=packet.reply_id, piece=piece)
        answer = Answer(packets)
        if Fault.DROP_MID_TRANSFER in self.faults:
            self.faults.discard(Fault.DROP_MID_TRANSFER)
            answer.action = Action.DROP_HALFWAY
        elif Fault.CLOSE_MID_TRANSFER in self.faults:
            self.faults.discard(Fault.CLOSE_MID_TRANSFER)
            answer.action = Action.CLOSE_HALFWAY
        elif Fault.REBOOT_MID_TRANSFER in self.faults:
            self.faults.discard(Fault.REBOOT_MID_TRANSFER)
            answer.action = Action.REBOOT_HALFWAY
        return answer

    def punch_event(self, record: AttendanceRecord) -> PunchEvent:
        """The live event a stored punch produces."""
        return PunchEvent(record.user_id, record.timestamp, record.status, record.punch)
