-- Analysis tasks, stored analytics (snapshots and rolling rows) and the
-- platform event log. Ids are UUID text, times epoch milliseconds, JSON text.
CREATE TABLE analysis_tasks (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    scene_id     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'failed')),
    trigger_kind TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    stopped_at   BIGINT,
    stop_reason  TEXT,
    error        TEXT
);
-- One running task per device, whoever starts it (API, schedule, edge).
CREATE UNIQUE INDEX analysis_tasks_one_running ON analysis_tasks (device_id) WHERE status = 'running';
CREATE INDEX analysis_tasks_device_started ON analysis_tasks (device_id, started_at DESC);
CREATE INDEX analysis_tasks_running ON analysis_tasks (started_at) WHERE status = 'running';

-- One row per scene per cadence (10 s by default): 30 days is ~260k rows per
-- scene, read newest first within a scene and a time range. The tenant is in
-- the index so that counts for pagination are index-only scans.
CREATE TABLE scene_analytics_snapshots (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scene_id        TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    window_start    BIGINT NOT NULL,
    window_end      BIGINT NOT NULL,
    in_queue        BIGINT NOT NULL,
    in_service      BIGINT NOT NULL,
    avg_in_queue    REAL NOT NULL,
    max_in_queue    BIGINT NOT NULL,
    avg_in_service  REAL NOT NULL,
    max_in_service  BIGINT NOT NULL,
    compute_node_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX snapshots_scene_end ON scene_analytics_snapshots (scene_id, user_id, window_end DESC, id DESC);
CREATE INDEX snapshots_end ON scene_analytics_snapshots (window_end);

CREATE TABLE scene_analytics_rolling (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scene_id        TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    window_name     TEXT NOT NULL,
    window_start    BIGINT NOT NULL,
    window_end      BIGINT NOT NULL,
    metrics         TEXT NOT NULL,
    compute_node_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX rolling_scene_window_end ON scene_analytics_rolling (scene_id, user_id, window_name, window_end DESC, id DESC);
CREATE INDEX rolling_scene_end ON scene_analytics_rolling (scene_id, user_id, window_end DESC, id DESC);
CREATE INDEX rolling_end ON scene_analytics_rolling (window_end);

CREATE TABLE platform_events (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    device_id  TEXT,
    task_id    TEXT,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX platform_events_user_created ON platform_events (user_id, created_at DESC, id DESC);
CREATE INDEX platform_events_device_created ON platform_events (device_id, created_at DESC, id DESC);

CREATE INDEX devices_scheduled ON devices (id) WHERE schedule IS NOT NULL;

-- Edge push: devices that send their own frames and heartbeats.
ALTER TABLE devices ADD COLUMN push_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_seen_at BIGINT;
