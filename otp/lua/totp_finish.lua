-- Settle an attempt admitted by totp_begin.
-- KEYS[1] failures zset, KEYS[2] lock.
-- ARGV[1] now ms, ARGV[2] now - window ms, ARGV[3] window ms, ARGV[4] max
-- failures, ARGV[5] attempt id, ARGV[6] outcome "fail", "ok" or "neutral",
-- ARGV[7] lock ms, ARGV[8] now + lock ms.
-- Returns 1 if this failure locked the factor, else 0.
local outcome = ARGV[6]
if outcome == 'ok' then
  -- Possession proven: forget earlier failures and any lock they caused.
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
if outcome == 'neutral' then
  redis.call('ZREM', KEYS[1], ARGV[5])
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
-- (Re)insert: a concurrent lock or success may have cleared the entry.
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[7])
  -- These failures are spent on this lock; counting restarts after it.
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
