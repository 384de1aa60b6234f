package channeltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
)

// promptly is how long a send may take to notice that its context ended.
// It is a bound on a failure, not a wait: a passing test never waits it.
const promptly = 2 * time.Second

// Sink is the suite's view of the fake provider behind a channel.
type Sink interface {
	// Count returns how many messages addressed to to the provider has
	// accepted so far.
	Count(to string) int
	// Address returns a valid, distinct address for the channel under
	// test (device token, 84… phone number, e-mail address) for each i ≥ 0.
	Address(i int) string
}

// Staller is implemented by a Sink whose provider can be made to hold
// requests without answering. The suite then also checks that a send in
// flight returns promptly when its context is cancelled.
type Staller interface {
	// Stall makes the provider hold every request, without answering,
	// until the client gives up; held is closed when the first request is
	// being held; release makes the provider answer later requests again.
	Stall() (held <-chan struct{}, release func())
}

// Run runs the contract suite. newChannel is called once per subtest and
// must return a channel talking to a fresh fake (or one reset to no
// faults and no messages) and the Sink observing that fake; cleanup is
// registered on the t it is given.
//
// The contract:
//   - a valid send returns nil, a Result naming the provider, and arrives
//     exactly once;
//   - a message past ExpiresAt is not sent and fails with class Expired;
//   - a send whose context is already cancelled, or is cancelled while the
//     provider holds the request, returns promptly with a Transient error
//     and is not recorded as accepted;
//   - 50 concurrent sends to 50 addresses each arrive exactly once.
func Run(t *testing.T, newChannel func(t *testing.T) (channels.Channel, Sink)) {
	t.Helper()
	t.Run("SendArrivesOnce", func(t *testing.T) {
		ch, sink := newChannel(t)
		to := sink.Address(0)
		res, err := ch.Send(context.Background(), message(to, 0))
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if res.Provider == "" {
			t.Errorf("Send: Result.Provider is empty")
		}
		if n := sink.Count(to); n != 1 {
			t.Errorf("provider accepted %d messages for %s, want 1", n, to)
		}
	})

	t.Run("ExpiredIsNotSent", func(t *testing.T) {
		ch, sink := newChannel(t)
		to := sink.Address(0)
		m := message(to, 0)
		m.ExpiresAt = time.Now().Add(-time.Minute)
		_, err := ch.Send(context.Background(), m)
		if got := channels.ClassOf(err); got != channels.Expired {
			t.Errorf("Send of expired message: class %q (err %v), want %q", got, err, channels.Expired)
		}
		if n := sink.Count(to); n != 0 {
			t.Errorf("provider accepted %d expired messages, want 0", n)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		ch, sink := newChannel(t)
		to := sink.Address(0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		_, err := ch.Send(ctx, message(to, 0))
		checkCancelled(t, err, time.Since(start))
		if n := sink.Count(to); n != 0 {
			t.Errorf("provider accepted %d messages sent with a cancelled context, want 0", n)
		}
	})

	t.Run("CancelledInFlight", func(t *testing.T) {
		ch, sink := newChannel(t)
		st, ok := sink.(Staller)
		if !ok {
			t.Skip("sink cannot stall its provider")
		}
		held, release := st.Stall()
		defer release()
		to := sink.Address(0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := ch.Send(ctx, message(to, 0))
			done <- err
		}()
		select {
		case <-held:
		case err := <-done:
			t.Fatalf("Send returned (%v) before the stalled provider held it", err)
		case <-time.After(30 * time.Second):
			t.Fatalf("the stalled provider never received the request")
		}
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			checkCancelled(t, err, time.Since(start))
		case <-time.After(promptly + 5*time.Second):
			t.Fatalf("Send did not return after its context was cancelled")
		}
		if n := sink.Count(to); n != 0 {
			t.Errorf("provider accepted %d messages whose send was cancelled, want 0", n)
		}
	})

	t.Run("ConcurrentSendsArriveOnce", func(t *testing.T) {
		ch, sink := newChannel(t)
		const n = 50
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, errs[i] = ch.Send(ctx, message(sink.Address(i), i))
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent sends failed: %v", err)
		}
		for i := range n {
			if got := sink.Count(sink.Address(i)); got != 1 {
				t.Errorf("address %d (%s): accepted %d times, want 1", i, sink.Address(i), got)
			}
		}
	})
}

func checkCancelled(t *testing.T, err error, took time.Duration) {
	t.Helper()
	if err == nil {
		t.Fatalf("Send with cancelled context returned nil error")
	}
	if got := channels.ClassOf(err); got != channels.Transient {
		t.Errorf("Send with cancelled context: class %q (err %v), want %q", got, err, channels.Transient)
	}
	if took > promptly {
		t.Errorf("Send with cancelled context took %s, want under %s", took, promptly)
	}
}

// message returns a valid message for to, distinct per i.
func message(to string, i int) channels.Message {
	return channels.Message{
		NotificationID: fmt.Sprintf("contract-%d", i),
		Kind:           "contract",
		To:             to,
		Title:          "Thông báo",
		Body:           fmt.Sprintf("Lịch cắt điện số %d: 8:00–11:00, phường Đông Hà.", i),
		Data:           map[string]string{"n": fmt.Sprint(i)},
		Priority:       channels.Normal,
		ExpiresAt:      time.Now().Add(time.Hour),
	}
}

// Hanger is what a provider fake offers to hold requests without
// answering (every fake in internal/fakes embeds a fault.Injector).
type Hanger interface {
	Holding() <-chan struct{}
	SetHang(on bool)
}

// StallFake implements Staller.Stall for a fake that can hang: it makes
// the fake hold every request and returns the channel closed when the
// first is held, and the function that lets requests through again.
func StallFake(h Hanger) (held <-chan struct{}, release func()) {
	held = h.Holding()
	h.SetHang(true)
	return held, func() { h.SetHang(false) }
}
