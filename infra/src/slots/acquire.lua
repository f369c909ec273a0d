-- Take a stream slot. KEYS[1] = zset lease -> expiry (ms), KEYS[2] = zset
-- abandoned lease -> when that entry lapses (ms). ARGV = lease, limit, ttl ms,
-- the lease it replaces ('' = none), the takeover channel, the user.
-- Uses the server clock. Returns {1, replaced (0|1)} when granted,
-- {0, ms until a slot lapses} when full, {2} when the lease was abandoned.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, limit, ttl, old = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
-- Its caller gave up before this ran (see abandon.lua): take nothing.
if redis.call('ZSCORE', KEYS[2], lease) then
  return {2}
end
local held = redis.call('ZSCORE', KEYS[1], lease)
local count = redis.call('ZCARD', KEYS[1])
local replaced = 0
-- The client proved (by its stream token) that `old` is its own previous
-- stream: that lease makes room, once, and its holder is told at once.
if not held and old ~= '' and old ~= lease and count <= limit
    and redis.call('ZSCORE', KEYS[1], old) then
  redis.call('ZREM', KEYS[1], old)
  redis.call('PUBLISH', ARGV[5], ARGV[6] .. '|' .. old)
  count = count - 1
  replaced = 1
end
if not held and count >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then
    return {0, tonumber(first[2]) - now}
  end
  return {0, ttl}
end
redis.call('ZADD', KEYS[1], now + ttl, lease)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return {1, replaced}
