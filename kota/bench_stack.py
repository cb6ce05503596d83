"""The parts of the control-room stack that `kota bench loop` and `kota bench dashboard` start
alike: a scratch database (on the embedded PostgreSQL or a given server), the embedded broker
(or a given one), the control room as a `kota controlroom run` process, and their teardown.

A bench class mixes in `StackParts` and provides ``run_dir``, ``say``, ``tag``, ``children``,
``db_prefix`` and ``o`` (options with ``database_url`` and ``mqtt_url``).
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kota.city import Child, StackError, _http_json, free_port, wait_ready, write_settings

READY_TIMEOUT_S = 120.0


class BenchError(Exception):
    """The run cannot go on; the message says what failed (and where its log is)."""


def _with_database(url: str, name: str) -> str:
    """``url`` (postgresql://…/db?…) naming database ``name`` instead."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path="/" + name))


class StackParts:
    run_dir: Path
    say: Callable[[str], None]
    tag: str
    children: list[Child]
    db_prefix: str                          # scratch database: f"{db_prefix}_{tag}"
    o: Any
    api_url: str
    db_url: str | None
    mqtt_url: str | None
    broker: Child | None
    controlroom: Child | None
    _embedded_pg: Any
    _server_url: str | None

    @property
    def _db_name(self) -> str:
        return f"{self.db_prefix}_{self.tag}"

    def _start_database(self) -> None:
        """A fresh, migrated scratch database; starts the embedded PostgreSQL unless the
        options name a server."""
        import psycopg

        from controlroom.storage.migrate import migrate

        server = self.o.database_url
        if server is None:
            from controlroom.storage.embedded import EmbeddedPostgres, EmbeddedPostgresError

            pg = EmbeddedPostgres(self.run_dir / "pg", port=free_port(), database="postgres")
            self.say("starting the embedded PostgreSQL…")
            try:
                server = pg.start()
            except (EmbeddedPostgresError, OSError) as exc:
                raise BenchError(f"the embedded PostgreSQL did not start: {exc}") from exc
            self._embedded_pg = pg
        self._server_url = server
        name = self._db_name
        try:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name}")
                conn.execute(f"CREATE DATABASE {name}")
            self.db_url = _with_database(server, name)
            migrate(self.db_url)
        except psycopg.Error as exc:
            raise BenchError(f"PostgreSQL at {server} cannot be used: {exc}") from exc

    def _stop_database(self) -> None:
        """Drop the scratch database and stop the embedded server, if any."""
        if self._server_url is not None and self.db_url is not None:
            import psycopg

            name = self._db_name
            try:
                with psycopg.connect(self._server_url, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except psycopg.Error as exc:
                self.say(f"could not drop the scratch database {name}: {exc}")
            self.db_url = None
        if self._embedded_pg is not None:
            self._embedded_pg.stop()
            self._embedded_pg = None

    def _child(self, name: str, args: list[str], doc: dict[str, Any], header: str) -> Child:
        config = write_settings(self.run_dir / f"{name}.toml", doc, header)
        child = Child(name, args, config, self.run_dir / "logs" / f"{name}.log", "WARNING")
        self.children.append(child)
        child.start()
        return child

    def _wait(self, ready: Callable[[], bool], child: Child | None, what: str) -> None:
        wait_ready(ready, child, what, READY_TIMEOUT_S, error=BenchError)

    def _start_broker(self) -> None:
        """The broker the options name, or the embedded one as a `kota broker` process."""
        if self.o.mqtt_url is not None:
            self.mqtt_url = self.o.mqtt_url
            return
        port = free_port()
        self.say(f"starting the embedded broker on 127.0.0.1:{port}…")
        broker = self._child("broker", ["--log-level", "INFO", "broker"],
                             {"broker": {"host": "127.0.0.1", "port": port}},
                             "The embedded MQTT broker of this benchmark.")
        self.broker = broker
        self._wait(lambda: "MQTT broker listening on" in broker.tail(), broker, "the broker")
        self.mqtt_url = f"mqtt://127.0.0.1:{port}"

    def _mqtt(self) -> dict[str, Any]:
        return {"url": self.mqtt_url, "keepalive_s": 5, "reconnect_min_s": 0.5,
                "reconnect_max_s": 2.0}

    def _start_controlroom(self, layout: Path, traffic: dict[str, Any], client: str) -> None:
        """`kota controlroom run` on ``layout`` with these ``[controlroom.traffic]`` settings;
        returns once its health says ok."""
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/"
        doc = {
            "site": {"city": "Kota Bench", "timezone": "Asia/Jakarta",
                     "data_dir": self.run_dir / "controlroom"},
            "database": {"url": self.db_url},
            "controlroom": {
                "mqtt": self._mqtt(), "client_id": f"{client}-cr-{self.tag}",
                "http_host": "127.0.0.1", "http_port": port, "state_interval_s": 5.0,
                "traffic": {"layout": layout, **traffic},
            },
        }
        cr = self._child("controlroom", ["controlroom", "run"], doc,
                         "The control room of this benchmark.")
        self.controlroom = cr
        self._wait(lambda: (self.health() or {}).get("status") == "ok", cr,
                   f"the control room at {self.api_url}api/health")

    def health(self) -> dict[str, Any] | None:
        try:
            body = _http_json(self.api_url + "api/health")
        except (OSError, ValueError):
            return None
        return body if isinstance(body, dict) else None


def run_bench(bench: Any, name: str, stopping: str, measure: Callable[[], dict[str, Any]],
              print_table: Callable[[dict[str, Any]], None], *, keep: bool, as_json: bool,
              say: Callable[[str], None]) -> int:
    """Start ``bench``, take its figures with ``measure``, stop it whatever happens (SIGTERM
    too), then print the table — with ``as_json`` on stderr, stdout ending with the JSON line.
    Exit code: 0 done, 1 a part failed, 130 interrupted."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        bench.start()
        out = measure()
    except (BenchError, StackError) as exc:
        say(f"kota bench {name} failed: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        say(f"stopping: {stopping}…")
        try:
            bench.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
    if keep:
        say(f"run directory kept: {bench.run_dir}")
    if as_json:
        saved, sys.stdout = sys.stdout, sys.stderr
        try:
            print_table(out)
        finally:
            sys.stdout = saved
        print(json.dumps(out), flush=True)
    else:
        print_table(out)
    return 0
