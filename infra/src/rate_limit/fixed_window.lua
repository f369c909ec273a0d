-- Fixed-window counter. KEYS[1] = window key, ARGV[1] = window length (ms).
-- Returns the count after this hit. The key expires with its window, so a
-- crashed caller leaves nothing behind.
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
