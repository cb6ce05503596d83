"""The emulated controller's clock: integer deciseconds since start, real, scaled or manual.

It owns only the mapping between emulated time and the world's time (monotonic real time for
pacing, wall time for the time of day the traffic generator follows). It must not sleep, run
tasks or know about Modbus: the server and the host pace their ticks with ``real_s``.
"""

from __future__ import annotations

import time
from typing import Protocol

DS_PER_S = 10


class Clock(Protocol):
    """What the emulator needs from a clock."""

    @property
    def time_scale(self) -> float:
        """Emulated seconds per real second (1 for real time; 0 for a manual clock)."""
        ...

    def now_ds(self) -> int:
        """Emulated deciseconds since the clock started; never goes backwards."""
        ...

    def real_s(self, ds: float) -> float:
        """Real seconds that ``ds`` emulated deciseconds take (for pacing a tick)."""
        ...

    def wall_s(self, now_ds: int) -> float:
        """Unix time (UTC seconds) at emulated instant ``now_ds``, for the time of day."""
        ...


class RealClock:
    """Monotonic real time, optionally sped up: ``time_scale=50`` runs 50 emulated s per real s.

    Wall time starts at ``start_wall_s`` (default: now) and runs at the same speed, so a
    scaled emulator crosses the morning peak in minutes.
    """

    def __init__(self, time_scale: float = 1.0, *, start_wall_s: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self._scale = float(time_scale)
        self._t0 = time.monotonic()
        self._wall0 = time.time() if start_wall_s is None else start_wall_s

    @property
    def time_scale(self) -> float:
        return self._scale

    def now_ds(self) -> int:
        return int((time.monotonic() - self._t0) * self._scale * DS_PER_S)

    def real_s(self, ds: float) -> float:
        return ds / DS_PER_S / self._scale

    def wall_s(self, now_ds: int) -> float:
        return self._wall0 + now_ds / DS_PER_S


class ManualClock:
    """Time moves only when a test says so (``advance``, ``set``): fully deterministic runs."""

    def __init__(self, start_ds: int = 0, *, start_wall_s: float = 0.0) -> None:
        if start_ds < 0:
            raise ValueError("start_ds must not be negative")
        self._now_ds = start_ds
        self._wall0 = start_wall_s

    @property
    def time_scale(self) -> float:
        return 0.0

    def now_ds(self) -> int:
        return self._now_ds

    def advance(self, ds: int) -> int:
        """Move time forward by ``ds``; returns the new now."""
        if ds < 0:
            raise ValueError("a clock does not go backwards")
        self._now_ds += ds
        return self._now_ds

    def set(self, now_ds: int) -> None:
        if now_ds < self._now_ds:
            raise ValueError(f"a clock does not go backwards ({now_ds} < {self._now_ds})")
        self._now_ds = now_ds

    def real_s(self, ds: float) -> float:
        # Ticks still run (at 10 Hz real) so a test may advance the clock between them.
        return ds / DS_PER_S

    def wall_s(self, now_ds: int) -> float:
        return self._wall0 + now_ds / DS_PER_S
