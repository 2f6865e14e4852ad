-- Swap a finished job's hot history for its archive, only if the history is still exactly
-- what was archived: it ends at the archived last seq and holds the archived number of
-- entries. Recording the pointer and deleting the hot keys happen in this one atomic step,
-- and the blob was written (and read back) before, so a crash at any point keeps the history:
-- in the stream, or in the blob the pointer names.
--
-- KEYS[1] history, [2] archive pointer (hash), [3] archived-jobs set, [4] results stream,
-- [5] lease, [6] lease epoch, [7] commands.
-- ARGV[1] job id, [2] last seq, [3] entry count, [4] sha256, [5] blob size, [6] archived at ms.
-- Reply: {1, last} archived; {0, actual} the history moved on, differs, or is already archived.
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local actual = 0
if #last > 0 then actual = tonumber(string.match(last[1][1], '^(%d+)-')) end
if actual == 0 or actual ~= tonumber(ARGV[2]) then
  return {0, actual}
end
if redis.call('XLEN', KEYS[1]) ~= tonumber(ARGV[3]) then
  return {0, actual}
end
redis.call('HSET', KEYS[2], 'sha256', ARGV[4], 'size', ARGV[5], 'entries', ARGV[3],
  'last_seq', ARGV[2], 'archived_at_ms', ARGV[6])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
return {1, actual}
