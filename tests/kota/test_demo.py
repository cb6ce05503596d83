"""`kota demo` as a new user runs it: the demo city's six intersections live on the page within
15 s (SUMO → controllers → edge agents → broker → control room), clean Ctrl-C, nothing left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow


def test_demo_shows_live_values_within_15_s_and_stops_cleanly(scratch_dir: Path) -> None:
    http_port, broker_port, pg_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(scratch_dir),
        "KOTA_BROKER__PORT": str(broker_port),
        "KOTA_CONTROLROOM__MQTT__URL": f"mqtt://127.0.0.1:{broker_port}",
        "KOTA_EDGE__MQTT__URL": f"mqtt://127.0.0.1:{broker_port}",
        "KOTA_DATABASE__EMBEDDED__PORT": str(pg_port),
        "KOTA_CONTROLROOM__HTTP_PORT": str(http_port),
    }
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kota", "demo"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{http_port}"
    live: list[dict] = []
    try:
        while time.monotonic() - started < 15:
            try:
                rows = httpx.get(f"{base}/api/intersections", timeout=2).json()
            except httpx.HTTPError:
                rows = []
            live = [r for r in rows if r["online"] and r["det_count"]]
            if len(live) == 6:
                break
            time.sleep(0.25)
        assert len(live) == 6, f"demo showed {live} after 15 s"
        assert {r["intersection_id"] for r in live} == {f"J{k}" for k in range(1, 7)}
        page = httpx.get(base + "/", timeout=2).text
        assert "Simpang" in page
        first = {r["intersection_id"]: r["last_ts"] for r in live}
        time.sleep(2.5)
        later = {r["intersection_id"]: r["last_ts"] for r in httpx.get(f"{base}/api/intersections").json()}
        assert all(later[i] > first[i] for i in first), "values are not live"
        def edges() -> list[tuple[str, bool, int]]:
            return [(e["edge_id"], e["online"], len(e["inventory"]))
                    for e in httpx.get(f"{base}/api/edges", timeout=2).json()]

        wait = time.monotonic() + 20  # office and camera edges come up after the intersections'
        while len(edges()) < 4 and time.monotonic() < wait:
            time.sleep(0.25)
        assert edges() == [("edge-demo-1", True, 3), ("edge-demo-2", True, 3),
                           ("kamera-demo", True, 2), ("kantor-demo", True, 3)]
        # the attendance side: three offices' machines online, their history and the morning's
        # first check-ins stored
        wait = time.monotonic() + 30
        while time.monotonic() < wait:
            machines = httpx.get(f"{base}/api/attendance/machines", timeout=2).json()
            if len(machines) == 3 and all(m["online"] and m["punches"] for m in machines):
                break
            time.sleep(0.5)
        assert [(m["device_sn"], m["online"]) for m in machines] == [
            (f"KPDEMO000{k}", True) for k in (1, 2, 3)], machines
        # BKPSDM's side: SIMPEG (emulated) synced into the payroll tables, the month's recap
        # for payroll under the run's bkpsdm key
        settings = tomllib.loads((scratch_dir / "kotapintar" / "demo-city" /
                                  "controlroom.toml").read_text())
        key = next(k["key"] for k in settings["controlroom"]["api_keys"]
                   if k["role"] == "bkpsdm")
        month = time.strftime("%Y-%m")
        wait = time.monotonic() + 30
        while time.monotonic() < wait:
            recap = httpx.get(f"{base}/api/attendance/recap", params={"month": month},
                              headers={"X-API-Key": key}, timeout=10).json()
            if recap.get("employees"):
                break
            time.sleep(0.5)
        assert len(recap["employees"]) == 180 and len(recap["skpds"]) == 3, recap
        # the operator's side of CCTV: both cameras online, one moved, and its snapshot
        operator = next(k["key"] for k in settings["controlroom"]["api_keys"]
                        if k["role"] == "operator")
        wait = time.monotonic() + 20
        while time.monotonic() < wait:
            cameras = httpx.get(f"{base}/api/cameras", timeout=2).json()
            if len(cameras) == 2 and all(c["online"] and c["ptz"] for c in cameras):
                break
            time.sleep(0.5)
        assert [(c["camera_id"], c["state"]) for c in cameras] == [
            ("cam-J1", "online"), ("cam-J2", "online")], cameras
        moved = httpx.post(f"{base}/api/cameras/cam-J1/ptz", headers={"X-API-Key": operator},
                           json={"action": "goto", "pan": 0.5, "tilt": 0.1, "zoom": 0.2,
                                 "reason": "demo test"}, params={"wait_s": 5}, timeout=10)
        assert moved.status_code == 200 and moved.json()["status"] == "applied", moved.text
        snap = httpx.post(f"{base}/api/cameras/cam-J2/snapshot", headers={"X-API-Key": operator},
                          params={"wait_s": 5}, timeout=10)
        assert snap.json()["status"] == "applied", snap.text
        wait = time.monotonic() + 10
        while time.monotonic() < wait:
            jpg = httpx.get(f"{base}/api/cameras/cam-J2/snapshot.jpg",
                            headers={"X-API-Key": operator}, timeout=2)
            if jpg.status_code == 200:
                break
            time.sleep(0.25)
        assert jpg.content[:2] == b"\xff\xd8", "no JPEG snapshot of cam-J2"
        view = httpx.get(f"{base}/api/intersections/J1", timeout=2).json()
        assert view["live"]["mode"] and len(view["live"]["signal"]) == view["phases"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "demo stopped." in out and "average delay" in out
    # no orphan: the embedded PostgreSQL the demo started is stopped, the ports are free again
    assert not (scratch_dir / "kotapintar" / "postgres" / "postmaster.pid").exists(), out
    for port in (http_port, broker_port, pg_port):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine, a listener is not
            s.bind(("127.0.0.1", port))
