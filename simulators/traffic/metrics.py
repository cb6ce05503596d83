"""Trip metrics of one run, with average delay as RESCO defines it (Ault & Sharon, NeurIPS 2021).

Owns reading SUMO tripinfo output and route files. Delay per vehicle is SUMO's
`timeLoss + departDelay`; a vehicle that never entered the network counts `end − depart`;
the sum is divided over every vehicle of the route files due to depart within the run
(begin ≤ depart < end; SUMO never loads a vehicle due before the begin).

Which vehicles exist: SUMO run with `--tripinfo-output.write-unfinished` and
`.write-undeparted` writes one record per vehicle it loaded (arrived, still running, or never
inserted with `departDelay = end − depart`), which covers flows of every kind, including
`probability` flows whose vehicles only exist once SUMO draws them. Route files are read as
well: explicit `<vehicle>`/`<trip>` elements and deterministic `<flow>`s (`number`, `period`,
`vehsPerHour`) expanded as SUMO names them (`flowid.k`); any of those due before the end and
missing from the tripinfo (a tripinfo written without the undeparted option) counts
`end − depart`. Must not run SUMO.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from simulators.traffic.errors import ScenarioError


@dataclass(frozen=True)
class TripMetrics:
    vehicles: int  # all vehicles of the scenario due before the end
    arrived: int  # throughput
    never_inserted: int
    avg_delay_s: float  # RESCO: (timeLoss + departDelay; never inserted: end − depart) / vehicles
    avg_trip_time_s: float  # duration of inserted vehicles (unfinished: up to the end)
    avg_waiting_time_s: float  # over inserted vehicles
    avg_stops: float  # waitingCount over inserted vehicles

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _flow_departs(flow: ET.Element, end_s: float) -> list[float]:
    """Departure times of a deterministic flow, as SUMO spaces them; [] for probability flows."""
    begin = float(flow.get("begin", "0"))
    f_end = float(flow.get("end", "3600"))
    if flow.get("period") is not None and not flow.get("period", "").startswith("exp"):
        period = float(flow.get("period", "0"))
    elif flow.get("vehsPerHour") is not None:
        vph = float(flow.get("vehsPerHour", "0"))
        period = 3600.0 / vph if vph > 0 else math.inf
    elif flow.get("number") is not None:
        n = int(float(flow.get("number", "0")))
        period = (f_end - begin) / n if n > 0 else math.inf
        return [t for k in range(n) if (t := round(begin + k * period, 3)) < end_s]
    else:
        return []  # probability= or poisson period: random, known only from SUMO's records
    if not math.isfinite(period) or period <= 0:
        return []
    number = float(flow.get("number")) if flow.get("number") is not None else math.inf
    out: list[float] = []
    while len(out) < number:
        # SUMO keeps time in milliseconds: begin + k·period, rounded, never accumulated.
        t = round(begin + len(out) * period, 3)
        if t >= min(f_end, end_s):
            break
        out.append(t)
    return out


def route_file_departures(route_files: list[Path] | tuple[Path, ...], end_s: float,
                          begin_s: float = 0.0) -> dict[str, float]:
    """Vehicle id → planned depart (s) of every vehicle the route files name explicitly and
    that is due within [begin, end)."""
    departs: dict[str, float] = {}
    for path in route_files:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as e:
            raise ScenarioError(f"{path}: cannot read route file ({e})") from e
        for el in root.iter():
            if el.tag in ("vehicle", "trip"):
                try:
                    depart = float(el.get("depart", "nan"))
                except ValueError:
                    continue  # "triggered", "now", ...: no planned time to count from
                if begin_s <= depart < end_s:
                    departs[el.get("id", "")] = depart
            elif el.tag == "flow":
                for k, t in enumerate(_flow_departs(el, end_s)):
                    if t >= begin_s:
                        departs[f"{el.get('id')}.{k}"] = t
    return departs


def trip_metrics(tripinfo: Path, route_files: list[Path] | tuple[Path, ...],
                 end_s: float, begin_s: float = 0.0) -> TripMetrics:
    try:
        root = ET.parse(tripinfo).getroot()
    except (ET.ParseError, OSError) as e:
        raise ScenarioError(f"{tripinfo}: cannot read tripinfo output ({e})") from e
    delay = trip = waiting = stops = 0.0
    inserted = arrived = undeparted = 0
    seen: set[str] = set()
    for rec in root.iter("tripinfo"):
        seen.add(rec.get("id", ""))
        depart_delay = float(rec.get("departDelay", "0"))
        if float(rec.get("depart", "-1")) < 0:
            undeparted += 1  # written by write-undeparted: departDelay = end − depart
            delay += depart_delay
            continue
        inserted += 1
        delay += float(rec.get("timeLoss", "0")) + depart_delay
        trip += float(rec.get("duration", "0"))
        waiting += float(rec.get("waitingTime", "0"))
        stops += float(rec.get("waitingCount", "0"))
        if float(rec.get("arrival", "-1")) >= 0 and rec.get("vaporized") in (None, ""):
            arrived += 1
    missing = {vid: d for vid, d in route_file_departures(route_files, end_s, begin_s).items()
               if vid not in seen}
    delay += sum(end_s - d for d in missing.values())
    vehicles = inserted + undeparted + len(missing)
    per = 1.0 / vehicles if vehicles else 0.0
    ins = 1.0 / inserted if inserted else 0.0
    return TripMetrics(vehicles, arrived, undeparted + len(missing), delay * per, trip * ins,
                       waiting * ins, stops * ins)
