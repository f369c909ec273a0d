-- A device key works for the one device it was created for; deleting the
-- device deletes its keys (an unbound device key would reach every device).
ALTER TABLE api_keys ADD COLUMN device_id TEXT REFERENCES devices (id) ON DELETE CASCADE;
CREATE INDEX api_keys_device ON api_keys (device_id) WHERE device_id IS NOT NULL;
