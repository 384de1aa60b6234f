-- Check and record the send limits and store a new challenge, atomically.
-- KEYS[1] sends zset of the phone (or the flow's window) and purpose (member = challenge id,
--         score = ms): each purpose has its own window, so one flow's
--         requests never use up another's
-- KEYS[2] new challenge hash
-- KEYS[3] optional: client address sends zset
-- ARGV[1] now ms (injected clock)   ARGV[2] now - send window ms
-- ARGV[3] send window ms            ARGV[4] max sends per window
-- ARGV[5] cooldown ms               ARGV[6] now - IP window ms
-- ARGV[7] IP window ms              ARGV[8] max sends per IP window
-- ARGV[9] challenge id              ARGV[10] HMAC of id and code
-- ARGV[11] phone                    ARGV[12] purpose
-- ARGV[13] expires_at ms            ARGV[14] challenge key TTL ms (GC only)
-- ARGV[15] subject the challenge is bound to ("" for none)
-- The challenge records the limits' keys it is counted in ('wk', 'ik'),
-- so that a withdrawal (a code that could not be sent) can uncount it.
-- A new challenge never voids another: each lives until it is used, runs
-- out of attempts or expires, so a stranger's request cannot cancel a
-- code someone else is about to type.
-- Times are decided by ARGV, never by the Redis clock; TTLs only collect
-- garbage. Values written come from ARGV strings, not Lua number formatting.
-- Returns {0} issued, or {reason, retry_after_ms} with reason 1 cooldown,
-- 2 too many sends to the phone, 3 too many from the address.
local now = tonumber(ARGV[1])

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

if #KEYS >= 3 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[8]) then
    local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    return {3, tonumber(first[2]) + tonumber(ARGV[7]) - now}
  end
end

redis.call('HSET', KEYS[2], 'mac', ARGV[10], 'phone', ARGV[11],
  'purpose', ARGV[12], 'exp', ARGV[13], 'attempts', '0', 'state', 'live',
  'subject', ARGV[15], 'wk', KEYS[1], 'ik', KEYS[3] or '')
redis.call('PEXPIRE', KEYS[2], ARGV[14])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if #KEYS >= 3 then
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[9])
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
end
return {0}
