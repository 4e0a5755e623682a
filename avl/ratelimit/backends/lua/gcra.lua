-- avl rate limiter: GCRA over every rate of a limiter, atomically (one key).
-- Mirrors avl/ratelimit/_strategies.py:gcra_step + combine; integer arithmetic.
-- KEYS[1]  state key; value "t0,d1,d2,..." (t0: microseconds of the last write,
--          d_i: debt of rate i at t0, in 1/b_i microseconds)
-- ARGV     op (0 hit, 1 test, 2 peek, 3 refund, 4 force), cost,
--          now_us ('' = use the server's TIME), n, then a_i, b_i, cap_i per rate
-- Returns  {ok, index (1-based), remaining, reset_num, retry_num (-1 = never)}
local function fdiv(x, y)
  local q = math.floor(x / y)
  if q * y > x then q = q - 1 elseif (q + 1) * y <= x then q = q + 1 end
  return q
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
local t0 = now
local debts = {}
if raw then
  local i = 0
  for part in string.gmatch(raw, '[^,]+') do
    if i == 0 then t0 = tonumber(part) else debts[i] = tonumber(part) end
    i = i + 1
  end
end
local oks, rems, resets, rnums, retries, rrnums, news = {}, {}, {}, {}, {}, {}, {}
local all = true
for i = 1, n do
  local base = 4 + (i - 1) * 3
  local a = tonumber(ARGV[base + 1])
  local b = tonumber(ARGV[base + 2])
  local cap = tonumber(ARGV[base + 3])
  local bm = b * 1000000
  local debt = (debts[i] or 0) + (t0 - now) * b
  if debt < 0 then debt = 0 end
  local ok, new, rem, rnum, retry
  if op == 2 then
    ok = debt + a <= cap
    new = debt
    rem = fdiv(cap - debt, a)
    rnum = debt
    if ok then retry = 0 elseif a > cap then retry = -1 else retry = debt + a - cap end
  elseif op == 3 then
    ok = true
    new = debt - cost * a
    if new < 0 then new = 0 end
    rem = fdiv(cap - new, a)
    rnum = new
    retry = 0
  else
    new = debt + cost * a
    if new <= cap or op == 4 then
      ok = true
      rem = fdiv(cap - new, a)
      rnum = new
      retry = 0
    else
      ok = false
      rem = fdiv(cap - debt, a)
      rnum = debt
      if cost * a > cap then retry = -1 else retry = new - cap end
    end
  end
  if rem < 0 then rem = 0 end
  oks[i] = ok
  rems[i] = rem
  rnums[i] = rnum
  resets[i] = rnum / bm
  rrnums[i] = retry
  if retry < 0 then retries[i] = math.huge else retries[i] = retry / bm end
  news[i] = new
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
    local parts = {string.format('%.0f', now)}
    local ttl = 0
    for i = 1, n do
      parts[i + 1] = string.format('%.0f', news[i])
      local b = tonumber(ARGV[4 + (i - 1) * 3 + 2])
      local ms = math.ceil(news[i] / b / 1000)
      if ms > ttl then ttl = ms end
    end
    if ttl > 0 then
      redis.call('SET', KEYS[1], table.concat(parts, ','), 'PX', ttl + 1)
    else
      redis.call('DEL', KEYS[1])
    end
  end
else
  for i = 1, n do
    if not oks[i] and (best == 0 or retries[i] > retries[best]) then best = i end
  end
end
local okn = 0
if all then okn = 1 end
local rr = rrnums[best]
if all then rr = 0 end
return {okn, best, rems[best], rnums[best], rr}
