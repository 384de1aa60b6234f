package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
)

// TestCallingClaims: a claim taken calling at once, or a held claim turned
// calling (MarkCalling), keeps its
// prefix when its owner renews it and when another takes it over once
// its lease lapsed, and reads as midCall to both; it is busy to others
// while its lease lives; only its owner turns it calling or releases it.
// Calls queued behind a round trip under way go with the claims in the
// next, each with its own answer.
func TestCallingClaims(t *testing.T) {
	for _, backend := range []string{"miniredis", "real"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "real" && !testenv.Configured("LOA_TEST_REDIS_URL") {
				t.Skip("LOA_TEST_REDIS_URL not set")
			}
			ctx := t.Context()
			c := claimsOn(t, backend)
			k := c.redisKey(keyOf("code-calling", "sms", "84912345678"))
			claimOnce := func(owner string) claimState {
				t.Helper()
				states, err := c.ClaimKeys(ctx, []string{k}, owner)
				if err != nil {
					t.Fatal(err)
				}
				return states[0]
			}
			value := func() string {
				t.Helper()
				v, err := c.rdb.Get(ctx, k).Result()
				if err != nil && err != redis.Nil {
					t.Fatal(err)
				}
				return v
			}
			if st := claimOnce("owner-a"); st != claimed {
				t.Fatalf("first claim: %v", st)
			}
			if ok, err := c.MarkCalling(ctx, k, "owner-b"); err != nil || ok {
				t.Fatalf("another owner turned the claim calling: %v, %v", ok, err)
			}
			if ok, err := c.MarkCalling(ctx, k, "owner-a"); err != nil || !ok {
				t.Fatalf("the owner could not turn its claim calling: %v, %v", ok, err)
			}
			if v := value(); !strings.HasPrefix(v, "a:owner-a:") {
				t.Fatalf("calling claim %q", v)
			}
			if st := claimOnce("owner-b"); st != busy {
				t.Errorf("a live calling claim to another: %v, want busy", st)
			}
			if st := claimOnce("owner-a"); st != midCall {
				t.Errorf("a calling claim renewed by its owner: %v, want midCall", st)
			}
			if v := value(); !strings.HasPrefix(v, "a:owner-a:") {
				t.Errorf("renewed calling claim %q, want it calling still", v)
			}
			// Its owner died: the lease lapsed.
			if err := c.rdb.Set(ctx, k, "a:owner-a:1000", c.SentTTL).Err(); err != nil {
				t.Fatal(err)
			}
			if st := claimOnce("owner-b"); st != midCall {
				t.Errorf("a lapsed calling claim taken over: %v, want midCall", st)
			}
			if v := value(); !strings.HasPrefix(v, "a:owner-b:") {
				t.Errorf("taken-over calling claim %q, want it calling, held by owner-b", v)
			}
			if err := c.ReleaseKeys(ctx, []string{k}, "owner-a"); err != nil || value() == "" {
				t.Errorf("a former owner released the calling claim (%v)", err)
			}
			if err := c.ReleaseKeys(ctx, []string{k}, "owner-b"); err != nil || value() != "" {
				t.Errorf("the owner's release left %q (%v)", value(), err)
			}
			if ok, err := c.MarkCalling(ctx, k, "owner-b"); err != nil || ok {
				t.Errorf("a released claim turned calling: %v, %v", ok, err)
			}

			// Together: two turns and a claim queued behind a round trip.
			h := &heldTrips{entered: make(chan struct{}), release: make(chan struct{})}
			rdb := redis.NewClient(c.rdb.(*redis.Client).Options())
			rdb.AddHook(h)
			t.Cleanup(func() { rdb.Close() })
			g := c.on(rdb)
			queued := make(chan struct{}, 3)
			g.grp.queued = func() { queued <- struct{}{} }
			mine, theirs, other := c.redisKey(keyOf("code-1", "sms", "1")), c.redisKey(keyOf("code-2", "sms", "2")), c.redisKey(keyOf("code-3", "sms", "3"))
			for key, owner := range map[string]string{mine: "owner-c", theirs: "owner-d"} {
				if states, err := c.ClaimKeys(ctx, []string{key}, owner); err != nil || states[0] != claimed {
					t.Fatal(states, err)
				}
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); g.claimOne(ctx, c.redisKey(keyOf("code-0", "sms", "0")), "owner-c", "p", nil) }()
			<-h.entered
			var okMine, okTheirs bool
			var stOther claimState
			var errs [3]error
			wg.Add(3)
			go func() { defer wg.Done(); okMine, errs[0] = g.MarkCalling(ctx, mine, "owner-c") }()
			go func() { defer wg.Done(); okTheirs, errs[1] = g.MarkCalling(ctx, theirs, "owner-c") }()
			go func() { defer wg.Done(); stOther, errs[2] = g.claimOne(ctx, other, "owner-c", "a", nil) }()
			deadline := time.After(30 * time.Second)
			for range 3 {
				select {
				case <-queued:
				case <-deadline:
					t.Fatal("the calls did not queue behind the round trip under way")
				}
			}
			close(h.release)
			wg.Wait()
			if errs != [3]error{} || !okMine || okTheirs || stOther != claimed {
				t.Errorf("queued together: own claim turned %v, another's %v, a new claim %v; errors %v", okMine, okTheirs, stOther, errs)
			}
			if trips := h.with(mine); len(trips) != 1 || !strings.Contains(strings.Join(trips[0], "\n"), other) {
				t.Errorf("the queued turns and claim did not share one round trip: %q", trips)
			}
			if v, err := c.rdb.Get(ctx, other).Result(); err != nil || !strings.HasPrefix(v, "a:owner-c:") {
				t.Errorf("a claim taken calling at once: %q (%v)", v, err)
			}
		})
	}
}

// claimSpy is an SMS provider that notes, at each call, what the code's
// claim in Redis and its attempt's row said.
type claimSpy struct {
	channels.Channel
	r        *rig
	d        func() *Dispatcher
	mu       sync.Mutex
	claims   []string // the claim's value at each provider call
	rowFirst []bool   // whether the attempt's row was committed then
	before   func(ctx context.Context, m channels.Message)
}

func (s *claimSpy) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	if s.before != nil {
		s.before(ctx, m)
	}
	if err := channels.Calling(ctx); err != nil {
		return channels.Result{}, err
	}
	d := s.d()
	k := keyOf(m.NotificationID, string(channels.SMS), m.To)
	v, _ := s.r.rdb.Get(ctx, d.claims.redisKey(k)).Result()
	keys, _ := d.wal.SentKeys(ctx, "attempt:ev-"+m.NotificationID)
	s.mu.Lock()
	s.claims = append(s.claims, v)
	s.rowFirst = append(s.rowFirst, strings.Contains(string(keys), string(k[:])))
	s.mu.Unlock()
	return s.Channel.Send(ctx, m)
}

func (s *claimSpy) calls() ([]string, []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.claims...), append([]bool(nil), s.rowFirst...)
}

// TestCodeIsCalledBeforeItsAttemptRowIsCommitted: a code's attempt is
// recorded in its claim in Redis, and the gateway called, while the
// attempt's row in the write-ahead record is still being written; the
// code is recorded sent only once the row is committed, and the row is.
// With LOA_CODE_ATTEMPT_FIRST=postgres the row is committed first.
func TestCodeIsCalledBeforeItsAttemptRowIsCommitted(t *testing.T) {
	for _, rowFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("rowFirst=%v", rowFirst), func(t *testing.T) {
			oneBackend(t, func(t *testing.T, r *rig) {
				ctx := waitCtx(t)
				const id, phone = "code-w", "84911130001"
				var d *Dispatcher
				spy := &claimSpy{Channel: r.chans[channels.SMS], r: r, d: func() *Dispatcher { return d }}
				r.chans[channels.SMS] = spy
				wal := &heldWAL{hold: "attempt:ev-" + id, held: make(chan struct{}), release: make(chan struct{})}
				if rowFirst {
					close(wal.release) // the send waits for it
				}
				r.start(t, func(x *Dispatcher) {
					d = x
					wal.sentLog = x.wal
					x.wal = wal
					x.cfg.CodeAttemptRowFirst = rowFirst
				})
				r.publishCode(t, id, phone)
				if !rowFirst {
					select {
					case <-wal.held:
					case <-ctx.Done():
						t.Fatal("the code's attempt row was never written")
					}
					pollUntil(ctx, t, "the gateway is called while the attempt's row is held", func() bool {
						return r.outbox.Count(id, channels.SMS, phone) == 1
					})
					if ds, err := r.store.Deliveries(ctx, id); err != nil || len(ds) != 0 {
						t.Errorf("the code was recorded (%v, %v) before its attempt's row was committed", ds, err)
					}
					close(wal.release)
				}
				ds := waitFinal(t, r, id, 1)
				if ds[0].Status != loa.StatusSent {
					t.Errorf("the code: %s (%s)", ds[0].Status, ds[0].Class)
				}
				claims, rows := spy.calls()
				if len(claims) != 1 {
					t.Fatalf("%d gateway calls, want 1", len(claims))
				}
				if !strings.HasPrefix(claims[0], "a:") && !rowFirst {
					t.Errorf("the claim said %q at the call, want a calling claim", claims[0])
				}
				if rows[0] != rowFirst {
					t.Errorf("attempt row committed at the call: %v, want %v", rows[0], rowFirst)
				}
				k := keyOf(id, string(channels.SMS), phone)
				if keys, err := wal.sentLog.SentKeys(ctx, "attempt:ev-"+id); err != nil || !strings.Contains(string(keys), string(k[:])) {
					t.Errorf("the attempt's row is not in the write-ahead record (%v)", err)
				}
			})
		})
	}
}

// TestACallingClaimLeftBehindIsInDoubt: a code whose claim says a sender
// began its call and died (a lapsed calling claim) is not sent, even
// though the write-ahead record has no attempt (its row was written
// behind the call and never committed): it is recorded failed, in doubt,
// and its claim says so.
func TestACallingClaimLeftBehindIsInDoubt(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		const id, phone = "code-left", "84911130002"
		var rkey string
		r.start(t, func(x *Dispatcher) {
			rkey = x.claims.redisKey(keyOf(id, string(channels.SMS), phone))
			if err := r.rdb.Set(ctx, rkey, "a:a-dead-sender:1000", time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		})
		r.publishCode(t, id, phone)
		ds := waitFinal(t, r, id, 1)
		if ds[0].Status != loa.StatusFailed || ds[0].Class != string(ClassInDoubt) {
			t.Errorf("the code: %s (%s), want failed (in_doubt)", ds[0].Status, ds[0].Class)
		}
		if n := r.outbox.Count(id, channels.SMS, phone); n != 0 {
			t.Errorf("the code was sent %d times", n)
		}
		if v, err := r.rdb.Get(ctx, rkey).Result(); err != nil || v != "d" {
			t.Errorf("its claim: %q (%v), want d", v, err)
		}
	})
}

// TestACodeWhoseClaimWasTakenIsNotCalled: when a code waited long for its
// turn (its dispatcher's clock moves a lease on) and its claim is no
// longer its sender's at the moment of the call (another sender holds
// it), the gateway is not called; the message is handled again, and the
// code sent once, by the claim's holder.
func TestACodeWhoseClaimWasTakenIsNotCalled(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		const id, phone = "code-taken", "84911130003"
		var d *Dispatcher
		var once sync.Once
		var ahead atomic.Int64 // how far the dispatcher's clock is ahead
		spy := &claimSpy{Channel: r.chans[channels.SMS], r: r, d: func() *Dispatcher { return d }}
		spy.before = func(ctx context.Context, m channels.Message) {
			once.Do(func() {
				ahead.Store(int64(d.claims.Lease)) // a long wait for its turn
				// Another sender's lease, lapsing in a second (Redis's clock).
				tm, err := r.rdb.Time(ctx).Result()
				if err != nil {
					t.Error(err)
					return
				}
				rkey := d.claims.redisKey(keyOf(id, string(channels.SMS), phone))
				if err := r.rdb.Set(ctx, rkey, fmt.Sprintf("p:another-sender:%d", tm.Add(time.Second).UnixMilli()), time.Hour).Err(); err != nil {
					t.Error(err)
				}
			})
		}
		r.chans[channels.SMS] = spy
		r.start(t, func(x *Dispatcher) {
			d = x
			x.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
		})
		r.publishCode(t, id, phone)
		ds := waitFinal(t, r, id, 1)
		if ds[0].Status != loa.StatusSent {
			t.Errorf("the code: %s (%s), want sent", ds[0].Status, ds[0].Class)
		}
		if n := r.outbox.Count(id, channels.SMS, phone); n != 1 {
			t.Errorf("the code was sent %d times, want once", n)
		}
		claims, _ := spy.calls()
		for _, v := range claims {
			if !strings.HasPrefix(v, "a:") || strings.Contains(v, "another-sender") {
				t.Errorf("the gateway was called with the claim %q", v)
			}
		}
	})
}

// TestCodesGoOutWhilePostgreSQLStalls: while the write-ahead record's
// commits stall (a checkpoint, a lock, a failover), codes still reach
// the gateway: each holds its otp worker until its attempt's row is
// committed, and the lane's default workers outnumber the codes of a
// stall of a few seconds at 500 a second. With 256 workers a stall of
// half a second stopped the lane's fetching, and every code behind it
// waited for PostgreSQL (docs/testing.md, "A stall in PostgreSQL").
func TestCodesGoOutWhilePostgreSQLStalls(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		const n = 600 // more than a second of codes at 500 a second
		wal := &heldWAL{hold: "ev-stall-0000", held: make(chan struct{}), release: make(chan struct{})}
		r.start(t, func(x *Dispatcher) {
			x.cfg.Workers[topics.LaneOTP] = DefaultConfig().Workers[topics.LaneOTP]
			wal.sentLog = x.wal
			x.wal = wal
		})
		var release sync.Once
		t.Cleanup(func() { release.Do(func() { close(wal.release) }) }) // runs before the dispatcher's stop
		ctx := waitCtx(t)
		for i := range n {
			r.publishCode(t, fmt.Sprintf("stall-%04d", i), fmt.Sprintf("8491114%04d", i))
			if i == 0 {
				select {
				case <-wal.held: // the first code's row, and every row behind it, waits
				case <-ctx.Done():
					t.Fatalf("the first code's attempt row was never written (%d sent)", r.outbox.Total())
				}
			}
		}
		stalled, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for r.outbox.Total() < n {
			select {
			case <-stalled.Done():
				t.Fatalf("the gateway has %d of %d codes while their rows wait", r.outbox.Total(), n)
			case <-time.After(20 * time.Millisecond): // polling a count, not ordering events
			}
		}
		if ds, err := r.store.Deliveries(ctx, "stall-0000"); err != nil || len(ds) != 0 {
			t.Errorf("a code was recorded (%v, %v) before its attempt's row was committed", ds, err)
		}
		release.Do(func() { close(wal.release) })
		for i := range n {
			id := fmt.Sprintf("stall-%04d", i)
			if ds := waitFinal(t, r, id, 1); ds[0].Status != loa.StatusSent {
				t.Errorf("%s: %s (%s)", id, ds[0].Status, ds[0].Class)
			}
		}
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Errorf("sent twice: %v", d)
		}
	})
}
