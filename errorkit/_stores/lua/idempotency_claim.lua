-- Claim an idempotency key: absent -> in progress, owned, expiring after the lease.
-- KEYS[1] the record, KEYS[2] the dataset marker of its slot; ARGV fingerprint, owner, lease_ms.
-- Returns {'claimed'}, {'completed', fp, response}, {'unstored', fp}, {'in_progress', fp}, or
-- {'lost'} when the record is absent and so is the marker: the store lost errorkit's data, so
-- the key may have been used before, and nothing is claimed.
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'resp')
if r[1] == 'c' then return {'completed', r[2], r[3]} end
if r[1] == 'u' then return {'unstored', r[2]} end
if r[1] == 'p' then return {'in_progress', r[2]} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
redis.call('HSET', KEYS[1], 'state', 'p', 'fp', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'claimed'}
