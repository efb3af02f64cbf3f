-- GCRA, the twin of errorkit._stages.algorithms.GCRA.step. Time is Redis's own clock (TIME,
-- in microseconds) so workers with skewed clocks agree. KEYS: one per limit. ARGV: cost,
-- then (period_us, limit) per key; a negative limit is a shadow limit of that size: it never
-- refuses, and is charged only when it would have admitted. Charges every other key or none.
-- Returns {now_us, admitted (0/1), shadow limits that would have refused (bit i-1 for key i),
-- theoretical arrival time per key}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local out, new, over = {now, 1, 0}, {}, {}
for i = 1, #KEYS do
  local period, limit = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  new[i] = math.ceil(tat + cost * period / math.abs(limit))
  over[i] = new[i] - period > now
  if over[i] then
    if limit > 0 then out[2] = 0 else out[3] = out[3] + 2 ^ (i - 1) end
  end
  out[i + 3] = tat
end
if out[2] == 1 then
  for i = 1, #KEYS do
    if not over[i] then
      redis.call('SET', KEYS[i], string.format('%d', new[i]), 'PX', math.ceil((new[i] - now) / 1000))
      out[i + 3] = new[i]
    end
  end
end
return out
