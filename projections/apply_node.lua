-- Write a node view if it is newer than the stored one (views only move forward).
-- KEYS[1] view hash {ns}:node:{N}:view; ARGV[1] version, ARGV[2] view JSON. Reply 1 written, 0 older.
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if tonumber(ARGV[1]) <= current then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'json', ARGV[2])
return 1
