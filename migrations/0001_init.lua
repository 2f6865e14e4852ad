-- 0001 init: mark the keyspace as created by mirror-neuron and create the consumer group the
-- projection workers read the feed with (starting at the beginning of the feed).
-- KEYS[3] feed stream (shard 0). ARGV[1] meta key prefix (the namespace; under Redis Cluster
-- also shard 0's tag, so the key below shares the slot of KEYS), ARGV[2] now ms.
redis.call('SET', ARGV[1] .. ':meta:created_at_ms', ARGV[2], 'NX')
local ok = redis.pcall('XGROUP', 'CREATE', KEYS[3], 'projections', '0', 'MKSTREAM')
if type(ok) == 'table' and ok.err and not string.find(ok.err, 'BUSYGROUP') then
  return redis.error_reply(ok.err)
end
