"""The control room's payroll round against a real PostgreSQL and the SIMPEG emulator: which
months it recomputes, that it pushes only months that are over, and that a SIMPEG outage is
survived and reported once."""

from __future__ import annotations

from datetime import date

from controlroom.attendance.payroll import Payroll
from controlroom.attendance.payroll_job import PayrollJob, months_to_recompute
from controlroom.attendance.payroll_store import PayrollStore
from controlroom.attendance.rules import load_rules
from controlroom.attendance.simpeg import SimpegClient
from controlroom.attendance.sync import SimpegSync
from controlroom.storage.migrate import migrate
from controlroom.storage.store import open_pool
from simulators.simpeg import SimpegServer, sample_world


def test_months_to_recompute() -> None:
    assert months_to_recompute(date(2026, 12, 3), 10) == ["2026-11", "2026-12"]
    assert months_to_recompute(date(2026, 12, 11), 10) == ["2026-12"]
    assert months_to_recompute(date(2027, 1, 10), 10) == ["2026-12", "2027-01"]
    assert months_to_recompute(date(2027, 1, 1), 0) == ["2027-01"]


def test_a_round_pulls_recomputes_and_pushes_only_months_that_are_over(pg_url: str,
                                                                       caplog) -> None:
    today = date(2026, 12, 3)
    world = sample_world(employees=12, seed=2, skpds=2, today=today, leave_share=0)
    world.today = today
    migrate(pg_url)
    pool = open_pool(pg_url, 1, 4)
    payroll = Payroll(PayrollStore(pool), load_rules(), today=lambda: today)
    with SimpegServer(world, client_id="k", client_secret="s") as server, SimpegClient(
            server.url, "k", "s", timeout_s=2, retries=1, backoff_s=0.01) as client:
        job = PayrollJob(payroll, SimpegSync(client, payroll), interval_s=60,
                         today=lambda: today)
        out = job.run_once()
        assert out["months"] == ["2026-11", "2026-12"]
        active = sum(e.active for e in world.employees.values())
        assert {p for p, _ in server.world.recaps} == {"2026-11"}  # December is not over
        assert len(server.world.recaps) == active
        assert out["recomputed_2026-12"]["new"] == active * 31
        assert job.health()["simpeg"] == "ok"
        server.set_faults(fail_next=1000)
        job.run_once()
        job.run_once()
        assert job.health()["simpeg"] == "down"
        assert sum("SIMPEG sync failed" in r.message for r in caplog.records) == 1
        server.set_faults(fail_next=0)
        job.run_once()
        assert job.health()["simpeg"] == "ok"
    pool.close()
