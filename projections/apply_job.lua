-- Write one job's views after a projection worker applied a batch of its events.
-- Compare-and-set on the view's sequence makes it safe with several workers and redelivery:
-- a worker that loaded an older view gets {0, current_seq} and reloads.
--
-- KEYS[1] job view hash        {ns}:job:{J}:view          fields: seq, json
-- KEYS[2] agent views hash     {ns}:job:{J}:agents        field per agent id -> json
-- KEYS[3] dead letters list    {ns}:job:{J}:dead_letters  json per entry, oldest first
-- KEYS[4] jobs by time zset    {ns}:jobs:by_time          score = submitted_at ms
-- KEYS[5] old status zset      {ns}:jobs:status:<old>     (same as KEYS[6] when unchanged)
-- KEYS[6] new status zset      {ns}:jobs:status:<new>
-- ARGV[1] job id, ARGV[2] seq the worker loaded, ARGV[3] new seq, ARGV[4] view json,
-- ARGV[5] submitted_at ms, ARGV[6] number of agent rows A, then A pairs (agent id, json),
-- then the dead-letter entries (json each).
local loaded = tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if current ~= loaded then
  return {0, current}
end
redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'json', ARGV[4])
local a = tonumber(ARGV[6])
local i = 7
for _ = 1, a do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('RPUSH', KEYS[3], ARGV[i])
  i = i + 1
end
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
if KEYS[5] ~= KEYS[6] then
  redis.call('ZREM', KEYS[5], ARGV[1])
end
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[1])
return {1, tonumber(ARGV[3])}
