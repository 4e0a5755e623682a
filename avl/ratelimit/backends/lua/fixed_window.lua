-- avl rate limiter: fixed windows over every rate of a limiter, atomically.
-- Mirrors avl/ratelimit/_strategies.py:fixed_step + combine.
-- KEYS[1]  state key; value "w1,c1,w2,c2,..." (window index and count per rate)
-- ARGV     op (0 hit, 1 test, 2 peek, 3 refund, 4 force), cost,
--          now_us ('' = use the server's TIME), n, then limit_i, period_us_i
-- Returns  {ok, index (1-based), remaining, reset_us, retry_us (-1 = never)}
local op = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
local n = tonumber(ARGV[4])
local raw = redis.call('GET', KEYS[1])
local st = {}
if raw then
  local i = 1
  for part in string.gmatch(raw, '[^,]+') do
    st[i] = tonumber(part)
    i = i + 1
  end
end
local oks, rems, resets, retries, neww, newc = {}, {}, {}, {}, {}, {}
local all = true
for i = 1, n do
  local lim = tonumber(ARGV[4 + (i - 1) * 2 + 1])
  local p = tonumber(ARGV[4 + (i - 1) * 2 + 2])
  local w = math.floor(now / p)
  if w * p > now then w = w - 1 elseif (w + 1) * p <= now then w = w + 1 end
  local count = 0
  if st[2 * i - 1] == w then count = st[2 * i] end
  local reset = (w + 1) * p - now
  local ok, new, rem, retry
  if op == 2 then
    ok = count + 1 <= lim
    new = count
    rem = lim - count
    if ok then retry = 0 else retry = reset end
  elseif op == 3 then
    ok = true
    new = count - cost
    if new < 0 then new = 0 end
    rem = lim - new
    retry = 0
  else
    new = count + cost
    if new <= lim or op == 4 then
      ok = true
      rem = lim - new
      retry = 0
    else
      ok = false
      rem = lim - count
      if cost > lim then retry = -1 else retry = reset end
    end
  end
  if rem < 0 then rem = 0 end
  oks[i] = ok
  rems[i] = rem
  resets[i] = reset
  retries[i] = retry
  neww[i] = w
  newc[i] = new
  if not ok then all = false end
end
local best = 0
if all then
  for i = 1, n do
    if best == 0 or rems[i] < rems[best] or (rems[i] == rems[best] and resets[i] > resets[best]) then
      best = i
    end
  end
  if op == 0 or op == 3 or op == 4 then
    local parts = {}
    local ttl = 0
    for i = 1, n do
      parts[2 * i - 1] = string.format('%.0f', neww[i])
      parts[2 * i] = string.format('%.0f', newc[i])
      local ms = math.ceil(resets[i] / 1000)
      if ms > ttl then ttl = ms end
    end
    redis.call('SET', KEYS[1], table.concat(parts, ','), 'PX', ttl + 1)
  end
else
  for i = 1, n do
    if not oks[i] then
      local r = retries[i]
      if r < 0 then r = math.huge end
      local rb = 0
      if best > 0 then rb = retries[best]; if rb < 0 then rb = math.huge end end
      if best == 0 or r > rb then best = i end
    end
  end
end
local okn = 0
if all then okn = 1 end
local rr = retries[best]
if all then rr = 0 end
return {okn, best, rems[best], resets[best], rr}
