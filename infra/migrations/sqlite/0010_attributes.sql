-- Person attributes (level_02, capability `attributes`): one row per
-- description of a track, written once per id (a redelivered frame finds it).
CREATE TABLE attributes (
    id                TEXT PRIMARY KEY NOT NULL,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id         TEXT NOT NULL,
    scene_id          TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    track_id          TEXT NOT NULL,
    upper_color       TEXT NOT NULL,
    lower_color       TEXT NOT NULL,
    upper_color_share REAL NOT NULL,
    lower_color_share REAL NOT NULL,
    confidence        REAL NOT NULL,
    box_x             REAL NOT NULL,
    box_y             REAL NOT NULL,
    box_width         REAL NOT NULL,
    box_height        REAL NOT NULL,
    observed_at       BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX attributes_user_observed ON attributes (user_id, observed_at DESC, id DESC);
CREATE INDEX attributes_task_observed ON attributes (task_id, observed_at);

-- An insight carries the attributes of the people in view when its alert
-- fired: how many, and their words, which full-text search matches as well
-- as the summary's. The FTS5 table gets the second column: rebuilt.
ALTER TABLE insights ADD COLUMN attribute_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE insights ADD COLUMN attribute_text TEXT;
DROP TRIGGER insights_fts_insert;
DROP TRIGGER insights_fts_delete;
DROP TRIGGER insights_fts_update;
DROP TABLE insights_fts;
CREATE VIRTUAL TABLE insights_fts USING fts5 (
    vlm_summary,
    attribute_text,
    content = 'insights',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER insights_fts_insert AFTER INSERT ON insights BEGIN
    INSERT INTO insights_fts (rowid, vlm_summary, attribute_text)
    VALUES (new.seq, coalesce(new.vlm_summary, ''), coalesce(new.attribute_text, ''));
END;
CREATE TRIGGER insights_fts_delete AFTER DELETE ON insights BEGIN
    INSERT INTO insights_fts (insights_fts, rowid, vlm_summary, attribute_text)
    VALUES ('delete', old.seq, coalesce(old.vlm_summary, ''), coalesce(old.attribute_text, ''));
END;
CREATE TRIGGER insights_fts_update AFTER UPDATE OF vlm_summary, attribute_text ON insights BEGIN
    INSERT INTO insights_fts (insights_fts, rowid, vlm_summary, attribute_text)
    VALUES ('delete', old.seq, coalesce(old.vlm_summary, ''), coalesce(old.attribute_text, ''));
    INSERT INTO insights_fts (rowid, vlm_summary, attribute_text)
    VALUES (new.seq, coalesce(new.vlm_summary, ''), coalesce(new.attribute_text, ''));
END;
INSERT INTO insights_fts (insights_fts) VALUES ('rebuild');

-- Pending insights whose job was lost (enqueue failed after the alert
-- committed) are found and queued again by the notify role's sweep.
CREATE INDEX insights_pending ON insights (updated_at) WHERE vlm_status = 'pending';
