-- avl rate limiter: GCRA over every rate of a limiter, atomically (one key).
-- Mirrors avl/ratelimit/_strategies.py (gcra_step + combine), integer arithmetic.
-- KEYS     one state key per decision (several keys: a batch, decided in order);
--          value struct.pack('<d..d', t0, debt_1, ..., debt_n): t0 is the
--          microsecond of the last write, debt_i is in 1/b_i time units
-- ARGV     op (0 hit, 1 test, 2 peek, 3 refund, 4 force), cost,
--          now_us ('' = the server's TIME), n, then a_i, b_i, cap_i, unit_i
-- Returns  struct.pack('<d...') of, per key: ok, index (1-based), remaining, reset_num, retry_num (-1 = never)
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
local fmt = '<' .. string.rep('d', n + 1)
local A, B, CAP, UNIT = {}, {}, {}, {}
for i = 1, n do
  local j = 4 + (i - 1) * 4
  A[i], B[i], CAP[i], UNIT[i] = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4])
end
local function decide(key)
  local raw = redis.call('GET', key)
  local st
  if raw and #raw == 8 * (n + 1) then st = {struct.unpack(fmt, raw)} else st = {now} end
  local t0 = st[1]
  local all = true
  local news = {}
  local okb, okrem, okreset, okrnum = 0, 0, 0, 0
  local nob, noretry, norem, nornum, norr = 0, -1, 0, 0, 0
  for i = 1, n do
    local a, b, cap, unit = A[i], B[i], CAP[i], UNIT[i]
    local now_u, t0_u = now, t0
    if unit ~= 1 then now_u = floor(now / unit); t0_u = floor(t0 / unit) end
    local debt = (st[i + 1] or 0) + (t0_u - now_u) * b
    if debt < 0 then debt = 0 end
    local ok, new, rnum, retry
    if op == 2 then
      ok = debt + a <= cap
      new = debt
      rnum = debt
      if ok then retry = 0 elseif a > cap then retry = -1 else retry = debt + a - cap end
    elseif op == 3 then
      ok = true
      new = debt - cost * a
      if new < 0 then new = 0 end
      rnum = new
      retry = 0
    else
      new = debt + cost * a
      if new <= cap or op == 4 then
        ok = true
        rnum = new
        retry = 0
      else
        ok = false
        rnum = debt
        if cost * a > cap then retry = -1 else retry = new - cap end
      end
    end
    local rem = floor((cap - rnum) / a)
    if rem * a > cap - rnum then rem = rem - 1 end
    if rem < 0 then rem = 0 end
    news[i] = new
    if ok then
      local reset = rnum / (b * 1000000 / unit)
      if okb == 0 or rem < okrem or (rem == okrem and reset > okreset) then
        okb, okrem, okreset, okrnum = i, rem, reset, rnum
      end
    else
      all = false
      local r = math.huge
      if retry >= 0 then r = retry / (b * 1000000 / unit) end
      if nob == 0 or r > noretry then
        nob, noretry, norem, nornum, norr = i, r, rem, rnum, retry
      end
    end
  end
  if not all then
    return 0, nob, norem, nornum, norr
  end
  if op == 0 or op == 3 or op == 4 then
    local ttl = 0
    for i = 1, n do
      local ms = news[i] / B[i] * UNIT[i] / 1000
      if ms > ttl then ttl = ms end
    end
    if ttl > 0 then
      redis.call('SET', key, struct.pack(fmt, now, unpack(news)), 'PX', math.ceil(ttl) + 1)
    else
      redis.call('DEL', key)
    end
  end
  return 1, okb, okrem, okrnum, 0
end
local out = {}
for k = 1, #KEYS do
  local o = 5 * (k - 1)
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = decide(KEYS[k])
end
return struct.pack('<' .. string.rep('d', #out), unpack(out))
