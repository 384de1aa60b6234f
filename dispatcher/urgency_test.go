package dispatcher

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// publishCode publishes an SMS code for phone on the otp lane.
func (r *rig) publishCode(t testing.TB, id, phone string) {
	t.Helper()
	now := time.Now()
	env, err := producer.NewEnvelope("ev-"+id, producer.KindDirect, topics.LaneOTP, phone, now, now.Add(5*time.Minute), "",
		producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToPhone, Value: phone},
			Body: "483920 la ma xac thuc cua ban", Channels: []string{"sms"}, Priority: "high"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Publish(context.Background(), env); err != nil {
		t.Fatal(err)
	}
}

// TestBulkSendersWaitWhileACodeIsInHand: a 3,000-push broadcast is being
// sent by 4 bulk senders when a code arrives; while the code is in the
// dispatcher's hands before its send (the test holds it in the withdrawn
// check), the bulk senders start no new push: once all of them wait, the
// broadcast has sent at most the pushes that were under way when the code
// came (one a sender). When the code goes, the broadcast finishes, each
// device once. Counts at the sandbox, not the clock.
func TestBulkSendersWaitWhileACodeIsInHand(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		const total, senders = 3000, 4
		r.publishFanout(t, "bc-yield", topics.LaneBulk, total, 100)
		entered, release := make(chan struct{}), make(chan struct{})
		var (
			once sync.Once
			d1   *Dispatcher
		)
		r.start(t, func(d *Dispatcher) {
			d1 = d
			d.cfg.Senders[topics.LaneBulk] = senders
			d.urgency = newUrgency(time.Hour)
			d.cfg.Withdrawn = func(ctx context.Context, id string) (bool, error) {
				if id == "code-yield" {
					once.Do(func() { close(entered) })
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				return false, nil
			}
		})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		ctx := waitCtx(t)
		if err := r.outbox.WaitTotal(ctx, 200); err != nil {
			t.Fatal(err)
		}
		r.publishCode(t, "code-yield", "84912345670")
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the code never reached the dispatcher")
		}
		atCode := r.outbox.Total()
		pollUntil(ctx, t, "every bulk sender waits for the code, or the broadcast is over", func() bool {
			return d1.urgency.waiting() == senders || r.outbox.Total() >= total
		})
		if during := r.outbox.Total() - atCode; during > senders {
			t.Fatalf("%d pushes of the broadcast were sent while the code was in hand; want at most the %d under way", during, senders)
		}
		close(release)
		if err := r.outbox.WaitTotal(ctx, total+1); err != nil {
			t.Fatal(err)
		}
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Fatalf("sent twice: %v", d[:min(len(d), 5)])
		}
	})
}

// stuckLog holds the write-ahead writes of one event prefix until freed.
type stuckLog struct {
	sentLog
	prefix string
	free   chan struct{}
}

func (l *stuckLog) LogSent(ctx context.Context, groups []sqlstore.SentGroup, at time.Time) error {
	for _, g := range groups {
		if strings.HasPrefix(g.EventID, l.prefix) {
			select {
			case <-l.free:
			case <-ctx.Done():
				return ctx.Err()
			}
			break
		}
	}
	return l.sentLog.LogSent(ctx, groups, at)
}

// TestCodeIsRecordedWhileBroadcastMarksAreStuck: the broadcast's sends
// cannot be recorded (their write-ahead writes hang), so its senders and
// the marks they queued wait; a code sent meanwhile is recorded and its
// outcome reaches the ledger all the same — its mark is not queued behind
// theirs.
func TestCodeIsRecordedWhileBroadcastMarksAreStuck(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		r.publishFanout(t, "bc-stuck", topics.LaneBulk, 2000, 100)
		wal := &stuckLog{prefix: "bc-stuck", free: make(chan struct{})}
		r.start(t, func(d *Dispatcher) {
			wal.sentLog = d.wal
			d.wal, d.marker.wal = wal, wal
		})
		t.Cleanup(func() { close(wal.free) })
		if err := r.outbox.WaitTotal(waitCtx(t), 300); err != nil {
			t.Fatal(err)
		}
		r.publishCode(t, "code-stuck", "84912345671")
		d := waitStatus(t, r, "code-stuck", loa.StatusSent)
		if d.Recipient != "84912345671" {
			t.Fatalf("ledger row %+v", d)
		}
	})
}

// TestYieldWaitsForUrgentWorkAndNoLonger: bulk work waits while urgent
// work is pending and goes once it is done; with a bound, it goes after
// the bound even while urgent work stays pending; without one it never
// waits.
func TestYieldWaitsForUrgentWorkAndNoLonger(t *testing.T) {
	u := newUrgency(time.Hour)
	u.yield(context.Background()) // nothing pending: no wait
	u.add(2)
	done := make(chan struct{})
	go func() { u.yield(context.Background()); close(done) }()
	for u.waiting() != 1 {
		time.Sleep(time.Millisecond) // polling until the goroutine waits
	}
	u.add(-1)
	select {
	case <-done:
		t.Fatal("bulk went with urgent work still pending")
	default:
	}
	u.add(-1)
	<-done

	bounded := newUrgency(time.Millisecond)
	bounded.add(1)
	bounded.yield(context.Background()) // returns after the bound

	off := newUrgency(0)
	off.add(1)
	off.yield(context.Background())
	if off.waiting() != 0 {
		t.Fatal("waiting without a bound set")
	}
}
