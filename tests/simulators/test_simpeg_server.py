"""The SIMPEG emulator over real HTTP on loopback: auth, paging, the recap upload's
accepted/duplicate/revision/rejected rules, idempotency keys, faults, the sample world and the
`kota sim simpeg` command."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from controlroom.attendance.nip import parse_nip
from kota.sim_simpeg import cmd_sim_simpeg, parse_faults
from simulators.simpeg import (
    SKPDS,
    Employee,
    SimpegServer,
    SimpegServerError,
    SimpegWorld,
    Unit,
    nip_problem,
    sample_world,
)

TODAY = date(2026, 12, 3)
CREDS = {"grant_type": "client_credentials", "client_id": "kota-pintar",
         "client_secret": "rahasia-simpeg"}
NIP_A = "198503122010011001"
NIP_B = "199002202015032002"
NIP_OLD = "196701011990031003"


def small_world() -> SimpegWorld:
    world = SimpegWorld(today=TODAY)
    world.add_unit(Unit("dishub", "Dinas Perhubungan", None, "dishub"))
    world.add_unit(Unit("dishub.01", "Bidang Lalu Lintas", "dishub", "dishub"))
    world.add_employee(Employee(NIP_A, "Agus Santoso, S.T.", "dishub.01", "Analis Lalu Lintas",
                                updated_at=datetime(2026, 11, 1, tzinfo=UTC)))
    world.add_employee(Employee(NIP_B, "Siti Rahmawati", "dishub", "Pengelola Keuangan",
                                updated_at=datetime(2026, 11, 20, tzinfo=UTC)))
    world.add_employee(Employee(NIP_OLD, "Slamet Wibowo", "dishub", "Pengadministrasi "
                                "Perkantoran", active=False,
                                updated_at=datetime(2026, 10, 1, tzinfo=UTC)))
    return world


@pytest.fixture(scope="module")
def running() -> Iterator[SimpegServer]:
    with SimpegServer() as s:
        yield s


@pytest.fixture
def server(running: SimpegServer) -> SimpegServer:
    running.reset(small_world())  # one server for the module, a fresh world for each test
    return running


@pytest.fixture
def http(server: SimpegServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        token = client.post("/oauth/token", data=CREDS).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def record(nip: str = NIP_A, period: str = "2026-11", **changes: Any) -> dict[str, Any]:
    rec = {"nip": nip, "periode": period, "hari_kerja": 21, "hadir": 20, "tl": [2, 1, 0, 0],
           "psw": [1, 0, 0, 0], "absen": {"TK": 1}, "potongan_persen": 5.5,
           "potongan_sebelum_batas_persen": 5.5, "versi_aturan": "kota-demo@2026.1",
           "rincian": [{"tanggal": "2026-11-03", "kode": "TL2", "persen": 1.0,
                        "keterangan": "Terlambat 35 menit (masuk 08:05:12, jadwal 07:30)"}]}
    rec.update(changes)
    return rec


def upload(http: httpx.Client, key: str, records: list[dict[str, Any]],
           period: str = "2026-11") -> httpx.Response:
    return http.post("/api/v1/rekap-kehadiran", json={"periode": period, "records": records},
                     headers={"Idempotency-Key": key})


# --------------------------------------------------------------------------- auth


def test_token_with_form_or_basic_credentials(server: SimpegServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.post("/oauth/token", data=CREDS)
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["access_token"]
        basic = c.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=("kota-pintar", "rahasia-simpeg"))
        assert basic.status_code == 200


def test_wrong_credentials_and_grant_refused(server: SimpegServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.post("/oauth/token", data={**CREDS, "client_secret": "salah"})
        assert r.status_code == 401 and r.json() == {"error": "invalid_client"}
        r = c.post("/oauth/token", data={**CREDS, "grant_type": "password"})
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_api_needs_a_valid_token(server: SimpegServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            r = c.get("/api/v1/unor", headers=headers)
            assert r.status_code == 401
            assert r.json() == {"error": "invalid_token"}
            assert "invalid_token" in r.headers["WWW-Authenticate"]


def test_tokens_expire_by_time_by_uses_and_by_revocation(server: SimpegServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        server.set_faults(token_lifetime_s=0.05)
        short = {"Authorization": "Bearer " + c.post("/oauth/token", data=CREDS)
                 .json()["access_token"]}
        assert c.get("/api/v1/unor", headers=short).status_code == 200
        time.sleep(0.1)
        assert c.get("/api/v1/unor", headers=short).status_code == 401
        server.set_faults(token_lifetime_s=3600, token_max_uses=2)
        used = {"Authorization": "Bearer " + c.post("/oauth/token", data=CREDS)
                .json()["access_token"]}
        assert [c.get("/api/v1/unor", headers=used).status_code for _ in range(3)] == [
            200, 200, 401]
        server.set_faults(token_max_uses=None)
        fresh = {"Authorization": "Bearer " + c.post("/oauth/token", data=CREDS)
                 .json()["access_token"]}
        server.revoke_tokens()
        assert c.get("/api/v1/unor", headers=fresh).status_code == 401


# --------------------------------------------------------------------------- reading


def test_units_and_employees_pages(server: SimpegServer, http: httpx.Client) -> None:
    units = http.get("/api/v1/unor").json()
    assert units["total"] == 2
    assert {"id": "dishub", "nama": "Dinas Perhubungan", "induk_id": None,
            "skpd_id": "dishub"} in units["data"]
    p1 = http.get("/api/v1/pns", params={"page": 1, "per_page": 2}).json()
    p2 = http.get("/api/v1/pns", params={"page": 2, "per_page": 2}).json()
    assert (p1["total"], p1["page"], p1["per_page"]) == (3, 1, 2)
    assert [e["nip"] for e in p1["data"] + p2["data"]] == sorted([NIP_A, NIP_B, NIP_OLD])
    e = next(e for e in p1["data"] if e["nip"] == NIP_A)
    assert set(e) == {"nip", "nama", "unor_id", "jabatan", "kelompok_jadwal", "id_mesin",
                      "aktif", "updated_at"}
    beyond = http.get("/api/v1/pns", params={"page": 9, "per_page": 2}).json()
    assert beyond["data"] == [] and beyond["total"] == 3


def test_bad_paging_parameters(http: httpx.Client) -> None:
    for params in ({"page": 0}, {"per_page": 0}, {"per_page": 5000}, {"page": "x"}):
        r = http.get("/api/v1/unor", params=params)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_updated_since_filters(http: httpx.Client) -> None:
    r = http.get("/api/v1/pns", params={"updated_since": "2026-11-10T00:00:00+07:00"})
    assert [e["nip"] for e in r.json()["data"]] == [NIP_B]
    assert http.get("/api/v1/pns", params={"updated_since": "2026-11-10"}).status_code == 400


def test_data_utama(http: httpx.Client) -> None:
    r = http.get(f"/api/v1/pns/data-utama/{NIP_A}")
    assert r.status_code == 200 and r.json()["data"]["nama"] == "Agus Santoso, S.T."
    missing = http.get("/api/v1/pns/data-utama/199901012020011999")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_leave_overlapping_the_range(server: SimpegServer, http: httpx.Client) -> None:
    from simulators.simpeg import Leave
    with server.lock:
        server.world.add_leave(Leave("C1", NIP_A, "CT", date(2026, 10, 30), date(2026, 11, 2),
                                     "851/0001/DISHUB/2026"))
        server.world.add_leave(Leave("C2", NIP_B, "DL", date(2026, 12, 1), date(2026, 12, 1),
                                     "094/0002/DISHUB/2026", status="dibatalkan"))
    nov = http.get("/api/v1/cuti", params={"dari": "2026-11-01", "sampai": "2026-11-30"})
    assert [v["id"] for v in nov.json()["data"]] == ["C1"]
    both = http.get("/api/v1/cuti", params={"dari": "2026-11-02", "sampai": "2026-12-01"})
    assert [(v["id"], v["status"]) for v in both.json()["data"]] == [
        ("C1", "disetujui"), ("C2", "dibatalkan")]
    assert http.get("/api/v1/cuti", params={"dari": "2026-11-30",
                                            "sampai": "2026-11-01"}).status_code == 400


# --------------------------------------------------------------------------- recap upload


def test_upload_accept_duplicate_revision(server: SimpegServer, http: httpx.Client) -> None:
    r = upload(http, "k1", [record()])
    assert r.status_code == 200
    assert r.json() == {"periode": "2026-11",
                        "results": [{"nip": NIP_A, "status": "accepted", "revision": 1}]}
    again = upload(http, "k2", [record()]).json()["results"]
    assert again == [{"nip": NIP_A, "status": "duplicate", "revision": 1}]
    changed = record(hadir=21, absen={}, potongan_persen=4.5, potongan_sebelum_batas_persen=4.5)
    assert upload(http, "k3", [changed]).json()["results"] == [
        {"nip": NIP_A, "status": "accepted", "revision": 2}]
    stored = server.world.recap("2026-11", NIP_A)
    assert len(server.world.recaps) == 1
    assert stored is not None and stored.revision == 2 and stored.record["hadir"] == 21


def test_idempotency_key_replays_without_processing(server: SimpegServer,
                                                    http: httpx.Client) -> None:
    first = upload(http, "same-key", [record()])
    with server.lock:
        del server.world.recaps[("2026-11", NIP_A)]  # would be stored again if re-processed
    replay = upload(http, "same-key", [record()])
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert server.world.recaps == {}
    reused = upload(http, "same-key", [record(hadir=19)])
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    missing = http.post("/api/v1/rekap-kehadiran", json={"periode": "2026-11", "records": []})
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["detail"]


@pytest.mark.parametrize(("rec", "reason"), [
    (record("199901012020011999"), "unknown NIP"),
    (record(NIP_OLD), "inactive employee"),
    (record(tl=[1, 2, 3]), "malformed field tl"),
    (record(hadir="20"), "malformed field hadir"),
    (record(hadir=22), "malformed field hadir"),
    (record(potongan_persen=150), "malformed field potongan_persen"),
    (record(potongan_persen=9.0), "capped cut exceeds"),
    (record(extra=1), "malformed field extra"),
    (record(absen={"tk": 1}), "malformed field absen"),
    (record(periode="2026-10"), "not the upload's period"),
    (record(rincian=[{"tanggal": "2026-10-31", "kode": "TK", "persen": 3.0,
                      "keterangan": "x"}]), "rincian.0.tanggal"),
    (record(nip=12), "malformed field nip"),
])
def test_rejected_records_say_why(server: SimpegServer, http: httpx.Client,
                                  rec: dict[str, Any], reason: str) -> None:
    result = upload(http, f"k-{reason}", [rec, record()]).json()["results"]
    assert result[0]["status"] == "rejected" and reason in result[0]["reason"], result[0]
    assert result[1]["status"] == "accepted"  # one bad record does not spoil the batch
    assert list(server.world.recaps) == [("2026-11", NIP_A)]


def test_future_period_and_refused_nips(server: SimpegServer, http: httpx.Client) -> None:
    future = upload(http, "f", [record(period="2027-01")], period="2027-01").json()["results"]
    assert future[0]["status"] == "rejected" and "in the future" in future[0]["reason"]
    assert upload(http, "now", [record(period="2026-12", rincian=[])], period="2026-12").json()[
        "results"][0]["status"] == "accepted"  # the running month may be sent
    server.set_faults(reject_nips={NIP_B: "NIP sedang dalam proses mutasi"})
    refused = upload(http, "r", [record(NIP_B)]).json()["results"][0]
    assert refused == {"nip": NIP_B, "status": "rejected",
                       "reason": "NIP sedang dalam proses mutasi", "revision": 0}


def test_malformed_upload_bodies(http: httpx.Client) -> None:
    for body in ({"periode": "2026-13", "records": []}, {"periode": "2026-11"},
                 {"periode": "2026-11", "records": [], "x": 1}, [1, 2]):
        r = http.post("/api/v1/rekap-kehadiran", json=body, headers={"Idempotency-Key": "b"})
        assert r.status_code == 422, body
    r = http.post("/api/v1/rekap-kehadiran", content=b"{nope",
                  headers={"Idempotency-Key": "c", "Content-Type": "application/json"})
    assert r.status_code == 400


def test_fail_after_store_then_retry_finds_duplicate(server: SimpegServer,
                                                     http: httpx.Client) -> None:
    server.set_faults(fail_after_store=1)
    assert upload(http, "k", [record()]).status_code == 500
    assert server.world.recap("2026-11", NIP_A) is not None  # stored despite the 500
    retry = upload(http, "k", [record()])
    assert retry.json()["results"] == [{"nip": NIP_A, "status": "duplicate", "revision": 1}]
    assert "Idempotent-Replayed" not in retry.headers
    assert len(server.world.recaps) == 1


# --------------------------------------------------------------------------- faults


def test_fail_next_error_rate_and_status(server: SimpegServer, http: httpx.Client) -> None:
    server.set_faults(fail_next=2, fail_status=503)
    assert [http.get("/api/v1/unor").status_code for _ in range(3)] == [503, 503, 200]
    server.set_faults(error_rate=1.0, fail_status=500)
    assert http.get("/api/v1/unor").status_code == 500
    server.set_faults(error_rate=0.0)
    assert server.statuses("/api/v1/unor") == [503, 503, 200, 500]
    with pytest.raises(ValueError, match="unknown faults"):
        server.set_faults(explode=True)


def test_dropped_connection_and_delay(server: SimpegServer, http: httpx.Client) -> None:
    server.set_faults(drop_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/v1/unor")
    assert http.get("/api/v1/unor").status_code == 200
    server.set_faults(delay_s=0.3)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/v1/unor", timeout=0.1)


def test_corrupt_records_on_demand(server: SimpegServer, http: httpx.Client) -> None:
    from simulators.simpeg import MISSING
    server.set_faults(corrupt_employees={NIP_A: {"aktif": "ya", "jabatan": MISSING}})
    e = http.get(f"/api/v1/pns/data-utama/{NIP_A}").json()["data"]
    assert e["aktif"] == "ya" and "jabatan" not in e
    assert server.world.employees[NIP_A].active is True  # the world itself is untouched


def test_port_in_use_is_a_clear_error(server: SimpegServer) -> None:
    with pytest.raises(SimpegServerError, match="cannot listen"):
        SimpegServer(port=server.port).start()


# --------------------------------------------------------------------------- sample world


@pytest.mark.parametrize("seed", range(5))
def test_sample_world_nips_are_valid(seed: int) -> None:
    world = sample_world(employees=400, seed=seed, skpds=len(SKPDS), today=TODAY)
    assert len(world.employees) == 400
    for nip in world.employees:
        assert nip_problem(nip, today=TODAY) is None, nip
        parsed = parse_nip(nip, today=TODAY)  # the control room's own NIP rule agrees
        assert 1965 <= parsed.birth_date.year <= 2000
        assert parsed.cpns_start <= TODAY


def test_nip_rule_catches_each_broken_part() -> None:
    assert nip_problem("19850312201001100") == "a NIP is 18 digits"
    assert "birth date" in nip_problem("198502302010011001")
    assert "birth year" in nip_problem("196001012010011001")
    assert "CPNS start month" in nip_problem("198503122010131001")
    assert "before age 18" in nip_problem("198503122003011001")
    assert "future" in nip_problem("198503122030011001", today=TODAY)
    assert "gender" in nip_problem("198503122010013001")
    assert "sequence" in nip_problem("198503122010011000")


def test_sample_world_shape() -> None:
    world = sample_world(employees=300, seed=3, skpds=4, today=TODAY)
    assert world == sample_world(employees=300, seed=3, skpds=4, today=TODAY)  # reproducible
    skpds = {u.id: u.name for u in world.units.values() if u.skpd_id == u.id}
    assert set(skpds) == {"dishub", "bkpsdm", "rsud", "diskominfo"}
    assert skpds["dishub"] == "Dinas Perhubungan"
    for u in world.units.values():
        assert u.parent_id is None or world.units[u.parent_id].skpd_id == u.skpd_id
    groups = {(world.units[e.unit_id].skpd_id, e.schedule_group)
              for e in world.employees.values()}
    assert {g for s, g in groups if s in ("bkpsdm", "diskominfo")} == {"reguler"}
    assert ("rsud", "shift") in groups and ("dishub", "shift") in groups
    shift = sum(e.schedule_group == "shift" for e in world.employees.values())
    assert 0 < shift < len(world.employees) / 2  # most are reguler
    ids = [m for e in world.employees.values() for m in e.machine_ids]
    assert any(m.sn == "" and len(m.user_id) == 18 for m in ids)  # enrolled by NIP
    assert any(m.sn and m.user_id.isdigit() and len(m.user_id) <= 5 for m in ids)  # old
    assert all(", " not in e.name.split()[0] for e in world.employees.values())
    assert world.leave and all(v.nip in world.employees and v.first_day <= v.last_day
                               for v in world.leave.values())
    assert all(v.kind != "CM" or v.nip[14] == "2" for v in world.leave.values())


# --------------------------------------------------------------------------- CLI


def test_cli_parses_faults() -> None:
    f = parse_faults(["delay_s=0.5", "fail-next=3", f"reject_nip={NIP_A}", "error_rate=0.2"])
    assert (f.delay_s, f.fail_next, f.error_rate) == (0.5, 3, 0.2)
    assert NIP_A in f.reject_nips
    for bad in ("nope=1", "delay_s", "error_rate=2", "fail_next=x"):
        with pytest.raises(ValueError, match="--fault"):
            parse_faults([bad])


def test_cli_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    from kota.cli import main  # the real argument parser, as `kota sim simpeg` builds it
    assert main(["sim", "simpeg", "--employees", "30", "--duration", "0.2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["event"] == "ready" and lines[0]["employees"] == 30
    assert lines[0]["url"].startswith("http://127.0.0.1:")
    assert lines[-1]["event"] == "stopped"


def test_cli_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    args = argparse.Namespace(employees=-1, skpds=99, duration=0, client_id="", client_secret="x",
                              fault=["x=1"], host="127.0.0.1", port=0, seed=0, json=False)
    assert cmd_sim_simpeg(args) == 2
    err = capsys.readouterr().err
    assert "--employees" in err and "--skpds" in err and "--fault" in err


def test_recaps_keep_one_record_per_employee_and_period(server: SimpegServer,
                                                        http: httpx.Client) -> None:
    upload(http, "a", [record(), record(NIP_B)])
    upload(http, "b", [record(period="2026-10", rincian=[])], period="2026-10")
    assert sorted(server.world.recaps) == [("2026-10", NIP_A), ("2026-11", NIP_A),
                                           ("2026-11", NIP_B)]
