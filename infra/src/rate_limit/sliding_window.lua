-- Sliding-window log. KEYS[1] = sorted set of admitted request times (ms).
-- ARGV[1] = limit, ARGV[2] = window (ms), ARGV[3] = a unique member id,
-- ARGV[4] = 1 to count this request, 0 to only look (peek).
-- Uses the server clock, so every replica agrees on "now".
-- Returns {admitted (0/1), count in window after this call, ms until a slot frees}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local admitted = 0
if count < limit and ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  admitted = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local reset = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
end
return {admitted, count, reset}
