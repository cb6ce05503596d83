"""The ONVIF camera's error tree: what a caller of the driver or the discovery codec catches.

``OnvifError`` → ``AuthError`` (the camera refused the user or password), ``UnreachableError``
(no answer, refused connection, timeout, HTTP 503), ``RefusedError`` (the camera understood
and said no: an unknown profile or preset token, a value it does not take, presets full),
``NotSupportedError`` (the camera lacks the
service or feature asked for) and ``BadReplyError`` (an answer that is not the ONVIF reply
expected). Messages say what happened and what a technician should check.
"""

from __future__ import annotations


class OnvifError(Exception):
    """Root of every ONVIF camera error."""


class AuthError(OnvifError):
    """Wrong user name or password (SOAP ``ter:NotAuthorized``, HTTP 401)."""


class UnreachableError(OnvifError):
    """The camera did not answer: connection refused, timed out, or HTTP 503."""


class RefusedError(OnvifError):
    """The camera answered with a SOAP fault refusing the request (ONVIF Core §5.11.2.2)."""


class NotSupportedError(OnvifError):
    """The camera lacks the service or feature (e.g. PTZ on a fixed camera)."""


class BadReplyError(OnvifError, ValueError):
    """Bytes or a SOAP answer that cannot be read as the ONVIF reply expected."""
