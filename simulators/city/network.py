"""The demo city, generated here: a small signalised grid with Indonesian traffic, as SUMO files.

Owns the street plan (nodes and edges as plain XML, built by SUMO's netconvert from the
eclipse-sumo wheel, left-hand traffic as in Indonesia), the vehicle types and the demand
(mostly motorcycles, a morning peak following ``HOURLY_FLOW_FACTOR``), routed by duarouter, and
the ``.sumocfg`` tying them together. Deterministic for a seed. It must not run the simulation.

The city (``DemoCity`` defaults): two parallel streets west–east, Jalan Jenderal Sudirman (the
main corridor, two lanes each way, 3.5 m) and Jalan Diponegoro (one lane each way, 3.25 m),
crossed by three north–south streets (one lane each way, 3.0–3.25 m); six signalised
intersections J1–J6, J1–J3 along the corridor. Simulation time is local time of day (WIB):
the run begins at 06:00 (21,600 s) and crosses the 07:00 peak.
"""

from __future__ import annotations

import random
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from firmware_sim.simple_intersection import HOURLY_FLOW_FACTOR
from simulators.traffic.errors import ScenarioError
from simulators.traffic.scenario import sumo_binary

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class VehicleType:
    """A SUMO vType and its share of the traffic."""

    id: str
    vclass: str
    share: float
    length_m: float
    min_gap_m: float
    accel: float  # m/s²
    decel: float  # m/s²
    max_speed_ms: float
    sigma: float = 0.5
    speed_factor: str = "normc(1.0,0.1,0.2,2.0)"


# Indonesian urban traffic: roughly seven in ten vehicles are motorcycles (Dishub counts and
# PKJI 2023's typical compositions), then cars; a few buses (angkot/BRT) and trucks.
VEHICLE_TYPES: tuple[VehicleType, ...] = (
    VehicleType("motor", "motorcycle", 0.70, 2.0, 1.0, 3.0, 6.0, 16.7, 0.6,
                "normc(1.1,0.15,0.5,1.6)"),
    VehicleType("mobil", "passenger", 0.22, 4.3, 2.5, 2.6, 4.5, 27.8),
    VehicleType("bus", "bus", 0.03, 12.0, 3.0, 1.2, 4.0, 22.2, 0.4),
    VehicleType("truk", "truck", 0.05, 7.5, 3.0, 1.1, 4.0, 22.2, 0.4),
)


@dataclass(frozen=True)
class Street:
    name: str
    lanes: int
    lane_width_m: float
    speed_ms: float
    peak_entry_vph: float  # vehicles per hour entering at each end at the 07:00 peak


@dataclass(frozen=True)
class DemoCity:
    """What the generator builds: rows of west–east streets crossed by north–south streets."""

    rows: tuple[Street, ...] = (
        Street("Jl. Jenderal Sudirman", 2, 3.5, 13.89, 720.0),
        Street("Jl. Diponegoro", 1, 3.25, 13.89, 270.0),
    )
    columns: tuple[Street, ...] = (
        Street("Jl. Ahmad Yani", 1, 3.25, 11.11, 200.0),
        Street("Jl. Gajah Mada", 1, 3.0, 11.11, 170.0),
        Street("Jl. Pahlawan", 1, 3.25, 11.11, 200.0),
    )
    block_x_m: float = 300.0
    block_y_m: float = 250.0
    approach_m: float = 250.0  # from the city's edge to the first intersection
    begin_hour: int = 6
    duration_s: float = 2 * SECONDS_PER_HOUR
    demand_scale: float = 1.0
    green_s: int = 30  # the network's own fixed-time program (the controllers' local plan)
    yellow_s: int = 3  # PKJI / Indonesian practice
    all_red_s: int = 1
    vehicle_types: tuple[VehicleType, ...] = field(default=VEHICLE_TYPES)

    @property
    def begin_s(self) -> float:
        return float(self.begin_hour * SECONDS_PER_HOUR)

    @property
    def end_s(self) -> float:
        return self.begin_s + self.duration_s

    def junction_id(self, row: int, col: int) -> str:
        return f"J{row * len(self.columns) + col + 1}"

    @property
    def corridor(self) -> tuple[str, ...]:
        """The main corridor's intersections, west to east (row 0)."""
        return tuple(self.junction_id(0, c) for c in range(len(self.columns)))


@dataclass(frozen=True)
class CityFiles:
    """What ``write_demo_city`` wrote."""

    directory: Path
    sumocfg: Path
    net: Path
    routes: Path
    city: DemoCity
    names: dict[str, str]  # junction id → intersection name
    vehicles: int

    @property
    def corridor(self) -> tuple[str, ...]:
        return self.city.corridor


def _short(street: str) -> str:
    return street.removeprefix("Jl. ").removeprefix("Jenderal ")


_GENERATED_HEADER = re.compile(r"<!-- generated on .*?-->\s*", re.S)


def _strip_header(path: Path) -> None:
    """SUMO tools stamp the date and absolute paths into a comment; the files must not vary."""
    text = path.read_text(encoding="utf-8")
    path.write_text(_GENERATED_HEADER.sub("", text, count=1), encoding="utf-8")


def _bin(tool: str) -> str:
    return str(Path(sumo_binary()).with_name(tool))


def _run(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except OSError as e:
        raise ScenarioError(f"{what}: cannot run {cmd[0]}: {e}") from e
    if done.returncode != 0:
        raise ScenarioError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def _plan(city: DemoCity) -> tuple[list[str], list[str], dict[str, str], list[tuple[str, str, float]]]:
    """Node rows, edge rows, intersection names and the city's gates (entry, exit, peak veh/h)."""
    nodes: list[str] = []
    edges: list[str] = []
    names: dict[str, str] = {}
    gates: list[tuple[str, str, float]] = []
    n_rows, n_cols = len(city.rows), len(city.columns)
    xs = [c * city.block_x_m for c in range(n_cols)]
    ys = [r * city.block_y_m for r in range(n_rows)]
    for r, row in enumerate(city.rows):
        for c, col in enumerate(city.columns):
            j = city.junction_id(r, c)
            names[j] = f"Simpang {_short(row.name)} – {_short(col.name)}"
            nodes.append(f'<node id="{j}" x="{xs[c]:.1f}" y="{ys[r]:.1f}" type="traffic_light"/>')

    def road(a: str, b: str, street: Street) -> None:
        for u, v in ((a, b), (b, a)):
            edges.append(f'<edge id="{u}_{v}" from="{u}" to="{v}" numLanes="{street.lanes}" '
                         f'width="{street.lane_width_m:.2f}" speed="{street.speed_ms:.2f}" '
                         f'name={quoteattr(street.name)}/>')

    far = city.approach_m
    for r, row in enumerate(city.rows):
        west, east = f"W{r + 1}", f"E{r + 1}"
        nodes.append(f'<node id="{west}" x="{-far:.1f}" y="{ys[r]:.1f}" type="priority"/>')
        nodes.append(f'<node id="{east}" x="{xs[-1] + far:.1f}" y="{ys[r]:.1f}" '
                     'type="priority"/>')
        chain = [west, *(city.junction_id(r, c) for c in range(n_cols)), east]
        for a, b in zip(chain, chain[1:], strict=False):
            road(a, b, row)
        gates += [(f"{west}_{chain[1]}", f"{chain[1]}_{west}", row.peak_entry_vph),
                  (f"{east}_{chain[-2]}", f"{chain[-2]}_{east}", row.peak_entry_vph)]
    for c, col in enumerate(city.columns):
        south, north = f"S{c + 1}", f"N{c + 1}"
        nodes.append(f'<node id="{south}" x="{xs[c]:.1f}" y="{-far:.1f}" type="priority"/>')
        nodes.append(f'<node id="{north}" x="{xs[c]:.1f}" y="{ys[-1] + far:.1f}" '
                     'type="priority"/>')
        chain = [south, *(city.junction_id(r, c) for r in range(n_rows)), north]
        for a, b in zip(chain, chain[1:], strict=False):
            road(a, b, col)
        gates += [(f"{south}_{chain[1]}", f"{chain[1]}_{south}", col.peak_entry_vph),
                  (f"{north}_{chain[-2]}", f"{chain[-2]}_{north}", col.peak_entry_vph)]
    return nodes, edges, names, gates


def _vtype_rows(city: DemoCity) -> list[str]:
    rows = []
    for t in city.vehicle_types:
        rows.append(f'  <vType id="{t.id}" vClass="{t.vclass}" length="{t.length_m}" '
                    f'minGap="{t.min_gap_m}" accel="{t.accel}" decel="{t.decel}" '
                    f'maxSpeed="{t.max_speed_ms}" sigma="{t.sigma}" '
                    f'speedFactor="{t.speed_factor}"/>')
    return rows


def _trips(city: DemoCity, gates: list[tuple[str, str, float]], seed: int) -> list[str]:
    """Trips from every gate to another, Poisson in time following the hourly profile."""
    rng = random.Random(seed)
    types = [t.id for t in city.vehicle_types]
    type_w = [t.share for t in city.vehicle_types]
    out_w = [vph for _, _, vph in gates]  # busier streets attract more trips too
    trips: list[tuple[float, str, str, str]] = []
    begin, end = city.begin_s, city.end_s
    peak = max(HOURLY_FLOW_FACTOR)
    for g, (entry, _, vph) in enumerate(gates):
        top_per_s = vph * city.demand_scale * peak / SECONDS_PER_HOUR
        if top_per_s <= 0:
            continue
        t = begin
        while True:
            t += rng.expovariate(top_per_s)
            if t >= end:
                break
            hour = int(t // SECONDS_PER_HOUR) % 24
            if rng.random() * peak > HOURLY_FLOW_FACTOR[hour]:
                continue  # thinning: the rate follows the hour of the day
            weights = [0.0 if k == g else w for k, w in enumerate(out_w)]
            dest = rng.choices(range(len(gates)), weights)[0]
            vtype = rng.choices(types, type_w)[0]
            trips.append((t, entry, gates[dest][1], vtype))
    trips.sort()
    return [f'  <trip id="v{k}" type="{vtype}" depart="{t:.2f}" from="{a}" to="{b}" '
            'departLane="best" departSpeed="max"/>'
            for k, (t, a, b, vtype) in enumerate(trips)]


def write_demo_city(directory: str | Path, *, seed: int = 1, city: DemoCity | None = None
                    ) -> CityFiles:
    """Write the demo city (``city.net.xml``, ``city.rou.xml``, ``city.sumocfg``) into
    ``directory``; the same seed writes the same files."""
    city = city or DemoCity()
    out = Path(directory).resolve()
    out.mkdir(parents=True, exist_ok=True)
    nodes, edges, names, gates = _plan(city)
    nod = out / "city.nod.xml"
    edg = out / "city.edg.xml"
    nod.write_text("<nodes>\n  " + "\n  ".join(nodes) + "\n</nodes>\n", encoding="utf-8")
    edg.write_text("<edges>\n  " + "\n  ".join(edges) + "\n</edges>\n", encoding="utf-8")
    net = out / "city.net.xml"
    _run([_bin("netconvert"), "--node-files", str(nod), "--edge-files", str(edg),
          "--output-file", str(net), "--lefthand", "true",  # Indonesia drives on the left
          "--no-turnarounds", "true", "--tls.default-type", "static",
          "--tls.green.time", str(city.green_s), "--tls.yellow.time", str(city.yellow_s),
          "--tls.allred.time", str(city.all_red_s), "--seed", str(seed),
          "--no-warnings", "true"], "netconvert")
    _strip_header(net)
    trips = out / "city.trips.xml"
    trips.write_text("<routes>\n" + "\n".join(_vtype_rows(city) + _trips(city, gates, seed))
                     + "\n</routes>\n", encoding="utf-8")
    routes = out / "city.rou.xml"
    _run([_bin("duarouter"), "--net-file", str(net), "--route-files", str(trips),
          "--output-file", str(routes), "--seed", str(seed), "--no-step-log", "true",
          "--no-warnings", "true", "--write-license", "false"], "duarouter")
    (out / "city.rou.alt.xml").unlink(missing_ok=True)
    _strip_header(routes)
    sumocfg = out / "city.sumocfg"
    sumocfg.write_text(
        "<configuration>\n"
        "  <!-- Kota Pintar demo city; simulation time is local time of day (WIB). -->\n"
        "  <input>\n"
        f'    <net-file value="{net.name}"/>\n'
        f'    <route-files value="{routes.name}"/>\n'
        "  </input>\n"
        "  <time>\n"
        f'    <begin value="{city.begin_s:g}"/>\n'
        f'    <end value="{city.end_s:g}"/>\n'
        '    <step-length value="1"/>\n'
        "  </time>\n"
        "  <random_number>\n"
        f'    <seed value="{seed}"/>\n'
        "  </random_number>\n"
        "</configuration>\n", encoding="utf-8")
    count = routes.read_text(encoding="utf-8").count("<vehicle ")
    return CityFiles(out, sumocfg, net, routes, city, names, count)



def expected_vehicles(city: DemoCity) -> float:
    """Mean number of trips the demand of ``city`` generates (for sanity checks)."""
    total = 0.0
    t = city.begin_s
    while t < city.end_s:
        step = min(SECONDS_PER_HOUR - t % SECONDS_PER_HOUR, city.end_s - t)
        factor = HOURLY_FLOW_FACTOR[int(t // SECONDS_PER_HOUR) % 24]
        for street in (*city.rows, *city.columns):  # two gates per street
            total += 2 * street.peak_entry_vph * city.demand_scale / SECONDS_PER_HOUR * factor * step
        t += step
    return total
