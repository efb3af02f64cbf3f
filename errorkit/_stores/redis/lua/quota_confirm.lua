-- Count a held unit: its creation made the resource. Once per token: the same confirmation sent again
-- (its first outcome unknown) changes nothing, and a hold that lapsed is counted all the same.
-- KEYS[1] the workspace's counted usage, KEYS[2] the dataset marker of its slot, KEYS[3] the group's
-- holds, KEYS[4] the workspace's settled tokens (sorted set: token -> when settled, ms).
-- ARGV group, token, how long a settled token is remembered (ms).
-- Returns the counted usage, or {'lost'} (nothing written) when the group has no count and the
-- marker is gone: writing one would turn a lost count into a trusted one.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[3]))
local counted = redis.call('HGET', KEYS[1], ARGV[1])
if redis.call('ZSCORE', KEYS[4], ARGV[2]) then return tonumber(counted) or 0 end
if not counted and redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], now, ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
