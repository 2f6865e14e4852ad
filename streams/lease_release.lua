-- Release a lease only if the caller still holds it at the same epoch.
-- KEYS[1] lease key; ARGV[1] owner, ARGV[2] epoch. Reply 1 released, 0 not held.
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
