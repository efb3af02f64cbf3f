-- Hold one quota unit for a creation: counted + held + 1 <= limit -> held as `token` until its lease ends.
-- KEYS[1] the workspace's counted usage (hash: group -> units), KEYS[2] the dataset marker of its slot,
-- KEYS[3] the group's holds (sorted set: token -> lease end, ms of Redis's clock).
-- ARGV group, limit (-1: unlimited, still counted), token, lease_ms.
-- Returns {1, usage with this unit} or {0, usage as found}; {'lost'} when the group has no count and the
-- marker is gone too: the store lost errorkit's data, and a reset count would let the workspace past
-- its plan (a count set again by set_usage() is trusted: that is the repair).
local counted = redis.call('HGET', KEYS[1], ARGV[1])
if not counted and redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local usage = (tonumber(counted) or 0) + redis.call('ZCARD', KEYS[3])
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[4])
if limit >= 0 and usage + 1 > limit then return {0, usage} end
redis.call('ZADD', KEYS[3], now + lease, ARGV[3])
if redis.call('PTTL', KEYS[3]) < lease then redis.call('PEXPIRE', KEYS[3], lease) end
return {1, usage + 1}
