// Package breaker puts a circuit breaker (github.com/sony/gobreaker) in
// front of one provider instance. Only transient failures — the provider
// is down, slow or refusing load — count against it; a permanent error or
// a dead token means the provider answered and is healthy, and a failure
// before the provider was called (channels.ErrNotAttempted: waiting for a
// rate-limit token) is not the provider's. While the
// breaker is open, sends fail at once with a Transient error coded
// "breaker_open", so the caller fails over to another provider or parks
// the message in a retry tier: an open breaker never drops a message.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/metrics"
)

// Settings tune a breaker.
type Settings struct {
	// Failures is how many consecutive transient failures open it.
	Failures uint32
	// OpenFor is how long it stays open before letting trial sends through.
	OpenFor time.Duration
	// HalfOpenRequests is how many trial sends may run while half-open;
	// that many successes close it, one failure opens it again.
	HalfOpenRequests uint32
	// Interval clears the failure counts while closed; 0 never clears them
	// (consecutive failures are what trips it).
	Interval time.Duration
}

// DefaultSettings: open after 5 consecutive transient failures, for 30s,
// then 3 trial sends.
func DefaultSettings() Settings {
	return Settings{Failures: 5, OpenFor: 30 * time.Second, HalfOpenRequests: 3}
}

// Validate reports settings that cannot work.
func (s Settings) Validate() error {
	switch {
	case s.Failures < 1:
		return errors.New("breaker: Failures must be at least 1")
	case s.OpenFor <= 0:
		return errors.New("breaker: OpenFor must be positive")
	case s.HalfOpenRequests < 1:
		return errors.New("breaker: HalfOpenRequests must be at least 1")
	}
	return nil
}

// Channel is a channel behind a breaker. Safe for concurrent use.
type Channel struct {
	name  string
	inner channels.Channel
	cb    *gobreaker.CircuitBreaker
	// lastFailure is the last failure counted against the provider.
	lastFailure atomic.Pointer[string]
}

// New wraps inner, a provider instance called name, in a breaker. State
// changes are logged and recorded in m (which may be nil).
func New(name string, inner channels.Channel, s Settings, log *slog.Logger, m *metrics.Metrics) (*Channel, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := &Channel{name: name, inner: inner}
	c.cb = gobreaker.NewCircuitBreaker(gobreaker.Settings{
		Name:        name,
		MaxRequests: s.HalfOpenRequests,
		Interval:    s.Interval,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Failures },
		IsSuccessful: func(err error) bool {
			// Our own cancellation, and a failure before the provider was
			// called (the rate limiter, its Redis), say nothing about the
			// provider.
			ok := err == nil || errors.Is(err, context.Canceled) || errors.Is(err, channels.ErrNotAttempted) ||
				channels.ClassOf(err) != channels.Transient
			if !ok {
				msg := err.Error()
				c.lastFailure.Store(&msg)
			}
			return ok
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			level := slog.LevelWarn
			attrs := []slog.Attr{slog.String("provider", name), slog.String("from", from.String()), slog.String("to", to.String())}
			switch to {
			case gobreaker.StateClosed:
				level = slog.LevelInfo
			case gobreaker.StateOpen:
				// What tripped it, so that an opening can be told from its cause.
				if last := c.lastFailure.Load(); last != nil {
					attrs = append(attrs, slog.String("last_failure", *last))
				}
			}
			log.LogAttrs(context.Background(), level, "circuit breaker state changed", attrs...)
			m.BreakerState(name, stateValue(to), to.String())
		},
	})
	m.BreakerState(name, 0, "")
	return c, nil
}

func stateValue(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// Name returns the provider instance name.
func (c *Channel) Name() string { return c.name }

// State returns the breaker's state: "closed", "half-open" or "open".
func (c *Channel) State() string { return c.cb.State().String() }

// Send sends through the provider unless the breaker is open.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	var res channels.Result
	_, err := c.cb.Execute(func() (any, error) {
		var err error
		res, err = c.inner.Send(ctx, m)
		return nil, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: c.name, Code: "breaker_open",
			Err: fmt.Errorf("%w: %w", channels.ErrNotAttempted, err)}
	}
	return res, err
}
