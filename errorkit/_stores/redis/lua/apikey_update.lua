-- Change some fields of an existing API key record, and only those, in one step: no other
-- field is read and written back, so a concurrent change to another field (a revocation)
-- is never undone, and a record that is gone is not brought back. The caller never sets
-- 'revoked' to anything but '1' (errorkit._principal.check_update).
-- KEYS[1] the record, KEYS[2] the dataset marker of its slot; ARGV[1] how many fields are set,
-- then field, value, ... for those, then the names of the fields to remove.
-- Returns 1 when changed, 0 when there is no such record, -1 when neither it nor the marker is
-- there (the store lost its data: it cannot tell whether the key exists).
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    return -1
  end
  return 0
end
local set = tonumber(ARGV[1])
if set > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + 2 * set))
end
if #ARGV > 1 + 2 * set then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 2 + 2 * set))
end
return 1
