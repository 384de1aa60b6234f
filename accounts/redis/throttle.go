package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
)

// throttleScript keeps one key's failures and the time before which it
// must wait. KEYS[1] hash {n, until}. ARGV[1] op ("wait", "fail",
// "take": a fail unless the key must wait, returning 0 when it counted),
// ARGV[2] now ms, ARGV[3] free failures, ARGV[4] base ms, ARGV[5] max ms,
// ARGV[6] ms after the last failure when they are forgotten. Times come
// from ARGV (the Service's clock); TTLs only collect garbage. Returns the
// wait in ms (0: none).
var throttleScript = goredis.NewScript(`
local now = tonumber(ARGV[2])
local untilms = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if ARGV[1] == 'wait' or ARGV[1] == 'take' then
  if untilms > now then return untilms - now end
  if ARGV[1] == 'wait' then return 0 end
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local free = tonumber(ARGV[3])
local wait = 0
if n > free then
  local e = n - free - 1
  if e > 30 then e = 30 end
  wait = tonumber(ARGV[4]) * (2 ^ e)
  if wait > tonumber(ARGV[5]) then wait = tonumber(ARGV[5]) end
  wait = math.floor(wait)
  if now + wait > untilms then
    redis.call('HSET', KEYS[1], 'until', tostring(now + wait))
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if ARGV[1] == 'take' then return 0 end
return wait`)

var _ accounts.Throttle = (*Store)(nil)

func (s *Store) throttleKey(key string) string { return s.prefix + "thr:" + key }

// Wait implements accounts.Throttle.
func (s *Store) Wait(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	ms, err := throttleScript.Run(ctx, s.rdb, []string{s.throttleKey(key)}, "wait", now.UnixMilli(), 0, 0, 0, 0).Int64()
	if err != nil {
		return 0, fmt.Errorf("accounts/redis: throttle wait: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Fail implements accounts.Throttle.
func (s *Store) Fail(ctx context.Context, key string, now time.Time, b accounts.Backoff) (time.Duration, error) {
	ms, err := throttleScript.Run(ctx, s.rdb, []string{s.throttleKey(key)}, "fail", now.UnixMilli(), b.Free,
		b.Base.Milliseconds(), b.Max.Milliseconds(), (b.Forget + gcMargin).Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("accounts/redis: throttle fail: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Take implements accounts.Throttle.
func (s *Store) Take(ctx context.Context, key string, now time.Time, b accounts.Backoff) (time.Duration, error) {
	ms, err := throttleScript.Run(ctx, s.rdb, []string{s.throttleKey(key)}, "take", now.UnixMilli(), b.Free,
		b.Base.Milliseconds(), b.Max.Milliseconds(), (b.Forget + gcMargin).Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("accounts/redis: throttle take: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Clear implements accounts.Throttle.
func (s *Store) Clear(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.throttleKey(key)).Err(); err != nil {
		return fmt.Errorf("accounts/redis: throttle clear: %w", err)
	}
	return nil
}
