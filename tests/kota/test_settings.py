"""The settings tree: the example file, environment overrides, and errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kota.cli import main
from kota.settings import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "kota" / "kota.example.toml"


def test_example_config_is_valid_and_complete() -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert settings.site.timezone == "Asia/Jakarta"
    assert [s.intersection_id for s in settings.edge.simulated] == ["simpang-tugu", "simpang-pasar"]
    assert settings.controlroom.mqtt.port == 11883


def test_the_examples_commented_device_sections_are_valid_when_uncommented(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    out, on = [], False
    for line in lines:  # uncomment the [[edge.controllers]] and [[edge.attendance]] blocks
        if line.startswith("# [[edge."):
            on = True
        elif on and not line.startswith("# "):
            on = False
        out.append(line[2:] if on else line)
    path = tmp_path / "kota.toml"
    path.write_text("\n".join(out), encoding="utf-8")
    settings = load_settings(path, environ={})
    [machine] = settings.edge.attendance
    assert (machine.device_sn, machine.tz, machine.clear_when_stored) == (
        "CKJX201960001", "Asia/Makassar", False)
    assert [c.intersection_id for c in settings.edge.controllers] == ["simpang-tugu-muda"]
    [camera] = settings.edge.cameras
    assert (camera.camera_id, camera.zones[0].detector, camera.queues) == (
        "cam-tugu-utara", 3, [["z-l1", "z-l1-q1", "z-l1-q2"]])


def test_environment_overrides_file(tmp_path: Path) -> None:
    settings = load_settings(EXAMPLE, environ={
        "KOTA_DATABASE__URL": "postgresql://kota@db/kota",
        "KOTA_CONTROLROOM__MQTT__URL": "mqtts://broker:8883",
        "KOTA_CONTROLROOM__INGEST__BATCH_MAX": "100",
        "KOTA_EDGE__SIMULATED": '[{"intersection_id": "s9"}]',
        "UNRELATED": "x",
    })
    assert settings.database.url == "postgresql://kota@db/kota"
    assert settings.controlroom.mqtt.tls and settings.controlroom.mqtt.port == 8883
    assert settings.controlroom.ingest.batch_max == 100
    assert [s.intersection_id for s in settings.edge.simulated] == ["s9"]


@pytest.mark.parametrize(
    ("toml", "path", "reason"),
    [
        ("[edge]\nedge_idd = 'x'\n", "edge.edge_idd", "unknown key"),
        ("[controlroom.mqtt]\nurl = 'http://x'\n", "controlroom.mqtt.url", "mqtt://"),
        ("[broker]\nport = 70000\n", "broker.port", "less than or equal"),
        ("[site]\ntimezone = 'Mars/Olympus'\n", "site.timezone", "unknown time zone"),
        ("[[edge.simulated]]\nintersection_id='a'\n[[edge.simulated]]\nintersection_id='a'\n",
         "edge", "repeated: a"),
        ("[edge]\nsimulated = [{intersection_id = 'a/b'}]\n", "edge.simulated.0.intersection_id", "pattern"),
        ("nonsense = 1\n", "nonsense", "unknown key"),
        ("[database\n", "(file)", "not valid TOML"),
    ],
)
def test_bad_config_names_key_path_and_reason(tmp_path: Path, toml: str, path: str, reason: str) -> None:
    file = tmp_path / "kota.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(file, environ={})
    assert any(p == path and reason in r for p, r in caught.value.problems), caught.value.problems


def test_bad_environment_override_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"KOTA_EDGE__POLL_INTERVAL_S": "fast"})
    assert caught.value.problems[0][0] == "edge.poll_interval_s"


def test_config_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(EXAMPLE.read_text())
    assert main(["config", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[controlroom]\nhttp_port = 'eighty'\nfoo = 1\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "controlroom.http_port:" in err and "controlroom.foo: unknown key" in err


def test_config_check_also_checks_the_city_layout(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from tests.controlroom.test_traffic_layout import city

    layout = tmp_path / "city.json"
    doc = city()
    layout.write_text(json.dumps(doc))
    config = tmp_path / "kota.toml"
    config.write_text(f"[controlroom.traffic]\nlayout = '{layout}'\n")
    assert main(["config", "check", str(config)]) == 0
    assert "city layout" in capsys.readouterr().out
    doc["intersections"][0]["phases"] = []
    layout.write_text(json.dumps(doc))
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "INVALID city layout" in err and doc["intersections"][0]["id"] in err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["demo", "--help"], ["db", "--help"], ["db", "migrate", "--help"],
                 ["bench", "ingest", "--help"], ["config", "check", "--help"], ["edge", "run", "--help"],
                 ["controlroom", "run", "--help"], ["broker", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
        assert "usage: kota" in capsys.readouterr().out


def test_controlroom_run_refuses_a_bad_layout_cleanly(tmp_path: Path, pg_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "city.json"
    layout.write_text('{"city": "Uji", "intersections": [{"id": "J1", "phases": '
                      '[{"movements": [0, 7]}], "movements": [{"width_m": 3.2}], '
                      '"detectors": [{"movement": 0}]}]}')
    from psycopg.conninfo import conninfo_to_dict

    db = conninfo_to_dict(pg_url)
    url = (f"postgresql://{db.get('user', 'postgres')}@{db.get('host', '127.0.0.1')}:"
           f"{db.get('port', 5432)}/{db['dbname']}")
    config = tmp_path / "kota.toml"
    config.write_text(f'[database]\nurl = "{url}"\n\n[controlroom]\nhttp_port = 0\n\n'
                      f'[controlroom.traffic]\nlayout = "{layout}"\n')
    assert main(["--config", str(config), "controlroom", "run"]) == 2
    err = capsys.readouterr().err
    assert "city layout is not valid" in err and "J1" in err and "movement 7" in err
    assert "Traceback" not in err
