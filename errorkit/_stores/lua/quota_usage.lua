-- Read quota usage. KEYS[1] the workspace's quota hash, KEYS[2] the dataset marker of its slot.
-- ARGV the groups. Returns their usage (never counted: 0), or {'lost'} when one has no count and
-- the marker is gone (as quota_reserve.lua decides).
local found, usage = redis.call('HMGET', KEYS[1], unpack(ARGV)), {}
local marked = nil
for i = 1, #ARGV do
  if not found[i] then
    if marked == nil then marked = redis.call('EXISTS', KEYS[2]) == 1 end
    if not marked then return {'lost'} end
  end
  usage[i] = tonumber(found[i]) or 0
end
return usage
