"""The controllers the benchmark can name, and the one way to build them.

Owns the name → controller table; it must not run anything.
"""

from __future__ import annotations

from simulators.traffic.controllers import BASELINES, Controller
from simulators.traffic.errors import ControllerError

CONTROLLER_NAMES: tuple[str, ...] = ("fixed", "actuated", "maxpressure", "kota")


def make_controller(name: str) -> Controller:
    """A fresh controller (one per run: controllers keep per-run state)."""
    if name in BASELINES:
        return BASELINES[name]()
    if name == "kota":
        from simulators.traffic.kota_controller import KotaController

        return KotaController()
    raise ControllerError(f"unknown controller {name!r}; choose from {', '.join(CONTROLLER_NAMES)}")
