"""What the ONVIF driver returns: frozen values, free of zeep objects, safe to hand to any
thread or to serialise. Ranges are ONVIF's generic spaces (PTZ spec §5.7): pan and tilt in
-1..1, zoom in 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PAN_RANGE = (-1.0, 1.0)
TILT_RANGE = (-1.0, 1.0)
ZOOM_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class Profile:
    """A media profile: one encoder setting the camera streams (main, sub, JPEG …)."""

    token: str
    name: str
    encoding: str  # tt:VideoEncoding: H264, JPEG, MPEG4 ("" when the profile has no encoder)
    width: int
    height: int
    ptz: bool  # a PTZ configuration is bound to it: PTZ commands name this profile


@dataclass(frozen=True)
class CameraFacts:
    """What ``OnvifCamera.connect`` learns once."""

    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    clock_offset_s: float  # camera UTC minus local UTC
    profiles: tuple[Profile, ...]
    has_ptz: bool
    has_events: bool


@dataclass(frozen=True)
class PtzStatus:
    pan: float
    tilt: float
    zoom: float
    moving: bool  # pan/tilt or zoom is moving
    utc: datetime | None  # the camera's time of the reading (its own clock), if it says


@dataclass(frozen=True)
class Preset:
    token: str
    name: str
    pan: float | None  # None when the camera does not report the preset's position
    tilt: float | None
    zoom: float | None
