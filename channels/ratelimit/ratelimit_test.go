package ratelimit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/testenv"
)

func clients(t *testing.T) map[string]redis.UniversalClient {
	out := map[string]redis.UniversalClient{"miniredis": redis.NewClient(&redis.Options{Addr: testenv.Miniredis(t).Addr()})}
	if testenv.Configured("LOA_TEST_REDIS_URL") {
		opt, err := redis.ParseURL(testenv.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
		out["redis"] = redis.NewClient(opt)
	}
	for _, c := range out {
		t.Cleanup(func() { c.Close() })
	}
	return out
}

func newLimiter(t *testing.T, rdb redis.UniversalClient, key string, l Limit, o Options) *Limiter {
	t.Helper()
	lim, err := NewLimiter(rdb, key, l, o)
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

// queued returns how many sends of rank r wait in l.
func (l *Limiter) queued(r channels.Rank) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queue[r].live
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not ordering events
	}
}

// TestBucketGivesBurstThenWaits: a full bucket gives exactly its burst;
// the next token is a thousand seconds away, so a send with a short
// deadline gives up.
func TestBucketGivesBurstThenWaits(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(t, rdb, "rl:test:"+testenv.ID(), Limit{PerSecond: 0.001, Burst: 5}, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := range 5 {
				if _, err := l.Wait(ctx, channels.Bulk); err != nil {
					t.Fatalf("take %d of the burst: %v", i+1, err)
				}
			}
			short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel2()
			if _, err := l.Wait(short, channels.Urgent); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("after the burst: %v, want the deadline to end the wait", err)
			}
		})
	}
}

// TestReserveIsForUrgentSends: bulk sends stop at the reserve; an urgent
// send still finds its tokens there.
func TestReserveIsForUrgentSends(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(t, rdb, "rl:reserve:"+testenv.ID(), Limit{PerSecond: 0.001, Burst: 10, Reserve: 3}, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := range 7 {
				if _, err := l.Wait(ctx, channels.Bulk); err != nil {
					t.Fatalf("bulk %d: %v", i+1, err)
				}
			}
			short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel2()
			if _, err := l.Wait(short, channels.Standard); err == nil {
				t.Fatal("a standard send took a token of the reserve")
			}
			for i := range 3 {
				if _, err := l.Wait(ctx, channels.Urgent); err != nil {
					t.Fatalf("urgent %d from the reserve: %v", i+1, err)
				}
			}
		})
	}
}

// grants records the order in which sends got their tokens.
type grants struct {
	mu    sync.Mutex
	order []string
}

func (g *grants) add(s string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.order = append(g.order, s)
	return len(g.order)
}

func (g *grants) count(s string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, x := range g.order {
		if x == s {
			n++
		}
	}
	return n
}

// TestUrgentSendsGoFirst: 300 bulk sends are queued at a 100/s bucket;
// 20 urgent sends queued after them are all served before 2 leases'
// worth of further bulk sends. Order is read from the grants, not the clock.
func TestUrgentSendsGoFirst(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(t, rdb, "rl:prio:"+testenv.ID(), Limit{PerSecond: 100, Burst: 10}, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var g grants
			var wg sync.WaitGroup
			send := func(r channels.Rank, label string) {
				defer wg.Done()
				if _, err := l.Wait(ctx, r); err == nil {
					g.add(label)
				}
			}
			for range 300 {
				wg.Add(1)
				go send(channels.Bulk, "bulk")
			}
			waitFor(t, "the bulk sends are queued", func() bool { return l.queued(channels.Bulk)+g.count("bulk") == 300 })
			// Counted, as the limiter hands tokens out, from when the
			// urgent sends are all at the limiter (queued, or served).
			var urgent sync.WaitGroup
			at := make(chan int, 1)
			for range 20 {
				wg.Add(1)
				urgent.Add(1)
				go func() { defer urgent.Done(); send(channels.Urgent, "urgent") }()
			}
			go func() {
				for l.queued(channels.Urgent)+int(l.granted[channels.Urgent].Load()) < 20 {
					runtime.Gosched()
				}
				at <- int(l.granted[channels.Bulk].Load())
			}()
			urgent.Wait()
			during := int(l.granted[channels.Bulk].Load()) - <-at
			cancel()
			wg.Wait()
			// Tokens already leased for bulk when the urgent sends came are
			// handed out: at most a lease (10 here) and one more in flight.
			if during > 2*l.leaseMax {
				t.Fatalf("%d bulk sends were served while 20 urgent ones waited; want at most %d", during, 2*l.leaseMax)
			}
			t.Logf("bulk sends served while the urgent ones waited: %d", during)
		})
	}
}

// TestUrgentSendsGoFirstAcrossReplicas: one replica's bulk sends keep a
// shared 100/s bucket busy; another replica's urgent sends are served
// while the first replica gets at most what it had already leased.
func TestUrgentSendsGoFirstAcrossReplicas(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			key := "rl:replicas:" + testenv.ID()
			limit := Limit{PerSecond: 100, Burst: 20, Reserve: 4}
			a := newLimiter(t, rdb, key, limit, Options{})
			b := newLimiter(t, rdb, key, limit, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var g grants
			var wg sync.WaitGroup
			for range 300 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := a.Wait(ctx, channels.Bulk); err == nil {
						g.add("bulk")
					}
				}()
			}
			waitFor(t, "the bulk replica drains the bucket", func() bool { return g.count("bulk") >= 30 })
			// Counted, as the limiters hand tokens out, from when the
			// urgent sends are all at their limiter (queued, or served) and
			// the shared bucket knows they wait: a lease came back short.
			var urgent sync.WaitGroup
			at := make(chan int, 1)
			marked := make(chan struct{})
			var once sync.Once
			b.leased = func(r channels.Rank, want int, more bool, got int) {
				if got < want || more {
					once.Do(func() { close(marked) })
				}
			}
			for range 50 {
				urgent.Add(1)
				go func() {
					defer urgent.Done()
					if _, err := b.Wait(ctx, channels.Urgent); err != nil {
						t.Error(err)
					}
					g.add("urgent")
				}()
			}
			go func() {
				for b.queued(channels.Urgent)+int(b.granted[channels.Urgent].Load()) < 50 {
					runtime.Gosched()
				}
				<-marked
				at <- int(a.granted[channels.Bulk].Load())
			}()
			urgent.Wait()
			during := int(a.granted[channels.Bulk].Load()) - <-at
			cancel()
			wg.Wait()
			// Sharing the rate evenly would give the bulk replica about 50.
			if during > 2*a.leaseMax {
				t.Fatalf("the bulk replica got %d tokens while the other's 50 urgent sends waited; want at most %d", during, 2*a.leaseMax)
			}
			t.Logf("bulk tokens taken on the other replica while 50 urgent sends waited: %d", during)
		})
	}
}

// TestLeasesNotCallsPerSend: 2,000 sends from 200 goroutines at a bucket
// that never binds take their tokens in leases: far fewer Redis calls
// than sends.
func TestLeasesNotCallsPerSend(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(t, rdb, "rl:lease:"+testenv.ID(), Limit{PerSecond: 1_000_000, Burst: 100_000}, Options{})
			var wg sync.WaitGroup
			for range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 10 {
						if _, err := l.Wait(context.Background(), channels.Bulk); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			if calls := l.calls.Load(); calls > 2000/10 {
				t.Fatalf("%d Redis calls for 2,000 sends; want a call per lease (at most 200)", calls)
			} else {
				t.Logf("%d Redis calls for 2,000 sends", calls)
			}
		})
	}
}

// TestUnusedTokensGoBack: a replica that leased ahead of its demand
// gives what it did not use back when the lease ends, so another replica
// can use it.
func TestUnusedTokensGoBack(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			key := "rl:giveback:" + testenv.ID()
			limit := Limit{PerSecond: 0.001, Burst: 10}
			a := newLimiter(t, rdb, key, limit, Options{Lease: 20 * time.Millisecond})
			sentLastPeriod(a, channels.Bulk, 6)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := a.Wait(ctx, channels.Bulk); err != nil { // leases 6, uses 1
				t.Fatal(err)
			}
			if n := a.calls.Load(); n != 1 {
				t.Fatalf("%d calls to Redis for the first lease", n)
			}
			b := newLimiter(t, rdb, key, limit, Options{})
			for i := range 9 {
				if _, err := b.Wait(ctx, channels.Bulk); err != nil {
					t.Fatalf("token %d of the 9 left: %v (the 5 unused were not given back)", i+1, err)
				}
			}
		})
	}
}

// TestRedisDownFallsBackToALocalBucket: with Redis gone, sends still get
// tokens — from a local bucket of the shared rate divided by the replicas
// seen — and never an error; when Redis is back the limiter returns to
// the shared bucket.
func TestRedisDownFallsBackToALocalBucket(t *testing.T) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	limit := Limit{PerSecond: 200, Burst: 20}
	a := newLimiter(t, rdb, "rl:down", limit, Options{Probe: 20 * time.Millisecond})
	b := newLimiter(t, rdb, "rl:down", limit, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, l := range []*Limiter{b, a} { // a's call sees both
		if _, err := l.Wait(ctx, channels.Bulk); err != nil {
			t.Fatal(err)
		}
	}
	addr := mr.Addr()
	mr.Close()
	var got atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := a.Wait(ctx, channels.Bulk); err != nil {
					t.Errorf("a send failed because Redis is down: %v", err)
					return
				}
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	if !a.Local() {
		t.Fatal("Redis is down but the limiter says it is on the shared bucket")
	}
	a.mu.Lock()
	replicas := a.replicas
	a.mu.Unlock()
	if replicas != 2 {
		t.Errorf("the local bucket divides by %d replicas, want the 2 seen", replicas)
	}
	if err := mr.StartAddr(addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the limiter is back on the shared bucket", func() bool {
		if _, err := a.Wait(ctx, channels.Urgent); err != nil {
			t.Fatal(err)
		}
		return !a.Local()
	})
}

func TestLimitValidate(t *testing.T) {
	for _, l := range []Limit{{0, 1, 0}, {-1, 1, 0}, {1, 0, 0}, {1, 5, 5}, {1, 5, -1}, {1, 1, 1}} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	for burst, want := range map[int]int{1: 0, 2: 1, 5: 1, 10: 1, 1000: 100} {
		if got := ReserveOf(burst, 0.1); got != want {
			t.Errorf("ReserveOf(%d, 0.1) = %d, want %d", burst, got, want)
		}
	}
}

// stuck is a channel that must never be called.
type stuck struct{ calls atomic.Int64 }

func (s *stuck) Send(context.Context, channels.Message) (channels.Result, error) {
	s.calls.Add(1)
	return channels.Result{}, nil
}

// TestGivingUpIsNotTheProviders: a send that gives up waiting for a token
// is transient and marked as never having reached the provider.
func TestGivingUpIsNotTheProviders(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Miniredis(t).Addr()})
	l := newLimiter(t, rdb, "rl:giveup", Limit{PerSecond: 0.001, Burst: 1}, Options{})
	inner := &stuck{}
	c := New("p", inner, l, ChannelConfig{})
	if _, err := c.Send(context.Background(), channels.Message{Lane: channels.LaneBulk}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Send(ctx, channels.Message{Lane: channels.LaneBulk})
	if channels.ClassOf(err) != channels.Transient || !errors.Is(err, channels.ErrNotAttempted) {
		t.Fatalf("giving up: %v, want a transient error wrapping ErrNotAttempted", err)
	}
	if inner.calls.Load() != 1 {
		t.Fatalf("the provider was called %d times, want 1", inner.calls.Load())
	}
}

// deadlineChecker records whether each call still had its call timeout's
// worth of time when the provider was called.
type deadlineChecker struct {
	calls, short atomic.Int64
	want         time.Duration
}

func (d *deadlineChecker) Send(ctx context.Context, _ channels.Message) (channels.Result, error) {
	d.calls.Add(1)
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < d.want/2 {
		d.short.Add(1)
	}
	return channels.Result{}, nil
}

// TestTheWaitIsNotPartOfTheCallTimeout: sends queued far longer than the
// call timeout behind a slow bucket still get the whole timeout for the
// provider call: waiting for a turn is back-pressure, not a slow provider.
func TestTheWaitIsNotPartOfTheCallTimeout(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Miniredis(t).Addr()})
	l := newLimiter(t, rdb, "rl:calltimeout", Limit{PerSecond: 20, Burst: 1}, Options{})
	inner := &deadlineChecker{want: 50 * time.Millisecond}
	c := New("p", inner, l, ChannelConfig{CallTimeout: inner.want})
	var wg sync.WaitGroup
	for range 10 { // the last waits about 450 ms for its token
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(context.Background(), channels.Message{Lane: channels.LaneBulk}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if inner.calls.Load() != 10 || inner.short.Load() != 0 {
		t.Fatalf("%d calls, %d with less than half the call timeout left", inner.calls.Load(), inner.short.Load())
	}
}

// TestLeaseRenewedWhileSendsContinue: a replica whose sends took tokens
// in the last period renews its lease before it ends, so the next send
// after the first lease's end is served from the tokens in hand, without
// a call to Redis, rather than waiting for one at the turn of every lease.
func TestLeaseRenewedWhileSendsContinue(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(t, rdb, "rl:renew:"+testenv.ID(), Limit{PerSecond: 1000, Burst: 100}, Options{Lease: time.Second})
			sentLastPeriod(l, channels.Urgent, 20)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := l.Wait(ctx, channels.Urgent); err != nil { // leases 20, uses 1
				t.Fatal(err)
			}
			l.mu.Lock()
			first := l.heldTill
			l.mu.Unlock()
			waitFor(t, "the lease to be renewed", func() bool {
				l.mu.Lock()
				defer l.mu.Unlock()
				return l.heldTill.After(first)
			})
			waitFor(t, "the first lease's end", func() bool { return time.Now().After(first) })
			calls := l.calls.Load()
			if _, err := l.Wait(ctx, channels.Urgent); err != nil {
				t.Fatal(err)
			}
			if n := l.calls.Load() - calls; n != 0 {
				t.Errorf("the send after the first lease's end made %d calls to Redis; want it served from the renewed lease", n)
			}
		})
	}
}

// sentLastPeriod makes l's demand as if it had sent n of rank r in the
// last lease period, so its next lease asks for that many.
func sentLastPeriod(l *Limiter, r channels.Rank, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.demand[r], l.window = n, time.Now()
}
