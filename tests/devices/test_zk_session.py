"""``ClientSession``: request numbering, session id, reply matching and refusal codes, pure."""

from __future__ import annotations

import pytest

from devices.zk import framing
from devices.zk.auth import make_commkey
from devices.zk.codes import Command, Reply
from devices.zk.errors import ZkDeviceError, ZkProtocolError, ZkUnauthorized
from devices.zk.framing import Packet
from devices.zk.session import ClientSession


def sent(raw: bytes, tcp: bool = True) -> Packet:
    return framing.decode_tcp_frame(raw) if tcp else framing.decode_packet(raw)


def test_numbering_matches_pyzk_and_session_is_learnt() -> None:
    session = ClientSession(tcp=True)
    connect = sent(session.connect())
    assert connect.encode() != b""  # well formed
    assert (connect.command, connect.session_id, connect.reply_id) == (1000, 0, 0)
    assert connect.checksum_ok()
    session.receive(Packet(Reply.ACK_OK, 0x2222, 0))
    assert session.connected and not session.needs_auth and session.session_id == 0x2222
    ask = sent(session.request(Command.GET_TIME))
    assert (ask.session_id, ask.reply_id) == (0x2222, 1)
    with pytest.raises(ZkProtocolError, match="still unanswered"):
        session.request(Command.GET_TIME)
    with pytest.raises(ZkProtocolError, match="answers reply id 7"):
        session.receive(Packet(Reply.ACK_OK, 0x2222, 7))
    assert session.receive(Packet(Reply.ACK_OK, 0x2222, 1)).command == Reply.ACK_OK


def test_comm_key_flow_and_refusals() -> None:
    session = ClientSession(tcp=False)
    with pytest.raises(ZkProtocolError, match="before the session is connected"):
        session.request(Command.GET_TIME)
    session.connect()
    session.receive(Packet(Reply.ACK_UNAUTH, 0x3333, 0))
    assert session.needs_auth
    auth = sent(session.auth(4321), tcp=False)
    assert auth.data == make_commkey(4321, 0x3333)
    with pytest.raises(ZkUnauthorized, match="refused the comm key"):
        session.receive(Packet(Reply.ACK_UNAUTH, 0x3333, auth.reply_id))
    session.auth(4321)
    session.receive(Packet(Reply.ACK_OK, 0x3333, 2))
    assert not session.needs_auth
    session.request(Command.OPTIONS_RRQ, b"Nope\0")
    with pytest.raises(ZkDeviceError, match="CMD_OPTIONS_RRQ refused by the machine: "
                                            "CMD_ACK_ERROR") as caught:
        session.receive(Packet(Reply.ACK_ERROR, 0x3333, 3))
    assert caught.value.reply_code == Reply.ACK_ERROR


def test_events_are_not_replies() -> None:
    session = ClientSession()
    assert ClientSession.is_event(Packet(Command.REG_EVENT, 1, 0, b"\0" * 12))
    assert not ClientSession.is_event(Packet(Reply.ACK_OK, 1, 0))
    ack = sent(session.ack_event())
    assert ack.command == Reply.ACK_OK and ack.checksum_ok()
    with pytest.raises(ZkProtocolError, match="no request pending"):
        session.receive(Packet(Reply.ACK_OK))
