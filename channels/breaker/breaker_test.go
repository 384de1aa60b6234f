package breaker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
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
