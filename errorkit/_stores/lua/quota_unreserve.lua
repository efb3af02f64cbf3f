-- Give quota units back: usage -= units, never below 0. KEYS[1] the workspace's quota hash,
-- KEYS[2] the dataset marker of its slot. ARGV group, units. Returns the new usage, or {'lost'}
-- (nothing written) when the group has no count and the marker is gone: writing one would turn
-- a lost count into a trusted 0.
local usage = redis.call('HGET', KEYS[1], ARGV[1])
if not usage and redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
usage = math.max(0, (tonumber(usage) or 0) - tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], ARGV[1], usage)
return usage
