-- Metering: an append-only ledger of usage events, one row per source action
-- (a task's minute, an alert, an attribute batch, a VLM request) under an id
-- derived from it, so a retried or replayed action is not counted twice.
-- No foreign key to devices: usage history outlives a deleted device.
CREATE TABLE usage_events (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL,
    feature     TEXT NOT NULL CHECK (feature IN ('analysisSeconds', 'alertCount', 'attributeCount', 'vlmTokens')),
    quantity    BIGINT NOT NULL CHECK (quantity >= 0),
    occurred_at BIGINT NOT NULL,
    period      TEXT NOT NULL,
    day         TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX usage_events_user_time ON usage_events (user_id, occurred_at DESC, id DESC);

-- Aggregates kept in the same transaction as each new event, for the
-- queries to read directly.
CREATE TABLE usage_daily (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    feature   TEXT NOT NULL,
    quantity  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, day, feature)
);
CREATE INDEX usage_daily_user_day ON usage_daily (user_id, day);

CREATE TABLE usage_monthly (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    period    TEXT NOT NULL,
    feature   TEXT NOT NULL,
    quantity  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, period, feature)
);
CREATE INDEX usage_monthly_user_period ON usage_monthly (user_id, period);

-- quota_warning (80 %) and quota_exceeded (100 %) sent, once per device,
-- feature and period whichever replica sees the crossing first.
CREATE TABLE quota_notices (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    period    TEXT NOT NULL,
    feature   TEXT NOT NULL,
    level     BIGINT NOT NULL,
    sent_at   BIGINT NOT NULL,
    PRIMARY KEY (device_id, period, feature, level)
);

-- How far each task's running time has been metered (epoch ms; NULL: from
-- its start). A task is fully metered when this reaches its end.
ALTER TABLE analysis_tasks ADD COLUMN metered_until BIGINT;
CREATE INDEX analysis_tasks_unmetered ON analysis_tasks (stopped_at) WHERE status <> 'running' AND (metered_until IS NULL OR metered_until < stopped_at);

-- Alert counts now come from the ledger (alertCount events): the alerts
-- fired so far become its first events.
INSERT INTO usage_events (id, user_id, device_id, feature, quantity, occurred_at, period, day, source)
SELECT 'alert:' || id, user_id, device_id, 'alertCount', 1, triggered_at,
       to_char(to_timestamp(triggered_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM'),
       to_char(to_timestamp(triggered_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       '{"alertId":"' || id || '"}'
FROM alerts;
-- Each ended task's running time (from before the ledger) becomes one
-- event, dated at its start; running tasks are metered from their start by
-- the schedule role, a day of minutes per step.
INSERT INTO usage_events (id, user_id, device_id, feature, quantity, occurred_at, period, day, source)
SELECT 'analysis:' || id || ':before-ledger', user_id, device_id, 'analysisSeconds',
       CASE WHEN stopped_at / 1000 > started_at / 1000 THEN stopped_at / 1000 - started_at / 1000 ELSE 0 END,
       started_at, to_char(to_timestamp(started_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM'), to_char(to_timestamp(started_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       '{"taskId":"' || id || '","beforeLedger":true}'
FROM analysis_tasks WHERE status <> 'running' AND stopped_at IS NOT NULL;
UPDATE analysis_tasks SET metered_until = stopped_at WHERE status <> 'running' AND stopped_at IS NOT NULL;
INSERT INTO usage_daily (user_id, device_id, day, feature, quantity)
SELECT user_id, device_id, day, feature, SUM(quantity) FROM usage_events GROUP BY user_id, device_id, day, feature;
INSERT INTO usage_monthly (user_id, device_id, period, feature, quantity)
SELECT user_id, device_id, period, feature, SUM(quantity) FROM usage_events GROUP BY user_id, device_id, period, feature;
DROP TABLE alert_counts;

-- An alert fired beyond its device's monthly alert quota is recorded as
-- suppressed: no webhook, not metered.
ALTER TABLE alerts ADD COLUMN suppressed BIGINT NOT NULL DEFAULT 0;
