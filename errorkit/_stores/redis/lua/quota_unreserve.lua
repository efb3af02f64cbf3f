-- A resource was deleted: counted usage -= 1, never below 0, once per token (the same deletion sent
-- again, its first outcome unknown, changes nothing).
-- KEYS[1] the workspace's counted usage, KEYS[2] the dataset marker of its slot, KEYS[3] the
-- workspace's settled tokens. ARGV group, token, how long a settled token is remembered (ms).
-- Returns the counted usage, or {'lost'} (nothing written) when the group has no count and the
-- marker is gone: writing one would turn a lost count into a trusted 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))
local counted = redis.call('HGET', KEYS[1], ARGV[1])
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then return tonumber(counted) or 0 end
if not counted and redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
counted = math.max(0, (tonumber(counted) or 0) - 1)
redis.call('HSET', KEYS[1], ARGV[1], counted)
redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return counted
