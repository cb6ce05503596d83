"""`kota demo`: the whole system on embedded defaults, in one process plus a PostgreSQL server.

Start order: embedded PostgreSQL → schema → embedded broker → control room → edge agent.
Stop order is the reverse, on Ctrl-C or SIGTERM, so no process is left behind and every
message taken off the broker is stored or stays unacknowledged for the next run.
"""

from __future__ import annotations

import logging
import signal
import threading

from controlroom.app import ControlRoom
from controlroom.broker import EmbeddedBroker
from controlroom.storage.migrate import migrate
from edge.app import run_agent
from kota.settings import Settings

log = logging.getLogger("kota.demo")


def run_demo(settings: Settings, *, duration_s: float | None = None, fresh: bool = False) -> int:
    from controlroom.storage.embedded import EmbeddedPostgres

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("received %s, stopping the demo…", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    data_dir = settings.site.resolved_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    room: ControlRoom | None = None
    edge_thread: threading.Thread | None = None
    edge_stop = threading.Event()
    try:
        if settings.database.url:
            url = settings.database.url
        else:
            emb = settings.database.embedded
            embedded = EmbeddedPostgres(emb.data_dir or data_dir / "postgres", port=emb.port,
                                        database=emb.database)
            print("starting the embedded PostgreSQL…", flush=True)
            url = embedded.start()
        if fresh:
            _drop_schema(url)
        report = migrate(url, retention_days=settings.database.retention_days,
                         compress_after_days=settings.database.compress_after_days)
        log.info("database ready: %s; %d migration(s) applied", report.features.describe(),
                 len(report.applied))

        broker = EmbeddedBroker(settings.broker)
        broker.start()

        room = ControlRoom(settings.controlroom, settings.database, url,
                           city=settings.site.city, timezone=settings.site.timezone)
        room.start()

        edge_thread = threading.Thread(target=run_agent, args=(settings.edge, data_dir, edge_stop),
                                       name="kota-edge")
        edge_thread.start()

        print(f"\nKota Pintar demo is running.\n  status page: {room.url}\n  API:         {room.url}api/"
              f"intersections\n  broker:      {broker.url}\n  database:    {url}\n"
              f"Press Ctrl-C to stop.\n", flush=True)
        if not stop.wait(duration_s):
            stop.set()
        return 0
    finally:
        print("stopping…", flush=True)
        edge_stop.set()
        if edge_thread is not None:
            edge_thread.join(15)
        if room is not None:
            room.stop()
        if broker is not None:
            broker.stop()
        if embedded is not None and embedded.launched:
            embedded.stop()  # only a server this demo started; one from `kota db start` stays
        print("demo stopped.", flush=True)


def _drop_schema(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    log.info("dropped the demo's stored data (--fresh)")
