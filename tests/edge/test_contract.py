"""The MQTT contract: topic builders, payload round trips, and every way a message is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import contract as c

NOW = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
EDGE = {"ts": NOW, "edge_id": "edge-1", "epoch": 3, "seq": 41}


def telemetry(**over: object) -> c.TrafficTelemetry:
    fields = {**EDGE, "intersection_id": "simpang-1", "mode": "central", "plan": 2,
              "cycle_timer_s": 12.5, "signal": ["G", "R", "R", "Y"], "det_count": list(range(16)),
              "det_occupancy_pct": [12.5] * 16, "det_fault": [False] * 15 + [True]}
    fields.update(over)
    return c.TrafficTelemetry(**fields)


SAMPLES: list[tuple[str, c.Payload]] = [
    (c.edge_state_topic("edge-1"), c.EdgeState(**EDGE, status="online", conn=1, inventory=[
        c.DeviceInfo(device_id="ctl-1", kind="controller", model="sim", intersection_id="simpang-1")],
        versions={"kota": "0.1.0"})),
    (c.telemetry_topic("simpang-1"), telemetry()),
    (c.event_topic("simpang-1"), c.TrafficEvent(**EDGE, intersection_id="simpang-1",
                                                kind="detector_fault", severity="warning",
                                                detail="loop 3 stuck on", data={"detector": 3})),
    (c.command_topic("simpang-1"), c.TrafficCommand(
        ts=NOW, cmd_id="cmd-0001-abcd", issuer="operator:budi", intersection_id="simpang-1",
        expires_at=NOW + timedelta(minutes=5),
        body=c.PlanBody(plan=3, cycle_s=90, offset_s=10, splits_s=[30, 20, 25, 15]))),
    (c.command_topic("simpang-1"), c.TrafficCommand(
        ts=NOW, cmd_id="cmd-0002-abcd", issuer="operator:budi", intersection_id="simpang-1",
        expires_at=NOW + timedelta(minutes=5), body=c.OverrideBody(action="hold", phase=2))),
    (c.command_ack_topic("traffic", "simpang-1"), c.CommandAck(
        **EDGE, cmd_id="cmd-0001-abcd", target_id="simpang-1", status="applied")),
    (c.cctv_status_topic("cam-1"), c.CctvStatus(**EDGE, camera_id="cam-1", reachable=True, fps=12.5)),
    (c.cctv_status_topic("cam-2"), c.CctvStatus(
        **EDGE, camera_id="cam-2", reachable=True, fps=5.0, tamper="blur", tampers=["blur", "frozen"],
        intersection_id="simpang-1", model="KP-PTZ", ptz=True,
        position=c.PtzPosition(pan=0.5, tilt=-0.25, zoom=0.1),
        presets=[c.PresetInfo(token="p1", name="Arah utara")], clock_offset_s=-2.5, zones=8)),
    (c.cctv_command_topic("cam-2"), c.CctvCommand(
        ts=NOW, cmd_id="ptz-0001-abcd", issuer="operator:sari", camera_id="cam-2",
        expires_at=NOW + timedelta(seconds=30),
        body=c.PtzMoveBody(pan=0.5, tilt=0.0, zoom=0.0, timeout_s=2))),
    (c.cctv_command_topic("cam-2"), c.CctvCommand(
        ts=NOW, cmd_id="ptz-0002-abcd", issuer="operator:sari", camera_id="cam-2",
        expires_at=NOW + timedelta(seconds=30),
        body=c.PtzGotoBody(position=c.PtzPosition(pan=-1, tilt=1, zoom=1)))),
    (c.cctv_command_topic("cam-2"), c.CctvCommand(
        ts=NOW, cmd_id="ptz-0003-abcd", issuer="operator:sari", camera_id="cam-2",
        expires_at=NOW + timedelta(seconds=30), body=c.PresetSetBody(name="Pintu masuk pasar"))),
    (c.cctv_command_topic("cam-2"), c.CctvCommand(
        ts=NOW, cmd_id="snap-0004-abcd", issuer="operator:sari", camera_id="cam-2",
        expires_at=NOW + timedelta(seconds=30), body=c.SnapshotBody())),
    (c.cctv_analytics_topic("cam-1"), c.CctvAnalytics(
        **EDGE, camera_id="cam-1", zone_ids=["z1", "z2"], presence=[True, False], count=[3, 0],
        occupancy_pct=[40.0, 0.0], queue_m=[22.5, 0.0])),
    (c.attendance_logs_topic("ABC123"), c.AttendanceBatch(
        **EDGE, device_sn="ABC123", batch_id="batch-00000001",
        punches=[c.Punch(user_id="42", at=datetime.fromisoformat("2026-11-22T07:29:00+07:00"))])),
    (c.attendance_stored_topic("ABC123"), c.AttendanceStored(
        ts=NOW, device_sn="ABC123", batch_ids=["batch-00000001"])),
    (c.attendance_logs_topic("WITA1"), c.AttendanceBatch(
        **EDGE, device_sn="WITA1", batch_id="batch-00000002", tz="Asia/Makassar",
        punches=[c.Punch(user_id="198503122010012001", state=1, verify=15, work_code=3,
                         at=datetime.fromisoformat("2026-11-22T16:01:00+08:00"))])),
    (c.attendance_status_topic("ABC123"), c.AttendanceStatus(
        **EDGE, device_sn="ABC123", online=True, name="Lobi BKPSDM", platform="ZMM220_TFT",
        firmware="Ver 6.60 Apr 28 2017", users=120, users_capacity=3000, punches=85_000,
        punches_capacity=100_000, clock_drift_s=-3.5,
        last_punch_at=datetime.fromisoformat("2026-11-22T07:29:00+07:00"), unstored=12)),
    (c.attendance_command_topic("ABC123"), c.AttendanceCommand(
        ts=NOW, cmd_id="cmd-0003-abcd", issuer="bkpsdm:siti", device_sn="ABC123",
        expires_at=NOW + timedelta(hours=1),
        body=c.UsersBody(upsert=[c.MachineUser(user_id="42", name="Siti Rahayu", card=123456)],
                         remove=["43"]))),
    (c.attendance_command_topic("ABC123"), c.AttendanceCommand(
        ts=NOW, cmd_id="cmd-0004-abcd", issuer="bkpsdm:siti", device_sn="ABC123",
        expires_at=NOW + timedelta(hours=1), body=c.SyncTimeBody())),
    (c.controlroom_state_topic(), c.ControlRoomState(ts=NOW, status="online", epoch=7)),
]


@pytest.mark.parametrize(("topic", "payload"), SAMPLES, ids=lambda x: type(x).__name__ if not isinstance(x, str) else "")
def test_every_payload_round_trips(topic: str, payload: c.Payload) -> None:
    message = c.decode(topic, c.encode(payload))
    assert message.payload == payload
    assert isinstance(message.payload, c.MODEL_BY_KIND[message.kind])


def test_topics_follow_the_design_table() -> None:
    assert c.telemetry_topic("simpang-1") == "kota/v1/traffic/simpang-1/telemetry"
    assert c.edge_state_topic("e1") == "kota/v1/edge/e1/state"
    assert c.command_ack_topic("cctv", "cam-9") == "kota/v1/cctv/cam-9/cmd_ack"
    assert c.attendance_stored_topic("SN1") == "kota/v1/attendance/SN1/stored"
    assert c.attendance_status_topic("SN1") == "kota/v1/attendance/SN1/status"
    assert c.parse_topic("kota/v1/attendance/SN1/status").spec.retain is True
    assert c.parse_topic("kota/v1/attendance/SN1/cmd").spec.kind is c.Kind.ATTENDANCE_COMMAND
    spec = c.parse_topic("kota/v1/traffic/x/telemetry").spec
    assert (spec.qos, spec.retain) == (0, False)
    spec = c.parse_topic("kota/v1/edge/x/state").spec
    assert (spec.qos, spec.retain) == (1, True)
    assert c.shared("kota/v1/traffic/+/telemetry", "ingest") == "$share/ingest/kota/v1/traffic/+/telemetry"


@pytest.mark.parametrize("bad_id", ["", "a/b", "a+b", "#", "x" * 65, "-lead"])
def test_topic_builders_refuse_ids_that_would_break_topics(bad_id: str) -> None:
    with pytest.raises(ValueError):
        c.telemetry_topic(bad_id)


def _raw(**over: object) -> bytes:
    body = json.loads(c.encode(telemetry()))
    body.update(over)
    return json.dumps(body).encode()


TOPIC = c.telemetry_topic("simpang-1")


@pytest.mark.parametrize(
    ("topic", "raw", "error", "hint"),
    [
        (TOPIC, b"{not json", c.InvalidJsonError, "not JSON"),
        (TOPIC, b"[1, 2]", c.SchemaError, "object"),
        (TOPIC, _raw(v=2), c.UnknownVersionError, "version 2"),
        (TOPIC, _raw(seq="many"), c.SchemaError, "seq"),
        (TOPIC, _raw(det_count=[1, 2]), c.SchemaError, "one entry per detector"),
        (TOPIC, _raw(det_occupancy_pct=[float("nan")] * 16), c.SchemaError, "occupancy"),
        (TOPIC, _raw(ts="2026-11-22T10:00:00"), c.SchemaError, "zone"),
        (TOPIC, _raw(extra_field=1), c.SchemaError, "extra_field"),
        (TOPIC, json.dumps({k: v for k, v in json.loads(_raw()).items() if k != "mode"}).encode(),
         c.SchemaError, "mode"),
        (TOPIC, b"{" + b'"pad": "' + b"x" * c.MAX_PAYLOAD_BYTES + b'"}', c.OversizeError, "exceeds"),
        ("kota/v1/traffic/simpang-2/telemetry", _raw(), c.TopicMismatchError, "does not match"),
        ("kota/v1/traffic/simpang-1/whatever", _raw(), c.ForeignTopicError, "no such message"),
        ("other/v1/traffic/simpang-1/telemetry", _raw(), c.ForeignTopicError, "contract"),
        ("kota/v1/traffic/simpang-1", _raw(), c.ForeignTopicError, "contract"),
    ],
)
def test_malformed_messages_raise_typed_errors(topic: str, raw: bytes, error: type, hint: str) -> None:
    with pytest.raises(error) as caught:
        c.decode(topic, raw)
    assert hint in str(caught.value)
    assert caught.value.reason == error.reason


def test_command_must_expire_after_it_was_issued() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        c.TrafficCommand(ts=NOW, cmd_id="cmd-0001-abcd", issuer="op", intersection_id="s1",
                         expires_at=NOW, body=c.OverrideBody(action="flash"))


def test_timestamps_are_normalised_to_utc() -> None:
    local = datetime.fromisoformat("2026-11-22T10:00:00+07:00")
    t = telemetry(ts=local)
    assert t.ts.utcoffset() == timedelta(0) and t.ts.hour == 3


def test_endpoint_urls() -> None:
    assert c.MqttEndpoint(url="mqtts://broker.example:8883").tls
    assert c.MqttEndpoint(url="mqtt://h").port == 1883
    for bad in ("http://h:1883", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(ValueError):
            c.MqttEndpoint(url=bad)


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from([t for t, _ in SAMPLES] + ["kota/v1/x/y/z", "junk"]),
       raw=st.binary(max_size=2048))
def test_decode_never_crashes_on_garbage(topic: str, raw: bytes) -> None:
    try:
        c.decode(topic, raw)
    except c.ContractError:
        pass


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.sampled_from(list(json.loads(_raw()).keys()) + ["zz"]),
                            st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=8),
                                      st.lists(st.integers(), max_size=20)), max_size=12))
def test_decode_of_mangled_json_objects_is_always_a_contract_error_or_valid(body: dict) -> None:
    raw = json.dumps(body).encode()
    try:
        message = c.decode(TOPIC, raw)
    except c.ContractError:
        return
    assert isinstance(message.payload, c.TrafficTelemetry)


def _batch_json(tz: str, at: str) -> bytes:
    return (f'{{"v":1,"ts":"2026-11-22T00:00:00Z","edge_id":"office-1","epoch":1,"seq":1,'
            f'"device_sn":"SN1","batch_id":"batch-00000001","tz":"{tz}",'
            f'"punches":[{{"user_id":"42","at":"{at}"}}]}}').encode()


@pytest.mark.parametrize(("tz", "at", "why"), [
    ("Asia/Bandung", "2026-11-22T07:29:00+07:00", "unknown time zone"),
    ("Asia/Jakarta", "2026-11-22T07:29:00+08:00", "not in the office zone"),
    ("Asia/Jakarta", "2026-11-22T07:29:00", "UTC offset"),
])
def test_attendance_batches_with_a_wrong_zone_are_rejected(tz: str, at: str, why: str) -> None:
    with pytest.raises(c.SchemaError, match=why):
        c.decode(c.attendance_logs_topic("SN1"), _batch_json(tz, at))


CCTV_CMD = {"v": 1, "ts": "2026-11-22T03:00:00Z", "cmd_id": "ptz-0001-abcd", "issuer": "op",
            "camera_id": "cam-2", "expires_at": "2026-11-22T03:00:30Z"}


@pytest.mark.parametrize("body, why", [
    ({"type": "ptz_move"}, "a move needs a pan, tilt or zoom speed"),
    ({"type": "ptz_move", "pan": 1.5}, "less than or equal to 1"),
    ({"type": "ptz_move", "pan": 0.5, "timeout_s": 60}, "less than or equal to 10"),
    ({"type": "ptz_goto", "position": {"pan": 0, "tilt": 0, "zoom": -0.5}}, "greater than or equal to 0"),
    ({"type": "preset_goto", "preset_token": "../etc"}, "String should match pattern"),
    ({"type": "preset_set", "name": ""}, "String should match pattern"),
    ({"type": "reboot"}, "does not match any of the expected tags"),
])
def test_a_cctv_command_out_of_bounds_is_refused_with_the_reason(body: dict, why: str) -> None:
    raw = json.dumps({**CCTV_CMD, "body": body}).encode()
    with pytest.raises(c.SchemaError, match=why):
        c.decode(c.cctv_command_topic("cam-2"), raw)


def test_a_cctv_command_for_another_camera_than_its_topic_is_refused() -> None:
    raw = json.dumps({**CCTV_CMD, "body": {"type": "ptz_stop"}}).encode()
    with pytest.raises(c.TopicMismatchError):
        c.decode(c.cctv_command_topic("cam-3"), raw)
    assert c.decode(c.cctv_command_topic("cam-2"), raw).kind is c.Kind.CCTV_COMMAND
