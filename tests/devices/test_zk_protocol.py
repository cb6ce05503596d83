"""The ZK protocol code against hand-checked byte vectors, pyzk 0.9's own formulas, and
hypothesis: round trips, checksum properties, and arbitrary bytes into every decoder raising
only ``ZkProtocolError``."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zk.base import ZK
from zk.base import make_commkey as pyzk_make_commkey

from devices.zk import events, framing, info, payloads, records, transfer, zktime
from devices.zk.auth import commkey_matches, make_commkey
from devices.zk.codes import Command, EventFlag, Reply, Table
from devices.zk.errors import ZkProtocolError
from devices.zk.events import EventFormat, PunchEvent
from devices.zk.framing import Packet, TcpDeframer
from devices.zk.records import AttendanceRecord, RecordFormat, User, UserFormat

T0 = datetime(2026, 11, 23, 14, 5, 9)
# ((26 * 12 * 31) + (11 - 1) * 31 + 23 - 1) * 86400 + (14 * 60 + 5) * 60 + 9, by hand
T0_PACKED = 10004 * 86400 + 50709
T0_BYTES = struct.pack("<I", T0_PACKED)

_pyzk = ZK("127.0.0.1")  # never connected: used for its private checksum and time formulas


def pyzk_checksum(data: bytes) -> int:
    return struct.unpack("<H", _pyzk._ZK__create_checksum(list(data)))[0]


# --------------------------------------------------------------------------- vectors: framing


def test_first_connect_packet_vector() -> None:
    # Words of the header pyzk checksums: 0x03E8 + 0 + 0 + 0xFFFE = 66534 ≡ 999 (mod 65535);
    # 65534 - 999 = 64535 = 0xFC17. The packet then carries reply id 65534 + 1 - 65535 = 0.
    raw, reply_id = framing.encode_request(Command.CONNECT, 0, 0xFFFE)
    assert raw == bytes.fromhex("e803 17fc 0000 0000")
    assert reply_id == 0
    assert raw == _pyzk._ZK__create_header(1000, b"", 0, 0xFFFE)
    assert framing.tcp_frame(raw) == bytes.fromhex("5050827d 08000000 e80317fc00000000")


def test_machine_reply_vector() -> None:
    # 2000 + 0x1A2B = 8699; 65534 - 8699 = 56835 = 0xDE03, over the header as sent.
    raw = Packet(Reply.ACK_OK, 0x1A2B, 0).encode()
    assert raw == bytes.fromhex("d007 03de 2b1a 0000")
    packet = framing.decode_packet(raw)
    assert (packet.command, packet.session_id, packet.reply_id, packet.checksum) == \
        (2000, 0x1A2B, 0, 0xDE03)
    assert packet.checksum_ok()


def test_checksum_edge_values() -> None:
    assert framing.checksum(b"") == 65534  # ~0 + 65535
    assert framing.checksum(b"\xff\xff") == 65534  # 0xFFFF is one's-complement zero
    assert framing.checksum(b"\x01") == 65533  # a trailing odd byte adds its value
    assert framing.checksum(b"\x01\x00") == framing.checksum(b"\x01")


def test_request_checksum_follows_sdk_convention() -> None:
    raw, reply_id = framing.encode_request(Command.GET_TIME, 0x1A2B, 41, b"")
    packet = framing.decode_packet(raw)
    assert reply_id == packet.reply_id == 42
    assert packet.checksum_ok()  # over reply id 41, as zkemsdk and pyzk compute it
    # Accepting both conventions means a checksum one off also passes (they differ by one);
    # any other corruption does not.
    bad = raw[:2] + bytes((raw[2] ^ 0x10,)) + raw[3:]
    assert not framing.decode_packet(bad).checksum_ok()


def test_tcp_deframer_takes_split_and_joined_frames() -> None:
    a = framing.tcp_frame(Packet(Reply.ACK_OK, 7, 1).encode())
    b = framing.tcp_frame(Packet(Command.DATA, 7, 2, b"x" * 100).encode())
    deframer = TcpDeframer()
    got: list[Packet] = []
    for i in range(0, len(a + b), 5):
        got += deframer.feed((a + b)[i:i + 5])
    assert [(p.command, p.data) for p in got] == [(2000, b""), (1501, b"x" * 100)]
    assert deframer.pending == 0


@pytest.mark.parametrize("stream, problem", [
    (b"GET / HTTP/1.1\r\n", "expected 50 50 82 7d"),
    (b"GET", "TCP magic"),
    (bytes.fromhex("5050827d ffffff7f"), "announces"),
    (bytes.fromhex("5050827d 04000000"), "announces"),
])
def test_tcp_deframer_refuses_garbage(stream: bytes, problem: str) -> None:
    with pytest.raises(ZkProtocolError, match=problem):
        TcpDeframer().feed(stream)


def test_tcp_deframer_bounds_what_it_buffers() -> None:
    with pytest.raises(ZkProtocolError, match="more than"):
        TcpDeframer(max_packet=1024).feed(bytes.fromhex("5050827d 00100000"))


def test_short_packet_is_a_protocol_error() -> None:
    with pytest.raises(ZkProtocolError, match="shorter than the 8-byte header"):
        framing.decode_packet(b"\xd0\x07\x00")


# --------------------------------------------------------------------------- vectors: auth, time


def test_commkey_vector() -> None:
    # key 0, session 0: 00000000 ^ "ZKSO" = 5a 4b 53 4f; halves swapped: 53 4f 5a 4b;
    # ^ 0x32 (ticks 50) except byte 2, which is 0x32 itself.
    assert make_commkey(0, 0) == bytes.fromhex("617d3279")
    assert make_commkey(123456, 0x1A2B) == pyzk_make_commkey(123456, 0x1A2B)
    assert commkey_matches(make_commkey(123456, 0x1A2B, ticks=7), 123456, 0x1A2B)
    assert not commkey_matches(make_commkey(654321, 0x1A2B), 123456, 0x1A2B)
    assert not commkey_matches(b"\x00", 123456, 0x1A2B)


def test_time_vector() -> None:
    assert zktime.encode_time(T0) == T0_PACKED == _pyzk._ZK__encode_time(T0)
    assert zktime.decode_time(T0_PACKED) == T0 == _pyzk._ZK__decode_time(T0_BYTES)
    assert payloads.encode_set_time(T0) == T0_BYTES
    assert zktime.encode_timehex(T0) == bytes((26, 11, 23, 14, 5, 9))


def test_time_refuses_what_the_machine_cannot_hold() -> None:
    with pytest.raises(ZkProtocolError, match="time zone"):
        zktime.encode_time(datetime(2026, 1, 1).astimezone())
    with pytest.raises(ZkProtocolError, match="year 2100"):
        zktime.encode_time(datetime(2100, 1, 1))
    # 2026, month index 1 (February), day index 29: 31-day months make "30 February" encodable
    with pytest.raises(ZkProtocolError, match="2026-02-30, not a date"):
        zktime.decode_time((26 * 372 + 31 + 29) * 86400)


# --------------------------------------------------------------------------- vectors: records

BUDI = User(uid=1, user_id="1001", name="Budi", privilege=0, password="", group_id="", card=0)


def test_user72_vector() -> None:
    raw = records.encode_user(BUDI, UserFormat.ZK8)
    expected = (b"\x01\x00" + b"\x00" + b"\x00" * 8 + b"Budi".ljust(24, b"\0") + b"\0" * 4
                + b"\0" + b"\0" * 7 + b"\0" + b"1001".ljust(24, b"\0"))
    assert raw == expected and len(raw) == 72
    # pyzk's own read format (get_users) sees the same fields
    uid, _priv, _pw, name, _card, _group, user_id = struct.unpack("<HB8s24sIx7sx24s", raw)
    assert (uid, name.rstrip(b"\0"), user_id.rstrip(b"\0")) == (1, b"Budi", b"1001")
    assert records.decode_user(raw, UserFormat.ZK8) == BUDI


def test_user28_vector() -> None:
    user = User(uid=2, user_id="1002", name="Siti", password="12", group_id="1", card=77)
    raw = records.encode_user(user, UserFormat.ZK6)
    expected = (b"\x02\x00" + b"\x00" + b"12\0\0\0" + b"Siti\0\0\0\0" + struct.pack("<I", 77)
                + b"\0" + b"\x01" + b"\0\0" + struct.pack("<I", 1002))
    assert raw == expected and len(raw) == 28
    assert records.decode_user(raw, UserFormat.ZK6) == user


def test_user_text_that_does_not_fit() -> None:
    long_name = User(uid=3, user_id="1003", name="Bambang Sulistyo")
    with pytest.raises(ZkProtocolError, match="holds 8"):
        records.encode_user(long_name, UserFormat.ZK6)
    assert records.user_fits(long_name, UserFormat.ZK6).name == "Bambang "
    with pytest.raises(ZkProtocolError, match="holds a number"):
        records.encode_user(User(uid=4, user_id="NIP-1"), UserFormat.ZK6)


def test_attendance_vectors() -> None:
    rec = AttendanceRecord("1001", T0, status=1, punch=0, uid=1)
    assert records.encode_attendance(rec, RecordFormat.R8) == b"\x01\x00\x01" + T0_BYTES + b"\0"
    assert records.encode_attendance(rec, RecordFormat.R16) == (
        struct.pack("<I", 1001) + T0_BYTES + b"\x01\x00" + b"\0\0" + b"\0" * 4)
    r40 = records.encode_attendance(rec, RecordFormat.R40)
    assert r40 == b"\x01\x00" + b"1001".ljust(24, b"\0") + b"\x01" + T0_BYTES + b"\0" + b"\0" * 8
    assert records.encode_attendance(rec, RecordFormat.R49) == r40 + b"\0" * 9
    # pyzk's 40-byte read format
    uid, user_id, status, when, punch, _ = struct.unpack("<H24sB4sB8s", r40)
    assert (uid, user_id.rstrip(b"\0"), status, when, punch) == (1, b"1001", 1, T0_BYTES, 0)
    for fmt in RecordFormat:
        back = records.decode_attendance(records.encode_attendance(rec, fmt), fmt, {1: "1001"})
        assert (back.user_id, back.timestamp, back.status, back.punch) == ("1001", T0, 1, 0)


def test_tables_and_record_size() -> None:
    rec = AttendanceRecord("1001", T0, uid=1)
    table = records.encode_attendance_table([rec, rec], RecordFormat.R40)
    assert table[:4] == struct.pack("<I", 80)
    assert records.decode_attendance_table(table, RecordFormat.R40) == [rec, rec]
    assert records.record_size_of(98, 2, list(RecordFormat)) == 49
    with pytest.raises(ZkProtocolError, match="not a known record size"):
        records.record_size_of(90, 2, list(RecordFormat))
    with pytest.raises(ZkProtocolError, match="announces 80 bytes"):
        records.decode_attendance_table(table[:-1], RecordFormat.R40)
    assert records.decode_user_table(records.encode_user_table([BUDI], UserFormat.ZK8),
                                     UserFormat.ZK8) == [BUDI]


# --------------------------------------------------------------------------- vectors: info


def test_options_and_version() -> None:
    assert info.encode_option_request("~SerialNumber") == b"~SerialNumber\0"
    assert info.decode_option_request(b"~SerialNumber\0") == "~SerialNumber"
    assert info.encode_option("~SerialNumber", "KP01") == b"~SerialNumber=KP01\0"
    assert info.decode_option(b"~Platform=ZMM220_TFT\0junk") == ("~Platform", "ZMM220_TFT")
    assert info.decode_version(b"Ver 6.60 Apr 28 2017\0\0") == "Ver 6.60 Apr 28 2017"
    with pytest.raises(ZkProtocolError, match="has no '='"):
        info.decode_option(b"~Platform\0")


def test_free_sizes_layout_as_pyzk_reads_it() -> None:
    sizes = info.FreeSizes(users=60, fingers=0, records=50000, cards=3, users_cap=10000,
                           fingers_cap=30000, records_cap=100000, users_av=9940,
                           fingers_av=30000, records_av=50000, faces=0, faces_cap=10000)
    raw = info.encode_free_sizes(sizes)
    assert len(raw) == 92
    f = struct.unpack("<20i", raw[:80])
    assert (f[4], f[8], f[12], f[14], f[15], f[16], f[17], f[18], f[19]) == \
        (60, 50000, 3, 30000, 10000, 100000, 30000, 9940, 50000)
    assert struct.unpack("<3i", raw[80:]) == (0, 0, 10000)
    assert info.decode_free_sizes(raw) == sizes
    assert sizes.records_used_pct == 50.0
    old = info.decode_free_sizes(raw[:80])
    assert old.faces is None and old.records == 50000


# --------------------------------------------------------------------------- vectors: transfer


def test_buffered_read_payloads() -> None:
    request = transfer.BufferRequest(Command.USERTEMP_RRQ, Table.USER)
    raw = transfer.encode_prepare_buffer(request)
    assert raw == struct.pack("<bhii", 1, 9, 5, 0)  # what pyzk's read_with_buffer sends
    assert transfer.decode_prepare_buffer(raw) == request
    assert transfer.encode_buffer_ready(2_000_004) == b"\0" + struct.pack("<I", 2_000_004) + \
        b"\0" * 4
    assert transfer.decode_buffer_ready(transfer.encode_buffer_ready(7)) == 7
    assert transfer.encode_read_chunk(65472, 100) == struct.pack("<ii", 65472, 100)
    assert transfer.plan_chunks(140000) == [(0, 65472), (65472, 65472), (130944, 9056)]
    assert transfer.plan_chunks(0) == []


@pytest.mark.parametrize("piece", [None, 1008, 1024])
def test_chunk_packets_reassemble(piece: int | None) -> None:
    chunk = bytes(range(256)) * 12  # 3072 bytes
    packets = transfer.chunk_packets(chunk, session_id=5, reply_id=9, piece=piece)
    assert packets[0].command == Command.PREPARE_DATA and packets[-1].command == Reply.ACK_OK
    assert transfer.decode_prepare_data(packets[0].data) == 3072
    assert len(packets[0].data) == 8  # pyzk skips 8 payload bytes over TCP
    sizes = [len(p.data) for p in packets[1:-1]]
    assert sizes == ([3072] if piece is None else [piece] * (3072 // piece) +
                     ([3072 % piece] if 3072 % piece else []))
    assembler = transfer.ChunkAssembler(3072)
    done = [assembler.add(p) for p in packets]
    assert done[-1] and not any(done[:-1]) and assembler.data == chunk


def test_chunk_assembler_refuses_wrong_answers() -> None:
    assembler = transfer.ChunkAssembler(10)
    with pytest.raises(ZkProtocolError, match="where a chunk should start"):
        assembler.add(Packet(Reply.ACK_ERROR))
    assembler = transfer.ChunkAssembler(10)
    assembler.add(Packet(Command.PREPARE_DATA, data=transfer.encode_prepare_data(10)))
    assembler.add(Packet(Command.DATA, data=b"12345"))
    with pytest.raises(ZkProtocolError, match="ended after 5 of 10"):
        assembler.add(Packet(Reply.ACK_OK))
    inline = transfer.ChunkAssembler(3)
    assert inline.add(Packet(Command.DATA, data=b"abc")) and inline.data == b"abc"


# --------------------------------------------------------------------------- vectors: events


def test_punch_event_vectors_as_pyzk_reads_them() -> None:
    event = PunchEvent("1001", T0, status=1, punch=0)
    when = bytes((26, 11, 23, 14, 5, 9))
    e12 = events.encode_punch_event(event, EventFormat.E12)
    assert e12 == struct.pack("<I", 1001) + b"\x01\x00" + when
    assert struct.unpack("<IBB6s", e12) == (1001, 1, 0, when)  # pyzk live_capture
    e36 = events.encode_punch_event(event, EventFormat.E36)
    assert e36 == b"1001".ljust(24, b"\0") + b"\x01\x00" + when + b"\0" * 4
    for fmt in EventFormat:
        assert events.decode_punch_event(events.encode_punch_event(event, fmt)) == event
    packet = events.event_packet(event, EventFormat.E52)
    assert (packet.command, packet.session_id, packet.reply_id) == (500, 1, 0)
    assert events.encode_reg_event(EventFlag.ATTLOG) == b"\x01\0\0\0"
    with pytest.raises(ZkProtocolError, match="known sizes"):
        events.decode_punch_event(b"\0" * 40)


def test_command_payloads() -> None:
    assert payloads.encode_delete_user(300) == struct.pack("<h", 300)  # pyzk packs 'h'
    assert payloads.decode_delete_user(b"\x2c\x01") == 300
    user, fmt = payloads.decode_set_user(payloads.encode_set_user(BUDI, UserFormat.ZK8))
    assert (user, fmt) == (BUDI, UserFormat.ZK8)
    # pyzk's set_user for 72-byte firmware: pack('HB8s24s4sx7sx24s', ...)
    pyzk_raw = struct.pack("HB8s24s4sx7sx24s", 1, 0, b"", b"Budi".ljust(24, b"\0"),
                           struct.pack("<I", 0), b"", b"1001")
    assert payloads.decode_set_user(pyzk_raw)[0] == BUDI
    assert payloads.encode_unlock(3) == struct.pack("<I", 30)


# --------------------------------------------------------------------------- hypothesis

local_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23,
                                                                               59, 59)
                           ).map(lambda d: d.replace(microsecond=0))
u16 = st.integers(0, 0xFFFF)
text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=6)


@given(st.binary(max_size=300))
def test_checksum_equals_pyzk(data: bytes) -> None:
    assert framing.checksum(data) == pyzk_checksum(data)


@given(u16, u16, u16, st.binary(max_size=200))
def test_packet_round_trip(command: int, session: int, reply: int, data: bytes) -> None:
    raw = framing.encode_packet(command, session, reply, data)
    packet = framing.decode_packet(raw)
    assert (packet.command, packet.session_id, packet.reply_id, packet.data) == \
        (command, session, reply, data)
    assert packet.checksum_ok()
    # a packet checksums to zero in one's-complement arithmetic: sum + (65534 - sum) ≡ -1
    assert framing.checksum(raw) in (0, 65534) or framing._sum_words(raw) % 65535 == 65534


@given(u16, u16, st.integers(0, 0xFFFE), st.binary(max_size=100))
def test_request_round_trip_matches_pyzk(command: int, session: int, last: int,
                                         data: bytes) -> None:
    raw, _ = framing.encode_request(command, session, last, data)
    assert raw == _pyzk._ZK__create_header(command, data, session, last)
    assert framing.decode_packet(raw).checksum_ok()


@given(st.lists(st.tuples(u16, st.binary(max_size=80)), max_size=6), st.data())
def test_tcp_deframer_any_split(items: list[tuple[int, bytes]], data: st.DataObject) -> None:
    stream = b"".join(framing.tcp_frame(framing.encode_packet(c, 1, 2, d)) for c, d in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    deframer = TcpDeframer()
    got: list[Packet] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += deframer.feed(stream[a:b])
    assert [(p.command, p.data) for p in got] == items


@given(local_times)
def test_time_round_trips(when: datetime) -> None:
    assert zktime.decode_time(zktime.encode_time(when)) == when
    assert zktime.decode_timehex(zktime.encode_timehex(when)) == when
    assert zktime.encode_time(when) == _pyzk._ZK__encode_time(when)


@given(st.integers(0, 999999), u16, st.integers(0, 255))
def test_commkey_round_trip(key: int, session: int, ticks: int) -> None:
    scrambled = make_commkey(key, session, ticks)
    assert commkey_matches(scrambled, key, session)
    try:
        assert scrambled == pyzk_make_commkey(key, session, ticks)
    except struct.error:
        pass  # pyzk overflows where the bit-reversed key plus the session passes 2**32


users72 = st.builds(User, uid=st.integers(1, 0xFFFF), user_id=st.text("0123456789ABC", max_size=24),
                    name=text, privilege=st.sampled_from([0, 14]), password=st.text("0123456789",
                                                                                    max_size=8),
                    group_id=st.text("0123456789", max_size=7), card=st.integers(0, 2**32 - 1))
users28 = st.builds(User, uid=st.integers(1, 0xFFFF), user_id=st.integers(0, 2**32 - 1).map(str),
                    name=st.text("abcdefgh XYZ", max_size=8), password=st.text("0123", max_size=5),
                    group_id=st.integers(0, 255).map(str), card=st.integers(0, 2**32 - 1))


@given(users72)
def test_user72_round_trip(user: User) -> None:
    assert records.decode_user(records.encode_user(user, UserFormat.ZK8), UserFormat.ZK8) == user


@given(users28)
def test_user28_round_trip(user: User) -> None:
    assert records.decode_user(records.encode_user(user, UserFormat.ZK6), UserFormat.ZK6) == user


@given(st.integers(1, 0xFFFF), st.integers(0, 2**32 - 1), local_times, st.integers(0, 255),
       st.integers(0, 255), st.sampled_from(list(RecordFormat)))
def test_attendance_round_trip(uid: int, number: int, when: datetime, status: int, punch: int,
                               fmt: RecordFormat) -> None:
    rec = AttendanceRecord(str(number), when, status, punch, uid)
    back = records.decode_attendance(records.encode_attendance(rec, fmt), fmt, {uid: str(number)})
    assert (back.user_id, back.timestamp, back.status, back.punch) == (str(number), when, status,
                                                                       punch)


@given(st.integers(0, 2**32 - 1), local_times, st.integers(0, 255), st.integers(0, 255),
       st.sampled_from(list(EventFormat)))
def test_event_round_trip(number: int, when: datetime, status: int, punch: int,
                          fmt: EventFormat) -> None:
    event = PunchEvent(str(number), when, status, punch)
    assert events.decode_punch_event(events.encode_punch_event(event, fmt)) == event


def _decode_one(raw: bytes, fmt: RecordFormat) -> object:
    return records.decode_attendance(raw, fmt)


def _decode_table(raw: bytes, fmt: RecordFormat) -> object:
    return records.decode_attendance_table(raw, fmt)


DECODERS: dict[str, Callable[[bytes], object]] = {
    "packet": framing.decode_packet,
    "tcp_frame": framing.decode_tcp_frame,
    "deframer": lambda b: TcpDeframer().feed(b),
    "user28": lambda b: records.decode_user(b, UserFormat.ZK6),
    "user72": lambda b: records.decode_user(b, UserFormat.ZK8),
    "user_table72": lambda b: records.decode_user_table(b, UserFormat.ZK8),
    "user_table28": lambda b: records.decode_user_table(b, UserFormat.ZK6),
    **{f"att{int(f)}": functools.partial(_decode_one, fmt=f) for f in RecordFormat},
    **{f"att_table{int(f)}": functools.partial(_decode_table, fmt=f) for f in RecordFormat},
    "free_sizes": info.decode_free_sizes,
    "option": info.decode_option,
    "option_request": info.decode_option_request,
    "version": info.decode_version,
    "prepare_buffer": transfer.decode_prepare_buffer,
    "buffer_ready": transfer.decode_buffer_ready,
    "read_chunk": transfer.decode_read_chunk,
    "prepare_data": transfer.decode_prepare_data,
    "punch_event": events.decode_punch_event,
    "reg_event": events.decode_reg_event,
    "set_time": payloads.decode_set_time,
    "set_user": payloads.decode_set_user,
    "delete_user": payloads.decode_delete_user,
    "time_bytes": zktime.decode_time_bytes,
    "timehex": zktime.decode_timehex,
}


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=150, deadline=None)
@given(raw=st.one_of(st.binary(max_size=120),
                     st.sampled_from([8, 12, 16, 28, 36, 40, 49, 52, 72, 80, 92]).flatmap(
                         lambda n: st.binary(min_size=n, max_size=n))))
def test_decoders_raise_only_protocol_errors(name: str, raw: bytes) -> None:
    try:
        DECODERS[name](raw)
    except ZkProtocolError:
        pass
