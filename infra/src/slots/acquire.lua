-- Take a stream slot. KEYS[1] = zset lease -> expiry (ms), KEYS[2] = hash
-- lease -> "renewedMs:lastEventMs". ARGV = lease, limit, ttl ms, resume ms ('' = none).
-- Uses the server clock. Returns {1} when granted, {0, ms until a slot lapses} when full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, l in ipairs(expired) do redis.call('HDEL', KEYS[2], l) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit and ARGV[4] ~= '' then
  -- Take over the client's own previous stream: seen at or before its
  -- Last-Event-ID, renewed longest ago.
  local resume = tonumber(ARGV[4])
  local best, best_renewed = nil, nil
  for _, l in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local meta = redis.call('HGET', KEYS[2], l)
    if meta then
      local renewed, last = string.match(meta, '^(%d+):(%d+)$')
      renewed, last = tonumber(renewed), tonumber(last)
      if last <= resume and (best_renewed == nil or renewed < best_renewed) then
        best, best_renewed = l, renewed
      end
    end
  end
  if best then
    redis.call('ZREM', KEYS[1], best)
    redis.call('HDEL', KEYS[2], best)
  end
end
if redis.call('ZCARD', KEYS[1]) >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], now .. ':0')
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) * 2)
return {1}
