-- kota: always
-- Traffic control: plans the core computed, commands sent with their ack status, alarms,
-- operator overrides and the audit log of every operator action. Rows are only ever added
-- or closed (status, cleared_at, ended_at); nothing here is deleted by the service.

-- Every plan sent: the core's (adaptive) or an operator's, with the command that carried it.
CREATE TABLE traffic_plan (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    computed_at     timestamptz NOT NULL,
    intersection_id text        NOT NULL,
    source          text        NOT NULL CHECK (source IN ('adaptive', 'operator')),
    plan            smallint    NOT NULL,
    cycle_s         real        NOT NULL,
    offset_s        real        NOT NULL,
    splits_s        real[]      NOT NULL,
    green_s         real[],
    ds_max          real,
    cmd_id          text        NOT NULL
);
CREATE INDEX traffic_plan_by_intersection ON traffic_plan (intersection_id, computed_at DESC);

CREATE TABLE traffic_command (
    cmd_id          text        PRIMARY KEY,
    intersection_id text        NOT NULL,
    issued_at       timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    issuer          text        NOT NULL,
    source          text        NOT NULL CHECK (source IN ('adaptive', 'operator', 'system')),
    kind            text        NOT NULL CHECK (kind IN ('plan', 'override')),
    body            jsonb       NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    last_sent_at    timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'sent'
                    CHECK (status IN ('sent', 'accepted', 'applied', 'rejected', 'unanswered')),
    status_at       timestamptz NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    override_id     bigint
);
CREATE INDEX traffic_command_by_intersection ON traffic_command (intersection_id, issued_at DESC);

CREATE TABLE traffic_alarm (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            text        NOT NULL,
    intersection_id text        NOT NULL,
    subject         text        NOT NULL DEFAULT '',  -- detector index, edge id, … ('' = whole)
    severity        text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    text            text        NOT NULL,
    data            jsonb       NOT NULL DEFAULT '{}',
    opened_at       timestamptz NOT NULL,
    cleared_at      timestamptz
);
-- At most one open alarm per condition.
CREATE UNIQUE INDEX traffic_alarm_open ON traffic_alarm (code, intersection_id, subject)
    WHERE cleared_at IS NULL;
CREATE INDEX traffic_alarm_by_time ON traffic_alarm (opened_at DESC);

CREATE TABLE traffic_override (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intersection_id text        NOT NULL,
    action          text        NOT NULL CHECK (action IN ('hold', 'force', 'flash', 'plan')),
    phase           smallint,
    plan            jsonb,
    user_name       text        NOT NULL,
    role            text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    end_reason      text        CHECK (end_reason IN ('released', 'expired', 'replaced')),
    ended_by        text
);
-- At most one active override per intersection.
CREATE UNIQUE INDEX traffic_override_active ON traffic_override (intersection_id)
    WHERE ended_at IS NULL;

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_name   text        NOT NULL,
    role        text        NOT NULL,
    action      text        NOT NULL,
    target      text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('done', 'denied', 'failed')),
    before      jsonb,
    after       jsonb,
    detail      text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_time ON audit_log (at DESC);
