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
    upper_color_share DOUBLE PRECISION NOT NULL,
    lower_color_share DOUBLE PRECISION NOT NULL,
    confidence        DOUBLE PRECISION NOT NULL,
    box_x             DOUBLE PRECISION NOT NULL,
    box_y             DOUBLE PRECISION NOT NULL,
    box_width         DOUBLE PRECISION NOT NULL,
    box_height        DOUBLE PRECISION NOT NULL,
    observed_at       BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX attributes_user_observed ON attributes (user_id, observed_at DESC, id DESC);
CREATE INDEX attributes_task_observed ON attributes (task_id, observed_at);

-- An insight carries the attributes of the people in view when its alert
-- fired: how many, and their words, which full-text search matches as well
-- as the summary's.
ALTER TABLE insights ADD COLUMN attribute_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE insights ADD COLUMN attribute_text TEXT;
DROP INDEX insights_summary_fts;
ALTER TABLE insights DROP COLUMN vlm_summary_tsv;
ALTER TABLE insights ADD COLUMN search_tsv TSVECTOR GENERATED ALWAYS AS (
    to_tsvector('simple', coalesce(vlm_summary, '') || ' ' || coalesce(attribute_text, ''))
) STORED;
CREATE INDEX insights_search_fts ON insights USING GIN (search_tsv);

-- Pending insights whose job was lost (enqueue failed after the alert
-- committed) are found and queued again by the notify role's sweep.
CREATE INDEX insights_pending ON insights (updated_at) WHERE vlm_status = 'pending';
