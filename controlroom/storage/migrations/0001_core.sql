-- kota: always
-- Edges, intersections and the low-volume message tables (events, acks, edge state history).
-- Each row of an edge message keeps (edge_id, epoch, seq): the contract's de-duplication key.

CREATE TABLE edge (
    edge_id      text PRIMARY KEY,
    epoch        bigint      NOT NULL,
    conn         integer     NOT NULL,
    online       boolean     NOT NULL,
    status_since timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    inventory    jsonb       NOT NULL DEFAULT '[]',
    versions     jsonb       NOT NULL DEFAULT '{}',
    reason       text        NOT NULL DEFAULT ''
);

CREATE TABLE edge_state_log (
    edge_id     text        NOT NULL,
    epoch       bigint      NOT NULL,
    conn        integer     NOT NULL,
    seq         bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL CHECK (status IN ('online', 'offline')),
    applied     boolean     NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    UNIQUE (edge_id, epoch, seq)
);

-- Small integer ids keep the detector rows narrow; the text id is what users see.
CREATE TABLE intersection (
    id                integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intersection_id   text        NOT NULL UNIQUE,
    edge_id           text        NOT NULL,
    first_seen        timestamptz NOT NULL DEFAULT now(),
    last_ts           timestamptz,
    mode              text,
    plan              smallint,
    cycle_timer_s     real,
    signal            text,
    det_count         integer[],
    det_occupancy_pct real[],
    det_fault         boolean[]
);

CREATE TABLE traffic_event (
    edge_id         text        NOT NULL,
    epoch           bigint      NOT NULL,
    seq             bigint      NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    intersection_id text        NOT NULL,
    kind            text        NOT NULL,
    severity        text        NOT NULL,
    detail          text        NOT NULL DEFAULT '',
    data            jsonb       NOT NULL DEFAULT '{}',
    UNIQUE (edge_id, epoch, seq)
);
CREATE INDEX traffic_event_by_intersection ON traffic_event (intersection_id, ts DESC);

CREATE TABLE command_ack (
    edge_id     text        NOT NULL,
    epoch       bigint      NOT NULL,
    seq         bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    domain      text        NOT NULL,
    target_id   text        NOT NULL,
    cmd_id      text        NOT NULL,
    status      text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    UNIQUE (edge_id, epoch, seq)
);
CREATE INDEX command_ack_by_cmd ON command_ack (cmd_id);
