-- Fixed window, the twin of errorkit._stages.algorithms.FixedWindow.step. KEYS: one per
-- limit. ARGV: cost, then (period_us, limit) per key; a negative limit is a shadow limit (see
-- gcra.lua). Windows are aligned to the epoch.
-- Returns {now_us, admitted (0/1), shadow limits that would have refused (bit i-1 for key i),
-- count in the current window per key}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local out, windows, over = {now, 1, 0}, {}, {}
for i = 1, #KEYS do
  local period, limit = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  windows[i] = math.floor(now / period)
  local state = redis.call('HMGET', KEYS[i], 'w', 'c')
  local count = tonumber(state[1]) == windows[i] and tonumber(state[2]) or 0
  over[i] = count + cost > math.abs(limit)
  if over[i] then
    if limit > 0 then out[2] = 0 else out[3] = out[3] + 2 ^ (i - 1) end
  end
  out[i + 3] = count
end
if out[2] == 1 then
  for i = 1, #KEYS do
    if not over[i] then
      out[i + 3] = out[i + 3] + cost
      redis.call('HSET', KEYS[i], 'w', string.format('%d', windows[i]), 'c', out[i + 3])
      redis.call('PEXPIREAT', KEYS[i], math.ceil((windows[i] + 1) * tonumber(ARGV[2 * i]) / 1000))
    end
  end
end
return out
