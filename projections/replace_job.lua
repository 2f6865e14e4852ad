-- Replace all views of one job with views rebuilt from its full history
-- (`mirror-neuron admin rebuild-projections`). Unconditional, but never moves a view
-- backwards: if the live view is already past the rebuilt seq, it is left alone.
--
-- KEYS[1] job view hash, KEYS[2] agent views hash, KEYS[3] dead letters list,
-- KEYS[4] jobs by time zset, KEYS[5] new status zset, KEYS[6..] every status zset (to clear).
-- ARGV as in apply_job.lua (ARGV[2] is ignored).
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if current > tonumber(ARGV[3]) then
  return {0, current}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
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
for k = 6, #KEYS do
  redis.call('ZREM', KEYS[k], ARGV[1])
end
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
return {1, tonumber(ARGV[3])}
