-- Give up on a claimed entry: a dead letter, once. Only an entry still
-- pending in the group is dead-lettered, so a failure reported after the
-- claim lapsed and the entry was settled (dead-lettered by the reclaiming
-- pull, or acknowledged) adds no second dead letter.
-- KEYS[1] the shard's stream, KEYS[2] the dead letters.
-- ARGV[1] group, ARGV[2] entry, ARGV[3] dead letters kept, ARGV[4] job id,
-- ARGV[5] device, ARGV[6] attempts, ARGV[7] error.
local pending = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if pending == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
    'i', ARGV[4], 'd', ARGV[5], 'a', ARGV[6], 'e', ARGV[7])
end
redis.call('XDEL', KEYS[1], ARGV[2])
return pending
