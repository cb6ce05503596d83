-- kota: requires timescaledb
-- Telemetry on TimescaleDB: hypertables (1-day chunks), then compression, retention and a
-- continuous aggregate where the server's licence allows (see migrate.py's probe).
-- The names and columns match 0002_telemetry_plain.sql so every query runs on both.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE traffic_telemetry (
    ts              timestamptz NOT NULL,
    intersection    integer     NOT NULL,
    edge_id         text        NOT NULL,
    epoch           bigint      NOT NULL,
    seq             bigint      NOT NULL,
    mode            text        NOT NULL,
    plan            smallint,
    cycle_timer_s   real,
    signal          text        NOT NULL
);
SELECT create_hypertable('traffic_telemetry', 'ts', chunk_time_interval => INTERVAL '1 day');
CREATE INDEX traffic_telemetry_by_intersection ON traffic_telemetry (intersection, ts DESC);

CREATE TABLE detector_sample (
    ts            timestamptz NOT NULL,
    intersection  integer     NOT NULL,
    detector      smallint    NOT NULL,
    count         integer     NOT NULL,
    occupancy_pct real        NOT NULL,
    fault         boolean     NOT NULL
);
SELECT create_hypertable('detector_sample', 'ts', chunk_time_interval => INTERVAL '1 day');
