-- kota: always
-- Attendance: every punch from every ZKTeco machine, stored once; the batches that carried
-- them (so that a resent batch is answered "stored" again); the machine registry with its
-- last reported status; alarms; the employees the machines may know.
-- Raw punches are never edited nor deleted: BKPSDM pays TPP from them. A trigger refuses
-- UPDATE and DELETE on attendance_punch for every role the service uses.

CREATE TABLE attendance_punch (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_sn    text        NOT NULL,
    user_id      text        NOT NULL,
    ts           timestamptz NOT NULL,       -- the machine's wall time in the office's zone
    punch_state  smallint    NOT NULL CHECK (punch_state BETWEEN 0 AND 255),
    local_ts     timestamp   NOT NULL,       -- the machine's wall time as read, no zone
    tz           text        NOT NULL,       -- the office's IANA zone (Asia/Jakarta, …)
    verify_type  smallint    NOT NULL DEFAULT 0 CHECK (verify_type BETWEEN 0 AND 255),
    work_code    integer     NOT NULL DEFAULT 0,
    batch_id     text        NOT NULL,       -- the first batch that brought it
    edge_id      text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_sn, user_id, ts, punch_state)
);
CREATE INDEX attendance_punch_by_user ON attendance_punch (user_id, ts);
CREATE INDEX attendance_punch_by_device ON attendance_punch (device_sn, ts);

CREATE FUNCTION attendance_punch_is_raw() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'attendance_punch rows are raw records: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER attendance_punch_raw BEFORE UPDATE OR DELETE ON attendance_punch
    FOR EACH ROW EXECUTE FUNCTION attendance_punch_is_raw();
CREATE TRIGGER attendance_punch_raw_truncate BEFORE TRUNCATE ON attendance_punch
    FOR EACH STATEMENT EXECUTE FUNCTION attendance_punch_is_raw();

CREATE TABLE attendance_batch (
    device_sn    text        NOT NULL,
    batch_id     text        NOT NULL,
    edge_id      text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    punches      integer     NOT NULL,
    new_punches  integer     NOT NULL,
    first_ts     timestamptz,
    last_ts      timestamptz,
    PRIMARY KEY (device_sn, batch_id)
);

CREATE TABLE attendance_machine (
    device_sn        text PRIMARY KEY,
    edge_id          text        NOT NULL,
    office           text        NOT NULL DEFAULT '',   -- the SKPD / office it stands in
    name             text        NOT NULL DEFAULT '',
    platform         text        NOT NULL DEFAULT '',
    firmware         text        NOT NULL DEFAULT '',
    tz               text        NOT NULL DEFAULT 'Asia/Jakarta',
    online           boolean     NOT NULL,
    status_since     timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    users            integer,
    users_capacity   integer,
    punches          integer,
    punches_capacity integer,
    clock_drift_s    real,
    last_error       text        NOT NULL DEFAULT ''
);

CREATE TABLE attendance_alarm (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text        NOT NULL,
    device_sn   text        NOT NULL,
    subject     text        NOT NULL DEFAULT '',
    severity    text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    text        text        NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}',
    opened_at   timestamptz NOT NULL,
    cleared_at  timestamptz
);
CREATE UNIQUE INDEX attendance_alarm_open ON attendance_alarm (code, device_sn, subject)
    WHERE cleared_at IS NULL;
CREATE INDEX attendance_alarm_by_time ON attendance_alarm (opened_at DESC);

-- The employees whose user ids the machines may hold (SIMPEG fills this later; the edge
-- pushes it to the machines on command).
CREATE TABLE attendance_employee (
    user_id     text PRIMARY KEY,
    name        text        NOT NULL,
    nip         text        NOT NULL DEFAULT '',
    office      text        NOT NULL DEFAULT '',
    active      boolean     NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
