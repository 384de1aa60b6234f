package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
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

// holding holds the sends it is given from one hold to the next (or to
// pass), and counts those held by the current hold.
type holding struct {
	channels.Channel
	mu   sync.Mutex
	gate chan struct{} // nil: sends pass
	held map[chan struct{}]int
}

func (c *holding) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	c.mu.Lock()
	g := c.gate
	if g != nil {
		c.held[g]++
	}
	c.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
		}
		c.mu.Lock()
		c.held[g]--
		c.mu.Unlock()
	}
	return c.Channel.Send(ctx, m)
}

// hold lets the sends held so far go and holds those from now on.
func (c *holding) hold() { c.swap(make(chan struct{})) }

// pass lets every send go.
func (c *holding) pass() { c.swap(nil) }

func (c *holding) swap(g chan struct{}) {
	c.mu.Lock()
	old := c.gate
	c.gate = g
	c.mu.Unlock()
	if old != nil {
		close(old)
	}
}

// heldNow is how many sends the current hold holds.
func (c *holding) heldNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[c.gate]
}

// TestBulkSendsTakeTurnsWhileACodeIsInHand: a 3,000-push broadcast is
// being sent by 4 bulk senders; each has a push under way (held at the
// provider by the test) when a code arrives. While the code is in the
// dispatcher's hands before its send (held in the withdrawn check), the
// senders' next pushes take turns: one under way at a time (BulkShare 1),
// the other three senders waiting for a turn. When the code goes, the
// broadcast finishes, each device once. Counts, not the clock.
func TestBulkSendsTakeTurnsWhileACodeIsInHand(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		const total, senders, share = 3000, 4, 1
		r.publishFanout(t, "bc-turns", topics.LaneBulk, total, 100)
		push := &holding{Channel: r.chans[channels.Push], held: map[chan struct{}]int{}}
		r.chans[channels.Push] = push
		entered, release := make(chan struct{}), make(chan struct{})
		var (
			once sync.Once
			d1   *Dispatcher
		)
		r.start(t, func(d *Dispatcher) {
			d1 = d
			d.cfg.Senders[topics.LaneBulk] = senders
			d.urgency = newUrgency(share)
			d.cfg.Withdrawn = func(ctx context.Context, id string) (bool, error) {
				if id == "code-turns" {
					once.Do(func() { close(entered) })
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				return false, nil
			}
		})
		released := false
		t.Cleanup(func() {
			push.pass()
			if !released {
				close(release)
			}
		})
		ctx := waitCtx(t)
		if err := r.outbox.WaitTotal(ctx, 200); err != nil {
			t.Fatal(err)
		}
		push.hold()
		pollUntil(ctx, t, "every bulk sender has a push under way", func() bool { return push.heldNow() == senders })
		r.publishCode(t, "code-turns", "84912345670")
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the code never reached the dispatcher")
		}
		// The pushes under way go; the senders' next ones are held at the
		// provider, or wait for a turn.
		push.hold()
		pollUntil(ctx, t, "every bulk sender has its next push under way or waits for a turn", func() bool {
			return push.heldNow()+d1.urgency.waiting() == senders
		})
		if n := push.heldNow(); n > share {
			t.Fatalf("%d bulk pushes under way at once with the code in hand; want at most %d", n, share)
		}
		push.pass()
		released = true
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

// TestTurnsFollowUrgentWork: with urgent work pending, a bulk send
// waits while the share is under way and goes when a turn ends or the
// urgent work is done; without urgent work, or without a share, it never
// waits.
func TestTurnsFollowUrgentWork(t *testing.T) {
	u := newUrgency(1)
	u.acquire() // nothing pending
	u.acquire() // nothing pending: no limit
	u.release()
	u.release()

	u.add(2)
	u.acquire() // the share
	got := make(chan struct{})
	go func() { u.acquire(); close(got) }()
	for u.waiting() != 1 {
		time.Sleep(time.Millisecond) // polling until the goroutine waits
	}
	u.add(-1)
	select {
	case <-got:
		t.Fatal("a second bulk send went with urgent work pending")
	default:
	}
	u.release() // the share's turn ends: the waiter goes
	<-got
	second := make(chan struct{})
	go func() { u.acquire(); close(second) }()
	for u.waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	u.add(-1) // urgent work done: it goes though the share is taken
	<-second

	off := newUrgency(0)
	off.add(1)
	off.acquire()
	off.acquire()
	if off.waiting() != 0 {
		t.Fatal("waiting without a share set")
	}
}

// TestCodeGoesWhileTheSharedRedisPoolIsTaken: every connection of the
// Redis client the dispatcher shares between lanes is taken (a pool of
// one, held by a blocking command); a code is still claimed, sent and
// recorded through the urgent lanes' own client.
func TestCodeGoesWhileTheSharedRedisPoolIsTaken(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		opt := *r.rdb.(*redis.Client).Options()
		opt.PoolSize, opt.PoolTimeout = 1, time.Hour
		shared := redis.NewClient(&opt)
		t.Cleanup(func() { shared.Close() })
		key := r.prefix + "pool-taken"
		blocked := make(chan struct{})
		go func() {
			defer close(blocked)
			shared.BLPop(context.Background(), 0, key)
		}()
		// A push to the list ends the BLPOP and gives the pool back.
		unblock := func() { r.rdb.RPush(context.Background(), key, "go") }

		cfg := DefaultConfig()
		cfg.Brokers, cfg.Names, cfg.RedisKeyPrefix = r.brokers, r.names, r.prefix
		cfg.SentTTL = 15 * time.Minute
		cfg.UrgentRedis = r.rdb
		d, err := New(cfg, r.store, shared, r.pub, r.chans, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		t.Cleanup(func() { unblock(); <-blocked }) // first: the dispatcher stops with its pool back

		r.publishCode(t, "code-pool", "84912345672")
		dl := waitStatus(t, r, "code-pool", loa.StatusSent)
		if n := r.outbox.Count("code-pool", channels.SMS, "84912345672"); n != 1 || dl.Recipient != "84912345672" {
			t.Fatalf("sent %d times, ledger %+v", n, dl)
		}
	})
}

// TestRetryTiersFollowTheLanes: a dispatcher consumes the urgent retry
// tiers where it consumes otp or alert, and the others where it consumes
// direct or bulk, so a process of bulk work alone never holds a code's
// retry, and one of codes alone never a broadcast's.
func TestRetryTiersFollowTheLanes(t *testing.T) {
	for _, tc := range []struct {
		lanes []topics.Lane
		want  string
	}{
		{nil, "[false true]"},
		{[]topics.Lane{topics.LaneBulk}, "[false]"},
		{[]topics.Lane{topics.LaneDirect}, "[false]"},
		{[]topics.Lane{topics.LaneOTP}, "[true]"},
		{[]topics.Lane{topics.LaneAlert}, "[true]"},
		{[]topics.Lane{topics.LaneOTP, topics.LaneAlert, topics.LaneDirect}, "[false true]"},
	} {
		if got := fmt.Sprint(retryTiersOf(tc.lanes)); got != tc.want {
			t.Errorf("lanes %v: retry tiers (urgent?) %s, want %s", tc.lanes, got, tc.want)
		}
	}
	if ConsumesUrgent([]topics.Lane{topics.LaneBulk, topics.LaneDirect}) || !ConsumesUrgent(nil) {
		t.Error("ConsumesUrgent")
	}
}
