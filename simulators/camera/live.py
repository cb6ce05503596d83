"""The approach scene as a live camera's world: ``LiveScene.frame(t_s)`` at Unix time ``t_s``.

Owns the mapping from wall time to scene time (monotonic, a long gap caught up only in part)
and the light by the clock (day or night by the WIB hour) or fixed. The shape is that of
``firmware_sim.onvif.view.WorldSource``, met structurally: simulators do not import firmware.
Traffic and picture stay in ``scene``.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Literal

import numpy as np

from simulators.camera.scene import (
    SIM_DT_S,
    Condition,
    Scene,
    SceneConfig,
    Truth,
    Zone,
    approach_zones,
)

LiveCondition = Literal["auto", "day", "night", "noisy"]
LIVE_CONDITIONS: tuple[LiveCondition, ...] = ("auto", "day", "night", "noisy")
WIB_OFFSET_S = 7 * 3600  # the street's local time is Western Indonesia Time (no DST)
DAY_HOURS = (6.0, 18.0)  # near the equator the sun rises about 06:00 and sets about 18:00
MAX_CATCH_UP_S = 5.0  # a longer gap (a frozen or covered camera, a paused process) skips time


def condition_at(t_s: float) -> Condition:
    """Day or night at Unix time ``t_s`` by the WIB hour."""
    hour = ((t_s + WIB_OFFSET_S) % 86400) / 3600.0
    return "day" if DAY_HOURS[0] <= hour < DAY_HOURS[1] else "night"


class LiveScene:
    """``frame(t_s)`` → the approach scene's BGR picture (360×640×3 uint8) in real time.

    Scene time starts at 0 with the first frame and then follows ``t_s``: never backwards (a
    clock set back holds the picture), at most ``max_catch_up_s`` per call (the traffic after
    a long gap is plausible, not replayed). One picture per simulation step (10 per second):
    asked again within a step, the same picture comes back. With ``condition="auto"`` the
    light follows the WIB hour; at dusk and dawn the road is built anew in the other light (a
    camera switching to night mode), its traffic restarting populated. Thread-safe.
    """

    def __init__(self, config: SceneConfig | None = None, condition: LiveCondition = "auto",
                 max_catch_up_s: float = MAX_CATCH_UP_S) -> None:
        if condition not in LIVE_CONDITIONS:
            raise ValueError(f"condition {condition!r}; known: {', '.join(LIVE_CONDITIONS)}")
        if max_catch_up_s <= 0:
            raise ValueError("max_catch_up_s must be positive")
        self.config = config or SceneConfig()
        self.mode = condition
        self.max_catch_up_s = max_catch_up_s
        self._lock = threading.Lock()
        self._scene: Scene | None = None
        self._scene_t = 0.0
        self._last_t_s: float | None = None
        self._picture: tuple[int, np.ndarray, Truth] | None = None

    @property
    def zones(self) -> tuple[Zone, ...]:
        """The detection zones in frame pixels (the home view's, at 640×360)."""
        c = self.config
        return c.zones if c.zones is not None else approach_zones(c.lanes, c.queue_depth)

    @property
    def truth(self) -> Truth | None:
        """What the last picture showed, per zone (None before the first)."""
        return self._picture[2] if self._picture is not None else None

    @property
    def scene_t_s(self) -> float:
        return self._scene_t

    def condition(self, t_s: float) -> Condition:
        return condition_at(t_s) if self.mode == "auto" else self.mode

    def frame(self, t_s: float) -> np.ndarray:
        with self._lock:
            condition = self.condition(t_s)
            if self._scene is None or self._scene.config.condition != condition:
                self._scene = Scene(replace(self.config, condition=condition))
                self._scene_t, self._picture = 0.0, None
            elif self._last_t_s is not None:
                self._scene_t += min(max(0.0, t_s - self._last_t_s), self.max_catch_up_s)
            self._last_t_s = t_s
            step = int(self._scene_t / SIM_DT_S + 0.5)  # the scene's step for that time
            if self._picture is not None and self._picture[0] == step:
                return self._picture[1]
            picture, truth = self._scene.frame(self._scene_t)
            self._picture = (step, picture, truth)
            return picture
