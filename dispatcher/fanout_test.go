package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// publishFanout publishes total addresses as batches of size on lane.
func (r *rig) publishFanout(t testing.TB, id string, lane topics.Lane, total, size int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	errs := make(chan error, total/size+1)
	jobs := 0
	for b := 0; b*size < total; b++ {
		var rcpt []string
		for i := b * size; i < min((b+1)*size, total); i++ {
			rcpt = append(rcpt, fmt.Sprintf("%s-tok-%07d", id, i))
		}
		jobs++
		go func() {
			env, err := producer.NewEnvelope(fmt.Sprintf("%s-batch-%d", id, b), producer.KindFanout, lane, fmt.Sprintf("%s-%d", id, b),
				now, now.Add(time.Hour), "", producer.Fanout{NotificationID: id, Batch: b, Channel: "push", Recipients: rcpt,
					Title: "Lịch cắt điện", Body: "Ngày mai 8:00–12:00 phường Hải Châu 1", Priority: "normal"})
			if err == nil {
				err = r.pub.Publish(ctx, env)
			}
			errs <- err
		}()
	}
	for range jobs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestFanoutBatchesReachEachAddressOnce: batches of a planned audience are
// delivered to every address once, also when every batch is delivered
// again after a crash before its offset was committed.
func TestFanoutBatchesReachEachAddressOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const total = 2000
		r.publishFanout(t, "bc-1", topics.LaneBulk, total, 500)
		stop := r.start(t, func(d *Dispatcher) { d.noCommit = true })
		if err := r.outbox.WaitTotal(waitCtx(t), total); err != nil {
			t.Fatalf("first run delivered %d: %v", r.outbox.Total(), err)
		}
		stop()
		stop = r.start(t, nil)
		waitLedgerCount(t, r, "bc-1", total)
		stop()
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Fatalf("%d addresses reached twice, e.g. %s", len(d), d[0])
		}
		if got := r.outbox.Total(); got != total {
			t.Fatalf("outbox holds %d, want %d", got, total)
		}
		for i := range total {
			if c := r.outbox.Count("bc-1", channels.Push, fmt.Sprintf("bc-1-tok-%07d", i)); c != 1 {
				t.Fatalf("address %d reached %d times", i, c)
			}
		}
	})
}

// waitLedgerCount waits until a notification has n sent ledger rows.
func waitLedgerCount(t *testing.T, r *rig, id string, n int) {
	t.Helper()
	ctx := waitCtx(t)
	for {
		ds, err := r.store.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		for _, d := range ds {
			if d.Status == loa.StatusSent {
				sent++
			}
		}
		if sent >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d sent in the ledger", id, sent, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestCancelledNotificationIsNotSent: batches already planned for a
// notification that is then cancelled are not sent; their receipts say
// cancelled.
func TestCancelledNotificationIsNotSent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		r.publishFanout(t, "bc-cancel", topics.LaneBulk, 1000, 500)
		if err := r.store.CancelPlan(context.Background(), "bc-cancel", []string{"push"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		r.start(t, nil)
		ctx := waitCtx(t)
		for {
			ds, err := r.store.Deliveries(ctx, "bc-cancel")
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 1000 {
				for _, d := range ds {
					if d.Status != loa.StatusCancelled {
						t.Fatalf("%s: %s", d.Recipient, d.Status)
					}
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%d of 1000 receipts", len(ds))
			case <-time.After(20 * time.Millisecond):
			}
		}
		if n := r.outbox.Total(); n != 0 {
			t.Fatalf("%d messages of a cancelled notification were sent", n)
		}
	})
}

// TestCancelStopsTheBatchesBeingSent: a notification cancelled while one
// of its batches is being sent (an alert's Cancel, an outage's new
// version, a broadcast cancelled as its approval was being released)
// stops within the group of deliveries the batch has claimed: the batch
// looks again before it claims the next group. Before, a batch checked
// once, at its start, and sent all of its 500 after the cancel had been
// acknowledged. One sender, so the group under way is exactly the first.
func TestCancelStopsTheBatchesBeingSent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		var once sync.Once
		r.chans[channels.Push] = onSend{Channel: r.chans[channels.Push], after: func(channels.Message) {
			once.Do(func() {
				if err := r.store.CancelPlan(context.Background(), "bc-midway", []string{"push"}, time.Now()); err != nil {
					t.Error(err)
				}
			})
		}}
		r.publishFanout(t, "bc-midway", topics.LaneBulk, 500, 500)
		r.start(t, func(d *Dispatcher) {
			d.cfg.Senders = map[topics.Lane]int{topics.LaneBulk: 1}
			d.cancelEvery = 0
		})
		ctx := waitCtx(t)
		for {
			ds, err := r.store.Deliveries(ctx, "bc-midway")
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 500 {
				n := map[loa.Status]int{}
				for _, d := range ds {
					n[d.Status]++
				}
				if n[loa.StatusSent] != claimGroup || n[loa.StatusCancelled] != 500-claimGroup {
					t.Errorf("outcomes %v; want the first group of %d sent, the other %d cancelled", n, claimGroup, 500-claimGroup)
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%d of 500 receipts", len(ds))
			case <-time.After(20 * time.Millisecond):
			}
		}
		if got := r.outbox.Total(); got != claimGroup {
			t.Errorf("%d pushes reached the provider, want %d", got, claimGroup)
		}
	})
}

// TestCancellationIsAskedAtMostOnceAWhile: the batches of a notification
// being sent ask the store whether it was cancelled at most once every
// cancelEvery, not once a group of deliveries each; once cancelled, it
// stays so.
func TestCancellationIsAskedAtMostOnceAWhile(t *testing.T) {
	r := newRig(t, "embedded")
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Names, cfg.RedisKeyPrefix = r.brokers, r.names, r.prefix
	d, err := New(cfg, r.store, r.rdb, r.pub, r.chans, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d.now = func() time.Time { return now }
	ctx := context.Background()
	if d.cancelledNow(ctx, "bc-ask") {
		t.Fatal("cancelled before the cancel")
	}
	if err := r.store.CancelPlan(ctx, "bc-ask", []string{"push"}, now); err != nil {
		t.Fatal(err)
	}
	if d.cancelledNow(ctx, "bc-ask") {
		t.Error("asked the store again within cancelEvery")
	}
	now = now.Add(d.cancelEvery)
	if !d.cancelledNow(ctx, "bc-ask") {
		t.Error("not cancelled a cancelEvery later")
	}
	now = now.Add(time.Millisecond)
	if !d.cancelledNow(ctx, "bc-ask") {
		t.Error("a cancelled notification was forgotten")
	}
}

// deadlines records whether each send's context ended at its message's
// expiry.
type deadlines struct {
	channels.Channel
	mu  sync.Mutex
	got map[string]bool // by address
}

func (d *deadlines) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	dl, ok := ctx.Deadline()
	d.mu.Lock()
	d.got[m.To] = ok && !m.ExpiresAt.IsZero() && dl.Equal(m.ExpiresAt)
	d.mu.Unlock()
	return d.Channel.Send(ctx, m)
}

// TestFanoutSendsEndAtTheExpiry: every send of a fan-out batch is bounded
// by the batch's expiry (the sends share one deadline).
func TestFanoutSendsEndAtTheExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		dl := &deadlines{Channel: r.chans[channels.Push], got: map[string]bool{}}
		r.chans[channels.Push] = dl
		const total = 300
		r.publishFanout(t, "bc-dl", topics.LaneBulk, total, 100)
		stop := r.start(t, nil)
		waitLedgerCount(t, r, "bc-dl", total)
		stop()
		dl.mu.Lock()
		defer dl.mu.Unlock()
		if len(dl.got) != total {
			t.Fatalf("%d sends seen, want %d", len(dl.got), total)
		}
		for to, atExpiry := range dl.got {
			if !atExpiry {
				t.Fatalf("the send to %s did not end at its expiry", to)
			}
		}
	})
}
