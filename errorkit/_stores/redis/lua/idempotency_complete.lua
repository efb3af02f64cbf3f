-- Complete a claim (owner only): keep the response for ttl_ms, or mark it ran but unreplayable.
-- KEYS[1] the record; ARGV owner, ttl_ms[, response]. Returns 1 when done, 0 when not the owner.
local record = redis.call('GET', KEYS[1])
if not record or string.sub(record, 1, 1) ~= 'p' then return 0 end
local n = string.byte(record, 2)
if string.sub(record, 3 + n) ~= ARGV[1] then return 0 end
local fingerprint = string.sub(record, 2, 2 + n)  -- with its length byte
if ARGV[3] then
  redis.call('SET', KEYS[1], 'c' .. fingerprint .. ARGV[3], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], 'u' .. fingerprint, 'PX', ARGV[2])
end
return 1
