-- Fixed window, the twin of errorkit._stages.algorithms.FixedWindow.step. KEYS: one per
-- limit. ARGV: cost, then (period_us, limit) per key. Windows are aligned to the epoch.
-- Returns {now_us, admitted (0/1), count in the current window per key}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local out, windows = {now, 1}, {}
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 * i])
  windows[i] = math.floor(now / period)
  local state = redis.call('HMGET', KEYS[i], 'w', 'c')
  local count = tonumber(state[1]) == windows[i] and tonumber(state[2]) or 0
  if count + cost > tonumber(ARGV[2 * i + 1]) then out[2] = 0 end
  out[i + 2] = count
end
if out[2] == 1 then
  for i = 1, #KEYS do
    out[i + 2] = out[i + 2] + cost
    redis.call('HSET', KEYS[i], 'w', string.format('%d', windows[i]), 'c', out[i + 2])
    redis.call('PEXPIREAT', KEYS[i], math.ceil((windows[i] + 1) * tonumber(ARGV[2 * i]) / 1000))
  end
end
return out
