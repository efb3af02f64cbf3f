-- The rate-limit decision and, if admitted, the idempotency claim: one atomic step, one slot.
-- The store fills in the two bodies below with the algorithm's script and idempotency_claim.lua
-- (each then a function of its own KEYS and ARGV).
-- KEYS: the n limit keys, the record, the dataset marker.
-- ARGV: fingerprint, owner, lease_ms, n, cost, (period_us, limit) per limit key (what is the
-- same for every request of a workspace and policy last: the store packs it once).
-- Returns {counted} when the limit refused (nothing claimed), else {counted, claim}.
local function limit(KEYS, ARGV)
--[[ the algorithm ]]
end
local function claim(KEYS, ARGV)
--[[ the claim ]]
end
local n = tonumber(ARGV[4])
local limit_keys, limit_args = {}, {}
for i = 1, n do limit_keys[i] = KEYS[i] end
for i = 1, 2 * n + 1 do limit_args[i] = ARGV[i + 4] end
local counted = limit(limit_keys, limit_args)
if counted[2] == 0 then return {counted} end
return {counted, claim({KEYS[n + 1], KEYS[n + 2]}, {ARGV[1], ARGV[2], ARGV[3]})}
