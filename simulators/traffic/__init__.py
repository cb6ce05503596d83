"""The SUMO traffic world: run any .sumocfg, detect as a city would, drive signals safely.

Owns running Eclipse SUMO for the benchmark and the controllers adapted to it. It may use the
pure timing core (controlroom.timing) and nothing else of the control room, the edge or the CLI.
"""

from simulators.traffic.controllers import BASELINES, Controller, Observation, SignalStatus
from simulators.traffic.detectors import DetectorReport
from simulators.traffic.discovery import GreenPhase, Link, TrafficLight, discover
from simulators.traffic.errors import (
    ControllerError,
    ScenarioError,
    SumoNotInstalledError,
    TrafficSimError,
)
from simulators.traffic.metrics import TripMetrics, trip_metrics
from simulators.traffic.runner import RunResult, run_scenario
from simulators.traffic.scenario import Scenario
from simulators.traffic.signals import KEEP, PhaseDriver, TransitionTimes

__all__ = [
    "BASELINES", "KEEP", "Controller", "ControllerError", "DetectorReport", "GreenPhase", "Link",
    "Observation", "PhaseDriver", "RunResult", "Scenario", "ScenarioError", "SignalStatus",
    "SumoNotInstalledError", "TrafficLight", "TrafficSimError", "TransitionTimes", "TripMetrics",
    "discover", "run_scenario", "trip_metrics",
]
