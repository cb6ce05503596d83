"""The ZK attendance machine's error tree: what a caller of the protocol code or a driver catches.

``ZkError`` → ``ZkProtocolError`` (bytes that are not a valid ZK packet, record or value; also
values that cannot be encoded), ``ZkConnectionError`` (unreachable, dropped, timed out) and
``ZkDeviceError`` (the machine answered, but refused: an error code, or ``ZkUnauthorized`` for a
wrong comm key). The pure protocol modules raise only ``ZkProtocolError``; the connection and
device errors are here so the driver and the emulator share one tree.
"""

from __future__ import annotations


class ZkError(Exception):
    """Root of every ZK attendance machine error."""


class ZkProtocolError(ZkError, ValueError):
    """Bytes that do not decode under the ZK protocol, or a value that cannot be encoded."""


class ZkConnectionError(ZkError):
    """The machine cannot be reached, dropped the connection or sent nothing in time."""


class ZkTimeout(ZkConnectionError):
    """No (complete) answer within the request timeout."""


class ZkDeviceError(ZkError):
    """The machine answered with a reply code that refuses the request."""

    def __init__(self, message: str, reply_code: int | None = None) -> None:
        super().__init__(message)
        self.reply_code = reply_code


class ZkUnauthorized(ZkDeviceError):
    """The machine wants a comm key and the one given is wrong (CMD_ACK_UNAUTH)."""
