package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/ratelimit"
)

// scripted answers each send with the error fn gives, counting calls.
type scripted struct {
	calls atomic.Int64
	fn    func() error
}

func (s *scripted) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	s.calls.Add(1)
	return channels.Result{Provider: "p"}, s.fn()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestBreakerOpensOnTransientFailuresAndFailsFast(t *testing.T) {
	var healthy atomic.Bool
	inner := &scripted{fn: func() error {
		if healthy.Load() {
			return nil
		}
		return &channels.Error{Class: channels.Transient, Code: "503"}
	}}
	b, err := New("gw", inner, Settings{Failures: 3, OpenFor: 200 * time.Millisecond, HalfOpenRequests: 1}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		b.Send(ctx, channels.Message{})
	}
	if b.State() != "open" {
		t.Fatalf("state %s after 3 transient failures", b.State())
	}
	_, err = b.Send(ctx, channels.Message{})
	var ce *channels.Error
	if !errors.As(err, &ce) || ce.Code != "breaker_open" || ce.Class != channels.Transient {
		t.Fatalf("open breaker answered %v", err)
	}
	if n := inner.calls.Load(); n != 3 {
		t.Fatalf("the provider was called %d times; an open breaker must not call it", n)
	}
	healthy.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for b.State() == "open" { // OpenFor is real time inside gobreaker
		if time.Now().After(deadline) {
			t.Fatal("breaker never left open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := b.Send(ctx, channels.Message{}); err != nil {
		t.Fatalf("trial send: %v", err)
	}
	if b.State() != "closed" {
		t.Fatalf("state %s after a successful trial", b.State())
	}
}

func TestPermanentErrorsDoNotTrip(t *testing.T) {
	inner := &scripted{fn: func() error { return &channels.Error{Class: channels.TokenDead, Code: "UNREGISTERED"} }}
	b, _ := New("fcm", inner, Settings{Failures: 2, OpenFor: time.Minute, HalfOpenRequests: 1}, quiet(), nil)
	for range 10 {
		if _, err := b.Send(context.Background(), channels.Message{}); channels.ClassOf(err) != channels.TokenDead {
			t.Fatalf("got %v, want the provider's token-dead error passed through", err)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("dead tokens opened the breaker: %s", b.State())
	}
}

func TestSettingsValidate(t *testing.T) {
	if DefaultSettings().Validate() != nil {
		t.Fatal("defaults invalid")
	}
	for _, s := range []Settings{{0, time.Second, 1, 0}, {1, 0, 1, 0}, {1, time.Second, 0, 0}} {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}

// TestRedisOutageNeverOpensTheBreaker: the provider behind its breaker and
// its shared rate limit; Redis goes away mid-stream. Every send still
// reaches the provider (the limiter runs on its local bucket) and the
// breaker stays closed: the limiter's failure is not the provider's.
func TestRedisOutageNeverOpensTheBreaker(t *testing.T) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	l, err := ratelimit.NewLimiter(rdb, "rl:gw", ratelimit.Limit{PerSecond: 1000, Burst: 50}, ratelimit.Options{Name: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	inner := &scripted{fn: func() error { return nil }}
	b, err := New("gw", ratelimit.New("gw", inner, l, ratelimit.ChannelConfig{}), Settings{Failures: 1, OpenFor: time.Hour, HalfOpenRequests: 1}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 200 {
		if i == 50 {
			mr.Close()
		}
		if _, err := b.Send(ctx, channels.Message{Lane: channels.LaneBulk}); err != nil {
			t.Fatalf("send %d with Redis gone: %v", i, err)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("breaker %s after a Redis outage", b.State())
	}
	if n := inner.calls.Load(); n != 200 {
		t.Fatalf("the provider got %d of 200 sends", n)
	}
	if !l.Local() {
		t.Fatal("the limiter does not say it runs on its local bucket")
	}
}

// TestNotAttemptedDoesNotCount: failures that never reached the provider
// (channels.ErrNotAttempted) do not open the breaker.
func TestNotAttemptedDoesNotCount(t *testing.T) {
	inner := &scripted{fn: func() error {
		return &channels.Error{Class: channels.Transient, Code: "rate_limited", Err: fmt.Errorf("%w: gave up", channels.ErrNotAttempted)}
	}}
	b, err := New("gw", inner, Settings{Failures: 2, OpenFor: time.Hour, HalfOpenRequests: 1}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		b.Send(context.Background(), channels.Message{})
	}
	if b.State() != "closed" {
		t.Fatalf("breaker %s after failures that never reached the provider", b.State())
	}
}
