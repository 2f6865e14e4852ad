-- Optimistic append to one node's history (joins, losses, drains, maintenance).
--
-- KEYS[1] node history stream  {ns}:node:{N}:events  (entry ids "<seq>-0")
-- KEYS[2] nodes feed           {ns}:nodes:feed       (one entry per append, for the view workers)
-- KEYS[3] nodes registry set   {ns}:nodes
-- ARGV[1] node name, ARGV[2] expected version, ARGV[3] N, then N encoded envelopes
--
-- Replies {"OK", first_seq, last_seq} or {"CONFLICT", expected, actual}.
local expected = tonumber(ARGV[2])
local actual = 0
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  actual = tonumber(string.match(last[1][1], '^(%d+)-'))
end
if actual ~= expected then
  return {'CONFLICT', expected, actual}
end
local n = tonumber(ARGV[3])
for i = 1, n do
  redis.call('XADD', KEYS[1], (expected + i) .. '-0', 'e', ARGV[3 + i])
end
redis.call('SADD', KEYS[3], ARGV[1])
-- A view worker folds a node from its view's version to the end of its history, so a trimmed
-- feed entry loses nothing: any later entry for the node catches it up.
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'n', ARGV[1], 'v', expected + n)
return {'OK', expected + 1, expected + n}
