-- kota: always
-- CCTV: the camera registry (from the edges' inventories and the cameras' retained status),
-- camera alarms, PTZ and snapshot commands with their ack status, the latest snapshot of each
-- camera (one row per camera: storage stays bounded) and the video detectors' zone analytics.
-- Commands are only added and moved forward; alarms only opened and cleared.

CREATE TABLE cctv_camera (
    camera_id       text PRIMARY KEY,
    edge_id         text        NOT NULL,
    intersection_id text,
    name            text        NOT NULL DEFAULT '',
    model           text        NOT NULL DEFAULT '',
    firmware        text        NOT NULL DEFAULT '',
    ptz             boolean     NOT NULL DEFAULT false,
    reachable       boolean,                            -- NULL: listed by its edge, no status yet
    fps             real        NOT NULL DEFAULT 0,
    tamper          text        NOT NULL DEFAULT 'none',
    tampers         text[]      NOT NULL DEFAULT '{}',
    position        jsonb,                              -- {pan, tilt, zoom} in ONVIF generic spaces
    presets         jsonb       NOT NULL DEFAULT '[]',  -- [{token, name}]
    clock_offset_s  double precision,                   -- camera clock − edge clock
    zones           integer     NOT NULL DEFAULT 0,
    error           text        NOT NULL DEFAULT '',
    status_since    timestamptz,                        -- when reachable last changed
    last_status_at  timestamptz,                        -- ts of the newest status applied
    inventory_at    timestamptz,                        -- ts of the newest edge birth listing it
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cctv_camera_by_edge ON cctv_camera (edge_id);

CREATE TABLE cctv_alarm (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text        NOT NULL,
    camera_id   text        NOT NULL,
    severity    text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    text        text        NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}',
    opened_at   timestamptz NOT NULL,
    cleared_at  timestamptz
);
-- At most one open alarm per condition and camera.
CREATE UNIQUE INDEX cctv_alarm_open ON cctv_alarm (code, camera_id) WHERE cleared_at IS NULL;
CREATE INDEX cctv_alarm_by_time ON cctv_alarm (opened_at DESC);

CREATE TABLE cctv_command (
    cmd_id      text PRIMARY KEY,
    camera_id   text        NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    user_name   text        NOT NULL,
    role        text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('ptz_move', 'ptz_stop', 'ptz_goto',
                                                     'preset_goto', 'preset_set', 'snapshot')),
    body        jsonb       NOT NULL,
    reason_given text       NOT NULL DEFAULT '',        -- the operator's why
    status      text        NOT NULL DEFAULT 'sent'
                CHECK (status IN ('sent', 'accepted', 'applied', 'rejected', 'unanswered')),
    status_at   timestamptz NOT NULL,
    reason      text        NOT NULL DEFAULT ''         -- the edge's, or why unanswered
);
CREATE INDEX cctv_command_by_camera ON cctv_command (camera_id, issued_at DESC);
CREATE INDEX cctv_command_pending ON cctv_command (expires_at)
    WHERE status IN ('sent', 'accepted');

-- Only the latest snapshot per camera is kept (UPSERT on camera_id).
CREATE TABLE cctv_snapshot (
    camera_id   text PRIMARY KEY,
    edge_id     text        NOT NULL,
    taken_at    timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    jpeg        bytea       NOT NULL,
    cmd_id      text
);

-- Zone analytics, one row per message (zones as arrays, like detector telemetry). A plain
-- table with BRIN on time; a hypertable where TimescaleDB is loaded (probed as migrate.py
-- does, since CREATE EXTENSION without the preload drops the connection).
CREATE TABLE cctv_analytics (
    ts             timestamptz NOT NULL,
    camera_id      text        NOT NULL,
    edge_id        text        NOT NULL,
    zone_ids       text[]      NOT NULL,
    count          integer[]   NOT NULL,
    occupancy_pct  real[]      NOT NULL,
    presence       boolean[]   NOT NULL,
    queue_m        real[]      NOT NULL
);
CREATE INDEX cctv_analytics_by_camera ON cctv_analytics (camera_id, ts DESC);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE 'SELECT create_hypertable(''cctv_analytics'', ''ts'', '
                'chunk_time_interval => INTERVAL ''1 day'')';
    ELSE
        EXECUTE 'CREATE INDEX cctv_analytics_ts ON cctv_analytics USING brin (ts)';
    END IF;
END
$$;
