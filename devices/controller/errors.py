"""The controller's error tree: what a caller of the codec or the driver can catch.

``ControllerError`` → ``CodecError`` (registers that do not decode), ``ControllerConnectionError``
(unreachable, timed out), ``ControllerProtocolError`` (a Modbus exception or a garbled reply),
``CommandRejected`` (the controller refused a plan, timing or command, with its reason code).
"""

from __future__ import annotations

from devices.controller.registers import REASON_TEXT, Reason


class ControllerError(Exception):
    """Root of every traffic-controller error."""


class CodecError(ControllerError, ValueError):
    """Registers that do not decode, or a value that does not encode, under the register map."""


class ControllerConnectionError(ControllerError):
    """The controller cannot be reached or did not answer in time."""


class ControllerTimeout(ControllerConnectionError):
    """No answer within the request timeout."""


class ControllerProtocolError(ControllerError):
    """The controller answered with a Modbus exception or something that is not a valid reply."""

    def __init__(self, message: str, exception_code: int | None = None) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class CommandRejected(ControllerError):
    """The controller (or the driver's pre-check against its limits) refused the request."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        text = REASON_TEXT.get(reason, "rejected")
        super().__init__(f"rejected ({reason.name}): {text}" + (f" — {detail}" if detail else ""))


class CommandNotConfirmed(ControllerError):
    """A command was written but the result register never confirmed it (seq mismatch, timeout)."""
