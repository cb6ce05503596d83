"""The emulated machine's clock: naive local wall time that is off by an offset and drifts.

It owns only the mapping from real time (a ``time_source`` in Unix seconds, injectable for
tests) to what the machine believes is local time; it must not sleep or know about sockets.
A real terminal keeps no zone: it shows the time it was set to and drifts from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

SECONDS_PER_DAY = 86400.0


class MachineClock:
    """Local time = (real UTC + zone) + offset + drift × real seconds since the last setting."""

    def __init__(self, *, utc_offset_h: float = 7.0, offset_s: float = 0.0,
                 drift_s_per_day: float = 0.0,
                 time_source: Callable[[], float] = time.time) -> None:
        self._zone = timezone(timedelta(hours=utc_offset_h))
        self._source = time_source
        self.drift_s_per_day = drift_s_per_day
        self._offset_s = offset_s
        self._set_at = time_source()

    def _true_local(self, real: float) -> datetime:
        return datetime.fromtimestamp(real, self._zone).replace(tzinfo=None)

    def error_s(self) -> float:
        """How far the machine clock is ahead (+) of true local time now, in seconds."""
        real = self._source()
        return self._offset_s + self.drift_s_per_day * (real - self._set_at) / SECONDS_PER_DAY

    def now(self) -> datetime:
        """The machine's local time, whole seconds (what it stamps a punch with)."""
        real = self._source()
        shown = self._true_local(real) + timedelta(seconds=self.error_s())
        return shown.replace(microsecond=0)

    def set(self, when: datetime) -> None:
        """Set the clock (CMD_SET_TIME): from now on it shows ``when`` and drifts from there."""
        real = self._source()
        self._set_at = real
        self._offset_s = (when - self._true_local(real)).total_seconds()

    def skew(self, seconds: float) -> None:
        """Put the clock ``seconds`` further ahead (a fault for clock-sync tests)."""
        self._offset_s += seconds
