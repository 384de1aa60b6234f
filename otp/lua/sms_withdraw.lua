-- Withdraw a challenge whose code could not be sent, atomically: the
-- challenge is void (state 'withdrawn': verification refuses it as void,
-- a copy of the code that reaches the phone late does not work, and a
-- dispatcher that still gets the code does not send it) and no longer counts against the send limits it was counted
-- in, so the person may ask again at once.
-- KEYS[1] challenge hash
-- KEYS[2] sends zset of the phone (or the flow's window) and purpose
-- KEYS[3] optional: client address sends zset
-- ARGV[1] challenge id
-- The limits' keys are the ones the issue recorded in the challenge
-- (fields 'wk' and 'ik'); the caller reads them first and passes them
-- here, so that the script names every key it touches.
-- Returns 1 when a live challenge was withdrawn, 0 when there was none
-- (unknown, collected, or already used or void).
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'withdrawn')
redis.call('ZREM', KEYS[2], ARGV[1])
if #KEYS >= 3 then
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return 1
