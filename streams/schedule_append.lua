-- Append events to a schedule's history and update its view and due index, atomically.
-- KEYS[1] schedule history stream {ns}:schedule:{<id>}:events
-- KEYS[2] schedules view hash       {ns}:schedules        (id -> json)
-- KEYS[3] due index sorted set      {ns}:schedules:due    (id scored by due ms)
-- ARGV[1] id, ARGV[2] expected history length (optimistic check, like job appends),
-- ARGV[3] new view json ("" = delete the view), ARGV[4] due score ("" = not due),
-- ARGV[5..] pairs of event type, event json.
-- Reply: {1, new length} or {0, actual length} on a conflict (nothing written).
local len = redis.call('XLEN', KEYS[1])
if tonumber(ARGV[2]) ~= len then
  return {0, len}
end
local n = len
for i = 5, #ARGV, 2 do
  n = n + 1
  redis.call('XADD', KEYS[1], n .. '-0', 't', ARGV[i], 'e', ARGV[i + 1])
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
return {1, n}
