-- Append one event to a job definition's history and update its view, atomically.
-- KEYS[1] definition history stream {ns}:definition:{<id>}:events
-- KEYS[2] definitions view hash     {ns}:definitions  (id -> json)
-- ARGV[1] id, ARGV[2] event type, ARGV[3] event json, ARGV[4] new view json ("" = delete view),
-- ARGV[5] expected history length ("" = any): optimistic check, like job appends.
-- Reply: {1, new length} or {0, actual length} on a conflict.
local len = redis.call('XLEN', KEYS[1])
if ARGV[5] ~= '' and tonumber(ARGV[5]) ~= len then
  return {0, len}
end
redis.call('XADD', KEYS[1], '*', 't', ARGV[2], 'e', ARGV[3])
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
end
return {1, len + 1}
