-- The VLM's reading of an alert: one per alert (a redelivered job finds it).
-- No foreign key to devices or alerts: alerts outlive their device, and an
-- insight lives as long as its alert (both go with their user).
CREATE TABLE insights (
    -- The FTS table's key: an INTEGER PRIMARY KEY is the rowid itself, which
    -- VACUUM never renumbers (an implicit rowid it may).
    seq                   INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
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
    completed_at          BIGINT
);
CREATE INDEX insights_user_triggered ON insights (user_id, triggered_at DESC, id DESC);

-- Full text over the summary: an external-content FTS5 table (the text is
-- stored once, in insights) keyed by insights.seq, kept in step by the
-- triggers below. unicode61 lower-cases and, like PostgreSQL's 'simple'
-- dictionary, neither stems nor folds diacritics: the same matching there.
CREATE VIRTUAL TABLE insights_fts USING fts5 (
    vlm_summary,
    content = 'insights',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER insights_fts_insert AFTER INSERT ON insights BEGIN
    INSERT INTO insights_fts (rowid, vlm_summary) VALUES (new.seq, coalesce(new.vlm_summary, ''));
END;
CREATE TRIGGER insights_fts_delete AFTER DELETE ON insights BEGIN
    INSERT INTO insights_fts (insights_fts, rowid, vlm_summary)
    VALUES ('delete', old.seq, coalesce(old.vlm_summary, ''));
END;
CREATE TRIGGER insights_fts_update AFTER UPDATE OF vlm_summary ON insights BEGIN
    INSERT INTO insights_fts (insights_fts, rowid, vlm_summary)
    VALUES ('delete', old.seq, coalesce(old.vlm_summary, ''));
    INSERT INTO insights_fts (rowid, vlm_summary) VALUES (new.seq, coalesce(new.vlm_summary, ''));
END;
