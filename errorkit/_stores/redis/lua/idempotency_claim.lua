-- Claim an idempotency key: absent -> in progress, owned, expiring after the lease.
-- KEYS[1] the record, KEYS[2] the dataset marker of its slot; ARGV fingerprint, owner, lease_ms.
-- A record is one string: state ('p' in progress, 'c' completed, 'u' ran but not stored), the
-- fingerprint's length in one byte, the fingerprint, then the owner ('p') or the response ('c').
-- Returns {'claimed'}, {'completed', fp, response}, {'unstored', fp}, {'in_progress', fp}, or
-- {'lost'} when the record is absent and so is the marker: the store lost errorkit's data, so
-- the key may have been used before, and nothing is claimed.
local record = redis.call('GET', KEYS[1])
if record then
  local n = string.byte(record, 2)
  local state, fp = string.sub(record, 1, 1), string.sub(record, 3, 2 + n)
  if state == 'c' then return {'completed', fp, string.sub(record, 3 + n)} end
  if state == 'u' then return {'unstored', fp} end
  return {'in_progress', fp}
end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
redis.call('SET', KEYS[1], 'p' .. string.char(#ARGV[1]) .. ARGV[1] .. ARGV[2], 'PX', ARGV[3])
return {'claimed'}
