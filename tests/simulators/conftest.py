"""Fixtures for the SUMO traffic world: sumo-rl's single-intersection network, run briefly.

SUMO comes from the eclipse-sumo/libsumo wheels and the networks from the sumo-rl wheel (used
in place, never copied). Without them these tests skip with the reason; on CI (`CI` set)
they fail instead, because CI must run them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ON_CI = bool(os.environ.get("CI"))


def _require(what: str, why: str) -> None:
    if ON_CI:
        pytest.fail(f"CI must have {what} installed: {why}")
    pytest.skip(f"{what} not installed ({why}); pip install 'eclipse-sumo==1.28.*' "
                "'libsumo==1.28.*' sumo-rl")


def sumo_rl_nets() -> Path:
    spec = importlib.util.find_spec("sumo_rl")  # not imported: it insists on SUMO_HOME
    if spec is None or not spec.submodule_search_locations:
        _require("sumo-rl", "it ships the development networks")
    return Path(next(iter(spec.submodule_search_locations))) / "nets"


@pytest.fixture(scope="session")
def sumo_ready() -> None:
    for module in ("libsumo", "sumo"):
        if importlib.util.find_spec(module) is None:
            _require(module, "the traffic world runs Eclipse SUMO")


@pytest.fixture(scope="session")
def single_intersection(sumo_ready: None) -> Path:
    cfg = sumo_rl_nets() / "single-intersection" / "single-intersection.sumocfg"
    if not cfg.exists():
        _require("sumo-rl with its nets/ folder", f"{cfg} is missing")
    return cfg
