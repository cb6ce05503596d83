"""Camera alarm conditions as a pure function of registry rows: offline by report, by silence,
by a silent listed camera or by its edge; tampers and clock drift only while the camera is
reachable; every text in Bahasa Indonesia and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlroom.cctv.alarms import (
    SEVERITY,
    TAMPER,
    AlarmThresholds,
    CameraAlarm,
    camera_conditions,
)

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
T = AlarmThresholds(stale_after_s=120, clock_drift_s=10)


def row(**over: Any) -> dict[str, Any]:
    base = {"camera_id": "cam-1", "name": "Simpang Tugu utara", "edge_id": "edge-1",
            "reachable": True, "last_status_at": NOW - timedelta(seconds=5),
            "first_seen_at": NOW - timedelta(days=1), "status_since": NOW - timedelta(hours=1),
            "tampers": [], "clock_offset_s": 0.4, "error": "", "edge_online": True}
    return {**base, **over}


def codes(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c.code, c.camera_id) for c in camera_conditions(rows, NOW, T)]


def test_a_sound_camera_holds_no_alarm() -> None:
    assert codes([row()]) == []
    assert codes([row(edge_online=None)]) == []  # an edge that never announced itself is no news


@pytest.mark.parametrize("over, reason", [
    ({"reachable": False, "error": "ONVIF GetDeviceInformation timed out"}, "unreachable"),
    ({"last_status_at": NOW - timedelta(seconds=121)}, "stale"),
    ({"edge_online": False}, "edge_offline"),
    ({"reachable": None, "last_status_at": None, "first_seen_at": NOW - timedelta(seconds=200)},
     "never_reported"),
])
def test_offline_by_report_silence_or_edge(over: dict[str, Any], reason: str) -> None:
    (c,) = camera_conditions([row(**over)], NOW, T)
    assert (c.code, c.severity, c.data["reason"]) == ("camera_offline", "critical", reason)
    assert "Kamera cam-1 (Simpang Tugu utara)" in c.text and " / camera cam-1" in c.text


def test_the_offline_text_names_the_error_in_both_languages() -> None:
    (c,) = camera_conditions([row(reachable=False, error="connection refused")], NOW, T)
    assert c.text.startswith("Kamera cam-1 (Simpang Tugu utara) tidak dapat dihubungi sejak "
                             "2026-12-03 08:00 / camera cam-1 (Simpang Tugu utara) unreachable: "
                             "connection refused")


def test_a_listed_camera_gets_time_to_report() -> None:
    young = row(reachable=None, last_status_at=None, first_seen_at=NOW - timedelta(seconds=30))
    assert codes([young]) == []


def test_tampers_each_raise_their_alarm_and_drift_its_own() -> None:
    conditions = camera_conditions([row(tampers=["blur", "moved", "blur"], clock_offset_s=-42.6)],
                                   NOW, T)
    assert [c.code for c in conditions] == ["tamper_blur", "tamper_moved", "clock_drift"]
    blur, moved, drift = conditions
    assert blur.text == ("Kamera cam-1 (Simpang Tugu utara): gambar kabur (lensa kotor, berembun "
                         "atau tidak fokus) / camera cam-1 (Simpang Tugu utara): picture blurred "
                         "(dirty, misted or unfocused lens)")
    assert moved.severity == "warning" and moved.data == {"tamper": "moved"}
    assert drift.text == ("Jam kamera cam-1 (Simpang Tugu utara) selisih -43 s / camera cam-1 "
                          "(Simpang Tugu utara) clock off by -43 s")
    assert codes([row(clock_offset_s=9.9)]) == [] and codes([row(clock_offset_s=None)]) == []


def test_an_offline_camera_raises_only_offline() -> None:
    offline = row(reachable=False, tampers=["blackout"], clock_offset_s=500.0)
    assert codes([offline]) == [("camera_offline", "cam-1")]
    gone = row(edge_online=False, tampers=["frozen"])
    assert codes([gone]) == [("camera_offline", "cam-1")]


def test_every_code_has_a_severity_and_every_tamper_a_bilingual_text() -> None:
    assert set(SEVERITY) == set(CameraAlarm)
    assert set(TAMPER) == {"blur", "blackout", "moved", "frozen"}  # the contract's Tamper
    for tamper, (code, text_id, text_en) in TAMPER.items():
        (c,) = camera_conditions([row(camera_id="c9", name="", tampers=[tamper])], NOW, T)
        assert c.code == code.value and c.text == f"Kamera c9: {text_id} / camera c9: {text_en}"
    assert SEVERITY[CameraAlarm.TAMPER_BLACKOUT] == "critical"


def test_many_cameras_are_judged_each_on_its_own() -> None:
    rows = [row(camera_id=f"cam-{k}", tampers=["frozen"] if k % 2 else []) for k in range(6)]
    assert codes(rows) == [("tamper_frozen", "cam-1"), ("tamper_frozen", "cam-3"),
                           ("tamper_frozen", "cam-5")]
