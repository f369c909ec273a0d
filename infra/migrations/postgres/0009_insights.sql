-- The VLM's reading of an alert: one per alert (a redelivered job finds it).
-- No foreign key to devices or alerts: alerts outlive their device, and an
-- insight lives as long as its alert (both go with their user).
CREATE TABLE insights (
    id                    TEXT PRIMARY KEY NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    alert_id              TEXT NOT NULL UNIQUE,
    device_id             TEXT NOT NULL,
    scene_id              TEXT NOT NULL,
    task_id               TEXT,
    severity              TEXT NOT NULL,
    vlm_status            TEXT NOT NULL,
    vlm_summary           TEXT,
    vlm_structured_result TEXT,
    failure_reason        TEXT,
    model                 TEXT,
    prompt_tokens         BIGINT,
    completion_tokens     BIGINT,
    total_tokens          BIGINT,
    attempts              BIGINT NOT NULL,
    snapshot_key          TEXT,
    triggered_at          BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    completed_at          BIGINT,
    -- Full text over the summary. The 'simple' dictionary (lower-cased words,
    -- no stemming, no stop words) matches what SQLite's FTS5 unicode61
    -- tokenizer does, so `q` finds the same insights on both backends, and
    -- summaries in any language are indexed alike.
    vlm_summary_tsv       TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(vlm_summary, ''))) STORED
);
CREATE INDEX insights_user_triggered ON insights (user_id, triggered_at DESC, id DESC);
CREATE INDEX insights_summary_fts ON insights USING GIN (vlm_summary_tsv);
