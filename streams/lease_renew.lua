-- Renew a lease only if the caller still holds it at the same epoch.
-- KEYS[1] lease key; ARGV[1] owner, ARGV[2] epoch, ARGV[3] duration ms. Reply 1 renewed, 0 lost.
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
