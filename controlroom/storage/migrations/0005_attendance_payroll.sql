-- kota: always
-- Attendance for payroll: employees and units (from SIMPEG), which machine user id is whose
-- NIP, leave and duty, shift rosters, the daily results the rules give, the audit log of every
-- change, and the recaps uploaded to SIMPEG. Raw punches (0004) are never touched: a
-- correction is leave, a roster entry or a rule change, and the days are recomputed.

CREATE TABLE attendance_unit (
    code        text PRIMARY KEY,
    name        text        NOT NULL,
    parent      text,
    skpd        text        NOT NULL,          -- the SKPD the unit belongs to (its own code for an SKPD)
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE employee (
    nip             text PRIMARY KEY CHECK (nip ~ '^[0-9]{18}$'),
    name            text        NOT NULL,
    skpd            text        NOT NULL DEFAULT '',
    unit            text        NOT NULL DEFAULT '',
    position        text        NOT NULL DEFAULT '',
    schedule_group  text        NOT NULL DEFAULT '',
    active          boolean     NOT NULL DEFAULT true,
    source          text        NOT NULL CHECK (source IN ('simpeg', 'bkpsdm')),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Old machines hold only short numeric ids: (machine, id) -> NIP; device_sn '' is any machine.
CREATE TABLE attendance_user_map (
    device_sn   text NOT NULL DEFAULT '',
    user_id     text NOT NULL,
    nip         text NOT NULL REFERENCES employee (nip),
    PRIMARY KEY (device_sn, user_id)
);

CREATE TABLE attendance_leave (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nip         text        NOT NULL REFERENCES employee (nip),
    code        text        NOT NULL,
    first_day   date        NOT NULL,
    last_day    date        NOT NULL CHECK (last_day >= first_day),
    doc_ref     text        NOT NULL,          -- the decree or letter number
    source      text        NOT NULL CHECK (source IN ('simpeg', 'bkpsdm')),
    source_id   text        NOT NULL,          -- SIMPEG's id, or ours for BKPSDM entries
    entered_by  text        NOT NULL,
    entered_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoked_by  text,
    UNIQUE (source, source_id)
);
CREATE INDEX attendance_leave_by_day ON attendance_leave (first_day, last_day);

CREATE TABLE attendance_roster (
    nip         text        NOT NULL REFERENCES employee (nip),
    day         date        NOT NULL,
    shift       text        NOT NULL,          -- a shift code of the rules, or OFF
    entered_by  text        NOT NULL,
    entered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (nip, day)
);

-- Derived: one row per employee per day, replaced by each recompute (the audit keeps what
-- changed). Times are the office's local wall time, as the machine shows them.
CREATE TABLE attendance_day (
    nip            text        NOT NULL,
    day            date        NOT NULL,
    status         text        NOT NULL,       -- H, TK, L, or the leave code
    sched_start    timestamp,
    sched_end      timestamp,
    in_at          timestamp,
    out_at         timestamp,
    in_device      text,
    out_device     text,
    late_min       integer,
    early_min      integer,
    tl             smallint    NOT NULL,       -- 0 none, k: the k-th late bracket
    psw            smallint    NOT NULL,
    cut_pct        double precision NOT NULL,
    flags          integer     NOT NULL,
    punches        smallint    NOT NULL,
    holiday        text,
    rules_version  text        NOT NULL,
    content_hash   bigint      NOT NULL,       -- of all the above: a recompute writes what differs
    computed_at    timestamptz NOT NULL,
    PRIMARY KEY (day, nip)
);

CREATE TABLE attendance_audit (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL,
    subject  text        NOT NULL DEFAULT '',  -- a NIP, a period, a leave id
    detail   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX attendance_audit_by_subject ON attendance_audit (subject, at);

-- What SIMPEG answered for each employee's recap of a period (the last upload wins).
CREATE TABLE attendance_recap_upload (
    period        text        NOT NULL,
    nip           text        NOT NULL,
    content_hash  text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('accepted', 'duplicate', 'rejected')),
    revision      integer,
    reason        text        NOT NULL DEFAULT '',
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, nip)
);

CREATE INDEX attendance_punch_by_local_ts ON attendance_punch (local_ts);
