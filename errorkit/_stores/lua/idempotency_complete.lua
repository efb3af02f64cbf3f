-- Complete a claim (owner only): keep the response for ttl_ms, or mark it ran but unreplayable.
-- KEYS[1] the record; ARGV owner, ttl_ms[, response]. Returns 1 when done, 0 when not the owner.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if ARGV[3] then
  redis.call('HSET', KEYS[1], 'state', 'c', 'resp', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'state', 'u')
end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
