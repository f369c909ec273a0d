-- The quota ledger: every change to a device's allowance (admin grants for
-- a month, unlimited, disabled, owner caps) with who, when and why. No
-- foreign key to devices: the history outlives a deleted device.
CREATE TABLE quota_changes (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    period     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('grant', 'unlimited', 'disabled', 'cap')),
    feature    TEXT,
    amount     BIGINT,
    flag       BIGINT,
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX quota_changes_user_time ON quota_changes (user_id, created_at DESC, id DESC);
CREATE INDEX quota_changes_device_period ON quota_changes (device_id, period, kind);
