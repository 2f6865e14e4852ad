-- Take a deployment key off the controller's index, unless it was appended to since the
-- controller looked (its score changed): then the new events still need acting on.
-- KEYS[1] unsettled index sorted set {ns}:deployments:active
-- ARGV[1] key, ARGV[2] the score the controller saw.
-- Reply: 1 removed, 0 kept.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
