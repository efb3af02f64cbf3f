-- GCRA, the twin of errorkit._stages.algorithms.GCRA.step. Time is Redis's own clock (TIME,
-- in microseconds) so workers with skewed clocks agree. KEYS: one per limit. ARGV: cost,
-- then (period_us, limit) per key. Charges every key or none.
-- Returns {now_us, admitted (0/1), theoretical arrival time per key}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local out, new = {now, 1}, {}
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  new[i] = math.ceil(tat + cost * period / tonumber(ARGV[2 * i + 1]))
  if new[i] - period > now then out[2] = 0 end
  out[i + 2] = tat
end
if out[2] == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%d', new[i]), 'PX', math.ceil((new[i] - now) / 1000))
    out[i + 2] = new[i]
  end
end
return out
