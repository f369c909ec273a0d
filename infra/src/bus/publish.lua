-- Publish one event: append to the user's replay stream, trim it, and PUBLISH
-- it on the user's channel, atomically (stream order == delivery order).
-- KEYS[1] = stream. ARGV = channel, task, device, data, min events, min age (ms), idle ttl (ms).
-- Returns the stream id ("ms-seq").
local id = redis.call('XADD', KEYS[1], '*', 't', ARGV[2], 'd', ARGV[3], 'p', ARGV[4])
local keep = tonumber(ARGV[5])
local len = redis.call('XLEN', KEYS[1])
if len > keep then
  -- Keep at least `keep` events AND everything younger than the minimum age.
  local cutoff = tonumber(string.match(id, '^(%d+)')) - tonumber(ARGV[6])
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - keep)
  for _, entry in ipairs(oldest) do
    if tonumber(string.match(entry[1], '^(%d+)')) < cutoff then
      redis.call('XDEL', KEYS[1], entry[1])
    else
      break
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PUBLISH', ARGV[1], id .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
return id
