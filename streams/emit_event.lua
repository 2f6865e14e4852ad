-- Record an emitted event once per idempotency key.
-- KEYS[1] emitted events stream {ns}:events:emitted
-- KEYS[2] idempotency key       {ns}:events:idempotency:<key> (ignored when ARGV[4] is "0")
-- ARGV[1] event json, ARGV[2] idempotency TTL seconds, ARGV[3] approximate stream cap,
-- ARGV[4] "1" when an idempotency key was given.
-- Reply: {1, event json} when recorded now, {0, first event json} for a repeated key.
if ARGV[4] == '1' then
  local first = redis.call('GET', KEYS[2])
  if first then
    return {0, first}
  end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[2]))
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[3]), '*', 'e', ARGV[1])
return {1, ARGV[1]}
