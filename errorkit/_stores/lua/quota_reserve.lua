-- Reserve quota units: usage + units <= limit -> usage += units, atomically.
-- KEYS[1] the workspace's quota hash (field: group -> usage), KEYS[2] the dataset marker of its slot.
-- ARGV group, limit (-1: unlimited, still counted), units.
-- Returns {1, usage after} or {0, usage as found}; {'lost'} when the group has no count and the
-- marker is gone too: the store lost errorkit's data, and a reset count would let the workspace
-- past its plan (a count set again by set_usage() is trusted: that is the repair).
local usage = redis.call('HGET', KEYS[1], ARGV[1])
if not usage and redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
usage = tonumber(usage) or 0
local limit, units = tonumber(ARGV[2]), tonumber(ARGV[3])
if limit >= 0 and usage + units > limit then return {0, usage} end
return {1, redis.call('HINCRBY', KEYS[1], ARGV[1], units)}
