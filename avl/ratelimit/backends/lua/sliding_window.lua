-- avl rate limiter: sliding window (weighted counter) over every rate, atomically.
-- Mirrors avl/ratelimit/_strategies.py (sliding_step + combine).
-- KEYS     one state key per decision (a batch is decided in order); value struct.pack('<d..d', w_1, curr_1, prev_1, ...)
-- ARGV     op (0 hit, 1 test, 2 peek, 3 refund, 4 force), cost,
--          now_us ('' = the server's TIME), n, then limit_i, p_i, unit_i
-- Returns  struct.pack('<d...') of, per key: ok, index (1-based), remaining, reset_units, retry_units (-1 = never)
local floor = math.floor
local function fdiv(x, y)
  local q = floor(x / y)
  if q * y > x then q = q - 1 elseif (q + 1) * y <= x then q = q + 1 end
  return q
end
local function cdiv(x, y)
  return -fdiv(-x, y)
end
local function retry_units(p, lim, elapsed, curr, prev, c)
  if c > lim then return -1 end
  if curr + c <= lim and prev > 0 then
    local t = cdiv(prev * (p - elapsed) + (curr + c - lim) * p, prev)
    if t <= p - elapsed then
      if t < 0 then t = 0 end
      return t
    end
  end
  local rest = p - elapsed
  if curr > 0 then
    local t2 = cdiv((curr + c - lim) * p, curr)
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
local fmt = '<' .. string.rep('d', 3 * n)
local LIM, P, UNIT = {}, {}, {}
for i = 1, n do
  local j = 4 + (i - 1) * 3
  LIM[i], P[i], UNIT[i] = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
end
local function decide(key)
  local raw = redis.call('GET', key)
  local st = {}
  if raw and #raw == 24 * n then st = {struct.unpack(fmt, raw)} end
  local all = true
  local news = {}
  local ttl = 0
  local okb, okrem, okreset, okrnum = 0, 0, 0, 0
  local nob, noretry, norem, nornum, norr = 0, -1, 0, 0, 0
  for i = 1, n do
    local lim, p, unit = LIM[i], P[i], UNIT[i]
    local now_u = now
    if unit ~= 1 then now_u = floor(now / unit) end
    local w = fdiv(now_u, p)
    local elapsed = now_u - w * p
    local curr, prev = 0, 0
    local sw = st[3 * i - 2]
    if sw == w then
      curr, prev = st[3 * i - 1], st[3 * i]
    elseif sw == w - 1 then
      prev = st[3 * i - 1]
    end
    local carried = prev * (p - elapsed)
    local cap = lim * p
    local ok, new, rem, reset, retry
    local used
    if op == 2 then
      used = carried + curr * p
      ok = used + p <= cap
      new = curr
      if ok then retry = 0 else retry = retry_units(p, lim, elapsed, curr, prev, 1) end
    elseif op == 3 then
      ok = true
      new = curr - cost
      if new < 0 then new = 0 end
      used = carried + new * p
      retry = 0
    else
      new = curr + cost
      if carried + new * p <= cap or op == 4 then
        ok = true
        used = carried + new * p
        retry = 0
      else
        ok = false
        used = carried + curr * p
        retry = retry_units(p, lim, elapsed, curr, prev, cost)
      end
    end
    rem = fdiv(cap - used, p)
    if rem < 0 then rem = 0 end
    local c = curr
    if ok and op ~= 2 then c = new end
    if c > 0 then reset = 2 * p - elapsed elseif prev > 0 then reset = p - elapsed else reset = 0 end
    news[3 * i - 2] = w
    news[3 * i - 1] = new
    news[3 * i] = prev
    local ms = (2 * p - elapsed) * unit / 1000
    if ms > ttl then ttl = ms end
    local per_s = 1000000 / unit
    if ok then
      local rs = reset / per_s
      if okb == 0 or rem < okrem or (rem == okrem and rs > okreset) then
        okb, okrem, okreset, okrnum = i, rem, rs, reset
      end
    else
      all = false
      local r = math.huge
      if retry >= 0 then r = retry / per_s end
      if nob == 0 or r > noretry then
        nob, noretry, norem, nornum, norr = i, r, rem, reset, retry
      end
    end
  end
  if not all then
    return 0, nob, norem, nornum, norr
  end
  if op == 0 or op == 3 or op == 4 then
    redis.call('SET', key, struct.pack(fmt, unpack(news)), 'PX', math.ceil(ttl) + 1)
  end
  return 1, okb, okrem, okrnum, 0
end
local out = {}
for k = 1, #KEYS do
  local o = 5 * (k - 1)
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = decide(KEYS[k])
end
return struct.pack('<' .. string.rep('d', #out), unpack(out))
