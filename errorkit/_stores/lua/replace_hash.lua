-- Replace a hash in one step, so a reader never sees it half written or missing.
-- KEYS[1] the hash; ARGV field, value, field, value, ...
redis.call('DEL', KEYS[1])
return redis.call('HSET', KEYS[1], unpack(ARGV))
