-- Extend the owner's lease. KEYS[1] the record; ARGV owner, lease_ms.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
