package quota_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/internal/quota"
	"github.com/loa-hub/loa/internal/testenv"
)

// calls is an Observer that counts.
type calls struct{ refused, redis, failed atomic.Int64 }

func (c *calls) QuotaRefused() { c.refused.Add(1) }
func (c *calls) QuotaCall(failed bool) {
	c.redis.Add(1)
	if failed {
		c.failed.Add(1)
	}
}

func clients(t *testing.T) map[string]goredis.UniversalClient {
	out := map[string]goredis.UniversalClient{"miniredis": goredis.NewClient(&goredis.Options{Addr: testenv.Miniredis(t).Addr()})}
	if os.Getenv("LOA_TEST_REDIS_URL") != "" || testenv.Required() {
		opt, err := goredis.ParseURL(testenv.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
		out["redis"] = goredis.NewClient(opt)
	}
	for _, c := range out {
		t.Cleanup(func() { c.Close() })
	}
	return out
}

// clock is a settable clock.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }
func newClock(start time.Time) *clock    { c := &clock{}; c.t.Store(start.UnixNano()); return c }
func (c *clock) set(q ...*quota.Quota) {
	for _, x := range q {
		x.SetClock(c.now)
	}
}

// TestQuotaAcrossReplicas: two replicas share an address's count: the
// address gets at most Limit requests a window (plus what each replica
// lets through before its next batch), is refused with the time to the
// window's end, and starts again in the next window; another address is
// not held up; an address making fewer requests than a batch costs no
// Redis call.
func TestQuotaAcrossReplicas(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cfg := quota.Config{Limit: 100, Window: 10 * time.Second, Batch: 10, MaxLocal: 1000, CallTimeout: time.Second}
			obs := &calls{}
			prefix := "loa-test-" + testenv.ID() + ":"
			a, b := quota.New(cfg, rdb, prefix, obs), quota.New(cfg, rdb, prefix, obs)
			clk := newClock(time.Unix(1_800_000_000, 0)) // a window's start
			clk.set(a, b)

			for range 9 {
				if ok, _ := a.Allow(ctx, "198.51.100.1"); !ok {
					t.Fatal("a quiet address refused")
				}
			}
			if n := obs.redis.Load(); n != 0 {
				t.Errorf("%d Redis calls for 9 requests, want none (batches of 10)", n)
			}

			allowed, refusedAt := 0, -1
			for i := range 300 {
				q := a
				if i%2 == 1 {
					q = b
				}
				ok, wait := q.Allow(ctx, "203.0.113.7")
				if ok {
					allowed++
					continue
				}
				if refusedAt < 0 {
					refusedAt = i
				}
				if wait <= 0 || wait > cfg.Window {
					t.Errorf("retry after %v", wait)
				}
			}
			if allowed < cfg.Limit || allowed > cfg.Limit+2*(cfg.Batch-1) {
				t.Errorf("%d of 300 allowed across two replicas; want %d to %d", allowed, cfg.Limit, cfg.Limit+2*(cfg.Batch-1))
			}
			if obs.refused.Load() == 0 || refusedAt < 0 {
				t.Fatal("never refused")
			}
			if ok, _ := b.Allow(ctx, "198.51.100.1"); !ok {
				t.Error("another address was held up")
			}
			// The next window starts afresh.
			clk.advance(cfg.Window)
			if ok, _ := a.Allow(ctx, "203.0.113.7"); !ok {
				t.Error("refused in the next window")
			}
			if ok, _ := b.Allow(ctx, "203.0.113.7"); !ok {
				t.Error("refused by the other replica in the next window")
			}
		})
	}
}

// TestQuotaWithoutRedis: when Redis does not answer, a replica still
// refuses an address past the limit on its own count, and tries Redis
// once a batch, not once a request.
func TestQuotaWithoutRedis(t *testing.T) {
	ctx := context.Background()
	mr := testenv.Miniredis(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	mr.Close()
	obs := &calls{}
	q := quota.New(quota.Config{Limit: 50, Window: 10 * time.Second, Batch: 10, MaxLocal: 10, CallTimeout: 100 * time.Millisecond}, rdb, "t:", obs)
	newClock(time.Unix(1_800_000_000, 0)).set(q)
	allowed := 0
	for range 100 {
		if ok, _ := q.Allow(ctx, "203.0.113.7"); ok {
			allowed++
		}
	}
	if allowed != 50 {
		t.Errorf("%d allowed without Redis, want 50", allowed)
	}
	if n := obs.failed.Load(); n == 0 || n > 5 {
		t.Errorf("%d failed Redis calls for 100 requests; want one a batch of 10 let through", n)
	}
}

// TestQuotaPastMaxLocal: past MaxLocal addresses a window, a new address
// is counted in Redis request by request, still to its limit.
func TestQuotaPastMaxLocal(t *testing.T) {
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: testenv.Miniredis(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	obs := &calls{}
	q := quota.New(quota.Config{Limit: 5, Window: 10 * time.Second, Batch: 10, MaxLocal: 1, CallTimeout: time.Second}, rdb, "t:", obs)
	newClock(time.Unix(1_800_000_000, 0)).set(q)
	q.Allow(ctx, "198.51.100.1")
	allowed := 0
	for range 8 {
		if ok, _ := q.Allow(ctx, "203.0.113.7"); ok {
			allowed++
		}
	}
	if allowed != 5 || obs.redis.Load() != 8 {
		t.Errorf("%d allowed with %d Redis calls; want 5 with 8", allowed, obs.redis.Load())
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":                "203.0.113.7",
		"203.0.113.7:5555":           "203.0.113.7",
		"::ffff:203.0.113.7":         "203.0.113.7",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"not an address":             "",
	} {
		if got := quota.AddrKey(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
