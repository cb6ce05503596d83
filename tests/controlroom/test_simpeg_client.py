"""The control room's SIMPEG client against the SIMPEG emulator over real HTTP on loopback:
paging, token renewal, retries and their limit, timeouts, malformed records, and the
idempotent recap upload (duplicates, revisions, a 500 after the store)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from controlroom.attendance.recap import CutLine, EmployeeRecap
from controlroom.attendance.simpeg import (
    SimpegAuthError,
    SimpegClient,
    SimpegError,
    SimpegUnavailable,
    UploadReport,
    idempotency_key,
    recap_record,
)
from simulators.simpeg import MISSING, SimpegServer, SimpegWorld, record_problem, sample_world

TODAY = date(2026, 12, 3)
ID, SECRET = "kota-pintar", "rahasia-simpeg"


def world(employees: int = 60) -> SimpegWorld:
    w = sample_world(employees=employees, seed=11, skpds=4, today=TODAY)
    w.today = TODAY
    return w


@pytest.fixture(scope="module")
def running() -> Iterator[SimpegServer]:
    with SimpegServer(client_id=ID, client_secret=SECRET) as s:
        yield s


@pytest.fixture
def server(running: SimpegServer) -> SimpegServer:
    running.reset(world())
    return running


def client_for(server: SimpegServer, **options: object) -> SimpegClient:
    settings: dict[str, object] = {"timeout_s": 2.0, "retries": 3, "backoff_s": 0.01,
                                   "per_page": 25}
    settings.update(options)
    return SimpegClient(server.url, ID, SECRET, **settings)  # type: ignore[arg-type]


@pytest.fixture
def client(server: SimpegServer) -> Iterator[SimpegClient]:
    with client_for(server) as c:
        yield c


def active_nips(server: SimpegServer) -> list[str]:
    return sorted(n for n, e in server.world.employees.items() if e.active)


def recap(nip: str, period: str = "2026-11", *, late_days: int = 1) -> EmployeeRecap:
    lines = tuple(CutLine(date(2026, 11, 2 + k), "TL1", 0.5, "Terlambat 10 menit",
                          "Late 10 minutes") for k in range(late_days))
    cut = 0.5 * late_days
    return EmployeeRecap(
        nip=nip, name="Pegawai", skpd="dishub", skpd_name="Dinas Perhubungan",
        unit="Bidang Lalu Lintas", position="Analis Lalu Lintas", period=period,
        rules_version="default@2026.1", working_days=21, present_days=20,
        tl=(late_days, 0, 0, 0), psw=(0, 0, 0, 0), absences={"TK": 1, "CT": 0},
        cut_uncapped_pct=cut + 3.0, cut_pct=cut + 3.0 - 1e-12, lines=lines)


# --------------------------------------------------------------------------- reading


def test_units_employees_and_leave_across_many_pages(server: SimpegServer,
                                                     client: SimpegClient) -> None:
    units = client.units()
    assert {u.id for u in units} == set(server.world.units)
    assert {u.id for u in units if u.is_skpd} == {"dishub", "bkpsdm", "rsud", "diskominfo"}
    employees = client.employees()
    assert len(employees) == 60 and employees.skipped == ()
    assert server.statuses("/api/v1/pns") == [200, 200, 200]  # 25 + 25 + 10
    e = next(e for e in employees if e.nip == active_nips(server)[0])
    source = server.world.employees[e.nip]
    assert (e.name, e.unit_id, e.position, e.schedule_group, e.active) == (
        source.name, source.unit_id, source.position, source.schedule_group, True)
    assert [(m.sn, m.user_id) for m in e.machine_ids] == [
        (m.sn, m.user_id) for m in source.machine_ids]
    leave = client.leave(date(2026, 11, 1), date(2026, 12, 31))
    expected = {v.id for v in server.world.leave.values()
                if v.overlaps(date(2026, 11, 1), date(2026, 12, 31))}
    assert {v.id for v in leave} == expected and expected
    cancelled = [v for v in leave if v.cancelled]
    assert all(not v.covers(v.first_day) for v in cancelled)


def test_large_world_pages(server: SimpegServer) -> None:
    server.reset(world(employees=1200))
    with client_for(server, per_page=100) as c:
        assert len(c.employees()) == 1200
    assert len(server.statuses("/api/v1/pns")) == 12


def test_updated_since_and_single_employee(server: SimpegServer, client: SimpegClient) -> None:
    nip = active_nips(server)[3]
    with server.lock:
        server.world.employees[nip].updated_at = datetime(2026, 12, 5, tzinfo=UTC)
    changed = client.employees(updated_since=datetime(2026, 12, 4, tzinfo=UTC))
    assert [e.nip for e in changed] == [nip]
    with pytest.raises(ValueError, match="time zone"):
        client.employees(updated_since=datetime(2026, 12, 1))
    one = client.employee(nip)
    assert one is not None and one.nip == nip
    assert client.employee("199901012020011999") is None
    assert client.employee("../unor") is None


def test_token_expires_mid_pagination(server: SimpegServer, client: SimpegClient) -> None:
    server.set_faults(token_max_uses=2)  # a token dies after two pages
    assert len(client.employees()) == 60
    assert server.statuses("/api/v1/pns") == [200, 200, 401, 200]
    assert len(server.statuses("/oauth/token")) == 2
    server.revoke_tokens()  # SIMPEG restarted between two syncs
    assert len(client.units()) == len(server.world.units)


def test_short_token_lifetime_mid_sync(server: SimpegServer) -> None:
    # Tokens live 0.2 s and every request takes 0.05 s: six pages outlive two tokens, renewed
    # ahead of expiry or, when the expiry falls inside a request, after SIMPEG's 401.
    server.set_faults(token_lifetime_s=0.2, delay_s=0.05)
    with client_for(server, per_page=10) as c:
        assert len(c.employees()) == 60
    assert len(server.statuses("/oauth/token")) >= 2
    assert server.statuses("/api/v1/pns").count(200) == 6


def test_wrong_credentials(server: SimpegServer) -> None:
    with SimpegClient(server.url, ID, "salah", retries=0) as c, \
            pytest.raises(SimpegAuthError, match="refused the client credentials of 'kota-pintar'"
                          ) as caught:
        c.units()
    assert caught.value.status == 401 and caught.value.reason == "invalid_client"
    assert "salah" not in str(caught.value) and "salah" not in repr(c)


def test_a_burst_of_500s_is_retried(server: SimpegServer, client: SimpegClient) -> None:
    client.units()  # token in hand
    server.set_faults(fail_next=3)
    assert len(client.employees()) == 60
    assert server.statuses("/api/v1/pns")[:4] == [500, 500, 500, 200]


def test_retries_exhausted_is_unavailable(server: SimpegServer) -> None:
    server.set_faults(fail_next=10, fail_status=503)
    with client_for(server, retries=2) as c, pytest.raises(SimpegUnavailable) as caught:
        c.units()
    message = str(caught.value)
    assert server.url in message and "failed 3 times" in message and "HTTP 503" in message
    assert isinstance(caught.value, SimpegError)


def test_dropped_connections_are_retried(server: SimpegServer, client: SimpegClient) -> None:
    server.set_faults(drop_next=2)
    assert len(client.units()) == len(server.world.units)


def test_nobody_listening_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with SimpegClient(f"http://127.0.0.1:{port}", ID, SECRET, retries=1, backoff_s=0.01) as c, \
            pytest.raises(SimpegUnavailable, match="connection failed"):
        c.units()


def test_slow_server_within_and_over_the_timeout(server: SimpegServer) -> None:
    server.set_faults(delay_s=0.1)
    with client_for(server, timeout_s=1.0) as c:
        assert len(c.units()) == len(server.world.units)
    with client_for(server, timeout_s=0.05, retries=1) as c, \
            pytest.raises(SimpegUnavailable, match=r"no answer within 0.05 s"):
        c.units()


def test_refused_request_carries_the_server_reason(client: SimpegClient) -> None:
    with pytest.raises(SimpegError) as caught:
        client._call("GET", "/api/v1/cuti", params={"dari": "2026-11-30",
                                                    "sampai": "2026-11-01"})
    assert caught.value.status == 400
    assert "invalid_request: sampai is before dari" in str(caught.value)
    assert not isinstance(caught.value, SimpegUnavailable)


def test_malformed_records_are_skipped_and_reported(server: SimpegServer, client: SimpegClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    bad_active, bad_nip, no_position = active_nips(server)[:3]
    leave_id = next(iter(server.world.leave))
    server.set_faults(
        corrupt_employees={bad_active: {"aktif": "ya"}, bad_nip: {"nip": "19850312"},
                           no_position: {"jabatan": MISSING}},
        corrupt_leave={leave_id: {"jenis": "XX"}})
    with caplog.at_level(logging.WARNING, logger="controlroom.attendance.simpeg"):
        employees = client.employees()
    assert len(employees) == 57
    problems = {s.key: s.problem for s in employees.skipped}
    assert problems[bad_active].startswith("field aktif:")
    assert problems["19850312"].startswith("field nip:")
    assert problems[no_position].startswith("field jabatan:")
    assert sum("malformed employee record" in r.getMessage() for r in caplog.records) == 3
    first, last = server.world.leave[leave_id].first_day, server.world.leave[leave_id].last_day
    leave = client.leave(first, last)
    assert [s.key for s in leave.skipped] == [leave_id]
    assert "unknown leave code 'XX'" in leave.skipped[0].problem
    with pytest.raises(SimpegError, match="field aktif"):
        client.employee(bad_active)


# --------------------------------------------------------------------------- uploading


def test_recap_record_is_what_simpeg_takes(server: SimpegServer) -> None:
    r = recap(active_nips(server)[0], late_days=2)
    rec = recap_record(r)
    assert rec["absen"] == {"TK": 1}  # zero-day codes left out
    assert rec["potongan_persen"] == 4.0  # float noise rounded away
    assert rec["tl"] == [2, 0, 0, 0] and rec["rincian"][1]["tanggal"] == "2026-11-03"
    assert record_problem(rec, "2026-11", TODAY) is None


def test_upload_twice_is_one_record(server: SimpegServer, client: SimpegClient) -> None:
    records = [recap(n) for n in active_nips(server)[:5]]
    first = client.upload_recaps("2026-11", records)
    assert first == UploadReport(accepted=5, duplicate=0, rejected=(), revised=0, batches=1)
    again = client.upload_recaps("2026-11", list(reversed(records)))  # order does not matter
    assert again == UploadReport(accepted=0, duplicate=5, rejected=(), revised=0, batches=1)
    assert len(server.world.recaps) == 5
    assert {s.revision for s in server.world.recaps.values()} == {1}


def test_changed_recap_is_revision_two(server: SimpegServer, client: SimpegClient) -> None:
    nips = active_nips(server)[:3]
    client.upload_recaps("2026-11", [recap(n, late_days=2) for n in nips])
    # a late leave excused one of the late days of the first employee
    changed = [recap(nips[0], late_days=1)] + [recap(n, late_days=2) for n in nips[1:]]
    report = client.upload_recaps("2026-11", changed)
    assert (report.accepted, report.duplicate, report.revised) == (1, 2, 1)
    stored = server.world.recap("2026-11", nips[0])
    assert stored is not None and stored.revision == 2 and stored.record["tl"] == [1, 0, 0, 0]
    assert len(server.world.recaps) == 3


def test_rejections_are_reported_with_reasons(server: SimpegServer,
                                              client: SimpegClient) -> None:
    ok, refused = active_nips(server)[:2]
    inactive = next(n for n, e in server.world.employees.items() if not e.active) \
        if any(not e.active for e in server.world.employees.values()) else None
    if inactive is None:
        inactive = active_nips(server)[2]
        with server.lock:
            server.world.employees[inactive].active = False
    server.set_faults(reject_nips={refused: "NIP dalam proses mutasi"})
    report = client.upload_recaps("2026-11", [recap(ok), recap(refused), recap(inactive),
                                              recap("199901012020011999")])
    assert report.accepted == 1
    reasons = dict(report.rejected)
    assert reasons[refused] == "NIP dalam proses mutasi"
    assert "inactive employee" in reasons[inactive]
    assert "unknown NIP" in reasons["199901012020011999"]
    future = client.upload_recaps("2027-01", [recap(ok, "2027-01", late_days=0)])
    assert "in the future" in dict(future.rejected)[ok]


def test_500_after_store_retry_is_a_duplicate(server: SimpegServer,
                                              client: SimpegClient) -> None:
    nips = active_nips(server)[:4]
    server.set_faults(fail_after_store=1)
    report = client.upload_recaps("2026-11", [recap(n) for n in nips])
    assert report == UploadReport(accepted=0, duplicate=4, rejected=(), revised=0, batches=1)
    assert server.statuses("/api/v1/rekap-kehadiran") == [500, 200]
    assert len(server.world.recaps) == 4
    assert {s.revision for s in server.world.recaps.values()} == {1}


def test_dropped_upload_is_retried_with_the_same_key(server: SimpegServer,
                                                     client: SimpegClient) -> None:
    client.units()
    server.set_faults(drop_next=1)
    report = client.upload_recaps("2026-11", [recap(active_nips(server)[0])])
    assert report.accepted == 1 and len(server.world.recaps) == 1


def test_the_idempotency_key_replays_a_batch(server: SimpegServer,
                                             client: SimpegClient) -> None:
    nips = active_nips(server)[:2]
    records = [recap(n) for n in nips]
    client.upload_recaps("2026-11", records)
    with server.lock:
        del server.world.recaps[("2026-11", nips[0])]  # were the batch processed again, it
    report = client.upload_recaps("2026-11", records)  # would be stored again
    assert report.duplicate == 2 and ("2026-11", nips[0]) not in server.world.recaps
    rows = [recap_record(r) for r in records]
    assert idempotency_key("2026-11", rows) == idempotency_key("2026-11", rows[::-1])
    changed = [recap_record(recap(nips[0], late_days=2)), rows[1]]
    assert idempotency_key("2026-11", changed) != idempotency_key("2026-11", rows)


def test_batches(server: SimpegServer, client: SimpegClient) -> None:
    records = [recap(n) for n in active_nips(server)[:25]]
    report = client.upload_recaps("2026-11", records, batch_size=10)
    assert (report.accepted, report.batches) == (25, 3)
    assert len(server.statuses("/api/v1/rekap-kehadiran")) == 3


def test_upload_arguments_checked_before_sending(server: SimpegServer,
                                                 client: SimpegClient) -> None:
    nip = active_nips(server)[0]
    with pytest.raises(ValueError, match="YYYY-MM"):
        client.upload_recaps("2026-13", [])
    with pytest.raises(ValueError, match="period 2026-10"):
        client.upload_recaps("2026-11", [recap(nip, "2026-10")])
    with pytest.raises(ValueError, match="same NIP"):
        client.upload_recaps("2026-11", [recap(nip), replace(recap(nip), present_days=19)])
    assert server.statuses("/api/v1/rekap-kehadiran") == []
