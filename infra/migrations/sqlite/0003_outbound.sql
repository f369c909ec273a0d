-- Outbound connections to cameras: Basic auth over plain rtsp:// (credentials
-- in clear) only for devices that opted in; Digest, and Basic over rtsps://,
-- need no opt-in.
ALTER TABLE devices ADD COLUMN allow_plain_basic_auth BIGINT NOT NULL DEFAULT 0;
