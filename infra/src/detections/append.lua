-- Append a detection result once per job id.
-- KEYS[1] the device's stream, KEYS[2] the job's marker
-- ARGV[1] result JSON, ARGV[2] marker ttl (ms), ARGV[3] stream MAXLEN
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'r', ARGV[1])
return 1
