-- Give quota units back: usage -= units, never below 0. KEYS[1] the workspace's quota hash.
-- ARGV group, units. Returns the new usage.
local usage = math.max(0, (tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0) - tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], ARGV[1], usage)
return usage
