// Package ratelimit keeps a provider within its rate (an SMS gateway's
// TPS, FCM's project quota) across every dispatcher replica, with a token
// bucket in Redis. A send that finds the bucket empty waits for a token:
// the wait is back-pressure on the lane, never a dropped message.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/metrics"
)

// Limit is a rate with a burst.
type Limit struct {
	PerSecond float64
	Burst     int // tokens the bucket holds; the most sends at once
}

// Validate reports a limit that cannot work.
func (l Limit) Validate() error {
	if l.PerSecond <= 0 || l.Burst < 1 {
		return fmt.Errorf("ratelimit: need a positive rate and a burst of at least 1, got %v/s burst %d", l.PerSecond, l.Burst)
	}
	return nil
}

// The bucket: tokens refill at rate per second up to burst, measured on
// Redis's own clock so replicas with skewed clocks agree. Returns 0 when a
// token was taken, else the milliseconds until one will be there.
var takeScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1])
local ts = tonumber(s[2])
if tokens == nil then tokens = burst; ts = now end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return wait`)

// Limiter is one shared bucket. Safe for concurrent use.
type Limiter struct {
	rdb   redis.UniversalClient
	key   string
	limit Limit
}

// NewLimiter returns the bucket named key on rdb.
func NewLimiter(rdb redis.UniversalClient, key string, l Limit) (*Limiter, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{rdb: rdb, key: key, limit: l}, nil
}

// Take tries once to take a token. It returns 0 when it took one, or how
// long until one will be there.
func (l *Limiter) Take(ctx context.Context) (time.Duration, error) {
	ms, err := takeScript.Run(ctx, l.rdb, []string{l.key}, l.limit.PerSecond, l.limit.Burst).Int64()
	if err != nil {
		return 0, fmt.Errorf("ratelimit: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Wait takes a token, waiting until one is there or ctx ends. It returns
// how long it waited.
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for {
		wait, err := l.Take(ctx)
		if err != nil {
			return time.Since(start), err
		}
		if wait == 0 {
			return time.Since(start), nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
	}
}

// Channel sends through inner once the provider's bucket gives a token.
type Channel struct {
	name    string
	inner   channels.Channel
	limiter *Limiter
	m       *metrics.Metrics
}

// New wraps inner, the provider instance called name, in limiter.
func New(name string, inner channels.Channel, limiter *Limiter, m *metrics.Metrics) *Channel {
	return &Channel{name: name, inner: inner, limiter: limiter, m: m}
}

// Name returns the provider instance name.
func (c *Channel) Name() string { return c.name }

// Send waits for a token, then sends. A wait cut short by ctx, or a Redis
// failure, is a Transient error: the message is retried, not lost.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	waited, err := c.limiter.Wait(ctx)
	if waited > 0 {
		c.m.RateLimitWait(c.name, waited.Seconds())
	}
	if err != nil {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: c.name, Code: "rate_limited", Err: err}
	}
	if m.Expired(time.Now()) {
		return channels.Result{}, &channels.Error{Class: channels.Expired, Provider: c.name, Err: errors.New("expired while waiting for the rate limit")}
	}
	return c.inner.Send(ctx, m)
}
