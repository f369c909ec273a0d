-- Alert rules and their firings, the monthly alert count per device, the
-- webhook endpoint of each user and the deliveries (with every attempt) of
-- the outbox's events to it. Ids are UUID text, times epoch ms, JSON text.
CREATE TABLE alert_rules (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scene_id         TEXT NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    device_id        TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    metric_path      TEXT NOT NULL,
    operator         TEXT NOT NULL,
    threshold        DOUBLE PRECISION NOT NULL,
    duration_seconds BIGINT NOT NULL,
    cooldown_seconds BIGINT NOT NULL,
    severity         TEXT NOT NULL,
    active_slots     TEXT,
    enabled          BIGINT NOT NULL,
    -- Firing state, written only with a firing (or the end of its breach).
    last_fired_at    BIGINT,
    breach_open      BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX alert_rules_user_created ON alert_rules (user_id, created_at DESC, id DESC);
CREATE INDEX alert_rules_enabled ON alert_rules (id) WHERE enabled = 1;

-- A firing keeps what its rule said then: rules change and go, alerts stay.
CREATE TABLE alerts (
    id                TEXT PRIMARY KEY NOT NULL,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rule_id           TEXT NOT NULL,
    rule_name         TEXT NOT NULL,
    scene_id          TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    task_id           TEXT,
    severity          TEXT NOT NULL,
    metric_path       TEXT NOT NULL,
    operator          TEXT NOT NULL,
    threshold         DOUBLE PRECISION NOT NULL,
    value             DOUBLE PRECISION NOT NULL,
    snapshot_key      TEXT,
    status            TEXT NOT NULL,
    history           TEXT NOT NULL,
    breach_started_at BIGINT NOT NULL,
    triggered_at      BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX alerts_user_triggered ON alerts (user_id, triggered_at DESC, id DESC);
-- One alert per breach of a rule, however many evaluators saw it.
CREATE UNIQUE INDEX alerts_rule_breach ON alerts (rule_id, breach_started_at);

-- Alerts per device and UTC month, for the plan's alert quota.
CREATE TABLE alert_counts (
    device_id TEXT NOT NULL,
    month     TEXT NOT NULL,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    count     BIGINT NOT NULL,
    PRIMARY KEY (device_id, month)
);

CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY NOT NULL,
    user_id               TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    url                   TEXT NOT NULL,
    name                  TEXT,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    subscribed_types      TEXT NOT NULL,
    timeout_ms            BIGINT NOT NULL,
    max_retries           BIGINT NOT NULL,
    enabled               BIGINT NOT NULL,
    disabled_reason       TEXT,
    -- Nothing is sent before then (a failing receiver, or its Retry-After).
    paused_until          BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         TEXT,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    round_attempts   BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    last_status_code BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_user_created ON webhook_deliveries (user_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id   TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number        BIGINT NOT NULL,
    user_id       TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    status_code   BIGINT,
    latency_ms    BIGINT NOT NULL,
    response_body TEXT,
    error         TEXT,
    succeeded     BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, number)
);

-- The outbox: events not yet turned into deliveries.
ALTER TABLE platform_events ADD COLUMN dispatched_at BIGINT;
-- Events from before webhooks existed are history, not news.
UPDATE platform_events SET dispatched_at = created_at;
CREATE INDEX platform_events_undispatched ON platform_events (created_at, id) WHERE dispatched_at IS NULL;
