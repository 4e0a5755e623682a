-- avl rate limiter: fixed windows over every rate of a limiter, atomically.
-- Mirrors avl/ratelimit/_strategies.py (fixed_step + combine).
-- KEYS     one state key per decision (a batch is decided in order); value struct.pack('<d..d', w_1, c_1, ..., w_n, c_n)
--          (window index and count per rate)
-- ARGV     op (0 hit, 1 test, 2 peek, 3 refund, 4 force), cost,
--          now_us ('' = the server's TIME), n, then limit_i, p_i, unit_i
-- Returns  struct.pack('<d...') of, per key: ok, index (1-based), remaining, reset_units, retry_units (-1 = never)
local floor = math.floor
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
local fmt = '<' .. string.rep('d', 2 * n)
local LIM, P, UNIT = {}, {}, {}
for i = 1, n do
  local j = 4 + (i - 1) * 3
  LIM[i], P[i], UNIT[i] = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
end
local function decide(key)
  local raw = redis.call('GET', key)
  local st = {}
  if raw and #raw == 16 * n then st = {struct.unpack(fmt, raw)} end
  local all = true
  local news = {}
  local ttl = 0
  local okb, okrem, okreset, okrnum = 0, 0, 0, 0
  local nob, noretry, norem, nornum, norr = 0, -1, 0, 0, 0
  for i = 1, n do
    local lim, p, unit = LIM[i], P[i], UNIT[i]
    local now_u = now
    if unit ~= 1 then now_u = floor(now / unit) end
    local w = floor(now_u / p)
    if w * p > now_u then w = w - 1 end
    local count = 0
    if st[2 * i - 1] == w then count = st[2 * i] end
    local reset = (w + 1) * p - now_u
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
    news[2 * i - 1] = w
    news[2 * i] = new
    local ms = reset * unit / 1000
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
