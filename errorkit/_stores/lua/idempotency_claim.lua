-- Claim an idempotency key: absent -> in progress, owned, expiring after the lease.
-- KEYS[1] the record; ARGV fingerprint, owner, lease_ms.
-- Returns {'claimed'}, {'completed', fp, response}, {'unstored', fp} or {'in_progress', fp}.
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'resp')
if r[1] == 'c' then return {'completed', r[2], r[3]} end
if r[1] == 'u' then return {'unstored', r[2]} end
if r[1] == 'p' then return {'in_progress', r[2]} end
redis.call('HSET', KEYS[1], 'state', 'p', 'fp', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'claimed'}
