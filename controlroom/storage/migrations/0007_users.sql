-- kota: always
-- People who log in to the control room's API and dashboard, and their sessions (issue 9).
-- Passwords are stored only as argon2id hashes; a session is stored only as the SHA-256 of its
-- random token, so a copy of this table lets nobody in. Users are disabled, never deleted: the
-- audit log names them.

CREATE TABLE app_user (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text        NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    role                text        NOT NULL
                        CHECK (role IN ('operator', 'supervisor', 'bkpsdm', 'technician', 'admin')),
    password_hash       text        NOT NULL,
    disabled            boolean     NOT NULL DEFAULT false,
    failed_logins       integer     NOT NULL DEFAULT 0,   -- within the window from first_failed_at
    first_failed_at     timestamptz,
    locked_until        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    last_login_at       timestamptz
);

CREATE TABLE app_session (
    id           bytea       PRIMARY KEY CHECK (length(id) = 32),  -- SHA-256 of the cookie's token
    user_id      bigint      NOT NULL REFERENCES app_user (id),
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,                             -- the absolute limit
    ip           text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    revoked      boolean     NOT NULL DEFAULT false
);
CREATE INDEX app_session_live_by_user ON app_session (user_id) WHERE NOT revoked;
