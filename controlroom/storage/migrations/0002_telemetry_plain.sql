-- kota: unless timescaledb
-- Telemetry on a server without TimescaleDB: plain tables, BRIN on time, and rollup views
-- with date_bin that answer the same queries as the TimescaleDB continuous aggregates.

CREATE TABLE traffic_telemetry (
    ts              timestamptz NOT NULL,
    intersection    integer     NOT NULL REFERENCES intersection (id),
    edge_id         text        NOT NULL,
    epoch           bigint      NOT NULL,
    seq             bigint      NOT NULL,
    mode            text        NOT NULL,
    plan            smallint,
    cycle_timer_s   real,
    signal          text        NOT NULL
);
CREATE INDEX traffic_telemetry_ts ON traffic_telemetry USING brin (ts);
CREATE INDEX traffic_telemetry_by_intersection ON traffic_telemetry (intersection, ts DESC);

CREATE TABLE detector_sample (
    ts            timestamptz NOT NULL,
    intersection  integer     NOT NULL,
    detector      smallint    NOT NULL,
    count         integer     NOT NULL,
    occupancy_pct real        NOT NULL,
    fault         boolean     NOT NULL
);
CREATE INDEX detector_sample_ts ON detector_sample USING brin (ts);

CREATE VIEW detector_15min AS
SELECT date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01') AS bucket,
       intersection,
       detector,
       sum(count)::bigint           AS volume,
       avg(occupancy_pct)::real     AS occupancy_pct,
       bool_or(fault)               AS any_fault,
       count(*)                     AS samples
FROM detector_sample
GROUP BY 1, 2, 3;
