-- Acquire (or keep) a fenced lease.
--
-- KEYS[1] lease key   value "<owner>|<epoch>", expires after the lease duration
-- KEYS[2] epoch key   monotonically increasing fencing epoch, never expires
-- ARGV[1] owner, ARGV[2] lease duration in ms
--
-- Reply: {1, epoch} acquired (a new epoch when the lease changed hands or had expired,
--        the same epoch when the caller already held it: then it is a renewal);
--        {0, holder} someone else holds it.
local held = redis.call('GET', KEYS[1])
if held then
  local owner, epoch = string.match(held, '^(.*)|(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(epoch)}
  end
  return {0, owner or held}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return {1, epoch}
