-- Take a concurrency slot. KEYS[1] the slots: a sorted set, token -> lease end (ms, Redis's clock).
-- ARGV limit, token, lease_ms. Lapsed leases (a killed worker's) are dropped first.
-- Returns {1, slots held with this one} or {0, slots held}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return {0, held} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, held + 1}
