-- Check and record the send limits and store a new challenge, atomically.
-- KEYS[1] sends zset of the phone (or the flow's window) and purpose (member = challenge id,
--         score = ms): each purpose has its own window, so one flow's
--         requests never use up another's
-- KEYS[2] new challenge hash
-- KEYS[3], KEYS[4] optional, as ARGV[16] and ARGV[17] say: the client
--         address's sends zset, and the phone's bound (a hash {n, until})
-- ARGV[1] now ms (injected clock)   ARGV[2] now - send window ms
-- ARGV[3] send window ms            ARGV[4] max sends per window
-- ARGV[5] cooldown ms               ARGV[6] now - IP window ms
-- ARGV[7] IP window ms              ARGV[8] max sends per IP window
-- ARGV[9] challenge id              ARGV[10] HMAC of id and code
-- ARGV[11] phone                    ARGV[12] purpose
-- ARGV[13] expires_at ms            ARGV[14] challenge key TTL ms (GC only)
-- ARGV[15] subject the challenge is bound to ("" for none)
-- ARGV[16] index in KEYS of the address's zset (0: none)
-- ARGV[17] index in KEYS of the phone's bound (0: none)
-- ARGV[18] the bound's free sends      ARGV[19] its first wait ms
-- ARGV[20] its longest wait ms          ARGV[21] its key's TTL ms
-- ARGV[22] index in KEYS of the budget's counter of this window (0: none)
-- ARGV[23] the sends the counter may reach for this send: the budget's
--          limit, or its lower share for a phone not known
-- ARGV[24] the budget's limit   ARGV[25] ms to the window's end
-- The challenge records the limits' keys it is counted in ('wk', 'ik'),
-- so that a withdrawal (a code that could not be sent) can uncount it.
-- A new challenge never voids another: each lives until it is used, runs
-- out of attempts or expires, so a stranger's request cannot cancel a
-- code someone else is about to type.
-- Times are decided by ARGV, never by the Redis clock; TTLs only collect
-- garbage. Values written come from ARGV strings, not Lua number formatting.
-- The phone's bound is checked and counted after the send limits passed
-- and the send was recorded in them: a send the bound refuses stays
-- counted in the phone's window and the address's, and is not counted in
-- the bound; one the send limits refuse is not counted in the bound
-- either. A send the bound allows counts in it: each beyond its free
-- sends makes the next wait, the first wait doubling up to the longest.
-- The budget is checked first, before anything is recorded, and counted
-- last, once the send is issued: a send it refuses leaves no trace, so
-- the caller may ask again with the full limit (a known phone).
-- Returns {0} issued, or {reason, retry_after_ms} with reason 1 cooldown,
-- 2 too many sends to the phone, 3 too many from the address, 4 the
-- phone's bound, 5 the budget's limit, 6 the budget's share for phones
-- not known (under its limit).
local now = tonumber(ARGV[1])
local ipk = tonumber(ARGV[16])
local bk = tonumber(ARGV[17])
local gk = tonumber(ARGV[22])

if gk > 0 then
  local spent = tonumber(redis.call('GET', KEYS[gk]) or '0')
  if spent >= tonumber(ARGV[24]) then
    return {5, tonumber(ARGV[25])}
  end
  if spent >= tonumber(ARGV[23]) then
    return {6, tonumber(ARGV[25])}
  end
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local sent = redis.call('ZCARD', KEYS[1])
local cool = 0
if sent > 0 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  cool = tonumber(last[2]) + tonumber(ARGV[5]) - now
end
if sent >= tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = tonumber(first[2]) + tonumber(ARGV[3]) - now
  if cool > wait then wait = cool end
  return {2, wait}
end
if cool > 0 then
  return {1, cool}
end

if ipk > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[ipk], '-inf', ARGV[6])
  if redis.call('ZCARD', KEYS[ipk]) >= tonumber(ARGV[8]) then
    local first = redis.call('ZRANGE', KEYS[ipk], 0, 0, 'WITHSCORES')
    return {3, tonumber(first[2]) + tonumber(ARGV[7]) - now}
  end
end

local ik = ''
if ipk > 0 then ik = KEYS[ipk] end
redis.call('HSET', KEYS[2], 'mac', ARGV[10], 'phone', ARGV[11],
  'purpose', ARGV[12], 'exp', ARGV[13], 'attempts', '0', 'state', 'live',
  'subject', ARGV[15], 'wk', KEYS[1], 'ik', ik)
redis.call('PEXPIRE', KEYS[2], ARGV[14])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ipk > 0 then
  redis.call('ZADD', KEYS[ipk], ARGV[1], ARGV[9])
  redis.call('PEXPIRE', KEYS[ipk], ARGV[7])
end

if bk > 0 then
  local b = KEYS[bk]
  local untilms = tonumber(redis.call('HGET', b, 'until') or '0')
  if untilms > now then
    return {4, untilms - now}
  end
  local n = redis.call('HINCRBY', b, 'n', 1)
  local free = tonumber(ARGV[18])
  if n > free then
    local e = n - free - 1
    if e > 30 then e = 30 end
    local wait = tonumber(ARGV[19]) * (2 ^ e)
    if wait > tonumber(ARGV[20]) then wait = tonumber(ARGV[20]) end
    wait = math.floor(wait)
    if now + wait > untilms then
      redis.call('HSET', b, 'until', tostring(now + wait))
    end
  end
  redis.call('PEXPIRE', b, ARGV[21])
end
if gk > 0 then
  redis.call('INCR', KEYS[gk])
  redis.call('PEXPIRE', KEYS[gk], tonumber(ARGV[25]) + 60000)
end
return {0}
