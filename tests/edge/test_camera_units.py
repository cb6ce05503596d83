"""The camera agent's pure parts: the MJPEG multipart parser (byte vectors), camera zones summed
into detector feeds and laid over a controller reading, and camera settings validation."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.camera.detectors import ZoneInterval
from edge.camera.feed import DetectorFeed, FeedAccumulator, contract_tampers, feed_reading
from edge.camera.source import (
    MAX_PART_BYTES,
    MultipartError,
    MultipartParser,
    boundary_of,
    decode_jpeg,
)
from edge.settings import CameraSettings, EdgeSettings

# ----------------------------------------------------------------- multipart


def test_boundary_comes_from_the_content_type_with_or_without_quotes_and_dashes() -> None:
    assert boundary_of("multipart/x-mixed-replace; boundary=frame") == b"--frame"
    assert boundary_of('multipart/x-mixed-replace;boundary="--myboundary"') == b"--myboundary"
    with pytest.raises(MultipartError, match="expected a multipart MJPEG stream"):
        boundary_of("text/html")
    with pytest.raises(MultipartError, match="no boundary"):
        boundary_of("multipart/x-mixed-replace")


STREAM = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nAB\r\n\r\n"
          b"--frame\r\nContent-Type: image/jpeg\r\n\r\nWXYZ\r\n"
          b"--frame\r\nContent-Length: 3\r\n\r\n123\r\n--frame")


def test_parts_are_cut_by_length_or_by_the_next_boundary() -> None:
    parser = MultipartParser(b"--frame")
    assert parser.feed(STREAM) == [b"AB\r\n", b"WXYZ", b"123"]


def test_parts_arrive_the_same_when_the_stream_comes_a_byte_at_a_time() -> None:
    parser = MultipartParser(b"--frame")
    out = []
    for k in range(len(STREAM)):
        out += parser.feed(STREAM[k:k + 1])
    assert out == [b"AB\r\n", b"WXYZ", b"123"]


def test_garbage_before_the_first_boundary_is_skipped() -> None:
    parser = MultipartParser(b"--frame")
    assert parser.feed(b"\x00\xffnoise--fr") == []
    assert parser.feed(b"ame\r\nContent-Length: 2\r\n\r\nok") == [b"ok"]


@pytest.mark.parametrize("stream, why", [
    (b"--frame\r\nContent-Length: nine\r\n\r\n", "bad Content-Length"),
    (b"--frame\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"--frame\r\nContent-Length: %d\r\n\r\n" % (MAX_PART_BYTES + 1), "exceeds"),
    (b"--frame\r\n" + b"X" * 5000, "header is longer"),
])
def test_a_garbled_stream_is_a_typed_error(stream: bytes, why: str) -> None:
    with pytest.raises(MultipartError, match=why):
        MultipartParser(b"--frame").feed(stream)


def test_a_part_that_is_no_picture_is_refused_and_a_jpeg_decodes() -> None:
    with pytest.raises(MultipartError, match="not a JPEG"):
        decode_jpeg(b"not a jpeg")
    ok, buf = cv2.imencode(".jpg", np.full((36, 64, 3), 120, np.uint8))
    assert ok
    assert decode_jpeg(buf.tobytes()).shape == (36, 64, 3)


# ----------------------------------------------------------------- feeds


def interval(counts: tuple[int, ...], occ: tuple[float, ...], frames: int,
             fault: bool = False) -> ZoneInterval:
    return ZoneInterval(counts, occ, (fault,) * len(counts), (0,), frames)


def test_zone_intervals_sum_into_detectors_counts_added_occupancy_weighted_by_frames() -> None:
    acc = FeedAccumulator([3, None, 7])
    acc.add(interval((2, 9, 0), (50.0, 10.0, 0.0), frames=5))
    acc.add(interval((1, 9, 1), (0.0, 10.0, 100.0), frames=15))
    # zone 0: 2.5 of 20 frames on = 12.5 %; zone 2: 15 of 20 = 75 %; zone 1 feeds no detector
    assert acc.take() == {3: DetectorFeed(3, 12.5, False), 7: DetectorFeed(1, 75.0, False)}
    # taken: the next take starts empty, and with no frame the zones are faulty
    assert acc.take() == {3: DetectorFeed(0, 0.0, True), 7: DetectorFeed(0, 0.0, True)}


def test_a_faulty_interval_or_a_blind_camera_makes_every_fed_detector_faulty() -> None:
    acc = FeedAccumulator([1, 2])
    acc.add(interval((4, 4), (30.0, 30.0), frames=5, fault=True))
    assert acc.take() == {1: DetectorFeed(0, 0.0, True), 2: DetectorFeed(0, 0.0, True)}
    acc.add(interval((4, 4), (30.0, 30.0), frames=5))
    acc.fault_all()
    assert all(f.fault and f.count == 0 for f in acc.take().values())


def test_an_interval_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="an interval of 1 zones for 2 configured"):
        FeedAccumulator([1, 2]).add(interval((1,), (0.0,), 1))


@dataclass
class Reading:
    mode: str = "central"
    plan: int | None = 2
    cycle_timer_s: float | None = 10.0
    signal: tuple[str, ...] = ("G", "R")
    det_count: tuple[int, ...] = (5, 6)
    det_occupancy_pct: tuple[float, ...] = (10.0, 20.0)
    det_fault: tuple[bool, ...] = (False, True)


def test_fed_detectors_replace_the_controllers_and_the_arrays_grow_to_the_highest() -> None:
    fed = feed_reading(Reading(), {2: DetectorFeed(3, 40.0, False), 4: DetectorFeed(1, 5.0, True)})
    assert fed.det_count == (5, 3, 0, 1)
    assert fed.det_occupancy_pct == (10.0, 40.0, 0.0, 5.0)
    assert fed.det_fault == (False, False, False, True)
    assert (fed.mode, fed.plan, fed.signal) == ("central", 2, ("G", "R"))


def test_tamper_names_are_the_contracts_most_serious_first() -> None:
    assert contract_tampers(frozenset({"frozen", "blurred", "covered"})) == ("blackout", "blur",
                                                                             "frozen")
    assert contract_tampers(frozenset()) == ()


# ----------------------------------------------------------------- settings

CAM = {"camera_id": "cam-1", "host": "127.0.0.1", "port": 8080, "password": "rahasia",
       "intersection_id": "simpang-1",
       "zones": [{"zone_id": "z1", "polygon": [[400, 120], [440, 120], [440, 158], [400, 158]],
                  "detector": 1},
                 {"zone_id": "z2", "polygon": [[360, 120], [400, 120], [400, 158], [360, 158]]}],
       "queues": [["z1", "z2"]]}
SIM = [{"intersection_id": "simpang-1", "phases": 2, "cycle_s": 60}]


def test_a_camera_feeding_detectors_of_a_served_intersection_is_accepted() -> None:
    settings = EdgeSettings(simulated=SIM, cameras=[CAM])
    cam = settings.cameras[0]
    assert cam.password.get_secret_value() == "rahasia" and "rahasia" not in repr(cam)


@pytest.mark.parametrize("change, why", [
    ({"zones": [{"zone_id": "z", "polygon": [[0, 0], [700, 0], [700, 10]]}], "queues": []},
     "outside the 640×360 picture"),
    ({"zones": [{"zone_id": "z", "polygon": [[0, 0], [1, 0]]}], "queues": []}, "at least 3"),
    ({"queues": [["z1", "z9"]]}, "unknown zones: z9"),
    ({"intersection_id": None}, "intersection_id must say"),
    ({"video_url": "ftp://x/y"}, "video_url must be http"),
    ({"fps": 0}, "greater than or equal to 0.5"),
    ({"zones": CAM["zones"] + [CAM["zones"][0]]}, "zone ids repeated: z1"),
])
def test_bad_camera_settings_are_refused_with_the_reason(change: dict, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        CameraSettings(**{**CAM, **change})


def test_two_cameras_with_one_id_or_one_detector_fed_twice_are_refused() -> None:
    with pytest.raises(ValidationError, match="camera ids must be unique"):
        EdgeSettings(simulated=SIM, cameras=[CAM, CAM])
    other = {**CAM, "camera_id": "cam-2"}
    with pytest.raises(ValidationError, match="detector 1 of simpang-1 is fed by two zones"):
        EdgeSettings(simulated=SIM, cameras=[CAM, other])
    with pytest.raises(ValidationError, match="which this agent does not serve"):
        EdgeSettings(simulated=[], cameras=[CAM])
