-- Admit one TOTP verification for a factor, or refuse it.
-- KEYS[1] failures zset (member = attempt id, score = ms), KEYS[2] lock
-- (value = locked-until ms).
-- ARGV[1] now ms (injected clock), ARGV[2] now - window ms, ARGV[3] window
-- ms, ARGV[4] max failures, ARGV[5] attempt id.
-- Times are decided by ARGV, never by the Redis clock; TTLs only collect
-- garbage. Values written come from ARGV strings, not Lua number formatting.
-- An admitted attempt counts as a failure until totp_finish settles it, so
-- concurrent guesses cannot overtake the limit.
-- Returns {0} admitted, {1, until_ms} locked, {2} too many in flight.
local now = tonumber(ARGV[1])
local untilms = tonumber(redis.call('GET', KEYS[2]) or '0')
if untilms > now then
  return {1, untilms}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return {2}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {0}
