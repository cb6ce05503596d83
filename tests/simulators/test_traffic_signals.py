"""Safety of the phase driver under a random controller, seen by an independent lamp observer.

The observer records the red/yellow/green string SUMO shows every second and checks, from
the lamps alone: between two different greens a yellow of the full yellow time, then an
all-red of the full all-red time; every green held at least the minimum green; nothing but a
known green, its yellow or the all-red ever shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.traffic.controllers import (
    ACTUATED_PROGRAM_ID,
    ActuatedController,
    FixedController,
    RandomController,
)
from simulators.traffic.runner import run_scenario
from simulators.traffic.scenario import Scenario
from simulators.traffic.signals import all_red_state, yellow_state


def test_transition_strings() -> None:
    assert yellow_state("GGrr", "rrGG") == "yyrr"
    assert all_red_state("GGrr", "rrGG") == "rrrr"
    # A link green in both phases stays green through the change (a permanent right turn).
    assert yellow_state("GgGrr", "GrrGG") == "Gyyrr"
    assert all_red_state("GgGrr", "GrrGG") == "Grrrr"


def _runs(states: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for s in states:
        if out and out[-1][0] == s:
            out[-1] = (s, out[-1][1] + 1)
        else:
            out.append((s, 1))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_random_controller_never_skips_clearance_or_cuts_min_green(
        single_intersection: Path, tmp_path: Path, seed: int) -> None:
    controller = RandomController(seed=seed)
    times = controller.times
    shown: list[str] = []
    run_scenario(Scenario.from_sumocfg(single_intersection), controller, seed=seed, end_s=600,
                 tripinfo=tmp_path / "t.xml",
                 step_hook=lambda api, t: shown.append(api.trafficlight.getRedYellowGreenState("t")))
    runs = _runs(shown)
    greens = {"GGrr", "rrGG"}
    assert {s for s, _ in runs} <= greens | {"yyrr", "rryy", "rrrr"}
    changes = 0
    # The first run started before the hook saw it; the last one is cut by the end.
    for k in range(1, len(runs) - 1):
        state, seconds = runs[k]
        if state in greens:
            assert seconds >= times.min_green_s, f"green {state} held {seconds} s"
        elif "y" in state:
            changes += 1
            assert seconds == times.yellow_s
            assert runs[k - 1][0] in greens and runs[k + 1][0] == "rrrr"
        else:
            assert seconds == times.all_red_s
            assert "y" in runs[k - 1][0] and runs[k + 1][0] in greens
            if k >= 2:
                assert runs[k + 1][0] != runs[k - 2][0], "a change leads to another green"
    assert changes >= 10, "the random controller should have changed phase often"


@pytest.mark.parametrize(("controller", "program"), [(FixedController(), "0"),
                                                     (ActuatedController(), ACTUATED_PROGRAM_ID)])
def test_native_controllers_run_their_program(single_intersection: Path, tmp_path: Path,
                                              controller, program: str) -> None:
    seen: set[str] = set()
    run_scenario(Scenario.from_sumocfg(single_intersection), controller, seed=1, end_s=60,
                 tripinfo=tmp_path / "t.xml",
                 step_hook=lambda api, t: seen.add(api.trafficlight.getProgram("t")))
    assert seen == {program}
