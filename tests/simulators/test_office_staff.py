"""The office staff simulator: a bell-shaped morning of check-ins on emulated machines, each
person once, refused punches tried again."""

from __future__ import annotations

import statistics

from firmware_sim.zk.machine import ZkMachine
from firmware_sim.zk.profiles import MachineConfig
from firmware_sim.zk.seed import seed_machine
from simulators.office import CHECK_IN, CHECK_OUT, OfficeStaff, plan_day


def machines() -> list[ZkMachine]:
    ms = [ZkMachine(MachineConfig(serial=f"KPOS{k}", profile=p)) for k, p in
          enumerate(("colour", "older"))]
    for k, m in enumerate(ms):
        seed_machine(m, users=200, punches=0, seed=k)
    return ms


def test_a_morning_plan_has_each_present_person_once_peaking_early() -> None:
    ms = machines()
    plan = plan_day(ms, window_s=600, seed=3)
    people = [(p.serial, p.user_id) for p in plan]
    assert len(people) == len(set(people))  # one check-in each
    assert 0.9 * 400 <= len(plan) <= 400  # a few absent
    assert all(p.state == CHECK_IN and 0 <= p.at_s <= 600 for p in plan)
    assert 180 <= statistics.median(p.at_s for p in plan) <= 300  # the peak before the bell
    assert plan == plan_day(ms, window_s=600, seed=3)  # reproducible
    both = plan_day(ms, window_s=600, departures=True, seed=3)
    assert sum(p.state == CHECK_OUT for p in both) == len(plan)
    assert all(p.at_s >= 600 for p in both if p.state == CHECK_OUT)


def test_punches_land_on_their_machines_and_refused_ones_are_retried() -> None:
    ms = machines()
    plan = plan_day(ms, window_s=100, seed=1)
    staff = OfficeStaff(ms, plan, retry_s=5)
    ms[1].enabled = False  # being cleared: refuses punches for now
    staff.step(100)
    assert staff.made == sum(p.serial == ms[0].serial for p in plan)
    assert staff.retried > 0 and staff.pending == staff.retried
    ms[1].enabled = True
    staff.step(105)
    assert staff.pending == 0 and staff.made == len(plan)
    stored = {(m.serial, r.user_id) for m in ms for r in m.attendance}
    assert stored == {(p.serial, p.user_id) for p in plan}
