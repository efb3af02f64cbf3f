-- Extend the owner's lease. KEYS[1] the record; ARGV owner, lease_ms.
local record = redis.call('GET', KEYS[1])
if not record or string.sub(record, 1, 1) ~= 'p' then return 0 end
if string.sub(record, 3 + string.byte(record, 2)) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
