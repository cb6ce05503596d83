"""`kota demo`: the closed loop on the project's demo city, on embedded defaults, nothing to install.

It is `kota sim city --generate` with the settings' embedded services: SUMO runs the demo city
(six intersections, mostly motorcycles, the morning from 06:00) at real speed, each light an
emulated controller on Modbus TCP; the embedded PostgreSQL ([database.embedded]) and the
embedded broker ([broker], as a `kota broker` process); the control room (`kota controlroom
run`, status page and API on [controlroom] http_host:http_port) computing adaptive plans; two
edge agents (`kota edge run`) polling the controllers and applying the plans; three offices'
attendance machines with their edge and an emulated SIMPEG; two PTZ cameras over simulated
approaches with a camera edge running the video detectors. Start and stop
order, readiness and clean-up are `kota.city`'s; this module only picks the demo's choices.
The city, the processes' settings files, the edges' state and the logs live in
<data_dir>/demo-city, next to the database, so that the edges' epochs keep growing with it.
"""

from __future__ import annotations

import logging
import sys

from kota.settings import Settings

log = logging.getLogger("kota.demo")

DEMO_SEED = 1
DEMO_EDGES = 2
DEMO_TIME_SCALE = 1.0  # adaptive control measures flows per real second: the demo is faithful
DEMO_OFFICES = 3  # attendance machines, one per office, and an office edge agent
DEMO_CAMERAS = 2  # PTZ cameras over simulated approaches, and a camera edge agent


def run_demo(settings: Settings, *, duration_s: float | None = None, fresh: bool = False) -> int:
    from kota.city import StackOptions, run_closed_loop
    from simulators.city import CityOptions, CityWorld, DemoCity, write_demo_city

    if duration_s is not None and not duration_s > 0:
        print("--duration must be positive", file=sys.stderr)
        return 2
    data_dir = settings.site.resolved_data_dir()
    run_dir = data_dir / "demo-city"
    city = DemoCity()
    print(f"writing the demo city into {run_dir}…", flush=True)
    files = write_demo_city(run_dir, seed=DEMO_SEED, city=city)
    end_s = city.begin_s + duration_s * DEMO_TIME_SCALE if duration_s is not None else city.end_s
    world = CityWorld.of_city(files, CityOptions(time_scale=DEMO_TIME_SCALE, seed=DEMO_SEED,
                                                 end_s=min(end_s, city.end_s),
                                                 city=settings.site.city))
    broker = settings.broker
    options = StackOptions(
        run_dir=run_dir, broker_port=broker.port, database_url=settings.database.url,
        fresh=fresh, edges=DEMO_EDGES, edge_prefix="edge-demo",
        http_host=settings.controlroom.http_host, http_port=settings.controlroom.http_port,
        controlroom_client_id=settings.controlroom.client_id, city_name=settings.site.city,
        timezone=settings.site.timezone, offices=DEMO_OFFICES, cameras=DEMO_CAMERAS,
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()))
    rc = run_closed_loop(world, options, settings, title="Kota Pintar demo")
    print("demo stopped.", flush=True)
    return rc

