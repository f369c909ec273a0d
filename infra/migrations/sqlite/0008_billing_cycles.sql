-- billing_cycle_completed sent, once per user and billing period.
CREATE TABLE billing_cycles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period  TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, period)
);
-- Who used anything in a period (for closing it).
CREATE INDEX usage_monthly_period ON usage_monthly (period, user_id);
