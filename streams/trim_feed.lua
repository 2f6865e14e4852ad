-- Trim the feed up to (not including) the oldest entry some consumer group still needs.
--
-- KEYS[1] feed stream. ARGV[1] optional upper bound id ("" for none): never trim at or past it.
-- An entry is still needed by a group when it is pending (delivered, not acknowledged) or
-- not yet delivered (after the group's last-delivered-id). Running this as one script makes
-- the check and the trim atomic: no group can read or ack in between.
-- Reply: {trimmed_count, min_id_used}; {0, ""} when there is no group (nothing is known to be consumed).
local function id_lt(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
local function next_id(a)
  local ms, seq = string.match(a, '^(%d+)-(%d+)$')
  return ms .. '-' .. (tonumber(seq) + 1)
end

if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {0, ''} end
local min_id = nil
for _, g in ipairs(groups) do
  local name, last_delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last_delivered = g[i + 1] end
  end
  local keep = next_id(last_delivered)
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 and id_lt(pending[2], keep) then keep = pending[2] end
  if min_id == nil or id_lt(keep, min_id) then min_id = keep end
end
if ARGV[1] ~= '' and id_lt(ARGV[1], min_id) then min_id = ARGV[1] end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', min_id)
return {trimmed, min_id}
