-- Hand out (and forget) every registered node whose heartbeat key lapsed.
-- KEYS[1] the node hash; ARGV[1] the heartbeat key prefix (same hash tag).
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  if redis.call('EXISTS', ARGV[1] .. all[i]) == 0 then
    redis.call('HDEL', KEYS[1], all[i])
    table.insert(out, all[i + 1])
  end
end
return out
