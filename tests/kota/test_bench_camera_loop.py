"""`kota bench camera-loop`: kota on camera zones alone keeps an intersection moving."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kota.bench_camera_loop import add_parser, bench_camera_loop, run_once
from tests.simulators.conftest import sumo_rl_nets


@pytest.fixture()
def single_intersection(sumo_ready: None) -> Path:
    cfg = sumo_rl_nets() / "single-intersection" / "single-intersection.sumocfg"
    if not cfg.exists():
        pytest.skip(f"{cfg} is missing")
    return cfg


@pytest.fixture()
def sumo_ready() -> None:
    pytest.importorskip("libsumo")


def test_camera_only_intersection_keeps_traffic_moving(single_intersection: Path,
                                                       tmp_path: Path) -> None:
    run = run_once(str(single_intersection), seed=1, end_s=300.0, camera=True,
                   intersection=None, fps=5.0, condition="day", tripinfo=tmp_path / "t.xml")
    cam = run["camera"]
    # 5 fps over 300 s from two cameras: its four incoming lanes, and its four exits.
    assert cam["intersection"] == "t" and cam["cameras"] == 2 and cam["exits"] == "camera"
    assert cam["frames"] == 3000
    # Vehicles keep arriving: the camera-fed controller serves every approach.
    assert run["arrived"] > 150 and run["never_inserted"] == 0
    assert 0 < run["avg_delay_s"] < 40
    assert 90.0 <= cam["count_agreement_pct"] <= 110.0
    assert cam["lane_count_error_pct"] <= 15.0
    assert all(loops > 10 and abs(c - loops) <= max(3, 0.15 * loops)
               for loops, c in cam["per_lane"].values())
    # Vehicles in the zones, as SUMO's own camera zones see them, to within a car on average.
    assert cam["zone_veh_mean_abs_error"] < 1.0 and cam["exit_veh_mean_abs_error"] < 1.0


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = argparse.ArgumentParser().add_subparsers()
    parser = add_parser(sub)
    args = parser.parse_args(["--sumocfg", str(tmp_path / "missing.sumocfg")])
    assert bench_camera_loop(args) == 2
    assert "no such .sumocfg" in capsys.readouterr().err
    args = parser.parse_args(["--sumocfg", "x", "--seeds", "0"])
    assert bench_camera_loop(args) == 2


def test_unknown_intersection_is_named(single_intersection: Path, tmp_path: Path) -> None:
    from simulators.traffic.errors import ControllerError

    with pytest.raises(ControllerError, match="no controllable traffic light 'nope'.*has t"):
        run_once(str(single_intersection), seed=1, end_s=10.0, camera=True,
                 intersection="nope", fps=5.0, condition="day", tripinfo=tmp_path / "t.xml")


def test_it_is_a_kota_bench_command() -> None:
    from kota.cli import build_parser

    args = build_parser().parse_args(["bench", "camera-loop", "--sumocfg", "x.sumocfg",
                                      "--seeds", "2"])
    assert args.func is bench_camera_loop and args.seeds == 2
