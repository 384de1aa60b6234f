package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// TestBucketGivesBurstThenWaits: a full bucket gives exactly its burst at
// once; the next send must wait about 1/rate.
func TestBucketGivesBurstThenWaits(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l, err := NewLimiter(rdb, "rl:test:"+testenv.ID(), Limit{PerSecond: 1, Burst: 5})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if w, err := l.Take(ctx); err != nil || w != 0 {
					t.Fatalf("take %d of the burst: wait %v err %v", i+1, w, err)
				}
			}
			w, err := l.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if w <= 0 || w > time.Second {
				t.Fatalf("after the burst: wait %v, want (0, 1s]", w)
			}
		})
	}
}

// TestWaitHonoursContext: an empty bucket and a cancelled context end the
// wait with the context's error.
func TestWaitHonoursContext(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Miniredis(t).Addr()})
	l, _ := NewLimiter(rdb, "rl:ctx", Limit{PerSecond: 0.001, Burst: 1})
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := l.Wait(ctx); err == nil {
		t.Fatal("waited on an empty bucket with a cancelled context and got a token")
	}
}

func TestLimitValidate(t *testing.T) {
	for _, l := range []Limit{{0, 1}, {-1, 1}, {1, 0}} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}
