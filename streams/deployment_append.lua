-- Append events to a deployment key's history and update its view and indexes, atomically.
-- KEYS[1] deployment history stream {ns}:deployment:{<key>}:events
-- KEYS[2] deployments view hash       {ns}:deployments         (key -> json)
-- KEYS[3] unsettled index sorted set  {ns}:deployments:active  (key scored by append ms)
-- KEYS[4] id index hash               {ns}:deployments:ids     (deployment id -> key)
-- ARGV[1] key, ARGV[2] expected history length (optimistic check, like job appends),
-- ARGV[3] new view json, ARGV[4] now ms, ARGV[5] deployment id ("" = none),
-- ARGV[6..] pairs of event type, event json.
-- Every append marks the key unsettled: the controller acts on it, and removes it from the
-- index only once nothing is left to do (see runtime/deployments/controller.rs).
-- Reply: {1, new length} or {0, actual length} on a conflict (nothing written).
local len = redis.call('XLEN', KEYS[1])
if tonumber(ARGV[2]) ~= len then
  return {0, len}
end
local n = len
for i = 6, #ARGV, 2 do
  n = n + 1
  redis.call('XADD', KEYS[1], n .. '-0', 't', ARGV[i], 'e', ARGV[i + 1])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[1])
end
return {1, n}
