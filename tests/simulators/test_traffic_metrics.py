"""RESCO average delay on a hand-made tripinfo and route file (no SUMO needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.traffic.errors import ScenarioError
from simulators.traffic.metrics import route_file_departures, trip_metrics

END_S = 100.0

ROUTES = """<routes>
  <route id="r" edges="a b"/>
  <vehicle id="arrived" route="r" depart="0"/>
  <vehicle id="running" route="r" depart="10"/>
  <vehicle id="waiting" route="r" depart="50"/>
  <vehicle id="lost" route="r" depart="90"/>
  <trip id="later" from="a" to="b" depart="150"/>
  <flow id="f" route="r" begin="0" end="100" period="40"/>
  <flow id="p" route="r" begin="0" end="100" probability="0.1"/>
</routes>
"""

# arrived: timeLoss 10 + departDelay 2; running (unfinished): 30 + 0; waiting: written
# undeparted with departDelay = end − depart = 50; f.0 arrived 5 + 1; f.1 running 8 + 0;
# p.0 (a probability flow vehicle, known only from SUMO's record) 4 + 0.
TRIPINFO = """<tripinfos>
  <tripinfo id="arrived" depart="2.00" departDelay="2.00" arrival="40.00" duration="38.00"
    waitingTime="6.00" waitingCount="1" timeLoss="10.00"/>
  <tripinfo id="running" depart="10.00" departDelay="0.00" arrival="-1.00" duration="90.00"
    waitingTime="20.00" waitingCount="3" timeLoss="30.00" vaporized="end"/>
  <tripinfo id="waiting" depart="-1" departDelay="50.00" arrival="-1.00" duration="0.00"
    waitingTime="0.00" waitingCount="0" timeLoss="0.00" vaporized="end"/>
  <tripinfo id="f.0" depart="1.00" departDelay="1.00" arrival="30.00" duration="29.00"
    waitingTime="2.00" waitingCount="1" timeLoss="5.00"/>
  <tripinfo id="f.1" depart="40.00" departDelay="0.00" arrival="-1.00" duration="60.00"
    waitingTime="4.00" waitingCount="2" timeLoss="8.00" vaporized="end"/>
  <tripinfo id="p.0" depart="7.00" departDelay="0.00" arrival="35.00" duration="28.00"
    waitingTime="0.00" waitingCount="0" timeLoss="4.00"/>
</tripinfos>
"""


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "r.rou.xml").write_text(ROUTES)
    (tmp_path / "t.xml").write_text(TRIPINFO)
    return tmp_path / "t.xml", tmp_path / "r.rou.xml"


def test_route_file_vehicles_due_before_the_end(files: tuple[Path, Path]) -> None:
    departs = route_file_departures([files[1]], END_S)
    # f departs at 0, 40, 80 (period 40); "later" is after the end; "p" cannot be expanded.
    assert departs == {"arrived": 0.0, "running": 10.0, "waiting": 50.0, "lost": 90.0,
                       "f.0": 0.0, "f.1": 40.0, "f.2": 80.0}
    # A scenario that begins later never loads what was due before its begin.
    assert set(route_file_departures([files[1]], END_S, begin_s=45.0)) == {"waiting", "lost",
                                                                            "f.2"}


def test_resco_delay_counts_never_inserted_vehicles(files: tuple[Path, Path]) -> None:
    m = trip_metrics(files[0], [files[1]], END_S)
    # Never inserted: "waiting" (SUMO's record, 50), "lost" and "f.2" (absent: end − depart).
    delays = [12, 30, 50, 6, 8, 4, END_S - 90, END_S - 80]
    assert m.vehicles == 8
    assert m.never_inserted == 3
    assert m.avg_delay_s == pytest.approx(sum(delays) / 8)
    assert m.arrived == 3  # arrived, f.0, p.0
    inserted = 5
    assert m.avg_trip_time_s == pytest.approx((38 + 90 + 29 + 60 + 28) / inserted)
    assert m.avg_waiting_time_s == pytest.approx((6 + 20 + 2 + 4 + 0) / inserted)
    assert m.avg_stops == pytest.approx((1 + 3 + 1 + 2 + 0) / inserted)


def test_unreadable_tripinfo_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "t.xml").write_text("<tripinfos><tripinfo")
    with pytest.raises(ScenarioError, match="tripinfo"):
        trip_metrics(tmp_path / "t.xml", [], END_S)
