"""`kota bench control --json` end to end on a short run of every controller."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from kota.bench_control import add_parser


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["control", *argv])
    return args.func(args)


def test_all_controllers_short_run_json(single_intersection: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = _run(["--sumocfg", str(single_intersection), "--controller", "all", "--seeds", "1",
               "--end", "150", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert set(result["controllers"]) == {"fixed", "actuated", "maxpressure", "kota"}
    assert result["end_s"] == 150 and result["failed"] == []
    vehicles = set()
    for name, s in result["controllers"].items():
        assert (out / f"{name}-seed1.tripinfo.xml").exists()
        delay = s["figures"]["avg_delay_s"]["mean"]
        assert 0 <= delay < 150
        vehicles.add(s["vehicles"][0])
    assert len(vehicles) == 1, "same scenario and seed: the same vehicles under every controller"
    assert "controller" in captured.out and "delay" in captured.out  # the table


def test_bad_scenario_exits_2(sumo_ready: None, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(["--sumocfg", str(tmp_path / "nope.sumocfg"), "--out", str(tmp_path)])
    assert rc == 2
    assert "no such .sumocfg" in capsys.readouterr().err


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _run(["--help"])
    text = capsys.readouterr().out
    for opt in ("--sumocfg", "--controller", "--seeds", "--out", "--end", "--json", "RESCO"):
        assert opt in text
