"""The emulated camera's state: identity, credentials, clock skew, the PTZ head (position that
integrates velocity over time, moves toward targets, presets) and faults on demand.

No I/O: the HTTP side (``server``) and the SOAP answers (``services``) read and change it under
``CameraState.lock``; time comes in as arguments (monotonic seconds for motion).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

from firmware_sim.onvif.events import TAMPER_TOPICS, EventBroker

PAN_RANGE = (-1.0, 1.0)  # ONVIF generic spaces: pan/tilt in [-1, 1], zoom in [0, 1]
TILT_RANGE = (-1.0, 1.0)
ZOOM_RANGE = (0.0, 1.0)
VELOCITY_UNITS_PER_S = 0.5  # continuous velocity 1.0 moves half a range unit per second
TARGET_UNITS_PER_S = 4.0  # absolute/relative/preset moves travel at this rate (speed 1.0)
MAX_PRESETS = 32
DEFAULT_CONTINUOUS_TIMEOUT_S = 10.0  # a ContinuousMove without Timeout stops by itself after


@dataclass(frozen=True)
class Identity:
    manufacturer: str = "Kota Pintar"
    model: str = "KP-PTZ-2MP"
    firmware: str = "1.4.2"
    serial: str = "KPCAM0001"
    hardware_id: str = "KP-HW-21"
    hostname: str = "kamera-simpang-1"
    mac: str = "00:17:61:20:00:01"


@dataclass
class Faults:
    """Faults on demand; change them with ``CameraEmulator.set_faults``."""

    offline: bool = False  # every HTTP request answers 503 (stop() refuses connections)
    skew_s: float = 0.0  # the camera clock runs this far ahead (+) or behind (-)
    covered: bool = False  # lens covered: black frames, ImageTooDark event
    blurred: bool = False  # out of focus: Gaussian blur, ImageTooBlurry event
    moved: bool = False  # knocked aside: the scene shifted, GlobalSceneChange event
    frozen: bool = False  # the encoder repeats one frame


FAULT_NAMES = tuple(f.name for f in fields(Faults))


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(bounds[1], max(bounds[0], value))


@dataclass(frozen=True)
class Position:
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0

    def clamped(self) -> Position:
        return Position(_clamp(self.pan, PAN_RANGE), _clamp(self.tilt, TILT_RANGE),
                        _clamp(self.zoom, ZOOM_RANGE))


@dataclass(frozen=True)
class Preset:
    token: str
    name: str
    position: Position


@dataclass
class PtzHead:
    """Position integrates the velocity until its deadline (ContinuousMove) or travels toward
    a target (AbsoluteMove, RelativeMove, GotoPreset); ``advance(now_s)`` brings it up to date."""

    position: Position = field(default_factory=Position)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    deadline_s: float = 0.0
    target: Position | None = None
    target_rate: float = TARGET_UNITS_PER_S
    updated_s: float = 0.0

    def advance(self, now_s: float) -> None:
        dt = max(0.0, now_s - self.updated_s)
        p = self.position
        if self.target is not None:
            step = self.target_rate * dt
            t = self.target

            def toward(a: float, b: float) -> float:
                return b if abs(b - a) <= step else a + step * (1 if b > a else -1)

            self.position = Position(toward(p.pan, t.pan), toward(p.tilt, t.tilt),
                                     toward(p.zoom, t.zoom))
            if self.position == t:
                self.target = None
        elif self.velocity != (0.0, 0.0, 0.0):
            moving_s = max(0.0, min(now_s, self.deadline_s) - self.updated_s)
            vp, vt, vz = (v * VELOCITY_UNITS_PER_S * moving_s for v in self.velocity)
            self.position = Position(p.pan + vp, p.tilt + vt, p.zoom + vz).clamped()
            if now_s >= self.deadline_s:
                self.velocity = (0.0, 0.0, 0.0)
        self.updated_s = now_s

    @property
    def moving(self) -> tuple[bool, bool]:
        """(pan/tilt moving, zoom moving)."""
        if self.target is not None:
            p, t = self.position, self.target
            return (p.pan, p.tilt) != (t.pan, t.tilt), p.zoom != t.zoom
        vp, vt, vz = self.velocity
        return (vp, vt) != (0.0, 0.0), vz != 0.0

    def continuous(self, now_s: float, velocity: tuple[float, float, float],
                   timeout_s: float | None) -> None:
        self.advance(now_s)
        self.target = None
        self.velocity = tuple(_clamp(v, (-1.0, 1.0)) for v in velocity)  # type: ignore[assignment]
        self.deadline_s = now_s + (timeout_s if timeout_s is not None
                                   else DEFAULT_CONTINUOUS_TIMEOUT_S)

    def go_to(self, now_s: float, target: Position, speed: float = 1.0) -> None:
        self.advance(now_s)
        self.velocity = (0.0, 0.0, 0.0)
        self.target = target.clamped()
        self.target_rate = TARGET_UNITS_PER_S * _clamp(speed if speed > 0 else 1.0, (0.05, 1.0))
        self.advance(now_s)

    def stop(self, now_s: float, pan_tilt: bool = True, zoom: bool = True) -> None:
        self.advance(now_s)
        vp, vt, vz = self.velocity
        self.velocity = (0.0 if pan_tilt else vp, 0.0 if pan_tilt else vt, 0.0 if zoom else vz)
        if self.target is not None:
            p, t = self.position, self.target
            self.target = Position(p.pan if pan_tilt else t.pan, p.tilt if pan_tilt else t.tilt,
                                   p.zoom if zoom else t.zoom)
            if self.target == p:
                self.target = None


class CameraState:
    """Everything the camera knows; guard reads and changes with ``lock``."""

    def __init__(self, *, user: str = "admin", password: str = "kamera123",
                 identity: Identity | None = None, faults: Faults | None = None,
                 monotonic: Callable[[], float] | None = None) -> None:
        self.user = user
        self.password = password
        self.identity = identity or Identity()
        self.faults = faults or Faults()
        self.lock = threading.RLock()
        self._monotonic = monotonic or time.monotonic
        self.ptz = PtzHead(updated_s=self._monotonic())
        self.presets: dict[str, Preset] = {}
        self.events = EventBroker()
        self.publish_tamper()
        self._next_preset = 1

    def now_s(self) -> float:
        return self._monotonic()

    def camera_utc(self) -> datetime:
        """The camera clock: UTC plus the skew fault."""
        return datetime.now(UTC) + timedelta(seconds=self.faults.skew_s)

    def publish_tamper(self) -> None:
        """Raise or clear the tamper events of the image faults (after a fault change)."""
        now = self.camera_utc()
        for fault, topic in TAMPER_TOPICS.items():
            self.events.publish(topic, bool(getattr(self.faults, fault)), now)

    def position(self) -> Position:
        self.ptz.advance(self.now_s())
        return self.ptz.position

    def set_preset(self, name: str | None, token: str | None) -> Preset:
        """Store the current position; an existing token is overwritten. Raises KeyError for an
        unknown token, OverflowError when the presets are full."""
        if token is not None and token not in self.presets:
            raise KeyError(token)
        if token is None:
            if len(self.presets) >= MAX_PRESETS:
                raise OverflowError("preset memory full")
            token = f"preset-{self._next_preset}"
            self._next_preset += 1
        preset = Preset(token, name or token, self.position())
        self.presets[token] = preset
        return preset
