-- Fenced, optimistic append of a batch of events to one job's history.
--
-- KEYS[1] job history stream   {ns}:job:{J}:events   (entry ids are "<seq>-0": seq = stream id)
-- KEYS[2] job lease epoch      {ns}:job:{J}:lease_epoch (INCRed by every lease acquisition)
-- KEYS[3] global feed stream   {ns}:feed             (one entry per append: "job J now has seqs F..L")
-- KEYS[4] job registry set     {ns}:jobs:registry    (every job id that has a history)
-- KEYS[5] job archive pointer  {ns}:job:{J}:archive  (set once a finished job's history was archived)
-- ARGV[1] job id
-- ARGV[2] expected version: the seq of the last event the writer saw (0 for a new job)
-- ARGV[3] writer's lease epoch (fencing token; 0 = no lease was ever taken)
-- ARGV[4] number of events N, then N triples: event id, event type, encoded envelope
--         (only the first event id is stored; the type is inside the envelope)
--
-- Replies (a two- or three-element array, first element is the outcome):
--   {"OK", first_seq, last_seq}
--   {"DUPLICATE", first_seq, last_seq}  the same batch was already appended (a retry after a lost reply)
--   {"CONFLICT", expected, actual}      someone else appended first: reload and decide again
--   {"STALE_EPOCH", writer, current}    a newer lease exists: the writer must stop acting for the job
--   {"FUTURE_EPOCH", writer, current}   an epoch that was never issued: a bug in the writer

local writer_epoch = tonumber(ARGV[3])
local current_epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
if writer_epoch < current_epoch then
  return {'STALE_EPOCH', writer_epoch, current_epoch}
end
if writer_epoch > current_epoch then
  return {'FUTURE_EPOCH', writer_epoch, current_epoch}
end

local expected = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
local actual = 0
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  actual = tonumber(string.match(last[1][1], '^(%d+)-'))
else
  -- An archived job's stream is gone but its history is not: it ends where the archive does,
  -- so nothing can start a new history under its id.
  actual = tonumber(redis.call('HGET', KEYS[5], 'last_seq') or '0')
end

if actual ~= expected then
  if actual >= expected + n and n > 0 then
    -- Was this very batch appended already? Compare the first event id at expected + 1.
    local probe = redis.call('XRANGE', KEYS[1], (expected + 1) .. '-0', (expected + 1) .. '-0')
    if #probe == 1 then
      local fields = probe[1][2]
      for i = 1, #fields, 2 do
        if fields[i] == 'b' and fields[i + 1] == ARGV[5] then
          return {'DUPLICATE', expected + 1, expected + n}
        end
      end
    end
  end
  return {'CONFLICT', expected, actual}
end

if expected == 0 then
  redis.call('SADD', KEYS[4], ARGV[1])
end
-- The first entry of a batch carries the batch's first event id ('b') so a retried batch is
-- recognised; every other field lives inside the envelope ('e'). Fewer fields, faster appends.
redis.call('XADD', KEYS[1], (expected + 1) .. '-0', 'b', ARGV[5], 'e', ARGV[7])
for i = 1, n - 1 do
  redis.call('XADD', KEYS[1], (expected + 1 + i) .. '-0', 'e', ARGV[7 + 3 * i])
end
-- One feed entry per batch: consumers read the events themselves from the job's history,
-- so a batch of 100 events costs one feed entry, not 100 copies.
redis.call('XADD', KEYS[3], '*', 'j', ARGV[1], 'f', expected + 1, 'l', expected + n)
return {'OK', expected + 1, expected + n}
