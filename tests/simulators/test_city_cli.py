"""`kota sim city` end to end: the demo city generated and run fast, its outputs usable."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import pytest

from kota.settings import Settings
from kota.sim import add_sim_parser, edge_watchdog_s


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_sim_parser(parser.add_subparsers())
    args = parser.parse_args(["sim", "city", *argv])
    return args.func(args)


def test_generated_city_runs_and_writes_layout_edge_config_and_metrics(
        sumo_ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    city = tmp_path / "city"
    rc = _run(["--generate", str(city), "--hours", "0.5", "--fast", "--duration", "300",
               "--seed", "2", "--metrics", str(tmp_path / "m.json"), "--base-port", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert (city / "city.sumocfg").exists()
    layout = json.loads((city / "layout.json").read_text("utf-8"))
    assert [x["id"] for x in layout["intersections"]] == [f"J{k}" for k in range(1, 7)]
    settings = Settings.model_validate(tomllib.loads((city / "edge.toml").read_text("utf-8")))
    ports = {c.intersection_id: c.port for c in settings.edge.controllers}
    assert sorted(ports) == [f"J{k}" for k in range(1, 7)]
    for j, port in ports.items():
        assert f"{j} (Simpang" in out and f"127.0.0.1:{port} unit 1" in out
    metrics = json.loads((tmp_path / "m.json").read_text("utf-8"))
    assert metrics["end_s"] == 6 * 3600 + 300 and metrics["vehicles"] > 0
    assert "average delay" in out


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["--generate", str(tmp_path), "--time-scale", "0"]) == 2
    assert _run(["--sumocfg", str(tmp_path / "missing.sumocfg")]) == 2
    assert "no such .sumocfg" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run(["--generate", str(tmp_path), "--sumocfg", "x.sumocfg"])


def test_edge_watchdog_outlasts_scaled_polls() -> None:
    assert edge_watchdog_s(1.0) == 30.0
    assert edge_watchdog_s(None) == 30.0
    assert edge_watchdog_s(50.0) == 150.0
    assert edge_watchdog_s(1000.0) == 600.0


def test_json_output_for_an_orchestrator(sumo_ready: None, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(["--generate", str(tmp_path / "c"), "--hours", "0.2", "--fast", "--duration", "60",
               "--json", "--base-port", "0", "--layout", str(tmp_path / "l.json"),
               "--edge-config", str(tmp_path / "e.toml")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    ready, stopped = (json.loads(line) for line in out.strip().splitlines())
    assert ready["event"] == "ready" and ready["layout"] == str(tmp_path / "l.json")
    assert [c["intersection_id"] for c in ready["controllers"]] == [f"J{k}" for k in range(1, 7)]
    assert all(c["port"] > 1024 for c in ready["controllers"])
    assert stopped["event"] == "stopped" and stopped["steps"] == 60
    assert "avg_delay_s" in stopped
