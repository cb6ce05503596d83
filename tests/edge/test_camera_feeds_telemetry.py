"""Camera zones as an intersection's detectors, end to end through the edge agent and a real
broker: the zones' counts ride in the intersection's telemetry exactly where a loop's would, a
camera command through MQTT is answered, and a blind camera turns its detectors faulty."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from edge import contract as c
from edge.app import EdgeAgent
from edge.settings import EdgeSettings
from firmware_sim.onvif.server import CameraEmulator
from kota.sim_camera import approach_camera, zone_rows

if TYPE_CHECKING:
    from tests.edge.conftest import Recorder, ThreadedBroker

IID = "simpang-kamera"
DETECTORS = 4  # the simulated controller's own loops; the camera's zones become 5, 6, …


@pytest.fixture(scope="module")
def camera() -> Iterator[CameraEmulator]:
    with approach_camera(condition="day", seed=5, port=0, password="kamera123") as cam:
        yield cam


@pytest.fixture
def agent(broker: ThreadedBroker, camera: CameraEmulator, tmp_path: Path) -> Iterator[EdgeAgent]:
    zones = [{**z, "detector": DETECTORS + 1 + k}
             for k, z in enumerate(zone_rows(camera.view.world.zones))]
    settings = EdgeSettings(
        edge_id="edge-kamera", poll_interval_s=1.0,
        mqtt=c.MqttEndpoint(url=broker.url, keepalive_s=2, reconnect_min_s=0.1,
                            reconnect_max_s=0.5),
        simulated=[{"intersection_id": IID, "phases": 2, "cycle_s": 60, "detectors": DETECTORS}],
        cameras=[{"camera_id": "cam-k", "host": camera.host, "port": camera.port,
                  "password": "kamera123", "intersection_id": IID, "video_url":
                  f"{camera.base_url}/mjpeg", "fps": 4.0, "zones": zones,
                  "status_interval_s": 1.0, "snapshot_interval_s": 0}],
        command_issuers=["operator-*"])
    edge = EdgeAgent(settings, tmp_path)
    edge.start()
    yield edge
    edge.stop()
    camera.set_faults(offline=False)


def test_zone_counts_arrive_in_the_intersections_telemetry_as_its_detectors(
        agent: EdgeAgent, recorder: Recorder, camera: CameraEmulator) -> None:
    zones = len(camera.view.world.zones)

    def telemetry(m) -> bool:
        return isinstance(m.payload, c.TrafficTelemetry) and m.payload.intersection_id == IID

    # the camera's detectors are healthy once frames flow, and count the simulated traffic
    recorder.wait_for(lambda m: telemetry(m) and not any(m.payload.det_fault[DETECTORS:]),
                      timeout_s=15)
    recorder.wait_for(lambda m: telemetry(m) and sum(m.payload.det_count[DETECTORS:]) > 0,
                      timeout_s=25)
    last = recorder.where(telemetry)[-1].payload
    assert len(last.det_count) == DETECTORS + zones
    # the birth lists the camera with its intersection
    births = recorder.where(lambda m: isinstance(m.payload, c.EdgeState)
                            and m.payload.status == "online")
    assert any(d.kind == "camera" and d.intersection_id == IID for d in births[-1].payload.inventory)
    # and the camera has its own analytics and retained status
    recorder.wait_for(lambda m: isinstance(m.payload, c.CctvAnalytics))
    assert recorder.where(lambda m: isinstance(m.payload, c.CctvStatus))[-1].payload.reachable

    # a PTZ command over MQTT is answered on the camera's ack topic
    now = datetime.now(UTC)
    command = c.CctvCommand(ts=now - timedelta(seconds=5), cmd_id="mqtt-ptz-0001",
                            issuer="operator-sari", camera_id="cam-k",
                            expires_at=now + timedelta(seconds=30), body=c.PtzStopBody())
    recorder.publish(c.cctv_command_topic("cam-k"), c.encode(command))
    recorder.wait_for(lambda m: isinstance(m.payload, c.CommandAck)
                      and m.topic == c.command_ack_topic("cctv", "cam-k")
                      and m.payload.cmd_id == "mqtt-ptz-0001" and m.payload.status == "applied")

    # a camera that stops answering turns its detectors faulty, the controller's stay healthy
    camera.set_faults(offline=True)
    faulty = recorder.wait_for(lambda m: telemetry(m) and all(m.payload.det_fault[DETECTORS:]),
                               timeout_s=15)[-1].payload
    assert sum(faulty.det_count[DETECTORS:]) == 0
    assert not any(faulty.det_fault[:DETECTORS])
