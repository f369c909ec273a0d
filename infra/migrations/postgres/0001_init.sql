-- Accounts, sessions, API keys, devices and scenes (PostgreSQL dialect).
-- Ids are UUID text, times are epoch milliseconds, JSON is text.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    key_type       TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    key_hash       TEXT NOT NULL UNIQUE,
    scopes         TEXT NOT NULL,
    expires_at     BIGINT,
    last_used_at   BIGINT,
    revoked_at     BIGINT,
    rotated_at     BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX api_keys_user_created ON api_keys (user_id, created_at DESC, id DESC);

CREATE TABLE devices (
    id                 TEXT PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    description        TEXT,
    rtsp_url           TEXT NOT NULL,
    credentials        TEXT,
    location_label     TEXT,
    latitude           DOUBLE PRECISION,
    longitude          DOUBLE PRECISION,
    geo_source         TEXT,
    device_type        TEXT NOT NULL,
    plan               TEXT NOT NULL,
    tags               TEXT NOT NULL,
    utc_offset_minutes BIGINT NOT NULL,
    schedule           TEXT,
    status             TEXT NOT NULL,
    quota              TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX devices_user_created ON devices (user_id, created_at DESC, id DESC);

CREATE TABLE scenes (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT,
    analysis_type TEXT NOT NULL,
    config        TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX scenes_user_created ON scenes (user_id, created_at DESC, id DESC);
CREATE INDEX scenes_device ON scenes (device_id);
