package dispatcher

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// heldWAL records the events of each write to the write-ahead record and
// holds the first write that holds hold's rows until released.
type heldWAL struct {
	sentLog
	hold    string
	held    chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	writes  [][]string
}

func (w *heldWAL) LogSent(ctx context.Context, groups []sqlstore.SentGroup, at time.Time) error {
	var events []string
	for _, g := range groups {
		events = append(events, g.EventID)
	}
	w.mu.Lock()
	w.writes = append(w.writes, events)
	w.mu.Unlock()
	if slices.Contains(events, w.hold) {
		w.once.Do(func() { close(w.held) })
		<-w.release
	}
	return w.sentLog.LogSent(ctx, groups, at)
}

// wrote reports whether a write held every one of events.
func (w *heldWAL) wrote(events ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.writes {
		all := true
		for _, x := range events {
			all = all && slices.Contains(e, x)
		}
		if all {
			return true
		}
	}
	return false
}

// calling is a channel that says it calls the provider (channels.Calling)
// before it sends, as the layer of a channel stack nearest the provider
// does (the rate limiter): an at-most-once delivery's attempt is written
// then, and a failed hook stops the send.
type calling struct{ channels.Channel }

func (c calling) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	if err := channels.Calling(ctx); err != nil {
		return channels.Result{}, err
	}
	return c.Channel.Send(ctx, m)
}

// TestCodesSentMarkGoesWithOtherCodesAttempts: the write-ahead record of
// a code that was sent goes in the statement that writes the attempts of
// codes about to be sent, not in one of its own: while one code's
// attempt is being written, another code's sent mark and a third code's
// attempt wait together for the next write. Each code is sent once.
func TestCodesSentMarkGoesWithOtherCodesAttempts(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		const phoneA, phoneB, phoneC = "84911120001", "84911120002", "84911120003"
		sms := &gatedPhone{Channel: r.chans[channels.SMS], phone: phoneA, entered: make(chan struct{}), release: make(chan struct{}), sent: map[string]bool{}}
		r.chans[channels.SMS] = calling{sms}
		wal := &heldWAL{hold: "attempt:ev-code-b", held: make(chan struct{}), release: make(chan struct{})}
		var d *Dispatcher
		r.start(t, func(x *Dispatcher) {
			d = x
			wal.sentLog = x.wal
			x.wal = wal
			// Codes' attempts committed before their calls, as alerts'
			// (LOA_CODE_ATTEMPT_FIRST=postgres): code-b's held write
			// holds code-b, and code-c's attempt waits behind it.
			x.cfg.CodeAttemptRowFirst = true
		})
		released := false
		t.Cleanup(func() {
			if !released {
				close(wal.release)
			}
		})
		r.publishCode(t, "code-a", phoneA)
		select {
		case <-sms.entered: // its attempt is written; the send waits
		case <-ctx.Done():
			t.Fatal("code-a never reached the provider")
		}
		r.publishCode(t, "code-b", phoneB)
		select {
		case <-wal.held: // code-b's attempt is being written
		case <-ctx.Done():
			t.Fatal("code-b's attempt was never written")
		}
		pending := func() int {
			d.attempts.mu.Lock()
			defer d.attempts.mu.Unlock()
			return len(d.attempts.pending)
		}
		r.publishCode(t, "code-c", phoneC)
		pollUntil(ctx, t, "code-c's attempt waits for the next write", func() bool { return pending() == 1 })
		close(sms.release)
		pollUntil(ctx, t, "code-a's sent mark is written or waits for the next write", func() bool {
			return pending() == 2 || wal.wrote("ev-code-a")
		})
		released = true
		close(wal.release)
		for _, id := range []string{"code-a", "code-b", "code-c"} {
			waitLedgerCount(t, r, id, 1)
		}
		if !wal.wrote("ev-code-a", "attempt:ev-code-c") {
			wal.mu.Lock()
			t.Errorf("code-a's sent mark was not written with code-c's attempt: %q", wal.writes)
			wal.mu.Unlock()
		}
		for _, p := range []string{phoneA, phoneB, phoneC} {
			if !sms.wasSent(p) {
				t.Errorf("the code to %s was not sent", p)
			}
		}
	})
}
