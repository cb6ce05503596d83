"""Is the control room alive? The rule that decides whether controller watchdogs are fed.

Alive means all of: the broker link is up; the control room's state seen on *this* broker
connection says ``online`` (it is retained, so every (re)subscription delivers it at once, and
the control room's will turns it ``offline`` when it dies); and the control room was heard — a
``controlroom/state`` message or a command for this edge — within ``window_s``. The last clause
catches a control room whose process hangs while its MQTT keep-alive still runs: it must
re-publish its (retained) online state more often than the window. It must not do I/O; the
``WatchedLink`` below only feeds it from the MQTT link.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge.contract import (
    ContractError,
    ControlRoomState,
    DeviceInfo,
    controlroom_state_topic,
    decode,
)
from edge.link import EdgeLink


@dataclass(frozen=True, slots=True)
class Liveness:
    alive: bool
    reason: str  # why (for logs and `kota edge status`)


class ControlRoomLiveness:
    """What was last heard of the control room, and the verdict for any moment."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._online = False
        self._conn: int | None = None  # broker connection the state was received on
        self._heard_at: float | None = None

    def state(self, online: bool, conn: int) -> None:
        """A ``controlroom/state`` message arrived on broker connection ``conn``."""
        with self._lock:
            self._online, self._conn, self._heard_at = online, conn, self._clock()

    def heard(self) -> None:
        """A command from the control room arrived (it is alive enough to send one)."""
        with self._lock:
            self._heard_at = self._clock()

    def verdict(self, connected: bool, conn: int) -> Liveness:
        with self._lock:
            if not connected:
                return Liveness(False, "broker link down")
            if self._conn != conn:
                return Liveness(False, "no control-room state on this broker connection yet")
            if not self._online:
                return Liveness(False, "control room offline")
            assert self._heard_at is not None
            age = self._clock() - self._heard_at
            if age > self.window_s:
                return Liveness(False, f"control room silent for {age:.0f} s "
                                f"(liveness window {self.window_s:g} s)")
            return Liveness(True, "control room online")


class WatchedLink(EdgeLink):
    """The agent's MQTT link, also telling ``liveness`` about every control-room state message,
    and able to re-announce the inventory once controllers have told who they are.

    Both belong in ``EdgeLink`` itself; they live here as small overrides so that the link
    module keeps one owner.
    """

    def __init__(self, *args: object, liveness: ControlRoomLiveness, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.liveness = liveness

    def _controlroom_state(self, payload: bytes, retained: bool) -> None:
        super()._controlroom_state(payload, retained)
        try:
            state = decode(controlroom_state_topic(), payload).payload
        except ContractError:
            return  # the base class has logged it
        assert isinstance(state, ControlRoomState)
        self.liveness.state(state.status == "online", self.conn)

    def update_inventory(self, inventory: Sequence[DeviceInfo]) -> None:
        """Replace the inventory and, if connected, publish a new birth that carries it."""
        inventory = tuple(inventory)
        if inventory == self._inventory:
            return
        self._inventory = inventory
        if self.connected:
            self._publish_birth(self._client, self.conn)
