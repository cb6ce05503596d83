"""Adaptive signal timing core: pure NumPy over all intersections at once.

Arrays and a frozen `Params` in, arrays and the next `State` out; no I/O, no logging, no
imports beyond NumPy and the standard library's dataclasses/enum/typing.

    structure = build_structure([IntersectionSpec(...), ...])
    state = initial_state(structure)
    plan, state = plan_step(structure, measurements, state, Params())      # once per cycle
    decision, state = pressure_step(structure, measurements, state, Params())  # per decision
"""

from controlroom.timing.measure import DetectorSource, Measurements, clean_detectors
from controlroom.timing.params import Params
from controlroom.timing.plan import PlanOutput, plan_step
from controlroom.timing.pressure import PhaseDecision, pressure_step
from controlroom.timing.state import State, initial_state
from controlroom.timing.structure import (
    DetectorSpec,
    IntersectionSpec,
    MovementSpec,
    PhaseSpec,
    Structure,
    build_structure,
)

__all__ = [
    "DetectorSource", "DetectorSpec", "IntersectionSpec", "Measurements", "MovementSpec",
    "Params", "PhaseDecision", "PhaseSpec", "PlanOutput", "State", "Structure",
    "build_structure", "clean_detectors", "initial_state", "plan_step", "pressure_step",
]
