-- avl rate limiter: sliding window (weighted counter) over every rate, atomically.
-- Mirrors avl/ratelimit/_strategies.py:sliding_step + combine.
-- KEYS[1]  state key; value "w1,curr1,prev1,..." per rate
-- ARGV     op (0 hit, 1 test, 2 peek, 3 refund, 4 force), cost,
--          now_us ('' = use the server's TIME), n, then limit_i, period_us_i
-- Returns  {ok, index (1-based), remaining, reset_us, retry_us (-1 = never)}
local function fdiv(x, y)
  local q = math.floor(x / y)
  if q * y > x then q = q - 1 elseif (q + 1) * y <= x then q = q + 1 end
  return q
end
local function cdiv(x, y)
  return -fdiv(-x, y)
end
local function retry_us(p, lim, elapsed, curr, prev, cost)
  if cost > lim then return -1 end
  if curr + cost <= lim and prev > 0 then
    local t = cdiv(prev * (p - elapsed) + (curr + cost - lim) * p, prev)
    if t <= p - elapsed then
      if t < 0 then t = 0 end
      return t
    end
  end
  local rest = p - elapsed
  if curr > 0 then
    local t2 = cdiv((curr + cost - lim) * p, curr)
    if t2 < 0 then t2 = 0 end
    if t2 > p then t2 = p end
    return rest + t2
  end
  return rest
end
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
local oks, rems, resets, retries, neww, newc, newp, ttls = {}, {}, {}, {}, {}, {}, {}, {}
local all = true
for i = 1, n do
  local lim = tonumber(ARGV[4 + (i - 1) * 2 + 1])
  local p = tonumber(ARGV[4 + (i - 1) * 2 + 2])
  local w = fdiv(now, p)
  local elapsed = now - w * p
  local curr, prev = 0, 0
  local sw = st[3 * i - 2]
  if sw == w then
    curr, prev = st[3 * i - 1], st[3 * i]
  elseif sw == w - 1 then
    curr, prev = 0, st[3 * i - 1]
  end
  local carried = prev * (p - elapsed)
  local cap = lim * p
  local function reset_of(c)
    if c > 0 then return 2 * p - elapsed end
    if prev > 0 then return p - elapsed end
    return 0
  end
  local ok, new, rem, reset, retry
  if op == 2 then
    local used = carried + curr * p
    ok = used + p <= cap
    new = curr
    rem = fdiv(cap - used, p)
    reset = reset_of(curr)
    if ok then retry = 0 else retry = retry_us(p, lim, elapsed, curr, prev, 1) end
  elseif op == 3 then
    ok = true
    new = curr - cost
    if new < 0 then new = 0 end
    rem = fdiv(cap - carried - new * p, p)
    reset = reset_of(new)
    retry = 0
  else
    new = curr + cost
    if carried + new * p <= cap or op == 4 then
      ok = true
      rem = fdiv(cap - carried - new * p, p)
      reset = reset_of(new)
      retry = 0
    else
      ok = false
      rem = fdiv(cap - carried - curr * p, p)
      reset = reset_of(curr)
      retry = retry_us(p, lim, elapsed, curr, prev, cost)
    end
  end
  if rem < 0 then rem = 0 end
  oks[i] = ok
  rems[i] = rem
  resets[i] = reset
  retries[i] = retry
  neww[i] = w
  newc[i] = new
  newp[i] = prev
  ttls[i] = 2 * p - elapsed
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
      parts[3 * i - 2] = string.format('%.0f', neww[i])
      parts[3 * i - 1] = string.format('%.0f', newc[i])
      parts[3 * i] = string.format('%.0f', newp[i])
      local ms = math.ceil(ttls[i] / 1000)
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
