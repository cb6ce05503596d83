"""The traffic world's error tree: every failure a caller can act on, raised with its cause.

Owns only the exception types; it must not log or decide anything.
"""

from __future__ import annotations


class TrafficSimError(Exception):
    """Base of every error the SUMO traffic world raises."""


class SumoNotInstalledError(TrafficSimError):
    """Eclipse SUMO (the `eclipse-sumo` wheel, or SUMO_HOME with bin/sumo) is not available."""


class ScenarioError(TrafficSimError):
    """The .sumocfg, its network or its route files cannot be read or make no sense."""


class ControllerError(TrafficSimError):
    """A controller name is unknown, or a controller gave an unusable decision."""
