-- Read quota usage. KEYS[1] the workspace's quota hash, KEYS[2] the dataset marker of its slot.
-- ARGV the groups. Returns their usage (absent: 0), or {'lost'} as quota_reserve.lua does.
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
local found, usage = redis.call('HMGET', KEYS[1], unpack(ARGV)), {}
for i = 1, #ARGV do usage[i] = tonumber(found[i]) or 0 end
return usage
