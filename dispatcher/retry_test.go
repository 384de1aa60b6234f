package dispatcher

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// flaky fails sends to chosen addresses with a chosen error, a number of
// times (forever when the count is negative), and records when each send
// was tried.
type flaky struct {
	channels.Channel
	mu    sync.Mutex
	fails map[string]int
	err   error
	tries map[string][]time.Time
}

func newFlaky(inner channels.Channel, err error) *flaky {
	return &flaky{Channel: inner, err: err, fails: map[string]int{}, tries: map[string][]time.Time{}}
}

func (f *flaky) set(addr string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[addr] = n
}

func (f *flaky) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	f.mu.Lock()
	f.tries[m.To] = append(f.tries[m.To], time.Now())
	n := f.fails[m.To]
	if n != 0 {
		f.fails[m.To] = n - 1
		f.mu.Unlock()
		return channels.Result{}, f.err
	}
	f.mu.Unlock()
	return f.Channel.Send(ctx, m)
}

func (f *flaky) triesOf(addr string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.tries[addr]...)
}

func (r *rig) publishOne(t *testing.T, id, phone string, ttl time.Duration) {
	t.Helper()
	now := time.Now()
	env, err := producer.NewEnvelope("ev-"+id, producer.KindDirect, topics.LaneDirect, phone, now, now.Add(ttl), "",
		producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToPhone, Value: phone}, Body: "B", Channels: []string{"sms"}, Priority: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Publish(waitCtx(t), env); err != nil {
		t.Fatal(err)
	}
}

// waitStatus waits until a notification's only ledger row has status.
func waitStatus(t *testing.T, r *rig, id string, status loa.Status) producer.Delivery {
	t.Helper()
	ctx := waitCtx(t)
	for {
		ds, err := r.store.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == status {
			return ds[0]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %s: %+v", id, status, ds)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tiers(ds ...time.Duration) func(*Dispatcher) {
	return func(d *Dispatcher) { d.cfg.RetryTiers, d.cfg.RetryJitter = ds, 0 }
}

// TestTransientFailureComesBackAfterTheTierDelay: a transient failure
// waits out its tier (or the provider's Retry-After, when longer) and is
// then delivered once; it is not retried at once.
func TestTransientFailureComesBackAfterTheTierDelay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		quota := &channels.Error{Class: channels.Transient, Provider: "test", Code: "429", RetryAfter: 1500 * time.Millisecond}
		f := newFlaky(r.chans[channels.SMS], quota)
		f.set("84910000001", 1) // Retry-After 1.5s, longer than the tier
		r.chans[channels.SMS] = f
		r.publishOne(t, "quota", "84910000001", time.Hour)
		r.start(t, tiers(700*time.Millisecond, time.Minute))
		d := waitStatus(t, r, "quota", loa.StatusSent)
		tries := f.triesOf("84910000001")
		if len(tries) != 2 {
			t.Fatalf("%d tries, want 2 (one failure, one success)", len(tries))
		}
		if gap := tries[1].Sub(tries[0]); gap < 1400*time.Millisecond {
			t.Errorf("retried after %v; the provider asked for 1.5s", gap)
		}
		if d.Attempts != 2 || r.outbox.Count("quota", channels.SMS, "84910000001") != 1 {
			t.Errorf("attempts %d, sends %d", d.Attempts, r.outbox.Count("quota", channels.SMS, "84910000001"))
		}
	})
}

// TestExhaustedRetriesDeadLetterAndReplaySendsOnce: after the last tier
// the delivery is dead-lettered with its history; a replay sends it once,
// and a second replay is refused.
func TestExhaustedRetriesDeadLetterAndReplaySendsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		down := &channels.Error{Class: channels.Transient, Provider: "gw-1", Code: "503"}
		f := newFlaky(r.chans[channels.SMS], down)
		f.set("84910000002", -1) // down until the test says otherwise
		r.chans[channels.SMS] = f
		r.publishOne(t, "doomed", "84910000002", time.Hour)
		r.start(t, tiers(100*time.Millisecond, 200*time.Millisecond))
		waitStatus(t, r, "doomed", loa.StatusFailed)
		if n := len(f.triesOf("84910000002")); n != 3 {
			t.Errorf("%d tries, want 3 (first send and two tiers)", n)
		}
		ctx := waitCtx(t)
		var row producer.DeadLetterRecord
		for {
			rows, err := r.store.DeadLetters(ctx, time.Time{}, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 1 {
				row = rows[0]
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("dead letter never indexed: %v", rows)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if row.Channel != "sms" || row.Recipient != "84910000002" || row.Provider != "gw-1" || row.Attempts != 3 {
			t.Errorf("dead letter %+v", row)
		}
		f.set("84910000002", 0) // the gateway is back
		dls := NewDeadLetters(r.store, r.pub)
		if _, err := dls.Replay(ctx, row.ID, "ops-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := dls.Replay(ctx, row.ID, "ops-2"); !errors.Is(err, ErrAlreadyReplayed) {
			t.Errorf("second replay: %v, want ErrAlreadyReplayed", err)
		}
		waitStatus(t, r, "doomed", loa.StatusSent)
		if c := r.outbox.Count("doomed", channels.SMS, "84910000002"); c != 1 {
			t.Errorf("replay delivered %d times", c)
		}
		if _, err := dls.Replay(ctx, "no-such-id", "ops"); !errors.Is(err, sqlstore.ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
	})
}

// TestExpiresWhileWaitingInATier: a message whose TTL passes while it
// waits in a retry tier is not sent; its receipt says expired.
func TestExpiresWhileWaitingInATier(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		f := newFlaky(r.chans[channels.SMS], &channels.Error{Class: channels.Transient, Provider: "gw"})
		f.set("84910000003", 1)
		r.chans[channels.SMS] = f
		r.publishOne(t, "stale", "84910000003", 30*time.Second)
		var skew atomic.Int64 // the dispatcher's clock runs ahead once the retry is scheduled
		r.start(t, func(d *Dispatcher) {
			tiers(2 * time.Second)(d) // long enough to see "retrying" before it is due
			d.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		})
		waitStatus(t, r, "stale", loa.StatusRetrying)
		skew.Store(int64(time.Minute)) // the TTL passes while the delivery waits in its tier
		d := waitStatus(t, r, "stale", loa.StatusExpired)
		if c := r.outbox.Count("stale", channels.SMS, "84910000003"); c != 0 {
			t.Errorf("an expired message was sent %d times", c)
		}
		if d.Class != string(channels.Expired) {
			t.Errorf("class %q", d.Class)
		}
	})
}

// failOnce fails the first send of each notification with its error.
type failOnce struct {
	channels.Channel
	mu   sync.Mutex
	errs map[string]error // notification id → the error of its first send
}

func (f *failOnce) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	f.mu.Lock()
	err := f.errs[m.NotificationID]
	delete(f.errs, m.NotificationID)
	f.mu.Unlock()
	if err != nil {
		return channels.Result{}, err
	}
	return f.Channel.Send(ctx, m)
}

// TestCodeRetryNeverWaitsBehindABulkRetry: a notification's SMS to a
// phone fails and the provider asks for an hour (Retry-After), so its
// retry holds the head of its tier; a code to the same phone (the same
// Kafka key, so the same partition) then fails once without a
// Retry-After. The code is retried after its tier's delay and sent —
// codes and alerts retry through tiers of their own — while the other is
// still waiting.
func TestCodeRetryNeverWaitsBehindABulkRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const phone = "84910000077"
		// Both are the provider's answers that it did not take the message
		// (a code the provider may have would never be sent again).
		f := &failOnce{Channel: r.chans[channels.SMS], errs: map[string]error{
			"slow":   channels.Refused(&channels.Error{Class: channels.Transient, Provider: "test", Code: "429", RetryAfter: time.Hour}),
			"code-1": channels.Refused(&channels.Error{Class: channels.Transient, Provider: "test", Code: "503"}),
		}}
		r.chans[channels.SMS] = f
		r.start(t, tiers(700*time.Millisecond, time.Minute))
		r.publishOne(t, "slow", phone, 2*time.Hour)
		waitStatus(t, r, "slow", loa.StatusRetrying)
		now := time.Now()
		env, err := producer.NewEnvelope("ev-code-1", producer.KindDirect, topics.LaneOTP, phone, now, now.Add(5*time.Minute), "",
			producer.Direct{NotificationID: "code-1", To: producer.Recipient{Type: producer.ToPhone, Value: phone},
				Body: "483920 la ma xac thuc cua ban", Channels: []string{"sms"}, Priority: "high"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.pub.Publish(waitCtx(t), env); err != nil {
			t.Fatal(err)
		}
		if d := waitStatus(t, r, "code-1", loa.StatusSent); d.Attempts != 2 {
			t.Errorf("the code was sent after %d attempts, want 2", d.Attempts)
		}
		if ds, err := r.store.Deliveries(context.Background(), "slow"); err != nil || len(ds) != 1 || ds[0].Status != loa.StatusRetrying {
			t.Errorf("the slow notification: %+v %v, want still retrying", ds, err)
		}
	})
}
