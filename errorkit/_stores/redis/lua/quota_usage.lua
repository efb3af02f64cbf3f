-- Read quota usage: per group, the units counted and the live holds. KEYS[1] the workspace's counted
-- usage, KEYS[2] the dataset marker of its slot, KEYS[2 + i] the holds of group i. ARGV the groups.
-- Returns their usage (never counted: 0), or {'lost'} when one has no count and the marker is gone
-- (as quota_reserve.lua decides).
local found, usage = redis.call('HMGET', KEYS[1], unpack(ARGV)), {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local marked = nil
for i = 1, #ARGV do
  if not found[i] then
    if marked == nil then marked = redis.call('EXISTS', KEYS[2]) == 1 end
    if not marked then return {'lost'} end
  end
  usage[i] = (tonumber(found[i]) or 0) + redis.call('ZCOUNT', KEYS[2 + i], '(' .. now, '+inf')
end
return usage
