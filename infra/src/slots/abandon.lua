-- Abandon a lease whose acquire failed or timed out and may still arrive.
-- KEYS as acquire.lua. ARGV = lease, ms to remember it. Removes the lease if
-- held and records it, so that acquire.lua refuses it if it runs later.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + keep, ARGV[1])
if redis.call('PTTL', KEYS[2]) < keep then
  redis.call('PEXPIRE', KEYS[2], keep)
end
return 1
