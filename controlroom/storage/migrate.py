"""Versioned schema migrations: the `.sql` files beside this module, applied once each.

A file's first line says on which servers it runs (`-- kota: always`, `requires timescaledb`,
`unless timescaledb`); two variants share a version number and the schema table records which
ran. TimescaleDB is probed, never assumed: `CREATE EXTENSION` without
`shared_preload_libraries` drops the connection, so both conditions are checked first.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_HEADER = re.compile(r"^-- kota: (always|requires timescaledb|unless timescaledb)\s*$")
# Arbitrary but fixed: serialises concurrent `kota db migrate` runs.
_LOCK_KEY = 0x4B4F5441


class MigrationError(Exception):
    """A migration file is malformed or failed to apply."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    condition: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ServerFeatures:
    server_version: int
    timescaledb: bool
    timescale_license: str | None  # 'timescale' allows compression and continuous aggregates

    def describe(self) -> str:
        if not self.timescaledb:
            return f"PostgreSQL {self.server_version // 10000} (no TimescaleDB: plain tables + date_bin rollups)"
        return (f"PostgreSQL {self.server_version // 10000} with TimescaleDB "
                f"(licence {self.timescale_license or 'unknown'})")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: tuple[str, ...]
    already: int
    features: ServerFeatures


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("controlroom.storage.migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        sql = entry.read_text(encoding="utf-8")
        header = _HEADER.match(sql.splitlines()[0] if sql else "")
        if header is None:
            raise MigrationError(f"{entry.name}: first line must be '-- kota: always|requires "
                                 "timescaledb|unless timescaledb'")
        found.append(Migration(int(match[1]), entry.name, header[1], sql))
    return sorted(found, key=lambda m: m.name)


def probe(conn: psycopg.Connection) -> ServerFeatures:
    version = conn.info.server_version
    available = conn.execute(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()[0]
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
    timescale = bool(available) and "timescaledb" in preload
    licence = None
    if timescale:
        licence = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()[0]
    return ServerFeatures(version, timescale, licence)


def _applies(migration: Migration, features: ServerFeatures) -> bool:
    if migration.condition == "always":
        return True
    if migration.condition == "requires timescaledb":
        return features.timescaledb
    return not features.timescaledb


def migrate(conninfo: str, *, retention_days: int = 90, compress_after_days: int = 2) -> MigrationReport:
    """Apply every pending migration, each in its own transaction; safe to run again."""
    migrations = load_migrations()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0]: row[1] for row in conn.execute("SELECT version, name FROM schema_migration")}
            features = probe(conn)
            applied: list[str] = []
            for migration in migrations:
                if migration.version in done or not _applies(migration, features):
                    continue
                log.info("applying migration %s", migration.name)
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO schema_migration (version, name, checksum) VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(f"{migration.name} failed: {exc}") from exc
                done[migration.version] = migration.name
                applied.append(migration.name)
            if features.timescaledb:
                _timescale_policies(conn, features, retention_days, compress_after_days)
            return MigrationReport(tuple(applied), len(migrations) - len(applied), features)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _timescale_policies(conn: psycopg.Connection, features: ServerFeatures,
                        retention_days: int, compress_after_days: int) -> None:
    """Compression, retention and the continuous aggregate: licence-dependent, idempotent."""
    has_view = conn.execute("SELECT to_regclass('detector_15min') IS NOT NULL").fetchone()[0]
    if features.timescale_license != "timescale":
        log.warning("TimescaleDB licence is %r: compression, retention policies and continuous "
                    "aggregates need the Timescale licence; using a plain rollup view",
                    features.timescale_license)
        if not has_view:
            conn.execute(_PLAIN_ROLLUP_VIEW)
        return
    for table in ("traffic_telemetry", "detector_sample"):
        conn.execute(f"ALTER TABLE {table} SET (timescaledb.compress, "
                     "timescaledb.compress_segmentby = 'intersection', "
                     "timescaledb.compress_orderby = 'ts DESC')")
        conn.execute("SELECT add_compression_policy(%s, make_interval(days => %s), if_not_exists => true)",
                     (table, compress_after_days))
        conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
        conn.execute("SELECT add_retention_policy(%s, make_interval(days => %s))", (table, retention_days))
    if not has_view:
        conn.execute(
            "CREATE MATERIALIZED VIEW detector_15min WITH (timescaledb.continuous) AS "
            "SELECT time_bucket('15 minutes', ts) AS bucket, intersection, detector, "
            "sum(count)::bigint AS volume, avg(occupancy_pct)::real AS occupancy_pct, "
            "bool_or(fault) AS any_fault, count(*) AS samples "
            "FROM detector_sample GROUP BY 1, 2, 3 WITH NO DATA"
        )
        conn.execute("SELECT add_continuous_aggregate_policy('detector_15min', "
                     "start_offset => INTERVAL '3 hours', end_offset => INTERVAL '15 minutes', "
                     "schedule_interval => INTERVAL '5 minutes')")


_PLAIN_ROLLUP_VIEW = """
CREATE VIEW detector_15min AS
SELECT date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01') AS bucket, intersection, detector,
       sum(count)::bigint AS volume, avg(occupancy_pct)::real AS occupancy_pct,
       bool_or(fault) AS any_fault, count(*) AS samples
FROM detector_sample GROUP BY 1, 2, 3
"""
