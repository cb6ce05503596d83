"""`kota device onvif …` in-process against the camera emulator on loopback: every command's
JSON, the text a technician reads, and the exit codes (0 done, 1 unreachable, 2 usage,
4 refused)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from firmware_sim.onvif.camera import PtzHead
from firmware_sim.onvif.server import CameraEmulator
from kota.cli import main

PASSWORD = "kamera123"


@pytest.fixture(scope="module")
def emulator() -> Iterator[CameraEmulator]:
    with CameraEmulator(password=PASSWORD, discovery_port=0) as emu:
        yield emu


@pytest.fixture
def camera(emulator: CameraEmulator) -> Iterator[CameraEmulator]:
    emulator.set_faults(offline=False, skew_s=0.0)
    with emulator.camera.lock:
        emulator.camera.ptz = PtzHead(updated_s=emulator.camera.now_s())
        emulator.camera.presets.clear()
    yield emulator
    emulator.set_faults(offline=False, skew_s=0.0)


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main(["--log-level", "WARNING", "device", "onvif", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def cam(capsys: pytest.CaptureFixture[str], camera: CameraEmulator, *argv: object,
        password: str = PASSWORD) -> tuple[int, Any, str]:
    """A command against the emulator with --json; (exit code, parsed JSON, stderr)."""
    code, out, err = run(capsys, *argv, "--port", camera.port, "--password", password, "--json")
    return code, json.loads(out.strip().splitlines()[-1]), err


def test_discover(camera: CameraEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        code, out, err = run(capsys, "discover", f"127.0.0.1:{camera.discovery_port}",
                             f"127.0.0.1:{silent.getsockname()[1]}", "--timeout", "0.3", "--json")
    assert code == 0
    (found,) = json.loads(out)
    assert found["xaddrs"] == [camera.device_url]
    assert found["name"] == "KP-PTZ-2MP" and found["city"] == "Kota Pintar"
    assert "NetworkVideoTransmitter" in found["types"]
    code, out, err = run(capsys, "discover", f"localhost:{camera.discovery_port}")
    assert code == 0 and camera.device_url in out and "1 camera(s) answered" in err
    assert run(capsys, "discover", "127.0.0.1:99999")[0] == 2


def test_info_and_profiles(camera: CameraEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, info, _ = cam(capsys, camera, "info")
    assert code == 0
    assert (info["model"], info["serial"], info["has_ptz"]) == ("KP-PTZ-2MP", "KPCAM0001", True)
    assert [p["token"] for p in info["profiles"]] == ["Profile_Main", "Profile_Sub",
                                                      "Profile_JPEG"]
    code, out, _ = run(capsys, "info", "--port", camera.port, "--password", PASSWORD)
    assert code == 0 and "s/n KPCAM0001" in out and "right (within a second)" in out
    code, profiles, _ = cam(capsys, camera, "profiles")
    assert code == 0
    assert profiles[0]["stream_uri"] == f"rtsp://127.0.0.1:{camera.port}/Streaming/Channels/101"
    assert profiles[2]["snapshot_uri"].endswith("/snapshot.jpg?profile=Profile_JPEG")


def test_snapshot_to_a_file(camera: CameraEmulator, capsys: pytest.CaptureFixture[str],
                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOTA_ONVIF_PASSWORD", PASSWORD)  # the password from the environment
    out_file = tmp_path / "simpang.jpg"
    code, out, _ = run(capsys, "snapshot", "--port", camera.port, "--out", out_file,
                       "--profile", "Profile_Sub")
    assert code == 0 and "saved" in out
    image = cv2.imdecode(np.frombuffer(out_file.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)


def test_time_warns_about_a_skewed_clock(camera: CameraEmulator,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    camera.set_faults(skew_s=60.0)
    code, clock, _ = cam(capsys, camera, "time")
    assert code == 0 and clock["ok"] is False
    assert clock["clock_offset_s"] == pytest.approx(60, abs=1.5)
    code, out, err = run(capsys, "time", "--port", camera.port, "--password", PASSWORD)
    assert code == 0 and "fast" in out and "warning" in err and "NTP" in err


def test_ptz_moves_and_presets(camera: CameraEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, moved, _ = cam(capsys, camera, "ptz", "absolute", "--pan", "0.5", "--zoom", "0.25")
    assert code == 0 and moved["profile"] == "Profile_Main"
    assert (moved["status"]["pan"], moved["status"]["tilt"], moved["status"]["zoom"]) == (
        pytest.approx(0.5), 0.0, pytest.approx(0.25))
    code, moved, _ = cam(capsys, camera, "ptz", "relative", "--tilt", "-0.5")
    assert moved["status"]["tilt"] == pytest.approx(-0.5) and not moved["status"]["moving"]
    code, moved, _ = cam(capsys, camera, "ptz", "move", "--pan", "-1", "--duration", "0.2")
    assert code == 0 and moved["status"]["pan"] == pytest.approx(0.4, abs=0.03)
    assert not moved["status"]["moving"]
    code, status, _ = cam(capsys, camera, "ptz", "status")
    assert code == 0 and status["status"]["pan"] == moved["status"]["pan"]
    assert cam(capsys, camera, "ptz", "stop")[0] == 0

    code, saved, _ = cam(capsys, camera, "ptz", "preset-set", "Simpang utara")
    token = saved["token"]
    code, listed, _ = cam(capsys, camera, "ptz", "presets")
    assert [(p["token"], p["name"]) for p in listed["presets"]] == [(token, "Simpang utara")]
    cam(capsys, camera, "ptz", "absolute", "--pan", "0", "--tilt", "0", "--zoom", "0")
    code, went, _ = cam(capsys, camera, "ptz", "preset-goto", token)
    assert code == 0 and went["status"]["tilt"] == pytest.approx(-0.5)
    assert cam(capsys, camera, "ptz", "preset-remove", token)[0] == 0
    code, refused, _ = cam(capsys, camera, "ptz", "preset-goto", token)
    assert code == 4 and refused["kind"] == "RefusedError" and "NoToken" in refused["error"]
    code, out, _ = run(capsys, "ptz", "presets", "--port", camera.port, "--password", PASSWORD)
    assert code == 0 and "0 presets" in out


def test_exit_codes(camera: CameraEmulator, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    code, error, _ = cam(capsys, camera, "info", password="salah")
    assert code == 4 and error["kind"] == "AuthError" and "password" in error["error"]
    code, error, _ = cam(capsys, camera, "ptz", "absolute", "--pan", "3")
    assert code == 2 and "outside -1..1" in error["error"]
    monkeypatch.delenv("KOTA_ONVIF_PASSWORD", raising=False)
    code, _, err = run(capsys, "info", "--port", camera.port)
    assert code == 2 and "KOTA_ONVIF_PASSWORD" in err
    camera.set_faults(offline=True)
    code, error, _ = cam(capsys, camera, "info")
    assert code == 1 and error["kind"] == "UnreachableError" and "503" in error["error"]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        code, _, err = run(capsys, "info", "--port", closed.getsockname()[1], "--password", "x")
    assert code == 1 and "cannot reach" in err


@pytest.mark.parametrize("argv", [[], ["discover"], ["info"], ["snapshot"], ["time"], ["ptz"],
                                  ["ptz", "move"], ["ptz", "preset-goto"]])
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["device", "onvif", *argv, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "usage: " in out and len(out) > 200
