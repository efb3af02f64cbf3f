-- Forget an in-progress claim (owner only). KEYS[1] the record; ARGV owner.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
