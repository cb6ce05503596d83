"""Hardware in the loop changes nothing by itself: the controllers' local plan (the network's
own program, run through Modbus emulators) delays traffic as SUMO's own program does.

Same demo city, same seed, 30 simulated minutes: the in-process `fixed` baseline of
``simulators.traffic`` and the city world with every light on its emulated controller. The
issue's bar for the HIL run against in-process control is 10 %.
"""

from __future__ import annotations

from pathlib import Path

from simulators.city import CityOptions, CityWorld, DemoCity, write_demo_city
from simulators.traffic.controllers import FixedController
from simulators.traffic.runner import run_scenario
from simulators.traffic.scenario import Scenario


def test_hil_fixed_plan_matches_in_process_fixed_within_ten_percent(sumo_ready: None,
                                                                    tmp_path: Path) -> None:
    files = write_demo_city(tmp_path / "city", seed=2, city=DemoCity(duration_s=1800.0))
    end_s = files.city.end_s
    native = run_scenario(Scenario.from_sumocfg(files.sumocfg), FixedController(), seed=2,
                          end_s=end_s, tripinfo=tmp_path / "native.xml").metrics
    world = CityWorld.of_city(files, CityOptions(seed=2, end_s=end_s))
    world.start()
    world.run()
    assert world.wait(30.0)
    hil = world.stop().metrics
    assert hil.vehicles == native.vehicles > 1000
    assert abs(hil.avg_delay_s - native.avg_delay_s) <= 0.10 * native.avg_delay_s, (
        hil.avg_delay_s, native.avg_delay_s)
    assert abs(hil.arrived - native.arrived) <= 0.05 * native.arrived
