"""ONVIF IP cameras (Profile S, PTZ): a driver over onvif-zeep-async and WS-Discovery.

* ``model``     frozen facts, profiles, PTZ status and presets the driver returns
* ``errors``    ``OnvifError`` → ``AuthError`` / ``UnreachableError`` / ``RefusedError`` /
                ``NotSupportedError`` / ``BadReplyError``
* ``client``    ``OnvifCamera``: connect (clock offset applied to WS-Security), media URIs,
                snapshots, PTZ moves and presets, with typed errors
* ``discovery`` WS-Discovery Probe / ProbeMatches codec (pure) and a unicast ``probe``
"""

from devices.onvif.client import OnvifCamera
from devices.onvif.errors import (
    AuthError,
    BadReplyError,
    NotSupportedError,
    OnvifError,
    RefusedError,
    UnreachableError,
)
from devices.onvif.model import CameraFacts, Preset, Profile, PtzStatus

__all__ = ["AuthError", "BadReplyError", "CameraFacts", "NotSupportedError", "OnvifCamera",
           "OnvifError", "Preset", "Profile", "PtzStatus", "RefusedError", "UnreachableError"]
