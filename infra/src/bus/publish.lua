-- Publish one event: append to the user's replay stream, trim it, and PUBLISH
-- it on the user's channel, atomically (stream order == delivery order).
-- KEYS[1] = stream. ARGV = channel, task, device, data, min events, min age (ms), idle ttl (ms).
-- Returns the stream id ("ms-0").
--
-- Each event of a user gets its own millisecond (the server clock, or one past
-- the previous event when publishes come faster than 1/ms), so the documented
-- SSE id `<taskId>-<epochMillis>` names exactly one event.
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if newest[1] then
  local last = tonumber(string.match(newest[1][1], '^(%d+)'))
  if last >= ms then ms = last + 1 end
end
local id = redis.call('XADD', KEYS[1], ms .. '-0', 't', ARGV[2], 'd', ARGV[3], 'p', ARGV[4])
local keep = tonumber(ARGV[5])
local len = redis.call('XLEN', KEYS[1])
if len > keep then
  -- Keep at least `keep` events AND everything younger than the minimum age:
  -- drop the oldest events that are both beyond the newest `keep` and older
  -- than the cutoff. Only those are read (XRANGE bounded by the cutoff), so a
  -- long buffer of young events costs nothing here.
  local cutoff = tonumber(string.match(id, '^(%d+)')) - tonumber(ARGV[6])
  local old = redis.call('XRANGE', KEYS[1], '-', (cutoff - 1) .. '-18446744073709551615', 'COUNT', len - keep)
  local n = #old
  if n > 0 then
    local last = tonumber(string.match(old[n][1], '^(%d+)'))
    redis.call('XTRIM', KEYS[1], 'MINID', (last + 1) .. '-0')
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PUBLISH', ARGV[1], id .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
return id
