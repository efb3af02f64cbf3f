-- Write an API key record in one step (a reader never sees it half written or missing), and
-- mark its slot as holding errorkit's data.
-- KEYS[1] the record, KEYS[2] the dataset marker of its slot; ARGV[1] the marker's value,
-- then field, value, field, value, ...
redis.call('SET', KEYS[2], ARGV[1], 'NX')
redis.call('DEL', KEYS[1])
return redis.call('HSET', KEYS[1], unpack(ARGV, 2))
