-- Delete a finished job entirely (history, lease, views, indexes), only if its history is
-- still at the version the caller checked (it saw a terminal event there, after which nothing
-- may be appended; the check makes "terminal" and "delete" one atomic step).
--
-- An archived job (no history stream, an archive pointer) is checked against the pointer's
-- last seq and loses its pointer too; its blob becomes garbage for `admin gc`.
--
-- KEYS[1] history, [2] lease, [3] lease epoch, [4] view, [5] agents, [6] dead letters,
-- [7] registry set, [8] by-time zset, [9] archive pointer, [10] archived-jobs set,
-- [11..] every per-status zset.
-- ARGV[1] job id, ARGV[2] expected version.
-- Reply: {1, version} deleted; {0, actual} the history moved on (or does not exist).
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local actual = 0
if #last > 0 then actual = tonumber(string.match(last[1][1], '^(%d+)-')) end
if actual == 0 then
  actual = tonumber(redis.call('HGET', KEYS[9], 'last_seq') or '0')
end
if actual == 0 or actual ~= tonumber(ARGV[2]) then
  return {0, actual}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[9])
redis.call('SREM', KEYS[7], ARGV[1])
redis.call('SREM', KEYS[10], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
for k = 11, #KEYS do
  redis.call('ZREM', KEYS[k], ARGV[1])
end
return {1, actual}
