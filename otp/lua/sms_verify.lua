-- Check a code against an SMS challenge and count the attempt, atomically.
-- KEYS[1] challenge hash
-- ARGV[1] now ms (injected clock), ARGV[2] HMAC of id and the offered code,
-- ARGV[3] max attempts, ARGV[4] "peek" to check a right code without
-- using it (a wrong one still counts)
-- The HMACs are compared with Lua string equality, which is not constant
-- time; that is harmless here because both sides are HMACs under a server
-- secret: timing can at most reveal a prefix of an HMAC, which says nothing
-- about the code without the secret.
-- Returns {0, phone, purpose, expires_ms, subject} on success (the
-- challenge is now used, unless peeking); {1} not found; {2} expired; {3}
-- void (used, superseded or out of attempts); {4, attempts_left} wrong
-- code, counted.
local h = redis.call('HMGET', KEYS[1], 'mac', 'phone', 'purpose', 'exp', 'attempts', 'state', 'subject')
local subject = h[7] or ''
if not h[1] then
  return {1}
end
if tonumber(ARGV[1]) >= tonumber(h[4]) then
  return {2}
end
local max = tonumber(ARGV[3])
if h[6] ~= 'live' or tonumber(h[5]) >= max then
  return {3}
end
if h[1] ~= ARGV[2] then
  local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  if attempts >= max then
    redis.call('HSET', KEYS[1], 'state', 'void')
  end
  return {4, max - attempts}
end
if ARGV[4] ~= 'peek' then
  redis.call('HSET', KEYS[1], 'state', 'used')
end
return {0, h[2], h[3], h[4], subject}
