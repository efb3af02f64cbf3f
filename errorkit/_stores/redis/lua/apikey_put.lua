-- Write an API key record in one step (a reader never sees it half written or missing), and
-- mark its slot as holding errorkit's data. A record put over a revoked one stays revoked:
-- once revoked, always revoked.
-- KEYS[1] the record, KEYS[2] the dataset marker of its slot; ARGV[1] the marker's value,
-- then field, value, field, value, ...
redis.call('SET', KEYS[2], ARGV[1], 'NX')
local revoked = redis.call('HGET', KEYS[1], 'revoked')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if revoked == '1' then
  redis.call('HSET', KEYS[1], 'revoked', '1')
end
return 1
